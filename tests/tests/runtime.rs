//! The application runtime end to end: the `pi`, `wordcount` and `flint-test-app` binaries
//! run as client-mode drivers (as `flint-submit --deploy-mode client` runs them) against a
//! real master and real workers, which start the same binaries as executors.

use std::collections::HashMap;
use std::time::Duration;

use flint_domain::types::*;
use flint_tests::*;

const JOB: Duration = Duration::from_secs(90);

fn two_workers() -> Cluster {
    let mut c = Cluster::master(&[]);
    for _ in 0..2 {
        c.add_worker(WorkerSpec {
            cores: 2,
            memory: "2g",
        });
    }
    c
}

/// After the driver exits: its application is FINISHED in the master, every core is free
/// and no executor process is left.
async fn assert_cleaned_up(c: &Cluster, state: ApplicationState) {
    let s = c
        .wait_state("application completed and cores free", |s| {
            s.active_apps.is_empty()
                && !s.completed_apps.is_empty()
                && s.workers.iter().all(|w| w.cores_used == 0)
        })
        .await;
    let last = s.completed_apps.last().expect("completed app");
    assert_eq!(last.state, state, "{last:?}");
    wait_for(
        "no executor process left",
        Duration::from_secs(20),
        || async { processes_in(c.dir.path()).is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pi_in_client_mode_uses_both_workers() {
    let c = two_workers();
    let out = c.run_app("pi", &["10"], &[], JOB);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("Pi is roughly 3.1"),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stderr.contains("10 slices, "), "{}", out.stderr);
    assert!(out.stderr.contains("of 1000000 points"), "{}", out.stderr);
    // The master granted one executor per worker, and both connected back.
    let s = c.state().await;
    let app = s
        .completed_apps
        .iter()
        .find(|a| a.desc.name == "pi")
        .expect("pi app");
    assert_eq!(app.removed_executors.len(), 2, "{app:?}");
    assert!(
        app.driver_url.starts_with("http://127.0.0.1:"),
        "{}",
        app.driver_url
    );
    assert!(
        out.stderr.contains("Registered executor "),
        "{}",
        out.stderr
    );
    assert_cleaned_up(&c, ApplicationState::Finished).await;
}

/// A small deterministic generator (xorshift64*), so the corpus is the same every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn corpus_text(g: &mut Gen, vocab: &[String], bytes: usize) -> String {
    let seps = [
        " ", " ", " ", ", ", ". ", "\n", "--", "! ", "\t", " (", ") ", "'s ",
    ];
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        // Zipf-ish: low indexes are much more frequent.
        let r = g.below(vocab.len() as u64);
        let w = &vocab[(r * g.below(vocab.len() as u64) / vocab.len() as u64) as usize];
        match g.below(10) {
            0 => s.push_str(&w.to_uppercase()),
            1 => {
                let mut cs = w.chars();
                if let Some(f) = cs.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(cs.as_str());
                }
            }
            _ => s.push_str(w),
        }
        s.push_str(seps[g.below(seps.len() as u64) as usize]);
    }
    s
}

