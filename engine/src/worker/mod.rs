//! [`Worker`]: a process's share of the work — claims due runs and drives them.
//!
//! Shape: options → [`Worker::start`] → a cheap [`WorkerHandle`] (or [`Worker::run`] with a
//! shutdown future, for binaries). Inside, one claim loop plus three background tasks:
//!
//! ```text
//!   claim loop ── free slots? ── claim ≤ n due runs ── spawn runner per run (holds a slot)
//!       ▲  woken by: LISTEN urumi_runs │ a runner scheduling a wait │ next wake_at │ poll interval
//!   heartbeat ── every lease/3: renew held leases + the worker row
//!   sweeper ──── every sweep_interval: requeue expired leases; fail runs no live worker serves
//! ```
//!
//! # Guarantees
//! - Worker identities are unique per process start (`host-pid-random`), so a restarted
//!   process never inherits a dead one's leases.
//! - Graceful shutdown stops claiming, lets each runner finish its current step and release
//!   the run at that boundary, and waits up to `shutdown_grace`; what is still running then is
//!   dropped and its lease expires.

mod background;
mod batcher;
mod runner;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{info, warn};
use uuid::Uuid;

use crate::db::claim;
use crate::error::{Error, Result};
use crate::failpoint::FailPoints;
use crate::metrics::Metrics;
use crate::registry::Registry;

/// How a worker behaves. Start from [`WorkerOptions::default`].
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Runs driven at once (slots). Waiting runs hold none.
    pub concurrency: usize,
    /// How long a claimed run's lease lasts without renewal; a dead worker's runs are taken
    /// over this long after its last renewal.
    pub lease: Duration,
    /// Poll for due runs at least this often (LISTEN/NOTIFY wakes workers sooner).
    pub poll_interval: Duration,
    /// How often this worker sweeps for expired leases and unserved runs.
    pub sweep_interval: Duration,
    /// How long a due run may wait for a worker serving its definition version before it is
    /// failed with a clear error.
    pub unserved_grace: Duration,
    /// On shutdown, how long to wait for runners to reach a step boundary.
    pub shutdown_grace: Duration,
    /// Prefix of the worker's identity (the rest is host, pid and a random suffix).
    pub name: String,
    /// When set, every step's transient-error budget (else each step's own).
    pub transient_budget: Option<Duration>,
    /// What to prune and when ([`crate::Retention`]); `None`: this worker prunes nothing.
    pub retention: Option<crate::Retention>,
    /// Armed failure points (tests only).
    pub failpoints: FailPoints,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(5),
            unserved_grace: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            name: "worker".into(),
            transient_budget: None,
            retention: None,
            failpoints: FailPoints::default(),
        }
    }
}

/// State the claim loop, runners and background tasks share.
pub(crate) struct Shared {
    pub(crate) id: String,
    pub(crate) pool: PgPool,
    pub(crate) registry: Registry,
    pub(crate) options: WorkerOptions,
    pub(crate) def_keys: Vec<String>,
    pub(crate) metrics: Metrics,
    /// Runs this worker holds, with their lease tokens.
    pub(crate) held: Mutex<HashMap<Uuid, Uuid>>,
    /// Wakes the claim loop.
    pub(crate) wake: Notify,
    /// Group commit for step checkpoints.
    pub(crate) batcher: batcher::Batcher,
    batch_queue: Mutex<Option<batcher::Queue>>,
    stopping: AtomicBool,
    die: Notify,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
    /// A failure point fired: tear the worker down as if its process had died.
    pub(crate) fn crash(&self) {
        self.die.notify_one();
    }
}

/// A worker, ready to start.
#[derive(Debug)]
pub struct Worker {
    pool: PgPool,
    registry: Registry,
    options: WorkerOptions,
    metrics: Metrics,
}

/// A running worker. Dropping it leaves the worker running.
#[derive(Debug)]
pub struct WorkerHandle {
    id: String,
    shutdown: watch::Sender<bool>,
    join: tokio::task::JoinHandle<Result<()>>,
    metrics: Metrics,
}

impl Worker {
    /// A worker for the definitions in `registry`.
    #[must_use]
    pub fn new(pool: PgPool, registry: Registry, options: WorkerOptions) -> Self {
        Self {
            pool,
            registry,
            options,
            metrics: Metrics::default(),
        }
    }

    /// Uses `metrics` instead of a fresh set (so a binary can expose them).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Registers the worker and starts it in the background.
    ///
    /// # Errors
    /// [`Error::Database`] if the worker cannot register.
    pub async fn start(self) -> Result<WorkerHandle> {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "local".into());
        let suffix = Uuid::new_v4().simple().to_string();
        let id = format!(
            "{}-{host}-{}-{}",
            self.options.name,
            std::process::id(),
            &suffix[..8]
        );
        let def_keys = self.registry.keys();
        claim::register_worker(&self.pool, &id, &host, &def_keys).await?;
        let (batcher, batch_queue) = batcher::channel();
        let shared = Arc::new(Shared {
            id: id.clone(),
            pool: self.pool,
            registry: self.registry,
            options: self.options,
            def_keys,
            metrics: self.metrics.clone(),
            held: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            batcher,
            batch_queue: Mutex::new(Some(batch_queue)),
            stopping: AtomicBool::new(false),
            die: Notify::new(),
        });
        let (tx, rx) = watch::channel(false);
        info!(worker = %id, definitions = ?shared.def_keys, concurrency = shared.options.concurrency, "worker started");
        let join = tokio::spawn(main_loop(shared, rx));
        Ok(WorkerHandle {
            id,
            shutdown: tx,
            join,
            metrics: self.metrics,
        })
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully.
    ///
    /// # Errors
    /// [`Error::Database`] if the worker cannot register.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let handle = self.start().await?;
        shutdown.await;
        handle.shutdown().await
    }
}

