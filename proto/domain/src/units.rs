//! Spark's size and duration syntax (`512m`, `2g`, `60s`, `500ms`), shared by every binary.

use std::time::Duration;

/// Parses a memory amount as Spark's `-m/--memory` and `spark.*.memory` do, returning MiB.
/// Unlike Spark, a bare number (which Spark silently reads as *bytes*) is refused with
/// Spark's own explanation instead of producing a 0 MB worker.
pub fn parse_memory_mb(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid memory size '{s}': expected a number followed by k, m, g or t (e.g. 512m, 2g)"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid memory size '{s}': number too large"))?;
    let mb = match unit {
        "" => {
            return Err(format!(
                "invalid memory size '{s}': Memory is below 1MB, or missing a M/G at the end of the memory specification?"
            ));
        }
        "k" | "kb" => n / 1024,
        "m" | "mb" => n,
        "g" | "gb" => n.saturating_mul(1024),
        "t" | "tb" => n.saturating_mul(1024 * 1024),
        _ => {
            return Err(format!(
                "invalid memory size '{s}': unknown unit '{unit}' (use k, m, g or t)"
            ));
        }
    };
    if mb == 0 {
        return Err(format!("invalid memory size '{s}': Memory is below 1MB"));
    }
    Ok(mb)
}

/// Formats MiB the way Spark prints memory (`512.0 MiB`, `2.0 GiB`).
pub fn format_mb(mb: u64) -> String {
    if mb >= 1024 * 1024 {
        format!("{:.1} TiB", mb as f64 / (1024.0 * 1024.0))
    } else if mb >= 1024 {
        format!("{:.1} GiB", mb as f64 / 1024.0)
    } else {
        format!("{mb}.0 MiB")
    }
}

/// Parses a duration as Spark's time configs do. A bare number is in `default_unit_secs`
/// units (seconds for `spark.worker.timeout`) and may be fractional (`0.5`) so tests can
/// use sub-second timeouts.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 60s, 500ms or 0.5"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => n,
        "ms" => n / 1000.0,
        "us" => n / 1_000_000.0,
        "m" | "min" | "mins" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => return Err(format!("invalid duration '{s}': unknown unit '{other}'")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("invalid duration '{s}': out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Splits `spark://h1:7077,h2:7077` into `(host, port)` pairs.
pub fn parse_master_urls(url: &str) -> Result<Vec<(String, u16)>, String> {
    let rest = url
        .strip_prefix("spark://")
        .ok_or_else(|| format!("invalid master URL '{url}': must start with spark://"))?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim().trim_end_matches('/');
        let (host, port) = part
            .rsplit_once(':')
            .ok_or_else(|| format!("invalid master URL '{url}': '{part}' has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("invalid master URL '{url}': empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid master URL '{url}': bad port '{port}'"))?;
        out.push((host.to_owned(), port));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_strings() {
        assert_eq!(parse_memory_mb("512m"), Ok(512));
        assert_eq!(parse_memory_mb("2g"), Ok(2048));
        assert_eq!(parse_memory_mb("2G"), Ok(2048));
        assert_eq!(parse_memory_mb("1t"), Ok(1024 * 1024));
        assert_eq!(parse_memory_mb("2048k"), Ok(2));
        assert!(
            parse_memory_mb("1024")
                .unwrap_err()
                .contains("missing a M/G")
        );
        assert!(parse_memory_mb("12x").is_err());
        assert!(parse_memory_mb("").is_err());
        assert!(parse_memory_mb("0m").is_err());
        assert!(parse_memory_mb("-1g").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn master_urls() {
        assert_eq!(
            parse_master_urls("spark://a:7077,b:7078"),
            Ok(vec![("a".into(), 7077), ("b".into(), 7078)])
        );
        assert!(parse_master_urls("http://a:1").is_err());
        assert!(parse_master_urls("spark://a").is_err());
        assert!(parse_master_urls("spark://:7077").is_err());
    }
}
