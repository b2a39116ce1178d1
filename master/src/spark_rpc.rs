//! Spark's own RPC protocol on the master's port: what a stock Spark 3.5/4.0 driver in client
//! deploy mode (`spark-submit --master spark://host:port`) says to a standalone master.
//!
//! [`crate::run`] peeks at the first bytes of every accepted connection and hands the Spark
//! ones here ([`serve_connection`]). Per connection:
//!
//! - `RpcRequest` to `endpoint-verifier` with `CheckExistence("Master")` → `RpcResponse`
//!   `Boolean(true)` (`false` for any other endpoint name);
//! - one-way `RegisterApplication` → an application session on the [`MasterHandle`]; its
//!   events go back on this connection as one-way messages to the driver's `AppClient`
//!   endpoint (`RegisteredApplication`, `ExecutorAdded`, `ExecutorUpdated`, `WorkerRemoved`,
//!   `ApplicationRemoved`);
//! - one-way `UnregisterApplication` → [`AppRequest::Unregister`];
//! - asked `RequestExecutors`/`KillExecutors` → the core, then `Boolean` (`true` when accepted);
//! - anything else: logged and ignored (asks get an `RpcFailure`);
//! - the connection closing ends the application's session; bytes that are not Spark frames
//!   close the connection.
//!
//! The executors' command is carried in the core's [`CommandSpec`] by the convention in
//! docs/runtime-contract.md ("Spark executors"): see [`flint_spark_proto::command`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flint_domain::replies;
use flint_domain::types::*;
use flint_spark_proto::command::{app_description, driver_description, tag_line};
use flint_spark_proto::messages::{
    ApplicationDescription, DriverState as SparkDriverState, EndpointRef,
    ExecutorState as SparkState,
};
use flint_spark_proto::{
    DecodedMessage, Frame, FrameDecoder, MessageEncoder, RequestHeader, RequestMessage, RpcAddress,
    SparkLine, SparkMessage, decode_message,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::actor::MasterHandle;
use crate::core::{ConnId, CoreError};
use crate::outbox::{Outbox, SESSION_OUTBOX, outbox};

/// Where this master says it is (the `sender` of what it sends, the `Master` endpoint ref).
#[derive(Clone, Debug)]
pub struct SparkRpcConfig {
    pub host: String,
    pub port: u16,
}

fn spark_state(s: ExecutorState) -> SparkState {
    match s {
        ExecutorState::Launching => SparkState::Launching,
        ExecutorState::Running => SparkState::Running,
        ExecutorState::Killed => SparkState::Killed,
        ExecutorState::Failed => SparkState::Failed,
        ExecutorState::Lost => SparkState::Lost,
        ExecutorState::Exited => SparkState::Exited,
        ExecutorState::Decommissioned => SparkState::Decommissioned,
    }
}

/// The Spark message for an application event (`None`: nothing to tell a Spark driver).
fn app_event_message(ev: AppEvent, master: &RpcAddress) -> Option<SparkMessage> {
    Some(match ev {
        AppEvent::Registered { app_id, .. } => SparkMessage::RegisteredApplication {
            app_id: app_id.0,
            master: EndpointRef::new("Master", Some(master.clone())),
        },
        AppEvent::ExecutorAdded {
            executor_id,
            worker_id,
            host_port,
            cores,
            memory_mb,
        } => SparkMessage::ExecutorAdded {
            id: executor_id as i32,
            worker_id: worker_id.0,
            host_port,
            cores: cores.min(i32::MAX as u32) as i32,
            memory: memory_mb.min(i32::MAX as u64) as i32,
        },
        AppEvent::ExecutorUpdated {
            executor_id,
            state,
            message,
            exit_status,
            worker_host,
        } => SparkMessage::ExecutorUpdated {
            id: executor_id as i32,
            state: spark_state(state),
            message,
            exit_status,
            worker_host,
        },
        AppEvent::WorkerRemoved {
            worker_id,
            host,
            message,
        } => SparkMessage::WorkerRemoved {
            id: worker_id.0,
            host,
            message,
        },
        // Spark's master sends the bare state ("Master removed our application: KILLED");
        // Flint keeps that first, for whoever greps for it, and adds why.
        AppEvent::ApplicationRemoved { state, message } => SparkMessage::ApplicationRemoved {
            message: if message.is_empty() {
                state.as_str().to_owned()
            } else {
                format!("{state}: {message}")
            },
        },
        AppEvent::RequestResult { .. } => return None,
    })
}

/// One-way frame `msg` from `sender` to `endpoint` at `receiver`.
fn one_way(
    encoder: &MessageEncoder,
    sender: &RpcAddress,
    receiver: Option<RpcAddress>,
    endpoint: &str,
    msg: &SparkMessage,
) -> Result<Bytes, String> {
    let payload = encoder.encode(msg).map_err(|e| e.to_string())?;
    let body = RequestMessage {
        header: RequestHeader {
            sender: Some(sender.clone()),
            receiver,
            endpoint: endpoint.into(),
        },
        payload: payload.into(),
    }
    .encode()
    .map_err(|e| e.to_string())?;
    Frame::OneWayMessage { body: body.into() }
        .to_bytes()
        .map_err(|e| e.to_string())
}

fn boolean_reply(encoder: &MessageEncoder, request_id: i64, value: bool) -> Option<Bytes> {
    reply(encoder, request_id, &SparkMessage::Boolean(value))
}

fn reply(encoder: &MessageEncoder, request_id: i64, msg: &SparkMessage) -> Option<Bytes> {
    let body = match encoder.encode(msg) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "cannot encode a reply for a Spark client");
            return failure(
                request_id,
                format!("flint-master cannot encode its reply: {e}"),
            );
        }
    };
    Frame::RpcResponse {
        request_id,
        body: body.into(),
    }
    .to_bytes()
    .ok()
}

