//! The seam between the worker's session and its children: [`ChildLauncher`] starts a
//! child's runner, which reports [`ChildEvent`]s and obeys [`ChildControl`]s. In production
//! [`ProcessLauncher`] runs real processes (`runner.rs`); tests put a fake in its place and
//! play the children's part themselves.

use std::sync::Arc;

use flint_domain::types::{DriverDescription, DriverId, LaunchExecutor};
use flint_worker_core::ChildEvent;
use tokio::sync::mpsc;

use crate::process::Launcher;
use crate::runner::{self, WorkerEnv};

/// What the core asks of a running child's runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildControl {
    /// Stop the process (SIGTERM to its group, SIGKILL after the grace period).
    Kill,
    /// Start a supervised driver's process again.
    Relaunch { attempt: u32 },
    /// Nothing more will be asked: end.
    Release,
}

/// Starts children. Each gets the channel its events go to and the one its orders come on.
pub trait ChildLauncher: Send + Sync + 'static {
    fn start_executor(
        &self,
        launch: LaunchExecutor,
        master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    );

    fn start_driver(
        &self,
        driver_id: DriverId,
        driver: DriverDescription,
        master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    );
}

/// Real child processes, in their own process groups, under the worker's work dir.
pub struct ProcessLauncher {
    env: Arc<WorkerEnv>,
    launcher: Arc<Launcher>,
}

impl ProcessLauncher {
    pub fn new(env: Arc<WorkerEnv>, launcher: Launcher) -> Self {
        Self {
            env,
            launcher: Arc::new(launcher),
        }
    }
}

impl ChildLauncher for ProcessLauncher {
    fn start_executor(
        &self,
        launch: LaunchExecutor,
        master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    ) {
        tokio::spawn(runner::run_executor(
            self.env.clone(),
            self.launcher.clone(),
            master_url,
            launch,
            events,
            control,
        ));
    }

    fn start_driver(
        &self,
        driver_id: DriverId,
        driver: DriverDescription,
        master_url: String,
        events: mpsc::Sender<ChildEvent>,
        control: mpsc::Receiver<ChildControl>,
    ) {
        tokio::spawn(runner::run_driver(
            self.env.clone(),
            self.launcher.clone(),
            master_url,
            driver_id,
            driver,
            events,
            control,
        ));
    }
}