/// The reference: lowercase ASCII alphanumeric runs, counted in one process.
fn reference_counts(texts: &[&str]) -> Vec<(String, u64)> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for t in texts {
        for w in t
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            *counts.entry(w.to_ascii_lowercase()).or_insert(0) += 1;
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wordcount_matches_a_single_process_count() {
    let c = two_workers();
    let mut g = Gen(0x00C0_FFEE_1234_5678);
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "x", "zed", "7", "42",
    ];
    let vocab: Vec<String> = (0..2000)
        .map(|_| {
            let n = 1 + g.below(4);
            (0..n)
                .map(|_| syllables[g.below(syllables.len() as u64) as usize])
                .collect()
        })
        .collect();
    let dir = c.dir.path().join("corpus");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let mut texts = Vec::new();
    for (i, size) in [900_000, 700_000, 500_000, 300_000].iter().enumerate() {
        let t = corpus_text(&mut g, &vocab, *size);
        std::fs::write(dir.join(format!("part-{i}.txt")), &t).expect("write corpus");
        texts.push(t);
    }
    // Skipped in a directory, like Spark's _SUCCESS markers.
    std::fs::write(dir.join("_SUCCESS"), "ignored words here").expect("marker");
    let extra = c.dir.path().join("extra.txt");
    let t = corpus_text(&mut g, &vocab, 400_000);
    std::fs::write(&extra, &t).expect("write extra");
    texts.push(t);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let expected = reference_counts(&refs);
    assert!(expected.len() > 1000, "a varied corpus");

    let dir_arg = dir.display().to_string();
    let extra_arg = extra.display().to_string();
    let out = c.run_app(
        "wordcount",
        &[
            &dir_arg,
            &extra_arg,
            "--top",
            "1000000",
            "--split-size",
            "128k",
        ],
        &[],
        JOB,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let got: Vec<(String, u64)> = out
        .stdout
        .lines()
        .map(|l| {
            let (w, n) = l.split_once(' ').expect("word count line");
            (w.to_owned(), n.parse().expect("count"))
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);
    assert!(
        out.stderr.contains("from 5 file(s) in 24 partitions"),
        "{}",
        out.stderr
    );

    // --top N prints the first N of the same order.
    let out = c.run_app("wordcount", &[&dir_arg, "--top", "3"], &[], JOB);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let first = reference_counts(&refs[..4]);
    let want: String = first[..3]
        .iter()
        .map(|(w, n)| format!("{w} {n}\n"))
        .collect();
    assert_eq!(out.stdout, want);
    assert_cleaned_up(&c, ApplicationState::Finished).await;
}

/// What `pi` computes for `slices`, in one process (same seeds as the example).
fn pi_inside(slices: u64) -> u64 {
    let mut count = 0;
    for index in 0..slices {
        let mut rng = fastrand::Rng::with_seed(0x5eed_0000 + index);
        for _ in 0..100_000 {
            let x = rng.f64() * 2.0 - 1.0;
            let y = rng.f64() * 2.0 - 1.0;
            if x * x + y * y <= 1.0 {
                count += 1;
            }
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pi_survives_a_worker_sigkilled_mid_job() {
    let mut c = two_workers();
    let expected = tokio::task::spawn_blocking(|| pi_inside(200));
    let app = c.spawn_app("pi", &["200"], &[("spark.flint.pi.sliceDelay", "100ms")]);
    app.wait_stderr("Registered executor 0 ", Duration::from_secs(30));
    app.wait_stderr("Registered executor 1 ", Duration::from_secs(30));
    // Progress lines (stderr is not a terminal): a tenth of the job is done.
    app.wait_stderr("Stage 0: ", Duration::from_secs(30));
    c.workers[0].stop_with(libc::SIGKILL, Duration::from_secs(5));
    let out = app.wait(JOB);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("Pi is roughly 3.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("Lost executor") && out.stderr.contains("resubmitting its"),
        "{}",
        out.stderr
    );
    let expected = expected.await.expect("reference");
    assert!(
        out.stderr
            .contains(&format!("200 slices, {expected} of 20000000 points")),
        "expected {expected} points inside:\n{}",
        out.stderr
    );
    let s = c
        .wait_state("worker 0 dead and pi finished", |s| {
            s.worker(&c.worker_ids[0])
                .is_some_and(|w| w.state == WorkerState::Dead)
                && s.active_apps.is_empty()
        })
        .await;
    assert_eq!(s.completed_apps[0].state, ApplicationState::Finished);
    wait_for(
        "no executor process left",
        Duration::from_secs(20),
        || async { processes_in(c.dir.path()).is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_tasks_are_retried_then_abort_the_job() {
    let c = two_workers();
    // A task that always fails: spark.task.maxFailures (4) attempts, then a clear error.
    let out = c.run_app("flint-test-app", &["fail", "3"], &[], JOB);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let err = out
        .stderr
        .lines()
        .find(|l| l.starts_with("Error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{}", out.stderr));
    assert!(err.starts_with("Error: Job aborted: task "), "{err}");
    assert!(
        err.contains(" failed 4 times; most recent failure: lost task "),
        "{err}"
    );
    assert!(
        err.contains("): task failed on purpose (partition "),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_cleaned_up(&c, ApplicationState::Finished).await;

    // A panicking task, with spark.task.maxFailures=2.
    let out = c.run_app(
        "flint-test-app",
        &["panic", "2"],
        &[("spark.task.maxFailures", "2")],
        JOB,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(" failed 2 times; most recent failure: ")
            && out
                .stderr
                .contains("task panicked: task panicked on purpose"),
        "{}",
        out.stderr
    );

    // Tasks that fail once each are retried (on the other executor) and the job succeeds.
    let markers = c.dir.path().join("flaky");
    std::fs::create_dir_all(&markers).expect("markers dir");
    let m = markers.display().to_string();
    let out = c.run_app("flint-test-app", &["flaky", "6", &m], &[], JOB);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "results: [0, 1, 2, 3, 4, 5]\n");
    assert_eq!(out.stderr.matches("task failed: first attempt").count(), 6);
    assert_cleaned_up(&c, ApplicationState::Finished).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_dies_mid_task_is_a_task_failure() {
    let c = two_workers();
    let out = c.run_app(
        "flint-test-app",
        &["crash", "1"],
        &[("spark.task.maxFailures", "2")],
        JOB,
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("Job aborted: task 0 failed 2 times")
            && out.stderr.contains("executor lost: "),
        "{}",
        out.stderr
    );
    assert_cleaned_up(&c, ApplicationState::Finished).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_allocation_requests_executors_and_releases_idle_ones() {
    let c = two_workers();
    let out = c.run_app(
        "flint-test-app",
        &["sleep", "8", "200"],
        &[
            ("spark.dynamicAllocation.enabled", "true"),
            ("spark.dynamicAllocation.maxExecutors", "2"),
            ("spark.dynamicAllocation.executorIdleTimeout", "1s"),
            ("spark.executor.cores", "1"),
            ("spark.flint.test.lingerAfterJob", "3s"),
        ],
        JOB,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "results: [0, 1, 2, 3, 4, 5, 6, 7]\n");
    // No executor before the job (initialExecutors = minExecutors = 0), then as many as
    // the backlog needs within maxExecutors, released once idle.
    let requested = out.stderr.find("Requesting 2 executor(s) in all");
    let registered = out.stderr.find("Registered executor ");
    assert!(
        requested.is_some() && registered.is_some() && requested < registered,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Requesting 0 executor(s) in all"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Releasing idle executors"),
        "{}",
        out.stderr
    );
    let s = c.state().await;
    let app = s.completed_apps.last().expect("app");
    assert_eq!(app.removed_executors.len(), 2, "{app:?}");
    assert_cleaned_up(&c, ApplicationState::Finished).await;
}

#[test]
fn bad_environments_exit_1_with_one_clear_line() {
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin("pi"));
        cmd.env_remove("FLINT_MASTER_URL")
            .env_remove("FLINT_CONF")
            .env_remove("FLINT_ROLE")
            .env_remove("FLINT_DRIVER_URL")
            .env("RUST_LOG", "off");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run pi");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        run(&[]),
        (
            Some(1),
            "no master URL: run with flint-submit --master spark://host:7077 or set FLINT_MASTER_URL\n"
                .into()
        )
    );
    assert_eq!(
        run(&[
            ("FLINT_MASTER_URL", "spark://127.0.0.1:7077"),
            ("FLINT_CONF", "spark.executor.memory=1024")
        ]),
        (
            Some(1),
            "spark.executor.memory: invalid memory size '1024': Memory is below 1MB, or missing a M/G at the end of the memory specification?\n".into()
        )
    );
    let (code, err) = run(&[("FLINT_ROLE", "executor")]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("FLINT_DRIVER_URL is not set"), "{err}");
    // An unreachable master.
    let (code, err) = run(&[("FLINT_MASTER_URL", "spark://127.0.0.1:1")]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("cannot connect to master spark://127.0.0.1:1"),
        "{err}"
    );
}
