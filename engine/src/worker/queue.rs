//! [`RunQueue`]: the engine as an apalis backend. apalis-core's [`Backend`] over `urumi.runs`
//! itself — no second table, so nothing is written twice and nothing can disagree.
//!
//! ```text
//!  apalis Worker ── poll_next ──► RunQueue: wait for a free slot ─► claim ≤ free slots due runs
//!        │                          (≤ free bulk slots of them bulk; interactive, scheduled,
//!        │                          then bulk round robin across owners;
//!        │                          FOR UPDATE SKIP LOCKED, lease) ─► one Task<ClaimedRun> each
//!        │                          nothing due ─► sleep until NOTIFY / next wake_at / poll interval
//!        └─ service (RunService) ─► runner::drive: the run's steps back to back; frees the slot
//!  poll_close (shutdown) ─► a claim in flight is finished and what it leased is released,
//!                           as is every leased run not yet handed to the service
//! ```
//!
//! # Guarantees
//! - A run is one apalis task. Its steps run back to back inside the task, without a queue
//!   round trip; the group-commit batcher and the lease fence are unchanged.
//! - Slots are counted here, not by a tower concurrency layer: a claim asks for as many runs as
//!   there are free slots, so one statement fills them all.
//! - Bulk-lane runs hold a bulk slot too, and there are fewer of those than slots
//!   ([`super::WorkerOptions::bulk_slots`]), so some slots are always left for interactive and
//!   scheduled runs.
//! - A leased run is in the heartbeat's set (`Shared::held`) from the moment it is claimed
//!   until its runner ends, so a run waiting in the buffer keeps its lease.
//! - A backend error never stops the worker: a failed claim is logged and tried again after
//!   the poll interval.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use apalis_core::backend::{Backend, BackendConfig, finalize::Ephemeral};
use apalis_core::task::Task;
use apalis_core::worker::context::WorkerContext;
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::layer::util::Identity;
use tracing::warn;
use uuid::Uuid;

use super::Shared;
use super::runner;
use crate::db::claim::{self, Claimed};
use crate::db::transition::ReleaseReason;

/// A run this worker has leased, as an apalis task's arguments: the run and the worker slot it
/// holds. Only a claim makes one.
pub struct ClaimedRun {
    pub(crate) claimed: Claimed,
    pub(crate) permit: OwnedSemaphorePermit,
    /// A bulk-lane run's bulk slot, given back (and the claim loop woken) when the run ends.
    pub(crate) bulk_slot: Option<BulkSlot>,
}

/// One of a worker's bulk slots ([`super::WorkerOptions::bulk_slots`]). Dropping it frees the
/// slot and wakes the claim loop, which may have gone to sleep with bulk runs due but every
/// bulk slot taken.
pub(crate) struct BulkSlot {
    permit: Option<OwnedSemaphorePermit>,
    shared: Arc<Shared>,
}

impl Drop for BulkSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.shared.wake.notify_one();
    }
}

impl ClaimedRun {
    /// The run's id.
    #[must_use]
    pub fn run_id(&self) -> Uuid {
        self.claimed.run_id
    }
    /// The run's definition name.
    #[must_use]
    pub fn definition(&self) -> &str {
        &self.claimed.definition
    }
    /// The run's definition version.
    #[must_use]
    pub fn version(&self) -> i32 {
        self.claimed.version
    }
    /// What the run acts on.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.claimed.subject
    }
    /// The W3C `traceparent` of the request that started the run, if it was traced.
    #[must_use]
    pub fn trace_context(&self) -> Option<&str> {
        self.claimed.trace_context.as_deref()
    }
}

impl fmt::Debug for ClaimedRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedRun")
            .field("run_id", &self.claimed.run_id)
            .field("definition", &self.claimed.definition)
            .field("version", &self.claimed.version)
            .field("subject", &self.claimed.subject)
            .finish_non_exhaustive()
    }
}

