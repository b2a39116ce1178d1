//! How a Spark `Command` (an executor's `CoarseGrainedExecutorBackend`, a cluster-mode
//! driver's `DriverWrapper`) travels in Flint's [`CommandSpec`], and the master-side
//! conversions of Spark's application and driver descriptions (docs/runtime-contract.md,
//! "Spark executors").
//!
//! The master never builds a JVM command line itself: the class path and `-Xmx` depend on
//! the worker (its `SPARK_HOME`, `SPARK_CONF_DIR`, `JAVA_HOME`), so the worker builds them from
//! this layout: program `java`; `args` = the JVM options, then the main class, then the main
//! class's arguments (placeholders untouched); `env` = the command's environment plus
//! [`SPARK_MAIN_CLASS_ENV`], [`SPARK_JAVA_OPTS_ENV`] (the number of JVM options) and, when
//! non-empty, [`SPARK_CLASSPATH_ENV`] and [`SPARK_LIBRARY_PATH_ENV`].

use crate::messages::{ApplicationDescription, Command, DriverDescription as SparkDriver};
use flint_domain::types::{AppDescription, CommandSpec, DriverDescription};

/// Env var of a Spark command: the JVM main class (its presence marks a Spark command).
pub const SPARK_MAIN_CLASS_ENV: &str = "FLINT_SPARK_MAIN_CLASS";
/// Env var of a Spark command: how many of `args` are JVM options.
pub const SPARK_JAVA_OPTS_ENV: &str = "FLINT_SPARK_JAVA_OPTS";
/// Env var of a Spark command: `Command.classPathEntries`, joined with `:`.
pub const SPARK_CLASSPATH_ENV: &str = "FLINT_SPARK_CLASSPATH";
/// Env var of a Spark command: `Command.libraryPathEntries`, joined with `:`.
pub const SPARK_LIBRARY_PATH_ENV: &str = "FLINT_SPARK_LIBRARY_PATH";

/// Env var of a Spark command: the driver's Spark line (`3.5`, `4.0`), as the master read it
/// from the driver's (or submitter's) stream; the worker picks a matching Spark install.
pub const SPARK_LINE_ENV: &str = "FLINT_SPARK_LINE";

/// Spark's cluster-mode driver launcher.
pub const DRIVER_WRAPPER: &str = "org.apache.spark.deploy.worker.DriverWrapper";

/// The [`CommandSpec`] layout of a Spark `Command` (see the module docs).
pub fn spark_command_spec(cmd: &Command) -> CommandSpec {
    let mut env = cmd.environment.clone();
    env.insert(SPARK_MAIN_CLASS_ENV.into(), cmd.main_class.clone());
    env.insert(SPARK_JAVA_OPTS_ENV.into(), cmd.java_opts.len().to_string());
    if !cmd.class_path_entries.is_empty() {
        env.insert(SPARK_CLASSPATH_ENV.into(), cmd.class_path_entries.join(":"));
    }
    if !cmd.library_path_entries.is_empty() {
        env.insert(
            SPARK_LIBRARY_PATH_ENV.into(),
            cmd.library_path_entries.join(":"),
        );
    }
    let mut args = cmd.java_opts.clone();
    args.push(cmd.main_class.clone());
    args.extend(cmd.arguments.iter().cloned());
    CommandSpec {
        program: "java".into(),
        args,
        env,
    }
}

