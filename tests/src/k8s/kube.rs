//! The emulated cluster of one test run: the image, a private Docker network and the pods
//! of the manifests' ReplicationControllers; everything removed on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::LABEL;
use super::docker::{docker, docker_ok, logs, require_engine};
use super::downward::resolve_env;
use super::manifest::Manifests;
use super::pod::{Placement, Pod, docker_run_args};
use super::spec::ContainerSpec;

/// `n` characters as Kubernetes' generateName picks them.
pub fn random_suffix(n: usize) -> String {
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..n)
        .map(|_| CHARS[fastrand::usize(..CHARS.len())] as char)
        .collect()
}

/// The image, the network and the pods of one test run; all removed on drop.
pub struct Kube {
    /// The run's id: the label value (`flint-k8s-test=<run>`) and name prefix of all it creates.
    pub run: String,
    /// The image built from this checkout's release binaries.
    pub image: String,
    pub(super) image_built: bool,
    /// Images built besides `image` (the Spark variant), by the image the manifests name.
    pub(super) variant_images: BTreeMap<String, String>,
    network: Option<String>,
    subnet: String,
    next_host: u8,
    pub manifests: Manifests,
    pub pods: Vec<Pod>,
    figures: Vec<String>,
    figures_dir: PathBuf,
}

impl Kube {
    /// Checks the engine, builds the image and creates the network. Figures go to
    /// `figures_dir/k8s-figures-<test>.txt` when the run ends.
    pub fn start(test: &str, figures_dir: &Path) -> Kube {
        require_engine();
        let run = format!("flintk8s-{}-{}", std::process::id(), random_suffix(6));
        let mut k = Kube {
            image: format!("flint-k8s-test:{run}"),
            run,
            image_built: false,
            variant_images: BTreeMap::new(),
            network: None,
            subnet: String::new(),
            next_host: 10,
            manifests: Manifests::load().unwrap_or_else(|e| panic!("k8s-manifests/: {e}")),
            pods: Vec::new(),
            figures: Vec::new(),
            figures_dir: figures_dir.to_path_buf(),
        };
        k.figure(format!("--- {test}"));
        k.build_image();
        k.create_network();
        k
    }

    /// Prints a figure and keeps it for the figures file.
    pub fn figure(&mut self, line: String) {
        eprintln!("figure: {line}");
        self.figures.push(line);
    }

    fn write_figures(&self) {
        let Some(test) = self.figures.first() else {
            return;
        };
        let name = test.trim_start_matches("--- ");
        let path = self.figures_dir.join(format!("k8s-figures-{name}.txt"));
        let _ = std::fs::write(path, self.figures.join("\n") + "\n");
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

    pub fn network(&self) -> &str {
        self.network.as_deref().expect("network")
    }

    /// An unused address on the cluster's network.
    pub fn next_ip(&mut self) -> String {
        let ip = format!("{}.{}", self.subnet, self.next_host);
        self.next_host += 1;
        ip
    }

    /// Starts one pod of `rc_name`, as the ReplicationController would.
    pub fn create_pod(&mut self, rc_name: &str) -> usize {
        let pod_name = format!("{rc_name}-{}", random_suffix(5));
        let container = format!("{}-{pod_name}", self.run);
        let ip = self.next_ip();
        let spec = &self.manifests.rc(rc_name).template.spec;
        let c = spec
            .containers
            .first()
            .unwrap_or_else(|| panic!("{rc_name}: no container"));
        let env = resolve_env(spec, c, &pod_name, &ip).unwrap_or_else(|e| panic!("{rc_name}: {e}"));
        let image = self.variant_images.get(&c.image).unwrap_or(&self.image);
        let at = Placement {
            run: &self.run,
            network: self.network(),
            container: &container,
            pod_name: &pod_name,
            ip: &ip,
            image,
        };
        let args =
            docker_run_args(&self.manifests, rc_name, &env, &at).unwrap_or_else(|e| panic!("{e}"));
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

    /// The pods of `rc`, oldest first.
    pub fn pods_of(&self, rc: &str) -> Vec<usize> {
        (0..self.pods.len())
            .filter(|&i| self.pods[i].rc == rc)
            .collect()
    }

    /// `kubectl scale rc <rc> --replicas=n`: new pods, or the newest ones deleted.
    pub fn scale(&mut self, rc: &str, n: usize) -> Vec<usize> {
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
    pub fn apply_rc(&mut self, rc: &str) -> Vec<usize> {
        let n = self.manifests.rc(rc).replicas as usize;
        self.scale(rc, n)
    }

    /// Deletes a pod: SIGTERM, SIGKILL after the grace period, then gone.
    pub fn delete_pod(&mut self, i: usize) {
        let p = self.pods.remove(i);
        docker_ok(&["stop", &p.container]);
        docker_ok(&["rm", "--force", "--volumes", &p.container]);
    }

    /// Takes a pod out of the controller's set (the test stops or kills its container itself;
    /// Drop removes anything left, by label).
    pub fn forget_pod(&mut self, i: usize) -> Pod {
        self.pods.remove(i)
    }

    /// The pod running in `container`.
    pub fn index_of(&self, container: &str) -> usize {
        self.pods
            .iter()
            .position(|p| p.container == container)
            .expect("pod")
    }

    /// The container spec pod `pod` runs.
    pub fn container(&self, pod: usize) -> &ContainerSpec {
        &self
            .manifests
            .rc(&self.pods[pod].rc)
            .template
            .spec
            .containers[0]
    }

    /// Runs a one-shot container of `image` on the cluster's network (so that its host name
    /// resolves, as a pod's does; at `ip`, if given), locked down like the pods, and waits up
    /// to `timeout` for it to exit: its exit code, output, and how long it ran.
    pub fn run_once(
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

    /// Runs a client container (not part of the manifests) on the cluster's network, with
    /// the same locked-down settings as the pods; returns its name.
    pub fn start_client(&mut self, workdir: &str, cmd: &[&str]) -> String {
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
    pub fn wait_client(&self, name: &str, timeout: Duration) -> (i32, String) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_use_kubernetes_alphabet() {
        let s = random_suffix(5);
        assert_eq!(s.len(), 5);
        assert!(
            s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
            "{s}"
        );
    }
}
