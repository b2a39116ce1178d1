//! The Docker CLI, as the kubelet emulator drives it.

use std::process::{Command, Output, Stdio};

/// Runs `docker args...`; panics only if the client cannot be run at all.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"))
}

/// Runs docker and returns its trimmed stdout; panics with its stderr on failure.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container's output, stdout then stderr.
pub fn logs(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics unless a Docker engine answers (the container tests fail, they do not skip).
pub fn require_engine() {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "this test needs a Docker engine, and it does not answer (CI={}): {}",
            std::env::var("CI").unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "this test needs a Docker engine, and there is no docker client (CI={}): {e}",
            std::env::var("CI").unwrap_or_default()
        ),
    }
}

/// The host port in `docker port CONTAINER PORT/tcp`'s output (`127.0.0.1:32768`, one line
/// per address).
pub fn published_port(out: &str) -> Option<u16> {
    out.lines()
        .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_ports_are_read_from_dockers_output() {
        assert_eq!(published_port("127.0.0.1:32768"), Some(32768));
        assert_eq!(published_port("0.0.0.0:49153\n[::]:49153\n"), Some(49153));
        assert_eq!(published_port("[::1]:40000"), Some(40000));
        assert_eq!(published_port(""), None);
        assert_eq!(published_port("Error: No public port '8080/tcp'"), None);
    }
}
