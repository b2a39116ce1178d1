use std::collections::HashMap;
use std::process::ExitCode;

use clap::Parser;
use flint_master::{Listeners, MasterArgs, MasterConfig};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    flint_daemon::init_logging();
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
    // Spark's REST submission server: off unless spark.master.rest.enabled=true.
    let rest = match rest_listener(&cfg.conf).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flint-master: {e}");
            return ExitCode::from(1);
        }
    };
    let port = rpc.local_addr().map(|a| a.port()).unwrap_or(cfg.port);
    let webui_port = web.local_addr().map(|a| a.port()).unwrap_or(cfg.webui_port);
    let mut cfg = cfg.with_bound_ports(port, webui_port);
    // `<SPARK_HOME>/jars/*` goes on the class path of drivers submitted through REST.
    if let Some(home) = env.get("SPARK_HOME") {
        cfg.conf.set_if_missing("spark.home", home);
    }
    match flint_master::run(
        cfg,
        Listeners {
            rpc,
            web: Some(web),
            rest,
        },
        flint_daemon::shutdown_signal(),
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

async fn rest_listener(
    conf: &flint_domain::conf::SparkConf,
) -> Result<Option<TcpListener>, String> {
    if !conf.get_bool("spark.master.rest.enabled", false)? {
        return Ok(None);
    }
    let port: u16 = conf.get_parsed("spark.master.rest.port", 6066u16)?;
    TcpListener::bind(("0.0.0.0", port))
        .await
        .map(Some)
        .map_err(|e| format!("cannot listen on REST port {port}: {e}"))
}
