//! Read-only queries: a run with its steps, runs of a subject, pages of runs and events.

use sqlx::PgPool;
use uuid::Uuid;

use crate::model::{Event, Run, StepRecord};

/// One run.
pub(crate) async fn run<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> sqlx::Result<Option<Run>> {
    sqlx::query_as::<_, Run>("SELECT * FROM urumi.runs WHERE id = $1")
        .bind(id)
        .fetch_optional(exec)
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

/// Up to `limit` runs matching `f`, newest first.
pub(crate) async fn runs_page(
    pool: &PgPool,
    f: &crate::listing::RunFilter,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(
        "SELECT * FROM urumi.runs
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR definition = $2)
           AND ($3::text IS NULL OR subject = $3) AND id < $4
         ORDER BY id DESC LIMIT $5",
    )
    .bind(f.status.map(crate::model::RunStatus::as_str))
    .bind(f.definition.as_deref())
    .bind(f.subject.as_deref())
    // No cursor: before the largest UUID, so `id < $4` always drives the index scan.
    .bind(f.before.unwrap_or(Uuid::max()))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Up to `limit` events matching `f`, newest first.
pub(crate) async fn events_page(
    pool: &PgPool,
    f: &crate::listing::EventFilter,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(
        "SELECT id, run_id, subject, kind, step, actor, detail, created_at FROM urumi.events
         WHERE ($1::text IS NULL OR subject = $1) AND ($2::uuid IS NULL OR run_id = $2)
           AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR kind = $4)
           AND id < $5
         ORDER BY id DESC LIMIT $6",
    )
    .bind(f.subject.as_deref())
    .bind(f.run_id)
    .bind(f.actor.as_deref())
    .bind(f.kind.as_deref())
    // No cursor: below i64::MAX, so `id < $5` always drives the index scan.
    .bind(f.before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await
}
