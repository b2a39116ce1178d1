//! The application runtime: a Rust program becomes a Flint application.
//!
//! ```no_run
//! use flint_client::runtime::{App, Context};
//!
//! fn main() -> std::process::ExitCode {
//!     App::new("squares")
//!         .typed_task("square", |xs: Vec<u64>| Ok(xs.iter().map(|x| x * x).sum::<u64>()))
//!         .run(|ctx: Context| async move {
//!             let parts: Vec<Vec<u64>> = (0..10).map(|p| (p * 10..p * 10 + 10).collect()).collect();
//!             let sums: Vec<u64> = ctx.run_job("square", parts).await?;
//!             println!("{}", sums.iter().sum::<u64>());
//!             Ok::<(), flint_client::runtime::JobError>(())
//!         })
//! }
//! ```
//!
//! The same binary is the driver and the executors. [`App::run`] looks at `FLINT_ROLE`:
//! `executor` (set by the worker that starts it) makes it connect to its driver at
//! `FLINT_DRIVER_URL` and run the tasks it is sent; anything else makes it the driver, which
//! reads `FLINT_MASTER_URL`, `FLINT_APP_NAME` and `FLINT_CONF` (set by `flint-submit`),
//! registers the application with the master and runs the closure given to `run`.
//! The whole contract is in docs/runtime-contract.md, "Application runtime".

mod allocation;
mod conf;
mod convert;
mod driver;
mod executor;
mod message;
mod progress;
mod scheduler;
mod task;

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use flint_domain::types::AppId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

pub use conf::{DriverConf, DynamicAllocation, NO_MASTER};
pub use driver::executor_command;
pub use message::StageId;
pub use task::{MAX_MESSAGE_BYTES, decode, encode};

use conf::{ExecutorConf, Role};
use task::{TaskRegistry, typed};

/// Why a job did not produce its results.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A task failed `spark.task.maxFailures` times.
    #[error(
        "Job aborted: task {partition} failed {failures} times; most recent failure: {message}"
    )]
    Aborted {
        stage: StageId,
        partition: u32,
        failures: u32,
        message: String,
    },
    #[error("unknown task '{0}': register it with App::task before running a job with it")]
    UnknownTask(String),
    #[error("partition {partition}: cannot serialize: {error}")]
    Serialize { partition: usize, error: String },
    #[error("result of partition {partition}: {error}")]
    Deserialize { partition: usize, error: String },
    #[error("partition {partition} is {bytes} bytes, more than the {} MiB limit", MAX_MESSAGE_BYTES >> 20)]
    TooLarge { partition: usize, bytes: usize },
    #[error("too many partitions: {0}")]
    TooManyPartitions(usize),
    /// The application ended before the job did (removed by the master, driver stopping).
    #[error("{0}")]
    AppEnded(String),
}

/// The driver's handle on the application, given to the closure passed to [`App::run`].
/// Clones share the application; jobs from several clones run side by side.
#[derive(Clone)]
pub struct Context {
    cmds: mpsc::UnboundedSender<driver::Cmd>,
    tasks: Arc<TaskRegistry>,
    conf: Arc<DriverConf>,
    app_id: AppId,
    args: Arc<Vec<String>>,
}

