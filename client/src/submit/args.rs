//! `flint-submit`'s command line, parsed the way `spark-submit` reads its own, and the
//! Spark properties it resolves to (flags > `--conf` > properties file > defaults).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use flint_domain::conf::parse_properties;
use flint_domain::units::{parse_master_urls, parse_memory_mb};

pub const HELP: &str = "\
Usage: flint-submit [options] <app> [app arguments]
Usage: flint-submit --kill <driver-id> [--master spark://host:7077]
Usage: flint-submit --status <driver-id> [--master spark://host:7077]
Usage: flint-submit logs <driver-id> [--stderr] [--follow] [--master spark://host:7077]

Submits a Flint application (a binary built with Flint's runtime library) to a Flint
(Spark standalone compatible) cluster.

Options:
  --master MASTER_URL         spark://host:port (several masters: spark://h1:7077,h2:7077).
                              Default: spark.master from the properties file.
  --deploy-mode DEPLOY_MODE   client (default): the driver runs here, as a child of
                              flint-submit, and its output appears in this terminal;
                              cluster: the master runs the driver on a worker.
  --name NAME                 Application name (spark.app.name). Default: the app's file name.
  --conf, -c PROP=VALUE       Any Spark property. May be repeated.
  --properties-file FILE      Properties file (spark-defaults.conf format). Default:
                              $SPARK_CONF_DIR/spark-defaults.conf if it exists.
  --executor-cores NUM        Cores per executor (spark.executor.cores). Default: all the
                              cores a worker grants, one executor per worker.
  --executor-memory MEM       Memory per executor, e.g. 512m or 2g (spark.executor.memory).
                              Default: 1g.
  --total-executor-cores NUM  Cores for the whole application (spark.cores.max).
  --driver-cores NUM          Cores for the driver in cluster mode (spark.driver.cores). Default: 1.
  --driver-memory MEM         Memory for the driver in cluster mode (spark.driver.memory). Default: 1g.
  --supervise                 Cluster mode: restart the driver if it exits non-zero
                              (after 1, 2, 4, 8 ... s).
  --wait                      Cluster mode: follow the driver, stream its stdout here and
                              exit with its exit code. Without it flint-submit prints the
                              driver id and returns at once.
  --kill DRIVER_ID            Kill a driver.
  --status DRIVER_ID          Print a driver's state.
  --help, -h                  Show this help.

The app is a local path (uploaded to the master in cluster mode, verified by SHA-256 on
the worker), local:///path (already present on every worker) or http://host/path
(downloaded by the worker).

Commands:
  logs DRIVER_ID              Print a driver's stdout (--stderr: stderr) through the master;
                              --follow keeps printing until the driver ends.

Exit status: the driver's exit status in client mode and with --wait; 1 on errors,
2 on invalid usage.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Submit {
        app: String,
        app_args: Vec<String>,
        wait: bool,
    },
    Kill(String),
    Status(String),
    Logs {
        driver_id: String,
        stderr: bool,
        follow: bool,
    },
    Help,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submit {
    pub action: Action,
    pub master: String,
    /// Every resolved `spark.*` property (passed to the driver).
    pub conf: BTreeMap<String, String>,
}

impl Submit {
    pub fn cluster_mode(&self) -> bool {
        self.conf.get("spark.submit.deployMode").map(String::as_str) == Some("cluster")
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.conf.get(k).map(String::as_str)
    }

    pub fn driver_cores(&self) -> u32 {
        self.get("spark.driver.cores")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1)
    }

    pub fn driver_memory_mb(&self) -> u64 {
        self.get("spark.driver.memory")
            .and_then(|m| parse_memory_mb(m).ok())
            .unwrap_or(1024)
    }

    pub fn supervise(&self) -> bool {
        self.get("spark.driver.supervise") == Some("true")
    }

    /// `FLINT_CONF`: the properties as `key=value` lines.
    pub fn conf_env(&self) -> String {
        self.conf
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn positive(flag: &str, v: &str) -> Result<(), String> {
    match v.parse::<u32>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("{flag}: expected a positive number, got '{v}'")),
    }
}

fn memory(flag: &str, v: &str) -> Result<(), String> {
    parse_memory_mb(v)
        .map(|_| ())
        .map_err(|e| format!("{flag}: {e}"))
}

/// The `logs` subcommand's own arguments: `<driver-id> [--stderr] [--follow]`, and the
/// master or properties file wherever they stand.
fn parse_logs<'a>(
    it: &mut impl Iterator<Item = &'a String>,
    flags: &mut BTreeMap<&'static str, String>,
    properties_file: &mut Option<PathBuf>,
) -> Result<Action, String> {
    let mut driver_id = None;
    let (mut stderr, mut follow) = (false, false);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--stderr" => stderr = true,
            "--follow" | "-f" => follow = true,
            "--master" => {
                let v = it.next().ok_or("--master needs a value")?;
                flags.insert("spark.master", v.clone());
            }
            "--properties-file" => {
                *properties_file = Some(PathBuf::from(
                    it.next().ok_or("--properties-file needs a value")?,
                ));
            }
            s if s.starts_with('-') => return Err(format!("logs: unknown option {s}")),
            s if driver_id.is_none() => driver_id = Some(s.to_owned()),
            s => return Err(format!("logs: unexpected argument '{s}'")),
        }
    }
    let driver_id = driver_id.ok_or("logs: missing <driver-id>")?;
    Ok(Action::Logs {
        driver_id,
        stderr,
        follow,
    })
}

