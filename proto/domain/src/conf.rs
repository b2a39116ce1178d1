//! Spark's configuration sources: `spark-defaults.conf` (Java properties syntax) and
//! `-Dkey=value` options in `SPARK_MASTER_OPTS` / `SPARK_WORKER_OPTS`.

use std::collections::BTreeMap;

/// Parses Java-properties text: `key value`, `key=value` or `key: value` per line;
/// `#` and `!` start comments. Returns the pairs in file order.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(line.len());
        let key = line[..split].trim();
        let mut rest = line[split..].trim_start();
        if let Some(r) = rest.strip_prefix(['=', ':']) {
            rest = r.trim_start();
        }
        if key.is_empty() {
            return Err(format!("line {}: missing key in '{raw}'", n + 1));
        }
        out.push((key.to_owned(), rest.trim_end().to_owned()));
    }
    Ok(out)
}

/// Extracts `-Dkey=value` entries from a shell-style options string (SPARK_*_OPTS).
pub fn parse_java_opts(opts: &str) -> Vec<(String, String)> {
    opts.split_whitespace()
        .filter_map(|t| t.strip_prefix("-D"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// This machine's host name, as Spark's `Utils.localHostName` falls back to.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A port from the environment. Kubernetes injects `SPARK_MASTER_PORT=tcp://10.0.0.1:7077`
/// for a Service called spark-master (and likewise for spark-worker): such values are not
/// ours and are ignored, with the returned warning, instead of being fatal as in Spark.
pub fn env_port(
    env: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<(Option<u16>, Option<String>), String> {
    match env.get(key).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok((None, None)),
        Some(v) if v.contains("://") => Ok((
            None,
            Some(format!(
                "ignoring {key}={v}: a Kubernetes service link, not a port (set enableServiceLinks: false)"
            )),
        )),
        Some(v) => v
            .parse()
            .map(|p| (Some(p), None))
            .map_err(|_| format!("{key}: invalid port '{v}'")),
    }
}

/// Loads `spark.*` properties for a daemon: `-Dkey=value` options in `opts_var`
/// (`SPARK_MASTER_OPTS`, `SPARK_WORKER_OPTS`) win over the properties file, which defaults to
/// `$SPARK_CONF_DIR/spark-defaults.conf` when that exists.
pub fn load_daemon_conf(
    properties_file: Option<&std::path::Path>,
    env: &std::collections::HashMap<String, String>,
    opts_var: &str,
) -> Result<SparkConf, String> {
    let mut conf = SparkConf::new();
    if let Some(opts) = env.get(opts_var) {
        for (k, v) in parse_java_opts(opts) {
            conf.set(&k, &v);
        }
    }
    let file = match properties_file {
        Some(p) => Some(p.to_path_buf()),
        None => env
            .get("SPARK_CONF_DIR")
            .map(|d| std::path::PathBuf::from(d).join("spark-defaults.conf"))
            .filter(|p| p.is_file()),
    };
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read properties file {}: {e}", path.display()))?;
        for (k, v) in parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))? {
            if k.starts_with("spark.") {
                conf.set_if_missing(&k, &v);
            }
        }
    }
    Ok(conf)
}

/// A resolved set of `spark.*` properties with typed getters that report bad values.
#[derive(Clone, Debug, Default)]
pub struct SparkConf {
    props: BTreeMap<String, String>,
}

impl SparkConf {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a key unless it is already set (lower-precedence sources are added later).
    pub fn set_if_missing(&mut self, k: &str, v: &str) {
        self.props
            .entry(k.to_owned())
            .or_insert_with(|| v.to_owned());
    }

    pub fn set(&mut self, k: &str, v: &str) {
        self.props.insert(k.to_owned(), v.to_owned());
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.props.get(k).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.props.iter()
    }

    pub fn get_bool(&self, k: &str, default: bool) -> Result<bool, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(format!("{k}: expected true or false, got '{v}'")),
            },
        }
    }

    pub fn get_parsed<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{k}: invalid value '{v}'")),
        }
    }

    pub fn get_duration(
        &self,
        k: &str,
        default: std::time::Duration,
    ) -> Result<std::time::Duration, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => crate::units::parse_duration(v).map_err(|e| format!("{k}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_syntax() {
        let p = parse_properties(
            "# comment\n! other\nspark.master spark://a:7077\nspark.x=1\nspark.y : two words \n\n",
        )
        .expect("parses");
        assert_eq!(
            p,
            vec![
                ("spark.master".into(), "spark://a:7077".into()),
                ("spark.x".into(), "1".into()),
                ("spark.y".into(), "two words".into()),
            ]
        );
        assert!(parse_properties("=novalue").is_err());
    }

    #[test]
    fn java_opts() {
        assert_eq!(
            parse_java_opts("-Xmx1g -Dspark.worker.timeout=5 -Dspark.ui.reverseProxy=true"),
            vec![
                ("spark.worker.timeout".into(), "5".into()),
                ("spark.ui.reverseProxy".into(), "true".into())
            ]
        );
    }

    #[test]
    fn typed_getters() {
        let mut c = SparkConf::new();
        c.set("a", "true");
        c.set("b", "nope");
        c.set("t", "500ms");
        assert_eq!(c.get_bool("a", false), Ok(true));
        assert!(c.get_bool("b", false).is_err());
        assert_eq!(c.get_parsed::<u32>("missing", 7), Ok(7));
        assert!(c.get_parsed::<u32>("b", 7).is_err());
        assert_eq!(
            c.get_duration("t", std::time::Duration::ZERO),
            Ok(std::time::Duration::from_millis(500))
        );
    }
}
