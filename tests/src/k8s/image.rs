//! The images a run builds without pulling anything (`tests/k8s/build-image.sh`: this
//! checkout's release binaries, a root filesystem from this machine's libraries,
//! `FROM scratch`), and what they must hold.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::docker::{docker, docker_ok};
use super::kube::Kube;
use super::{LABEL, repo_root};

/// The runtime image must stay under this size.
pub const MAX_IMAGE_BYTES: u64 = 40_000_000;

fn image_size(tag: &str) -> u64 {
    docker_ok(&["image", "inspect", "--format", "{{.Size}}", tag])
        .parse()
        .expect("size")
}

impl Kube {
    /// Builds `self.image`; checks its size, its user, and that every command the manifests
    /// run (and what the start scripts exec) is in it.
    pub(super) fn build_image(&mut self) {
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
        let size = image_size(&self.image);
        self.figure(format!(
            "image size: {size} bytes ({:.1} MB)",
            size as f64 / 1e6
        ));
        assert!(
            size < MAX_IMAGE_BYTES,
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
    pub fn build_spark_variant(&mut self, spark_home: &Path, manifest_image: &str) -> String {
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
        let size = image_size(&tag);
        self.figure(format!(
            "spark variant image size: {size} bytes ({:.1} MB), assembled and built in {took:?}",
            size as f64 / 1e6
        ));
        tag
    }
}
