//! The environment a kubelet gives a container: plain values with `$(VAR)` references
//! expanded, and the downward API (`fieldRef`s of the pod, `resourceFieldRef`s computed
//! from the containers' requests and limits). Also what `/start-worker` derives from it.

use std::collections::BTreeMap;

use super::spec::{ContainerSpec, PodSpec, ResourceFieldRef};

/// Kubernetes' `$(VAR)` expansion of env values: variables defined earlier are replaced,
/// unknown ones are left as written, `$$` escapes a `$`.
pub fn expand_refs(v: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("$$") {
            out.push('$');
            rest = t;
        } else if let Some(end) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + end];
            match env.get(name) {
                Some(val) => out.push_str(val),
                None => out.push_str(&tail[..3 + end]),
            }
            rest = &tail[3 + end..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// A `resourceFieldRef`'s value for container `c` of `pod`: the named limit or request
/// divided by the divisor (default 1), rounded up, as the downward API gives it.
pub fn resource_field(
    pod: &PodSpec,
    c: &ContainerSpec,
    r: &ResourceFieldRef,
) -> Result<String, String> {
    let target = match &r.container_name {
        Some(n) => pod
            .containers
            .iter()
            .find(|c| &c.name == n)
            .ok_or_else(|| format!("no container {n}"))?,
        None => c,
    };
    let (kind, res) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("resource {}: not limits.x or requests.x", r.resource))?;
    let map = match kind {
        "limits" => &target.resources.limits,
        "requests" => &target.resources.requests,
        other => return Err(format!("resourceFieldRef {other}")),
    };
    let v = map.get(res).ok_or_else(|| {
        format!(
            "{} is not set: Kubernetes would give the node's capacity",
            r.resource
        )
    })?;
    let divisor = match &r.divisor {
        Some(d) => d.value()?,
        None => 1.0,
    };
    if divisor <= 0.0 {
        return Err(format!("divisor {divisor}"));
    }
    let n = (v.value()? / divisor).ceil();
    Ok(format!("{n}"))
}

/// The environment a kubelet would give container `c` in pod `pod_name` (of spec `pod`) at
/// `ip`.
pub fn resolve_env(
    pod: &PodSpec,
    c: &ContainerSpec,
    pod_name: &str,
    ip: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for e in &c.env {
        let value = if let Some(v) = &e.value {
            expand_refs(v, &env)
        } else if let Some(src) = &e.value_from {
            if let Some(f) = &src.field_ref {
                match f.field_path.as_str() {
                    "status.podIP" | "status.podIPs" => ip.to_owned(),
                    "metadata.name" => pod_name.to_owned(),
                    "metadata.namespace" => "default".to_owned(),
                    other => {
                        return Err(format!("env {}: fieldRef {other} is not emulated", e.name));
                    }
                }
            } else if let Some(r) = &src.resource_field_ref {
                resource_field(pod, c, r).map_err(|err| format!("env {}: {err}", e.name))?
            } else {
                return Err(format!("env {}: unsupported valueFrom", e.name));
            }
        } else {
            String::new()
        };
        env.insert(e.name.clone(), value);
    }
    Ok(env)
}

