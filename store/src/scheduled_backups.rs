//! Scheduled backups: for each plan whose `backups.schedule` is set, the worker starts a
//! `store.scheduled_backups@1` run on that cron (schedule `store-backups-<plan>`; the
//! engine's schedule slots make sure two workers never start the same slot). Its one step
//! starts a `store.backup` run (reason `scheduled`) for every ready store on the plan, in
//! the bulk lane, so customers' own requests keep their share of the workers.
//!
//! ```text
//!  schedule store-backups-<plan> (plan's backups.schedule) ─► store.scheduled_backups@1 {plan}
//!    ─ start: every ready store on the plan ─► backup_in (bulk lane, actor schedule:<run>)
//!        busy (another active run) or refused ─► skipped, with why
//! ```
//!
//! A re-run of the step (after a crash) skips the stores this run already started a backup
//! for: their backups' `requested_by` is the run's actor.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The definition name.
pub const SCHEDULED_BACKUPS: &str = "store.scheduled_backups";
/// The version this build declares.
pub const SCHEDULED_BACKUPS_VERSION: i32 = 1;

/// The subject of a plan's scheduled backup runs (one at a time per plan).
#[must_use]
pub fn subject(plan: &str) -> String {
    format!("fleet:backups:{plan}")
}

/// The schedule name of a plan's backups.
#[must_use]
pub fn schedule_name(plan: &str) -> String {
    format!("store-backups-{plan}")
}

/// The actor of the backups run `run` starts (and their `requested_by`).
#[must_use]
pub fn actor(run: Uuid) -> String {
    format!("schedule:{run}")
}

/// The input of `store.scheduled_backups@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledBackupsInput {
    /// The plan whose ready stores are backed up.
    pub plan: String,
}

/// The output of `store.scheduled_backups@1`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledBackupsOutput {
    pub plan: String,
    /// The backups started, one per store.
    pub started: Vec<StartedBackup>,
    /// The ready stores not backed up, with why (another run active, …).
    pub skipped: Vec<SkippedStore>,
}

/// A backup a scheduled run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedBackup {
    pub store_id: Uuid,
    pub backup_id: Uuid,
    pub run_id: Uuid,
}

/// A store a scheduled run skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedStore {
    pub store_id: Uuid,
    pub why: String,
}
