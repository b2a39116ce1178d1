//! Stock Apache Spark applications on Flint: `spark-submit` (Spark 3.5 and 4.0, from the
//! pyspark wheels) against a flint-master and two flint-workers, which launch Spark's JVM
//! executors and, in cluster deploy mode, its `DriverWrapper` drivers.
//!
//! Needs the project-local Sparks from `tests/spark/setup.sh` (`.venv-spark35`,
//! `.venv-spark40`) and a Java 17 JDK (`javac` compiles the Java Pi job); `tests/run.sh`
//! installs them. Without them the tests fail; they never skip.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flint_domain::types::*;
use flint_tests::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A Spark install from a pyspark wheel in a project virtualenv.
struct Spark {
    venv: PathBuf,
    home: PathBuf,
}

impl Spark {
    /// `.venv-spark35` or `.venv-spark40`.
    fn get(venv: &str) -> Spark {
        let venv = repo_root().join(venv);
        let home = std::fs::read_dir(venv.join("lib"))
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().join("site-packages/pyspark"))
                    .find(|p| p.join("jars").is_dir())
            })
            .unwrap_or_else(|| {
                panic!(
                    "Spark is not installed in {}: run tests/spark/setup.sh",
                    venv.display()
                )
            });
        Spark { venv, home }
    }

    fn v35() -> Spark {
        Spark::get(".venv-spark35")
    }

    fn v40() -> Spark {
        Spark::get(".venv-spark40")
    }

    fn home(&self) -> String {
        self.home.display().to_string()
    }

    fn python(&self) -> String {
        self.venv.join("bin/python").display().to_string()
    }

    /// Compiles tests/spark/JavaPi.java against this Spark's jars into `dir/pi.jar`.
    fn java_pi(&self, dir: &Path) -> PathBuf {
        let jar = dir.join(format!(
            "pi-{}.jar",
            self.venv
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("spark")
        ));
        let out = Command::new("bash")
            .arg(repo_root().join("tests/spark/build-javapi.sh"))
            .arg(&self.home)
            .arg(&jar)
            .output()
            .expect("run build-javapi.sh");
        assert!(
            out.status.success(),
            "building JavaPi failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        jar
    }

    /// `bin/<tool> args…` in its own process group, output to `log` (killed with its whole
    /// group when dropped). Spark logs at INFO (a `log4j2.properties` in a conf dir under
    /// `cwd`): `spark-submit --status/--kill` print their answers only at that level.
    fn spawn(&self, tool: &str, args: &[&str], cwd: &Path, log: &Path) -> SparkProc {
        let conf = cwd.join("spark-conf");
        std::fs::create_dir_all(&conf).expect("conf dir");
        std::fs::write(conf.join("log4j2.properties"), LOG4J2).expect("log4j2.properties");
        let out = std::fs::File::create(log).expect("log");
        let mut cmd = Command::new(self.home.join("bin").join(tool));
        cmd.args(args)
            .current_dir(cwd)
            .env("SPARK_HOME", &self.home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("PYSPARK_PYTHON", self.python())
            .env("SPARK_CONF_DIR", &conf)
            .env_remove("PYSPARK_DRIVER_PYTHON")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
        SparkProc {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// Runs `bin/<tool> args…` to completion (at most 240 s); returns its success and output.
    async fn run(&self, tool: &str, args: &[&str], cwd: &Path, log: &Path) -> (bool, String) {
        let mut p = self.spawn(tool, args, cwd, log);
        let ok = p.wait(Duration::from_secs(240)).await;
        (ok, p.text())
    }
}

const LOG4J2: &str = "rootLogger.level = info
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
";

/// A Spark client process (spark-submit and the JVM/Python processes it starts).
struct SparkProc {
    child: Option<Child>,
    log: PathBuf,
}

impl SparkProc {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Waits for the exit; panics with the output after `timeout`.
    async fn wait(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                self.child = None;
                return st.success();
            }
            if start.elapsed() > timeout {
                panic!("Spark did not finish in {timeout:?}:\n{}", self.text());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL to the whole process group.
    fn kill_group(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the process group this test created.
            unsafe {
                libc::kill(-(c.id() as i32), libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }
}

impl Drop for SparkProc {
    fn drop(&mut self) {
        let had_child = self.child.is_some();
        self.kill_group();
        if std::thread::panicking() && had_child {
            eprintln!("---- {} ----\n{}", self.log.display(), self.text());
        }
    }
}

/// A master and two workers with `SPARK_HOME` set, `cores` and 2g each.
fn spark_cluster(spark: &Spark, master_conf: &[(&str, &str)], cores: u32) -> Cluster {
    let mut c = Cluster::master(master_conf);
    for _ in 0..2 {
        c.add_worker_with_env(
            WorkerSpec {
                cores,
                memory: "2g",
            },
            &[
                ("SPARK_HOME", &spark.home()),
                ("SPARK_LOCAL_IP", "127.0.0.1"),
            ],
        );
    }
    c
}

/// A master and two workers of 2 cores and 3g with both Sparks: each driver's executors run
/// from the install of its line (`FLINT_SPARK_HOME_3_5`, `FLINT_SPARK_HOME_4_0`).
fn dual_cluster(s35: &Spark, s40: &Spark) -> Cluster {
    let mut c = Cluster::master(&[]);
    for _ in 0..2 {
        c.add_worker_with_env(
            WorkerSpec {
                cores: 2,
                memory: "3g",
            },
            &[
                ("FLINT_SPARK_HOME_3_5", &s35.home()),
                ("FLINT_SPARK_HOME_4_0", &s40.home()),
                ("SPARK_LOCAL_IP", "127.0.0.1"),
            ],
        );
    }
    c
}

/// The usual client flags: loopback driver, no driver UI.
const CLIENT_CONF: [&str; 4] = [
    "--conf",
    "spark.driver.host=127.0.0.1",
    "--conf",
    "spark.ui.enabled=false",
];

/// [`Cluster::wait_state`] with a deadline for JVMs starting on a busy 2-core machine.
async fn wait_state(
    c: &Cluster,
    what: &str,
    pred: impl Fn(&ClusterSnapshot) -> bool,
) -> ClusterSnapshot {
    wait_for(what, Duration::from_secs(150), || async {
        let mut client = flint_client::MasterClient::connect(&c.master_url)
            .await
            .ok()?;
        let s = client.cluster_state().await.ok()?;
        pred(&s).then_some(s)
    })
    .await
}

fn all_executors(app: &AppView) -> Vec<&ExecutorView> {
    let mut v: Vec<_> = app
        .executors
        .iter()
        .chain(app.removed_executors.iter())
        .collect();
    v.sort_by_key(|e| e.executor_id);
    v
}

async fn finished_app(c: &Cluster, name: &str) -> AppView {
    let s = wait_state(c, &format!("application {name} completed"), |s| {
        s.completed_apps.iter().any(|a| a.desc.name == name)
    })
    .await;
    s.completed_apps
        .iter()
        .find(|a| a.desc.name == name)
        .cloned()
        .expect("app")
}

fn executor_stderr(c: &Cluster, app: &AppView, e: &ExecutorView) -> String {
    (0..2)
        .filter_map(|w| {
            std::fs::read_to_string(
                c.work_dir(w)
                    .join(app.id.as_str())
                    .join(e.executor_id.to_string())
                    .join("stderr"),
            )
            .ok()
        })
        .next()
        .unwrap_or_default()
}

fn print_lines(what: &str, text: &str, keys: &[&str]) {
    for line in text.lines().filter(|l| keys.iter().any(|k| l.contains(k))) {
        eprintln!("{what}: {line}");
    }
}

/// PIDs of processes whose command line contains every one of `needles`.
fn processes_with(needles: &[&str]) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c).replace('\0', " ");
                needles.iter().all(|n| c.contains(n))
            })
        })
        .collect()
}

