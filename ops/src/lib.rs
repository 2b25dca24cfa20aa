//! Bulk operations: an operator's one request — retry, cancel, rerun from a step, repair or
//! delete — over every run a selector matches, carried out by a durable parent run.
//!
//! ```text
//!  API: create ─► selector ─► targets (each its subject's newest run), frozen in
//!       urumi.operation_targets, + the parent run `operation@1` — one transaction
//!  worker: parent run's one step `drive`, a poll every POLL (engine Wait, holds no slot):
//!       refresh running targets from their child runs ─► failure budget? stop
//!       ─► canary done? pause for approval / go on ─► start pending targets up to
//!       max_concurrency, each in its own savepoint: act (child run in the bulk lane, owned
//!       by the operation's owner) or skip with the reason the engine gave
//!       ─► nothing pending or running: done
//!  API: pause / resume / approve / cancel ─► operations.state (+ audit), read at the next poll
//! ```
//!
//! # Guarantees
//! - Targets are fixed when the operation is created: what the operator previewed (dry run)
//!   is what it acts on. A target that no longer qualifies when its turn comes (retried by
//!   someone else, store deleted, a newer run) is skipped with the reason.
//! - Starting a target and recording it are one transaction, and every poll recomputes from
//!   the tables: a worker killed mid-poll starts no target twice and loses none.
//! - Children run in the bulk lane under the operation's owner, so customers' interactive
//!   runs are claimed first and two owners' operations share workers (see the engine's lanes).

mod db;
mod definition;
mod drive;
mod error;
mod model;
mod plan;
mod select;
mod service;

pub use definition::{
    NAME, OperationInput, VERSION, declared, definition, subject, with_code, with_declared,
};
pub use error::Error;
pub use model::{
    Action, Budget, Canary, CanaryThen, Operation, OperationState, Progress, Spec, Target,
    TargetState,
};
pub use plan::{ClusterPlan, PlanState};
pub use select::{Preview, PreviewTarget, Selector};
pub use service::{Control, MAX_CONCURRENCY, MAX_TARGETS, Ops};
