//! Flint's client library: a typed async [`MasterClient`] for applications, tools,
//! `flint-submit` and the tests.

pub mod runtime;
pub mod submit;

use std::time::Duration;

use flint_domain::types::*;
use flint_proto::pb;
use flint_proto::pb::master_client::MasterClient as PbClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid master URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to master {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{}", .0.message())]
    Status(#[from] tonic::Status),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The gRPC code, when the master answered with an error.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Self::Status(s) => Some(s.code()),
            _ => None,
        }
    }
}

impl From<flint_proto::channel::ConnectError> for ClientError {
    fn from(e: flint_proto::channel::ConnectError) -> Self {
        match e {
            flint_proto::channel::ConnectError::BadUrl(u) => Self::BadUrl(u),
            flint_proto::channel::ConnectError::Connect { url, reason } => {
                Self::Connect { url, reason }
            }
        }
    }
}

impl From<flint_proto::ConversionError> for ClientError {
    fn from(e: flint_proto::ConversionError) -> Self {
        Self::Protocol(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Opens a channel to the first reachable master of `spark://h1:p1[,h2:p2]`.
pub async fn connect_channel(master_url: &str, timeout: Duration) -> Result<Channel> {
    Ok(flint_proto::channel::connect_channel(master_url, timeout).await?)
}

#[derive(Clone)]
pub struct MasterClient {
    inner: PbClient<Channel>,
    url: String,
}

impl MasterClient {
    pub async fn connect(master_url: &str) -> Result<Self> {
        Self::connect_with_timeout(master_url, Duration::from_secs(5)).await
    }

    pub async fn connect_with_timeout(master_url: &str, timeout: Duration) -> Result<Self> {
        let ch = connect_channel(master_url, timeout).await?;
        Ok(Self {
            inner: PbClient::new(ch).max_decoding_message_size(64 << 20),
            url: master_url.to_owned(),
        })
    }

    pub fn master_url(&self) -> &str {
        &self.url
    }

    pub async fn cluster_state(&mut self) -> Result<ClusterSnapshot> {
        let r = self
            .inner
            .cluster_state(pb::ClusterStateRequest {})
            .await?
            .into_inner();
        Ok(r.try_into()?)
    }

    /// Returns the new driver's id and the master's message.
    pub async fn submit_driver(&mut self, driver: DriverDescription) -> Result<(DriverId, String)> {
        let r = self
            .inner
            .submit_driver(pb::SubmitDriverRequest {
                driver: Some(driver.into()),
            })
            .await?
            .into_inner();
        Ok((DriverId(r.driver_id), r.message))
    }

    pub async fn kill_driver(&mut self, id: &DriverId) -> Result<String> {
        Ok(self
            .inner
            .kill_driver(pb::KillDriverRequest {
                driver_id: id.0.clone(),
            })
            .await?
            .into_inner()
            .message)
    }

    pub async fn driver_status(&mut self, id: &DriverId) -> Result<DriverView> {
        let r = self
            .inner
            .driver_status(pb::DriverStatusRequest {
                driver_id: id.0.clone(),
            })
            .await?
            .into_inner();
        Ok(r.driver
            .ok_or_else(|| ClientError::Protocol("driver status without a driver".into()))?
            .try_into()?)
    }

    pub async fn kill_application(&mut self, id: &AppId) -> Result<String> {
        Ok(self
            .inner
            .kill_application(pb::KillApplicationRequest {
                app_id: id.0.clone(),
            })
            .await?
            .into_inner()
            .message)
    }

    /// Streams a local file to the master's artifact store (content-addressed by SHA-256;
    /// a file the master already has is not sent again). Returns its `flint://` URI and digest.
    pub async fn upload_artifact(&mut self, path: &std::path::Path) -> Result<(String, String)> {
        use sha2::{Digest, Sha256};
        use tokio::io::AsyncReadExt;
        let io = |e: std::io::Error| ClientError::Protocol(format!("{}: {e}", path.display()));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::Protocol(format!("{}: not a file name", path.display())))?
            .to_owned();
        // First pass: the digest the master and the workers will check.
        let mut f = tokio::fs::File::open(path).await.map_err(io)?;
        let size = f.metadata().await.map_err(io)?.len();
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let sha = flint_domain::digest::hex(&hasher.finalize());
        // Second pass: stream it.
        let mut f = tokio::fs::File::open(path).await.map_err(io)?;
        let (tx, rx) = mpsc::channel::<pb::ArtifactChunk>(4);
        let header = pb::ArtifactChunk {
            name: name.clone(),
            sha256: sha.clone(),
            size: size as i64,
            data: Default::default(),
        };
        let reader = tokio::spawn(async move {
            if tx.send(header).await.is_err() {
                return Ok(());
            }
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                let chunk = pb::ArtifactChunk {
                    data: buf[..n].to_vec(),
                    ..Default::default()
                };
                if tx.send(chunk).await.is_err() {
                    return Ok(()); // the master answered early (it already has the file)
                }
            }
        });
        let info = self
            .inner
            .upload_artifact(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let _ = reader.await;
        Ok((info.uri, info.sha256))
    }

    /// A slice of a driver's or executor's log, read through the master.
    pub async fn read_log(&mut self, req: LogRequest) -> Result<LogSlice> {
        let r = self
            .inner
            .read_log(pb::ReadLogRequest::from(req))
            .await?
            .into_inner();
        Ok(LogSlice {
            data: r.data.to_vec(),
            offset: u64::try_from(r.offset).unwrap_or(0),
            total_size: u64::try_from(r.total_size).unwrap_or(0),
        })
    }

    /// Registers an application and returns its session once the master has accepted it.
    pub async fn register_application(
        &mut self,
        app: AppDescription,
        driver_url: &str,
    ) -> Result<AppSession> {
        let (tx, rx) = mpsc::channel::<pb::AppToMaster>(64);
        tx.send(
            AppRequest::Register {
                app,
                driver_url: driver_url.to_owned(),
            }
            .into(),
        )
        .await
        .map_err(|_| ClientError::Protocol("session closed".into()))?;
        let mut events = self
            .inner
            .application_session(ReceiverStream::new(rx))
            .await?
            .into_inner();
        let first = events
            .message()
            .await?
            .ok_or_else(|| ClientError::Protocol("master closed the session".into()))?;
        match AppEvent::try_from(first)? {
            AppEvent::Registered { app_id, master_url } => Ok(AppSession {
                app_id,
                master_url,
                tx,
                events,
                next_request_id: 1,
            }),
            other => Err(ClientError::Protocol(format!(
                "expected Registered, got {other:?}"
            ))),
        }
    }
}

/// A registered application's session with the master. Dropping it ends the application.
pub struct AppSession {
    app_id: AppId,
    master_url: String,
    tx: mpsc::Sender<pb::AppToMaster>,
    events: tonic::Streaming<pb::MasterToApp>,
    next_request_id: u64,
}

impl AppSession {
    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    pub fn master_url(&self) -> &str {
        &self.master_url
    }

    /// The next event from the master; `None` once the master ended the session.
    pub async fn next_event(&mut self) -> Result<Option<AppEvent>> {
        match self.events.message().await? {
            Some(m) => Ok(Some(m.try_into()?)),
            None => Ok(None),
        }
    }

    async fn send(&mut self, req: AppRequest) -> Result<()> {
        self.tx
            .send(req.into())
            .await
            .map_err(|_| ClientError::Protocol("application session closed".into()))
    }

    /// Asks for `total` executors in all (dynamic allocation). Returns the request id that
    /// the matching [`AppEvent::RequestResult`] carries.
    pub async fn request_executors(&mut self, total: u32) -> Result<u64> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.send(AppRequest::RequestExecutors { request_id, total })
            .await?;
        Ok(request_id)
    }

    pub async fn kill_executors(&mut self, executor_ids: Vec<ExecutorId>) -> Result<u64> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.send(AppRequest::KillExecutors {
            request_id,
            executor_ids,
        })
        .await?;
        Ok(request_id)
    }

    /// Tells the master the application is done and waits for it to end the session.
    pub async fn unregister(mut self) -> Result<()> {
        self.send(AppRequest::Unregister).await?;
        while self.events.message().await?.is_some() {}
        Ok(())
    }
}

pub mod rest;
