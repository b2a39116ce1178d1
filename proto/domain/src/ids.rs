//! Spark-style identifiers: `app-20261122040305-0000`, `driver-20261122040450-0001`.

/// `yyyyMMddHHmmss` (UTC) of a wall-clock time in milliseconds since the epoch.
pub fn timestamp(wall_ms: i64) -> String {
    let secs = wall_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `java.util.Date.toString` in UTC, as Spark's `/json` `submitdate` shows it:
/// `Sun Nov 22 04:03:05 UTC 2026`.
pub fn java_date(wall_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = wall_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {d:02} {:02}:{:02}:{:02} UTC {y}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub fn app_id(wall_ms: i64, n: u32) -> String {
    format!("app-{}-{n:04}", timestamp(wall_ms))
}

pub fn driver_id(wall_ms: i64, n: u32) -> String {
    format!("driver-{}-{n:04}", timestamp(wall_ms))
}

pub fn worker_id(wall_ms: i64, host: &str, port: u16) -> String {
    format!("worker-{}-{host}-{port}", timestamp(wall_ms))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_spark() {
        // 2026-11-22 04:03:05 UTC (the reference capture's app start).
        let t = 1_795_320_185_549;
        assert_eq!(timestamp(t), "20261122040305");
        assert_eq!(app_id(t, 0), "app-20261122040305-0000");
        assert_eq!(driver_id(t, 12), "driver-20261122040305-0012");
        assert_eq!(java_date(t), "Sun Nov 22 04:03:05 UTC 2026");
        assert_eq!(timestamp(0), "19700101000000");
        assert_eq!(
            worker_id(t, "127.0.0.1", 7078),
            "worker-20261122040305-127.0.0.1-7078"
        );
    }
}
