//! An operation and its targets as stored and shown; closed sets are enums.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::select::Selector;

urumi_engine::text_enum!(
    /// What an operation does to each target.
    Action {
        /// Resume the failed run at its failed step (the run itself, in the bulk lane).
        Retry = "retry",
        /// Cancel the run (at once if no worker holds it, else at its next step boundary).
        Cancel = "cancel",
        /// A new run of the same definition version and input; with `from_step`, the steps
        /// before it carry over the run's checkpoints.
        Rerun = "rerun",
        /// Re-apply the target store's desired state (`store.repair`).
        Repair = "repair",
        /// Delete the target store and its namespace (`store.delete`); needs `admin`.
        Delete = "delete",
        /// Suspend the target store (`store.suspend`); a suspended store is skipped.
        Suspend = "suspend",
        /// Resume the target store (`store.resume`); a ready store is skipped.
        Resume = "resume",
        /// Back the target store up (`store.backup`); a store that is not ready is skipped.
        Backup = "backup",
        /// Move the target store to the operation's plan (`store.resize`); a store already on
        /// it is skipped, one whose usage would not fit it is skipped saying why.
        Resize = "resize",
        /// Upgrade the target store onto the operation's channel, or its own
        /// (`store.upgrade`, with automatic rollback); a store already on the channel's
        /// release is skipped.
        Upgrade = "upgrade",
    }
);

impl Action {
    /// True for actions that destroy what a target is (an API asks for `admin` for them).
    #[must_use]
    pub fn deletes(self) -> bool {
        self == Action::Delete
    }
    /// True for actions on a store (the target run's subject must be a live store).
    #[must_use]
    pub fn on_store(self) -> bool {
        matches!(
            self,
            Action::Repair
                | Action::Delete
                | Action::Suspend
                | Action::Resume
                | Action::Backup
                | Action::Resize
                | Action::Upgrade
        )
    }
}

urumi_engine::text_enum!(
    /// Where an operation is in its life.
    OperationState {
        /// Starting targets as slots free up.
        Running = "running",
        /// Paused by an operator: no target starts; started ones run to their end.
        Paused = "paused",
        /// Its canary finished well and it waits for an operator's approval to go on.
        AwaitingApproval = "awaiting_approval",
        /// Every target was acted on (some may have failed within the budget, or been skipped).
        Succeeded = "succeeded",
        /// Stopped by itself: the failure budget was exceeded or the canary failed.
        Stopped = "stopped",
        /// Cancelled by an operator: no more targets start.
        Cancelled = "cancelled",
    }
);

impl OperationState {
    /// True once the operation starts no more targets.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(
            self,
            OperationState::Succeeded | OperationState::Stopped | OperationState::Cancelled
        )
    }
}

urumi_engine::text_enum!(
    /// Where one target is.
    TargetState {
        /// Not started yet.
        Pending = "pending",
        /// Its child run is under way.
        Running = "running",
        /// The action succeeded (its child run succeeded, or the cancel was accepted).
        Succeeded = "succeeded",
        /// Its child run failed or was cancelled.
        Failed = "failed",
        /// Not acted on, with the reason (it no longer qualified, or the operation stopped).
        Skipped = "skipped",
    }
);

/// What a canary's success leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryThen {
    /// Wait for an operator's approval.
    Pause,
    /// Go on by itself.
    Continue,
}

impl CanaryThen {
    fn as_str(self) -> &'static str {
        match self {
            CanaryThen::Pause => "pause",
            CanaryThen::Continue => "continue",
        }
    }
    pub(crate) fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            Some("pause") => Some(CanaryThen::Pause),
            Some("continue") => Some(CanaryThen::Continue),
            _ => None,
        }
    }
    pub(crate) fn stored(c: Option<CanaryThen>) -> Option<&'static str> {
        c.map(Self::as_str)
    }
}

/// A number of targets, given as a count or a percentage of the matched ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// This many targets.
    Count(u32),
    /// This percentage (1–100) of the matched targets, rounded up.
    Percent(u32),
}

impl Budget {
    /// The budget in targets for `matched` targets.
    #[must_use]
    pub fn of(self, matched: usize) -> usize {
        match self {
            Budget::Count(n) => n as usize,
            Budget::Percent(p) => (matched * p as usize).div_ceil(100),
        }
    }
}

/// The first targets, acted on before the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// How many.
    pub size: Budget,
    /// What happens when they all succeeded (any failure stops the operation).
    pub then: CanaryThen,
}

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct Spec {
    pub action: Action,
    /// For [`Action::Rerun`]: the step to rerun from (`None`: from scratch).
    pub from_step: Option<String>,
    /// For [`Action::Resize`] (required): the plan every target store moves to.
    pub plan: Option<String>,
    /// For [`Action::Upgrade`]: the release channel (`None`: each store's own).
    pub channel: Option<String>,
    pub selector: Selector,
    /// Targets under way at once.
    pub max_concurrency: u32,
    pub canary: Option<Canary>,
    /// Stop once more than this many targets failed.
    pub failure_budget: Option<Budget>,
}

/// How many targets are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub matched: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// An operation as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub id: Uuid,
    /// The parent run carrying it out.
    pub run_id: Uuid,
    pub action: Action,
    pub from_step: Option<String>,
    /// A resize's plan.
    pub plan: Option<String>,
    /// An upgrade's channel (`None`: each store's own).
    pub channel: Option<String>,
    /// The selector as it was sent.
    pub selector: serde_json::Value,
    pub max_concurrency: i32,
    /// Targets in the canary (0: none).
    pub canary_size: i32,
    pub canary_then: Option<CanaryThen>,
    pub canary_passed: bool,
    /// Failures tolerated before it stops (`None`: no budget).
    pub max_failures: Option<i32>,
    pub state: OperationState,
    /// Why it stopped, paused or was cancelled.
    pub reason: Option<String>,
    pub progress: Progress,
    /// Whose work its children are (the lane round robin's key).
    pub owner: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One target of an operation.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Its place in the operation (targets start in this order).
    pub position: i32,
    /// The run the selector matched.
    pub run_id: Uuid,
    pub subject: String,
    pub state: TargetState,
    /// The run started for it.
    pub child_run_id: Option<Uuid>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}
