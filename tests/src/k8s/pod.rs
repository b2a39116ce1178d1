//! A pod of a ReplicationController as one Docker container: the `docker run` arguments
//! that give it the pod spec's network identity, Services, security context, volumes and
//! resources.

use std::collections::BTreeMap;
use std::time::Instant;

use super::LABEL;
use super::manifest::Manifests;
use super::quantity::Quantity;
use super::spec::selects;

/// A running pod (one container).
#[derive(Debug)]
pub struct Pod {
    /// Its ReplicationController.
    pub rc: String,
    /// `<rc>-<5 random chars>`, as Kubernetes' generateName.
    pub name: String,
    /// The Docker container.
    pub container: String,
    pub ip: String,
    /// The environment the container got (downward API resolved).
    pub env: BTreeMap<String, String>,
    /// Just before `docker run`.
    pub created: Instant,
}

/// Where and as what a pod runs.
pub struct Placement<'a> {
    /// The test run's id (the label value of everything it creates).
    pub run: &'a str,
    pub network: &'a str,
    pub container: &'a str,
    pub pod_name: &'a str,
    pub ip: &'a str,
    /// The image to run (built by the test) in place of the one the manifest names.
    pub image: &'a str,
}

fn bytes(q: &Quantity) -> Result<u64, String> {
    Ok(q.value()? as u64)
}