impl WorkerHandle {
    /// The worker's unique identity.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The worker's metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// True once the worker has stopped (shut down, crashed at a failure point, or failed).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Stops claiming, lets runners reach a step boundary and release their runs, then returns.
    ///
    /// # Errors
    /// Whatever stopped the worker before it was asked to.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.join.await.unwrap_or(Ok(()))
    }

    /// Kills the worker on the spot, as a SIGKILL would: no step finishes, no lease is
    /// released, nothing more is written.
    pub fn kill(self) {
        self.join.abort();
    }

    /// Waits until the worker stops by itself (e.g. it crashed at a failure point).
    ///
    /// # Errors
    /// As [`WorkerHandle::shutdown`].
    pub async fn stopped(self) -> Result<()> {
        self.join.await.unwrap_or(Ok(()))
    }
}

async fn main_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) -> Result<()> {
    let mut background = JoinSet::new();
    background.spawn(background::listen(shared.clone()));
    background.spawn(background::heartbeat(shared.clone()));
    background.spawn(background::sweep(shared.clone()));
    if let Some(retention) = shared.options.retention.clone() {
        background.spawn(background::prune(shared.clone(), retention));
    }
    if let Some(queue) = shared.batch_queue.lock().expect("queue lock").take() {
        background.spawn(batcher::run(shared.pool.clone(), queue));
    }
    let mut runners: JoinSet<()> = JoinSet::new();
    let slots = Arc::new(Semaphore::new(shared.options.concurrency.max(1)));

    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            biased;
            () = shared.die.notified() => {
                warn!(worker = %shared.id, "failure point reached: worker stops dead");
                // Dropping the JoinSets aborts every task without any cleanup.
                return Ok(());
            }
            _ = shutdown.changed() => break,
            Some(joined) = runners.join_next(), if !runners.is_empty() => {
                if let Err(e) = joined && e.is_panic() {
                    warn!(error = %e, "a runner panicked");
                }
            }
            permit = slots.clone().acquire_owned() => {
                let Ok(first) = permit else { break };
                let mut permits = vec![first];
                while let Ok(p) = slots.clone().try_acquire_owned() {
                    permits.push(p);
                }
                let asked = permits.len();
                match claim::claim(&shared.pool, &shared.id, &shared.def_keys, asked, shared.options.lease).await {
                    Ok(runs) => {
                        let got = runs.len();
                        for run in runs {
                            let permit = permits.pop().expect("one permit per claimed run");
                            shared.held.lock().expect("held lock").insert(run.run_id, run.token);
                            runners.spawn(runner::drive(shared.clone(), run, permit));
                        }
                        drop(permits);
                        if got < asked {
                            idle_wait(&shared, &mut shutdown).await;
                        }
                    }
                    Err(e) => {
                        drop(permits);
                        warn!(error = %e, "claim failed; retrying after the poll interval");
                        tokio::time::sleep(shared.options.poll_interval).await;
                    }
                }
            }
        }
    }

    info!(worker = %shared.id, held = runners.len(), "shutting down: finishing current steps");
    shared.stopping.store(true, Ordering::SeqCst);
    let drained = tokio::time::timeout(shared.options.shutdown_grace, async {
        while runners.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(worker = %shared.id, left = runners.len(), "shutdown grace elapsed; remaining leases will expire");
    }
    runners.abort_all();
    background.abort_all();
    claim::deregister_worker(&shared.pool, &shared.id)
        .await
        .map_err(Error::Database)?;
    info!(worker = %shared.id, "worker stopped");
    Ok(())
}

/// Sleeps until something may be due: a wake-up, the next scheduled `wake_at`, or the poll
/// interval, whichever is first.
async fn idle_wait(shared: &Shared, shutdown: &mut watch::Receiver<bool>) {
    let mut sleep_for = shared.options.poll_interval;
    match claim::next_due_in(&shared.pool, &shared.def_keys).await {
        Ok(Some(due)) => sleep_for = sleep_for.min(due),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "could not read the next wake time"),
    }
    if sleep_for.is_zero() {
        // Something is due but was not claimable (another worker holds its row lock): yield.
        sleep_for = Duration::from_millis(2);
    }
    tokio::select! {
        () = shared.wake.notified() => {}
        () = tokio::time::sleep(sleep_for) => {}
        _ = shutdown.changed() => {}
        () = shared.die.notified() => shared.die.notify_one(),
    }
}
