//! `flint-worker` options: command line, `SPARK_WORKER_*` environment, `SPARK_WORKER_OPTS`
//! and the properties file, resolved with Spark's precedence (pure; env passed in).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flint_domain::conf::{SparkConf, load_daemon_conf};
use flint_domain::units::{parse_duration, parse_master_urls, parse_memory_mb};
use tracing::warn;

use crate::resources;

#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "flint-worker",
    version,
    about = "Flint's standalone worker (Spark standalone compatible)",
    disable_help_flag = true
)]
pub struct WorkerArgs {
    /// Master URL(s), e.g. spark://spark-master:7077 or spark://h1:7077,h2:7077 [env: SPARK_MASTER_URL]
    pub master: Option<String>,
    /// Number of cores to offer [env: SPARK_WORKER_CORES; default: CPUs available to this process, cgroup-aware]
    #[arg(short = 'c', long)]
    pub cores: Option<String>,
    /// Memory to offer, e.g. 1000m or 2g [env: SPARK_WORKER_MEMORY; default: total minus 1 GiB, cgroup-aware]
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Directory for executor and driver working directories [env: SPARK_WORKER_DIR; default: ./work]
    #[arg(short = 'd', long)]
    pub work_dir: Option<PathBuf>,
    /// Host name to advertise [env: SPARK_LOCAL_HOSTNAME or SPARK_LOCAL_IP; default: this machine's host name]
    #[arg(short = 'h', long = "host", alias = "ip", short_alias = 'i')]
    pub host: Option<String>,
    /// Port of the worker's endpoint (executors' liveness link; 0 = any) [env: SPARK_WORKER_PORT; default: 0]
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// Port for the worker web UI [env: SPARK_WORKER_WEBUI_PORT; default: 8081]
    #[arg(long)]
    pub webui_port: Option<u16>,
    /// Spark properties file [default: $SPARK_CONF_DIR/spark-defaults.conf if present]
    #[arg(long)]
    pub properties_file: Option<PathBuf>,
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub master_url: String,
    pub masters: Vec<(String, u16)>,
    pub cores: u32,
    pub memory_mb: u64,
    pub work_dir: PathBuf,
    pub host: String,
    pub port: u16,
    pub webui_port: u16,
    /// How long a killed child gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Longest wait between two connection attempts.
    pub max_backoff: Duration,
    pub conf: SparkConf,
}

fn env_nonempty<'a>(env: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    env.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn env_port(env: &HashMap<String, String>, key: &str) -> Result<Option<u16>, String> {
    let (port, warning) = flint_domain::conf::env_port(env, key)?;
    if let Some(w) = warning {
        warn!("{w}");
    }
    Ok(port)
}

impl WorkerConfig {
    pub fn resolve(args: &WorkerArgs, env: &HashMap<String, String>) -> Result<Self, String> {
        let conf = load_daemon_conf(args.properties_file.as_deref(), env, "SPARK_WORKER_OPTS")?;
        let master_url = args
            .master
            .clone()
            .or_else(|| env_nonempty(env, "SPARK_MASTER_URL").map(str::to_owned))
            .ok_or("no master URL given (argument or SPARK_MASTER_URL), e.g. spark://spark-master:7077")?;
        let masters = parse_master_urls(&master_url)?;
        let cores = match args
            .cores
            .as_deref()
            .or_else(|| env_nonempty(env, "SPARK_WORKER_CORES"))
        {
            Some(c) => match c.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(format!(
                        "invalid number of cores '{c}': must be a positive integer"
                    ));
                }
            },
            None => resources::default_cores(),
        };
        let memory_mb = match args
            .memory
            .as_deref()
            .or_else(|| env_nonempty(env, "SPARK_WORKER_MEMORY"))
        {
            Some(m) => parse_memory_mb(m).map_err(|e| format!("worker memory: {e}"))?,
            None => resources::default_memory_mb(),
        };
        let work_dir = args
            .work_dir
            .clone()
            .or_else(|| env_nonempty(env, "SPARK_WORKER_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("work"));
        let host = args
            .host
            .clone()
            .or_else(|| env_nonempty(env, "SPARK_LOCAL_HOSTNAME").map(str::to_owned))
            .or_else(|| env_nonempty(env, "SPARK_LOCAL_IP").map(str::to_owned))
            .unwrap_or_else(flint_domain::conf::local_hostname);
        let port = match args.port {
            Some(p) => p,
            None => env_port(env, "SPARK_WORKER_PORT")?.unwrap_or(0),
        };
        let webui_port = match args.webui_port {
            Some(p) => p,
            None => match env_port(env, "SPARK_WORKER_WEBUI_PORT")? {
                Some(p) => p,
                None => conf.get_parsed("spark.worker.ui.port", 8081u16)?,
            },
        };
        let kill_grace = match conf.get("spark.worker.killGracePeriod") {
            Some(v) => {
                parse_duration(v).map_err(|e| format!("spark.worker.killGracePeriod: {e}"))?
            }
            None => Duration::from_secs(5),
        };
        let max_backoff = match conf.get("spark.worker.reconnect.maxBackoff") {
            Some(v) => {
                parse_duration(v).map_err(|e| format!("spark.worker.reconnect.maxBackoff: {e}"))?
            }
            None => Duration::from_secs(5),
        };
        Ok(Self {
            master_url,
            masters,
            cores,
            memory_mb,
            work_dir,
            host,
            port,
            webui_port,
            kill_grace,
            max_backoff,
            conf,
        })
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
    fn env_and_flags() {
        let c = WorkerConfig::resolve(
            &WorkerArgs::default(),
            &env(&[
                ("SPARK_MASTER_URL", "spark://spark-master:7077"),
                ("SPARK_WORKER_CORES", "3"),
                ("SPARK_WORKER_MEMORY", "1536m"),
                ("SPARK_WORKER_PORT", "tcp://10.1.2.3:7078"),
            ]),
        )
        .expect("ok");
        assert_eq!(c.masters, vec![("spark-master".to_string(), 7077)]);
        assert_eq!((c.cores, c.memory_mb, c.port), (3, 1536, 0));
        let args = WorkerArgs {
            master: Some("spark://a:1".into()),
            cores: Some("1".into()),
            memory: Some("2g".into()),
            ..Default::default()
        };
        let c = WorkerConfig::resolve(&args, &env(&[("SPARK_WORKER_CORES", "3")])).expect("ok");
        assert_eq!((c.cores, c.memory_mb), (1, 2048));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let base = [("SPARK_MASTER_URL", "spark://m:7077")];
        for (k, v, needle) in [
            ("SPARK_WORKER_MEMORY", "1024", "missing a M/G"),
            ("SPARK_WORKER_CORES", "0", "positive integer"),
            ("SPARK_WORKER_CORES", "-2", "positive integer"),
            ("SPARK_MASTER_URL", "http://m:7077", "spark://"),
        ] {
            let mut e = env(&base);
            e.insert(k.into(), v.into());
            let err = WorkerConfig::resolve(&WorkerArgs::default(), &e).expect_err(v);
            assert!(err.contains(needle), "{err}");
        }
        assert!(WorkerConfig::resolve(&WorkerArgs::default(), &env(&[])).is_err());
    }
}