fn leftover_processes(c: &Cluster) -> Vec<i32> {
    (0..2).flat_map(|w| processes_in(&c.work_dir(w))).collect()
}

/// `spark-submit --class JavaPi` in client mode as application `name`; checks the answer,
/// the application's end in Flint and that its executors were Spark JVMs on Flint workers.
async fn java_pi_client_mode(c: &Cluster, spark: &Spark, line: &str, name: &str) {
    let jar = spark.java_pi(c.dir.path());
    let log = c.dir.path().join(format!("spark-submit-{name}.log"));
    let jar_s = jar.display().to_string();
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    args.extend([
        "--name",
        name,
        "--total-executor-cores",
        "2",
        "--executor-cores",
        "1",
        "--executor-memory",
        "512m",
        "--class",
        "JavaPi",
        &jar_s,
        "4",
    ]);
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    print_lines(
        &format!("spark-submit {line}"),
        &text,
        &[
            "Running Spark version",
            "Connected to Spark cluster",
            "Granted executor",
            "Pi is roughly",
        ],
    );
    assert!(ok, "spark-submit failed:\n{text}");
    assert!(text.contains("Pi is roughly 3.1"), "{text}");
    assert!(
        text.contains(&format!("Running Spark version {line}")),
        "{text}"
    );
    let app = finished_app(c, name).await;
    assert_eq!(app.state, ApplicationState::Finished, "{app:?}");
    let executors = all_executors(&app);
    assert!(!executors.is_empty(), "no executors: {app:?}");
    for e in &executors {
        assert!(c.worker_ids.contains(&e.worker_id), "{e:?}");
    }
    // The executors really were Spark JVMs started by the Flint workers, and `--worker-url`
    // is the worker's Spark endpoint, which the executor's WorkerWatcher dials.
    let stderr = executor_stderr(c, &app, executors[0]);
    assert!(
        stderr.contains("CoarseGrainedExecutorBackend"),
        "executor stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("WorkerWatcher: Connecting to worker spark://Worker@127.0.0.1:"),
        "executor stderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_35_java_pi_client_mode() {
    let spark = Spark::v35();
    let c = spark_cluster(&spark, &[], 1);
    java_pi_client_mode(&c, &spark, "3.5", "java-pi").await;
    // The executors' JVMs exit once their driver is gone and the worker has stopped them.
    no_process_left(&c, "no executor process left").await;
}

/// Spark 3.5 and 4.0 drivers at once on one cluster: the master reads each driver's line from
/// its stream and the workers run each application's executors from the matching install
/// (`FLINT_SPARK_HOME_3_5`, `FLINT_SPARK_HOME_4_0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_35_and_40_side_by_side() {
    let (s35, s40) = (Spark::v35(), Spark::v40());
    let c = dual_cluster(&s35, &s40);
    tokio::join!(
        java_pi_client_mode(&c, &s35, "3.5", "pi-on-3.5"),
        java_pi_client_mode(&c, &s40, "4.0", "pi-on-4.0"),
    );
    let master_log = c.master.log_text();
    for line in ["3.5", "4.0"] {
        assert!(
            master_log.contains(&format!("line={line}")),
            "the master did not see a {line} driver:\n{master_log}"
        );
    }
    no_process_left(&c, "no executor process left").await;
}

