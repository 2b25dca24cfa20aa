//! [`Worker`]: a process's share of the work — an apalis worker whose backend is the engine's
//! run table ([`RunQueue`]) and whose service drives claimed runs ([`RunService`]).
//!
//! Shape: options → [`Worker::start`] → a cheap [`WorkerHandle`] (or [`Worker::run`] with a
//! shutdown future). A binary that supervises with an apalis `Monitor` uses
//! [`Worker::register`] → [`RegisteredWorker::apalis_worker`] (the Monitor's factory) →
//! [`RegisteredWorker::finish`].
//!
//! ```text
//!  apalis Worker ─ RunQueue (Backend): free slots? claim ≤ n due runs ─► Task<ClaimedRun> each
//!      │    woken by: LISTEN urumi_runs │ a runner scheduling a wait │ next wake_at │ poll interval
//!      └─ TraceLayer (the run's span) ─ CatchPanicLayer ─ RunService ─► runner::drive
//!  beside it, for the registered worker's life:
//!   heartbeat ── every lease/3: renew held leases + the worker row
//!   sweeper ──── every sweep_interval: requeue expired leases; fail runs no live worker serves
//!   batcher ──── group commit of step checkpoints      pruner ── retention (optional)
//! ```
//!
//! # Guarantees
//! - Worker identities are unique per process start (`host-pid-random`), so a restarted
//!   process never inherits a dead one's leases.
//! - Graceful shutdown stops claiming, lets each runner finish its current step and release
//!   the run at that boundary, and waits up to `shutdown_grace`; what is still running then is
//!   dropped and its lease expires. Runs leased but not yet started are released at once.

mod background;
mod batcher;
mod inspect;
mod queue;
mod runner;
mod service;

pub use queue::{ClaimedRun, QueueError, RunQueue};
pub use service::RunService;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use apalis::layers::catch_panic::CatchPanicLayer;
use apalis::layers::tracing::TraceLayer;
use apalis_core::error::AbortError;
use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_core::worker::context::WorkerContext;
use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::layer::util::{Identity, Stack};
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
    /// Runs driven at once (slots). Waiting runs hold none, and a slot holds no database
    /// connection while its step runs (see [`WorkerOptions::POOL_SIZE`]).
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
    /// Runs to start on a cron schedule ([`crate::Schedule`]); every worker may carry the
    /// same ones, each slot starts one run.
    pub schedules: Vec<crate::Schedule>,
    /// The share of `concurrency`, in percent, that bulk-lane runs (operation children) may
    /// hold at once (at least one slot). The rest stay free for interactive and scheduled
    /// runs, so a customer's run never waits behind thousands of due bulk runs.
    pub bulk_share_percent: u8,
    /// Armed failure points (tests only).
    pub failpoints: FailPoints,
}

impl WorkerOptions {
    /// The Postgres connections a worker needs, whatever its concurrency: a runner borrows
    /// one only for a statement (a claimed run's first step starts in the claim, and step
    /// checkpoints go through the batcher), so what is open at once is the LISTEN
    /// connection, the claim, up to three checkpoint batches in flight, the heartbeat or
    /// sweeper, and the statements of runs that wait, fail or are released.
    pub const POOL_SIZE: u32 = 16;

    /// How many slots bulk-lane runs may hold at once: `bulk_share_percent` of `concurrency`,
    /// at least one.
    #[must_use]
    pub fn bulk_slots(&self) -> usize {
        (self.concurrency * usize::from(self.bulk_share_percent.min(100)) / 100).max(1)
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 128,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            sweep_interval: Duration::from_secs(5),
            unserved_grace: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            name: "worker".into(),
            transient_budget: None,
            retention: None,
            schedules: Vec::new(),
            bulk_share_percent: 75,
            failpoints: FailPoints::default(),
        }
    }
}

