//! How a Spark `Command` (an executor's `CoarseGrainedExecutorBackend`, a cluster-mode
//! driver's `DriverWrapper`) becomes Flint's typed [`CommandSpec`] with a
//! [`Launch::SparkJvm`], and the master-side conversions of Spark's application and driver
//! descriptions (docs/runtime-contract.md, "Spark executors").
//!
//! The master never builds a JVM command line itself: the class path and `-Xmx` depend on
//! the worker (its `SPARK_HOME`, `SPARK_CONF_DIR`, `JAVA_HOME`), so the worker builds them from
//! the [`SparkJvm`] part (main class, JVM options, class and library path entries, the
//! driver's Spark line); `args` are the main class's arguments, placeholders untouched.

use crate::messages::{ApplicationDescription, Command, DriverDescription as SparkDriver};
use flint_domain::types::{AppDescription, CommandSpec, DriverDescription, Launch, SparkJvm};

/// Spark's cluster-mode driver launcher.
pub const DRIVER_WRAPPER: &str = "org.apache.spark.deploy.worker.DriverWrapper";

/// The typed command of a Spark `Command`.
pub fn spark_command_spec(cmd: &Command) -> CommandSpec {
    CommandSpec {
        program: "java".into(),
        args: cmd.arguments.clone(),
        env: cmd.environment.clone(),
        launch: Launch::SparkJvm(Box::new(SparkJvm {
            main_class: cmd.main_class.clone(),
            java_opts: cmd.java_opts.clone(),
            class_path: cmd.class_path_entries.clone(),
            library_path: cmd.library_path_entries.clone(),
            spark_line: None,
        })),
    }
}

/// Marks a Spark command with the Spark line of the driver that will talk to it.
pub fn tag_line(spec: &mut CommandSpec, line: crate::SparkLine) {
    if let Launch::SparkJvm(j) = &mut spec.launch {
        j.spark_line = Some(line.to_string());
    }
}

/// The Spark line of a client that says it runs `version` (REST's `clientSparkVersion`).
pub fn line_of_version(version: &str) -> Option<crate::SparkLine> {
    use crate::SparkLine;
    let mut parts = version.trim().split('.');
    match (parts.next(), parts.next()) {
        (Some("3"), Some("5")) => Some(SparkLine::V3_5),
        (Some("4"), Some("0")) => Some(SparkLine::V4_0),
        _ => None,
    }
}

fn to_u32(v: i64) -> u32 {
    v.clamp(0, u32::MAX as i64) as u32
}

fn to_u64(v: i64) -> u64 {
    v.max(0) as u64
}

/// The core's description of a Spark driver's application: a translation only (values out
/// of range become 0, which the domain's one rule set refuses; what the driver left unset
/// gets Spark's default, 1024 MiB per executor).
pub fn app_description(app: &ApplicationDescription) -> AppDescription {
    AppDescription {
        name: app.name.clone(),
        user: app.user.clone(),
        cores_per_executor: app.executor_cores().map(to_u32),
        memory_per_executor_mb: app.executor_memory_mb().map_or(1024, to_u64),
        max_cores: app.max_cores.map(|c| to_u32(c.into())),
        command: spark_command_spec(&app.command),
        initial_executor_limit: app
            .initial_executor_limit
            .filter(|c| *c >= 0)
            .map(|c| c as u32),
        app_ui_url: app.app_ui_url.clone(),
    }
}

