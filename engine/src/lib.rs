//! Urumi's durable workflow engine: checkpointed steps, persisted retries, leases and replay
//! on Postgres.
//!
//! The engine is generic — it knows nothing of Kubernetes, HTTP or stores. A [`Definition`]
//! is a named, versioned list of named steps; a run executes one for a subject. Callers start
//! and steer runs through [`Engine`]; worker processes execute them with [`Worker`].
//!
//! ```text
//!  Engine::start_run ──INSERT runs/steps/events + NOTIFY──►  urumi.runs  (the run is its own
//!                                                              │           queue entry)
//!  Worker: claim due runs (FOR UPDATE SKIP LOCKED, lease) ◄─────┘
//!     └─ runner: for each unfinished step, in order:
//!          start attempt ─► run step code ─► checkpoint result (+ start next step, + events)
//!          one transaction per transition, fenced by the lease token
//!  Heartbeat renews leases; the sweeper requeues runs whose lease expired; the pruner
//!  deletes finished runs and old events past their retention ([`Retention`]).
//! ```
//!
//! See `ARCHITECTURE.md` for the guarantees and where each is enforced.

mod client;
mod db;
mod definition;
mod error;
mod failpoint;
mod insights;
mod listing;
mod metrics;
mod model;
mod outcome;
mod registry;
mod retention;
mod retry;
mod rollup;
mod schedule;
mod select;
pub mod shutdown;
mod stream;
mod text;
pub mod trace;
mod worker;

pub use client::{Engine, NewRun, Started, Who, audit_in, newest_runs_in, parse_input, run_in};
pub use definition::{
    Definition, DefinitionBuilder, Step, StepContext, StepDef, StepFuture, StepOptions,
};
pub use error::{Error, Result};
pub use failpoint::{FailAction, FailPoint, FailPoints};
pub use insights::{
    EXACT_WINDOW_HOURS, ErrorCount, MAX_WINDOW_HOURS, RUN_BUCKETS_SECONDS, RunHour, RunInsight,
    StepInsight,
};
pub use listing::{AuditEntry, EventFilter, RunFilter};
pub use metrics::{LaneQueue, Metrics, OPENMETRICS_CONTENT_TYPE, QueueGauges};
pub use model::{Event, Lane, Run, RunDetail, RunHead, RunStatus, StepRecord, StepStatus};
pub use outcome::{ResultExt, RetryClass, StepError, StepOutcome};
pub use registry::Registry;
pub use retention::{PruneReport, Retention};
pub use retry::RetryPolicy;
pub use rollup::Rolled;
pub use schedule::{Schedule, SlotOutcome};
pub use select::{Matched, RunSelector};
pub use stream::{BadCursor, EventStream, StreamCursor, StreamEvent};
pub use worker::{
    ApalisWorker, ClaimedRun, QueueError, RegisteredWorker, RunQueue, RunService, Worker,
    WorkerHandle, WorkerOptions,
};
