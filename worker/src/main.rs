use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use flint_worker::{Listeners, WorkerArgs, WorkerConfig};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    flint_daemon::init_logging();
    let args = WorkerArgs::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut cfg = match WorkerConfig::resolve(&args, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flint-worker: {e}");
            return ExitCode::from(2);
        }
    };
    let rpc = match TcpListener::bind(("0.0.0.0", cfg.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flint-worker: cannot listen on port {}: {e}", cfg.port);
            return ExitCode::from(1);
        }
    };
    let web = match TcpListener::bind(("0.0.0.0", cfg.webui_port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "flint-worker: cannot listen on web UI port {}: {e}",
                cfg.webui_port
            );
            return ExitCode::from(1);
        }
    };
    cfg.port = rpc.local_addr().map(|a| a.port()).unwrap_or(cfg.port);
    cfg.webui_port = web.local_addr().map(|a| a.port()).unwrap_or(cfg.webui_port);
    match flint_worker::run(
        cfg,
        Listeners {
            rpc,
            web: Some(web),
        },
        flint_daemon::shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flint-worker: {e}");
            ExitCode::from(1)
        }
    }
}