/// Keeps what a submitting client's environment may pass on to a driver on another machine:
/// `SPARK_*` variables (as Spark's REST client does), minus the ones that describe the
/// client's own machine (`SPARK_HOME`, `SPARK_CONF_DIR`, its bind address). Spark's legacy
/// client sends its whole environment (`PATH`, `JAVA_HOME`, …) and its worker applies it to
/// the driver, which breaks drivers whenever client and worker differ; Flint does not.
pub fn submitted_env(
    env: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    const HOST_SPECIFIC: [&str; 6] = [
        "SPARK_HOME",
        "SPARK_CONF_DIR",
        "SPARK_ENV_LOADED",
        "SPARK_LOCAL_IP",
        "SPARK_LOCAL_HOSTNAME",
        "SPARK_PUBLIC_DNS",
    ];
    env.iter()
        .filter(|(k, _)| k.starts_with("SPARK_") && !HOST_SPECIFIC.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Why a submitted Spark driver description cannot even be translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverDescriptionError {
    #[error("the driver's application jar (jarUrl) is empty")]
    NoJar,
}

/// The core's description of a driver submitted by Spark's legacy client
/// (`RequestSubmitDriver`): the `DriverWrapper` command as a typed Spark JVM, with the
/// client's environment reduced by [`submitted_env`]. Cores, memory and the main class are
/// checked by the domain's rules (`DriverDescription::validate`), as for every front end.
pub fn driver_description(d: &SparkDriver) -> Result<DriverDescription, DriverDescriptionError> {
    if d.jar_url.trim().is_empty() {
        return Err(DriverDescriptionError::NoJar);
    }
    let mut cmd = d.command.clone();
    cmd.environment = submitted_env(&cmd.environment);
    let name = cmd
        .java_opts
        .iter()
        .find_map(|o| o.strip_prefix("-Dspark.app.name="))
        .map(str::to_owned)
        .or_else(|| {
            (cmd.main_class == DRIVER_WRAPPER)
                .then(|| cmd.arguments.get(2).cloned())
                .flatten()
        })
        .unwrap_or_else(|| cmd.main_class.clone());
    Ok(DriverDescription {
        name,
        app_resource: d.jar_url.clone(),
        app_sha256: None,
        command: spark_command_spec(&cmd),
        cores: to_u32(d.cores.into()),
        memory_mb: to_u64(d.mem.into()),
        supervise: d.supervise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn spark_command_spec_keeps_every_part_of_the_command() {
        let cmd = Command {
            main_class: "org.apache.spark.executor.CoarseGrainedExecutorBackend".into(),
            arguments: vec!["--executor-id".into(), "{{EXECUTOR_ID}}".into()],
            environment: BTreeMap::from([("SPARK_USER".into(), "alice".into())]),
            class_path_entries: vec!["/a.jar".into(), "/b.jar".into()],
            library_path_entries: vec![],
            java_opts: vec!["-Dspark.driver.port=1".into(), "-Dx={{APP_ID}}".into()],
        };
        let spec = spark_command_spec(&cmd);
        assert_eq!(spec.program, "java");
        assert_eq!(spec.args, ["--executor-id", "{{EXECUTOR_ID}}"]);
        let jvm = spec.spark_jvm().expect("a Spark JVM");
        assert_eq!(jvm.main_class, cmd.main_class);
        assert_eq!(jvm.java_opts, ["-Dspark.driver.port=1", "-Dx={{APP_ID}}"]);
        assert_eq!(jvm.class_path, ["/a.jar", "/b.jar"]);
        assert!(jvm.library_path.is_empty());
        assert_eq!(jvm.spark_line, None);
        // The environment is the command's own: nothing else travels in it.
        assert_eq!(spec.env, cmd.environment);
    }

    fn legacy_driver() -> SparkDriver {
        SparkDriver {
            jar_url: "file:/srv/jobs/pi.jar".into(),
            mem: 512,
            cores: 1,
            supervise: false,
            command: Command {
                main_class: DRIVER_WRAPPER.into(),
                arguments: vec![
                    "{{WORKER_URL}}".into(),
                    "{{USER_JAR}}".into(),
                    "JavaPi".into(),
                    "10".into(),
                ],
                environment: BTreeMap::from([
                    ("PATH".into(), "/client/bin".into()),
                    ("JAVA_HOME".into(), "/client/jdk".into()),
                    ("SPARK_HOME".into(), "/client/spark".into()),
                    ("SPARK_LOCAL_IP".into(), "10.1.1.1".into()),
                    ("SPARK_USER".into(), "alice".into()),
                ]),
                class_path_entries: vec![],
                library_path_entries: vec![],
                java_opts: vec![
                    "-Dspark.master=spark://m:7077".into(),
                    "-Dspark.app.name=Pi job".into(),
                ],
            },
            resource_reqs: vec![],
        }
    }

    #[test]
    fn legacy_submissions_become_spark_driver_commands() {
        let d = driver_description(&legacy_driver()).expect("valid");
        assert_eq!(d.name, "Pi job");
        assert_eq!((d.cores, d.memory_mb, d.supervise), (1, 512, false));
        assert_eq!(d.app_resource, "file:/srv/jobs/pi.jar");
        let jvm = d.command.spark_jvm().expect("a Spark JVM");
        assert_eq!(jvm.main_class, DRIVER_WRAPPER);
        assert_eq!(
            jvm.java_opts,
            ["-Dspark.master=spark://m:7077", "-Dspark.app.name=Pi job"]
        );
        assert_eq!(
            d.command.args,
            ["{{WORKER_URL}}", "{{USER_JAR}}", "JavaPi", "10"]
        );
        // The client's machine-specific environment stays behind.
        for k in ["PATH", "JAVA_HOME", "SPARK_HOME", "SPARK_LOCAL_IP"] {
            assert!(!d.command.env.contains_key(k), "{k}");
        }
        assert_eq!(d.command.env["SPARK_USER"], "alice");
    }

    #[test]
    fn lines_tag_commands_and_versions_map_to_lines() {
        use crate::SparkLine;
        let mut spec = driver_description(&legacy_driver()).expect("valid").command;
        tag_line(&mut spec, SparkLine::V4_0);
        assert_eq!(
            spec.spark_jvm().and_then(|j| j.spark_line.as_deref()),
            Some("4.0")
        );
        let mut native = CommandSpec::default();
        tag_line(&mut native, SparkLine::V4_0);
        assert_eq!(native.launch, Launch::Native);
        assert_eq!(line_of_version("3.5.3"), Some(SparkLine::V3_5));
        assert_eq!(line_of_version("4.0.5"), Some(SparkLine::V4_0));
        assert_eq!(line_of_version("4.1.0"), None);
        assert_eq!(line_of_version(""), None);
    }

    #[test]
    fn bad_legacy_submissions_are_refused_by_the_domains_rules() {
        let mut d = legacy_driver();
        d.jar_url = " ".into();
        assert_eq!(driver_description(&d), Err(DriverDescriptionError::NoJar));
        let field = |d: SparkDriver| {
            driver_description(&d)
                .expect("translated")
                .validate()
                .map_err(|e| e.field)
        };
        assert_eq!(field(legacy_driver()), Ok(()));
        let mut d = legacy_driver();
        d.cores = 0;
        assert_eq!(field(d), Err("driver.cores"));
        let mut d = legacy_driver();
        d.mem = -1;
        assert_eq!(field(d), Err("driver.memory_mb"));
        let mut d = legacy_driver();
        d.command.main_class.clear();
        assert_eq!(field(d), Err("command.spark_jvm.main_class"));
    }
}
