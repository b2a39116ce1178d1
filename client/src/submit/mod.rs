//! `flint-submit`: what each action does. Errors come back as one readable line; the
//! binary prints it and exits non-zero.

pub mod args;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use flint_domain::types::*;

use crate::{ClientError, MasterClient};
pub use args::{Action, HELP, Submit, parse};

/// Outcome of a command: the exit status to return.
pub type Exit = i32;

fn err(e: ClientError) -> String {
    e.to_string()
}

async fn connect(master: &str) -> Result<MasterClient, String> {
    MasterClient::connect_with_timeout(master, Duration::from_secs(5))
        .await
        .map_err(err)
}

pub async fn run(s: Submit) -> Result<Exit, String> {
    match s.action.clone() {
        Action::Help => {
            println!("{HELP}");
            Ok(0)
        }
        Action::Kill(id) if uses_rest(&s) => rest_kill(&s.master, &id).await,
        Action::Status(id) if uses_rest(&s) => rest_status(&s.master, &id).await,
        Action::Kill(id) => {
            let r = async {
                let mut c = connect(&s.master).await?;
                c.kill_driver(&DriverId(id.clone())).await.map_err(err)
            };
            match r.await {
                Ok(msg) => {
                    println!("{msg}");
                    Ok(0)
                }
                Err(e) if answered_like_rest(&e) => rest_kill(&s.master, &id).await,
                Err(e) => Err(e),
            }
        }
        Action::Status(id) => {
            let r = async {
                let mut c = connect(&s.master).await?;
                c.driver_status(&DriverId(id.clone())).await.map_err(err)
            };
            match r.await {
                Ok(d) => {
                    println!("{}", describe_driver(&d));
                    Ok(0)
                }
                Err(e) if answered_like_rest(&e) => rest_status(&s.master, &id).await,
                Err(e) => Err(e),
            }
        }
        Action::Logs {
            driver_id,
            stderr,
            follow,
        } => {
            let mut c = connect(&s.master).await?;
            let log_type = if stderr {
                LogType::Stderr
            } else {
                LogType::Stdout
            };
            follow_logs(&mut c, DriverId(driver_id), log_type, follow).await?;
            Ok(0)
        }
        Action::Submit {
            app,
            app_args,
            wait,
        } => {
            if s.cluster_mode() {
                submit_cluster(&s, &app, app_args, wait).await
            } else {
                submit_client(&s, &app, app_args).await
            }
        }
    }
}

/// An HTTP server that is not gRPC answered (Spark's REST server on a port other than
/// `spark.master.rest.port`): tonic then reads its JSON error as a malformed gRPC message.
fn answered_like_rest(e: &str) -> bool {
    e.contains("while receiving response with status")
}

async fn rest_kill(master: &str, id: &str) -> Result<Exit, String> {
    let r = crate::rest::rest_kill(master, id)
        .await
        .map_err(|e| e.to_string())?;
    let msg = r.message.unwrap_or_default();
    if !r.success {
        return Err(msg);
    }
    println!("{msg}");
    Ok(0)
}

async fn rest_status(master: &str, id: &str) -> Result<Exit, String> {
    let r = crate::rest::rest_status(master, id)
        .await
        .map_err(|e| e.to_string())?;
    if !r.success {
        return Err(r
            .message
            .unwrap_or_else(|| format!("Driver {id} does not exist")));
    }
    let mut line = format!(
        "Driver {id} is {}",
        r.driver_state.as_deref().unwrap_or("UNKNOWN")
    );
    if let (Some(w), Some(hp)) = (&r.worker_id, &r.worker_host_port) {
        line.push_str(&format!(" on worker {w} ({hp})"));
    }
    println!("{line}");
    Ok(0)
}

