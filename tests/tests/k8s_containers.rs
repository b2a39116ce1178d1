//! `k8s-manifests/`, run for real as Docker containers, the way a kubelet would run them.
//!
//! The image is built without pulling anything (`tests/k8s/build-image.sh`: the release
//! binaries, a root filesystem from this machine's libraries, `FROM scratch`). The
//! resources listed in `kustomization.yaml` are then read and started on a private Docker
//! network:
//!
//! - a ReplicationController becomes `replicas` containers ("pods") named
//!   `<rc>-<5 random chars>`, with the manifest's command and args, its environment (the
//!   downward API resolved: `status.podIP` is the address the pod gets on the network,
//!   `resourceFieldRef`s are computed from the container's own requests and limits, and
//!   `$(VAR)` references are expanded), its limits and requests (`--cpus`, `--memory`,
//!   `--cpu-shares`, `--memory-reservation`), its security context (`--user`,
//!   `--read-only`, `--cap-drop`, `no-new-privileges`), its emptyDirs (anonymous volumes,
//!   or tmpfs for `medium: Memory`) and `terminationGracePeriodSeconds` as the stop timeout;
//! - a Service becomes a network alias (its name) on the pods its selector matches, so
//!   `spark-master` resolves as it does in the cluster; the ports of a NodePort Service,
//!   and every declared container port (for the probes, which a kubelet sends to the pod),
//!   are published on 127.0.0.1, so the test talks to the master "from outside the
//!   cluster" as a user would through NodePort 30077;
//! - scaling, deleting pods and the controller replacing them are `docker run`,
//!   `docker stop` (SIGTERM, then SIGKILL after the grace period) and `docker rm`.
//!
//! One test also builds the worker variant with a Java runtime and Spark's jars
//! (`build-image.sh --with-spark`, from the pyspark 3.5 install of `tests/spark/setup.sh`)
//! and runs the manifests with the kustomize component `components/spark-jvm` applied.
//!
//! Every container, volume, network and image is labelled or named with a per-run id and
//! removed when the test ends, whether it passed or not. Needs a Docker engine: without
//! one the tests fail, they do not skip. Figures (image size, start-to-ALIVE times) are
//! printed and written to `target/tmp/k8s-figures-<test>.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flint_client::MasterClient;
use flint_domain::types::*;
use flint_tests::{app, shell, wait_for};
use serde::Deserialize;

/// The tests share one Docker engine and two cores: one cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The master's default `spark.worker.timeout` (the manifests do not change it).
const WORKER_TIMEOUT: Duration = Duration::from_secs(60);
const LABEL: &str = "flint-k8s-test";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

// ---- the manifests ------------------------------------------------------------------------

#[derive(Deserialize)]
struct Kustomization {
    resources: Vec<String>,
    #[serde(default)]
    images: Vec<KustomizeImage>,
}

#[derive(Deserialize)]
struct KustomizeImage {
    name: String,
}

/// A kustomize Component (`k8s-manifests/components/<name>/kustomization.yaml`).
#[derive(Deserialize)]
struct Component {
    kind: String,
    #[serde(default)]
    patches: Vec<PatchRef>,
}

#[derive(Deserialize)]
struct PatchRef {
    path: String,
}

