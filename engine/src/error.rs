//! The engine's one error type at its public boundary (`urumi_engine::Error`).
//!
//! Each variant is something a caller can act on: the API maps them to HTTP statuses in one
//! place (`Conflict` → 409, `NotFound` → 404, `Invalid*` → 422, `Database` → 503/500).

use uuid::Uuid;

/// `Result` with the engine's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when asking the engine to do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The subject already has an active run; nothing was written.
    #[error("subject {subject:?} already has an active run {active_run}")]
    Conflict { subject: String, active_run: Uuid },
    /// No registered definition has this name (and version, when one was given).
    #[error("unknown workflow definition {name:?}{}", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownDefinition { name: String, version: Option<i32> },
    /// The run's input does not match what the definition expects.
    #[error("invalid input for {definition:?}: {reason}")]
    InvalidInput { definition: String, reason: String },
    /// A definition was built wrongly (no steps, a duplicated step name, …).
    #[error("invalid workflow definition {name:?}: {reason}")]
    InvalidDefinition { name: String, reason: String },
    /// A schedule was built wrongly (a bad name or cron expression).
    #[error("invalid schedule {name:?}: {reason}")]
    InvalidSchedule { name: String, reason: String },
    /// The run does not exist.
    #[error("run {0} not found")]
    NotFound(Uuid),
    /// The operation does not apply to the run in its current status (e.g. cancel a finished run).
    #[error("run {run} is {status}: {reason}")]
    InvalidState {
        run: Uuid,
        status: String,
        reason: String,
    },
    /// A newer run exists for the run's subject: an older run is history and is never
    /// resumed or re-run over what came after it.
    #[error(
        "run {run} is not the newest run of {subject:?} (run {newer} is): only the newest can be retried or re-run"
    )]
    Superseded {
        run: Uuid,
        subject: String,
        newer: Uuid,
    },
    /// A rerun named a step its definition does not have.
    #[error("{definition} has no step {step:?}; its steps are {}", steps.join(", "))]
    UnknownStep {
        definition: String,
        step: String,
        steps: Vec<String>,
    },
    /// A rerun from a step would carry over a step that did not succeed in the run it
    /// re-runs: rerun from that step (or an earlier one) instead.
    #[error(
        "step {step:?} did not succeed in run {run} (it is {status}): rerun from it or an earlier step"
    )]
    NotCarried {
        run: Uuid,
        step: String,
        status: String,
    },
    /// Postgres failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// True for errors caused by the caller's request rather than by the system.
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Error::Database(_))
    }
}
