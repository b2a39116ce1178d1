use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use flint_master::{Listeners, MasterArgs, MasterConfig};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    flint_proto::logging::init();
    let args = MasterArgs::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let cfg = match MasterConfig::resolve(&args, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flint-master: {e}");
            return ExitCode::from(2);
        }
    };
    let rpc = match TcpListener::bind(("0.0.0.0", cfg.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flint-master: cannot listen on port {}: {e}", cfg.port);
            return ExitCode::from(1);
        }
    };
    let web = match TcpListener::bind(("0.0.0.0", cfg.webui_port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "flint-master: cannot listen on web UI port {}: {e}",
                cfg.webui_port
            );
            return ExitCode::from(1);
        }
    };
    let port = rpc.local_addr().map(|a| a.port()).unwrap_or(cfg.port);
    let webui_port = web.local_addr().map(|a| a.port()).unwrap_or(cfg.webui_port);
    let cfg = cfg.with_bound_ports(port, webui_port);
    match flint_master::run(
        cfg,
        Listeners {
            rpc,
            web: Some(web),
        },
        flint_proto::logging::shutdown_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flint-master: {e}");
            ExitCode::from(1)
        }
    }
}