/// State the queue, runners and background tasks share.
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
    /// Slots bulk-lane runs may hold ([`WorkerOptions::bulk_slots`]); a claimed bulk run holds
    /// one of these besides its ordinary slot.
    pub(crate) bulk_slots: Arc<tokio::sync::Semaphore>,
    /// Group commit for step checkpoints.
    pub(crate) batcher: batcher::Batcher,
    stopping: AtomicBool,
    /// The apalis worker driving this one's runs, once it polled the queue: its stop is a
    /// shutdown too (an apalis `Monitor` stops workers through it).
    apalis: OnceLock<WorkerContext>,
    die: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
            || self
                .apalis
                .get()
                .is_some_and(WorkerContext::is_shutting_down)
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

    /// Registers the worker (its row in `urumi.workers`) and starts what runs beside its runs:
    /// LISTEN wake-ups, lease heartbeat, sweeper, batcher and, if configured, the pruner.
    ///
    /// # Errors
    /// [`Error::InvalidDefinition`] if a definition in the registry has a step without its
    /// code (only declared: a worker must be able to run every step it claims);
    /// [`Error::Database`] if the worker cannot register.
    pub async fn register(self) -> Result<RegisteredWorker> {
        if let Some(def) = self.registry.iter().find(|d| !d.is_executable()) {
            let missing: Vec<&str> = def
                .steps()
                .iter()
                .filter(|s| s.step.is_none())
                .map(|s| s.name.as_str())
                .collect();
            return Err(Error::InvalidDefinition {
                name: def.key(),
                reason: format!("a worker needs the code of every step; missing: {missing:?}"),
            });
        }
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
        let bulk_slots = self.options.bulk_slots();
        let shared = Arc::new(Shared {
            id: id.clone(),
            pool: self.pool,
            registry: self.registry,
            options: self.options,
            def_keys,
            metrics: self.metrics,
            held: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            bulk_slots: Arc::new(tokio::sync::Semaphore::new(bulk_slots)),
            batcher,
            stopping: AtomicBool::new(false),
            apalis: OnceLock::new(),
            die: Notify::new(),
        });
        let mut background = JoinSet::new();
        background.spawn(background::listen(shared.clone()));
        background.spawn(background::heartbeat(shared.clone()));
        background.spawn(background::sweep(shared.clone()));
        if let Some(retention) = shared.options.retention.clone() {
            background.spawn(background::prune(shared.clone(), retention));
        }
        background.spawn(batcher::run(shared.pool.clone(), batch_queue));
        let engine = crate::Engine::new(shared.pool.clone(), shared.registry.clone());
        for schedule in &shared.options.schedules {
            background.spawn(crate::schedule::tick(
                engine.clone(),
                schedule.clone(),
                id.clone(),
            ));
        }
        info!(worker = %id, definitions = ?shared.def_keys, concurrency = shared.options.concurrency, "worker started");
        Ok(RegisteredWorker { shared, background })
    }

    /// Registers the worker and starts it in the background.
    ///
    /// # Errors
    /// As [`Worker::register`].
    pub async fn start(self) -> Result<WorkerHandle> {
        let registered = self.register().await?;
        let id = registered.id().to_owned();
        let metrics = registered.shared.metrics.clone();
        let (tx, rx) = watch::channel(false);
        let join = tokio::spawn(supervise(registered, rx));
        Ok(WorkerHandle {
            id,
            shutdown: tx,
            join,
            metrics,
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

/// The run's span, opened by apalis's `TraceLayer` around each task: a child of the trace
/// context stored with the run (the request that started it), so every claim of the run, on
/// any worker, joins that one trace.
fn run_span(task: &Task<ClaimedRun>) -> tracing::Span {
    let run = &task.args;
    let span = tracing::info_span!(
        "run",
        run_id = %run.run_id(),
        workflow = %run.definition(),
        definition = %run.definition(),
        version = run.version(),
        subject = %run.subject(),
    );
    crate::trace::set_parent(&span, run.trace_context());
    span
}

/// Turns a panic in the runner (engine code, not a step) into the task's error.
type PanicHandler = for<'a, 'b> fn(&'a Box<dyn std::any::Any + Send + 'b>) -> AbortError;

fn runner_panicked<'b>(panic: &Box<dyn std::any::Any + Send + 'b>) -> AbortError {
    AbortError::new(format!("the runner panicked: {}", panic_message(panic)))
}

/// What a panic said (its `&str` or `String` payload).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The apalis worker type this engine builds: [`RunQueue`] as its backend, [`RunService`]
/// as its service, tracing and catch-panic as its layers.
pub type ApalisWorker = apalis_core::worker::Worker<
    ClaimedRun,
    RunQueue,
    RunService,
    Stack<
        TraceLayer<fn(&Task<ClaimedRun>) -> tracing::Span>,
        Stack<CatchPanicLayer<PanicHandler, AbortError>, Identity>,
    >,
>;

/// A registered worker: its row, its background tasks and the state its runs share. Dropping
/// it stops the background tasks without writing anything (as a dead process would).
#[derive(Debug)]
pub struct RegisteredWorker {
    shared: Arc<Shared>,
    background: JoinSet<()>,
}

impl RegisteredWorker {
    /// The worker's unique identity.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// A fresh apalis worker over this registration: what an apalis `Monitor`'s factory
    /// returns (each restart gets a new one; leases, slots' owner and the batcher are the
    /// registration's).
    pub fn apalis_worker(&self) -> ApalisWorker {
        let make_span: fn(&Task<ClaimedRun>) -> tracing::Span = run_span;
        WorkerBuilder::new(self.shared.id.as_str())
            .backend(RunQueue::new(self.shared.clone()))
            .layer(CatchPanicLayer::with_panic_handler(
                runner_panicked as PanicHandler,
            ))
            .layer(TraceLayer::new().make_span_with(make_span))
            .build(RunService::new(self.shared.clone()))
    }

    /// This registration's queue, for apalis's inspection traits (`ListWorkers`,
    /// `WaitForCompletion`); it claims nothing until an apalis worker polls it.
    #[must_use]
    pub fn queue(&self) -> RunQueue {
        RunQueue::new(self.shared.clone())
    }

    /// What an apalis `Monitor` registers: makes this registration's apalis worker, afresh
    /// on every (re)start.
    pub fn factory(&self) -> impl Fn(usize) -> ApalisWorker + Send + Sync + 'static {
        let registered = RegisteredWorker {
            shared: self.shared.clone(),
            background: JoinSet::new(),
        };
        move |_restarts| registered.apalis_worker()
    }

    /// How long a graceful shutdown may wait for runners (the worker's `shutdown_grace`).
    #[must_use]
    pub fn shutdown_grace(&self) -> Duration {
        self.shared.options.shutdown_grace
    }

    /// Marks the worker stopping, so runners release their runs at the next step boundary.
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
    }

    /// Stops the background tasks and marks the worker row stopped.
    ///
    /// # Errors
    /// [`Error::Database`] if the row cannot be written.
    pub async fn finish(mut self) -> Result<()> {
        self.background.abort_all();
        claim::deregister_worker(&self.shared.pool, &self.shared.id)
            .await
            .map_err(Error::Database)?;
        info!(worker = %self.shared.id, "worker stopped");
        Ok(())
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

/// Runs the apalis worker until shutdown (graceful, within `shutdown_grace`) or a failure
/// point's crash (everything dropped, nothing written).
async fn supervise(
    registered: RegisteredWorker,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let shared = registered.shared.clone();
    let worker = registered.apalis_worker();
    let mut run = std::pin::pin!(worker.run());
    tokio::select! {
        biased;
        () = shared.die.notified() => {
            warn!(worker = %shared.id, "failure point reached: worker stops dead");
            // Dropping the apalis worker and the registration aborts every runner and
            // background task without any cleanup.
            return Ok(());
        }
        ended = &mut run => {
            if let Err(e) = ended {
                warn!(worker = %shared.id, error = %e, "the worker stopped by itself");
            }
        }
        _ = shutdown.changed() => {
            info!(worker = %shared.id, held = shared.held.lock().expect("held lock").len(), "shutting down: finishing current steps");
            registered.stop();
            if let Some(ctx) = shared.apalis.get() {
                let _ = ctx.stop();
                let drained = tokio::select! {
                    drained = tokio::time::timeout(shared.options.shutdown_grace, &mut run) => drained.is_ok(),
                    () = shared.die.notified() => return Ok(()),
                };
                if !drained {
                    warn!(worker = %shared.id, left = shared.held.lock().expect("held lock").len(), "shutdown grace elapsed; remaining leases will expire");
                }
            }
        }
    }
    registered.finish().await
}

impl Shared {
    /// Sleeps until something may be due: a wake-up, the next scheduled `wake_at`, or the
    /// poll interval, whichever is first.
    pub(crate) async fn idle_wait(&self) {
        let mut sleep_for = self.options.poll_interval;
        let with_bulk = self.bulk_slots.available_permits() > 0;
        match claim::next_due_in(&self.pool, &self.def_keys, with_bulk).await {
            Ok(Some(due)) => sleep_for = sleep_for.min(due),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "could not read the next wake time"),
        }
        if sleep_for.is_zero() {
            // Something is due but was not claimable (another worker holds its row lock): yield.
            sleep_for = Duration::from_millis(2);
        }
        tokio::select! {
            () = self.wake.notified() => {}
            () = tokio::time::sleep(sleep_for) => {}
        }
    }
}
