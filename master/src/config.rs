//! `flint-master` options: command line, `SPARK_MASTER_*` environment, `SPARK_MASTER_OPTS`
//! `-D` options and the properties file, resolved with Spark's precedence. Resolution is
//! pure: the environment comes in as a map.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flint_domain::conf::{SparkConf, load_daemon_conf};
use tracing::warn;

use crate::core::CoreConfig;

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "flint-master",
    version,
    about = "Flint's standalone master (Spark standalone compatible)",
    disable_help_flag = true
)]
pub struct MasterArgs {
    /// Host name to advertise in spark:// URLs (binds 0.0.0.0) [env: SPARK_MASTER_HOST; default: this machine's host name]
    #[arg(short = 'h', long = "host", alias = "ip", short_alias = 'i')]
    pub host: Option<String>,
    /// Port for workers, applications and clients (0 = any free port) [env: SPARK_MASTER_PORT; default: 7077]
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Port for the web UI [env: SPARK_MASTER_WEBUI_PORT; default: 8080]
    #[arg(long)]
    pub webui_port: Option<u16>,
    /// Spark properties file [default: $SPARK_CONF_DIR/spark-defaults.conf if present]
    #[arg(long)]
    pub properties_file: Option<PathBuf>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Everything the master needs to start.
#[derive(Clone, Debug)]
pub struct MasterConfig {
    pub host: String,
    pub port: u16,
    pub webui_port: u16,
    pub conf: SparkConf,
    pub core: CoreConfig,
    pub artifacts: crate::artifacts::ArtifactStore,
}

fn env_port(env: &HashMap<String, String>, key: &str) -> Result<Option<u16>, String> {
    let (port, warning) = flint_domain::conf::env_port(env, key)?;
    if let Some(w) = warning {
        warn!("{w}");
    }
    Ok(port)
}

impl MasterConfig {
    pub fn resolve(args: &MasterArgs, env: &HashMap<String, String>) -> Result<Self, String> {
        let conf = load_daemon_conf(args.properties_file.as_deref(), env, "SPARK_MASTER_OPTS")?;
        let host = args
            .host
            .clone()
            .or_else(|| env.get("SPARK_MASTER_HOST").cloned())
            .or_else(|| env.get("SPARK_MASTER_IP").cloned())
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(flint_domain::conf::local_hostname);
        let port = match args.port {
            Some(p) => p,
            None => env_port(env, "SPARK_MASTER_PORT")?.unwrap_or(7077),
        };
        let webui_port = match args.webui_port {
            Some(p) => p,
            None => match env_port(env, "SPARK_MASTER_WEBUI_PORT")? {
                Some(p) => p,
                None => conf.get_parsed("spark.master.ui.port", 8080u16)?,
            },
        };
        let timeout = conf.get_duration("spark.worker.timeout", Duration::from_secs(60))?;
        if timeout.is_zero() {
            return Err("spark.worker.timeout must be positive".into());
        }
        let default_cores: i64 =
            conf.get_parsed("spark.deploy.defaultCores", i64::from(i32::MAX))?;
        if default_cores < 1 {
            return Err(format!(
                "spark.deploy.defaultCores must be positive, got {default_cores}"
            ));
        }
        let core = CoreConfig {
            master_url: format!("spark://{host}:{port}"),
            webui_url: format!("http://{host}:{webui_port}"),
            worker_timeout_ms: timeout.as_millis().max(1) as u64,
            dead_worker_persistence: conf.get_parsed("spark.dead.worker.persistence", 15u32)?,
            spread_out: conf.get_bool("spark.deploy.spreadOut", true)?,
            default_cores: u32::try_from(default_cores).unwrap_or(u32::MAX),
            max_executor_retries: conf.get_parsed("spark.deploy.maxExecutorRetries", 10i32)?,
            executor_healthy_after_ms: conf
                .get_duration(
                    "spark.deploy.maxExecutorRetries.resetAfter",
                    Duration::from_secs(5),
                )?
                .as_millis() as u64,
            retained_applications: conf
                .get_parsed("spark.deploy.retainedApplications", 200usize)?,
            retained_drivers: conf.get_parsed("spark.deploy.retainedDrivers", 200usize)?,
            seed: fastrand::u64(..),
        };
        let artifacts_dir = conf
            .get("spark.master.artifacts.dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("flint-artifacts"));
        let max_size = match conf.get("spark.master.artifacts.maxSize") {
            Some(v) => flint_domain::units::parse_memory_mb(v)
                .map_err(|e| format!("spark.master.artifacts.maxSize: {e}"))?
                .saturating_mul(1024 * 1024),
            None => 1024 * 1024 * 1024,
        };
        let artifacts = crate::artifacts::ArtifactStore::new(artifacts_dir.clone(), max_size)
            .map_err(|e| {
                format!(
                    "cannot use artifact directory {}: {e}",
                    artifacts_dir.display()
                )
            })?;
        Ok(Self {
            host,
            port,
            webui_port,
            conf,
            core,
            artifacts,
        })
    }

    /// Fixes the URLs once the real ports are known (port 0 binds any free port).
    pub fn with_bound_ports(mut self, port: u16, webui_port: u16) -> Self {
        self.port = port;
        self.webui_port = webui_port;
        self.core.master_url = format!("spark://{}:{port}", self.host);
        self.core.webui_url = format!("http://{}:{webui_port}", self.host);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_precedence() {
        let c = MasterConfig::resolve(&MasterArgs::default(), &env(&[("SPARK_MASTER_HOST", "m")]))
            .expect("ok");
        assert_eq!(c.core.master_url, "spark://m:7077");
        assert_eq!(c.webui_port, 8080);
        assert_eq!(c.core.worker_timeout_ms, 60_000);
        assert!(c.core.spread_out);
        let args = MasterArgs {
            host: Some("cli".into()),
            port: Some(1234),
            ..Default::default()
        };
        let c = MasterConfig::resolve(
            &args,
            &env(&[("SPARK_MASTER_HOST", "m"), ("SPARK_MASTER_PORT", "999")]),
        )
        .expect("ok");
        assert_eq!(c.core.master_url, "spark://cli:1234");
    }

    #[test]
    fn kubernetes_service_link_port_is_ignored() {
        let c = MasterConfig::resolve(
            &MasterArgs::default(),
            &env(&[
                ("SPARK_MASTER_HOST", "m"),
                ("SPARK_MASTER_PORT", "tcp://10.0.0.1:7077"),
            ]),
        )
        .expect("must not fail");
        assert_eq!(c.port, 7077);
    }

    #[test]
    fn master_opts_override_the_properties_file() {
        let dir = std::env::temp_dir().join(format!("flint-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("spark-defaults.conf");
        std::fs::write(
            &file,
            "spark.worker.timeout 5\nspark.deploy.spreadOut false\n",
        )
        .expect("write");
        let args = MasterArgs {
            properties_file: Some(file),
            ..Default::default()
        };
        let c = MasterConfig::resolve(
            &args,
            &env(&[
                ("SPARK_MASTER_HOST", "m"),
                ("SPARK_MASTER_OPTS", "-Dspark.worker.timeout=0.5"),
            ]),
        )
        .expect("ok");
        assert_eq!(c.core.worker_timeout_ms, 500);
        assert!(!c.core.spread_out);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_values_are_reported() {
        for (k, v) in [
            ("SPARK_MASTER_PORT", "abc"),
            ("SPARK_MASTER_OPTS", "-Dspark.deploy.spreadOut=maybe"),
            ("SPARK_MASTER_OPTS", "-Dspark.deploy.defaultCores=0"),
            ("SPARK_MASTER_OPTS", "-Dspark.worker.timeout=0"),
        ] {
            assert!(
                MasterConfig::resolve(&MasterArgs::default(), &env(&[(k, v)])).is_err(),
                "{k}={v} should be refused"
            );
        }
    }
}
