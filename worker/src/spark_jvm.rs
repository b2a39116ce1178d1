//! Spark JVM command lines on this worker (Spark's `CommandUtils.buildProcessBuilder`): the
//! executors' `CoarseGrainedExecutorBackend` and cluster-mode drivers' `DriverWrapper`
//! commands arrive as a typed [`SparkJvm`]; the class path, `-Xmx` and the `java` binary come
//! from this worker (`SPARK_HOME`, `SPARK_CONF_DIR`, `JAVA_HOME`).

use std::collections::BTreeMap;

use flint_domain::types::SparkJvm;

/// The JVM options Spark's launcher gives every JVM it starts on Java 17+
/// (`JavaModuleOptions`): Spark's code reflects into JDK internals and fails with
/// `IllegalAccessError` without them. A driver puts them in its executors' commands, but
/// Spark's legacy cluster-mode client and REST server do not put them in a driver's own
/// command and Spark's worker does not add them, so a cluster-mode driver dies at start on
/// Java 17. Flint's worker adds the missing ones to every driver (`IgnoreUnrecognizedVMOptions`
/// keeps older JVMs happy); executors run with exactly the options their driver chose.
pub const JAVA_MODULE_OPTIONS: &[&str] = &[
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
];

/// What Spark 4.0's launcher adds to [`JAVA_MODULE_OPTIONS`].
pub const SPARK_4_MODULE_OPTIONS: &[&str] = &[
    "--add-modules=jdk.incubator.vector",
    "-Dio.netty.tryReflectionSetAccessible=true",
];

/// Which Spark process a command starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JvmRole {
    /// `CoarseGrainedExecutorBackend`: the driver's options as they are.
    Executor,
    /// `DriverWrapper`: plus the Java 17 module options it lacks.
    Driver,
}

/// Where this worker's Spark and Java are (its own environment, never a submitter's).
///
/// One worker can serve Spark 3.5 and 4.0 drivers side by side: `FLINT_SPARK_HOME_3_5` and
/// `FLINT_SPARK_HOME_4_0` name an install per line, and the command's line (which the master
/// read from the driver's stream) picks one; `SPARK_HOME` serves any line without its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparkHost {
    pub spark_home: Option<String>,
    /// Per Spark line (`3.5`, `4.0`).
    pub line_homes: BTreeMap<String, String>,
    pub conf_dir: Option<String>,
    pub java_home: Option<String>,
}

impl SparkHost {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let line_homes = [
            ("3.5", "FLINT_SPARK_HOME_3_5"),
            ("4.0", "FLINT_SPARK_HOME_4_0"),
        ]
        .into_iter()
        .filter_map(|(line, k)| Some((line.to_owned(), var(k)?)))
        .collect();
        Self {
            spark_home: var("SPARK_HOME"),
            line_homes,
            conf_dir: var("SPARK_CONF_DIR"),
            java_home: var("JAVA_HOME"),
        }
    }

    /// The install for a driver of `line` (`None`: the line is unknown).
    fn home_for(&self, line: Option<&str>) -> Option<&str> {
        line.and_then(|l| self.line_homes.get(l))
            .or(self.spark_home.as_ref())
            .map(String::as_str)
    }
}

