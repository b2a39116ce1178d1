//! Default worker cores and memory, computed as Spark does but container-aware: cgroup
//! (v1 and v2) CPU quotas and memory limits are honoured.

use std::path::{Component, Path, PathBuf};

use tracing::{debug, warn};

const MIB: u64 = 1024 * 1024;

/// Limits at or above this many bytes (1 EiB) mean "no limit" (cgroup v1 reports
/// `9223372036854771712` when unlimited).
const NO_LIMIT_BYTES: u64 = 1 << 60;

/// What to assume when the machine's memory cannot be determined at all.
const FALLBACK_MEMORY_MB: u64 = 1024;

/// CPUs available to this process: honours the cgroup CPU quota (cgroup v2 `cpu.max`, v1
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us`, rounded up, at least 1) and the affinity mask
/// (`std::thread::available_parallelism`), whichever is smaller.
pub fn default_cores() -> u32 {
    let affinity = std::thread::available_parallelism()
        .ok()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    default_cores_in(Path::new("/"), affinity)
}

/// Spark's default worker memory: total memory minus 1 GiB, where total is the smaller of
/// `/proc/meminfo`'s MemTotal and the cgroup memory limit (v2 `memory.max` of the
/// process's own cgroup and its ancestors, or v1 `memory.limit_in_bytes`). Unlike Spark,
/// never more than the total: see [`memory_default_from_total`].
pub fn default_memory_mb() -> u64 {
    default_memory_mb_in(Path::new("/"))
}

/// [`default_cores`] with `root` in place of `/` and the affinity-mask CPU count given.
fn default_cores_in(root: &Path, affinity: Option<u32>) -> u32 {
    let quota = cgroup_cpu_quota(root);
    let cores = cores_from(quota, affinity);
    debug!(?quota, ?affinity, cores, "default worker cores");
    cores
}

/// [`default_memory_mb`] with `root` in place of `/`.
fn default_memory_mb_in(root: &Path) -> u64 {
    let meminfo_mb = read(&root.join("proc/meminfo")).and_then(|s| parse_meminfo_total_mb(&s));
    let cgroup_mb = cgroup_memory_limit(root).map(|b| b / MIB);
    let total_mb = match (meminfo_mb, cgroup_mb) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    };
    match total_mb {
        Some(total_mb) => {
            let mb = memory_default_from_total(total_mb);
            debug!(
                ?meminfo_mb,
                ?cgroup_mb,
                total_mb,
                memory_mb = mb,
                "default worker memory"
            );
            mb
        }
        None => {
            warn!(
                memory_mb = FALLBACK_MEMORY_MB,
                "cannot determine the machine's memory; using a default"
            );
            FALLBACK_MEMORY_MB
        }
    }
}

/// Spark's rule — total minus 1 GiB — except that it never exceeds the total: when total
/// minus 1 GiB would be below half of the total, half of the total is used instead. At
/// least 1.
fn memory_default_from_total(total_mb: u64) -> u64 {
    total_mb.saturating_sub(1024).max(total_mb / 2).max(1)
}

/// Rounds a fractional CPU quota up (at least 1) and takes the smaller of it and the
/// affinity count; 1 if neither is known.
fn cores_from(quota: Option<f64>, affinity: Option<u32>) -> u32 {
    // `as` saturates for out-of-range floats.
    let quota = quota.map(|q| (q.ceil() as u32).max(1));
    let cores = match (quota, affinity) {
        (Some(q), Some(a)) => q.min(a),
        (q, a) => q.or(a).unwrap_or(1),
    };
    cores.max(1)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The smallest CPU quota (in CPUs) found for this process's cgroup or its ancestors.
fn cgroup_cpu_quota(root: &Path) -> Option<f64> {
    let proc_cgroup = read(&root.join("proc/self/cgroup")).unwrap_or_default();
    let mut quotas = Vec::new();
    let v2 = root.join("sys/fs/cgroup");
    for dir in cgroup_dirs(&v2, cgroup_v2_path(&proc_cgroup).as_deref()) {
        quotas.extend(read(&dir.join("cpu.max")).and_then(|s| parse_cpu_max(&s)));
    }
    let v1_path = cgroup_v1_path(&proc_cgroup, "cpu");
    for mount in ["sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"] {
        for dir in cgroup_dirs(&root.join(mount), v1_path.as_deref()) {
            if let (Some(q), Some(p)) = (
                read(&dir.join("cpu.cfs_quota_us")),
                read(&dir.join("cpu.cfs_period_us")),
            ) {
                quotas.extend(parse_cfs_quota(&q, &p));
            }
        }
    }
    quotas.into_iter().reduce(f64::min)
}

/// The smallest memory limit (bytes) found for this process's cgroup or its ancestors.
fn cgroup_memory_limit(root: &Path) -> Option<u64> {
    let proc_cgroup = read(&root.join("proc/self/cgroup")).unwrap_or_default();
    let mut limits = Vec::new();
    let v2 = root.join("sys/fs/cgroup");
    for dir in cgroup_dirs(&v2, cgroup_v2_path(&proc_cgroup).as_deref()) {
        limits.extend(read(&dir.join("memory.max")).and_then(|s| parse_memory_max(&s)));
    }
    let v1 = root.join("sys/fs/cgroup/memory");
    for dir in cgroup_dirs(&v1, cgroup_v1_path(&proc_cgroup, "memory").as_deref()) {
        limits.extend(read(&dir.join("memory.limit_in_bytes")).and_then(|s| parse_memory_max(&s)));
    }
    limits.into_iter().min()
}

/// The directories under the cgroup mount `mount` for `cgroup` and each of its ancestors,
/// down to the mount itself. The mount root is always included: inside a container the
/// process's own cgroup is often mounted there while /proc/self/cgroup shows a host path.
fn cgroup_dirs(mount: &Path, cgroup: Option<&str>) -> Vec<PathBuf> {
    let cgroup = Path::new(cgroup.unwrap_or("/"));
    if cgroup.components().any(|c| c == Component::ParentDir) {
        return vec![mount.to_path_buf()];
    }
    let mut dirs: Vec<PathBuf> = cgroup
        .ancestors()
        .map(|a| mount.join(a.strip_prefix("/").unwrap_or(a)))
        .collect();
    if !dirs.iter().any(|d| d == mount) {
        dirs.push(mount.to_path_buf());
    }
    dirs
}

/// cgroup v2 `cpu.max` ("$MAX $PERIOD") as a number of CPUs; `None` for "max" (no limit)
/// or anything unparsable.
fn parse_cpu_max(s: &str) -> Option<f64> {
    let mut it = s.split_whitespace();
    let quota = it.next()?;
    if quota == "max" {
        return None;
    }
    let quota: u64 = quota.parse().ok()?;
    let period: u64 = match it.next() {
        Some(p) => p.parse().ok()?,
        None => 100_000,
    };
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` as a number of CPUs; `None` when the
/// quota is -1 (no limit) or anything is unparsable.
fn parse_cfs_quota(quota: &str, period: &str) -> Option<f64> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// `MemTotal` from /proc/meminfo, in MiB.
fn parse_meminfo_total_mb(s: &str) -> Option<u64> {
    let rest = s.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let mut it = rest.split_whitespace();
    let value: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(value / 1024),
        Some(_) => None,
    }
}

