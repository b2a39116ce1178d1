//! The runtime's configuration, resolved from the environment flint-submit (driver) or the
//! worker (executor) sets. Pure functions of an environment map, so they are unit-tested
//! without touching the process environment.

use std::collections::HashMap;
use std::time::Duration;

use flint_domain::conf::SparkConf;
use flint_domain::types::{AppId, ExecutorId};
use flint_domain::units::parse_memory_mb;

pub const NO_MASTER: &str =
    "no master URL: run with flint-submit --master spark://host:7077 or set FLINT_MASTER_URL";

/// Which side of the application this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Driver,
    Executor,
}

/// `FLINT_ROLE=executor` makes an executor; anything else (unset, `driver`) a driver.
pub fn role(env: &HashMap<String, String>) -> Role {
    match env.get("FLINT_ROLE").map(String::as_str) {
        Some("executor") => Role::Executor,
        _ => Role::Driver,
    }
}

/// Spark's dynamic allocation settings (`spark.dynamicAllocation.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicAllocation {
    pub min_executors: u32,
    pub max_executors: u32,
    pub initial_executors: u32,
    /// `spark.dynamicAllocation.executorIdleTimeout` (60 s).
    pub idle_timeout: Duration,
}

/// The driver's settings.
#[derive(Clone, Debug)]
pub struct DriverConf {
    pub master_url: String,
    pub app_name: String,
    pub user: String,
    /// Every `spark.*` property of `FLINT_CONF`.
    pub props: SparkConf,
    /// `spark.executor.cores`; unset = one executor per worker with all its granted cores.
    pub executor_cores: Option<u32>,
    /// `spark.executor.memory` (default 1g), MiB.
    pub executor_memory_mb: u64,
    /// `spark.cores.max`.
    pub cores_max: Option<u32>,
    /// `spark.task.cpus` (1).
    pub task_cpus: u32,
    /// `spark.task.maxFailures` (4).
    pub max_failures: u32,
    /// `spark.driver.host`: what executors dial (default `FLINT_HOSTNAME`, else this host's name).
    pub driver_host: String,
    /// `spark.driver.port` (0: any free port).
    pub driver_port: u16,
    pub dynamic_allocation: Option<DynamicAllocation>,
    /// `spark.flint.executor.binary`: how executors get this program.
    pub executor_binary: ExecutorBinary,
    /// `FLINT_APP_RESOURCE`: where a cluster-mode driver's own binary came from (set by the
    /// worker), reused for its executors.
    pub app_resource: Option<String>,
}

/// How executors get the application's binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorBinary {
    /// `ship` (default): the binary the driver itself was fetched from, or else this
    /// binary uploaded to the master (SHA-256 addressed, cached by each worker).
    Ship,
    /// `local`: this binary's absolute path, for workers that share the driver's filesystem.
    Local,
}

/// Parses `FLINT_CONF`: `key=value` lines; blank lines and `#` comments are skipped.
pub fn parse_flint_conf(text: &str) -> Result<SparkConf, String> {
    let mut conf = SparkConf::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => conf.set(k.trim(), v.trim()),
            _ => {
                return Err(format!(
                    "FLINT_CONF line {}: expected key=value, got '{line}'",
                    n + 1
                ));
            }
        }
    }
    Ok(conf)
}

fn positive(conf: &SparkConf, key: &str) -> Result<Option<u32>, String> {
    match conf.get(key) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{key}: expected a positive number, got '{v}'")),
        },
    }
}

pub use flint_domain::conf::local_hostname;