/// The `docker run` arguments for a pod of `rc_name` with environment `env` (resolved by
/// [`super::downward::resolve_env`]).
pub fn docker_run_args(
    manifests: &Manifests,
    rc_name: &str,
    env: &BTreeMap<String, String>,
    at: &Placement,
) -> Result<Vec<String>, String> {
    let rc = manifests.rc(rc_name);
    let pod = &rc.template.spec;
    if !selects(&rc.selector, &rc.template.metadata.labels) {
        return Err(format!(
            "{rc_name}: the selector does not select its own pods"
        ));
    }
    let [c] = pod.containers.as_slice() else {
        return Err(format!("{rc_name}: one container per pod is emulated"));
    };
    let mut args: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        at.container.to_owned(),
        "--label".into(),
        format!("{LABEL}={}", at.run),
        "--network".into(),
        at.network.to_owned(),
        "--ip".into(),
        at.ip.to_owned(),
        "--hostname".into(),
        pod.hostname
            .clone()
            .unwrap_or_else(|| at.pod_name.to_owned()),
        "--stop-timeout".into(),
        pod.termination_grace_period_seconds
            .unwrap_or(30)
            .to_string(),
    ];
    // Services: a DNS name for the pods they select.
    for (svc_name, svc) in &manifests.services {
        if selects(&svc.selector, &rc.template.metadata.labels) {
            args.extend(["--network-alias".into(), svc_name.clone()]);
        }
    }
    // Every declared port on 127.0.0.1 (NodePorts and the kubelet's probes).
    for p in &c.ports {
        args.extend([
            "--publish".into(),
            format!("127.0.0.1::{}", p.container_port),
        ]);
    }
    // Security context: the container's own settings win over the pod's.
    let psc = &pod.security_context;
    let sc = &c.security_context;
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) && uid.is_none_or(|u| u == 0) {
        return Err(format!(
            "{rc_name}: runAsNonRoot needs a non-zero runAsUser (the kubelet would refuse it)"
        ));
    }
    if let Some(u) = uid {
        args.extend([
            "--user".into(),
            match gid {
                Some(g) => format!("{u}:{g}"),
                None => u.to_string(),
            },
        ]);
    }
    if let Some(g) = psc.fs_group {
        args.extend(["--group-add".into(), g.to_string()]);
    }
    if sc.read_only_root_filesystem == Some(true) {
        args.push("--read-only".into());
    }
    if sc.allow_privilege_escalation == Some(false) {
        args.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    if let Some(caps) = &sc.capabilities {
        for d in &caps.drop {
            args.extend(["--cap-drop".into(), d.clone()]);
        }
        for a in &caps.add {
            args.extend(["--cap-add".into(), a.clone()]);
        }
    }
    // Volumes: emptyDirs only.
    for m in &c.volume_mounts {
        let v = pod
            .volumes
            .iter()
            .find(|v| v.name == m.name)
            .ok_or_else(|| format!("{rc_name}: no volume {}", m.name))?;
        let ed = v
            .empty_dir
            .as_ref()
            .ok_or_else(|| format!("{rc_name}: volume {} is not an emptyDir", v.name))?;
        if ed.medium.as_deref() == Some("Memory") {
            let size = match &ed.size_limit {
                Some(s) => bytes(s)?,
                None => 64 << 20,
            };
            args.extend([
                "--tmpfs".into(),
                format!(
                    "{}:rw,exec,nosuid,nodev,size={size},mode=1777",
                    m.mount_path
                ),
            ]);
        } else {
            // A disk-backed emptyDir: an anonymous volume, deleted with the container.
            args.extend([
                "--mount".into(),
                format!("type=volume,destination={}", m.mount_path),
            ]);
        }
    }
    // Resources.
    if let Some(cpu) = c.resources.limits.get("cpu") {
        args.extend(["--cpus".into(), format!("{}", cpu.value()?)]);
    }
    if let Some(mem) = c.resources.limits.get("memory") {
        let bytes = bytes(mem)?;
        args.extend([
            "--memory".into(),
            bytes.to_string(),
            "--memory-swap".into(),
            bytes.to_string(),
        ]);
    }
    if let Some(cpu) = c.resources.requests.get("cpu") {
        let shares = ((cpu.value()? * 1024.0) as u64).max(2);
        args.extend(["--cpu-shares".into(), shares.to_string()]);
    }
    if let Some(mem) = c.resources.requests.get("memory") {
        args.extend(["--memory-reservation".into(), bytes(mem)?.to_string()]);
    }
    for (k, v) in env {
        args.extend(["--env".into(), format!("{k}={v}")]);
    }
    // The image the kustomization names, built by the test.
    let image_name = c.image.split(':').next().unwrap_or_default();
    if !manifests.image_names.iter().any(|n| n == image_name) {
        return Err(format!(
            "{rc_name}: image {} is not in kustomization.yaml",
            c.image
        ));
    }
    let (entry, rest) = c
        .command
        .split_first()
        .ok_or_else(|| format!("{rc_name}: no command"))?;
    args.extend(["--entrypoint".into(), entry.clone(), at.image.to_owned()]);
    args.extend(rest.iter().cloned());
    args.extend(c.args.iter().cloned());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::downward::resolve_env;

    fn args_of(m: &Manifests, rc: &str) -> Vec<String> {
        let spec = &m.rc(rc).template.spec;
        let env = resolve_env(spec, &spec.containers[0], "p-abcde", "10.9.0.10").expect("env");
        let at = Placement {
            run: "run1",
            network: "run1-net",
            container: "run1-p-abcde",
            pod_name: "p-abcde",
            ip: "10.9.0.10",
            image: "flint-k8s-test:run1",
        };
        docker_run_args(m, rc, &env, &at).expect("args")
    }

    /// `--flag value` pairs of the arguments, in order.
    fn has(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn a_worker_pod_runs_locked_down_with_its_limits() {
        let m = Manifests::load().expect("manifests");
        let a = args_of(&m, "spark-worker-controller");
        assert_eq!(a[..2], ["run", "--detach"]);
        for (flag, value) in [
            ("--label", "flint-k8s-test=run1"),
            ("--network", "run1-net"),
            ("--ip", "10.9.0.10"),
            ("--hostname", "p-abcde"),
            ("--stop-timeout", "15"),
            ("--publish", "127.0.0.1::8081"),
            ("--user", "185:185"),
            ("--group-add", "185"),
            ("--security-opt", "no-new-privileges"),
            ("--cap-drop", "ALL"),
            ("--mount", "type=volume,destination=/opt/flint/work"),
            ("--cpus", "2"),
            ("--memory", "2684354560"),
            ("--memory-swap", "2684354560"),
            ("--cpu-shares", "512"),
            ("--memory-reservation", "1073741824"),
            ("--env", "SPARK_WORKER_CORES=2"),
            ("--env", "FLINT_WORKER_MEMORY_LIMIT_MB=2560"),
            ("--env", "SPARK_LOCAL_IP=10.9.0.10"),
        ] {
            assert!(has(&a, flag, value), "{flag} {value} in {a:?}");
        }
        assert!(a.contains(&"--read-only".to_owned()));
        assert!(
            !a.contains(&"--network-alias".to_owned()),
            "no Service selects workers"
        );
        assert_eq!(
            a[a.len() - 3..],
            ["--entrypoint", "/start-worker", "flint-k8s-test:run1"]
        );
    }

    #[test]
    fn the_master_pod_gets_its_services_names_and_hostname() {
        let m = Manifests::load().expect("manifests");
        let a = args_of(&m, "spark-master-controller");
        assert!(has(&a, "--network-alias", "spark-master"));
        assert!(has(&a, "--network-alias", "spark-master-nodeport"));
        assert!(has(&a, "--hostname", "spark-master-hostname"));
        assert!(has(&a, "--publish", "127.0.0.1::7077"));
        assert!(has(&a, "--publish", "127.0.0.1::8080"));
        assert!(has(&a, "--cpus", "0.5"));
    }
}
