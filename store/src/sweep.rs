//! The fleet drift sweep: a worker's `store.sweep@1` run, started on the worker's
//! `[sweep] cron`, previews a repair of every ready store (server-side apply `dryRun=All`,
//! the very plan `store.preview@1` computes) and lists the stores whose cluster objects
//! drifted from their desired state — missing or changed. When its input says `repair`, it
//! also starts a `store.repair` run for each drifted store, in the bulk lane. These are the
//! run's input and output, shared by the worker that writes them and the API and CLI that
//! read them (`urumictl stores drift`).
//!
//! ```text
//!  schedule (worker `[sweep] cron`, input {repair} from `[sweep] repair`)
//!    ─► store.sweep@1 ─ sweep: page the ready stores ─► per store: repair preview (dry run)
//!         ─► drifted? ─► listed (objects "Kind/name") ─► repair? start store.repair (bulk lane)
//!  urumictl stores drift ─► the newest succeeded store.sweep run's output
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The definition name.
pub const SWEEP: &str = "store.sweep";
/// The version this build declares.
pub const SWEEP_VERSION: i32 = 1;
/// The one subject of sweep runs (one sweep at a time).
pub const SWEEP_SUBJECT: &str = "fleet:sweep";
/// The actor recorded on the repair runs a sweep starts (and the owner of their bulk work).
pub const SWEEP_ACTOR: &str = "system:sweep";

/// The input of `store.sweep@1`: whether drifted stores are repaired, decided when the run
/// was started (the worker's `[sweep] repair`), so the run's record says what it was told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepInput {
    /// Start a `store.repair` run for each drifted store; else only list them.
    #[serde(default)]
    pub repair: bool,
}

/// The output of `store.sweep@1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepOutput {
    /// The input's `repair`: whether drifted stores were to be repaired.
    pub repair: bool,
    /// How many ready stores were previewed.
    pub checked: usize,
    /// The stores whose objects drifted, newest store first (the order the sweep pages them).
    pub drifted: Vec<DriftedStore>,
    /// The stores whose preview could not be computed (or whose repair could not start).
    pub failed: Vec<FailedStore>,
}

/// One drifted store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftedStore {
    pub store_id: Uuid,
    pub slug: String,
    /// `Kind/name` of each object a repair would create (missing) or update (changed).
    pub objects: Vec<String>,
    /// The `store.repair` run started for it (input `repair`); `None` when not repairing,
    /// or when the store already had an active run (see `note`).
    pub repair_run_id: Option<Uuid>,
    /// Why no repair was started although asked (the store was busy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One store the sweep could not judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedStore {
    pub store_id: Uuid,
    pub error: String,
}