impl Context {
    /// The program's arguments (without the program name).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    pub fn app_name(&self) -> &str {
        &self.conf.app_name
    }

    /// A `spark.*` property from `FLINT_CONF`.
    pub fn conf(&self, key: &str) -> Option<&str> {
        self.conf.props.get(key)
    }

    /// The resolved driver settings.
    pub fn driver_conf(&self) -> &DriverConf {
        &self.conf
    }

    /// Spark's `defaultParallelism`: `spark.default.parallelism` if set, else the cores of
    /// the executors registered so far, at least 2.
    pub async fn default_parallelism(&self) -> usize {
        if let Some(n) = self
            .conf("spark.default.parallelism")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
        {
            return n;
        }
        let (reply, rx) = oneshot::channel();
        if self.cmds.send(driver::Cmd::TotalCores { reply }).is_err() {
            return 2;
        }
        rx.await.map_or(2, |c| (c as usize).max(2))
    }

    /// Runs task `task` once per partition on the executors and returns the results in
    /// partition order. Partitions and results are serialized with JSON.
    pub async fn run_job<I, O>(&self, task: &str, partitions: Vec<I>) -> Result<Vec<O>, JobError>
    where
        I: Serialize,
        O: DeserializeOwned,
    {
        let payloads = partitions
            .iter()
            .enumerate()
            .map(|(partition, p)| {
                encode(p).map_err(|error| JobError::Serialize { partition, error })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.run_job_bytes(task, payloads)
            .await?
            .iter()
            .enumerate()
            .map(|(partition, b)| {
                decode(b).map_err(|error| JobError::Deserialize { partition, error })
            })
            .collect()
    }

    /// Runs task `task` on already serialized partitions; returns the raw results.
    pub async fn run_job_bytes(
        &self,
        task: &str,
        partitions: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, JobError> {
        if !self.tasks.contains(task) {
            return Err(JobError::UnknownTask(task.to_owned()));
        }
        if partitions.len() > i32::MAX as usize {
            return Err(JobError::TooManyPartitions(partitions.len()));
        }
        if let Some((partition, p)) = partitions
            .iter()
            .enumerate()
            .find(|(_, p)| p.len() > MAX_MESSAGE_BYTES)
        {
            return Err(JobError::TooLarge {
                partition,
                bytes: p.len(),
            });
        }
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(driver::Cmd::Submit {
                task_name: task.to_owned(),
                partitions,
                reply,
            })
            .map_err(|_| JobError::AppEnded("the driver has stopped".into()))?;
        rx.await
            .map_err(|_| JobError::AppEnded("the driver has stopped".into()))?
    }
}

/// A Flint application: its task functions and its driver program.
pub struct App {
    name: String,
    tasks: TaskRegistry,
    problems: Vec<String>,
}

impl App {
    /// `name` is the application's name unless `FLINT_APP_NAME` or `spark.app.name` is set.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            tasks: TaskRegistry::default(),
            problems: Vec::new(),
        }
    }

    /// Registers a task function on raw bytes under `name`.
    pub fn task<F>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    {
        if !self.tasks.insert(name, Arc::new(f)) {
            self.problems
                .push(format!("task '{name}' is registered twice"));
        }
        self
    }

    /// Registers a typed task function under `name`: its input is one partition as given
    /// to [`Context::run_job`], its output one element of the job's result.
    pub fn typed_task<I, O, F>(mut self, name: &str, f: F) -> Self
    where
        I: DeserializeOwned,
        O: Serialize,
        F: Fn(I) -> Result<O, String> + Send + Sync + 'static,
    {
        if !self.tasks.insert(name, typed(f)) {
            self.problems
                .push(format!("task '{name}' is registered twice"));
        }
        self
    }

    /// Runs the application as a driver or as an executor (see the module docs). Reads the
    /// process environment and arguments, sets up logging (`RUST_LOG`, default `info`), and
    /// returns the process's exit code: 0, or 1 with the error on stderr.
    pub fn run<F, Fut, E>(self, driver: F) -> ExitCode
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        flint_daemon::init_logging();
        let env: HashMap<String, String> = std::env::vars().collect();
        let args: Vec<String> = std::env::args().skip(1).collect();
        self.run_with(env, args, driver)
    }

    /// [`App::run`] with an explicit environment and arguments.
    pub fn run_with<F, Fut, E>(
        self,
        env: HashMap<String, String>,
        args: Vec<String>,
        driver: F,
    ) -> ExitCode
    where
        F: FnOnce(Context) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        if let Some(p) = self.problems.first() {
            eprintln!("{}: {p}", self.name);
            return ExitCode::from(1);
        }
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                return ExitCode::from(1);
            }
        };
        let tasks = Arc::new(self.tasks);
        let code = match conf::role(&env) {
            Role::Executor => match ExecutorConf::from_env(&env) {
                Ok(c) => match rt.block_on(executor::run(c, tasks)) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!("{e}");
                        eprintln!("{e}");
                        ExitCode::from(1)
                    }
                },
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            },
            Role::Driver => match DriverConf::from_env(&env, &self.name) {
                Ok(c) => rt.block_on(run_driver(Arc::new(c), tasks, args, driver)),
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            },
        };
        // Tasks still running on blocking threads must not hold the exit up.
        rt.shutdown_timeout(Duration::from_millis(500));
        code
    }
}

async fn run_driver<F, Fut, E>(
    conf: Arc<DriverConf>,
    tasks: Arc<TaskRegistry>,
    args: Vec<String>,
    driver: F,
) -> ExitCode
where
    F: FnOnce(Context) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let d = match driver::Driver::start(conf.clone()).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let ctx = Context {
        cmds: d.cmds.clone(),
        tasks,
        conf,
        app_id: d.app_id.clone(),
        args: Arc::new(args),
    };
    let outcome = tokio::select! {
        r = driver(ctx) => Some(r),
        _ = flint_daemon::shutdown_signal() => None,
    };
    d.stop().await;
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("Error: {e}");
            ExitCode::from(1)
        }
        None => {
            eprintln!("interrupted: the application was stopped");
            ExitCode::from(130)
        }
    }
}