/// Marks a Spark command with the Spark line of the driver that will talk to it.
pub fn tag_line(spec: &mut CommandSpec, line: crate::SparkLine) {
    spec.env.insert(SPARK_LINE_ENV.into(), line.to_string());
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

/// True when `spec` is a Spark command in the layout above.
pub fn is_spark_command(spec: &CommandSpec) -> bool {
    spec.env.contains_key(SPARK_MAIN_CLASS_ENV)
}

/// The core's description of a Spark driver's application.
pub fn app_description(app: &ApplicationDescription) -> AppDescription {
    let positive = |v: Option<i64>| v.filter(|v| *v > 0);
    AppDescription {
        name: app.name.clone(),
        user: app.user.clone(),
        cores_per_executor: positive(app.executor_cores()).map(|c| c.min(u32::MAX as i64) as u32),
        memory_per_executor_mb: positive(app.executor_memory_mb()).unwrap_or(1024) as u64,
        max_cores: app.max_cores.filter(|c| *c > 0).map(|c| c as u32),
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

/// Why a submitted Spark driver description cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverDescriptionError {
    #[error("the driver's application jar (jarUrl) is empty")]
    NoJar,
    #[error("the driver needs at least 1 core, got {0}")]
    Cores(i32),
    #[error("the driver needs a positive amount of memory, got {0} MiB")]
    Memory(i32),
    #[error("the driver's main class is empty")]
    NoMainClass,
}

/// The core's description of a driver submitted by Spark's legacy client
/// (`RequestSubmitDriver`): the `DriverWrapper` command in the Spark layout, with the
/// client's environment reduced by [`submitted_env`].
pub fn driver_description(d: &SparkDriver) -> Result<DriverDescription, DriverDescriptionError> {
    if d.jar_url.trim().is_empty() {
        return Err(DriverDescriptionError::NoJar);
    }
    if d.cores < 1 {
        return Err(DriverDescriptionError::Cores(d.cores));
    }
    if d.mem < 1 {
        return Err(DriverDescriptionError::Memory(d.mem));
    }
    if d.command.main_class.trim().is_empty() {
        return Err(DriverDescriptionError::NoMainClass);
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
        cores: d.cores as u32,
        memory_mb: d.mem as u64,
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
        assert!(is_spark_command(&spec));
        assert_eq!(spec.program, "java");
        assert_eq!(
            spec.args,
            [
                "-Dspark.driver.port=1",
                "-Dx={{APP_ID}}",
                "org.apache.spark.executor.CoarseGrainedExecutorBackend",
                "--executor-id",
                "{{EXECUTOR_ID}}"
            ]
        );
        assert_eq!(spec.env[SPARK_JAVA_OPTS_ENV], "2");
        assert_eq!(spec.env[SPARK_MAIN_CLASS_ENV], cmd.main_class);
        assert_eq!(spec.env[SPARK_CLASSPATH_ENV], "/a.jar:/b.jar");
        assert!(!spec.env.contains_key(SPARK_LIBRARY_PATH_ENV));
        assert_eq!(spec.env["SPARK_USER"], "alice");
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
        assert!(is_spark_command(&d.command));
        assert_eq!(
            d.command.args,
            [
                "-Dspark.master=spark://m:7077",
                "-Dspark.app.name=Pi job",
                DRIVER_WRAPPER,
                "{{WORKER_URL}}",
                "{{USER_JAR}}",
                "JavaPi",
                "10"
            ]
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
        assert_eq!(spec.env[SPARK_LINE_ENV], "4.0");
        assert_eq!(line_of_version("3.5.3"), Some(SparkLine::V3_5));
        assert_eq!(line_of_version("4.0.5"), Some(SparkLine::V4_0));
        assert_eq!(line_of_version("4.1.0"), None);
        assert_eq!(line_of_version(""), None);
    }

    #[test]
    fn bad_legacy_submissions_are_refused() {
        let mut d = legacy_driver();
        d.jar_url = " ".into();
        assert_eq!(driver_description(&d), Err(DriverDescriptionError::NoJar));
        let mut d = legacy_driver();
        d.cores = 0;
        assert_eq!(
            driver_description(&d),
            Err(DriverDescriptionError::Cores(0))
        );
        let mut d = legacy_driver();
        d.mem = -1;
        assert_eq!(
            driver_description(&d),
            Err(DriverDescriptionError::Memory(-1))
        );
        let mut d = legacy_driver();
        d.command.main_class.clear();
        assert_eq!(
            driver_description(&d),
            Err(DriverDescriptionError::NoMainClass)
        );
    }
}
