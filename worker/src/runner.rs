//! Runs one executor or one driver as a child process and reports its life to the worker's
//! core as [`ChildEvent`]s (Spark's ExecutorRunner and DriverRunner). What follows an exit
//! (relaunch a supervised driver, or not) is the core's decision, received as a
//! [`ChildControl`].
//!
//! The environment contract every executor gets (documented in docs/runtime-contract.md):
//! `FLINT_ROLE=executor`, `FLINT_EXECUTOR_ID`, `FLINT_APP_ID`, `FLINT_EXECUTOR_CORES`,
//! `FLINT_EXECUTOR_MEMORY_MB`, `FLINT_HOSTNAME`, `FLINT_WORKER_ID`, `FLINT_WORKER_URL`,
//! `FLINT_MASTER_URL`, plus Spark's `SPARK_EXECUTOR_MEMORY`, `SPARK_EXECUTOR_DIRS`,
//! `SPARK_LOG_URL_STDOUT` and `SPARK_LOG_URL_STDERR`. A Spark executor command (a
//! [`Launch::SparkJvm`], see [`spark_jvm_command`]) becomes a JVM command line built from the
//! worker's `SPARK_HOME`; so does a cluster-mode Spark driver (`DriverWrapper`), whose
//! application jar is copied into its directory first, as Spark's DriverRunner does.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flint_domain::types::*;
use flint_worker_core::ChildEvent;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::fetch;
use crate::launcher::ChildControl;
use crate::process::{Launcher, ProcessSpec, substitute};
use crate::spark_jvm::{JvmRole, SparkHost, spark_jvm_command};

/// What every runner needs to know about its worker.
#[derive(Clone, Debug)]
pub struct WorkerEnv {
    pub worker_id: WorkerId,
    pub host: String,
    pub worker_url: String,
    pub webui_url: String,
    pub work_dir: PathBuf,
    pub kill_grace: Duration,
}

impl WorkerEnv {
    /// What every child learns about where it runs (executors and drivers alike).
    fn child_env(&self, master_url: &str) -> [(&'static str, String); 4] {
        [
            ("FLINT_HOSTNAME", self.host.clone()),
            ("FLINT_WORKER_ID", self.worker_id.0.clone()),
            ("FLINT_WORKER_URL", self.worker_url.clone()),
            ("FLINT_MASTER_URL", master_url.to_owned()),
        ]
    }
}

/// A command with its placeholders substituted (Spark substitutes them in the JVM options
/// as well as in the arguments).
struct Substituted {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    jvm: Option<SparkJvm>,
}

fn substitute_all(cmd: &CommandSpec, vars: &[(&str, &str)]) -> Substituted {
    let all = |v: &[String]| v.iter().map(|a| substitute(a, vars)).collect::<Vec<_>>();
    Substituted {
        program: substitute(&cmd.program, vars),
        args: all(&cmd.args),
        env: cmd
            .env
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, vars)))
            .collect(),
        jvm: cmd.spark_jvm().map(|j| SparkJvm {
            main_class: j.main_class.clone(),
            java_opts: all(&j.java_opts),
            class_path: all(&j.class_path),
            library_path: all(&j.library_path),
            spark_line: j.spark_line.clone(),
        }),
    }
}

/// Waits for a kill order; a closed control channel (the worker is gone) counts as one.
async fn kill_ordered(control: &mut mpsc::Receiver<ChildControl>) {
    loop {
        match control.recv().await {
            Some(ChildControl::Kill) | None => return,
            Some(other) => debug!(?other, "ignored while the child runs"),
        }
    }
}