/// Spark's name for a driver state is Flint's.
fn spark_driver_state(s: DriverState) -> SparkDriverState {
    (0..8)
        .filter_map(SparkDriverState::from_id)
        .find(|x| x.as_str() == s.as_str())
        .unwrap_or(SparkDriverState::Unknown)
}

fn failure(request_id: i64, error: String) -> Option<Bytes> {
    Frame::RpcFailure { request_id, error }.to_bytes().ok()
}

/// Per-connection state.
struct Conn {
    handle: MasterHandle,
    cfg: SparkRpcConfig,
    out: Outbox<Bytes>,
    encoder: Option<MessageEncoder>,
    /// The application session opened by `RegisterApplication`, if any.
    session: Option<ConnId>,
    peer: String,
}

impl Conn {
    fn master_address(&self) -> RpcAddress {
        RpcAddress::new(self.cfg.host.clone(), i32::from(self.cfg.port))
    }

    /// The encoder for this peer: its line from the first message that tells, then every
    /// class descriptor it sent.
    fn learn(&mut self, decoded: &DecodedMessage) {
        match &mut self.encoder {
            Some(enc) => {
                enc.learn(&decoded.stream);
            }
            None => {
                if let Some(line) = decoded.spark_line() {
                    let mut enc = MessageEncoder::new(line);
                    enc.learn(&decoded.stream);
                    self.encoder = Some(enc);
                }
            }
        }
    }

    fn encoder(&self) -> MessageEncoder {
        self.encoder
            .clone()
            .unwrap_or_else(|| MessageEncoder::new(SparkLine::V3_5))
    }