/// Word count with a Python UDF (normalising words) in the DataFrame API, and an RDD
/// reduceByKey, over a generated corpus; both compared with a count made here.
const WORD_COUNT: &str = r#"
import sys
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf, explode, split, col
from pyspark.sql.types import StringType

spark = SparkSession.builder.appName("pyspark-word-count").getOrCreate()
normalise = udf(lambda w: w.strip(".,;:!?").lower() or None, StringType())
lines = spark.read.text(sys.argv[1])
words = lines.select(explode(split(col("value"), r"\s+")).alias("w")).select(normalise(col("w")).alias("word")).where(col("word").isNotNull())
counts = {r["word"]: r["count"] for r in words.groupBy("word").count().collect()}
rdd_counts = dict(spark.sparkContext.textFile(sys.argv[1], 4).flatMap(lambda l: l.split()).map(lambda w: (w.strip(".,;:!?").lower(), 1)).filter(lambda kv: kv[0]).reduceByKey(lambda a, b: a + b).collect())
assert counts == rdd_counts, "DataFrame and RDD counts differ"
with open(sys.argv[2], "w") as f:
    for w in sorted(counts):
        f.write("%s\t%d\n" % (w, counts[w]))
print("distinct words: %d" % len(counts))
spark.stop()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyspark_word_count_with_python_udf() {
    let spark = Spark::v35();
    let c = spark_cluster(&spark, &[], 1);
    // A deterministic corpus with mixed case and punctuation.
    let vocab = [
        "Spark", "flint", "Worker", "master", "executor", "driver", "stage", "task", "shuffle",
        "Rust",
    ];
    let punct = ["", ".", ",", "!", "?", ";"];
    let mut corpus = String::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut x: u64 = 12345;
    for line in 0..3000 {
        let n = 3 + line % 9;
        let mut words = Vec::new();
        for _ in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let w = vocab[(x >> 33) as usize % vocab.len()];
            let p = punct[(x >> 20) as usize % punct.len()];
            words.push(format!("{w}{p}"));
            *expected.entry(w.to_lowercase()).or_default() += 1;
        }
        corpus.push_str(&words.join(if line % 2 == 0 { " " } else { "  " }));
        corpus.push('\n');
    }
    let input = c.dir.path().join("corpus.txt");
    std::fs::write(&input, corpus).expect("corpus");
    let script = c.dir.path().join("wordcount.py");
    std::fs::write(&script, WORD_COUNT).expect("script");
    let output = c.dir.path().join("counts.tsv");
    let (script_s, input_s, output_s) = (
        script.display().to_string(),
        input.display().to_string(),
        output.display().to_string(),
    );
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    args.extend([
        "--conf",
        "spark.sql.shuffle.partitions=4",
        "--total-executor-cores",
        "2",
        "--executor-memory",
        "512m",
        &script_s,
        &input_s,
        &output_s,
    ]);
    let log = c.dir.path().join("spark-submit.log");
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    print_lines(
        "spark-submit",
        &text,
        &["Granted executor", "distinct words"],
    );
    assert!(ok, "spark-submit failed:\n{text}");
    let got: BTreeMap<String, u64> = std::fs::read_to_string(&output)
        .expect("counts written")
        .lines()
        .filter_map(|l| {
            let (w, n) = l.split_once('\t')?;
            Some((w.to_owned(), n.parse().ok()?))
        })
        .collect();
    assert_eq!(got, expected);
    let app = finished_app(&c, "pyspark-word-count").await;
    assert_eq!(app.state, ApplicationState::Finished);
    assert!(!all_executors(&app).is_empty());
}

