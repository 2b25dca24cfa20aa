//! A worker's step transitions. Each function runs inside the caller's transaction, after
//! [`fence`] has proved the worker still holds the run's lease; the runner commits once per
//! transition, so a step's result, the next step's start and their events land together.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{NewEvent, insert_events, millis, release_successors};

/// The lease a worker holds on a run.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub run_id: Uuid,
    pub token: Uuid,
    pub worker: String,
    pub subject: String,
    pub duration: Duration,
}

/// The lease was taken over (it expired and the sweeper requeued the run): this worker must
/// stop working on the run and write nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseLost;

/// What [`fence`] learned about the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fence {
    pub cancel_requested: bool,
}

/// Proves the lease is still ours, renews it and records the current step. Locks the run
/// row until the transaction ends.
pub(crate) async fn fence(
    conn: &mut PgConnection,
    lease: &Lease,
    step: Option<&str>,
) -> sqlx::Result<Result<Fence, LeaseLost>> {
    let row = sqlx::query(
        "UPDATE urumi.runs SET lease_expires_at = now() + $3 * interval '1 millisecond',
             current_step = coalesce($4, current_step), updated_at = now()
         WHERE id = $1 AND lease_token = $2
         RETURNING cancel_requested_at IS NOT NULL AS cancel_requested",
    )
    .bind(lease.run_id)
    .bind(lease.token)
    .bind(millis(lease.duration))
    .bind(step)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Fence { cancel_requested: r.get("cancel_requested") }).ok_or(LeaseLost))
}

/// What a started attempt knows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    pub attempt: u32,
    pub polls: u32,
    /// Milliseconds since the step first returned `Wait`, if it is polling.
    pub waited_ms: Option<f64>,
}

/// Marks `step` running. A poll (the step returned `Wait` last time) costs no attempt.
pub(crate) async fn start_attempt(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    is_poll: bool,
) -> sqlx::Result<Started> {
    let row = sqlx::query(
        "UPDATE urumi.steps SET status = 'running',
             attempts = attempts + CASE WHEN $3 THEN 0 ELSE 1 END,
             polls = polls + CASE WHEN $3 THEN 1 ELSE 0 END,
             started_at = coalesce(started_at, now()), next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND name = $2
         RETURNING attempts, polls,
             CASE WHEN $3 THEN extract(epoch FROM now() - wait_started_at)::float8 * 1000 END AS waited_ms",
    )
    .bind(lease.run_id)
    .bind(step)
    .bind(is_poll)
    .fetch_one(&mut *conn)
    .await?;
    let started = Started {
        attempt: row.get::<i32, _>("attempts") as u32,
        polls: row.get::<i32, _>("polls") as u32,
        waited_ms: row.get("waited_ms"),
    };
    let detail = json!({ "attempt": started.attempt, "poll": is_poll });
    insert_events(conn, &[event(lease, "step.started", Some(step), detail)]).await?;
    Ok(started)
}

fn event<'a>(lease: &'a Lease, kind: &'a str, step: Option<&'a str>, detail: Value) -> NewEvent<'a> {
    NewEvent { run_id: lease.run_id, subject: &lease.subject, kind, step, actor: &lease.worker, detail }
}

/// Checkpoints `step` as succeeded with `output`.
pub(crate) async fn complete_step(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    output: &Value,
) -> sqlx::Result<()> {
    let duration_ms: Option<f64> = sqlx::query_scalar(
        "UPDATE urumi.steps SET status = 'succeeded', output = $3, finished_at = now(), wait_kind = NULL,
             next_attempt_at = NULL, wait_started_at = NULL, updated_at = now()
         WHERE run_id = $1 AND name = $2
         RETURNING extract(epoch FROM now() - started_at)::float8 * 1000",
    )
    .bind(lease.run_id)
    .bind(step)
    .bind(output)
    .fetch_one(&mut *conn)
    .await?;
    let detail = json!({ "duration_ms": duration_ms.map(|d| d.round() as i64) });
    insert_events(conn, &[event(lease, "step.succeeded", Some(step), detail)]).await
}