pub async fn run_executor(
    env: Arc<WorkerEnv>,
    launcher: Arc<Launcher>,
    master_url: String,
    l: LaunchExecutor,
    events: mpsc::Sender<ChildEvent>,
    mut control: mpsc::Receiver<ChildControl>,
) {
    let report = async |state, message: Option<String>, exit_status| {
        let _ = events
            .send(ChildEvent::Executor {
                app_id: l.app_id.clone(),
                executor_id: l.executor_id,
                state,
                message,
                exit_status,
            })
            .await;
    };
    let dir = env
        .work_dir
        .join(l.app_id.as_str())
        .join(l.executor_id.to_string());
    let exec_id = l.executor_id.to_string();
    let cores = l.cores.to_string();
    let rp = l.resource_profile_id.to_string();
    let vars = [
        ("EXECUTOR_ID", exec_id.as_str()),
        ("APP_ID", l.app_id.as_str()),
        ("CORES", cores.as_str()),
        ("HOSTNAME", env.host.as_str()),
        ("WORKER_URL", env.worker_url.as_str()),
        ("RESOURCE_PROFILE_ID", rp.as_str()),
    ];
    let Substituted {
        mut program,
        mut args,
        env: mut child_env,
        jvm,
    } = substitute_all(&l.app.command, &vars);
    if let Some(jvm) = &jvm {
        match spark_jvm_command(
            jvm,
            &args,
            &mut child_env,
            l.memory_mb,
            &SparkHost::from_env(),
            JvmRole::Executor,
        ) {
            Ok((p, a)) => (program, args) = (p, a),
            Err(e) => {
                warn!(app_id = %l.app_id, exec_id = l.executor_id, error = %e, "cannot build the Spark executor's command");
                report(ExecutorState::Failed, Some(e), None).await;
                return;
            }
        }
    }
    if !matches!(fetch::classify(&program), Ok(fetch::Source::Local(_))) {
        match fetch::fetch(
            &master_url,
            &program,
            None,
            &env.work_dir.join(".artifacts"),
        )
        .await
        {
            Ok(p) => program = p.display().to_string(),
            Err(e) => {
                warn!(app_id = %l.app_id, exec_id = l.executor_id, error = %e, "cannot fetch the executor's program");
                report(ExecutorState::Failed, Some(e), None).await;
                return;
            }
        }
    }
    let log_url = |t: &str| {
        format!(
            "{}/logPage/?appId={}&executorId={}&logType={t}",
            env.webui_url, l.app_id, l.executor_id
        )
    };
    for (k, v) in [
        ("FLINT_ROLE", "executor".to_owned()),
        ("FLINT_EXECUTOR_ID", exec_id.clone()),
        ("FLINT_APP_ID", l.app_id.0.clone()),
        ("FLINT_EXECUTOR_CORES", cores.clone()),
        ("FLINT_EXECUTOR_MEMORY_MB", l.memory_mb.to_string()),
        ("SPARK_EXECUTOR_MEMORY", format!("{}m", l.memory_mb)),
        ("SPARK_EXECUTOR_DIRS", dir.join("tmp").display().to_string()),
        ("SPARK_LOG_URL_STDOUT", log_url("stdout")),
        ("SPARK_LOG_URL_STDERR", log_url("stderr")),
    ]
    .into_iter()
    .chain(env.child_env(&master_url))
    {
        child_env.insert(k.to_owned(), v);
    }
    let spec = ProcessSpec {
        program,
        args,
        env: child_env,
        cwd: dir.clone(),
        stdout: dir.join("stdout"),
        stderr: dir.join("stderr"),
    };
    let _ = std::fs::create_dir_all(dir.join("tmp"));
    let mut child = match launcher.spawn(&spec) {
        Ok(c) => c,
        Err(e) => {
            warn!(app_id = %l.app_id, exec_id = l.executor_id, error = %e, "failed to launch executor");
            report(
                ExecutorState::Failed,
                Some(format!("Failed to launch executor: {e}")),
                None,
            )
            .await;
            return;
        }
    };
    info!(app_id = %l.app_id, exec_id = l.executor_id, pid = child.pid(), "executor started");
    report(ExecutorState::Running, None, None).await;
    tokio::select! {
        r = child.wait() => match r {
            Ok(exit) => {
                info!(app_id = %l.app_id, exec_id = l.executor_id, status = exit.status(), "executor exited");
                report(ExecutorState::Exited, Some(exit.describe()), Some(exit.status())).await;
            }
            Err(e) => report(ExecutorState::Failed, Some(format!("lost track of the executor process: {e}")), None).await,
        },
        _ = kill_ordered(&mut control) => {
            let r = child.kill(env.kill_grace).await;
            info!(app_id = %l.app_id, exec_id = l.executor_id, "executor killed");
            report(ExecutorState::Killed, Some("killed by the worker".into()), r.ok().map(|e| e.status())).await;
        }
    }
}

