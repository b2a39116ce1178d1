//! The part of the Kubernetes object model `k8s-manifests/` uses: ReplicationControllers
//! with their pod template, and Services.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::quantity::Quantity;

/// A label selector (`matchLabels` style, as ReplicationControllers and Services have it).
pub type Labels = BTreeMap<String, String>;

#[derive(Deserialize, Clone, Debug)]
pub struct RcSpec {
    pub replicas: u32,
    pub selector: Labels,
    pub template: PodTemplate,
}

#[derive(Deserialize, Clone, Debug)]
pub struct PodTemplate {
    pub metadata: TemplateMeta,
    pub spec: PodSpec,
}

#[derive(Deserialize, Clone, Debug)]
pub struct TemplateMeta {
    #[serde(default)]
    pub labels: Labels,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub hostname: Option<String>,
    pub termination_grace_period_seconds: Option<u64>,
    #[serde(default)]
    pub security_context: SecurityContext,
    pub containers: Vec<ContainerSpec>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    pub run_as_non_root: Option<bool>,
    pub fs_group: Option<u32>,
    pub read_only_root_filesystem: Option<bool>,
    pub allow_privilege_escalation: Option<bool>,
    pub capabilities: Option<Capabilities>,
}

#[derive(Deserialize, Clone, Debug, Default)]
pub struct Capabilities {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub security_context: SecurityContext,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
}

impl ContainerSpec {
    /// A port by number or by name, as a Service's targetPort or a probe names it.
    pub fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(n) => Ok(*n),
            IntOrString::String(name) => self
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("{}: no container port named {name}", self.name)),
        }
    }
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub value_from: Option<EnvSource>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct EnvSource {
    pub field_ref: Option<FieldRef>,
    pub resource_field_ref: Option<ResourceFieldRef>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    pub field_path: String,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFieldRef {
    pub container_name: Option<String>,
    pub resource: String,
    pub divisor: Option<Quantity>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
}

#[derive(Deserialize, Clone, Debug, Default)]
pub struct Resources {
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub empty_dir: Option<EmptyDir>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDir {
    pub medium: Option<String>,
    pub size_limit: Option<Quantity>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: Option<HttpGet>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct HttpGet {
    pub path: String,
    pub port: IntOrString,
}

/// Kubernetes' IntOrString: a port by number or by name.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u16),
    String(String),
}

#[derive(Deserialize, Clone, Debug)]
pub struct ServiceSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub selector: Labels,
    pub ports: Vec<ServicePort>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: Option<IntOrString>,
}

/// Whether a (non-empty) selector selects these labels.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_subsets_of_labels_and_never_when_empty() {
        let pod = labels(&[("component", "spark-worker"), ("tier", "compute")]);
        assert!(selects(&labels(&[("component", "spark-worker")]), &pod));
        assert!(selects(&pod, &pod));
        assert!(!selects(&labels(&[("component", "spark-master")]), &pod));
        assert!(!selects(
            &labels(&[("component", "spark-worker"), ("zone", "a")]),
            &pod
        ));
        assert!(
            !selects(&Labels::new(), &pod),
            "an empty selector selects nothing"
        );
    }

    #[test]
    fn ports_are_found_by_number_or_name() {
        let c: ContainerSpec = serde_norway::from_str(
            "{name: c, image: i, ports: [{name: http, containerPort: 8081}, {containerPort: 7077}]}",
        )
        .expect("container");
        assert_eq!(c.port(&IntOrString::Int(9999)), Ok(9999));
        assert_eq!(c.port(&IntOrString::String("http".into())), Ok(8081));
        assert!(c.port(&IntOrString::String("spark".into())).is_err());
        let ports: Vec<IntOrString> = serde_norway::from_str("[8080, http]").expect("ports");
        assert_eq!(
            ports,
            [IntOrString::Int(8080), IntOrString::String("http".into())]
        );
    }
}
