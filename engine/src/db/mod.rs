//! Every SQL statement the engine runs, grouped by who runs it.
//!
//! - [`control`]: callers of [`crate::Engine`] (the API, the CLI): start, cancel, retry, rerun.
//! - [`claim`]: a worker's claim loop, lease heartbeat and sweeper.
//! - [`checkpoint`]: a worker's step transitions, each inside the caller's transaction and
//!   fenced by the run's lease token.
//! - [`read`]: queries for people and tests.
//!
//! Invariant: every statement that changes a run or a step also appends its event in the same
//! transaction (see [`insert_events`]).

pub(crate) mod checkpoint;
pub(crate) mod claim;
pub(crate) mod control;
pub(crate) mod read;
pub(crate) mod transition;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel workers LISTEN on; a payload-less NOTIFY means "a run became due now".
pub(crate) const WAKE_CHANNEL: &str = "urumi_runs";

/// An event to append.
#[derive(Debug)]
pub(crate) struct NewEvent<'a> {
    pub run_id: Uuid,
    pub subject: &'a str,
    pub kind: &'a str,
    pub step: Option<&'a str>,
    pub actor: &'a str,
    pub detail: Value,
}

/// Appends `events` in one statement.
pub(crate) async fn insert_events(
    conn: &mut PgConnection,
    events: &[NewEvent<'_>],
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let run_ids: Vec<Uuid> = events.iter().map(|e| e.run_id).collect();
    let subjects: Vec<&str> = events.iter().map(|e| e.subject).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
    let steps: Vec<Option<&str>> = events.iter().map(|e| e.step).collect();
    let actors: Vec<&str> = events.iter().map(|e| e.actor).collect();
    let details: Vec<Value> = events.iter().map(|e| e.detail.clone()).collect();
    // Borrowed arrays (`&[&str]`, nullable `step`s) bound as they are (`as _`): the
    // macro's check knows only `&[String]` for `text[]`; the SQL casts fix the types.
    sqlx::query!(
        "INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])",
        &run_ids,
        &subjects[..] as _,
        &kinds[..] as _,
        &steps[..] as _,
        &actors[..] as _,
        &details,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Wakes idle workers once the caller's transaction commits.
pub(crate) async fn notify_wake(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", WAKE_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// Unblocks runs that were waiting for any of `ended` (runs that just reached a terminal
/// status) to finish, so a superseding run starts in the same transaction that ended the
/// superseded one. Returns how many were unblocked.
pub(crate) async fn release_successors(conn: &mut PgConnection, ended: Uuid) -> sqlx::Result<u64> {
    let released = sqlx::query!(
        "UPDATE urumi.runs SET blocked_by = NULL, wake_at = now(), updated_at = now()
         WHERE blocked_by = $1 AND status = 'queued'",
        ended,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if released > 0 {
        notify_wake(conn).await?;
    }
    Ok(released)
}

/// Milliseconds as the `float8` the SQL multiplies by `interval '1 millisecond'`.
pub(crate) fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