/// Copies `file` into `dir` (created if needed) under its own name; returns the copy's path.
fn copy_into(file: &str, dir: &std::path::Path) -> Result<String, String> {
    let src = std::path::Path::new(file);
    let name = src
        .file_name()
        .ok_or_else(|| format!("'{file}' has no file name"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let dst = dir.join(name);
    std::fs::copy(src, &dst)
        .map_err(|e| format!("cannot copy the application jar '{file}': {e}"))?;
    Ok(dst.display().to_string())
}

pub async fn run_driver(
    env: Arc<WorkerEnv>,
    launcher: Arc<Launcher>,
    master_url: String,
    driver_id: DriverId,
    desc: DriverDescription,
    events: mpsc::Sender<ChildEvent>,
    mut control: mpsc::Receiver<ChildControl>,
) {
    let send = async |ev: ChildEvent| {
        let _ = events.send(ev).await;
    };
    let report = async |state, message: Option<String>, exit_status| {
        send(ChildEvent::DriverEnded {
            driver_id: driver_id.clone(),
            state,
            message,
            exit_status,
        })
        .await;
    };
    let dir = env.work_dir.join(driver_id.as_str());
    let user_jar = if desc.app_resource.trim().is_empty() {
        String::new()
    } else {
        match fetch::fetch(
            &master_url,
            &desc.app_resource,
            desc.app_sha256.as_deref(),
            &env.work_dir.join(".artifacts"),
        )
        .await
        {
            Ok(p) if p.is_relative() => dir.join(p).display().to_string(),
            Ok(p) => p.display().to_string(),
            Err(e) => {
                warn!(%driver_id, error = %e, "cannot fetch the driver's application");
                report(DriverState::Error, Some(e), None).await;
                return;
            }
        }
    };
    let spark = desc.command.spark_jvm().is_some();
    let user_jar = if spark && !user_jar.is_empty() && !desc.app_resource.starts_with("local:") {
        // Spark's DriverRunner runs the driver from a copy of the jar in its own directory
        // (`local:` resources are on every node already and used in place).
        match copy_into(&user_jar, &dir) {
            Ok(p) => p,
            Err(e) => {
                warn!(%driver_id, error = %e, "cannot copy the driver's jar");
                report(DriverState::Error, Some(e), None).await;
                return;
            }
        }
    } else {
        user_jar
    };
    let vars = [
        ("WORKER_URL", env.worker_url.as_str()),
        ("USER_JAR", user_jar.as_str()),
        ("DRIVER_ID", driver_id.as_str()),
    ];
    let Substituted {
        mut program,
        mut args,
        env: mut child_env,
        jvm,
    } = substitute_all(&desc.command, &vars);
    if let Some(jvm) = &jvm {
        match spark_jvm_command(
            jvm,
            &args,
            &mut child_env,
            desc.memory_mb,
            &SparkHost::from_env(),
            JvmRole::Driver,
        ) {
            Ok((p, a)) => (program, args) = (p, a),
            Err(e) => {
                warn!(%driver_id, error = %e, "cannot build the Spark driver's command");
                report(DriverState::Error, Some(e), None).await;
                return;
            }
        }
    }
    for (k, v) in [
        ("FLINT_ROLE", "driver".to_owned()),
        ("FLINT_DRIVER_ID", driver_id.0.clone()),
        ("FLINT_APP_RESOURCE", desc.app_resource.clone()),
        ("FLINT_DRIVER_CORES", desc.cores.to_string()),
        ("FLINT_DRIVER_MEMORY_MB", desc.memory_mb.to_string()),
    ]
    .into_iter()
    .chain(env.child_env(&master_url))
    {
        child_env.insert(k.to_owned(), v);
    }
    let spec = ProcessSpec {
        program,
        args,
        env: child_env,
        cwd: dir.clone(),
        stdout: dir.join("stdout"),
        stderr: dir.join("stderr"),
    };
    let mut attempt = 1u32;
    loop {
        let started = Instant::now();
        let mut child = match launcher.spawn(&spec) {
            Ok(c) => c,
            Err(e) => {
                warn!(%driver_id, error = %e, "failed to launch driver");
                report(
                    DriverState::Error,
                    Some(format!("Failed to launch driver: {e}")),
                    None,
                )
                .await;
                return;
            }
        };
        info!(%driver_id, pid = child.pid(), attempt, "driver started");
        send(ChildEvent::DriverStarted {
            driver_id: driver_id.clone(),
            attempt,
        })
        .await;
        let exit = tokio::select! {
            r = child.wait() => r,
            _ = kill_ordered(&mut control) => {
                let r = child.kill(env.kill_grace).await;
                report(DriverState::Killed, Some("killed by request".into()), r.ok().map(|e| e.status())).await;
                return;
            }
        };
        let exit = match exit {
            Ok(e) => e,
            Err(e) => {
                report(
                    DriverState::Error,
                    Some(format!("lost track of the driver process: {e}")),
                    None,
                )
                .await;
                return;
            }
        };
        send(ChildEvent::DriverExited {
            driver_id: driver_id.clone(),
            success: exit.success(),
            exit_status: exit.status(),
            description: exit.describe(),
            run_ms: started.elapsed().as_millis() as u64,
        })
        .await;
        // The core decides: relaunch (a supervised driver) or release.
        loop {
            match control.recv().await {
                Some(ChildControl::Relaunch { attempt: next }) => {
                    attempt = next;
                    break;
                }
                Some(ChildControl::Release) | None => return,
                // A kill that crossed the exit: the core answers it with a release.
                Some(ChildControl::Kill) => {}
            }
        }
    }
}
