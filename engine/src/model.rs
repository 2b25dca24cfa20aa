//! The engine's records as callers see them: runs, step checkpoints and events.
//!
//! ```text
//!  run:   queued ──claim──► running ──all steps done──► succeeded
//!           ▲                 │  │ └──fatal / attempts exhausted / deadline──► failed
//!           │                 │  └──cancel seen at a step boundary──► cancelled
//!           │   wake_at due   ▼
//!           └──────────── waiting   (backing off or polling; holds no worker)
//!  failed ──operator retry──► queued   (resumes at the failed step)
//!
//!  step:  pending ──► running ──► succeeded
//!                       │  ├────► waiting ──► running …   (poll or backoff)
//!                       │  └────► failed
//!                       └ (run cancelled) ──► skipped
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// A closed set of values stored as text: the enum (serde `snake_case`), `ALL`, `as_str`,
/// `Display` and `FromStr` (an unknown value is an error naming the type). Exported for the
/// crates beside the engine (`urumi-ops`), which need `serde` as a dependency.
#[macro_export]
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value as stored and shown.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }
    };
}

crate::text_enum!(
    /// Where a run is in its life.
    RunStatus {
        /// Waiting for a worker.
        Queued = "queued",
        /// A worker holds its lease and is running a step.
        Running = "running",
        /// Backing off or polling; due again at `wake_at`.
        Waiting = "waiting",
        /// Every step succeeded.
        Succeeded = "succeeded",
        /// A step failed for good; an operator may retry.
        Failed = "failed",
        /// Cancelled at a step boundary.
        Cancelled = "cancelled",
    }
);

crate::text_enum!(
    /// Where a step is in its life.
    StepStatus {
        /// Not started.
        Pending = "pending",
        /// An attempt is running.
        Running = "running",
        /// Backing off after a failure or polling until ready.
        Waiting = "waiting",
        /// Done; never run again for this run.
        Succeeded = "succeeded",
        /// Failed for good.
        Failed = "failed",
        /// Not run because the run was cancelled.
        Skipped = "skipped",
    }
);

crate::text_enum!(
    /// A run's priority lane: workers claim interactive runs first, then scheduled ones, then
    /// bulk ones round robin across owners, and bulk runs never hold every slot
    /// ([`crate::WorkerOptions::bulk_share_percent`]).
    Lane {
        /// Started by a person for one subject (an API request): the latency-sensitive lane.
        Interactive = "interactive",
        /// Started by a schedule.
        Scheduled = "scheduled",
        /// Started by a bulk operation (one of its targets).
        Bulk = "bulk",
    }
);

impl RunStatus {
    /// True while the run may still make progress.
    #[must_use]
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: Uuid,
    pub definition: String,
    pub version: i32,
    pub subject: String,
    pub input: Value,
    pub output: Option<Value>,
    #[sqlx(try_from = "String")]
    pub status: RunStatusColumn,
    pub blocked_by: Option<Uuid>,
    pub wake_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub cancel_requested_by: Option<String>,
    pub error: Option<String>,
    pub rerun_of: Option<Uuid>,
    /// Steps carried over from `rerun_of` (a rerun from a named step): the first this many.
    pub carried_steps: i32,
    #[sqlx(try_from = "String")]
    pub lane: LaneColumn,
    /// Whose work it is: the bulk lane's round-robin key.
    pub owner: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Run {
    /// The run's status.
    #[must_use]
    pub fn status(&self) -> RunStatus {
        self.status.0
    }
}

/// A run without its input, output, lease and cancel request: what a list of subjects shows
/// beside each one ([`crate::Engine::newest_runs`]).
#[derive(Debug, Clone, Serialize)]
pub struct RunHead {
    pub id: Uuid,
    pub definition: String,
    pub version: i32,
    pub subject: String,
    pub status: RunStatusColumn,
    pub error: Option<String>,
    pub rerun_of: Option<Uuid>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Run> for RunHead {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id,
            definition: r.definition.clone(),
            version: r.version,
            subject: r.subject.clone(),
            status: r.status,
            error: r.error.clone(),
            rerun_of: r.rerun_of,
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

impl RunHead {
    /// The run's status.
    #[must_use]
    pub fn status(&self) -> RunStatus {
        self.status.0
    }
}

/// A [`RunStatus`] read from a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RunStatusColumn(pub RunStatus);

impl TryFrom<String> for RunStatusColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map(RunStatusColumn)
    }
}

/// A [`Lane`] read from a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LaneColumn(pub Lane);

impl TryFrom<String> for LaneColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map(LaneColumn)
    }
}

/// A [`StepStatus`] read from a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StepStatusColumn(pub StepStatus);

impl TryFrom<String> for StepStatusColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map(StepStatusColumn)
    }
}

/// The column types decode from `text` and refuse a value that names no status, so
/// `query_as!` can name them (`status AS "status: RunStatusColumn"`).
macro_rules! text_column {
    ($column:ident) => {
        impl sqlx::Type<sqlx::Postgres> for $column {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $column {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                Ok(Self(s.parse()?))
            }
        }
    };
}

text_column!(RunStatusColumn);
text_column!(LaneColumn);
text_column!(StepStatusColumn);

/// A step's checkpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StepRecord {
    pub run_id: Uuid,
    pub name: String,
    pub position: i32,
    #[sqlx(try_from = "String")]
    pub status: StepStatusColumn,
    /// `poll`, `backoff` or `transient` while waiting.
    pub wait_kind: Option<String>,
    pub attempts: i32,
    pub polls: i32,
    /// Why the step last waited (its latest poll's reason); kept after it goes on.
    pub wait_reason: Option<String>,
    /// Retries after transient errors in the current streak (they cost no attempt).
    pub transient_retries: i32,
    /// Attempts that ended with no outcome: the worker died or lost its lease mid-step.
    pub interrupted: i32,
    /// Time spent waiting (polls, backoffs), summed over its waits, in milliseconds.
    pub waited_ms: i64,
    pub output: Option<Value>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub wait_started_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl StepRecord {
    /// The step's status.
    #[must_use]
    pub fn status(&self) -> StepStatus {
        self.status.0
    }
    /// How long the step ran from its first start to its end, if it ended.
    #[must_use]
    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.finished_at? - self.started_at?).num_milliseconds())
    }
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub run_id: Option<Uuid>,
    pub subject: Option<String>,
    pub kind: String,
    pub step: Option<String>,
    pub actor: String,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

/// A run with its steps in order.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub steps: Vec<StepRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_strings() {
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), *s);
        }
        assert!("Running".parse::<RunStatus>().is_err());
    }
}
