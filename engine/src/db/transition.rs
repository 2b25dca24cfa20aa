//! Transitions as values: the runner decides what happens to a run and returns a
//! [`Transition`]; [`apply`] is the one place that writes any of them — fence on the lease,
//! the step and run rows, the events, and the wake-ups — in one transaction. Step successes
//! that go on to the next step ([`Transition::Advance`]) are the hot path: the worker's
//! batcher groups them into one commit ([`super::checkpoint::checkpoint_batch`]).
//!
//! ```text
//!   Advance  step done → next step started, or the run succeeded       (batched)
//!   Wait     step waits: a poll, a backoff after a failure, or a transient retry
//!   Fail     step and run failed
//!   Cancel   run cancelled at a step boundary
//!   Release  run given back to the queue (with the step just done, if any), saying why
//!   Complete every step was already done: the run succeeded
//! ```

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use super::checkpoint::{Checkpoint, Lease, LeaseLost};
use super::{NewEvent, insert_events, millis, release_successors};

/// What happens to a run next, as decided by the runner.
#[derive(Debug, Clone)]
pub(crate) enum Transition {
    /// The step succeeded; the next one starts (or the run succeeds). Batched.
    Advance(Checkpoint),
    /// The step waits until `after` from now; the run waits with it, holding no worker.
    Wait {
        step: String,
        kind: WaitKind,
        after: Duration,
    },
    /// The step and the run failed with `error`.
    Fail { step: String, error: String },
    /// The run is cancelled at a step boundary; its unfinished steps are skipped.
    Cancel,
    /// The run goes back to the queue, due now; `done` is a step that succeeded just before.
    Release {
        done: Option<(String, Value)>,
        reason: ReleaseReason,
    },
    /// Every step had succeeded already: the run succeeds with `output`.
    Complete { output: Value },
}

/// Why a step waits.
#[derive(Debug, Clone)]
pub(crate) enum WaitKind {
    /// The step said "not yet" (no attempt consumed).
    Poll { reason: String },
    /// The attempt failed retryably; the next one is due after the backoff.
    Backoff { error: String, attempt: u32 },
    /// A transient error; the same attempt is tried again after the backoff.
    Transient {
        error: String,
        attempt: u32,
        retries: u32,
    },
}