/// `--kill`/`--status` against the REST port (`spark.master.rest.port`, 6066) speak
/// Spark's REST protocol, as `spark-submit` does; anything else tries the master's gRPC
/// first, and Spark's REST protocol when a REST server answered instead.
fn uses_rest(s: &Submit) -> bool {
    let port = s
        .get("spark.master.rest.port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(6066);
    crate::rest::is_rest_url(&s.master, port)
}

pub fn describe_driver(d: &DriverView) -> String {
    let mut line = format!("Driver {} is {}", d.id, d.state);
    if let (Some(w), Some(hp)) = (&d.worker_id, &d.worker_host_port) {
        line.push_str(&format!(" on worker {w} ({hp})"));
    }
    if let Some(code) = d.exit_status {
        line.push_str(&format!(", exit status {code}"));
    }
    if let Some(m) = &d.message {
        line.push_str(&format!(": {m}"));
    }
    if let Some(r) = &d.relaunched_as {
        line.push_str(&format!(" (relaunched as {r})"));
    }
    line
}

/// The local file of a client-mode or uploadable app, checked to exist.
fn local_app(app: &str) -> Result<Option<PathBuf>, String> {
    if app.starts_with("http://") || app.starts_with("https://") {
        return Ok(None);
    }
    let p = PathBuf::from(
        app.strip_prefix("local://")
            .or_else(|| app.strip_prefix("local:"))
            .or_else(|| app.strip_prefix("file:"))
            .unwrap_or(app),
    );
    if app.contains("://") && !app.starts_with("local://") {
        return Err(format!(
            "unsupported app location '{app}' (use a path, local:///path or http://)"
        ));
    }
    Ok(Some(p))
}

fn driver_env(s: &Submit, mode: &str) -> Vec<(String, String)> {
    vec![
        ("FLINT_MASTER_URL".into(), s.master.clone()),
        (
            "FLINT_APP_NAME".into(),
            s.get("spark.app.name").unwrap_or("flint-app").to_owned(),
        ),
        ("FLINT_CONF".into(), s.conf_env()),
        ("FLINT_DEPLOY_MODE".into(), mode.into()),
    ]
}

async fn submit_client(s: &Submit, app: &str, app_args: Vec<String>) -> Result<Exit, String> {
    let path = local_app(app)?.ok_or_else(|| {
        format!(
            "client mode runs the driver here: '{app}' must be a local file (download it first)"
        )
    })?;
    if !path.is_file() {
        return Err(format!("app file not found: {}", path.display()));
    }
    // Fail early, with one line, when the master cannot be reached.
    connect(&s.master).await?;
    let mut cmd = tokio::process::Command::new(&path);
    cmd.args(&app_args).envs(driver_env(s, "client"));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let status = tokio::select! {
        st = child.wait() => st.map_err(|e| e.to_string())?,
        _ = flint_daemon::shutdown_signal() => {
            // Pass the interruption on to the driver, then report how it ended.
            if let Some(pid) = child.id() {
                // SAFETY: plain kill(2) on our own child.
                unsafe { libc::kill(pid as i32, libc::SIGTERM); }
            }
            child.wait().await.map_err(|e| e.to_string())?
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

async fn submit_cluster(
    s: &Submit,
    app: &str,
    app_args: Vec<String>,
    wait: bool,
) -> Result<Exit, String> {
    let mut c = connect(&s.master).await?;
    let (app_resource, app_sha256) = match local_app(app)? {
        Some(p) if !app.starts_with("local:") => {
            if !p.is_file() {
                return Err(format!("app file not found: {}", p.display()));
            }
            let (uri, sha) = c.upload_artifact(&p).await.map_err(err)?;
            eprintln!("Uploaded {} as {uri}", p.display());
            (uri, Some(sha))
        }
        _ => (app.to_owned(), None),
    };
    let mut env = std::collections::BTreeMap::new();
    for (k, v) in driver_env(s, "cluster") {
        if k != "FLINT_MASTER_URL" {
            env.insert(k, v); // the worker sets FLINT_MASTER_URL to the master it uses
        }
    }
    let desc = DriverDescription {
        name: s.get("spark.app.name").unwrap_or("flint-app").to_owned(),
        app_resource,
        app_sha256,
        command: CommandSpec {
            program: "{{USER_JAR}}".into(),
            args: app_args,
            env,
            ..Default::default()
        },
        cores: s.driver_cores(),
        memory_mb: s.driver_memory_mb(),
        supervise: s.supervise(),
    };
    let (id, msg) = c.submit_driver(desc).await.map_err(err)?;
    eprintln!("{msg}");
    println!("{id}");
    if !wait {
        return Ok(0);
    }
    follow_driver(&mut c, id).await
}

/// Streams a driver's stdout until it ends; returns its exit status.
async fn follow_driver(c: &mut MasterClient, mut id: DriverId) -> Result<Exit, String> {
    let mut offset = 0u64;
    let mut out = std::io::stdout();
    loop {
        let d = c.driver_status(&id).await.map_err(err)?;
        offset = print_new(c, &id, LogType::Stdout, offset, &mut out).await;
        if d.state == DriverState::Relaunching
            && let Some(next) = d.relaunched_as.clone()
        {
            eprintln!("{}", describe_driver(&d));
            id = next;
            offset = 0;
            continue;
        }
        if d.state.is_finished() {
            // Whatever the driver wrote last.
            loop {
                let before = offset;
                offset = print_new(c, &id, LogType::Stdout, offset, &mut out).await;
                if offset == before {
                    break;
                }
            }
            eprintln!("{}", describe_driver(&d));
            return Ok(match d.state {
                DriverState::Finished => 0,
                _ => d.exit_status.filter(|&c| c != 0).unwrap_or(1),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn print_new(
    c: &mut MasterClient,
    id: &DriverId,
    log_type: LogType,
    offset: u64,
    out: &mut impl Write,
) -> u64 {
    let req = LogRequest {
        target: LogTarget::Driver(id.clone()),
        log_type,
        offset: Some(offset),
        max_bytes: 1 << 20,
    };
    match c.read_log(req).await {
        Ok(slice) if !slice.data.is_empty() => {
            let _ = out.write_all(&slice.data);
            let _ = out.flush();
            slice.offset + slice.data.len() as u64
        }
        _ => offset,
    }
}

async fn follow_logs(
    c: &mut MasterClient,
    id: DriverId,
    log_type: LogType,
    follow: bool,
) -> Result<(), String> {
    let mut out = std::io::stdout();
    let mut offset = 0u64;
    loop {
        let req = LogRequest {
            target: LogTarget::Driver(id.clone()),
            log_type,
            offset: Some(offset),
            max_bytes: 1 << 20,
        };
        match c.read_log(req).await {
            Ok(slice) => {
                let _ = out.write_all(&slice.data);
                let _ = out.flush();
                offset = slice.offset + slice.data.len() as u64;
                if !slice.data.is_empty() && offset < slice.total_size {
                    continue;
                }
            }
            Err(e) if !follow => return Err(err(e)),
            Err(_) => {}
        }
        if !follow {
            return Ok(());
        }
        let d = c.driver_status(&id).await.map_err(err)?;
        if d.state.is_finished() {
            // One last read for what was written just before the end.
            let req = LogRequest {
                target: LogTarget::Driver(id.clone()),
                log_type,
                offset: Some(offset),
                max_bytes: 1 << 20,
            };
            if let Ok(slice) = c.read_log(req).await {
                let _ = out.write_all(&slice.data);
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