    /// Queues a reply, waiting for room: a peer that does not read its replies is not read
    /// any further either.
    async fn send(&self, frame: Option<Bytes>) {
        if let Some(f) = frame {
            self.out.send(f).await;
        }
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<(), String> {
        let (request_id, body) = match frame {
            Frame::RpcRequest { request_id, body } => (Some(request_id), body),
            Frame::OneWayMessage { body } => (None, body),
            Frame::RpcResponse { request_id, .. } | Frame::RpcFailure { request_id, .. } => {
                debug!(peer = %self.peer, request_id, "ignoring a response: the master asks nothing");
                return Ok(());
            }
        };
        let request = RequestMessage::decode(&body).map_err(|e| e.to_string())?;
        let decoded = match decode_message(&request.payload) {
            Ok(d) => d,
            Err(e) => {
                warn!(peer = %self.peer, endpoint = %request.header.endpoint, error = %e, "unreadable Spark message; ignored");
                if let Some(id) = request_id {
                    self.send(failure(
                        id,
                        format!("flint-master cannot read this message: {e}"),
                    ))
                    .await;
                }
                return Ok(());
            }
        };
        self.learn(&decoded);
        let header = request.header;
        match (decoded.message, request_id) {
            (SparkMessage::CheckExistence { name }, Some(id)) => {
                debug!(peer = %self.peer, %name, "endpoint check");
                self.send(boolean_reply(&self.encoder(), id, name == "Master"))
                    .await;
            }
            (SparkMessage::RegisterApplication { app, driver }, _) => {
                self.register(app, driver.address.or(header.sender)).await;
            }
            (SparkMessage::UnregisterApplication { app_id }, _) => {
                if let Some(conn) = self.session {
                    info!(peer = %self.peer, %app_id, "Spark driver unregistered its application");
                    if let Err(e) = self.handle.app_request(conn, AppRequest::Unregister).await {
                        debug!(%app_id, error = %e, "unregister refused");
                    }
                }
            }
            (SparkMessage::RequestExecutors { app_id, totals }, id) => {
                let total: i64 = totals.iter().map(|(_, n)| i64::from((*n).max(0))).sum();
                let ok = self
                    .ask(AppRequest::RequestExecutors {
                        request_id: 0,
                        total: total.min(u32::MAX as i64) as u32,
                    })
                    .await;
                debug!(%app_id, total, ok, "RequestExecutors");
                if let Some(id) = id {
                    self.send(boolean_reply(&self.encoder(), id, ok)).await;
                }
            }
            (
                SparkMessage::KillExecutors {
                    app_id,
                    executor_ids,
                },
                id,
            ) => {
                let ids: Vec<ExecutorId> = executor_ids
                    .iter()
                    .filter_map(|s| s.trim().parse().ok())
                    .collect();
                let ok = self
                    .ask(AppRequest::KillExecutors {
                        request_id: 0,
                        executor_ids: ids,
                    })
                    .await;
                debug!(%app_id, ?executor_ids, ok, "KillExecutors");
                if let Some(id) = id {
                    self.send(boolean_reply(&self.encoder(), id, ok)).await;
                }
            }
            (SparkMessage::RequestSubmitDriver { driver }, Some(id)) => {
                let msg = self.submit_driver(&driver).await;
                self.send(reply(&self.encoder(), id, &msg)).await;
            }
            (SparkMessage::RequestDriverStatus { driver_id }, Some(id)) => {
                let msg = self.driver_status(driver_id).await;
                self.send(reply(&self.encoder(), id, &msg)).await;
            }
            (SparkMessage::RequestKillDriver { driver_id }, Some(id)) => {
                let msg = self.kill_driver(driver_id).await;
                self.send(reply(&self.encoder(), id, &msg)).await;
            }
            (other, id) => {
                warn!(peer = %self.peer, endpoint = %header.endpoint, message = ?std::mem::discriminant(&other), "Spark message not handled by flint-master; ignored");
                if let Some(id) = id {
                    self.send(failure(
                        id,
                        "flint-master does not handle this message".into(),
                    ))
                    .await;
                }
            }
        }
        Ok(())
    }

    fn master_ref(&self) -> EndpointRef {
        EndpointRef::new("Master", Some(self.master_address()))
    }

    /// Spark's legacy cluster-mode client (`spark-submit --deploy-mode cluster` without REST).
    async fn submit_driver(
        &self,
        driver: &flint_spark_proto::messages::DriverDescription,
    ) -> SparkMessage {
        let refused = |message: String| SparkMessage::SubmitDriverResponse {
            master: self.master_ref(),
            success: false,
            driver_id: None,
            message,
        };
        let desc = match driver_description(driver) {
            Ok(mut d) => {
                if let Some(enc) = &self.encoder {
                    tag_line(&mut d.command, enc.line());
                }
                d
            }
            Err(e) => {
                warn!(peer = %self.peer, error = %e, "driver submission refused");
                return refused(format!("Driver submission refused: {e}"));
            }
        };
        match self.handle.submit_driver(desc).await {
            Ok(id) => {
                info!(peer = %self.peer, driver_id = %id, "driver submitted through Spark's RPC client");
                SparkMessage::SubmitDriverResponse {
                    master: self.master_ref(),
                    success: true,
                    message: replies::driver_submitted(&id),
                    driver_id: Some(id.0),
                }
            }
            Err(e) => refused(format!("Driver submission refused: {e}")),
        }
    }

    async fn driver_status(&self, driver_id: String) -> SparkMessage {
        match self.handle.driver_status(DriverId(driver_id)).await {
            Ok(d) => SparkMessage::DriverStatusResponse {
                found: true,
                state: Some(spark_driver_state(d.state)),
                worker_id: d.worker_id.map(|w| w.0),
                worker_host_port: d.worker_host_port,
                // Flint cannot write a Java exception; the message is in the UI and REST.
                exception: None,
            },
            Err(_) => SparkMessage::DriverStatusResponse {
                found: false,
                state: None,
                worker_id: None,
                worker_host_port: None,
                exception: None,
            },
        }
    }

    async fn kill_driver(&self, driver_id: String) -> SparkMessage {
        let (success, message) = match self.handle.kill_driver(DriverId(driver_id.clone())).await {
            Ok(message) => (true, message),
            Err(CoreError::NotFound(_) | CoreError::FailedPrecondition(_)) => {
                (false, replies::driver_gone(&driver_id))
            }
            Err(e) => (false, e.to_string()),
        };
        info!(peer = %self.peer, %driver_id, success, "driver kill through Spark's RPC client");
        SparkMessage::KillDriverResponse {
            master: self.master_ref(),
            driver_id,
            success,
            message,
        }
    }

    async fn ask(&self, req: AppRequest) -> bool {
        match self.session {
            Some(conn) => self
                .handle
                .app_request(conn, req)
                .await
                .is_ok_and(|outcome| outcome.ok),
            None => false,
        }
    }

    async fn register(&mut self, app: ApplicationDescription, driver: Option<RpcAddress>) {
        if self.session.is_some() {
            // A driver re-sends RegisterApplication when it heard nothing back within 20 s;
            // the registration on this connection stands (its reply is already on its way).
            debug!(peer = %self.peer, "RegisterApplication again on the same connection; ignored");
            return;
        }
        let mut desc = app_description(&app);
        if let Some(enc) = &self.encoder {
            tag_line(&mut desc.command, enc.line());
        }
        let conn = self.handle.new_conn();
        let encoder = self.encoder();
        let master = self.master_address();
        let out = self.out.clone();
        let peer = self.peer.clone();
        info!(peer = %self.peer, name = %desc.name, user = %desc.user, line = %encoder.line(),
              cores_per_executor = ?desc.cores_per_executor, memory_mb = desc.memory_per_executor_mb,
              max_cores = ?desc.max_cores, "Spark driver registering an application");
        self.handle.open_app_session(
            conn,
            Box::new(move |ev| {
                let Some(msg) = app_event_message(ev, &master) else {
                    return true;
                };
                match one_way(&encoder, &master, driver.clone(), "AppClient", &msg) {
                    Ok(frame) => out.offer(frame),
                    Err(e) => {
                        warn!(%peer, error = %e, "cannot encode a message for the Spark driver");
                        true
                    }
                }
            }),
        )
        .await;
        self.session = Some(conn);
        let driver_url = app
            .command
            .arguments
            .iter()
            .position(|a| a == "--driver-url")
            .and_then(|i| app.command.arguments.get(i + 1))
            .cloned()
            .unwrap_or_default();
        if let Err(e) = self
            .handle
            .app_request(
                conn,
                AppRequest::Register {
                    app: desc,
                    driver_url,
                },
            )
            .await
        {
            warn!(peer = %self.peer, error = %e, "application registration refused");
            self.handle.close_session(conn).await;
            self.session = None;
        }
    }
}

/// Serves one Spark RPC connection until the peer closes it, it sends garbage, or `stop`.
pub async fn serve_connection(
    stream: TcpStream,
    handle: MasterHandle,
    cfg: SparkRpcConfig,
    mut stop: watch::Receiver<bool>,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    debug!(%peer, "Spark RPC connection");
    let (mut reader, mut writer) = stream.into_split();
    let (out_tx, mut out_rx) = outbox::<Bytes>(handle.new_conn(), SESSION_OUTBOX);
    let mut cut = std::pin::pin!(out_rx.cut_signal());
    let write_task = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut conn = Conn {
        handle,
        cfg,
        out: out_tx,
        encoder: None,
        session: None,
        peer: peer.clone(),
    };
    let decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(8192);
    'conn: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(e) = conn.on_frame(frame).await {
                        warn!(%peer, error = %e, "bad Spark RPC message; closing the connection");
                        break 'conn;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "not a Spark RPC frame; closing the connection");
                    break 'conn;
                }
            }
        }
        tokio::select! {
            n = reader.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = stop.wait_for(|s| *s) => break,
            _ = &mut cut => {
                warn!(%peer, "Spark peer stopped reading; closing the connection");
                break;
            }
        }
    }
    if let Some(session) = conn.session.take() {
        debug!(%peer, "Spark driver connection closed; ending its application session");
        conn.handle.close_session(session).await;
    }
    drop(conn);
    // Let queued replies go out, but never hang on a peer that stopped reading.
    let _ = tokio::time::timeout(Duration::from_secs(2), write_task).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_events_become_one_way_messages_to_the_app_client() {
        let master = RpcAddress::new("127.0.0.1", 7077);
        let driver = Some(RpcAddress::new("127.0.0.1", 40000));
        for line in [SparkLine::V3_5, SparkLine::V4_0] {
            let encoder = MessageEncoder::new(line);
            let events = [
                AppEvent::Registered {
                    app_id: AppId("app-20261122040305-0000".into()),
                    master_url: "spark://127.0.0.1:7077".into(),
                },
                AppEvent::ExecutorAdded {
                    executor_id: 3,
                    worker_id: WorkerId("worker-1".into()),
                    host_port: "127.0.0.1:7078".into(),
                    cores: 2,
                    memory_mb: 512,
                },
                AppEvent::ExecutorUpdated {
                    executor_id: 3,
                    state: ExecutorState::Exited,
                    message: Some("exited".into()),
                    exit_status: Some(1),
                    worker_host: None,
                },
                AppEvent::ApplicationRemoved {
                    state: ApplicationState::Killed,
                    message: "killed".into(),
                },
            ];
            for ev in events {
                let msg = app_event_message(ev, &master).expect("a message");
                let bytes =
                    one_way(&encoder, &master, driver.clone(), "AppClient", &msg).expect("frame");
                let mut buf = BytesMut::from(&bytes[..]);
                let Ok(Some(Frame::OneWayMessage { body })) = FrameDecoder::new().decode(&mut buf)
                else {
                    panic!("not a one-way frame");
                };
                let req = RequestMessage::decode(&body).expect("header");
                assert_eq!(req.header.endpoint, "AppClient");
                assert_eq!(req.header.receiver, driver);
                assert_eq!(req.header.sender, Some(master.clone()));
                let decoded = decode_message(&req.payload).expect("decodes");
                assert_eq!(decoded.message, msg, "{line}");
            }
            assert!(
                app_event_message(
                    AppEvent::RequestResult {
                        request_id: 1,
                        ok: true,
                        message: String::new()
                    },
                    &master
                )
                .is_none()
            );
        }
    }
}