/// What the queue's inspection traits ([`super::inspect`]) can fail with. The claim stream
/// itself never fails the worker (see the module's guarantees): a failed claim is logged and
/// tried again.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Postgres failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// What the queue is doing between two tasks.
enum Phase {
    /// Nothing in flight.
    Idle,
    /// Waiting for a free slot, then claiming: the statement must finish once it started.
    Claiming(BoxFuture<'static, Vec<ClaimedRun>>),
    /// Nothing was due: sleeping until a wake-up. Safe to drop.
    Sleeping(BoxFuture<'static, ()>),
    /// Closing: releasing what was leased but not handed out.
    Closing(BoxFuture<'static, ()>),
}

/// The engine's run table as an apalis [`Backend`]: each task is one [`ClaimedRun`].
pub struct RunQueue {
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    ready: VecDeque<ClaimedRun>,
    phase: Phase,
}

impl fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunQueue")
            .field("worker", &self.shared.id)
            .field("free_slots", &self.slots.available_permits())
            .field("buffered", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl RunQueue {
    pub(crate) fn pool(&self) -> &sqlx::PgPool {
        &self.shared.pool
    }

    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let slots = Arc::new(Semaphore::new(shared.options.concurrency.max(1)));
        Self {
            shared,
            slots,
            ready: VecDeque::new(),
            phase: Phase::Idle,
        }
    }
}

/// Waits for one free slot, takes every other free one, and claims that many due runs. Slots
/// not used by a run are given back when the unused permits drop.
async fn claim_batch(shared: Arc<Shared>, slots: Arc<Semaphore>) -> Vec<ClaimedRun> {
    let Ok(first) = slots.clone().acquire_owned().await else {
        return Vec::new();
    };
    let mut permits = vec![first];
    while let Ok(p) = slots.clone().try_acquire_owned() {
        permits.push(p);
    }
    let asked = permits.len();
    let mut bulk = Vec::new();
    while bulk.len() < asked {
        match shared.bulk_slots.clone().try_acquire_owned() {
            Ok(p) => bulk.push(p),
            Err(_) => break,
        }
    }
    match claim::claim(
        &shared.pool,
        &shared.id,
        &shared.def_keys,
        asked,
        bulk.len(),
        shared.options.lease,
    )
    .await
    {
        Ok(runs) => {
            let mut held = shared.held.lock().expect("held lock");
            runs.into_iter()
                .map(|claimed| {
                    held.insert(claimed.run_id, claimed.token);
                    let permit = permits.pop().expect("one permit per claimed run");
                    let bulk_slot = claimed.bulk.then(|| BulkSlot {
                        permit: Some(bulk.pop().expect("one bulk slot per claimed bulk run")),
                        shared: shared.clone(),
                    });
                    ClaimedRun {
                        claimed,
                        permit,
                        bulk_slot,
                    }
                })
                .collect()
        }
        Err(e) => {
            warn!(error = %e, "claim failed; retrying after the poll interval");
            Vec::new()
        }
    }
}

/// Releases leased runs that no runner will drive (the worker is stopping).
async fn release_all(shared: Arc<Shared>, runs: Vec<ClaimedRun>) {
    for run in runs {
        let lease = runner::lease_of(&shared, &run.claimed);
        runner::release_best_effort(&shared, &lease, &ReleaseReason::Shutdown).await;
        shared
            .held
            .lock()
            .expect("held lock")
            .remove(&run.claimed.run_id);
    }
}

impl Backend for RunQueue {
    type Task = Task<ClaimedRun>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        // Runners ask `Shared::stopping` at each step boundary; apalis's stop is one of its
        // sources.
        let _ = self.shared.apalis.set(worker.clone());
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        loop {
            if let Some(run) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(Task::new(run))));
            }
            match &mut self.phase {
                Phase::Idle => {
                    self.phase = Phase::Claiming(
                        claim_batch(self.shared.clone(), self.slots.clone()).boxed(),
                    );
                }
                Phase::Claiming(fut) => {
                    let runs = std::task::ready!(fut.poll_unpin(cx));
                    if runs.is_empty() {
                        let shared = self.shared.clone();
                        self.phase =
                            Phase::Sleeping(async move { shared.idle_wait().await }.boxed());
                    } else {
                        self.ready.extend(runs);
                        self.phase = Phase::Idle;
                    }
                }
                Phase::Sleeping(fut) => {
                    std::task::ready!(fut.poll_unpin(cx));
                    self.phase = Phase::Idle;
                }
                // Not polled for tasks once closing; nothing to hand out.
                Phase::Closing(_) => return Poll::Pending,
            }
        }
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.phase {
                Phase::Idle | Phase::Sleeping(_) => {
                    let runs: Vec<_> = self.ready.drain(..).collect();
                    self.phase = Phase::Closing(release_all(self.shared.clone(), runs).boxed());
                }
                Phase::Claiming(fut) => {
                    // A claim that started must finish: what it leased is released below.
                    let runs = std::task::ready!(fut.poll_unpin(cx));
                    self.ready.extend(runs);
                    self.phase = Phase::Idle;
                }
                Phase::Closing(fut) => {
                    std::task::ready!(fut.poll_unpin(cx));
                    self.phase = Phase::Idle;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl BackendConfig for RunQueue {
    type Args = ClaimedRun;
    type Id = Uuid;
    type Kind = Ephemeral;
    type Config = ();
    type Layer = Identity;

    fn config(&self) -> &Self::Config {
        &()
    }

    fn middleware(&mut self, _worker: &mut WorkerContext) -> Self::Layer {
        Identity::new()
    }
}