/// The driver of `name` once it is in `state`.
async fn driver_in(c: &Cluster, id: &str, state: DriverState) -> DriverView {
    let s = wait_state(c, &format!("driver {id} {state}"), |s| {
        s.active_drivers
            .iter()
            .chain(s.completed_drivers.iter())
            .any(|d| d.id.as_str() == id && d.state == state)
    })
    .await;
    s.active_drivers
        .iter()
        .chain(s.completed_drivers.iter())
        .find(|d| d.id.as_str() == id)
        .cloned()
        .expect("driver")
}

/// The driver's stdout as the worker's log page serves it.
async fn driver_stdout_page(c: &Cluster, d: &DriverView) -> String {
    let w = d.worker_id.as_ref().expect("driver placed on a worker");
    let n = c
        .worker_ids
        .iter()
        .position(|x| x == w)
        .expect("a worker of this cluster");
    let url = format!(
        "{}/logPage/?driverId={}&logType=stdout",
        c.worker_webui_url(n),
        d.id
    );
    let r = http_get(&url).await;
    assert_eq!(r.status, 200, "{url}: {}", r.text());
    r.text()
}

fn driver_id_in(text: &str) -> String {
    text.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-'))
        .find(|w| w.starts_with("driver-") && w.len() > "driver-".len())
        .unwrap_or_else(|| panic!("no driver id in:\n{text}"))
        .to_owned()
}

