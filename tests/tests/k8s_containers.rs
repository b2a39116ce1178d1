//! `k8s-manifests/`, run for real as Docker containers, the way a kubelet would run them
//! (the emulator is `flint_tests::k8s`; its module documentation says what is emulated).
//!
//! The image is built without pulling anything (`tests/k8s/build-image.sh`: the release
//! binaries, a root filesystem from this machine's libraries, `FROM scratch`); the
//! resources of `kustomization.yaml` then run on a private Docker network. One test also
//! builds the worker variant with a Java runtime and Spark's jars
//! (`build-image.sh --with-spark`, from the pyspark 3.5 install of `tests/spark/setup.sh`)
//! and runs the manifests with the kustomize component `components/spark-jvm` applied.
//!
//! Every container, volume, network and image is labelled or named with a per-run id and
//! removed when the test ends, whether it passed or not. Needs a Docker engine: without
//! one the tests fail, they do not skip. Figures (image size, start-to-ALIVE times) are
//! printed and written to `target/tmp/k8s-figures-<test>.txt`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use flint_client::MasterClient;
use flint_domain::types::*;
use flint_tests::k8s::docker::{docker, docker_ok, logs};
use flint_tests::k8s::downward::expected_worker_memory_mb;
use flint_tests::k8s::{Kube, LABEL, Manifests, SPARK_JAVA17_OPTIONS, repo_root};
use flint_tests::{app, shell, wait_for};

/// The tests share one Docker engine and two cores: one cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The master's default `spark.worker.timeout` (the manifests do not change it).
const WORKER_TIMEOUT: Duration = Duration::from_secs(60);

/// A run of the emulated cluster for `test`, its figures under `target/tmp/`.
fn start(test: &str) -> Kube {
    Kube::start(test, Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The master becomes ready; both workers register through the Service name with the
/// cores and memory their limits imply; scaling to 4 gives 4 ALIVE workers; a SIGTERMed
/// worker drains within its grace period and leaves at once; after the master pod is
/// replaced, the workers re-register by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_run_register_scale_drain_and_survive_a_new_master_pod() {
    let _serial = SERIAL.lock().await;
    let mut k = start("manifests_run_register_scale_drain_and_survive_a_new_master_pod");

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
        let limit_cpu = k.container(p).resources.limits["cpu"]
            .value()
            .expect("limits.cpu");
        assert_eq!(cores as f64, limit_cpu.ceil(), "cores from limits.cpu");
        assert_eq!(
            (w.cores, w.memory_mb),
            (
                cores,
                expected_worker_memory_mb(&pod.env).expect("worker memory")
            ),
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
    let mut k = start("pi_from_a_client_container_and_a_killed_worker_during_a_job");
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
    let mut k = start("spark_variant_image_runs_java_and_spark_executors_in_worker_pods");
    k.manifests = Manifests::load_with(&["spark-jvm"]).expect("the spark-jvm component");
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
            (
                cores,
                expected_worker_memory_mb(&pod.env).expect("worker memory")
            ),
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