impl DriverConf {
    /// Reads `FLINT_MASTER_URL`, `FLINT_APP_NAME`, `FLINT_CONF` and `FLINT_HOSTNAME`.
    /// `default_name` (the name given to `App::new`) is used when neither
    /// `FLINT_APP_NAME` nor `spark.app.name` is set.
    pub fn from_env(env: &HashMap<String, String>, default_name: &str) -> Result<Self, String> {
        let props = parse_flint_conf(env.get("FLINT_CONF").map_or("", String::as_str))?;
        let nonempty = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let master_url = nonempty("FLINT_MASTER_URL")
            .or_else(|| {
                props
                    .get("spark.master")
                    .filter(|m| m.starts_with("spark://"))
            })
            .ok_or_else(|| NO_MASTER.to_owned())?
            .to_owned();
        let app_name = nonempty("FLINT_APP_NAME")
            .or_else(|| props.get("spark.app.name"))
            .unwrap_or(default_name)
            .to_owned();
        let executor_cores = positive(&props, "spark.executor.cores")?;
        let executor_memory_mb = match props.get("spark.executor.memory") {
            None => 1024,
            Some(m) => parse_memory_mb(m).map_err(|e| format!("spark.executor.memory: {e}"))?,
        };
        let cores_max = positive(&props, "spark.cores.max")?;
        let task_cpus = positive(&props, "spark.task.cpus")?.unwrap_or(1);
        let max_failures = positive(&props, "spark.task.maxFailures")?.unwrap_or(4);
        if let Some(c) = executor_cores
            && task_cpus > c
        {
            return Err(format!(
                "spark.task.cpus ({task_cpus}) must be <= spark.executor.cores ({c})"
            ));
        }
        let driver_host = props
            .get("spark.driver.host")
            .map(str::to_owned)
            .or_else(|| nonempty("FLINT_HOSTNAME").map(str::to_owned))
            .unwrap_or_else(local_hostname);
        let driver_port = props.get_parsed::<u16>("spark.driver.port", 0)?;
        let dynamic_allocation = if props.get_bool("spark.dynamicAllocation.enabled", false)? {
            let min_executors = props.get_parsed("spark.dynamicAllocation.minExecutors", 0u32)?;
            let max_executors =
                props.get_parsed("spark.dynamicAllocation.maxExecutors", u32::MAX)?;
            let initial_executors = props
                .get_parsed("spark.dynamicAllocation.initialExecutors", min_executors)?
                .max(min_executors);
            if min_executors > max_executors {
                return Err(format!(
                    "spark.dynamicAllocation.minExecutors ({min_executors}) must be <= spark.dynamicAllocation.maxExecutors ({max_executors})"
                ));
            }
            Some(DynamicAllocation {
                min_executors,
                max_executors,
                initial_executors: initial_executors.min(max_executors),
                idle_timeout: props.get_duration(
                    "spark.dynamicAllocation.executorIdleTimeout",
                    Duration::from_secs(60),
                )?,
            })
        } else {
            None
        };
        let executor_binary = match props.get("spark.flint.executor.binary").map(str::trim) {
            None | Some("ship") => ExecutorBinary::Ship,
            Some("local") => ExecutorBinary::Local,
            Some(other) => {
                return Err(format!(
                    "spark.flint.executor.binary: expected ship or local, got '{other}'"
                ));
            }
        };
        Ok(Self {
            executor_binary,
            app_resource: nonempty("FLINT_APP_RESOURCE")
                .filter(|r| r.starts_with("flint://") || r.starts_with("http://"))
                .map(str::to_owned),
            master_url,
            app_name,
            user: nonempty("USER").unwrap_or("flint").to_owned(),
            props,
            executor_cores,
            executor_memory_mb,
            cores_max,
            task_cpus,
            max_failures,
            driver_host,
            driver_port,
            dynamic_allocation,
        })
    }
}

/// The executor's settings: the worker's environment contract plus `FLINT_DRIVER_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorConf {
    pub driver_url: String,
    pub app_id: AppId,
    pub executor_id: ExecutorId,
    pub cores: u32,
    pub host: String,
}

