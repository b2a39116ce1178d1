//! Spark JVM command lines on this worker (Spark's `CommandUtils.buildProcessBuilder`): the
//! executors' `CoarseGrainedExecutorBackend` and cluster-mode drivers' `DriverWrapper`
//! commands arrive in the layout of [`flint_proto::spark::command`]; the class path, `-Xmx`
//! and the `java` binary come from this worker (`SPARK_HOME`, `SPARK_CONF_DIR`, `JAVA_HOME`).

use std::collections::BTreeMap;

use flint_proto::spark::command::{
    SPARK_CLASSPATH_ENV, SPARK_JAVA_OPTS_ENV, SPARK_LIBRARY_PATH_ENV, SPARK_MAIN_CLASS_ENV,
};

/// The JVM options Spark's launcher gives every JVM it starts on Java 17+
/// (`JavaModuleOptions`): Spark's code reflects into JDK internals and fails with
/// `IllegalAccessError` without them. The driver puts them in its executors' commands; Spark's
/// legacy cluster-mode client and REST server do not put them in the driver's, and Spark's
/// worker does not add them, so a cluster-mode driver dies at start on Java 17. Flint's
/// worker adds the missing ones to every Spark command (`IgnoreUnrecognizedVMOptions` keeps
/// older JVMs happy).
pub const JAVA_MODULE_OPTIONS: &[&str] = &[
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-modules=jdk.incubator.vector",
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
    "-Dio.netty.tryReflectionSetAccessible=true",
];

/// Where this worker's Spark and Java are (its own environment, never a submitter's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SparkHost {
    pub spark_home: Option<String>,
    pub conf_dir: Option<String>,
    pub java_home: Option<String>,
}

impl SparkHost {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            spark_home: var("SPARK_HOME"),
            conf_dir: var("SPARK_CONF_DIR"),
            java_home: var("JAVA_HOME"),
        }
    }
}

/// Builds the JVM command line of a Spark executor the way Spark's worker does
/// (`CommandUtils.buildProcessBuilder`): `java -cp <classPathEntries>:<conf dir>:$SPARK_HOME/jars/*
/// -Xmx<memory>M <javaOpts> <mainClass> <arguments>`, from a command laid out as
/// `args` = javaOpts ++ [mainClass] ++ arguments (placeholders already substituted). Removes the
/// `FLINT_SPARK_*` convention variables from `env` and sets `LD_LIBRARY_PATH` from the
/// library path entries. Returns the program and its arguments.
/// Every option of [`JAVA_MODULE_OPTIONS`] the command lacks is added before the command's
/// own options.
pub fn spark_jvm_command(
    args: &[String],
    env: &mut BTreeMap<String, String>,
    memory_mb: u64,
    host: &SparkHost,
) -> Result<(String, Vec<String>), String> {
    let spark_home = host.spark_home.as_deref();
    let spark_conf_dir = host.conf_dir.as_deref();
    let java_home = host.java_home.as_deref();
    let main_class = env.remove(SPARK_MAIN_CLASS_ENV).unwrap_or_default();
    let n_opts = env.remove(SPARK_JAVA_OPTS_ENV);
    let class_path = env.remove(SPARK_CLASSPATH_ENV);
    let library_path = env.remove(SPARK_LIBRARY_PATH_ENV);
    let n_opts: usize = n_opts
        .as_deref()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| format!("invalid {SPARK_JAVA_OPTS_ENV} in the Spark command"))?;
    if main_class.trim().is_empty() || args.get(n_opts) != Some(&main_class) {
        return Err(format!(
            "malformed Spark command: expected the main class '{main_class}' after {n_opts} JVM options"
        ));
    }
    let Some(spark_home) = spark_home else {
        return Err("SPARK_HOME is not set on this worker".into());
    };
    let spark_home = spark_home.trim_end_matches('/');
    let conf_dir = spark_conf_dir
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{spark_home}/conf"));
    let mut cp: Vec<String> = class_path
        .iter()
        .flat_map(|c| c.split(':'))
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    cp.push(conf_dir);
    cp.push(format!("{spark_home}/jars/*"));
    if let Some(lib) = library_path.filter(|l| !l.is_empty()) {
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
    let own = &args[..n_opts];
    out.extend(
        JAVA_MODULE_OPTIONS
            .iter()
            .filter(|o| !own.iter().any(|x| x == *o))
            .map(|o| (*o).to_owned()),
    );
    // Like Spark's worker: the RPC secret never goes on a command line.
    out.extend(
        args[..n_opts]
            .iter()
            .filter(|o| !o.starts_with("-Dspark.authenticate.secret"))
            .cloned(),
    );
    out.extend(args[n_opts..].iter().cloned());
    Ok((program, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_executor_commands_become_jvm_command_lines() {
        let args: Vec<String> = [
            "-Dspark.driver.port=7",
            "-Dspark.authenticate.secret=x",
            "org.apache.spark.executor.CoarseGrainedExecutorBackend",
            "--executor-id",
            "3",
        ]
        .map(String::from)
        .to_vec();
        let mut env = BTreeMap::from([
            (SPARK_MAIN_CLASS_ENV.to_owned(), args[2].clone()),
            (SPARK_JAVA_OPTS_ENV.to_owned(), "2".to_owned()),
            (SPARK_CLASSPATH_ENV.to_owned(), "/x.jar".to_owned()),
            ("SPARK_USER".to_owned(), "alice".to_owned()),
        ]);
        let home = |h: &str| SparkHost {
            spark_home: Some(h.into()),
            ..SparkHost::default()
        };
        let (program, out) =
            spark_jvm_command(&args, &mut env.clone(), 512, &home("/spark/")).expect("command");
        assert_eq!(program, "java");
        let n = JAVA_MODULE_OPTIONS.len();
        assert_eq!(
            out[..3],
            ["-cp", "/x.jar:/spark/conf:/spark/jars/*", "-Xmx512M"]
        );
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
        // Options the command already has are not repeated.
        let mut with_opens = args.clone();
        with_opens.insert(0, JAVA_MODULE_OPTIONS[2].to_owned());
        let mut env3 = env.clone();
        env3.insert(SPARK_JAVA_OPTS_ENV.to_owned(), "3".to_owned());
        let (_, out) =
            spark_jvm_command(&with_opens, &mut env3, 512, &home("/s")).expect("command");
        assert_eq!(
            out.iter().filter(|o| *o == JAVA_MODULE_OPTIONS[2]).count(),
            1
        );
        let host = SparkHost {
            spark_home: Some("/s".into()),
            conf_dir: Some("/c".into()),
            java_home: Some("/jdk".into()),
        };
        let (program, _) = spark_jvm_command(&args, &mut env, 512, &host).expect("command");
        assert_eq!(program, "/jdk/bin/java");
        assert_eq!(env.keys().collect::<Vec<_>>(), ["SPARK_USER"]);
        let mut env = BTreeMap::from([
            (SPARK_MAIN_CLASS_ENV.to_owned(), args[2].clone()),
            (SPARK_JAVA_OPTS_ENV.to_owned(), "2".to_owned()),
        ]);
        assert_eq!(
            spark_jvm_command(&args, &mut env.clone(), 512, &SparkHost::default()),
            Err("SPARK_HOME is not set on this worker".into())
        );
        env.insert(SPARK_JAVA_OPTS_ENV.to_owned(), "1".to_owned());
        assert!(spark_jvm_command(&args, &mut env, 512, &home("/s")).is_err());
    }
}
