//! A kubelet emulator: `k8s-manifests/`, run for real as Docker containers, the way a
//! kubelet would run them (`tests/tests/k8s_containers.rs`).
//!
//! The image is built without pulling anything ([`image`]). The resources listed in
//! `kustomization.yaml` are read ([`manifest`], into the object model of [`spec`], with
//! kustomize components applied by [`merge`]) and started on a private Docker network
//! ([`kube`]):
//!
//! - a ReplicationController becomes `replicas` containers ("pods") named
//!   `<rc>-<5 random chars>`, with the manifest's command and args, its environment (the
//!   downward API resolved: `status.podIP` is the address the pod gets on the network,
//!   `resourceFieldRef`s are computed from the container's own requests and limits, and
//!   `$(VAR)` references are expanded: [`downward`]), its limits and requests (`--cpus`,
//!   `--memory`, `--cpu-shares`, `--memory-reservation`), its security context (`--user`,
//!   `--read-only`, `--cap-drop`, `no-new-privileges`), its emptyDirs (anonymous volumes,
//!   or tmpfs for `medium: Memory`) and `terminationGracePeriodSeconds` as the stop
//!   timeout ([`pod`]);
//! - a Service becomes a network alias (its name) on the pods its selector matches, so
//!   `spark-master` resolves as it does in the cluster; the ports of a NodePort Service,
//!   and every declared container port (for the probes, which a kubelet sends to the pod:
//!   [`probe`]), are published on 127.0.0.1, so a test talks to the master "from outside
//!   the cluster" as a user would through NodePort 30077 ([`master`]);
//! - scaling, deleting pods and the controller replacing them are `docker run`,
//!   `docker stop` (SIGTERM, then SIGKILL after the grace period) and `docker rm`
//!   ([`docker`]).
//!
//! Every container, volume, network and image is labelled or named with a per-run id and
//! removed when the run ends, whether its test passed or not. Needs a Docker engine:
//! without one the tests fail, they do not skip.

use std::path::{Path, PathBuf};

pub mod docker;
pub mod downward;
pub mod image;
pub mod kube;
pub mod manifest;
pub mod master;
pub mod merge;
pub mod pod;
pub mod probe;
pub mod quantity;
pub mod spec;

pub use kube::Kube;
pub use manifest::Manifests;
pub use pod::Pod;

/// The label (`flint-k8s-test=<run id>`) on everything a run creates.
pub const LABEL: &str = "flint-k8s-test";

/// The workspace root (where `k8s-manifests/` and `target/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What Spark's launcher (`bin/spark-class`, `JavaModuleOptions`) gives every JVM on Java 17.
/// The Spark variant of the image has Spark's jars but not its scripts, so a test's driver
/// gets them from here; flint-worker adds them to the executors' commands itself.
pub const SPARK_JAVA17_OPTIONS: &[&str] = &[
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
