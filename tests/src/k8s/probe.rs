//! The kubelet's HTTP probes: which port and path a container's probe asks, and the status
//! a GET there gets.

use std::time::Duration;

use super::spec::{ContainerSpec, HttpGet};

/// Which of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Readiness,
    Liveness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
        }
    }
}

/// The container port and path of `c`'s `kind` probe (an `httpGet` one).
pub fn probe_target(c: &ContainerSpec, kind: ProbeKind) -> Result<(u16, String), String> {
    let probe = match kind {
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
    };
    let get: &HttpGet = probe
        .and_then(|p| p.http_get.as_ref())
        .ok_or_else(|| format!("{}: no httpGet {} probe", c.name, kind.name()))?;
    Ok((c.port(&get.port)?, get.path.clone()))
}

/// A GET on 127.0.0.1:`port`; the status code, or None if nothing answers within 2 s.
pub async fn http_status(port: u16, path: &str) -> Option<u16> {
    let url = format!("http://127.0.0.1:{port}{path}");
    crate::try_http("GET", &url, &[], b"", Duration::from_secs(2))
        .await
        .ok()
        .map(|r| r.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::manifest::Manifests;

    #[test]
    fn the_manifests_probe_their_http_ports() {
        let m = Manifests::load().expect("manifests");
        let c = |rc: &str| m.rc(rc).template.spec.containers[0].clone();
        let master = c("spark-master-controller");
        let worker = c("spark-worker-controller");
        assert_eq!(
            probe_target(&master, ProbeKind::Readiness),
            Ok((8080, "/readyz".into()))
        );
        assert_eq!(
            probe_target(&master, ProbeKind::Liveness),
            Ok((8080, "/healthz".into()))
        );
        assert_eq!(
            probe_target(&worker, ProbeKind::Readiness),
            Ok((8081, "/readyz".into()))
        );
        let mut none = worker.clone();
        none.liveness_probe = None;
        assert!(probe_target(&none, ProbeKind::Liveness).is_err());
    }

    #[tokio::test]
    async fn nothing_listening_is_no_status() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        assert_eq!(http_status(port, "/readyz").await, None);
    }
}
