//! Read-only queries: a run with its steps, runs of a subject, events after an id.

use sqlx::PgPool;
use uuid::Uuid;

use crate::model::{Event, Run, StepRecord};

/// One run.
pub(crate) async fn run(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Run>> {
    sqlx::query_as::<_, Run>("SELECT * FROM urumi.runs WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A run's steps in order.
pub(crate) async fn steps<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    run_id: Uuid,
) -> sqlx::Result<Vec<StepRecord>> {
    sqlx::query_as::<_, StepRecord>("SELECT * FROM urumi.steps WHERE run_id = $1 ORDER BY position")
        .bind(run_id)
        .fetch_all(exec)
        .await
}

/// A subject's runs, newest first.
pub(crate) async fn runs_for_subject(pool: &PgPool, subject: &str) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as::<_, Run>(
        "SELECT * FROM urumi.runs WHERE subject = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(subject)
    .fetch_all(pool)
    .await
}

/// A run's events in order.
pub(crate) async fn events_for_run(pool: &PgPool, run_id: Uuid) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as::<_, Event>("SELECT * FROM urumi.events WHERE run_id = $1 ORDER BY id")
        .bind(run_id)
        .fetch_all(pool)
        .await
}