/// Kubernetes' strategic merge, as far as the components use it: maps merge key by key
/// (`null` deletes), the lists below merge by their key, other lists and scalars are replaced.
fn strategic_merge(base: &mut serde_yaml::Value, patch: &serde_yaml::Value, field: &str) {
    use serde_yaml::Value;
    let merge_key = match field {
        "containers" | "initContainers" | "env" | "volumes" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" => Some("containerPort"),
        _ => None,
    };
    match (base, patch) {
        (Value::Mapping(b), Value::Mapping(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else if let Some(existing) = b.get_mut(k) {
                    strategic_merge(existing, v, k.as_str().unwrap_or_default());
                } else {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(p)) if merge_key.is_some() => {
            let key = merge_key.expect("merge key");
            for item in p {
                let id = item.get(key);
                match b.iter_mut().find(|x| id.is_some() && x.get(key) == id) {
                    Some(existing) => strategic_merge(existing, item, ""),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

#[derive(Deserialize)]
struct Doc {
    kind: String,
    metadata: Meta,
    spec: serde_yaml::Value,
}

#[derive(Deserialize, Clone)]
struct Meta {
    name: String,
}

#[derive(Deserialize, Clone)]
struct RcSpec {
    replicas: u32,
    selector: BTreeMap<String, String>,
    template: PodTemplate,
}

#[derive(Deserialize, Clone)]
struct PodTemplate {
    metadata: TemplateMeta,
    spec: PodSpec,
}

#[derive(Deserialize, Clone)]
struct TemplateMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    hostname: Option<String>,
    termination_grace_period_seconds: Option<u64>,
    #[serde(default)]
    security_context: SecurityContext,
    containers: Vec<ContainerSpec>,
    #[serde(default)]
    volumes: Vec<Volume>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    run_as_user: Option<u32>,
    run_as_group: Option<u32>,
    run_as_non_root: Option<bool>,
    fs_group: Option<u32>,
    read_only_root_filesystem: Option<bool>,
    allow_privilege_escalation: Option<bool>,
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize, Clone, Default)]
struct Capabilities {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ContainerSpec {
    name: String,
    image: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    ports: Vec<ContainerPort>,
    #[serde(default)]
    resources: Resources,
    #[serde(default)]
    security_context: SecurityContext,
    #[serde(default)]
    volume_mounts: Vec<VolumeMount>,
    readiness_probe: Option<Probe>,
    liveness_probe: Option<Probe>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct EnvVar {
    name: String,
    value: Option<String>,
    value_from: Option<EnvSource>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct EnvSource {
    field_ref: Option<FieldRef>,
    resource_field_ref: Option<ResourceFieldRef>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct FieldRef {
    field_path: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ResourceFieldRef {
    container_name: Option<String>,
    resource: String,
    divisor: Option<serde_yaml::Value>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    name: Option<String>,
    container_port: u16,
}

#[derive(Deserialize, Clone, Default)]
struct Resources {
    #[serde(default)]
    limits: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    requests: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: String,
    mount_path: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: String,
    empty_dir: Option<EmptyDir>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct EmptyDir {
    medium: Option<String>,
    size_limit: Option<serde_yaml::Value>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Probe {
    http_get: Option<HttpGet>,
}

#[derive(Deserialize, Clone)]
struct HttpGet {
    path: String,
    port: serde_yaml::Value,
}

#[derive(Deserialize, Clone)]
struct ServiceSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ServicePort {
    name: Option<String>,
    port: u16,
    target_port: Option<serde_yaml::Value>,
}

struct Manifests {
    rcs: Vec<(String, RcSpec)>,
    services: Vec<(String, ServiceSpec)>,
    image_names: Vec<String>,
}

impl Manifests {
    fn load() -> Manifests {
        Self::load_with(&[])
    }

    /// The resources of `kustomization.yaml`, with the named kustomize components of
    /// `k8s-manifests/components/` applied (their strategic-merge patches), as an operator's
    /// overlay listing them under `components:` would get them.
    fn load_with(components: &[&str]) -> Manifests {
        let dir = repo_root().join("k8s-manifests");
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("read k8s-manifests/{name}: {e}"))
        };
        let k: Kustomization =
            serde_yaml::from_str(&read("kustomization.yaml")).expect("kustomization.yaml");
        let mut m = Manifests {
            rcs: Vec::new(),
            services: Vec::new(),
            image_names: k.images.into_iter().map(|i| i.name).collect(),
        };
        let mut docs: Vec<(String, serde_yaml::Value)> = Vec::new();
        for file in &k.resources {
            let text = read(file);
            for de in serde_yaml::Deserializer::from_str(&text) {
                let v =
                    serde_yaml::Value::deserialize(de).unwrap_or_else(|e| panic!("{file}: {e}"));
                docs.push((file.clone(), v));
            }
        }
        for c in components {
            let comp: Component =
                serde_yaml::from_str(&read(&format!("components/{c}/kustomization.yaml")))
                    .unwrap_or_else(|e| panic!("components/{c}: {e}"));
            assert_eq!(comp.kind, "Component", "components/{c}");
            for p in &comp.patches {
                let file = format!("components/{c}/{}", p.path);
                let text = read(&file);
                for de in serde_yaml::Deserializer::from_str(&text) {
                    let patch = serde_yaml::Value::deserialize(de)
                        .unwrap_or_else(|e| panic!("{file}: {e}"));
                    let target = |v: &serde_yaml::Value| {
                        (
                            v.get("kind").cloned(),
                            v.get("metadata").and_then(|m| m.get("name")).cloned(),
                        )
                    };
                    let (_, doc) = docs
                        .iter_mut()
                        .find(|(_, d)| target(d) == target(&patch))
                        .unwrap_or_else(|| panic!("{file}: patches a resource the manifests lack"));
                    strategic_merge(doc, &patch, "");
                }
            }
        }
        for (file, v) in docs {
            let doc: Doc = serde_yaml::from_value(v).unwrap_or_else(|e| panic!("{file}: {e}"));
            let name = doc.metadata.name.clone();
            match doc.kind.as_str() {
                "ReplicationController" => m.rcs.push((
                    name,
                    serde_yaml::from_value(doc.spec).unwrap_or_else(|e| panic!("{file}: {e}")),
                )),
                "Service" => m.services.push((
                    name,
                    serde_yaml::from_value(doc.spec).unwrap_or_else(|e| panic!("{file}: {e}")),
                )),
                other => panic!("{file}: the test cannot run a {other}"),
            }
        }
        m
    }

    fn rc(&self, name: &str) -> &RcSpec {
        self.rcs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no ReplicationController {name}"))
    }

    fn service(&self, name: &str) -> &ServiceSpec {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no Service {name}"))
    }
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn quantity(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        other => panic!("not a quantity: {other:?}"),
    }
}

/// A Kubernetes quantity as a number: `500m`, `2`, `2560Mi`, `1G`, `1e3`.
fn parse_quantity(q: &str) -> f64 {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("m", 0.001),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (s, mult) in SUFFIXES {
        if let Some(n) = q.strip_suffix(s) {
            return n.parse::<f64>().unwrap_or_else(|_| panic!("quantity {q}")) * mult;
        }
    }
    q.parse().unwrap_or_else(|_| panic!("quantity {q}"))
}

/// Spark-style memory from a worker's resolved environment, the way `/start-worker`
/// derives it: SPARK_WORKER_MEMORY if set, else the limit minus the headroom, but at least
/// half of the limit.
fn expected_worker_memory_mb(env: &BTreeMap<String, String>) -> u64 {
    if let Some(m) = env.get("SPARK_WORKER_MEMORY") {
        return flint_domain::units::parse_memory_mb(m).expect("SPARK_WORKER_MEMORY");
    }
    let limit: u64 = env
        .get("FLINT_WORKER_MEMORY_LIMIT_MB")
        .expect("the worker's memory comes from its limit")
        .parse()
        .expect("MiB");
    let headroom: u64 = env
        .get("FLINT_WORKER_MEMORY_HEADROOM_MB")
        .map(|h| h.parse().expect("MiB"))
        .unwrap_or(512);
    limit.saturating_sub(headroom).max(limit / 2)
}

// ---- docker -------------------------------------------------------------------------------

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"))
}

/// Runs docker and returns its trimmed stdout; panics with its stderr on failure.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn logs(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn random_suffix(n: usize) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789"; // as Kubernetes' generateName
    (0..n)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

/// A GET on 127.0.0.1:`port`; the status code, or None if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..n]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---- the emulated cluster -----------------------------------------------------------------

struct Pod {
    rc: String,
    name: String,
    container: String,
    ip: String,
    env: BTreeMap<String, String>,
    /// Just before `docker run`.
    created: Instant,
}

/// The image, the network and the pods of one test run; all removed on drop.
struct Kube {
    run: String,
    image: String,
    image_built: bool,
    /// Images built besides `image` (the Spark variant), by the image the manifests name.
    variant_images: BTreeMap<String, String>,
    network: Option<String>,
    subnet: String,
    next_host: u8,
    manifests: Manifests,
    pods: Vec<Pod>,
    figures: Vec<String>,
}

impl Kube {
    /// Checks the engine, builds the image and creates the network.
    fn start(test: &str) -> Kube {
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "this test needs a Docker engine, and it does not answer (CI={}): {}",
                std::env::var("CI").unwrap_or_default(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "this test needs a Docker engine, and there is no docker client (CI={}): {e}",
                std::env::var("CI").unwrap_or_default()
            ),
        }
        let run = format!("flintk8s-{}-{}", std::process::id(), random_suffix(6));
        let mut k = Kube {
            image: format!("flint-k8s-test:{run}"),
            run,
            image_built: false,
            variant_images: BTreeMap::new(),
            network: None,
            subnet: String::new(),
            next_host: 10,
            manifests: Manifests::load(),
            pods: Vec::new(),
            figures: Vec::new(),
        };
        k.figure(format!("--- {test}"));
        k.build_image();
        k.create_network();
        k
    }

    fn figure(&mut self, line: String) {
        eprintln!("figure: {line}");
        self.figures.push(line);
    }

    fn build_image(&mut self) {
        let release = repo_root().join("target/release");
        for b in ["flint-master", "flint-worker", "flint-submit"] {
            assert!(
                release.join(b).exists(),
                "target/release/{b} is missing: cargo build --release -p flint-master -p flint-worker -p flint-client --bins"
            );
        }
        self.image_built = true; // from here on, Drop removes the tag even if the build fails
        let script = repo_root().join("tests/k8s/build-image.sh");
        let out = Command::new("sh")
            .arg(&script)
            .args(["--no-build", "--tag", &self.image])
            .stdin(Stdio::null())
            .output()
            .expect("run build-image.sh");
        assert!(
            out.status.success(),
            "image build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &self.image])
            .parse()
            .expect("size");
        self.figure(format!(
            "image size: {size} bytes ({:.1} MB)",
            size as f64 / 1e6
        ));
        assert!(
            size < 40_000_000,
            "the runtime image must stay under 40 MB: {size} bytes"
        );
        let user = docker_ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}}",
            &self.image,
        ]);
        assert_eq!(user, "185:185", "the image runs as the non-root user spark");
        // Every command the manifests run, and what the start scripts exec, is in the image.
        let mut checks: Vec<String> = self
            .manifests
            .rcs
            .iter()
            .flat_map(|(_, rc)| rc.template.spec.containers.iter())
            .filter_map(|c| c.command.first())
            .map(|c| format!("test -x {c}"))
            .collect();
        for b in [
            "flint-master",
            "flint-worker",
            "flint-submit",
            "getent",
            "sleep",
        ] {
            checks.push(format!("command -v {b} >/dev/null"));
        }
        let script = checks.join(" && ");
        let out = docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--label",
            &format!("{LABEL}={}", self.run),
            "--entrypoint",
            "/bin/sh",
            &self.image,
            "-c",
            &script,
        ]);
        assert!(
            out.status.success(),
            "the image lacks something the manifests run ({script}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Builds the worker variant with a Java runtime and Spark's jars
    /// (`build-image.sh --with-spark spark_home`) and runs it wherever the manifests name
    /// `manifest_image`; returns its tag.
    fn build_spark_variant(&mut self, spark_home: &Path, manifest_image: &str) -> String {
        let tag = format!("{}-spark", self.image);
        // From here on, Drop removes the tag even if the build fails.
        self.variant_images
            .insert(manifest_image.to_owned(), tag.clone());
        let t = Instant::now();
        let out = Command::new("sh")
            .arg(repo_root().join("tests/k8s/build-image.sh"))
            .args(["--no-build", "--tag", &tag, "--with-spark"])
            .arg(spark_home)
            .stdin(Stdio::null())
            .output()
            .expect("run build-image.sh");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "variant image build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &tag])
            .parse()
            .expect("size");
        self.figure(format!(
            "spark variant image size: {size} bytes ({:.1} MB), assembled and built in {took:?}",
            size as f64 / 1e6
        ));
        tag
    }

    /// Runs a one-shot container of `image` on the cluster's network (so that its host name
    /// resolves, as a pod's does; at `ip`, if given), locked down like the pods, and waits up
    /// to `timeout` for it to exit: its exit code, output, and how long it ran.
    fn run_once(
        &self,
        image: &str,
        ip: Option<&str>,
        cmd: &[&str],
        timeout: Duration,
    ) -> (i32, String, Duration) {
        let name = format!("{}-once-{}", self.run, random_suffix(5));
        let label = format!("{LABEL}={}", self.run);
        let (entry, rest) = cmd.split_first().expect("a command");
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            &name,
            "--network",
            self.network(),
            "--label",
            &label,
            "--user",
            "185:185",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/tmp:rw,exec,size=256m,mode=1777",
        ];
        if let Some(ip) = ip {
            args.extend(["--ip", ip]);
        }
        args.extend(["--entrypoint", entry, image]);
        args.extend(rest);
        let t = Instant::now();
        docker_ok(&args);
        let (code, out) = self.wait_client(&name, timeout);
        let took = t.elapsed();
        docker_ok(&["rm", "--force", &name]);
        (code, out, took)
    }

    /// An unused address on the cluster's network.
    fn next_ip(&mut self) -> String {
        let ip = format!("{}.{}", self.subnet, self.next_host);
        self.next_host += 1;
        ip
    }

    fn create_network(&mut self) {
        let name = format!("{}-net", self.run);
        let mut last = String::new();
        for _ in 0..20 {
            let subnet = format!("10.{}.{}", fastrand::u8(160..250), fastrand::u8(1..250));
            let out = docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                "--subnet",
                &format!("{subnet}.0/24"),
                "--label",
                &format!("{LABEL}={}", self.run),
                &name,
            ]);
            if out.status.success() {
                self.network = Some(name);
                self.subnet = subnet;
                return;
            }
            last = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        panic!("cannot create a Docker network: {last}");
    }

    fn network(&self) -> &str {
        self.network.as_deref().expect("network")
    }

    /// The environment a kubelet would give this container in pod `pod_name` at `ip`.
    fn resolve_env(
        pod: &PodSpec,
        c: &ContainerSpec,
        pod_name: &str,
        ip: &str,
    ) -> BTreeMap<String, String> {
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
                        other => panic!("env {}: fieldRef {other} is not emulated", e.name),
                    }
                } else if let Some(r) = &src.resource_field_ref {
                    let target = match &r.container_name {
                        Some(n) => pod
                            .containers
                            .iter()
                            .find(|c| &c.name == n)
                            .unwrap_or_else(|| panic!("env {}: no container {n}", e.name)),
                        None => c,
                    };
                    let (kind, res) = r.resource.split_once('.').expect("limits.x or requests.x");
                    let map = match kind {
                        "limits" => &target.resources.limits,
                        "requests" => &target.resources.requests,
                        other => panic!("resourceFieldRef {other}"),
                    };
                    let v = map.get(res).unwrap_or_else(|| {
                        panic!(
                            "env {}: {} is not set: Kubernetes would give the node's capacity",
                            e.name, r.resource
                        )
                    });
                    let divisor = r
                        .divisor
                        .as_ref()
                        .map(quantity)
                        .unwrap_or_else(|| "1".into());
                    // The downward API rounds up.
                    let n = (parse_quantity(&quantity(v)) / parse_quantity(&divisor)).ceil();
                    format!("{n}")
                } else {
                    panic!("env {}: unsupported valueFrom", e.name)
                }
            } else {
                String::new()
            };
            env.insert(e.name.clone(), value);
        }
        env
    }

    /// Starts one pod of `rc_name`, as the ReplicationController would.
    fn create_pod(&mut self, rc_name: &str) -> usize {
        let rc = self.manifests.rc(rc_name).clone();
        let pod = &rc.template.spec;
        assert!(
            selects(&rc.selector, &rc.template.metadata.labels),
            "{rc_name}: the selector does not select its own pods"
        );
        assert_eq!(
            pod.containers.len(),
            1,
            "{rc_name}: one container per pod is emulated"
        );
        let c = &pod.containers[0];
        let pod_name = format!("{rc_name}-{}", random_suffix(5));
        let container = format!("{}-{pod_name}", self.run);
        let ip = format!("{}.{}", self.subnet, self.next_host);
        self.next_host += 1;
        let env = Self::resolve_env(pod, c, &pod_name, &ip);

        let mut args: Vec<String> = vec![
            "run".into(),
            "--detach".into(),
            "--name".into(),
            container.clone(),
            "--label".into(),
            format!("{LABEL}={}", self.run),
            "--network".into(),
            self.network().to_owned(),
            "--ip".into(),
            ip.clone(),
            "--hostname".into(),
            pod.hostname.clone().unwrap_or_else(|| pod_name.clone()),
            "--stop-timeout".into(),
            pod.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ];
        // Services: a DNS name for the pods they select.
        for (svc_name, svc) in &self.manifests.services {
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
        if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) {
            assert!(
                uid.is_some_and(|u| u != 0),
                "{rc_name}: runAsNonRoot needs a non-zero runAsUser (the kubelet would refuse it)"
            );
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
                .unwrap_or_else(|| panic!("{rc_name}: no volume {}", m.name));
            let ed = v
                .empty_dir
                .as_ref()
                .unwrap_or_else(|| panic!("{rc_name}: volume {} is not an emptyDir", v.name));
            if ed.medium.as_deref() == Some("Memory") {
                let size = ed
                    .size_limit
                    .as_ref()
                    .map(|s| parse_quantity(&quantity(s)) as u64)
                    .unwrap_or(64 << 20);
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
            args.extend([
                "--cpus".into(),
                format!("{}", parse_quantity(&quantity(cpu))),
            ]);
        }
        if let Some(mem) = c.resources.limits.get("memory") {
            let bytes = parse_quantity(&quantity(mem)) as u64;
            args.extend([
                "--memory".into(),
                bytes.to_string(),
                "--memory-swap".into(),
                bytes.to_string(),
            ]);
        }
        if let Some(cpu) = c.resources.requests.get("cpu") {
            let shares = ((parse_quantity(&quantity(cpu)) * 1024.0) as u64).max(2);
            args.extend(["--cpu-shares".into(), shares.to_string()]);
        }
        if let Some(mem) = c.resources.requests.get("memory") {
            args.extend([
                "--memory-reservation".into(),
                (parse_quantity(&quantity(mem)) as u64).to_string(),
            ]);
        }
        for (k, v) in &env {
            args.extend(["--env".into(), format!("{k}={v}")]);
        }
        // The image the kustomization names, built by this test.
        let image_name = c.image.split(':').next().unwrap_or_default();
        assert!(
            self.manifests.image_names.iter().any(|n| n == image_name),
            "{rc_name}: image {} is not in kustomization.yaml",
            c.image
        );
        let (entry, rest) = c
            .command
            .split_first()
            .unwrap_or_else(|| panic!("{rc_name}: no command"));
        let image = self
            .variant_images
            .get(&c.image)
            .unwrap_or(&self.image)
            .clone();
        args.extend(["--entrypoint".into(), entry.clone(), image]);
        args.extend(rest.iter().cloned());
        args.extend(c.args.iter().cloned());

        let created = Instant::now();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&refs);
        self.pods.push(Pod {
            rc: rc_name.to_owned(),
            name: pod_name,
            container,
            ip,
            env,
            created,
        });
        self.pods.len() - 1
    }

    fn pods_of(&self, rc: &str) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&i| self.pods[i].rc == rc)
            .collect()
    }

    /// `kubectl scale rc <rc> --replicas=n`: new pods, or the newest ones deleted.
    fn scale(&mut self, rc: &str, n: usize) -> Vec<usize> {
        let mut created = Vec::new();
        while self.pods_of(rc).len() < n {
            created.push(self.create_pod(rc));
        }
        while self.pods_of(rc).len() > n {
            let last = *self.pods_of(rc).last().expect("a pod");
            self.delete_pod(last);
        }
        created
    }

    /// Creates the controller's pods.
    fn apply_rc(&mut self, rc: &str) -> Vec<usize> {
        let n = self.manifests.rc(rc).replicas as usize;
        self.scale(rc, n)
    }

    /// Deletes a pod: SIGTERM, SIGKILL after the grace period, then gone.
    fn delete_pod(&mut self, i: usize) {
        let p = self.pods.remove(i);
        docker_ok(&["stop", &p.container]);
        docker_ok(&["rm", "--force", "--volumes", &p.container]);
    }

    /// Takes a pod out of the controller's set (the test stops or kills its container itself;
    /// Drop removes anything left, by label).
    fn forget_pod(&mut self, i: usize) -> Pod {
        self.pods.remove(i)
    }

    fn index_of(&self, container: &str) -> usize {
        self.pods
            .iter()
            .position(|p| p.container == container)
            .expect("pod")
    }

    /// The host port a container port of a pod is published on.
    fn host_port(&self, pod: usize, port: u16) -> u16 {
        let out = docker_ok(&["port", &self.pods[pod].container, &format!("{port}/tcp")]);
        out.lines()
            .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("port {port} is not published: {out}"))
    }

    /// `spark://127.0.0.1:<port>` reaching `service`'s `port_name` (the NodePort, from outside).
    fn service_url(&self, service: &str, port_name: &str) -> String {
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
        let target = self.container_port(pod, sp.target_port.as_ref(), sp.port);
        format!("spark://127.0.0.1:{}", self.host_port(pod, target))
    }

    fn container(&self, pod: usize) -> &ContainerSpec {
        &self
            .manifests
            .rc(&self.pods[pod].rc)
            .template
            .spec
            .containers[0]
    }

    /// A port by number or by name, as a Service's targetPort or a probe names it.
    fn container_port(&self, pod: usize, port: Option<&serde_yaml::Value>, default: u16) -> u16 {
        let c = self.container(pod);
        match port {
            None => default,
            Some(serde_yaml::Value::Number(n)) => n.as_u64().expect("port") as u16,
            Some(serde_yaml::Value::String(name)) => c
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .unwrap_or_else(|| panic!("no container port named {name}")),
            Some(other) => panic!("port {other:?}"),
        }
    }

    /// The status a probe of the pod gets now.
    fn probe(&self, pod: usize, readiness: bool) -> Option<u16> {
        let c = self.container(pod);
        let probe = if readiness {
            c.readiness_probe.as_ref()
        } else {
            c.liveness_probe.as_ref()
        };
        let get = probe
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{}: no httpGet probe", self.pods[pod].name));
        let port = self.container_port(pod, Some(&get.port), 0);
        http_status(self.host_port(pod, port), &get.path)
    }

    /// Waits until the pod's readiness (or liveness) probe gets 200.
    async fn wait_probe(&self, pod: usize, readiness: bool) {
        let what = format!(
            "{} {} probe",
            self.pods[pod].name,
            if readiness { "readiness" } else { "liveness" }
        );
        wait_for(&what, Duration::from_secs(60), || async {
            (self.probe(pod, readiness) == Some(200)).then_some(())
        })
        .await;
    }

    fn master_url(&self) -> String {
        self.service_url("spark-master-nodeport", "submit")
    }

    async fn state(&self) -> Option<ClusterSnapshot> {
        let mut c = MasterClient::connect_with_timeout(&self.master_url(), Duration::from_secs(2))
            .await
            .ok()?;
        c.cluster_state().await.ok()
    }

    async fn wait_state(
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
    async fn wait_alive(&self, pods: &[usize], timeout: Duration) -> Vec<Duration> {
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
    fn worker_id(s: &ClusterSnapshot, pod: &Pod) -> WorkerId {
        s.alive_workers()
            .find(|w| w.host == pod.ip)
            .map(|w| w.id.clone())
            .unwrap_or_else(|| panic!("{} is not an ALIVE worker", pod.name))
    }

    /// Runs a client container (not part of the manifests) on the cluster's network, with
    /// the same locked-down settings as the pods; returns its name.
    fn start_client(&mut self, workdir: &str, cmd: &[&str]) -> String {
        let name = format!("{}-client-{}", self.run, random_suffix(5));
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            &name,
            "--network",
            self.network(),
            "--user",
            "185:185",
            "--read-only",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--tmpfs",
            "/tmp:rw,size=64m,mode=1777",
            "--workdir",
            workdir,
        ];
        let label = format!("{LABEL}={}", self.run);
        args.extend(["--label", &label, &self.image]);
        args.extend(cmd);
        docker_ok(&args);
        name
    }

    /// Waits for a client container to exit; its exit code and output.
    fn wait_client(&self, name: &str, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", name]);
            if running == "false" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still running after {timeout:?}:\n{}",
                logs(name)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", name])
            .parse()
            .expect("exit code");
        (code, logs(name))
    }

    fn write_figures(&self) {
        let Some(test) = self.figures.first() else {
            return;
        };
        let name = test.trim_start_matches("--- ");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("k8s-figures-{name}.txt"));
        let _ = std::fs::write(path, self.figures.join("\n") + "\n");
    }
}