/// Spark-style memory from a worker's resolved environment, the way `/start-worker`
/// derives it: SPARK_WORKER_MEMORY if set, else the limit minus the headroom, but at least
/// half of the limit.
pub fn expected_worker_memory_mb(env: &BTreeMap<String, String>) -> Result<u64, String> {
    if let Some(m) = env.get("SPARK_WORKER_MEMORY") {
        return flint_domain::units::parse_memory_mb(m)
            .map_err(|e| format!("SPARK_WORKER_MEMORY {m}: {e}"));
    }
    let mb = |name: &str| -> Result<Option<u64>, String> {
        env.get(name)
            .map(|v| v.parse().map_err(|e| format!("{name} {v}: {e}")))
            .transpose()
    };
    let limit = mb("FLINT_WORKER_MEMORY_LIMIT_MB")?
        .ok_or("the worker's memory comes from its limit: no FLINT_WORKER_MEMORY_LIMIT_MB")?;
    let headroom = mb("FLINT_WORKER_MEMORY_HEADROOM_MB")?.unwrap_or(512);
    Ok(limit.saturating_sub(headroom).max(limit / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::manifest::Manifests;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_expand_escapes_stay_and_unknown_names_are_kept() {
        let e = env(&[("HOST", "10.0.0.5"), ("PORT", "7077")]);
        assert_eq!(
            expand_refs("spark://$(HOST):$(PORT)", &e),
            "spark://10.0.0.5:7077"
        );
        assert_eq!(expand_refs("$$(HOST)", &e), "$(HOST)", "$$ escapes");
        assert_eq!(expand_refs("a$$b", &e), "a$b");
        assert_eq!(expand_refs("$(NOPE)-$(HOST)", &e), "$(NOPE)-10.0.0.5");
        assert_eq!(expand_refs("$HOST $ $(HOST", &e), "$HOST $ $(HOST");
        assert_eq!(expand_refs("no refs", &e), "no refs");
        assert_eq!(expand_refs("$", &e), "$");
        assert_eq!(expand_refs("$(HOST)$(PORT)$$", &e), "10.0.0.57077$");
    }

    fn pod(yaml: &str) -> PodSpec {
        serde_norway::from_str(yaml).expect("pod spec")
    }

    const POD: &str = r#"
containers:
  - name: main
    image: x
    env:
      - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
      - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
      - {name: URL, value: "http://$(IP):8080/$(LATER)"}
      - {name: LATER, value: "x"}
      - {name: CORES, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}
      - {name: MILLI, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
      - {name: MEM_MB, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
      - {name: MEM_GB, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1G}}}
      - {name: SIDE_MEM, valueFrom: {resourceFieldRef: {containerName: side, resource: requests.memory, divisor: 1Ki}}}
      - {name: EMPTY}
    resources:
      limits: {cpu: 1500m, memory: 2560Mi}
      requests: {cpu: "0.25"}
  - name: side
    image: y
    resources:
      requests: {memory: 1Mi}
"#;

    #[test]
    fn the_downward_api_gives_pod_fields_and_rounded_up_resources() {
        let p = pod(POD);
        let e = resolve_env(&p, &p.containers[0], "w-abcde", "10.1.2.3").expect("env");
        assert_eq!(e["IP"], "10.1.2.3");
        assert_eq!(e["NAME"], "w-abcde");
        assert_eq!(e["NS"], "default");
        assert_eq!(
            e["URL"], "http://10.1.2.3:8080/$(LATER)",
            "only earlier names expand"
        );
        assert_eq!(e["CORES"], "2", "1500m rounds up");
        assert_eq!(e["MILLI"], "250");
        assert_eq!(e["MEM_MB"], "2560");
        assert_eq!(e["MEM_GB"], "3", "2.68 GB rounds up");
        assert_eq!(e["SIDE_MEM"], "1024", "another container's request");
        assert_eq!(e["EMPTY"], "");
    }

    #[test]
    fn what_cannot_be_emulated_is_an_error() {
        for (env, want) in [
            (
                "{name: X, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}",
                "spec.nodeName",
            ),
            (
                "{name: X, valueFrom: {resourceFieldRef: {resource: limits.ephemeral-storage}}}",
                "node's capacity",
            ),
            (
                "{name: X, valueFrom: {resourceFieldRef: {resource: cpu}}}",
                "limits.x",
            ),
            (
                "{name: X, valueFrom: {resourceFieldRef: {containerName: nope, resource: limits.cpu}}}",
                "no container nope",
            ),
            (
                "{name: X, valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 0}}}",
                "divisor",
            ),
            ("{name: X, valueFrom: {}}", "unsupported"),
        ] {
            let p = pod(&format!(
                "containers: [{{name: c, image: i, env: [{env}], resources: {{limits: {{cpu: 1}}}}}}]"
            ));
            let err = resolve_env(&p, &p.containers[0], "p", "ip").expect_err(env);
            assert!(
                err.contains(want) && err.starts_with("env X: "),
                "{env}: {err}"
            );
        }
    }

    #[test]
    fn worker_memory_is_the_limit_minus_the_headroom_but_at_least_half() {
        let m = |pairs: &[(&str, &str)]| expected_worker_memory_mb(&env(pairs));
        assert_eq!(m(&[("FLINT_WORKER_MEMORY_LIMIT_MB", "2560")]), Ok(2048));
        assert_eq!(
            m(&[
                ("FLINT_WORKER_MEMORY_LIMIT_MB", "4096"),
                ("FLINT_WORKER_MEMORY_HEADROOM_MB", "1536")
            ]),
            Ok(2560)
        );
        assert_eq!(
            m(&[
                ("FLINT_WORKER_MEMORY_LIMIT_MB", "1000"),
                ("FLINT_WORKER_MEMORY_HEADROOM_MB", "900")
            ]),
            Ok(500),
            "at least half"
        );
        assert_eq!(
            m(&[
                ("SPARK_WORKER_MEMORY", "3g"),
                ("FLINT_WORKER_MEMORY_LIMIT_MB", "1")
            ]),
            Ok(3072)
        );
        assert!(m(&[]).is_err());
        assert!(m(&[("FLINT_WORKER_MEMORY_LIMIT_MB", "lots")]).is_err());
    }

    #[test]
    fn the_manifests_workers_offer_two_cores_and_2_gib() {
        for (components, memory) in [(&[][..], 2048), (&["spark-jvm"][..], 2560)] {
            let m = Manifests::load_with(components).expect("manifests");
            let p = &m.rc("spark-worker-controller").template.spec;
            let e = resolve_env(p, &p.containers[0], "w", "10.0.0.9").expect("env");
            assert_eq!(e["SPARK_LOCAL_IP"], "10.0.0.9");
            assert_eq!(e["SPARK_WORKER_CORES"], "2");
            assert_eq!(expected_worker_memory_mb(&e), Ok(memory), "{components:?}");
        }
    }
}