/// Applies one transition that is not batched, fenced on `lease`, in its own transaction.
/// [`Transition::Advance`] is written as a batch of one.
///
/// # Errors
/// The database's; `Ok(Err(LeaseLost))` when the lease is no longer this worker's (nothing
/// was written).
pub(crate) async fn apply(
    pool: &PgPool,
    lease: &Lease,
    t: &Transition,
) -> sqlx::Result<Result<(), LeaseLost>> {
    if let Transition::Advance(cp) = t {
        let mut r = super::checkpoint::checkpoint_batch(pool, std::slice::from_ref(cp)).await?;
        return Ok(r.pop().unwrap_or(Err(LeaseLost)).map(|_| ()));
    }
    let mut tx = pool.begin().await?;
    if let Err(lost) = fence(&mut tx, lease).await? {
        return Ok(Err(lost));
    }
    match t {
        Transition::Advance(_) => unreachable!("handled above"),
        Transition::Wait { step, kind, after } => {
            schedule_wait(&mut tx, lease, step, kind, *after).await?;
        }
        Transition::Fail { step, error } => fail_run(&mut tx, lease, step, error).await?,
        Transition::Cancel => cancel_run(&mut tx, lease).await?,
        Transition::Release { done, reason } => {
            if let Some((step, output)) = done {
                complete_step(&mut tx, lease, step, output).await?;
            }
            release_run(&mut tx, lease, reason).await?;
        }
        Transition::Complete { output } => complete_run(&mut tx, lease, output).await?,
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Proves the lease is still ours and renews it. Locks the run row until the transaction
/// ends, so nothing else changes the run meanwhile.
async fn fence(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<Result<(), LeaseLost>> {
    let updated = sqlx::query!(
        "UPDATE urumi.runs SET lease_expires_at = now() + $3 * interval '1 millisecond', updated_at = now()
         WHERE id = $1 AND lease_token = $2",
        lease.run_id,
        lease.token,
        millis(lease.duration),
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(if updated == 1 { Ok(()) } else { Err(LeaseLost) })
}

/// Why a worker gave a run back to the queue.
#[derive(Debug, Clone)]
pub(crate) enum ReleaseReason {
    /// Graceful shutdown between steps.
    Shutdown,
    /// The database failed under the runner; the run is given back to be tried again.
    DatabaseError(String),
    /// This worker cannot run it (e.g. a definition step it does not know).
    CannotRun(String),
}

impl ReleaseReason {
    fn detail(&self) -> Value {
        match self {
            ReleaseReason::Shutdown => json!({ "reason": "worker shutdown" }),
            ReleaseReason::DatabaseError(e) => {
                json!({ "reason": "database error", "error": crate::text::for_postgres(e) })
            }
            ReleaseReason::CannotRun(e) => {
                json!({ "reason": "cannot run", "error": crate::text::for_postgres(e) })
            }
        }
    }
}

fn event<'a>(
    lease: &'a Lease,
    kind: &'a str,
    step: Option<&'a str>,
    detail: Value,
) -> NewEvent<'a> {
    NewEvent {
        run_id: lease.run_id,
        subject: &lease.subject,
        kind,
        step,
        actor: &lease.worker,
        detail,
    }
}

/// Checkpoints `step` as succeeded with `output`.
async fn complete_step(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    output: &Value,
) -> sqlx::Result<()> {
    let duration_ms: Option<f64> = sqlx::query_scalar!(
        r#"UPDATE urumi.steps SET status = 'succeeded', output = $3, finished_at = now(), wait_kind = NULL,
             next_attempt_at = NULL, wait_started_at = NULL, updated_at = now()
         WHERE run_id = $1 AND name = $2
         RETURNING extract(epoch FROM now() - started_at)::float8 * 1000 AS "duration_ms?""#,
        lease.run_id,
        step,
        output,
    )
    .fetch_one(&mut *conn)
    .await?;
    let detail = json!({ "duration_ms": duration_ms.map(|d| d.round() as i64) });
    insert_events(conn, &[event(lease, "step.succeeded", Some(step), detail)]).await
}

/// Ends the run as succeeded with `output` and starts any run that waited for it.
async fn complete_run(conn: &mut PgConnection, lease: &Lease, output: &Value) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'succeeded', output = $2, finished_at = now(),              lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
        lease.run_id,
        output,
    )
    .execute(&mut *conn)
    .await?;
    insert_events(conn, &[event(lease, "run.succeeded", None, json!({}))]).await?;
    release_successors(conn, lease.run_id).await?;
    Ok(())
}