/// Kubernetes' `$(VAR)` expansion of env values (`$$` escapes a `$`).
fn expand_refs(v: &str, env: &BTreeMap<String, String>) -> String {
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

impl Drop for Kube {
    fn drop(&mut self) {
        let filter = format!("label={LABEL}={}", self.run);
        let ids = docker(&["ps", "--all", "--quiet", "--filter", &filter]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if std::thread::panicking() {
            for id in &ids {
                let name = docker_ok(&["inspect", "--format", "{{.Name}}", id]);
                let text = logs(id);
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                eprintln!("---- {name} (last lines) ----");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        if !ids.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
        if let Some(n) = self.network.take() {
            let _ = docker(&["network", "rm", &n]);
        }
        if self.image_built {
            let _ = docker(&["image", "rm", "--force", &self.image]);
        }
        for image in self.variant_images.values() {
            let _ = docker(&["image", "rm", "--force", image]);
        }
        self.write_figures();
    }
}

// ---- the tests ----------------------------------------------------------------------------

/// The master becomes ready; both workers register through the Service name with the
/// cores and memory their limits imply; scaling to 4 gives 4 ALIVE workers; a SIGTERMed
/// worker drains within its grace period and leaves at once; after the master pod is
/// replaced, the workers re-register by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_run_register_scale_drain_and_survive_a_new_master_pod() {
    let _serial = SERIAL.lock().await;
    let mut k = Kube::start("manifests_run_register_scale_drain_and_survive_a_new_master_pod");

    // The master, then its probes.
    let master = k.apply_rc("spark-master-controller")[0];
    k.wait_probe(master, true).await;
    let ready = k.pods[master].created.elapsed();
    k.figure(format!(
        "master container start to ready (/readyz): {ready:?}"
    ));
    k.wait_probe(master, false).await;
    let s = k
        .state()
        .await
        .expect("the master answers through the NodePort");
    assert_eq!(s.status, MasterStatus::Alive);
    assert_eq!(s.master_url, "spark://spark-master:7077");

    // The workers register through the Service name, offering what their limits allow.
    let workers = k.apply_rc("spark-worker-controller");
    assert_eq!(workers.len(), 2, "replicas: 2");
    let times = k.wait_alive(&workers, Duration::from_secs(60)).await;
    for (p, t) in workers.iter().zip(&times) {
        let name = k.pods[*p].name.clone();
        k.figure(format!("worker {name}: container start to ALIVE {t:?}"));
    }
    let s = k.state().await.expect("state");
    assert_eq!(s.alive_workers().count(), 2);
    for &p in &workers {
        let pod = &k.pods[p];
        let w = s
            .alive_workers()
            .find(|w| w.host == pod.ip)
            .expect("worker by pod IP");
        let cores: u32 = pod.env["SPARK_WORKER_CORES"].parse().expect("cores");
        let limit_cpu = parse_quantity(&quantity(&k.container(p).resources.limits["cpu"]));
        assert_eq!(cores as f64, limit_cpu.ceil(), "cores from limits.cpu");
        assert_eq!(
            (w.cores, w.memory_mb),
            (cores, expected_worker_memory_mb(&pod.env)),
            "{}: cores and memory from the container's limits",
            pod.name
        );
        let log = logs(&pod.container);
        assert!(
            log.contains("Successfully registered with master")
                && log.contains("master_url=spark://spark-master:7077"),
            "{} registered through the Service name:\n{log}",
            pod.name
        );
    }

    // Scaling the controller to 4.
    let t = Instant::now();
    let new = k.scale("spark-worker-controller", 4);
    assert_eq!(new.len(), 2);
    let s = k
        .wait_state("4 ALIVE workers", Duration::from_secs(60), |s| {
            s.alive_workers().count() == 4
        })
        .await;
    k.figure(format!(
        "scale 2 -> 4: all 4 workers ALIVE {:?} after the scale",
        t.elapsed()
    ));
    let hosts: BTreeSet<&str> = s.alive_workers().map(|w| w.host.as_str()).collect();
    for p in k.pods_of("spark-worker-controller") {
        assert!(hosts.contains(k.pods[p].ip.as_str()));
    }

    // SIGTERM (`docker stop`, as a pod deletion does) of a worker running executors.
    let mut client = MasterClient::connect(&k.master_url())
        .await
        .expect("connect");
    let session = client
        .register_application(
            app("sleepers", Some(1), 256, None, shell("exec sleep 1000")),
            "",
        )
        .await
        .expect("register an application");
    let app_id = session.app_id().clone();
    let total_cores: u32 = s.alive_workers().map(|w| w.cores).sum();
    k.wait_state(
        "an executor RUNNING on every core",
        Duration::from_secs(60),
        |s| {
            s.app(&app_id).is_some_and(|a| {
                a.executors
                    .iter()
                    .filter(|e| e.state == ExecutorState::Running)
                    .count() as u32
                    == total_cores
            })
        },
    )
    .await;
    let victim = k.pods_of("spark-worker-controller")[0];
    let victim_pod = k.forget_pod(victim);
    let s = k.state().await.expect("state");
    let victim_id = Kube::worker_id(&s, &victim_pod);
    let victim_execs: Vec<ExecutorId> = s
        .app(&app_id)
        .expect("app")
        .executors
        .iter()
        .filter(|e| e.worker_id == victim_id && e.state == ExecutorState::Running)
        .map(|e| e.executor_id)
        .collect();
    assert!(!victim_execs.is_empty(), "the worker runs executors");
    let grace = Duration::from_secs(
        k.manifests
            .rc("spark-worker-controller")
            .template
            .spec
            .termination_grace_period_seconds
            .unwrap_or(30),
    );
    let t = Instant::now();
    docker_ok(&["stop", &victim_pod.container]); // the container's stop timeout is the grace period
    let stopped_in = t.elapsed();
    let code = docker_ok(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &victim_pod.container,
    ]);
    k.figure(format!(
        "SIGTERM to worker exit: {stopped_in:?} (grace period {grace:?})"
    ));
    assert_eq!(
        code,
        "0",
        "the worker exited by itself on SIGTERM, not SIGKILLed at the end of the grace period:\n{}",
        logs(&victim_pod.container)
    );
    assert!(
        stopped_in < grace,
        "stopped in {stopped_in:?}, grace {grace:?}"
    );
    // It killed its executors itself (SIGTERM to their process groups) before exiting.
    let log = logs(&victim_pod.container);
    assert!(
        log.contains("shutting down: stopping executors and drivers"),
        "{log}"
    );
    for id in &victim_execs {
        let needle = format!("exec_id={id}");
        assert!(
            log.lines().any(|l| l.contains("executor killed")
                && l.split_whitespace().any(|w| w == needle)),
            "executor {id} was not killed by the worker:\n{log}"
        );
    }
    // Gone from the master at once: well before the heartbeat timeout could notice it.
    let t = Instant::now();
    let s = k
        .wait_state(
            "the stopped worker gone and its executors no longer running",
            WORKER_TIMEOUT / 2,
            |s| {
                !s.alive_workers().any(|w| w.id == victim_id)
                    && s.app(&app_id).is_some_and(|a| {
                        !a.executors.iter().any(|e| {
                            victim_execs.contains(&e.executor_id)
                                && e.state == ExecutorState::Running
                        })
                    })
            },
        )
        .await;
    k.figure(format!(
        "stopped worker gone from the master {:?} after it exited",
        t.elapsed()
    ));
    assert!(s.alive_workers().count() == 3);
    docker_ok(&["rm", "--force", "--volumes", &victim_pod.container]);
    // The controller replaces the deleted pod.
    let replacement = k.scale("spark-worker-controller", 4);
    k.wait_alive(&replacement, Duration::from_secs(60)).await;
    session.unregister().await.expect("unregister");

    // The master pod dies (SIGKILL) and the controller starts a new one, with a new IP:
    // the workers find it again through the Service name, by themselves.
    let s = k.state().await.expect("state");
    let before: BTreeSet<WorkerId> = s.alive_workers().map(|w| w.id.clone()).collect();
    assert_eq!(before.len(), 4);
    let master = k.pods_of("spark-master-controller")[0];
    let old = k.forget_pod(master);
    docker_ok(&["kill", &old.container]);
    docker_ok(&["rm", "--force", "--volumes", &old.container]);
    let t = Instant::now();
    let master = k.apply_rc("spark-master-controller")[0]; // a new pod, at a new address
    k.wait_probe(master, true).await;
    let s = k
        .wait_state(
            "the same 4 workers ALIVE on the new master",
            Duration::from_secs(60),
            |s| {
                s.alive_workers()
                    .map(|w| w.id.clone())
                    .collect::<BTreeSet<_>>()
                    == before
            },
        )
        .await;
    k.figure(format!(
        "new master pod to all 4 workers re-registered: {:?}",
        t.elapsed()
    ));
    assert_eq!(s.master_url, "spark://spark-master:7077");
    for p in k.pods_of("spark-worker-controller") {
        let log = logs(&k.pods[p].container);
        assert!(
            log.matches("Successfully registered with master").count() >= 2,
            "{} re-registered:\n{log}",
            k.pods[p].name
        );
    }

    // Every worker is live and ready by its own probes (ready = registered).
    for p in k.pods_of("spark-worker-controller") {
        k.wait_probe(p, false).await;
        k.wait_probe(p, true).await;
    }
}

/// Workers started before the master wait for its DNS name with the recipe's message;
/// `flint-submit --deploy-mode cluster --wait pi 100` from a client container prints the
/// result; a worker SIGKILLed during a job is marked DEAD and the job still finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pi_from_a_client_container_and_a_killed_worker_during_a_job() {
    let _serial = SERIAL.lock().await;
    let mut k = Kube::start("pi_from_a_client_container_and_a_killed_worker_during_a_job");
    let out = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        &format!("{LABEL}={}", k.run),
        "--entrypoint",
        "/bin/sh",
        &k.image,
        "-c",
        "test -x /opt/flint/examples/pi",
    ]);
    assert!(
        out.status.success(),
        "the image has no /opt/flint/examples/pi: build the pi example (client/src/bin/pi.rs) in release mode"
    );

    // Workers first: no spark-master name yet.
    let workers = k.apply_rc("spark-worker-controller");
    for &p in &workers {
        let c = k.pods[p].container.clone();
        wait_for("the DNS message", Duration::from_secs(30), || async {
            logs(&c)
                .contains("=== Cannot resolve the DNS entry for spark-master. Has the service been created yet, and is SkyDNS functional?")
                .then_some(())
        })
        .await;
        let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", &c]);
        assert_eq!(running, "true", "start-worker waits instead of exiting");
    }
    k.apply_rc("spark-master-controller");
    k.wait_alive(&workers, Duration::from_secs(60)).await;

    // Cluster mode from a third container, through the Service name.
    let client = k.start_client(
        "/opt/flint/examples",
        &[
            "flint-submit",
            "--master",
            "spark://spark-master:7077",
            "--deploy-mode",
            "cluster",
            "--wait",
            "pi",
            "100",
        ],
    );
    let t = Instant::now();
    let (code, out) = k.wait_client(&client, Duration::from_secs(180));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Pi is roughly 3.1"), "{out}");
    k.figure(format!(
        "flint-submit --deploy-mode cluster --wait pi 100 from a client container: {:?}",
        t.elapsed()
    ));

    // A job of a few seconds (each of its 200 slices sleeps 100 ms: the pi example's
    // testing aid); SIGKILL a worker that runs its executors but not its driver.
    let client = k.start_client(
        "/opt/flint/examples",
        &[
            "flint-submit",
            "--master",
            "spark://spark-master:7077",
            "--deploy-mode",
            "cluster",
            "--conf",
            "spark.flint.pi.sliceDelay=100ms",
            "--wait",
            "pi",
            "200",
        ],
    );
    let pods: Vec<(String, String)> = k
        .pods_of("spark-worker-controller")
        .into_iter()
        .map(|p| (k.pods[p].ip.clone(), k.pods[p].container.clone()))
        .collect();
    let (victim_id, victim_container, app_id) = {
        let s = k
            .wait_state(
                "the job's executors RUNNING on a worker without its driver",
                Duration::from_secs(120),
                |s| {
                    let Some(d) = s
                        .active_drivers
                        .iter()
                        .find(|d| d.state == DriverState::Running)
                    else {
                        return false;
                    };
                    s.active_apps.iter().any(|a| {
                        a.executors.iter().any(|e| {
                            e.state == ExecutorState::Running
                                && Some(&e.worker_id) != d.worker_id.as_ref()
                        })
                    })
                },
            )
            .await;
        let d = s
            .active_drivers
            .iter()
            .find(|d| d.state == DriverState::Running)
            .expect("driver");
        let a = &s.active_apps[0];
        let e = a
            .executors
            .iter()
            .find(|e| {
                e.state == ExecutorState::Running && Some(&e.worker_id) != d.worker_id.as_ref()
            })
            .expect("executor");
        let w = s.worker(&e.worker_id).expect("worker");
        let (_, container) = pods
            .iter()
            .find(|(ip, _)| *ip == w.host)
            .expect("the worker's pod");
        (e.worker_id.clone(), container.clone(), a.id.clone())
    };
    docker_ok(&["kill", &victim_container]);
    let killed = Instant::now();
    let s = k
        .wait_state("the killed worker DEAD", Duration::from_secs(60), |s| {
            s.worker(&victim_id)
                .is_some_and(|w| w.state == WorkerState::Dead)
        })
        .await;
    k.figure(format!(
        "docker kill of a worker to DEAD on the master: {:?}",
        killed.elapsed()
    ));
    assert!(
        s.active_apps.iter().any(|a| a.id == app_id),
        "the job was still running when its worker died (make it longer)"
    );
    // The controller replaces the dead pod, as Kubernetes would.
    let dead = k.index_of(&victim_container);
    k.forget_pod(dead);
    docker_ok(&["rm", "--force", "--volumes", &victim_container]);
    k.scale("spark-worker-controller", 2);
    let (code, out) = k.wait_client(&client, Duration::from_secs(300));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Pi is roughly 3.1"), "{out}");
    k.figure(format!(
        "job with a killed worker finished {:?} after the kill",
        killed.elapsed()
    ));
}

