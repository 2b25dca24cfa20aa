//! The one error type of `urumi-ops`' boundary: each variant is something the caller can act
//! on (the API maps them to statuses in one place).

use uuid::Uuid;

/// What asking for an operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed: `field` (a JSON pointer) says where.
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    /// The selector matches more targets than one operation may have.
    #[error(
        "the selector matches more than {max} runs; narrow it (e.g. created_after/created_before)"
    )]
    TooManyTargets { max: usize },
    /// No such operation.
    #[error("operation {0} not found")]
    NotFound(Uuid),
    /// The operation cannot do that in its current state.
    #[error("operation {id} is {state}: {reason}")]
    InvalidState {
        id: Uuid,
        state: String,
        reason: String,
    },
    /// The engine refused (e.g. the parent run could not start).
    #[error(transparent)]
    Engine(#[from] urumi_engine::Error),
    /// Postgres failed or could not be reached.
    #[error("database error")]
    Database(#[from] sqlx::Error),
}
