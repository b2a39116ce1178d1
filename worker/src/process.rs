//! Launching and killing executor and driver child processes (Linux only).
//!
//! Every child runs in its own process group, so that killing it reaches everything it
//! started. Children never outlive a worker that dies abruptly (even by SIGKILL): each one
//! carries a tiny *watchdog* process in its group that waits on a pipe whose only write
//! end lives in the worker. When the worker dies the kernel closes that write end, the
//! watchdog sees EOF and SIGKILLs its whole process group — the child and all of its
//! descendants that stayed in the group. As a second line of defence the child itself
//! has `PR_SET_PDEATHSIG = SIGKILL`. The watchdog exits (a few seconds) after the child
//! ends normally; descendants left behind by a child that exited on its own are not
//! killed then.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tracing::{debug, warn};

/// What to run, where, and where its output goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    pub program: String,
    pub args: Vec<String>,
    /// Added to (and overriding) the worker's own environment.
    pub env: BTreeMap<String, String>,
    /// Working directory; created (with its parents) if missing.
    pub cwd: PathBuf,
    /// Created or truncated; the child's stdout goes there.
    pub stdout: PathBuf,
    /// Created or truncated; the child's stderr goes there.
    pub stderr: PathBuf,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    /// Shell-style status: the exit code, or 128 + signal number (-1 if neither is known).
    pub fn status(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => -1,
        }
    }

    /// Whether the child exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A human-readable account, e.g. "Command exited with code 3" or
    /// "Command killed by signal 9 (SIGKILL)".
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("Command exited with code {c}"),
            (None, Some(s)) => match signal_name(s) {
                Some(name) => format!("Command killed by signal {s} ({name})"),
                None => format!("Command killed by signal {s}"),
            },
            (None, None) => "Command ended with an unknown status".to_owned(),
        }
    }
}