/// What Spark's launcher (`bin/spark-class`, `JavaModuleOptions`) gives every JVM on Java 17.
/// The variant has Spark's jars but not its scripts, so the test's driver gets them here;
/// flint-worker adds them to the executors' commands itself.
const SPARK_JAVA17_OPTIONS: &[&str] = &[
    "-XX:+IgnoreUnrecognizedVMOptions",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
    "-Dio.netty.tryReflectionSetAccessible=true",
];

/// The worker variant for stock Spark JVM executors (`tests/k8s/build-image.sh --with-spark`,
/// applied with the kustomize component `k8s-manifests/components/spark-jvm`), built from
/// this machine's Java 17 and the jars of the pyspark 3.5 install of `tests/spark/setup.sh`:
/// in a locked-down container from it, `java -version` runs, `$SPARK_HOME/jars` has Spark's
/// core jar and Spark's own `SparkSubmit --version` runs from that class path; the
/// component's workers, from the variant, register with a master pod of the plain image,
/// offering the memory the component leaves for executor JVMs; and a stock Spark driver
/// (spark-shell's REPL, client mode, in a container of the variant) gets its job done by an
/// executor JVM that flint-worker starts in a worker pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_variant_image_runs_java_and_spark_executors_in_worker_pods() {
    let _serial = SERIAL.lock().await;
    let venv = repo_root().join(".venv-spark35");
    assert!(
        venv.join("bin/spark-submit").exists(),
        "{} has no pyspark 3.5: run bash tests/spark/setup.sh",
        venv.display()
    );
    let mut k = Kube::start("spark_variant_image_runs_java_and_spark_executors_in_worker_pods");
    k.manifests = Manifests::load_with(&["spark-jvm"]);
    let worker_image = k
        .manifests
        .rc("spark-worker-controller")
        .template
        .spec
        .containers[0]
        .image
        .clone();
    assert!(
        worker_image.ends_with("-spark3.5"),
        "the component runs the workers on the Spark 3.5 variant: {worker_image}"
    );
    let master_image = &k
        .manifests
        .rc("spark-master-controller")
        .template
        .spec
        .containers[0]
        .image;
    assert!(
        !master_image.contains("-spark"),
        "the master stays on the plain image: {master_image}"
    );
    let image = k.build_spark_variant(&venv, &worker_image);

    // What the image declares.
    let inspect = |format: &str| docker_ok(&["image", "inspect", "--format", format, &image]);
    assert_eq!(inspect("{{.Config.User}}"), "185:185");
    let env = inspect("{{json .Config.Env}}");
    for want in ["JAVA_HOME=/opt/java/openjdk", "SPARK_HOME=/opt/spark"] {
        assert!(
            env.contains(want),
            "the image's environment lacks {want}: {env}"
        );
    }
    let spark_version = inspect("{{index .Config.Labels \"org.apache.spark.version\"}}");
    assert!(
        spark_version.starts_with("3.5."),
        "Spark version label: {spark_version}"
    );

    // java on the PATH (the image's, and the one /start-common.sh gives the worker and its
    // children), JAVA_HOME's java, Spark's jars where SPARK_HOME says, and the commands the
    // JVMs run (Spark's `rm -rf`; chmod, ls and bash for Hadoop's local file system).
    let (code, out, _) = k.run_once(
        &image,
        None,
        &[
            "/bin/sh",
            "-c",
            "set -e; java -version; . /start-common.sh; command -v java; \
             \"$JAVA_HOME/bin/java\" -version; \
             for j in \"$SPARK_HOME\"/jars/spark-core_*.jar; do test -f \"$j\"; echo \"$j\"; done; \
             for c in bash rm chmod ls; do command -v \"$c\" >/dev/null; done",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(
        code, 0,
        "java, Spark's jars or a command the JVMs run is missing:\n{out}"
    );
    assert!(out.contains("openjdk version \"17"), "{out}");
    assert!(out.contains("/opt/java/openjdk/bin/java\n"), "{out}");
    assert!(
        out.contains(&format!(
            "/opt/spark/jars/spark-core_2.12-{spark_version}.jar"
        )),
        "{out}"
    );
    // The class path the worker gives executors works: Spark's launcher prints its version.
    let (code, out, took) = k.run_once(
        &image,
        None,
        &[
            "/bin/sh",
            "-c",
            "exec java -cp \"$SPARK_HOME/conf:$SPARK_HOME/jars/*\" org.apache.spark.deploy.SparkSubmit --version",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "SparkSubmit --version failed:\n{out}");
    assert!(out.contains(&format!("version {spark_version}")), "{out}");
    assert!(out.contains("OpenJDK 64-Bit Server VM, 17"), "{out}");
    k.figure(format!(
        "java -cp $SPARK_HOME/jars/* ...SparkSubmit --version in a container: {took:?}"
    ));

    // A master pod of the plain image; the component's workers, from the variant.
    let master = k.apply_rc("spark-master-controller")[0];
    k.wait_probe(master, true).await;
    let workers = k.apply_rc("spark-worker-controller");
    let times = k.wait_alive(&workers, Duration::from_secs(60)).await;
    for (p, t) in workers.iter().zip(&times) {
        let name = k.pods[*p].name.clone();
        k.figure(format!(
            "spark variant worker {name}: container start to ALIVE {t:?}"
        ));
    }
    let s = k.state().await.expect("state");
    for &p in &workers {
        let pod = &k.pods[p];
        assert_eq!(
            docker_ok(&["inspect", "--format", "{{.Config.Image}}", &pod.container]),
            image,
            "{} runs the variant",
            pod.name
        );
        let w = s
            .alive_workers()
            .find(|w| w.host == pod.ip)
            .expect("worker by pod IP");
        let cores: u32 = pod.env["SPARK_WORKER_CORES"].parse().expect("cores");
        assert_eq!(
            (w.cores, w.memory_mb),
            (cores, expected_worker_memory_mb(&pod.env)),
            "{}: cores and memory from the component's limits and headroom",
            pod.name
        );
        let log = logs(&pod.container);
        assert!(log.contains("Successfully registered with master"), "{log}");
    }
    for &p in &workers {
        k.wait_probe(p, true).await;
    }

    // A stock Spark driver in client mode: spark-shell's REPL (Spark's jars have no example
    // application) in a container of the variant, at a fixed address for its executors to
    // call back. One executor of one core: its JVM runs in a worker pod, started by
    // flint-worker from JAVA_HOME and SPARK_HOME; no task can run anywhere else.
    let driver_ip = k.next_ip();
    let driver = format!(
        "printf '%s\\n' 'val n = sc.parallelize(1 to 1000, 4).map(_ * 2L).reduce(_ + _)' \
         'println(\"FLINT-SUM=\" + n)' ':quit' | \
         exec java -Dscala.usejavacp=true {opts} -Xmx512m \
         -cp \"$SPARK_HOME/conf:$SPARK_HOME/jars/*\" org.apache.spark.deploy.SparkSubmit \
         --master spark://spark-master:7077 --class org.apache.spark.repl.Main \
         --name flint-k8s-spark-shell --conf spark.driver.host={driver_ip} \
         --conf spark.executor.memory=512m --conf spark.executor.cores=1 \
         --conf spark.cores.max=1 --conf spark.ui.enabled=false spark-shell",
        opts = SPARK_JAVA17_OPTIONS.join(" ")
    );
    let (code, out, took) = k.run_once(
        &image,
        Some(&driver_ip),
        &["/bin/sh", "-c", &driver],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "the spark-shell driver failed:\n{out}");
    assert!(
        out.contains("FLINT-SUM=1001000"),
        "the job's result:\n{out}"
    );
    assert!(
        !out.contains("Cannot run program"),
        "the JVMs miss a command in the image:\n{out}"
    );
    k.figure(format!(
        "spark-shell driver container (client mode), one job on an executor JVM in a worker pod: {took:?}"
    ));
    let s = k.state().await.expect("state");
    let app = s
        .completed_apps
        .iter()
        .chain(&s.active_apps)
        .find(|a| a.desc.name == "flint-k8s-spark-shell")
        .expect("the driver's application on the master");
    let ran: Vec<&ExecutorView> = app.executors.iter().chain(&app.removed_executors).collect();
    assert_eq!(ran.len(), 1, "one executor: {ran:?}");
    let pod = workers
        .iter()
        .map(|&p| &k.pods[p])
        .find(|pod| {
            s.worker(&ran[0].worker_id)
                .is_some_and(|w| w.host == pod.ip)
        })
        .expect("the executor ran on a worker pod of the variant");
    let log = logs(&pod.container);
    assert!(
        log.contains(&format!("executor started app_id={}", app.id)),
        "{} started the executor JVM:\n{log}",
        pod.name
    );
}