/// A cgroup memory limit in bytes (v2 `memory.max` or v1 `memory.limit_in_bytes`);
/// `None` for "max", zero, absurdly large values (no limit) or anything unparsable.
fn parse_memory_max(s: &str) -> Option<u64> {
    let bytes: u64 = s.trim().parse().ok()?;
    (bytes > 0 && bytes < NO_LIMIT_BYTES).then_some(bytes)
}

/// The process's cgroup v2 path: the `0::/some/path` line of /proc/self/cgroup.
fn cgroup_v2_path(proc_self_cgroup: &str) -> Option<String> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        match (f.next(), f.next(), f.next()) {
            (Some("0"), Some(""), Some(path)) if !path.is_empty() => Some(path.to_owned()),
            _ => None,
        }
    })
}

/// The process's cgroup v1 path for `controller`, e.g. `4:memory:/docker/abc` or
/// `3:cpu,cpuacct:/docker/abc`.
fn cgroup_v1_path(proc_self_cgroup: &str, controller: &str) -> Option<String> {
    proc_self_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        match (f.next(), f.next(), f.next()) {
            (Some(id), Some(ctrls), Some(path))
                if id != "0" && !path.is_empty() && ctrls.split(',').any(|c| c == controller) =>
            {
                Some(path.to_owned())
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    fn write(root: &Path, rel: &str, content: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    fn meminfo(total_kb: u64) -> String {
        format!(
            "MemTotal:       {total_kb} kB\nMemFree:         1234 kB\nMemAvailable:   5678 kB\n"
        )
    }

    #[test]
    fn cpu_max() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("200000 100000"), Some(2.0));
        assert_eq!(parse_cpu_max("50000"), Some(0.5));
        assert_eq!(parse_cpu_max("0 100000"), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("garbage"), None);
    }

    #[test]
    fn cfs_quota() {
        assert_eq!(parse_cfs_quota("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs_quota("250000\n", "100000\n"), Some(2.5));
        assert_eq!(parse_cfs_quota("x", "100000"), None);
        assert_eq!(parse_cfs_quota("100000", "0"), None);
    }

    #[test]
    fn meminfo_total() {
        assert_eq!(parse_meminfo_total_mb(&meminfo(24_684_084)), Some(24_105));
        assert_eq!(
            parse_meminfo_total_mb("MemFree: 1 kB\nMemTotal: 2097152 kB\n"),
            Some(2048)
        );
        assert_eq!(parse_meminfo_total_mb("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: lots kB\n"), None);
        assert_eq!(parse_meminfo_total_mb("MemTotal: 1024 MB\n"), None);
    }

    #[test]
    fn memory_max() {
        assert_eq!(parse_memory_max("max\n"), None);
        assert_eq!(parse_memory_max("2147483648\n"), Some(2 * GIB));
        assert_eq!(parse_memory_max("9223372036854771712\n"), None);
        assert_eq!(parse_memory_max("18446744073709551615"), None);
        assert_eq!(parse_memory_max("0"), None);
        assert_eq!(parse_memory_max(""), None);
    }

    #[test]
    fn cgroup_paths() {
        let v2 = "0::/kubepods.slice/pod1/cri-containerd-abc.scope\n";
        assert_eq!(
            cgroup_v2_path(v2).as_deref(),
            Some("/kubepods.slice/pod1/cri-containerd-abc.scope")
        );
        assert_eq!(cgroup_v2_path("0::/\n").as_deref(), Some("/"));
        let v1 = "9:name=systemd:/\n4:memory:/docker/abc\n2:cpuacct:/\n1:cpu,cpuacct:/docker/abc\n0::/\n";
        assert_eq!(cgroup_v2_path(v1).as_deref(), Some("/"));
        assert_eq!(cgroup_v1_path(v1, "memory").as_deref(), Some("/docker/abc"));
        assert_eq!(cgroup_v1_path(v1, "cpu").as_deref(), Some("/docker/abc"));
        assert_eq!(cgroup_v1_path(v1, "pids"), None);
        assert_eq!(cgroup_v2_path("4:memory:/docker/abc\n"), None);
        assert_eq!(cgroup_v2_path(""), None);
        // Paths may contain colons.
        assert_eq!(cgroup_v2_path("0::/a:b\n").as_deref(), Some("/a:b"));
    }

    #[test]
    fn cgroup_dirs_walk_up_to_the_mount() {
        let m = Path::new("/sys/fs/cgroup");
        assert_eq!(
            cgroup_dirs(m, Some("/a/b")),
            vec![m.join("a/b"), m.join("a"), m.to_path_buf()]
        );
        assert_eq!(cgroup_dirs(m, Some("/")), vec![m.to_path_buf()]);
        assert_eq!(cgroup_dirs(m, None), vec![m.to_path_buf()]);
        assert_eq!(cgroup_dirs(m, Some("/../etc")), vec![m.to_path_buf()]);
    }

    #[test]
    fn memory_from_total() {
        assert_eq!(memory_default_from_total(16_384), 15_360);
        assert_eq!(memory_default_from_total(4096), 3072);
        assert_eq!(memory_default_from_total(2048), 1024);
        assert_eq!(memory_default_from_total(1500), 750);
        assert_eq!(memory_default_from_total(512), 256);
        assert_eq!(memory_default_from_total(1), 1);
        assert_eq!(memory_default_from_total(0), 1);
    }

    #[test]
    fn cores_rounding() {
        assert_eq!(cores_from(Some(1.5), Some(8)), 2);
        assert_eq!(cores_from(Some(0.1), Some(8)), 1);
        assert_eq!(cores_from(Some(16.0), Some(8)), 8);
        assert_eq!(cores_from(None, Some(8)), 8);
        assert_eq!(cores_from(Some(3.0), None), 3);
        assert_eq!(cores_from(None, None), 1);
        assert_eq!(cores_from(Some(1e30), Some(4)), 4);
    }

    #[test]
    fn cgroup_v2_limits_of_the_process_and_its_ancestors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
        write(root, "proc/meminfo", &meminfo(16 * 1024 * 1024));
        write(root, "sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max\n");
        write(
            root,
            "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max",
            "max 100000\n",
        );
        write(
            root,
            "sys/fs/cgroup/kubepods/pod1/memory.max",
            &format!("{}\n", 3 * GIB),
        );
        write(
            root,
            "sys/fs/cgroup/kubepods/memory.max",
            &format!("{}\n", 8 * GIB),
        );
        write(root, "sys/fs/cgroup/kubepods/cpu.max", "250000 100000\n");
        assert_eq!(default_memory_mb_in(root), 2048);
        assert_eq!(default_cores_in(root, Some(8)), 3);
        assert_eq!(default_cores_in(root, Some(2)), 2);
        assert_eq!(default_cores_in(root, None), 3);
    }

    #[test]
    fn cgroup_v2_namespaced_container() {
        // With a cgroup namespace the process sees itself at the root of the mount.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "proc/self/cgroup", "0::/\n");
        write(root, "proc/meminfo", &meminfo(64 * 1024 * 1024));
        write(
            root,
            "sys/fs/cgroup/memory.max",
            &format!("{}\n", 1536 * MIB),
        );
        write(root, "sys/fs/cgroup/cpu.max", "50000 100000\n");
        assert_eq!(default_memory_mb_in(root), 768);
        assert_eq!(default_cores_in(root, Some(16)), 1);
    }

    #[test]
    fn cgroup_v1_limits_at_the_mount_root() {
        // Inside a v1 container /proc/self/cgroup shows the host path, which does not
        // exist in the container's mount; the container's own cgroup is the mount root.
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(
            root,
            "proc/self/cgroup",
            "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n",
        );
        write(root, "proc/meminfo", &meminfo(16 * 1024 * 1024));
        write(
            root,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            &format!("{}\n", 3 * GIB),
        );
        write(
            root,
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
            "150000\n",
        );
        write(
            root,
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us",
            "100000\n",
        );
        assert_eq!(default_memory_mb_in(root), 2048);
        assert_eq!(default_cores_in(root, Some(8)), 2);
    }

    #[test]
    fn cgroup_v1_nested_path_and_unlimited_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "proc/self/cgroup", "4:memory:/a/b\n1:cpu:/a/b\n");
        write(root, "proc/meminfo", &meminfo(4 * 1024 * 1024));
        write(
            root,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(
            root,
            "sys/fs/cgroup/memory/a/memory.limit_in_bytes",
            &format!("{}\n", 2 * GIB),
        );
        write(
            root,
            "sys/fs/cgroup/memory/a/b/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
        write(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
        write(root, "sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us", "400000\n");
        write(root, "sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us", "100000\n");
        assert_eq!(default_memory_mb_in(root), 1024);
        assert_eq!(default_cores_in(root, Some(8)), 4);
    }

    #[test]
    fn no_cgroup_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(root, "proc/self/cgroup", "4:memory:/x\n1:cpu:/x\n0::/\n");
        write(root, "proc/meminfo", &meminfo(8 * 1024 * 1024));
        write(
            root,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
        write(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
        assert_eq!(default_memory_mb_in(root), 7168);
        assert_eq!(default_cores_in(root, Some(6)), 6);
    }

    #[test]
    fn nothing_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(default_memory_mb_in(dir.path()), FALLBACK_MEMORY_MB);
        assert_eq!(default_cores_in(dir.path(), None), 1);
        assert_eq!(default_cores_in(dir.path(), Some(3)), 3);
    }

    #[test]
    fn this_machine() {
        assert!(default_cores() >= 1);
        let mb = default_memory_mb();
        assert!(mb >= 1);
        if let Some(total) =
            read(Path::new("/proc/meminfo")).and_then(|s| parse_meminfo_total_mb(&s))
        {
            assert!(mb <= total);
        }
    }
}
