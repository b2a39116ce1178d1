//! Opening a gRPC channel to a master: the one set of transport settings every Flint peer
//! (worker, application, `flint-submit`) uses.

use std::time::Duration;

use flint_domain::units::parse_master_urls;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid master URL: {0}")]
    BadUrl(String),
    #[error("cannot connect to master {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// Opens a channel to the first reachable master of `spark://h1:p1[,h2:p2]`.
pub async fn connect_channel(master_url: &str, timeout: Duration) -> Result<Channel, ConnectError> {
    let masters = parse_master_urls(master_url).map_err(ConnectError::BadUrl)?;
    let mut last = String::new();
    for (host, port) in masters {
        let uri = format!("http://{host}:{port}");
        let ep = Endpoint::from_shared(uri.clone())
            .map_err(|e| ConnectError::BadUrl(format!("{master_url}: {e}")))?
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            // Notices a master that vanished without closing the connection (a deleted pod).
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        match ep.connect().await {
            Ok(ch) => return Ok(ch),
            Err(e) => {
                last = match std::error::Error::source(&e) {
                    Some(src) => format!("{e}: {src}"),
                    None => e.to_string(),
                }
            }
        }
    }
    Err(ConnectError::Connect {
        url: master_url.to_owned(),
        reason: last,
    })
}