/// `spark-submit` arguments for `JavaPi 4 <hold>` in cluster deploy mode as `name`, through
/// the REST server at `master` when `rest`, else through the legacy client.
fn cluster_pi_args(master: &str, rest: bool, name: &str, jar: &str, hold: &str) -> Vec<String> {
    let rest_conf = format!("spark.master.rest.enabled={rest}");
    [
        "--master",
        master,
        "--conf",
        &rest_conf,
        "--deploy-mode",
        "cluster",
        "--name",
        name,
        "--driver-memory",
        "512m",
        "--total-executor-cores",
        "2",
        "--executor-memory",
        "512m",
        "--class",
        "JavaPi",
        jar,
        "4",
        hold,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits until no process runs in the cluster's work directories.
async fn no_process_left(c: &Cluster, what: &str) {
    wait_for(what, Duration::from_secs(30), || async {
        leftover_processes(c).is_empty().then_some(())
    })
    .await;
}

/// Cluster deploy mode through Spark's legacy RPC client (`RequestSubmitDriver`), then
/// `org.apache.spark.deploy.Client kill` (`RequestKillDriver`) on a second, holding driver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_cluster_mode_through_the_legacy_client() {
    let spark = Spark::v35();
    let c = spark_cluster(&spark, &[], 2);
    let jar = spark.java_pi(c.dir.path());
    let jar_s = jar.display().to_string();
    let submit = |hold: &str| {
        cluster_pi_args(
            &c.master_url,
            false,
            &format!("legacy-pi-{hold}"),
            &jar_s,
            hold,
        )
    };
    let args = submit("0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = c.dir.path().join("submit-1.log");
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    print_lines("spark-submit", &text, &["driver-", "State of"]);
    assert!(ok, "spark-submit failed:\n{text}");
    let id = driver_id_in(&text);
    let d = driver_in(&c, &id, DriverState::Finished).await;
    let page = driver_stdout_page(&c, &d).await;
    assert!(page.contains("Pi is roughly 3.1"), "{page}");
    let app = finished_app(&c, "legacy-pi-0").await;
    assert_eq!(app.state, ApplicationState::Finished);
    assert!(!all_executors(&app).is_empty());

    // A driver that holds on; killed through the legacy client.
    let args = submit("600");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = c.dir.path().join("submit-2.log");
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    assert!(ok, "spark-submit failed:\n{text}");
    let id = driver_id_in(&text);
    driver_in(&c, &id, DriverState::Running).await;
    wait_state(&c, "the holding driver's application RUNNING", |s| {
        s.active_apps
            .iter()
            .any(|a| a.desc.name == "legacy-pi-600" && !a.executors.is_empty())
    })
    .await;
    let log = c.dir.path().join("kill.log");
    let (ok, text) = spark
        .run(
            "spark-class",
            &["org.apache.spark.deploy.Client", "kill", &c.master_url, &id],
            c.dir.path(),
            &log,
        )
        .await;
    // The client logs only warnings; it exits 0 once the master accepted the kill and it
    // polled the driver's state (RequestKillDriver, then RequestDriverStatus).
    assert!(ok, "Client kill failed:\n{text}");
    driver_in(&c, &id, DriverState::Killed).await;
    let master_log = c.master.log_text();
    assert!(
        master_log.contains("driver kill through Spark's RPC client")
            && master_log.contains(&format!("driver_id={id} success=true")),
        "{master_log}"
    );
    no_process_left(&c, "no driver or executor process left").await;
}

/// Cluster deploy mode through the REST server, and `spark-submit --status` / `--kill`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_cluster_mode_through_rest_with_status_and_kill() {
    let spark = Spark::v35();
    let c = spark_cluster(
        &spark,
        &[
            ("spark.master.rest.enabled", "true"),
            ("spark.master.rest.port", "0"),
        ],
        2,
    );
    let rest = c.rest_url().expect("REST server on");
    let jar = spark.java_pi(c.dir.path());
    let jar_s = jar.display().to_string();
    let submit =
        |hold: &str| cluster_pi_args(&rest, true, &format!("rest-pi-{hold}"), &jar_s, hold);
    let args = submit("0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = c.dir.path().join("submit-1.log");
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    print_lines("spark-submit", &text, &["driver-"]);
    assert!(ok, "spark-submit failed:\n{text}");
    let id = driver_id_in(&text);
    let d = driver_in(&c, &id, DriverState::Finished).await;
    let page = driver_stdout_page(&c, &d).await;
    assert!(page.contains("Pi is roughly 3.1"), "{page}");
    let args = submit("600");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = c.dir.path().join("submit-2.log");
    let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
    assert!(ok, "spark-submit failed:\n{text}");
    let id = driver_id_in(&text);
    driver_in(&c, &id, DriverState::Running).await;
    let log = c.dir.path().join("status.log");
    let (ok, text) = spark
        .run(
            "spark-submit",
            &["--master", &rest, "--status", &id],
            c.dir.path(),
            &log,
        )
        .await;
    // Stock spark-submit logs the status answer only at INFO, which `--status` keeps off;
    // the master's log shows what it answered.
    assert!(ok, "{text}");
    let answered = format!("driver_id={id} state=RUNNING");
    assert!(
        c.master
            .log_text()
            .lines()
            .any(|l| l.contains("driver status through the REST server") && l.contains(&answered)),
        "no status answer {answered:?} in the master's log"
    );
    let log = c.dir.path().join("kill.log");
    let (ok, text) = spark
        .run(
            "spark-submit",
            &["--master", &rest, "--kill", &id],
            c.dir.path(),
            &log,
        )
        .await;
    print_lines("spark-submit --kill", &text, &["killed"]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("{id} is killed successfully.")),
        "{text}"
    );
    driver_in(&c, &id, DriverState::Killed).await;
    no_process_left(&c, "no driver or executor process left").await;
}

/// Spark 4.0 in cluster deploy mode through both gateways (its legacy client sends the
/// environment as a map with a default, which 3.5's does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_40_cluster_mode_through_the_legacy_client_and_rest() {
    let spark = Spark::v40();
    let c = spark_cluster(
        &spark,
        &[
            ("spark.master.rest.enabled", "true"),
            ("spark.master.rest.port", "0"),
        ],
        2,
    );
    let rest = c.rest_url().expect("REST server on");
    let jar = spark.java_pi(c.dir.path());
    let jar_s = jar.display().to_string();
    for (gateway, master) in [("legacy", c.master_url.clone()), ("rest", rest)] {
        let name = format!("pi-4.0-{gateway}");
        let args = cluster_pi_args(&master, gateway == "rest", &name, &jar_s, "0");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = c.dir.path().join(format!("submit-{gateway}.log"));
        let (ok, text) = spark.run("spark-submit", &args, c.dir.path(), &log).await;
        print_lines(&format!("spark-submit {gateway}"), &text, &["driver-"]);
        assert!(ok, "spark-submit ({gateway}) failed:\n{text}");
        let id = driver_id_in(&text);
        let d = driver_in(&c, &id, DriverState::Finished).await;
        let page = driver_stdout_page(&c, &d).await;
        assert!(page.contains("Pi is roughly 3.1"), "{page}");
        let app = finished_app(&c, &name).await;
        assert_eq!(app.state, ApplicationState::Finished);
        assert!(!all_executors(&app).is_empty());
    }
    assert!(c.master.log_text().contains("line=4.0"));
}

const DYNAMIC: &str = r#"
import time
from pyspark import SparkContext

sc = SparkContext(appName="dynamic-allocation")
def executors():
    return sc._jsc.sc().getExecutorIds().size()
print("executors at start: %d" % executors(), flush=True)
total = sc.parallelize(range(8), 8).map(lambda x: (time.sleep(1.5), x)[1]).sum()
print("sum %d" % total, flush=True)
deadline = time.time() + 90
while executors() > 0 and time.time() < deadline:
    time.sleep(0.2)
print("executors after idling: %d" % executors(), flush=True)
sc.stop()
"#;

