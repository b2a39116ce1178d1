//! Log reads relayed by the master (`flint-submit logs`, `--wait`): the same reader and
//! checks as the worker's log pages.

use std::path::Path;

use flint_domain::types::{LogRequest, LogSlice};

use crate::web::logs::{LogError, LogQuery, read};

fn message(e: LogError) -> String {
    match e {
        LogError::BadRequest(m) | LogError::NotFound(m) | LogError::Io(m) => m,
    }
}

/// Reads the slice a master relays a request for, with the same checks as the log pages
/// (plain id components, the resolved file inside the work dir).
pub fn read_log(work_dir: &Path, req: &LogRequest) -> Result<LogSlice, String> {
    let q = LogQuery::from_request(req).map_err(message)?;
    let s = read(work_dir, &q).map_err(message)?;
    Ok(LogSlice {
        data: s.data,
        offset: s.start,
        total_size: s.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flint_domain::types::{DriverId, LogTarget, LogType};

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
            assert!(read_log(dir.path(), &r).is_err(), "{bad}");
        }
    }
}
