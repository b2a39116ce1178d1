//! The one set of rules for what the cluster may be asked to run. Every front end (gRPC,
//! Spark's RPC, Spark's REST server) only translates its wire format into these descriptions;
//! the master's core checks them here, so a rule cannot differ between front ends.

use std::fmt;

use crate::types::{AppDescription, CommandSpec, DriverDescription, Launch};

/// A description that cannot be run: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn invalid(field: &'static str, reason: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        field,
        reason: reason.into(),
    })
}

fn at_least_one(field: &'static str, v: u64) -> Result<(), Invalid> {
    if v == 0 {
        return invalid(field, "must be at least 1, got 0");
    }
    Ok(())
}

impl CommandSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.program.trim().is_empty() {
            return invalid("command.program", "must not be empty");
        }
        if let Launch::SparkJvm(j) = &self.launch
            && j.main_class.trim().is_empty()
        {
            return invalid("command.spark_jvm.main_class", "must not be empty");
        }
        Ok(())
    }
}

impl AppDescription {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() {
            return invalid("app.name", "must not be empty");
        }
        if let Some(c) = self.cores_per_executor {
            at_least_one("app.cores_per_executor", c.into())?;
        }
        at_least_one("app.memory_per_executor_mb", self.memory_per_executor_mb)?;
        if let Some(c) = self.max_cores {
            at_least_one("app.max_cores", c.into())?;
        }
        self.command.validate()
    }
}

impl DriverDescription {
    pub fn validate(&self) -> Result<(), Invalid> {
        at_least_one("driver.cores", self.cores.into())?;
        at_least_one("driver.memory_mb", self.memory_mb)?;
        if let Some(sha) = &self.app_sha256
            && !crate::digest::is_sha256_hex(sha)
        {
            return invalid("driver.app_sha256", "must be 64 lowercase hex digits");
        }
        self.command.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SparkJvm;

    fn app() -> AppDescription {
        AppDescription {
            name: "pi".into(),
            user: "u".into(),
            cores_per_executor: Some(1),
            memory_per_executor_mb: 512,
            max_cores: Some(4),
            command: CommandSpec {
                program: "/bin/app".into(),
                ..Default::default()
            },
            initial_executor_limit: None,
            app_ui_url: String::new(),
        }
    }

    fn driver() -> DriverDescription {
        DriverDescription {
            name: "d".into(),
            app_resource: "file:/a.jar".into(),
            app_sha256: None,
            command: CommandSpec {
                program: "java".into(),
                launch: Launch::SparkJvm(Box::new(SparkJvm {
                    main_class: "org.apache.spark.deploy.worker.DriverWrapper".into(),
                    ..Default::default()
                })),
                ..Default::default()
            },
            cores: 1,
            memory_mb: 1024,
            supervise: false,
        }
    }

    #[test]
    fn good_descriptions_pass() {
        assert_eq!(app().validate(), Ok(()));
        assert_eq!(driver().validate(), Ok(()));
        let mut a = app();
        a.cores_per_executor = None;
        a.max_cores = None;
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn every_rule_names_its_field() {
        let cases: Vec<(AppDescription, &str)> = vec![
            (
                AppDescription {
                    name: " ".into(),
                    ..app()
                },
                "app.name",
            ),
            (
                AppDescription {
                    cores_per_executor: Some(0),
                    ..app()
                },
                "app.cores_per_executor",
            ),
            (
                AppDescription {
                    memory_per_executor_mb: 0,
                    ..app()
                },
                "app.memory_per_executor_mb",
            ),
            (
                AppDescription {
                    max_cores: Some(0),
                    ..app()
                },
                "app.max_cores",
            ),
            (
                AppDescription {
                    command: CommandSpec::default(),
                    ..app()
                },
                "command.program",
            ),
        ];
        for (a, field) in cases {
            assert_eq!(a.validate().map_err(|e| e.field), Err(field));
        }
        let mut d = driver();
        d.cores = 0;
        assert_eq!(d.validate().map_err(|e| e.field), Err("driver.cores"));
        let mut d = driver();
        d.memory_mb = 0;
        assert_eq!(d.validate().map_err(|e| e.field), Err("driver.memory_mb"));
        let mut d = driver();
        d.app_sha256 = Some("abc".into());
        assert_eq!(d.validate().map_err(|e| e.field), Err("driver.app_sha256"));
        let mut d = driver();
        if let Launch::SparkJvm(j) = &mut d.command.launch {
            j.main_class.clear();
        }
        let e = d.validate().expect_err("no main class");
        assert_eq!(e.field, "command.spark_jvm.main_class");
        assert_eq!(
            e.to_string(),
            "invalid command.spark_jvm.main_class: must not be empty"
        );
    }
}