/// Dynamic allocation, for a Spark 3.5 and a 4.0 driver at once: no executor at start, two
/// while tasks queue, none once they idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_dynamic_allocation_scales_up_and_down() {
    let (s35, s40) = (Spark::v35(), Spark::v40());
    let c = dual_cluster(&s35, &s40);
    tokio::join!(
        dynamic_allocation(&c, &s35, "dynamic-3.5"),
        dynamic_allocation(&c, &s40, "dynamic-4.0"),
    );
}

/// Runs [`DYNAMIC`] as `name` and follows its executors in Flint's state.
async fn dynamic_allocation(c: &Cluster, spark: &Spark, name: &str) {
    let script = c.dir.path().join(format!("{name}.py"));
    std::fs::write(&script, DYNAMIC.replace("dynamic-allocation", name)).expect("script");
    let script_s = script.display().to_string();
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    for conf in [
        "spark.dynamicAllocation.enabled=true",
        "spark.dynamicAllocation.shuffleTracking.enabled=true",
        "spark.dynamicAllocation.minExecutors=0",
        "spark.dynamicAllocation.initialExecutors=0",
        "spark.dynamicAllocation.maxExecutors=2",
        "spark.dynamicAllocation.schedulerBacklogTimeout=1s",
        "spark.dynamicAllocation.executorIdleTimeout=2s",
    ] {
        args.extend(["--conf", conf]);
    }
    args.extend([
        "--executor-cores",
        "1",
        "--executor-memory",
        "512m",
        &script_s,
    ]);
    let log = c.dir.path().join(format!("spark-submit-{name}.log"));
    let mut p = spark.spawn("spark-submit", &args, c.dir.path(), &log);
    // Flint's view of the application's live executors, sampled until the driver exits.
    let mut samples: Vec<usize> = Vec::new();
    let started = Instant::now();
    let ok = loop {
        let s = c.state().await;
        if let Some(a) = s.active_apps.iter().find(|a| a.desc.name == name) {
            let live = a
                .executors
                .iter()
                .filter(|e| matches!(e.state, ExecutorState::Launching | ExecutorState::Running))
                .count();
            if samples.last() != Some(&live) {
                samples.push(live);
            }
        }
        if let Some(ch) = p.child.as_mut()
            && let Ok(Some(st)) = ch.try_wait()
        {
            p.child = None;
            break st.success();
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the application did not finish:\n{}",
            p.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = p.text();
    print_lines(
        &format!("spark-submit {name}"),
        &text,
        &[
            "executors at",
            "executors after",
            "sum ",
            "Granted executor",
        ],
    );
    eprintln!("{name}: live executors seen by the master, in order: {samples:?}");
    assert!(ok, "{text}");
    assert!(text.contains("sum 28"), "{text}");
    assert!(text.contains("executors after idling: 0"), "{text}");
    assert_eq!(samples.first(), Some(&0), "{samples:?}");
    let peak = samples.iter().position(|n| *n == 2).expect("scaled to 2");
    assert!(
        samples[peak..].contains(&0),
        "never scaled back to 0: {samples:?}"
    );
    let app = finished_app(c, name).await;
    let killed = all_executors(&app)
        .iter()
        .filter(|e| e.state == ExecutorState::Killed)
        .count();
    assert!(killed >= 2, "{app:?}");
}

const SLOW_SUM: &str = r#"
import time
from pyspark import SparkContext

sc = SparkContext(appName="slow-sum")
print("sum %d" % sc.parallelize(range(12), 12).map(lambda x: (time.sleep(1.5), x)[1]).sum(), flush=True)
sc.stop()
"#;

/// An executor JVM SIGKILLed mid-job, for a Spark 3.5 and a 4.0 driver at once: the worker
/// reports it, the master tells the driver (`ExecutorUpdated`, which Spark logs as
/// "Executor … removed"), replaces it, and the job still completes with the right result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_executor_sigkill_is_reported_and_the_job_completes() {
    let (s35, s40) = (Spark::v35(), Spark::v40());
    let c = dual_cluster(&s35, &s40);
    tokio::join!(
        executor_sigkill(&c, &s35, "slow-sum-3.5"),
        executor_sigkill(&c, &s40, "slow-sum-4.0"),
    );
}

/// Runs [`SLOW_SUM`] as `name`, SIGKILLs its executor 0 mid-job and checks the outcome.
async fn executor_sigkill(c: &Cluster, spark: &Spark, name: &str) {
    let script = c.dir.path().join(format!("{name}.py"));
    std::fs::write(&script, SLOW_SUM.replace("slow-sum", name)).expect("script");
    let script_s = script.display().to_string();
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    args.extend([
        "--total-executor-cores",
        "2",
        "--executor-cores",
        "1",
        "--executor-memory",
        "512m",
        &script_s,
    ]);
    let log = c.dir.path().join(format!("spark-submit-{name}.log"));
    let mut p = spark.spawn("spark-submit", &args, c.dir.path(), &log);
    let app = wait_state(c, "two executors RUNNING", |s| {
        s.active_apps.iter().any(|a| {
            a.desc.name == name
                && a.executors
                    .iter()
                    .filter(|e| e.state == ExecutorState::Running)
                    .count()
                    == 2
        })
    })
    .await
    .active_apps
    .into_iter()
    .find(|a| a.desc.name == name)
    .expect("app");
    // Wait for a task to be running (Spark logs "Starting task"), then kill executor 0's JVM.
    wait_for("a task started", Duration::from_secs(120), || async {
        p.text().contains("Starting task").then_some(())
    })
    .await;
    let victim = wait_for("executor 0's JVM", Duration::from_secs(30), || async {
        processes_with(&[
            "CoarseGrainedExecutorBackend",
            app.id.as_str(),
            "--executor-id 0",
        ])
        .first()
        .copied()
    })
    .await;
    // SAFETY: kill(2) on an executor JVM this test's cluster started.
    unsafe {
        libc::kill(victim, libc::SIGKILL);
    }
    let ok = p.wait(Duration::from_secs(240)).await;
    let text = p.text();
    print_lines(
        &format!("spark-submit {name}"),
        &text,
        &["removed:", "sum ", "Lost executor"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("sum 66"), "{text}");
    let removed = format!("Executor {}/0 removed:", app.id);
    assert!(text.contains(&removed), "no {removed:?} in:\n{text}");
    let app = finished_app(c, name).await;
    let e0 = all_executors(&app)
        .into_iter()
        .find(|e| e.executor_id == 0)
        .cloned()
        .expect("executor 0");
    assert_ne!(e0.state, ExecutorState::Running, "{e0:?}");
    assert!(
        all_executors(&app).len() >= 3,
        "executor 0 was not replaced: {app:?}"
    );
}

const HANG: &str = r#"
import time
from pyspark import SparkContext

sc = SparkContext(appName="hanging-driver")
print("started", flush=True)
sc.parallelize(range(4), 4).map(lambda x: time.sleep(600)).count()
"#;

/// A driver that disappears mid-job (SIGKILL: no UnregisterApplication) leaves no executor
/// behind: its connection closing ends the application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_driver_disconnect_leaves_no_executor_behind() {
    let spark = Spark::v35();
    let c = spark_cluster(&spark, &[], 1);
    let script = c.dir.path().join("hang.py");
    std::fs::write(&script, HANG).expect("script");
    let script_s = script.display().to_string();
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    args.extend([
        "--total-executor-cores",
        "2",
        "--executor-memory",
        "512m",
        &script_s,
    ]);
    let log = c.dir.path().join("spark-submit.log");
    let mut p = spark.spawn("spark-submit", &args, c.dir.path(), &log);
    wait_state(&c, "two executors RUNNING", |s| {
        s.active_apps.iter().any(|a| {
            a.desc.name == "hanging-driver"
                && a.executors
                    .iter()
                    .filter(|e| e.state == ExecutorState::Running)
                    .count()
                    == 2
        })
    })
    .await;
    wait_for("tasks started", Duration::from_secs(120), || async {
        p.text().contains("Starting task").then_some(())
    })
    .await;
    assert!(
        !leftover_processes(&c).is_empty(),
        "executors should be running"
    );
    eprintln!("killing the driver (pid {}) and its group", p.pid());
    p.kill_group();
    let app = finished_app(&c, "hanging-driver").await;
    eprintln!("application ended {} after the driver vanished", app.state);
    no_process_left(&c, "no executor process left").await;
    for e in all_executors(&app) {
        assert_ne!(e.state, ExecutorState::Running, "{e:?}");
    }
}

/// A stock Spark application shows in Flint's `/json`, UI pages and metrics like a native
/// one, and killing it from the UI ends it for the driver (`ApplicationRemoved`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spark_app_in_the_ui_and_killed_from_it() {
    let spark = Spark::v35();
    let c = spark_cluster(&spark, &[], 1);
    let script = c.dir.path().join("hang.py");
    std::fs::write(&script, HANG).expect("script");
    let script_s = script.display().to_string();
    let mut args = vec!["--master", &c.master_url];
    args.extend(CLIENT_CONF);
    args.extend([
        "--total-executor-cores",
        "2",
        "--executor-memory",
        "512m",
        &script_s,
    ]);
    let log = c.dir.path().join("spark-submit.log");
    let mut p = spark.spawn("spark-submit", &args, c.dir.path(), &log);
    let s = wait_state(&c, "two executors RUNNING", |s| {
        s.active_apps.iter().any(|a| {
            a.desc.name == "hanging-driver"
                && a.executors
                    .iter()
                    .filter(|e| e.state == ExecutorState::Running)
                    .count()
                    == 2
        })
    })
    .await;
    let app_id = s.active_apps[0].id.clone();
    let ui = c.webui_url();
    // /json is rendered from the snapshot the master publishes every 200 ms.
    let j = wait_for(
        "the app with its cores in /json",
        Duration::from_secs(10),
        || async {
            let j: serde_json::Value =
                serde_json::from_str(&http_get(&format!("{ui}/json")).await.text()).ok()?;
            (j["activeapps"][0]["cores"] == 2).then_some(j)
        },
    )
    .await;
    assert_eq!(j["activeapps"][0]["id"], app_id.as_str(), "{j}");
    assert_eq!(j["activeapps"][0]["name"], "hanging-driver");
    assert_eq!(j["activeapps"][0]["cores"], 2);
    assert_eq!(j["activeapps"][0]["memoryperexecutor"], 512);
    let page = http_get(&format!("{ui}/app/?appId={app_id}")).await.text();
    assert!(
        page.contains("hanging-driver") && page.contains("RUNNING"),
        "{page}"
    );
    let metrics = http_get(&format!("{ui}/metrics")).await.text();
    assert!(
        metrics.contains("metrics_master_apps_Number{type=\"gauges\"} 1"),
        "{metrics}"
    );
    // The worker lists the Spark executor too.
    let wj: serde_json::Value = serde_json::from_str(
        &http_get(&format!("{}/json", c.worker_webui_url(0)))
            .await
            .text(),
    )
    .expect("worker json");
    assert_eq!(wj["executors"][0]["appid"], app_id.as_str(), "{wj}");
    let r = http(
        "POST",
        &format!("{ui}/app/kill/"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!("id={app_id}&terminate=true").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 302);
    let ok = p.wait(Duration::from_secs(120)).await;
    let text = p.text();
    print_lines("spark-submit", &text, &["has been killed", "killed"]);
    assert!(
        !ok,
        "the driver should fail when its application is killed:\n{text}"
    );
    assert!(
        text.contains(
            "Application has been killed. Reason: Master removed our application: KILLED"
        ),
        "{text}"
    );
    let app = finished_app(&c, "hanging-driver").await;
    assert_eq!(app.state, ApplicationState::Killed);
    no_process_left(&c, "no executor process left").await;
}

/// Sends `CheckExistence(name)` as Spark's endpoint verifier does and returns the Boolean the
/// peer answered (with the same request id).
fn check_existence(port: u16, name: &str) -> bool {
    use flint_spark_proto::{
        Frame, MessageEncoder, RequestHeader, RequestMessage, RpcAddress, SparkLine, SparkMessage,
        decode_message,
    };
    use std::io::{Read, Write};
    let payload = MessageEncoder::new(SparkLine::V3_5)
        .encode(&SparkMessage::CheckExistence { name: name.into() })
        .expect("encode");
    let body = RequestMessage {
        header: RequestHeader {
            sender: Some(RpcAddress::new("127.0.0.1", 1)),
            receiver: Some(RpcAddress::new("127.0.0.1", i32::from(port))),
            endpoint: "endpoint-verifier".into(),
        },
        payload: payload.into(),
    }
    .encode()
    .expect("header");
    let frame = Frame::RpcRequest {
        request_id: 4242,
        body: body.into(),
    }
    .to_bytes()
    .expect("frame");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    sock.write_all(&frame).expect("send");
    let mut head = [0u8; 21];
    sock.read_exact(&mut head).expect("response header");
    assert_eq!(head[8], 4, "an RpcResponse: {head:?}");
    assert_eq!(&head[9..17], &4242i64.to_be_bytes(), "same request id");
    let len = u32::from_be_bytes([head[17], head[18], head[19], head[20]]) as usize;
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).expect("response body");
    match decode_message(&body).expect("decode").message {
        SparkMessage::Boolean(b) => b,
        other => panic!("not a Boolean: {other:?}"),
    }
}