impl From<ExitStatus> for Exit {
    fn from(s: ExitStatus) -> Self {
        Exit {
            code: s.code(),
            signal: s.signal(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

/// Replaces Spark's `{{NAME}}` placeholders: every occurrence of `{{KEY}}` for each
/// `(KEY, value)` pair. Unknown placeholders are left as they are, and substituted values
/// are not themselves scanned for placeholders.
pub fn substitute(s: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        if let Some(end) = after.find("}}") {
            let key = &after[..end];
            if let Some((_, value)) = vars.iter().find(|(k, _)| *k == key) {
                out.push_str(value);
                rest = &after[end + 2..];
                continue;
            }
        }
        // Not a known placeholder: keep one brace and look again from the next character,
        // so that e.g. "{{{KEY}}}" still finds "{{KEY}}".
        out.push('{');
        rest = &rest[start + 1..];
    }
    out.push_str(rest);
    out
}

/// Owns the "death pipe" shared by all children of this worker. Create one per worker
/// process and keep it for the worker's whole life.
///
/// The worker never writes to the pipe; its write end exists only so that the watchdogs
/// read EOF when it is closed. That happens when the worker process dies — or when the
/// `Launcher` is dropped: **dropping the `Launcher` SIGKILLs every child it spawned**
/// (and their descendants).
pub struct Launcher {
    read: OwnedFd,
    /// Never written; closing it (worker death or drop) is the signal.
    write: OwnedFd,
    /// Upper bound for the watchdog's fallback fd-closing loop (kernels without
    /// `close_range`).
    max_fd: libc::c_int,
}

impl fmt::Debug for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launcher")
            .field("read_fd", &self.read.as_raw_fd())
            .field("write_fd", &self.write.as_raw_fd())
            .finish()
    }
}

/// Moves `fd` to a descriptor >= 3 (close-on-exec), so that it can never be clobbered by
/// (or pose as) a child's stdio.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new descriptor we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a freshly created descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

impl Launcher {
    /// Creates the death pipe (close-on-exec on both ends).
    pub fn new() -> io::Result<Launcher> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill in.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create the worker's death pipe: {e}"),
            ));
        }
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let read = above_stdio(read)?;
        let write = above_stdio(write)?;
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid rlimit for getrlimit to fill in.
        let max_fd = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            lim.rlim_cur.min(65_536) as libc::c_int
        } else {
            4096
        };
        debug!(
            read_fd = read.as_raw_fd(),
            write_fd = write.as_raw_fd(),
            "created the child death pipe"
        );
        Ok(Launcher {
            read,
            write,
            max_fd,
        })
    }

    /// Starts `spec` as a child process in its own process group, with stdin from
    /// `/dev/null` and stdout/stderr in the given files.
    ///
    /// Must be called inside a tokio runtime (the child is reaped by tokio's process
    /// driver), from a long-lived thread (a tokio runtime worker thread, or the
    /// thread of a `current_thread` runtime) — **not** from `spawn_blocking`: the child's
    /// `PR_SET_PDEATHSIG` fires when the *thread* that spawned it exits, so a child
    /// spawned from a short-lived thread would be SIGKILLed when that thread ends.
    pub fn spawn(&self, spec: &ProcessSpec) -> io::Result<Child> {
        let program = spec.program.as_str();
        let context = |what: String, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        std::fs::create_dir_all(&spec.cwd).map_err(|e| {
            context(
                format!(
                    "cannot launch `{program}`: cannot create working directory {}",
                    spec.cwd.display()
                ),
                e,
            )
        })?;
        let stdout = create_output(&spec.stdout).map_err(|e| {
            context(
                format!(
                    "cannot launch `{program}`: cannot create {}",
                    spec.stdout.display()
                ),
                e,
            )
        })?;
        let stderr = create_output(&spec.stderr).map_err(|e| {
            context(
                format!(
                    "cannot launch `{program}`: cannot create {}",
                    spec.stderr.display()
                ),
                e,
            )
        })?;

        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&spec.args)
            .envs(&spec.env)
            .current_dir(&spec.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0)
            .kill_on_drop(false);
        let guard = ChildGuard {
            read_fd: self.read.as_raw_fd(),
            worker_pid: std::process::id() as libc::pid_t,
            max_fd: self.max_fd,
        };
        // SAFETY: the closure only makes async-signal-safe calls (raw syscalls and libc
        // wrappers around single syscalls) and does not allocate.
        unsafe {
            cmd.pre_exec(move || guard.install());
        }
        let child = cmd
            .spawn()
            .map_err(|e| context(format!("cannot launch `{program}`"), e))?;
        let pid = child.id().ok_or_else(|| {
            io::Error::other(format!("`{program}` exited before its pid was known"))
        })?;
        debug!(pid, program, cwd = %spec.cwd.display(), "launched child process");
        Ok(Child {
            inner: child,
            pid,
            program: spec.program.clone(),
            exit: None,
        })
    }
}

fn create_output(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    File::create(path)
}

/// What the pre-exec hook needs; plain data so that it is trivially Send + Sync.
#[derive(Clone, Copy)]
struct ChildGuard {
    read_fd: RawFd,
    worker_pid: libc::pid_t,
    max_fd: libc::c_int,
}

