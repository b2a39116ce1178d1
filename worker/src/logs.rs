//! Reads slices of executors' and drivers' stdout/stderr from the work dir. Only files of
//! the form `<work-dir>/<app-id>/<executor-id>/<type>` or `<work-dir>/<driver-id>/<type>`
//! can be read: ids are checked so no path ever leaves the work dir.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flint_proto::types::{LogRequest, LogSlice, LogTarget};

fn safe_component(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s)
    } else {
        Err(format!("invalid id '{s}'"))
    }
}

/// The log file a request names, always inside `work_dir`.
pub fn log_path(work_dir: &Path, req: &LogRequest) -> Result<PathBuf, String> {
    let dir = match &req.target {
        LogTarget::Driver(d) => work_dir.join(safe_component(d.as_str())?),
        LogTarget::Executor(a, e) => work_dir
            .join(safe_component(a.as_str())?)
            .join(e.to_string()),
    };
    Ok(dir.join(req.log_type.as_str()))
}

pub fn read_log(work_dir: &Path, req: &LogRequest) -> Result<LogSlice, String> {
    let path = log_path(work_dir, req)?;
    let mut f = std::fs::File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no {} log yet", req.log_type.as_str()),
        _ => format!("cannot read log: {e}"),
    })?;
    let total = f.metadata().map_err(|e| e.to_string())?.len();
    let start = match req.offset {
        Some(o) => o.min(total),
        None => total.saturating_sub(req.max_bytes),
    };
    let len = req.max_bytes.min(total - start);
    f.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut data = vec![0u8; len as usize];
    f.read_exact(&mut data).map_err(|e| e.to_string())?;
    Ok(LogSlice {
        data,
        offset: start,
        total_size: total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flint_proto::types::{DriverId, LogType};

    fn req(target: LogTarget, offset: Option<u64>, max: u64) -> LogRequest {
        LogRequest {
            target,
            log_type: LogType::Stdout,
            offset,
            max_bytes: max,
        }
    }

    #[test]
    fn reads_slices_and_tails() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("driver-1")).expect("mkdir");
        std::fs::write(dir.path().join("driver-1/stdout"), b"hello world").expect("write");
        let d = LogTarget::Driver(DriverId("driver-1".into()));
        let s = read_log(dir.path(), &req(d.clone(), Some(6), 100)).expect("read");
        assert_eq!(
            (s.data.as_slice(), s.offset, s.total_size),
            (&b"world"[..], 6, 11)
        );
        let s = read_log(dir.path(), &req(d.clone(), None, 5)).expect("tail");
        assert_eq!((s.data.as_slice(), s.offset), (&b"world"[..], 6));
        let s = read_log(dir.path(), &req(d, Some(50), 5)).expect("past the end");
        assert!(s.data.is_empty());
    }

    #[test]
    fn refuses_paths_outside_the_work_dir() {
        let dir = tempfile::tempdir().expect("tmp");
        for bad in ["..", "../etc", "a/b", ""] {
            let r = req(LogTarget::Driver(DriverId(bad.into())), None, 5);
            assert!(log_path(dir.path(), &r).is_err(), "{bad}");
        }
    }
}
