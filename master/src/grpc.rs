//! The gRPC front end: thin adapters from `flint.v1.Master` to the [`MasterHandle`].

use std::pin::Pin;

use flint_domain::replies;
use flint_domain::types::*;
use flint_proto::pb;
use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::actor::MasterHandle;
use crate::artifacts::ArtifactStore;
use crate::core::CoreError;
use crate::outbox::{OutboxRx, SESSION_OUTBOX, outbox};

pub struct MasterGrpc {
    handle: MasterHandle,
    artifacts: ArtifactStore,
}

impl MasterGrpc {
    pub fn new(handle: MasterHandle, artifacts: ArtifactStore) -> Self {
        Self { handle, artifacts }
    }

    pub fn into_server(self) -> pb::master_server::MasterServer<Self> {
        pb::master_server::MasterServer::new(self)
    }
}

pub fn status(e: CoreError) -> Status {
    flint_proto::error::status(e.code(), e.to_string())
}

type Outbound<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What a session's channel carries: boxed, so each queue slot costs a pointer (the
/// channel allocates its slots in blocks, one block per idle session at 10,000 workers).
type Item<T> = Result<Box<T>, Box<Status>>;

fn outbound<T: Send + 'static>(rx: OutboxRx<Item<T>>) -> Outbound<T> {
    Box::pin(
        rx.into_stream()
            .map(|item| item.map(|b| *b).map_err(|e| *e)),
    )
}

#[tonic::async_trait]
impl pb::master_server::Master for MasterGrpc {
    type WorkerSessionStream = Outbound<pb::MasterToWorker>;
    type ApplicationSessionStream = Outbound<pb::MasterToApp>;
    type DownloadArtifactStream = Outbound<pb::ArtifactChunk>;

    async fn upload_artifact(
        &self,
        req: Request<Streaming<pb::ArtifactChunk>>,
    ) -> Result<Response<pb::ArtifactInfo>, Status> {
        Ok(Response::new(
            self.artifacts.upload(req.into_inner()).await?,
        ))
    }

    async fn download_artifact(
        &self,
        req: Request<pb::DownloadArtifactRequest>,
    ) -> Result<Response<Self::DownloadArtifactStream>, Status> {
        let stream = self.artifacts.download(&req.into_inner().sha256).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn read_log(
        &self,
        req: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        let req: LogRequest = req.into_inner().try_into()?;
        let (worker, slice) = tokio::time::timeout(
            std::time::Duration::from_secs(15),
            self.handle.read_log(req),
        )
        .await
        .map_err(|_| Status::deadline_exceeded("the worker did not answer in time"))?
        .map_err(status)?;
        Ok(Response::new(pb::ReadLogResponse {
            data: slice.data,
            offset: slice.offset as i64,
            total_size: slice.total_size as i64,
            worker_id: worker.0,
        }))
    }

    async fn worker_session(
        &self,
        req: Request<Streaming<pb::WorkerToMaster>>,
    ) -> Result<Response<Self::WorkerSessionStream>, Status> {
        let mut inbound = req.into_inner();
        let handle = self.handle.clone();
        let conn = handle.new_conn();
        let (tx, rx) = outbox::<Item<pb::MasterToWorker>>(conn, SESSION_OUTBOX);
        // The reader keeps only a weak sender: the stream ends as soon as the actor drops
        // the session's sink.
        let err_tx = tx.downgrade();
        handle
            .open_worker_session(
                conn,
                Box::new(move |cmd| tx.offer(Ok(Box::new(cmd.into())))),
            )
            .await;
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(msg)) => match WorkerEvent::try_from(msg) {
                        Ok(ev) => handle.worker_event(conn, ev).await,
                        Err(e) => {
                            warn!(conn, error = %e, "invalid message on worker session");
                            err_tx.try_send(Err(Box::new(e.into())));
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        debug!(conn, error = %e, "worker session broke");
                        break;
                    }
                }
            }
            handle.close_session(conn).await;
        });
        Ok(Response::new(outbound(rx)))
    }

    async fn application_session(
        &self,
        req: Request<Streaming<pb::AppToMaster>>,
    ) -> Result<Response<Self::ApplicationSessionStream>, Status> {
        let mut inbound = req.into_inner();
        let handle = self.handle.clone();
        let conn = handle.new_conn();
        let (tx, rx) = outbox::<Item<pb::MasterToApp>>(conn, SESSION_OUTBOX);
        let err_tx = tx.downgrade();
        handle
            .open_app_session(conn, Box::new(move |ev| tx.offer(Ok(Box::new(ev.into())))))
            .await;
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(msg)) => {
                        let result = match AppRequest::try_from(msg) {
                            Ok(req) => handle
                                .app_request(conn, req)
                                .await
                                .map(|_| ())
                                .map_err(status),
                            Err(e) => Err(Status::from(e)),
                        };
                        if let Err(st) = result {
                            warn!(conn, error = %st.message(), "application request refused; ending session");
                            err_tx.try_send(Err(Box::new(st)));
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        debug!(conn, error = %e, "application session broke");
                        break;
                    }
                }
            }
            handle.close_session(conn).await;
        });
        Ok(Response::new(outbound(rx)))
    }

    async fn submit_driver(
        &self,
        req: Request<pb::SubmitDriverRequest>,
    ) -> Result<Response<pb::SubmitDriverResponse>, Status> {
        let desc: DriverDescription = req
            .into_inner()
            .driver
            .ok_or_else(|| Status::invalid_argument("missing required field `driver`"))?
            .try_into()?;
        let id = self.handle.submit_driver(desc).await.map_err(status)?;
        Ok(Response::new(pb::SubmitDriverResponse {
            message: replies::driver_submitted(&id),
            driver_id: id.0,
        }))
    }

    async fn kill_driver(
        &self,
        req: Request<pb::KillDriverRequest>,
    ) -> Result<Response<pb::KillDriverResponse>, Status> {
        let id = non_empty_id(req.into_inner().driver_id, "driver_id")?;
        let message = self
            .handle
            .kill_driver(DriverId(id))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::KillDriverResponse { message }))
    }

    async fn driver_status(
        &self,
        req: Request<pb::DriverStatusRequest>,
    ) -> Result<Response<pb::DriverStatusResponse>, Status> {
        let id = non_empty_id(req.into_inner().driver_id, "driver_id")?;
        let d = self
            .handle
            .driver_status(DriverId(id))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DriverStatusResponse {
            driver: Some(d.into()),
        }))
    }

    async fn kill_application(
        &self,
        req: Request<pb::KillApplicationRequest>,
    ) -> Result<Response<pb::KillApplicationResponse>, Status> {
        let id = non_empty_id(req.into_inner().app_id, "app_id")?;
        self.handle
            .kill_application(AppId(id.clone()))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::KillApplicationResponse {
            message: replies::kill_submitted(&id),
        }))
    }

    async fn cluster_state(
        &self,
        _req: Request<pb::ClusterStateRequest>,
    ) -> Result<Response<pb::ClusterStateResponse>, Status> {
        let snap = self.handle.snapshot().await.map_err(status)?;
        Ok(Response::new(snap.into()))
    }
}

fn non_empty_id(id: String, field: &str) -> Result<String, Status> {
    if id.trim().is_empty() {
        Err(Status::invalid_argument(format!(
            "`{field}` must not be empty"
        )))
    } else {
        Ok(id)
    }
}
