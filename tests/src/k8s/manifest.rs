//! `k8s-manifests/` as kustomize builds it: the resources its `kustomization.yaml` lists,
//! with the patches of the named Components applied, read with serde_norway into the
//! object model of [`super::spec`].

use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

use super::merge::strategic_merge;
use super::spec::{RcSpec, ServiceSpec};

#[derive(Deserialize, Debug)]
struct Kustomization {
    resources: Vec<String>,
    #[serde(default)]
    images: Vec<KustomizeImage>,
}

#[derive(Deserialize, Debug)]
struct KustomizeImage {
    name: String,
}

/// A kustomize Component (`k8s-manifests/components/<name>/kustomization.yaml`).
#[derive(Deserialize, Debug)]
struct Component {
    kind: String,
    #[serde(default)]
    patches: Vec<PatchRef>,
}

#[derive(Deserialize, Debug)]
struct PatchRef {
    path: String,
}

#[derive(Deserialize, Debug)]
struct Doc {
    kind: String,
    metadata: Meta,
    spec: Value,
}

#[derive(Deserialize, Debug)]
struct Meta {
    name: String,
}

/// The resources a kustomization lists, by kind.
#[derive(Debug)]
pub struct Manifests {
    pub rcs: Vec<(String, RcSpec)>,
    pub services: Vec<(String, ServiceSpec)>,
    /// The image names of `images:` (the ones kustomize may rewrite).
    pub image_names: Vec<String>,
}

/// Every document of a YAML stream (`---`-separated).
fn documents(text: &str, file: &str) -> Result<Vec<Value>, String> {
    serde_norway::Deserializer::from_str(text)
        .map(|de| Value::deserialize(de).map_err(|e| format!("{file}: {e}")))
        .collect()
}

impl Manifests {
    /// `k8s-manifests/` of this repository.
    pub fn load() -> Result<Manifests, String> {
        Self::load_with(&[])
    }

    /// The resources of `k8s-manifests/kustomization.yaml`, with the named kustomize
    /// components of `k8s-manifests/components/` applied (their strategic-merge patches), as
    /// an operator's overlay listing them under `components:` would get them.
    pub fn load_with(components: &[&str]) -> Result<Manifests, String> {
        Self::load_from(&super::repo_root().join("k8s-manifests"), components)
    }