impl ChildGuard {
    /// Runs in the forked child before exec. Async-signal-safe calls only.
    fn install(self) -> io::Result<()> {
        // SAFETY: all calls are plain syscalls on values we own; see `watchdog`.
        unsafe {
            // std already did this for `process_group(0)`; it is idempotent.
            if libc::setpgid(0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != self.worker_pid {
                // The worker died before the death signal was armed.
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            let me = libc::getpid();
            match raw_fork() {
                -1 => Err(io::Error::last_os_error()),
                0 => watchdog(self.read_fd, me, self.max_fd),
                _ => Ok(()),
            }
        }
    }
}

/// `fork` without running `pthread_atfork` handlers (we are already in the child of a
/// multi-threaded process, where only async-signal-safe calls are allowed).
unsafe fn raw_fork() -> libc::c_long {
    let flags = libc::SIGCHLD as libc::c_ulong;
    let zero: libc::c_ulong = 0;
    // SAFETY: clone without CLONE_VM behaves like fork: the child gets a copy of memory.
    #[cfg(target_arch = "s390x")]
    let r = unsafe { libc::syscall(libc::SYS_clone, zero, flags, zero, zero, zero) };
    #[cfg(not(target_arch = "s390x"))]
    let r = unsafe { libc::syscall(libc::SYS_clone, flags, zero, zero, zero, zero) };
    r
}

/// The signal the kernel sends the watchdog when its parent (the child) dies. It is
/// blocked and read through a signalfd, so it wakes the watchdog instead of killing it.
const PARENT_DEATH_SIGNAL: libc::c_int = libc::SIGUSR1;

/// How long a watchdog whose child has died keeps waiting for the worker's end of the
/// death pipe to close before concluding that the worker is alive and exiting quietly.
///
/// When the worker is SIGKILLed, the child's own `PR_SET_PDEATHSIG` fires as soon as the
/// spawning *thread* is gone, which can be before the last worker thread has released the
/// pipe. A watchdog that simply died with the child would then lose the race and leave the
/// grandchildren behind.
const LINGER_MS: libc::c_int = 3000;

/// Reads from the death pipe: true on EOF (the worker is gone).
unsafe fn pipe_closed(read_fd: RawFd) -> bool {
    let mut buf = [0u8; 16];
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let err = io::Error::last_os_error().raw_os_error();
        if err != Some(libc::EINTR) && err != Some(libc::EAGAIN) {
            // Cannot watch any more; the child's own death signal remains.
            // SAFETY: _exit is always safe to call.
            unsafe { libc::_exit(1) };
        }
    }
    // n > 0: nobody writes to the pipe, but if someone did, keep waiting for EOF.
    n == 0
}

/// Kills the watchdog's process group: the child and all of its descendants that did not
/// leave the group, and the watchdog itself.
unsafe fn kill_group() -> ! {
    // SAFETY: plain syscalls.
    unsafe {
        libc::kill(0, libc::SIGKILL);
        libc::_exit(0)
    }
}

/// The watchdog: runs in the child's process group for as long as the child lives, and
/// SIGKILLs the group when the worker's end of the death pipe closes (the worker died).
///
/// It learns of its parent's (the child's) death through `PR_SET_PDEATHSIG`; it then
/// waits up to [`LINGER_MS`] for the pipe to close (the worker may be dying too, see
/// there) and otherwise exits, leaving any leftovers of a normally ended child alone.
unsafe fn watchdog(read_fd: RawFd, parent: libc::pid_t, max_fd: libc::c_int) -> ! {
    // SAFETY: only async-signal-safe calls on our own process and descriptors; never
    // returns.
    unsafe {
        let mut death = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut death);
        libc::sigaddset(&mut death, PARENT_DEATH_SIGNAL);
        libc::sigprocmask(libc::SIG_BLOCK, &death, std::ptr::null_mut());
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            PARENT_DEATH_SIGNAL as libc::c_ulong,
            0,
            0,
            0,
        );
        // Ignore every other catchable signal (this also replaces handlers inherited from
        // the worker): signals meant for the child's group, like the SIGTERM of a graceful
        // kill, must not take the watchdog down. Errors (SIGKILL, SIGSTOP, reserved
        // signals) are expected and ignored.
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        for sig in (1..32).filter(|s| *s != PARENT_DEATH_SIGNAL) {
            libc::sigaction(sig, &ign, std::ptr::null_mut());
        }
        // Close everything but the read end: in particular the worker's write end, std's
        // exec-status pipe (the spawning thread waits for its EOF) and the child's stdio.
        let close_range = |first: libc::c_int, last: libc::c_uint| {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_ulong,
                last as libc::c_ulong,
                0 as libc::c_ulong,
            ) == 0
        };
        let low_ok = read_fd == 0 || close_range(0, (read_fd - 1) as libc::c_uint);
        let high_ok = close_range(read_fd + 1, libc::c_uint::MAX);
        if !(low_ok && high_ok) {
            for fd in 0..max_fd.max(read_fd + 1) {
                if fd != read_fd {
                    libc::close(fd);
                }
            }
        }
        // The death signal stays pending (blocked) until read here. Without a signalfd,
        // fall back to checking the parent once a second.
        let sfd = libc::signalfd(-1, &death, libc::SFD_CLOEXEC);
        let mut fds = [
            libc::pollfd {
                fd: read_fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let (nfds, timeout) = if sfd >= 0 { (2, -1) } else { (1, 1000) };
        // The parent may have died before the death signal was armed.
        while libc::getppid() == parent {
            if libc::poll(fds.as_mut_ptr(), nfds, timeout) < 0 {
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                libc::_exit(1);
            }
            if fds[0].revents != 0 && pipe_closed(read_fd) {
                kill_group();
            }
            if nfds > 1 && fds[1].revents != 0 {
                let mut info = [0u8; 128]; // one signalfd_siginfo
                libc::read(sfd, info.as_mut_ptr().cast(), info.len());
            }
            // A PARENT_DEATH_SIGNAL sent by someone else, or the death of a non-main
            // thread of the child, leaves getppid() unchanged: keep watching.
        }
        // The child is gone. Was it because the worker died?
        let mut pipe = [fds[0]];
        loop {
            match libc::poll(pipe.as_mut_ptr(), 1, LINGER_MS) {
                0 => libc::_exit(0), // the worker is alive: the child just ended
                n if n > 0 && pipe_closed(read_fd) => kill_group(),
                n if n < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) => {
                    libc::_exit(1)
                }
                _ => {}
            }
        }
    }
}