/// The Spark version of the install at `home` (`3.5.9`), from its `spark-core` jar's name;
/// `None` when it cannot tell.
pub fn spark_version(home: &str) -> Option<String> {
    std::fs::read_dir(std::path::Path::new(home).join("jars"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|name| {
            let rest = name.strip_prefix("spark-core_")?.strip_suffix(".jar")?;
            let (_scala, version) = rest.split_once('-')?;
            version
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
                .then(|| version.to_owned())
        })
}

/// Builds the JVM command line of a Spark executor or driver the way Spark's worker does
/// (`CommandUtils.buildProcessBuilder`): `java -cp <classPathEntries>:<conf dir>:$SPARK_HOME/jars/*
/// -Xmx<memory>M <javaOpts> <mainClass> <arguments>`, placeholders already substituted in
/// `jvm` and `args`. Sets `LD_LIBRARY_PATH` in `env` from the library path entries. Returns
/// the program and its arguments.
/// For a [`JvmRole::Driver`], every option of [`JAVA_MODULE_OPTIONS`] (and, for a Spark 4.0
/// driver, [`SPARK_4_MODULE_OPTIONS`]) the command lacks is added before its own options.
pub fn spark_jvm_command(
    jvm: &SparkJvm,
    args: &[String],
    env: &mut BTreeMap<String, String>,
    memory_mb: u64,
    host: &SparkHost,
    role: JvmRole,
) -> Result<(String, Vec<String>), String> {
    let line = jvm.spark_line.as_deref();
    let spark_home = host.home_for(line);
    let spark_conf_dir = host.conf_dir.as_deref();
    let java_home = host.java_home.as_deref();
    if jvm.main_class.trim().is_empty() {
        return Err("malformed Spark command: no main class".into());
    }
    let Some(spark_home) = spark_home else {
        return Err("SPARK_HOME is not set on this worker".into());
    };
    let spark_home = spark_home.trim_end_matches('/');
    // A driver of one line cannot use executors of another (every serialVersionUID
    // differs): say so now rather than let the JVMs fail to talk.
    if let Some(line) = line
        && let Some(version) = spark_version(spark_home)
        && !version.starts_with(&format!("{line}."))
    {
        return Err(format!(
            "the driver runs Spark {line} but this worker's Spark at {spark_home} is {version}: \
             set FLINT_SPARK_HOME_{} (or SPARK_HOME) to a Spark {line} install",
            line.replace('.', "_")
        ));
    }
    let conf_dir = spark_conf_dir
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{spark_home}/conf"));
    let mut cp: Vec<String> = jvm
        .class_path
        .iter()
        .flat_map(|c| c.split(':'))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    cp.push(conf_dir);
    cp.push(format!("{spark_home}/jars/*"));
    let lib = jvm
        .library_path
        .iter()
        .filter(|l| !l.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(":");
    if !lib.is_empty() {
        let joined = match env
            .get("LD_LIBRARY_PATH")
            .cloned()
            .or_else(|| std::env::var("LD_LIBRARY_PATH").ok())
            .filter(|v| !v.is_empty())
        {
            Some(old) => format!("{lib}:{old}"),
            None => lib,
        };
        env.insert("LD_LIBRARY_PATH".into(), joined);
    }
    let program = match java_home {
        Some(h) => format!("{}/bin/java", h.trim_end_matches('/')),
        None => "java".to_owned(),
    };
    let mut out = vec!["-cp".to_owned(), cp.join(":"), format!("-Xmx{memory_mb}M")];
    if role == JvmRole::Driver {
        let own = &jvm.java_opts;
        let extra = if line == Some("4.0") {
            SPARK_4_MODULE_OPTIONS
        } else {
            &[]
        };
        out.extend(
            JAVA_MODULE_OPTIONS
                .iter()
                .chain(extra)
                .filter(|o| !own.iter().any(|x| x == *o))
                .map(|o| (*o).to_owned()),
        );
    }
    // Like Spark's worker: the RPC secret never goes on a command line.
    out.extend(
        jvm.java_opts
            .iter()
            .filter(|o| !o.starts_with("-Dspark.authenticate.secret"))
            .cloned(),
    );
    out.push(jvm.main_class.clone());
    out.extend(args.iter().cloned());
    Ok((program, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drivers_line_picks_the_install_and_a_mismatch_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mk = |dir: &str, jar: &str| {
            let home = tmp.path().join(dir);
            std::fs::create_dir_all(home.join("jars")).expect("jars");
            std::fs::write(home.join("jars").join(jar), b"").expect("jar");
            home.display().to_string()
        };
        let h35 = mk("s35", "spark-core_2.12-3.5.9.jar");
        let h40 = mk("s40", "spark-core_2.13-4.0.5.jar");
        assert_eq!(spark_version(&h35).as_deref(), Some("3.5.9"));
        assert_eq!(spark_version(&h40).as_deref(), Some("4.0.5"));
        assert_eq!(spark_version("/nonexistent"), None);
        let args: Vec<String> = vec![];
        let jvm = |line: &str| SparkJvm {
            main_class: "Main".to_owned(),
            spark_line: Some(line.to_owned()),
            ..SparkJvm::default()
        };
        let host = SparkHost {
            spark_home: Some(h35.clone()),
            line_homes: BTreeMap::from([("4.0".to_owned(), h40.clone())]),
            ..SparkHost::default()
        };
        let cp = |line: &str| {
            let (_, out) = spark_jvm_command(
                &jvm(line),
                &args,
                &mut BTreeMap::new(),
                512,
                &host,
                JvmRole::Executor,
            )
            .expect("command");
            assert_eq!(out.last().map(String::as_str), Some("Main"));
            out[1].clone()
        };
        assert!(cp("4.0").ends_with("s40/jars/*"));
        assert!(cp("3.5").ends_with("s35/jars/*"));
        // Only a 3.5 install: a 4.0 driver's executor is refused with the reason.
        let only35 = SparkHost {
            spark_home: Some(h35),
            ..SparkHost::default()
        };
        let err = spark_jvm_command(
            &jvm("4.0"),
            &args,
            &mut BTreeMap::new(),
            512,
            &only35,
            JvmRole::Executor,
        )
        .expect_err("mismatch");
        assert!(err.contains("Spark 4.0") && err.contains("3.5.9"), "{err}");
        assert!(err.contains("FLINT_SPARK_HOME_4_0"), "{err}");
    }

    #[test]
    fn spark_executor_commands_become_jvm_command_lines() {
        let jvm = SparkJvm {
            main_class: "org.apache.spark.executor.CoarseGrainedExecutorBackend".into(),
            java_opts: vec![
                "-Dspark.driver.port=7".into(),
                "-Dspark.authenticate.secret=x".into(),
            ],
            class_path: vec!["/x.jar".into()],
            library_path: vec![],
            spark_line: None,
        };
        let args: Vec<String> = ["--executor-id", "3"].map(String::from).to_vec();
        let mut env = BTreeMap::from([("SPARK_USER".to_owned(), "alice".to_owned())]);
        let home = |h: &str| SparkHost {
            spark_home: Some(h.into()),
            ..SparkHost::default()
        };
        // Executors: the driver's options, as they are (the secret never on a command line).
        let (program, out) = spark_jvm_command(
            &jvm,
            &args,
            &mut env.clone(),
            512,
            &home("/spark/"),
            JvmRole::Executor,
        )
        .expect("command");
        assert_eq!(program, "java");
        assert_eq!(
            out,
            [
                "-cp",
                "/x.jar:/spark/conf:/spark/jars/*",
                "-Xmx512M",
                "-Dspark.driver.port=7",
                "org.apache.spark.executor.CoarseGrainedExecutorBackend",
                "--executor-id",
                "3"
            ]
        );
        // Drivers: plus the module options (a 4.0 driver also gets Spark 4's).
        let (_, out) = spark_jvm_command(
            &jvm,
            &args,
            &mut env.clone(),
            512,
            &home("/spark/"),
            JvmRole::Driver,
        )
        .expect("command");
        let n = JAVA_MODULE_OPTIONS.len();
        assert_eq!(out[3..3 + n], *JAVA_MODULE_OPTIONS);
        assert_eq!(
            out[3 + n..],
            [
                "-Dspark.driver.port=7",
                "org.apache.spark.executor.CoarseGrainedExecutorBackend",
                "--executor-id",
                "3"
            ]
        );
        let jvm4 = SparkJvm {
            spark_line: Some("4.0".into()),
            ..jvm.clone()
        };
        let (_, out) = spark_jvm_command(
            &jvm4,
            &args,
            &mut env.clone(),
            512,
            &home("/s"),
            JvmRole::Driver,
        )
        .expect("command");
        assert_eq!(out[3 + n..3 + n + 2], *SPARK_4_MODULE_OPTIONS);
        // Options the command already has are not repeated.
        let mut with_opens = jvm.clone();
        with_opens
            .java_opts
            .insert(0, JAVA_MODULE_OPTIONS[2].to_owned());
        let (_, out) = spark_jvm_command(
            &with_opens,
            &args,
            &mut env.clone(),
            512,
            &home("/s"),
            JvmRole::Driver,
        )
        .expect("command");
        assert_eq!(
            out.iter().filter(|o| *o == JAVA_MODULE_OPTIONS[2]).count(),
            1
        );
        // The worker's own Java, and library path entries become LD_LIBRARY_PATH.
        let host = SparkHost {
            spark_home: Some("/s".into()),
            conf_dir: Some("/c".into()),
            java_home: Some("/jdk".into()),
            ..SparkHost::default()
        };
        let with_lib = SparkJvm {
            library_path: vec!["/native".into()],
            ..jvm.clone()
        };
        env.insert("LD_LIBRARY_PATH".into(), "/old".into());
        let (program, out) =
            spark_jvm_command(&with_lib, &args, &mut env, 512, &host, JvmRole::Executor)
                .expect("command");
        assert_eq!(program, "/jdk/bin/java");
        assert_eq!(out[1], "/x.jar:/c:/s/jars/*");
        assert_eq!(env["LD_LIBRARY_PATH"], "/native:/old");
        assert_eq!(env["SPARK_USER"], "alice");
        assert_eq!(
            spark_jvm_command(
                &jvm,
                &args,
                &mut BTreeMap::new(),
                512,
                &SparkHost::default(),
                JvmRole::Executor
            ),
            Err("SPARK_HOME is not set on this worker".into())
        );
        let no_main = SparkJvm {
            main_class: " ".into(),
            ..jvm
        };
        assert!(
            spark_jvm_command(
                &no_main,
                &args,
                &mut BTreeMap::new(),
                512,
                &home("/s"),
                JvmRole::Executor
            )
            .is_err()
        );
    }
}