impl ExecutorConf {
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{k} is not set (executors are started by a Flint worker)"))
        };
        let driver_url = get("FLINT_DRIVER_URL")?;
        let driver_url = if driver_url.contains("://") {
            driver_url.to_owned()
        } else {
            format!("http://{driver_url}")
        };
        let executor_id = get("FLINT_EXECUTOR_ID")?;
        let cores = get("FLINT_EXECUTOR_CORES")?;
        Ok(Self {
            driver_url,
            app_id: AppId(get("FLINT_APP_ID")?.to_owned()),
            executor_id: executor_id
                .parse()
                .map_err(|_| format!("FLINT_EXECUTOR_ID: not an executor id: '{executor_id}'"))?,
            cores: match cores.parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(format!(
                        "FLINT_EXECUTOR_CORES: expected a positive number, got '{cores}'"
                    ));
                }
            },
            host: get("FLINT_HOSTNAME").map_or_else(|_| local_hostname(), str::to_owned),
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
    fn driver_needs_a_master() {
        assert_eq!(
            DriverConf::from_env(&env(&[]), "pi").err().as_deref(),
            Some(NO_MASTER)
        );
        assert_eq!(
            DriverConf::from_env(&env(&[("FLINT_MASTER_URL", " ")]), "pi")
                .err()
                .as_deref(),
            Some(NO_MASTER)
        );
    }

    #[test]
    fn driver_defaults_are_sparks() {
        let c = DriverConf::from_env(
            &env(&[
                ("FLINT_MASTER_URL", "spark://m:7077"),
                ("FLINT_HOSTNAME", "node-1"),
            ]),
            "pi",
        )
        .expect("conf");
        assert_eq!(c.master_url, "spark://m:7077");
        assert_eq!(c.app_name, "pi");
        assert_eq!(c.executor_cores, None);
        assert_eq!(c.executor_memory_mb, 1024);
        assert_eq!(c.cores_max, None);
        assert_eq!((c.task_cpus, c.max_failures), (1, 4));
        assert_eq!((c.driver_host.as_str(), c.driver_port), ("node-1", 0));
        assert_eq!(c.dynamic_allocation, None);
    }

    #[test]
    fn driver_reads_flint_conf() {
        let c = DriverConf::from_env(
            &env(&[
                ("FLINT_MASTER_URL", "spark://m:7077"),
                ("FLINT_APP_NAME", "Spark Pi"),
                ("FLINT_HOSTNAME", "node-1"),
                (
                    "FLINT_CONF",
                    "spark.executor.cores=2\nspark.executor.memory=512m\n\nspark.cores.max=6\nspark.task.cpus=2\nspark.task.maxFailures=1\nspark.driver.host=10.0.0.1\nspark.driver.port=7078\nspark.x=a=b\nspark.dynamicAllocation.enabled=true\nspark.dynamicAllocation.maxExecutors=3",
                ),
            ]),
            "pi",
        )
        .expect("conf");
        assert_eq!(c.app_name, "Spark Pi");
        assert_eq!(c.executor_cores, Some(2));
        assert_eq!(c.executor_memory_mb, 512);
        assert_eq!(c.cores_max, Some(6));
        assert_eq!((c.task_cpus, c.max_failures), (2, 1));
        assert_eq!((c.driver_host.as_str(), c.driver_port), ("10.0.0.1", 7078));
        assert_eq!(c.props.get("spark.x"), Some("a=b"));
        assert_eq!(
            c.dynamic_allocation,
            Some(DynamicAllocation {
                min_executors: 0,
                max_executors: 3,
                initial_executors: 0,
                idle_timeout: Duration::from_secs(60),
            })
        );
    }

    #[test]
    fn bad_driver_conf_is_one_clear_line() {
        let bad = |conf: &str| {
            DriverConf::from_env(
                &env(&[("FLINT_MASTER_URL", "spark://m:7077"), ("FLINT_CONF", conf)]),
                "pi",
            )
            .expect_err(conf)
        };
        assert_eq!(
            bad("spark.executor.memory=1024"),
            "spark.executor.memory: invalid memory size '1024': Memory is below 1MB, or missing a M/G at the end of the memory specification?"
        );
        assert_eq!(
            bad("spark.task.cpus=0"),
            "spark.task.cpus: expected a positive number, got '0'"
        );
        assert_eq!(
            bad("spark.executor.cores=1\nspark.task.cpus=2"),
            "spark.task.cpus (2) must be <= spark.executor.cores (1)"
        );
        assert_eq!(
            bad("no equals sign"),
            "FLINT_CONF line 1: expected key=value, got 'no equals sign'"
        );
        assert_eq!(
            bad("spark.driver.port=x"),
            "spark.driver.port: invalid value 'x'"
        );
    }

    #[test]
    fn executor_env_contract() {
        let e = ExecutorConf::from_env(&env(&[
            ("FLINT_DRIVER_URL", "127.0.0.1:4040"),
            ("FLINT_APP_ID", "app-1"),
            ("FLINT_EXECUTOR_ID", "3"),
            ("FLINT_EXECUTOR_CORES", "2"),
            ("FLINT_HOSTNAME", "w1"),
        ]))
        .expect("conf");
        assert_eq!(
            e,
            ExecutorConf {
                driver_url: "http://127.0.0.1:4040".into(),
                app_id: AppId("app-1".into()),
                executor_id: 3,
                cores: 2,
                host: "w1".into(),
            }
        );
        let missing = ExecutorConf::from_env(&env(&[("FLINT_APP_ID", "a")])).expect_err("missing");
        assert!(
            missing.starts_with("FLINT_DRIVER_URL is not set"),
            "{missing}"
        );
        assert_eq!(role(&env(&[("FLINT_ROLE", "executor")])), Role::Executor);
        assert_eq!(role(&env(&[("FLINT_ROLE", "driver")])), Role::Driver);
        assert_eq!(role(&env(&[])), Role::Driver);
    }
}