/// Ends the run as succeeded with `output` and starts any run that waited for it.
pub(crate) async fn complete_run(conn: &mut PgConnection, lease: &Lease, output: &Value) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE urumi.runs SET status = 'succeeded', output = $2, finished_at = now(), current_step = NULL,
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(lease.run_id)
    .bind(output)
    .execute(&mut *conn)
    .await?;
    insert_events(conn, &[event(lease, "run.succeeded", None, json!({}))]).await?;
    release_successors(conn, lease.run_id).await?;
    Ok(())
}

/// Why a step waits.
#[derive(Debug, Clone)]
pub(crate) enum WaitKind<'a> {
    /// The step said "not yet" (no attempt consumed).
    Poll { reason: &'a str },
    /// The attempt failed retryably; the next one is due after the backoff.
    Backoff { error: &'a str, attempt: u32 },
}

/// Puts the step and the run to `waiting` until `after` from now and gives up the lease, so
/// no worker slot is held while waiting.
pub(crate) async fn schedule_wait(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    kind: &WaitKind<'_>,
    after: Duration,
) -> sqlx::Result<()> {
    let (kind_str, error) = match kind {
        WaitKind::Poll { .. } => ("poll", None),
        WaitKind::Backoff { error, .. } => ("backoff", Some(*error)),
    };
    sqlx::query(
        "UPDATE urumi.steps SET status = 'waiting', wait_kind = $3,
             next_attempt_at = now() + $4 * interval '1 millisecond',
             wait_started_at = CASE WHEN $3 = 'poll' THEN coalesce(wait_started_at, now()) ELSE NULL END,
             last_error = coalesce($5, last_error), updated_at = now()
         WHERE run_id = $1 AND name = $2",
    )
    .bind(lease.run_id)
    .bind(step)
    .bind(kind_str)
    .bind(millis(after))
    .bind(error)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE urumi.runs SET status = 'waiting', wake_at = now() + $2 * interval '1 millisecond',
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(lease.run_id)
    .bind(millis(after))
    .execute(&mut *conn)
    .await?;
    let after_ms = after.as_millis() as u64;
    let ev = match kind {
        WaitKind::Poll { reason } => {
            event(lease, "step.waiting", Some(step), json!({ "reason": reason, "after_ms": after_ms }))
        }
        WaitKind::Backoff { error, attempt } => event(
            lease,
            "step.retry_scheduled",
            Some(step),
            json!({ "error": error, "attempt": attempt, "after_ms": after_ms }),
        ),
    };
    insert_events(conn, &[ev]).await
}

/// Fails `step` and the run with `error`; later steps stay `pending` so an operator retry can
/// resume at `step`.
pub(crate) async fn fail_run(conn: &mut PgConnection, lease: &Lease, step: &str, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE urumi.steps SET status = 'failed', last_error = $3, finished_at = now(), wait_kind = NULL,
             next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND name = $2",
    )
    .bind(lease.run_id)
    .bind(step)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    let run_error = format!("step {step:?} failed: {error}");
    sqlx::query(
        "UPDATE urumi.runs SET status = 'failed', error = $2, finished_at = now(),
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(lease.run_id)
    .bind(&run_error)
    .execute(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[
            event(lease, "step.failed", Some(step), json!({ "error": error })),
            event(lease, "run.failed", None, json!({ "error": run_error })),
        ],
    )
    .await?;
    release_successors(conn, lease.run_id).await?;
    Ok(())
}

/// Ends the run as cancelled at a step boundary: unfinished steps become `skipped`.
pub(crate) async fn cancel_run(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE urumi.steps SET status = 'skipped', wait_kind = NULL, next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND status NOT IN ('succeeded', 'skipped')",
    )
    .bind(lease.run_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE urumi.runs SET status = 'cancelled', finished_at = now(), current_step = NULL,
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(lease.run_id)
    .execute(&mut *conn)
    .await?;
    insert_events(conn, &[event(lease, "run.cancelled", None, json!({ "at": "step boundary" }))]).await?;
    release_successors(conn, lease.run_id).await?;
    Ok(())
}

/// Gives the run back to the queue, due now (graceful shutdown between steps).
pub(crate) async fn release_run(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE urumi.runs SET status = 'queued', wake_at = now(), lease_owner = NULL, lease_token = NULL,
             lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(lease.run_id)
    .execute(&mut *conn)
    .await?;
    insert_events(conn, &[event(lease, "run.released", None, json!({ "reason": "worker shutdown" }))]).await?;
    super::notify_wake(conn).await
}