/// Puts the step and the run to `waiting` until `after` from now and gives up the lease, so
/// no worker slot is held while waiting.
async fn schedule_wait(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    kind: &WaitKind,
    after: Duration,
) -> sqlx::Result<()> {
    let (kind_str, error, reason) = match kind {
        WaitKind::Poll { reason } => ("poll", None, Some(reason.as_str())),
        WaitKind::Backoff { error, .. } => ("backoff", Some(error.as_str()), None),
        WaitKind::Transient { error, .. } => ("transient", Some(error.as_str()), None),
    };
    // `unchanged`: the step polled again and still waits for the same reason — a check, not
    // a state change, so it writes no event (the step's `polls` counts it).
    let unchanged: bool = sqlx::query_scalar!(
        r#"WITH old AS (
             SELECT wait_kind, wait_reason FROM urumi.steps WHERE run_id = $1 AND name = $2
         )
         UPDATE urumi.steps s SET status = 'waiting', wait_kind = $3,
             next_attempt_at = now() + $4 * interval '1 millisecond',
             wait_started_at = CASE WHEN $3 = 'poll' THEN coalesce(s.wait_started_at, now()) ELSE NULL END,
             transient_since = CASE WHEN $3 = 'transient' THEN coalesce(s.transient_since, now()) END,
             transient_retries = CASE WHEN $3 = 'transient' THEN s.transient_retries + 1 ELSE 0 END,
             last_error = coalesce($5, s.last_error),
             wait_reason = CASE WHEN $3 = 'poll' THEN $6 ELSE s.wait_reason END, updated_at = now()
         FROM old WHERE s.run_id = $1 AND s.name = $2
         RETURNING $3 = 'poll' AND old.wait_kind IS NOT DISTINCT FROM 'poll'
             AND old.wait_reason IS NOT DISTINCT FROM $6 AS "unchanged!""#,
        lease.run_id,
        step,
        kind_str,
        millis(after),
        error,
        reason,
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'waiting', wake_at = now() + $2 * interval '1 millisecond',
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
        lease.run_id,
        millis(after),
    )
    .execute(&mut *conn)
    .await?;
    if unchanged {
        return Ok(());
    }
    let after_ms = after.as_millis() as u64;
    let ev = match kind {
        WaitKind::Poll { reason } => event(
            lease,
            "step.waiting",
            Some(step),
            json!({ "reason": reason, "after_ms": after_ms }),
        ),
        WaitKind::Backoff { error, attempt } => event(
            lease,
            "step.retry_scheduled",
            Some(step),
            json!({ "error": error, "attempt": attempt, "after_ms": after_ms, "class": "failure" }),
        ),
        WaitKind::Transient {
            error,
            attempt,
            retries,
        } => event(
            lease,
            "step.retry_scheduled",
            Some(step),
            json!({
                "error": error, "attempt": attempt, "after_ms": after_ms,
                "class": "transient", "transient_retries": retries,
            }),
        ),
    };
    insert_events(conn, &[ev]).await
}

/// Fails `step` and the run with `error`; later steps stay `pending` so an operator retry can
/// resume at `step`.
async fn fail_run(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.steps SET status = 'failed', last_error = $3, finished_at = now(), wait_kind = NULL,
             next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND name = $2",
        lease.run_id,
        step,
        error,
    )
    .execute(&mut *conn)
    .await?;
    let run_error = format!("step {step:?} failed: {error}");
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'failed', error = $2, finished_at = now(),
             lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
        lease.run_id,
        &run_error,
    )
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
async fn cancel_run(conn: &mut PgConnection, lease: &Lease) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.steps SET status = 'skipped', wait_kind = NULL, next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND status NOT IN ('succeeded', 'skipped')",
        lease.run_id,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'cancelled', finished_at = now(),              lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
        lease.run_id,
    )
    .execute(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[event(
            lease,
            "run.cancelled",
            None,
            json!({ "at": "step boundary" }),
        )],
    )
    .await?;
    release_successors(conn, lease.run_id).await?;
    Ok(())
}

/// Gives the run back to the queue, due now, saying why.
async fn release_run(
    conn: &mut PgConnection,
    lease: &Lease,
    reason: &ReleaseReason,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'queued', wake_at = now(), lease_owner = NULL, lease_token = NULL,
             lease_expires_at = NULL, updated_at = now()
         WHERE id = $1",
        lease.run_id,
    )
    .execute(&mut *conn)
    .await?;
    insert_events(conn, &[event(lease, "run.released", None, reason.detail())]).await?;
    super::notify_wake(conn).await
}

#[cfg(test)]
mod tests {
    use super::ReleaseReason;

    #[test]
    fn a_release_says_its_real_reason() {
        assert_eq!(
            ReleaseReason::Shutdown.detail()["reason"],
            "worker shutdown"
        );
        let db = ReleaseReason::DatabaseError("connection reset\0".into()).detail();
        assert_eq!(db["reason"], "database error");
        assert_eq!(db["error"], "connection reset\u{FFFD}");
        assert_eq!(
            ReleaseReason::CannotRun("no step x".into()).detail()["reason"],
            "cannot run"
        );
    }
}