/// Sends `sig` to the process group `pgid`. A group that no longer exists is not an error.
fn signal_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|p| *p > 1)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("refusing to signal process group {pgid}"),
            )
        })?;
    // SAFETY: kill has no memory-safety preconditions; pgid > 1 so this is never our own
    // group (0) or every process (-1).
    if unsafe { libc::kill(-pgid, sig) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(e)
    }
}

/// A running (or finished) child process. Dropping it before it has been seen to exit
/// SIGKILLs its process group.
pub struct Child {
    inner: tokio::process::Child,
    pid: u32,
    program: String,
    exit: Option<Exit>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("program", &self.program)
            .field("exit", &self.exit)
            .finish()
    }
}

impl Child {
    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How the child ended, if it has been seen to end.
    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    /// Waits for the process to exit. Cancel-safe; once it has exited, returns the same
    /// [`Exit`] again.
    pub async fn wait(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self.inner.wait().await?;
        Ok(self.record(status))
    }

    /// Checks without blocking whether the process has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        Ok(self.inner.try_wait()?.map(|s| self.record(s)))
    }

    fn record(&mut self, status: ExitStatus) -> Exit {
        let exit = Exit::from(status);
        self.exit = Some(exit);
        debug!(pid = self.pid, program = %self.program, code = ?exit.code, signal = ?exit.signal, "child exited");
        exit
    }

    /// SIGTERM to the child's whole process group, then SIGKILL to the group if the child
    /// has not exited after `grace`. Returns how it ended. If the child exits within the
    /// grace period, whatever is left of its group (descendants that ignored SIGTERM) is
    /// SIGKILLed too. Calling it on a child that has already exited just returns its exit.
    pub async fn kill(&mut self, grace: Duration) -> io::Result<Exit> {
        if let Some(exit) = self.try_wait()? {
            return Ok(exit);
        }
        debug!(pid = self.pid, program = %self.program, grace_ms = grace.as_millis() as u64, "sending SIGTERM to child process group");
        signal_group(self.pid, libc::SIGTERM)?;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(exit) => {
                let exit = exit?;
                // The group id cannot be reused while the group has members, so this only
                // reaches leftovers of this child's group.
                if let Err(e) = signal_group(self.pid, libc::SIGKILL) {
                    debug!(pid = self.pid, error = %e, "cannot SIGKILL leftovers of child process group");
                }
                Ok(exit)
            }
            Err(_) => {
                warn!(pid = self.pid, program = %self.program, grace_ms = grace.as_millis() as u64, "child did not exit after SIGTERM; sending SIGKILL");
                signal_group(self.pid, libc::SIGKILL)?;
                self.wait().await
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        if let Ok(Some(_)) = self.inner.try_wait() {
            return;
        }
        debug!(pid = self.pid, program = %self.program, "child handle dropped while running; killing its process group");
        if let Err(e) = signal_group(self.pid, libc::SIGKILL) {
            warn!(pid = self.pid, error = %e, "cannot kill dropped child's process group");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn spec(dir: &Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: BTreeMap::new(),
            cwd: dir.to_path_buf(),
            stdout: dir.join("stdout"),
            stderr: dir.join("stderr"),
        }
    }

    /// Polls `f` every 10 ms until it returns `Some`, panicking after `timeout`.
    async fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn eventually_blocking<T>(
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read_pid(path: &Path) -> Option<i32> {
        let s = std::fs::read_to_string(path).ok()?;
        if !s.ends_with('\n') {
            return None; // not completely written yet
        }
        s.trim().parse().ok()
    }

    /// True once `pid` no longer exists or is a zombie (dead, just not reaped yet: its
    /// new parent may be an init that reaps lazily).
    fn gone(pid: i32) -> bool {
        // SAFETY: signal 0 only checks for existence.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // The state follows the parenthesised command name.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            Err(_) => true,
        }
    }

    #[tokio::test]
    async fn exit_code_and_output_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut child = launcher
            .spawn(&spec(dir.path(), "echo out; echo err >&2; exit 3"))
            .expect("spawn");
        assert!(child.pid() > 1);
        let exit = child.wait().await.expect("wait");
        assert_eq!(
            exit,
            Exit {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(exit.status(), 3);
        assert!(!exit.success());
        assert_eq!(exit.describe(), "Command exited with code 3");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdout")).expect("stdout"),
            "out\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stderr")).expect("stderr"),
            "err\n"
        );
        // Waiting again returns the same result.
        assert_eq!(child.wait().await.expect("wait again"), exit);
        assert_eq!(
            child
                .kill(Duration::from_millis(10))
                .await
                .expect("kill after exit"),
            exit
        );
    }

    #[tokio::test]
    async fn env_cwd_and_stdin_are_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let cwd = dir.path().join("a/b/c");
        let mut s = spec(dir.path(), "echo \"$FLINT_TEST_VAR\"; pwd; cat; echo done");
        s.cwd = cwd.clone();
        s.stdout = dir.path().join("logs/stdout");
        s.env.insert("FLINT_TEST_VAR".into(), "hello world".into());
        let mut child = launcher.spawn(&s).expect("spawn");
        let exit = child.wait().await.expect("wait");
        assert!(exit.success(), "{exit:?}");
        let out = std::fs::read_to_string(&s.stdout).expect("stdout");
        let cwd = std::fs::canonicalize(&cwd).expect("canonicalize");
        assert_eq!(out, format!("hello world\n{}\ndone\n", cwd.display()));
        // The worker's own environment is inherited too.
        let mut s = spec(dir.path(), "echo \"$PATH\"");
        s.stdout = dir.path().join("path");
        launcher
            .spawn(&s)
            .expect("spawn")
            .wait()
            .await
            .expect("wait");
        let path = std::fs::read_to_string(&s.stdout).expect("stdout");
        assert_eq!(path.trim_end(), std::env::var("PATH").unwrap_or_default());
    }

    #[tokio::test]
    async fn spawn_failures_name_the_program() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut s = spec(dir.path(), "");
        s.program = "/nonexistent/flint-no-such-program".into();
        let e = launcher.spawn(&s).expect_err("must fail");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string().contains("/nonexistent/flint-no-such-program"),
            "{e}"
        );

        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        let mut s = spec(dir.path(), "true");
        s.cwd = file.join("sub");
        let e = launcher.spawn(&s).expect_err("must fail");
        assert!(e.to_string().contains("/bin/sh"), "{e}");
        assert!(e.to_string().contains("working directory"), "{e}");
    }

    #[tokio::test]
    async fn kill_escalates_to_sigkill_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut child = launcher
            .spawn(&spec(dir.path(), "trap '' TERM; echo > ready; sleep 100"))
            .expect("spawn");
        let ready = dir.path().join("ready");
        eventually("the trap", Duration::from_secs(10), || {
            ready.exists().then_some(())
        })
        .await;
        let started = Instant::now();
        let exit = child.kill(Duration::from_millis(200)).await.expect("kill");
        assert_eq!(
            exit,
            Exit {
                code: None,
                signal: Some(libc::SIGKILL)
            }
        );
        assert_eq!(exit.status(), 128 + 9);
        assert_eq!(exit.describe(), "Command killed by signal 9 (SIGKILL)");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn kill_uses_sigterm_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut s = spec(dir.path(), "");
        s.program = "sleep".into();
        s.args = vec!["100".into()];
        let mut child = launcher.spawn(&s).expect("spawn");
        let exit = child.kill(Duration::from_secs(10)).await.expect("kill");
        assert_eq!(
            exit,
            Exit {
                code: None,
                signal: Some(libc::SIGTERM)
            }
        );
        assert_eq!(exit.status(), 143);
    }

    #[tokio::test]
    async fn kill_reaches_grandchildren() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut child = launcher
            .spawn(&spec(dir.path(), "sleep 1000 & echo $! > pidfile; wait"))
            .expect("spawn");
        let pidfile = dir.path().join("pidfile");
        let grandchild = eventually("the pidfile", Duration::from_secs(10), || {
            read_pid(&pidfile)
        })
        .await;
        assert!(!gone(grandchild));
        let exit = child.kill(Duration::from_secs(5)).await.expect("kill");
        assert_eq!(exit.signal, Some(libc::SIGTERM));
        eventually("the grandchild to die", Duration::from_secs(5), || {
            gone(grandchild).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn dropping_a_running_child_kills_its_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let child = launcher
            .spawn(&spec(dir.path(), "sleep 1000 & echo $! > pidfile; wait"))
            .expect("spawn");
        let pid = child.pid() as i32;
        let pidfile = dir.path().join("pidfile");
        let grandchild = eventually("the pidfile", Duration::from_secs(10), || {
            read_pid(&pidfile)
        })
        .await;
        drop(child);
        eventually("the group to die", Duration::from_secs(5), || {
            (gone(pid) && gone(grandchild)).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn dropping_the_launcher_kills_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut child = launcher
            .spawn(&spec(dir.path(), "sleep 1000 & echo $! > pidfile; wait"))
            .expect("spawn");
        let pidfile = dir.path().join("pidfile");
        let grandchild = eventually("the pidfile", Duration::from_secs(10), || {
            read_pid(&pidfile)
        })
        .await;
        drop(launcher);
        let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .expect("child killed by its watchdog")
            .expect("wait");
        assert_eq!(exit.signal, Some(libc::SIGKILL));
        eventually("the grandchild to die", Duration::from_secs(5), || {
            gone(grandchild).then_some(())
        })
        .await;
    }

    /// Live (non-zombie) members of process group `pgid`.
    fn group_members(pgid: i32) -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                // After the command name: state, ppid, pgrp, ...
                let Some((_, rest)) = stat.rsplit_once(')') else {
                    return false;
                };
                let fields: Vec<&str> = rest.split_whitespace().collect();
                fields.len() > 2
                    && !matches!(fields[0], "Z" | "X")
                    && fields[2].parse::<i32>().ok() == Some(pgid)
            })
            .collect()
    }

    #[tokio::test]
    async fn watchdog_leaves_after_a_normal_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launcher = Launcher::new().expect("launcher");
        let mut child = launcher
            .spawn(&spec(dir.path(), "sleep 1000 & echo $! > pidfile"))
            .expect("spawn");
        let pgid = child.pid() as i32;
        assert!(child.wait().await.expect("wait").success());
        let grandchild = read_pid(&dir.path().join("pidfile")).expect("pidfile");
        // Only the watchdog and the grandchild are left; the watchdog goes after a while.
        eventually("the watchdog to exit", Duration::from_secs(15), || {
            (group_members(pgid) == [grandchild]).then_some(())
        })
        .await;
        // Leftovers of a child that ended on its own are not killed by the watchdog.
        assert!(!gone(grandchild));
        signal_group(pgid as u32, libc::SIGKILL).expect("clean up");
        eventually("the grandchild to die", Duration::from_secs(5), || {
            gone(grandchild).then_some(())
        })
        .await;
    }

    const FAKE_WORKER_ENV: &str = "FLINT_TEST_FAKE_WORKER";

    /// Plays a worker when re-executed by `children_die_with_a_sigkilled_worker`; does
    /// nothing in a normal test run.
    #[tokio::test]
    async fn fake_worker_entry() {
        let Ok(dir) = std::env::var(FAKE_WORKER_ENV) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let launcher = Launcher::new().expect("launcher");
        let script = format!(
            "sleep 1000 & echo $! > '{d}/grandchild'; echo $$ > '{d}/child'; wait",
            d = dir.display()
        );
        let _child = launcher.spawn(&spec(&dir, &script)).expect("spawn");
        std::fs::write(dir.join("ready"), "").expect("ready");
        std::future::pending::<()>().await;
    }

    /// Kills (and reaps) the fake worker even if the test fails halfway.
    struct KillOnDrop(std::process::Child);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn children_die_with_a_sigkilled_worker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("current_exe");
        let mut worker = KillOnDrop(
            std::process::Command::new(exe)
                .args([
                    "--exact",
                    "process::tests::fake_worker_entry",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(FAKE_WORKER_ENV, dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn the fake worker"),
        );
        let ready = dir.path().join("ready");
        let (child, grandchild) =
            eventually_blocking("the fake worker", Duration::from_secs(30), || {
                if let Ok(Some(status)) = worker.0.try_wait() {
                    panic!("the fake worker exited early: {status}");
                }
                if !ready.exists() {
                    return None;
                }
                // The script writes the pids on its own time.
                let child = read_pid(&dir.path().join("child"))?;
                let grandchild = read_pid(&dir.path().join("grandchild"))?;
                Some((child, grandchild))
            });
        assert!(!gone(child) && !gone(grandchild));
        worker.0.kill().expect("SIGKILL the fake worker");
        worker.0.wait().expect("reap the fake worker");
        eventually_blocking(
            "the child and grandchild to die",
            Duration::from_secs(5),
            || (gone(child) && gone(grandchild)).then_some(()),
        );
    }

    #[test]
    fn substitute_replaces_known_placeholders_only() {
        let vars = [("APP_ID", "app-1"), ("CORES", "4")];
        assert_eq!(
            substitute(
                "--app {{APP_ID}} --cores={{CORES}} {{APP_ID}}/{{UNKNOWN}}",
                &vars
            ),
            "--app app-1 --cores=4 app-1/{{UNKNOWN}}"
        );
        assert_eq!(substitute("{{{APP_ID}}}", &vars), "{app-1}");
        assert_eq!(substitute("{{ {{CORES}} }}", &vars), "{{ 4 }}");
        assert_eq!(substitute("no placeholders", &vars), "no placeholders");
        assert_eq!(substitute("{{APP_ID", &vars), "{{APP_ID");
        assert_eq!(substitute("", &vars), "");
        // Values are not re-scanned.
        assert_eq!(substitute("{{A}}", &[("A", "{{B}}"), ("B", "x")]), "{{B}}");
        assert_eq!(
            substitute("héllo {{A}} wörld", &[("A", "ü")]),
            "héllo ü wörld"
        );
    }

    #[test]
    fn exit_descriptions() {
        let term = Exit {
            code: None,
            signal: Some(libc::SIGTERM),
        };
        assert_eq!(term.describe(), "Command killed by signal 15 (SIGTERM)");
        assert_eq!(term.status(), 143);
        assert!(!term.success());
        let ok = Exit {
            code: Some(0),
            signal: None,
        };
        assert!(ok.success());
        assert_eq!(ok.status(), 0);
        assert_eq!(ok.to_string(), "Command exited with code 0");
        assert_eq!(
            Exit {
                code: None,
                signal: Some(63)
            }
            .describe(),
            "Command killed by signal 63"
        );
    }
}
