//! Reaching the master pod "from outside the cluster", as a user would: through the
//! NodePort Service's published port, and waiting on the cluster state it reports.

use std::time::{Duration, Instant};

use flint_client::MasterClient;
use flint_domain::types::{ClusterSnapshot, WorkerId};

use super::docker::{docker_ok, published_port};
use super::kube::Kube;
use super::pod::Pod;
use super::probe::{ProbeKind, http_status, probe_target};
use super::spec::selects;
use crate::wait_for;

impl Kube {
    /// The host port a container port of a pod is published on.
    pub fn host_port(&self, pod: usize, port: u16) -> u16 {
        let out = docker_ok(&["port", &self.pods[pod].container, &format!("{port}/tcp")]);
        published_port(&out).unwrap_or_else(|| panic!("port {port} is not published: {out}"))
    }

    /// `spark://127.0.0.1:<port>` reaching `service`'s `port_name` (the NodePort, from outside).
    pub fn service_url(&self, service: &str, port_name: &str) -> String {
        let svc = self.manifests.service(service);
        assert_eq!(svc.kind.as_deref(), Some("NodePort"), "{service}");
        let sp = svc
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some(port_name))
            .unwrap_or_else(|| panic!("{service} has no port {port_name}"));
        let pod = (0..self.pods.len())
            .find(|&i| {
                let rc = self.manifests.rc(&self.pods[i].rc);
                selects(&svc.selector, &rc.template.metadata.labels)
            })
            .unwrap_or_else(|| panic!("{service} selects no pod"));
        let target = match &sp.target_port {
            None => sp.port,
            Some(t) => self
                .container(pod)
                .port(t)
                .unwrap_or_else(|e| panic!("{service}: {e}")),
        };
        format!("spark://127.0.0.1:{}", self.host_port(pod, target))
    }

    /// The status a probe of the pod gets now.
    pub async fn probe(&self, pod: usize, kind: ProbeKind) -> Option<u16> {
        let (port, path) = probe_target(self.container(pod), kind)
            .unwrap_or_else(|e| panic!("{}: {e}", self.pods[pod].name));
        http_status(self.host_port(pod, port), &path).await
    }

    /// Waits until the pod's readiness (or liveness) probe gets 200.
    pub async fn wait_probe(&self, pod: usize, readiness: bool) {
        let kind = if readiness {
            ProbeKind::Readiness
        } else {
            ProbeKind::Liveness
        };
        let what = format!("{} {} probe", self.pods[pod].name, kind.name());
        wait_for(&what, Duration::from_secs(60), || async {
            (self.probe(pod, kind).await == Some(200)).then_some(())
        })
        .await;
    }

    /// The master's URL through the NodePort Service.
    pub fn master_url(&self) -> String {
        self.service_url("spark-master-nodeport", "submit")
    }

    /// The cluster state, if the master answers within 2 s.
    pub async fn state(&self) -> Option<ClusterSnapshot> {
        let mut c = MasterClient::connect_with_timeout(&self.master_url(), Duration::from_secs(2))
            .await
            .ok()?;
        c.cluster_state().await.ok()
    }

    /// Waits until the cluster state satisfies `pred`; returns it.
    pub async fn wait_state(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ClusterSnapshot) -> bool,
    ) -> ClusterSnapshot {
        let url = self.master_url();
        wait_for(what, timeout, || async {
            let mut c = MasterClient::connect_with_timeout(&url, Duration::from_secs(2))
                .await
                .ok()?;
            let s = c.cluster_state().await.ok()?;
            pred(&s).then_some(s)
        })
        .await
    }

    /// Waits until every pod in `pods` is an ALIVE worker (matched by its pod IP) and
    /// returns, for each, the time from its `docker run` to the first state that showed it.
    pub async fn wait_alive(&self, pods: &[usize], timeout: Duration) -> Vec<Duration> {
        let mut seen: Vec<Option<Duration>> = vec![None; pods.len()];
        let deadline = Instant::now() + timeout;
        let url = self.master_url();
        loop {
            let state = match MasterClient::connect_with_timeout(&url, Duration::from_secs(2)).await
            {
                Ok(mut c) => c.cluster_state().await.ok(),
                Err(_) => None,
            };
            if let Some(s) = state {
                for (slot, &p) in seen.iter_mut().zip(pods) {
                    if slot.is_none() && s.alive_workers().any(|w| w.host == self.pods[p].ip) {
                        *slot = Some(self.pods[p].created.elapsed());
                    }
                }
            }
            if seen.iter().all(Option::is_some) {
                return seen.into_iter().map(|d| d.expect("seen")).collect();
            }
            assert!(
                Instant::now() < deadline,
                "workers not ALIVE within {timeout:?}: {:?}",
                pods.iter().map(|&p| &self.pods[p].name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The worker id of the ALIVE worker running in `pod`.
    pub fn worker_id(s: &ClusterSnapshot, pod: &Pod) -> WorkerId {
        s.alive_workers()
            .find(|w| w.host == pod.ip)
            .map(|w| w.id.clone())
            .unwrap_or_else(|| panic!("{} is not an ALIVE worker", pod.name))
    }
}