/// Without Spark: the master's one port tells Spark RPC from gRPC, answers Spark's endpoint
/// check, drops garbage, and keeps serving gRPC; the worker's endpoint answers its check too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_port_speaks_spark_rpc_and_grpc() {
    use std::io::{Read, Write};
    let mut c = Cluster::master(&[]);
    let worker = c.add_worker(WorkerSpec::default());
    let master_port = c.master_port;
    let worker_port: u16 = worker
        .as_str()
        .rsplit('-')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("worker port in its id");
    let (m, w, other) = tokio::task::spawn_blocking(move || {
        (
            check_existence(master_port, "Master"),
            check_existence(worker_port, "Worker"),
            check_existence(master_port, "Worker"),
        )
    })
    .await
    .expect("checks");
    assert!(
        m && w && !other,
        "Master {m}, Worker {w}, Worker@master {other}"
    );
    // Garbage (a frame length shorter than a frame header) closes the connection.
    let closed = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", master_port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        sock.write_all(&[0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9])
            .expect("send");
        let mut buf = [0u8; 16];
        matches!(sock.read(&mut buf), Ok(0) | Err(_))
    })
    .await
    .expect("garbage");
    assert!(closed, "the master kept a garbage connection open");
    let s = c.state().await;
    assert_eq!(s.alive_workers().count(), 1);
}