    /// As [`Manifests::load_with`], from the kustomization in `dir`.
    pub fn load_from(dir: &Path, components: &[&str]) -> Result<Manifests, String> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| format!("read {}: {e}", dir.join(name).display()))
        };
        let k: Kustomization = serde_norway::from_str(&read("kustomization.yaml")?)
            .map_err(|e| format!("kustomization.yaml: {e}"))?;
        let mut docs: Vec<(String, Value)> = Vec::new();
        for file in &k.resources {
            for v in documents(&read(file)?, file)? {
                docs.push((file.clone(), v));
            }
        }
        for c in components {
            let comp: Component =
                serde_norway::from_str(&read(&format!("components/{c}/kustomization.yaml"))?)
                    .map_err(|e| format!("components/{c}: {e}"))?;
            if comp.kind != "Component" {
                return Err(format!("components/{c}: a {}, not a Component", comp.kind));
            }
            for p in &comp.patches {
                let file = format!("components/{c}/{}", p.path);
                for patch in documents(&read(&file)?, &file)? {
                    let target = |v: &Value| {
                        (
                            v.get("kind").cloned(),
                            v.get("metadata").and_then(|m| m.get("name")).cloned(),
                        )
                    };
                    let (_, doc) = docs
                        .iter_mut()
                        .find(|(_, d)| target(d) == target(&patch))
                        .ok_or_else(|| format!("{file}: patches a resource the manifests lack"))?;
                    strategic_merge(doc, &patch);
                }
            }
        }
        let mut m = Manifests {
            rcs: Vec::new(),
            services: Vec::new(),
            image_names: k.images.into_iter().map(|i| i.name).collect(),
        };
        for (file, v) in docs {
            let doc: Doc = serde_norway::from_value(v).map_err(|e| format!("{file}: {e}"))?;
            let name = doc.metadata.name;
            match doc.kind.as_str() {
                "ReplicationController" => m.rcs.push((
                    name,
                    serde_norway::from_value(doc.spec).map_err(|e| format!("{file}: {e}"))?,
                )),
                "Service" => m.services.push((
                    name,
                    serde_norway::from_value(doc.spec).map_err(|e| format!("{file}: {e}"))?,
                )),
                other => return Err(format!("{file}: the emulator cannot run a {other}")),
            }
        }
        Ok(m)
    }

    /// The ReplicationController `name` (panics if the manifests have none).
    pub fn rc(&self, name: &str) -> &RcSpec {
        self.rcs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no ReplicationController {name}"))
    }

    /// The Service `name` (panics if the manifests have none).
    pub fn service(&self, name: &str) -> &ServiceSpec {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no Service {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::quantity::Quantity;
    use crate::k8s::spec::{EnvVar, IntOrString, selects};

    #[test]
    fn the_repositorys_manifests_load() {
        let m = Manifests::load().expect("k8s-manifests/");
        assert_eq!(m.image_names, ["flint"]);
        let names: Vec<&str> = m.rcs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["spark-master-controller", "spark-worker-controller"]
        );
        let master = m.rc("spark-master-controller");
        let worker = m.rc("spark-worker-controller");
        assert_eq!((master.replicas, worker.replicas), (1, 2));
        for rc in [master, worker] {
            assert!(selects(&rc.selector, &rc.template.metadata.labels));
            assert_eq!(rc.template.spec.containers.len(), 1);
        }
        let w = &worker.template.spec.containers[0];
        assert_eq!(w.image, "flint:0.1.0");
        assert_eq!(w.command, ["/start-worker"]);
        assert_eq!(w.resources.limits["cpu"].value(), Ok(2.0));
        assert_eq!(w.resources.limits["memory"].value(), Ok(2560.0 * 1048576.0));
        assert_eq!(w.resources.requests["cpu"].value(), Ok(0.5));
        let ready = w.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref());
        let ready = ready.expect("readiness probe");
        assert_eq!(ready.path, "/readyz");
        assert_eq!(w.port(&ready.port), Ok(8081), "the port named http");
        assert_eq!(w.security_context.read_only_root_filesystem, Some(true));
        assert_eq!(worker.template.spec.security_context.run_as_user, Some(185));
        assert_eq!(
            worker.template.spec.termination_grace_period_seconds,
            Some(15)
        );

        // The Services and whom they select.
        let svc = m.service("spark-master");
        assert!(selects(&svc.selector, &master.template.metadata.labels));
        assert!(!selects(&svc.selector, &worker.template.metadata.labels));
        let np = m.service("spark-master-nodeport");
        assert_eq!(np.kind.as_deref(), Some("NodePort"));
        let submit = np
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some("submit"));
        assert_eq!(
            submit.and_then(|p| p.target_port.clone()),
            Some(IntOrString::Int(7077))
        );
        let spark = svc
            .ports
            .iter()
            .find(|p| p.name.as_deref() == Some("spark"));
        let target = spark.and_then(|p| p.target_port.clone()).expect("target");
        assert_eq!(target, IntOrString::String("spark".into()));
        assert_eq!(master.template.spec.containers[0].port(&target), Ok(7077));
        assert!(
            master.template.spec.containers[0]
                .port(&IntOrString::String("nope".into()))
                .is_err()
        );
    }

    #[test]
    fn the_spark_jvm_component_patches_the_workers_only() {
        let plain = Manifests::load().expect("plain");
        let m = Manifests::load_with(&["spark-jvm"]).expect("with spark-jvm");
        let w = &m.rc("spark-worker-controller").template.spec;
        let c = &w.containers[0];
        assert_eq!(c.image, "flint:0.1.0-spark3.5");
        assert_eq!(c.resources.limits["memory"].0, "4Gi");
        assert_eq!(c.resources.requests["memory"].0, "2Gi");
        assert_eq!(
            c.resources.limits["cpu"].value(),
            Ok(2.0),
            "kept from the base"
        );
        let headroom: Vec<&EnvVar> = c
            .env
            .iter()
            .filter(|e| e.name == "FLINT_WORKER_MEMORY_HEADROOM_MB")
            .collect();
        assert_eq!(headroom.len(), 1, "env merges by name");
        assert_eq!(headroom[0].value.as_deref(), Some("1536"));
        let plain_w = &plain.rc("spark-worker-controller").template.spec;
        assert_eq!(c.env.len(), plain_w.containers[0].env.len());
        let tmp = w.volumes.iter().find(|v| v.name == "tmp").expect("tmp");
        let size = tmp.empty_dir.as_ref().and_then(|e| e.size_limit.clone());
        assert_eq!(size, Some(Quantity("8Gi".into())));
        assert_eq!(
            w.volumes.len(),
            plain_w.volumes.len(),
            "volumes merge by name"
        );
        assert_eq!(
            m.rc("spark-master-controller").template.spec.containers[0].image,
            "flint:0.1.0"
        );
        assert!(Manifests::load_with(&["no-such-component"]).is_err());
    }

    #[test]
    fn unknown_kinds_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write("kustomization.yaml", "resources: [a.yaml]\n").expect("write");
        let e = Manifests::load_from(dir.path(), &[]).expect_err("a.yaml is missing");
        assert!(e.contains("a.yaml"), "{e}");
        write(
            "a.yaml",
            "kind: Deployment\nmetadata: {name: x}\nspec: {}\n",
        )
        .expect("write");
        let e = Manifests::load_from(dir.path(), &[]).expect_err("a Deployment");
        assert!(e.contains("Deployment"), "{e}");
    }
}
