//! A master in the caller's runtime, on an ephemeral port, for in-process tests of the master's
//! front ends and of its peers (a worker shell with a fake launcher): no child process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::{Listeners, MasterArgs, MasterConfig};

pub struct InProcessMaster {
    pub addr: SocketAddr,
    /// `spark://127.0.0.1:<port>`.
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl InProcessMaster {
    /// Starts a master on 127.0.0.1:0 with `-D` options (`spark.worker.timeout=5s`…) and its
    /// artifact store in `artifacts_dir`; no web UI, no REST server.
    pub async fn start(opts: &[(&str, &str)], artifacts_dir: &Path) -> Result<Self, String> {
        let args = MasterArgs {
            host: Some("127.0.0.1".into()),
            port: Some(0),
            webui_port: Some(0),
            properties_file: None,
            help: None,
        };
        let mut java_opts = format!(
            "-Dspark.master.artifacts.dir={} -Dspark.master.rest.enabled=false",
            artifacts_dir.display()
        );
        for (k, v) in opts {
            java_opts.push_str(&format!(" -D{k}={v}"));
        }
        let env = HashMap::from([("SPARK_MASTER_OPTS".to_string(), java_opts)]);
        let cfg = MasterConfig::resolve(&args, &env)?;
        let rpc = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = rpc.local_addr().map_err(|e| e.to_string())?;
        let cfg = cfg.with_bound_ports(addr.port(), 0);
        let url = cfg.core.master_url.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let listeners = Listeners {
                rpc,
                web: None,
                rest: None,
            };
            crate::run(cfg, listeners, async move {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        Ok(Self {
            addr,
            url,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A gRPC client of this master.
    pub async fn client(
        &self,
    ) -> Result<flint_proto::pb::master_client::MasterClient<tonic::transport::Channel>, String>
    {
        let ch = flint_proto::channel::connect_channel(&self.url, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        Ok(flint_proto::pb::master_client::MasterClient::new(ch))
    }

    /// Stops the master and waits (at most 20 s) until it has.
    pub async fn shutdown(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .map_err(|_| "the master did not stop in 20 s".to_string())?
                .map_err(|e| e.to_string())?,
            None => Ok(()),
        }
    }
}

impl Drop for InProcessMaster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