/// Parses the arguments (without the program name). `env` supplies `SPARK_CONF_DIR`.
pub fn parse(args: &[String], env: &HashMap<String, String>) -> Result<Submit, String> {
    let mut flags: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut confs: Vec<(String, String)> = Vec::new();
    let mut properties_file: Option<PathBuf> = None;
    let mut action: Option<Action> = None;
    let mut wait = false;
    let mut it = args.iter().peekable();

    // `flint-submit logs <driver-id> [--stderr] [--follow] [--master M]`
    if it.peek().map(|s| s.as_str()) == Some("logs") {
        it.next();
        action = Some(parse_logs(&mut it, &mut flags, &mut properties_file)?);
    }

    // Options may come before or after --kill/--status; the first non-option is the app
    // and everything after it belongs to the app.
    while !matches!(
        action,
        Some(Action::Submit { .. }) | Some(Action::Help) | Some(Action::Logs { .. })
    ) {
        let Some(a) = it.next() else { break };
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = |n: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{n} needs a value")),
            }
        };
        match name {
            "--help" | "-h" => action = Some(Action::Help),
            "--master" => {
                flags.insert("spark.master", value(name)?);
            }
            "--deploy-mode" => {
                let v = value(name)?;
                if v != "client" && v != "cluster" {
                    return Err(format!(
                        "--deploy-mode must be client or cluster, got '{v}'"
                    ));
                }
                flags.insert("spark.submit.deployMode", v);
            }
            "--name" => {
                flags.insert("spark.app.name", value(name)?);
            }
            "--executor-cores" => {
                let v = value(name)?;
                positive(name, &v)?;
                flags.insert("spark.executor.cores", v);
            }
            "--total-executor-cores" => {
                let v = value(name)?;
                positive(name, &v)?;
                flags.insert("spark.cores.max", v);
            }
            "--driver-cores" => {
                let v = value(name)?;
                positive(name, &v)?;
                flags.insert("spark.driver.cores", v);
            }
            "--executor-memory" => {
                let v = value(name)?;
                memory(name, &v)?;
                flags.insert("spark.executor.memory", v);
            }
            "--driver-memory" => {
                let v = value(name)?;
                memory(name, &v)?;
                flags.insert("spark.driver.memory", v);
            }
            "--supervise" => {
                flags.insert("spark.driver.supervise", "true".into());
            }
            "--wait" => wait = true,
            "--conf" | "-c" => {
                let v = value(name)?;
                let (k, val) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.trim().is_empty())
                    .ok_or_else(|| format!("--conf: expected PROP=VALUE, got '{v}'"))?;
                confs.push((k.trim().to_owned(), val.to_owned()));
            }
            "--properties-file" => properties_file = Some(PathBuf::from(value(name)?)),
            "--kill" => action = Some(Action::Kill(value(name)?)),
            "--status" => action = Some(Action::Status(value(name)?)),
            s if s.starts_with('-') => {
                return Err(format!("unknown option {s} (see flint-submit --help)"));
            }
            app if action.is_some() => {
                return Err(format!("unexpected argument '{app}'"));
            }
            // `flint-submit --master M logs <driver-id>`: options before the subcommand, as
            // spark-submit users type them.
            "logs" => action = Some(parse_logs(&mut it, &mut flags, &mut properties_file)?),
            app => {
                action = Some(Action::Submit {
                    app: app.to_owned(),
                    app_args: it.by_ref().cloned().collect(),
                    wait,
                });
            }
        }
    }
    let action = action.ok_or("missing <app> (see flint-submit --help)")?;
    if action == Action::Help {
        return Ok(Submit {
            action,
            master: String::new(),
            conf: BTreeMap::new(),
        });
    }

    // Precedence: defaults < properties file < --conf < flags.
    let mut conf: BTreeMap<String, String> = BTreeMap::new();
    let file = properties_file.or_else(|| {
        env.get("SPARK_CONF_DIR")
            .map(|d| PathBuf::from(d).join("spark-defaults.conf"))
            .filter(|p| p.is_file())
    });
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read properties file {}: {e}", path.display()))?;
        for (k, v) in parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))? {
            conf.insert(k, v);
        }
    }
    for (k, v) in confs {
        conf.insert(k, v);
    }
    for (k, v) in flags {
        conf.insert(k.to_owned(), v);
    }
    for (k, check) in [
        (
            "spark.executor.memory",
            memory as fn(&str, &str) -> Result<(), String>,
        ),
        ("spark.driver.memory", memory),
        ("spark.executor.cores", positive),
        ("spark.cores.max", positive),
        ("spark.driver.cores", positive),
    ] {
        if let Some(v) = conf.get(k) {
            check(k, v)?;
        }
    }
    let master = conf.get("spark.master").cloned().ok_or(
        "no master URL: pass --master spark://host:7077 or set spark.master in spark-defaults.conf",
    )?;
    parse_master_urls(&master)?;
    if let Action::Submit { app, .. } = &action {
        conf.entry("spark.submit.deployMode".into())
            .or_insert_with(|| "client".into());
        let default_name = app
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or(app)
            .to_owned();
        conf.entry("spark.app.name".into()).or_insert(default_name);
    }
    Ok(Submit {
        action,
        master,
        conf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Submit, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, &HashMap::new())
    }

    #[test]
    fn submit_with_flags_and_app_args() {
        let s = p(&[
            "--master",
            "spark://m:7077",
            "--deploy-mode",
            "cluster",
            "--executor-memory",
            "512m",
            "--conf",
            "spark.x=1",
            "--supervise",
            "--wait",
            "./pi",
            "100",
            "--not-a-flag",
        ])
        .expect("ok");
        assert_eq!(
            s.action,
            Action::Submit {
                app: "./pi".into(),
                app_args: vec!["100".into(), "--not-a-flag".into()],
                wait: true
            }
        );
        assert!(s.cluster_mode() && s.supervise());
        assert_eq!(s.get("spark.executor.memory"), Some("512m"));
        assert_eq!(s.get("spark.x"), Some("1"));
        assert_eq!(s.get("spark.app.name"), Some("pi"));
    }

    #[test]
    fn precedence_flags_over_conf_over_file() {
        let dir = std::env::temp_dir().join(format!("flint-submit-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("spark-defaults.conf");
        std::fs::write(
            &f,
            "spark.master spark://file:7077\nspark.executor.memory 2g\nspark.app.name fromfile\nspark.y 1\n",
        )
        .expect("write");
        let env = HashMap::from([("SPARK_CONF_DIR".to_string(), dir.display().to_string())]);
        let args: Vec<String> = [
            "--conf",
            "spark.executor.memory=3g",
            "--conf",
            "spark.y=2",
            "--name",
            "flag",
            "app",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = parse(&args, &env).expect("ok");
        assert_eq!(
            s.master, "spark://file:7077",
            "spark.master from the file is honoured"
        );
        assert_eq!(s.get("spark.executor.memory"), Some("3g"));
        assert_eq!(s.get("spark.y"), Some("2"));
        assert_eq!(s.get("spark.app.name"), Some("flag"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn kill_status_logs() {
        assert_eq!(
            p(&["--master", "spark://m:1", "--kill", "driver-1"])
                .expect("ok")
                .action,
            Action::Kill("driver-1".into())
        );
        assert_eq!(
            p(&["--status", "driver-1", "--master", "spark://m:1"])
                .expect("ok")
                .action,
            Action::Status("driver-1".into())
        );
        assert_eq!(
            p(&[
                "logs",
                "driver-1",
                "--stderr",
                "--follow",
                "--master",
                "spark://m:1"
            ])
            .expect("ok")
            .action,
            Action::Logs {
                driver_id: "driver-1".into(),
                stderr: true,
                follow: true
            }
        );
        // As the README writes it: the master before the subcommand.
        let s = p(&["--master", "spark://m:7077", "logs", "driver-2", "--stderr"]).expect("ok");
        assert_eq!(s.master, "spark://m:7077");
        assert_eq!(
            s.action,
            Action::Logs {
                driver_id: "driver-2".into(),
                stderr: true,
                follow: false
            }
        );
        assert!(p(&["--master", "spark://m:1", "logs"]).is_err());
        assert!(p(&["--master", "spark://m:1", "logs", "a", "b"]).is_err());
    }

    #[test]
    fn bad_input_has_one_clear_line() {
        for (args, needle) in [
            (
                vec!["--master", "spark://m:1", "--conf", "novalue", "app"],
                "PROP=VALUE",
            ),
            (
                vec!["--master", "spark://m:1", "--bogus", "app"],
                "unknown option --bogus",
            ),
            (
                vec![
                    "--master",
                    "spark://m:1",
                    "--executor-memory",
                    "1024",
                    "app",
                ],
                "missing a M/G",
            ),
            (
                vec!["--master", "spark://m:1", "--executor-cores", "0", "app"],
                "positive",
            ),
            (vec!["--master", "http://m:1", "app"], "spark://"),
            (vec!["app"], "no master URL"),
            (vec!["--master", "spark://m:1"], "missing <app>"),
            (
                vec!["--master", "spark://m:1", "--deploy-mode", "moon", "app"],
                "client or cluster",
            ),
        ] {
            let err = p(&args).expect_err(needle);
            assert!(err.contains(needle), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}
