//! Statements behind [`crate::Engine`]: start, cancel, retry and rerun runs.
//!
//! Each takes the caller's connection so it can join a larger transaction (the API writes a
//! store row, its run, the audit entry and the wake-up in one commit). One active run per
//! subject is enforced twice: by an advisory lock on the subject while deciding, and by the
//! `runs_one_active_per_subject` unique index as the last word.

use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{NewEvent, insert_events, notify_wake, release_successors};
use crate::definition::Definition;
use crate::error::{Error, Result};
use crate::model::{Lane, RunStatus};

/// Who starts or steers a run: the actor recorded in its events, the lane it is claimed in
/// and whose work it is (the bulk lane's round-robin key; the actor when empty).
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// Recorded in the events.
    pub actor: &'a str,
    /// The lane the run is (re)queued in.
    pub lane: Lane,
    /// The owner; the actor when empty.
    pub owner: &'a str,
}

impl<'a> Who<'a> {
    /// `actor` in `lane`, owning the work as `owner` (the actor when empty).
    #[must_use]
    pub fn new(actor: &'a str, lane: Lane, owner: &'a str) -> Self {
        Self { actor, lane, owner }
    }
    /// A person acting on one run: the interactive lane, owned by the actor.
    #[must_use]
    pub fn interactive(actor: &'a str) -> Self {
        Self::new(actor, Lane::Interactive, "")
    }
    fn owner(&self) -> &'a str {
        if self.owner.is_empty() {
            self.actor
        } else {
            self.owner
        }
    }
}

/// What [`start_run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The new run.
    pub run_id: Uuid,
    /// Set when the new run waits for a superseded run to stop at its next step boundary.
    pub blocked_by: Option<Uuid>,
    /// The active run this one superseded (cancelled now, or at its next step boundary).
    pub superseded: Option<Uuid>,
}

async fn lock_subject(conn: &mut PgConnection, subject: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7207))",
        subject,
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct ActiveRun {
    id: Uuid,
    definition: String,
    status: RunStatus,
}

async fn active_run(conn: &mut PgConnection, subject: &str) -> Result<Option<ActiveRun>> {
    let row = sqlx::query!(
        "SELECT id, definition, status FROM urumi.runs
         WHERE subject = $1 AND status IN ('queued', 'running', 'waiting') AND blocked_by IS NULL
         FOR UPDATE",
        subject,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| ActiveRun {
        id: r.id,
        definition: r.definition,
        status: r.status.parse().unwrap_or(RunStatus::Running),
    }))
}

/// Inserts a run of `def` for `subject` with its pending steps and its `run.created` event.
///
/// # Errors
/// [`Error::Conflict`] when the subject has an active run this definition may not supersede,
/// or already has a run waiting to supersede it.
pub(crate) async fn start_run(
    conn: &mut PgConnection,
    def: &Definition,
    subject: &str,
    input: &Value,
    who: &Who<'_>,
    rerun_of: Option<Uuid>,
) -> Result<Started> {
    let actor = who.actor;
    lock_subject(conn, subject).await?;
    let mut blocked_by = None;
    let mut superseded = None;
    if let Some(active) = active_run(conn, subject).await? {
        if !def.supersedes(&active.definition) {
            return Err(Error::Conflict {
                subject: subject.to_owned(),
                active_run: active.id,
            });
        }
        let waiting: Option<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM urumi.runs WHERE subject = $1 AND status = 'queued' AND blocked_by IS NOT NULL",
            subject,
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(waiting) = waiting {
            return Err(Error::Conflict {
                subject: subject.to_owned(),
                active_run: waiting,
            });
        }
        superseded = Some(active.id);
        if active.status == RunStatus::Running {
            request_cancel(conn, active.id, subject, actor, "superseded").await?;
            blocked_by = Some(active.id);
        } else {
            cancel_now(conn, active.id, subject, actor, "superseded").await?;
        }
    }

    let run_id = Uuid::now_v7();
    // The caller's trace (an API request's span), which the worker's spans will join.
    let trace_context = crate::trace::current_traceparent();
    sqlx::query!(
        "INSERT INTO urumi.runs (id, definition, version, subject, input, blocked_by, rerun_of, created_by, trace_context, lane, owner)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        run_id,
        def.name(),
        def.version(),
        subject,
        input,
        blocked_by,
        rerun_of,
        actor,
        trace_context,
        who.lane.as_str(),
        who.owner(),
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_to_conflict(e, subject))?;
    let names: Vec<&str> = def.steps().iter().map(|s| s.name.as_str()).collect();
    let positions: Vec<i32> = (0..names.len() as i32).collect();
    // `&[&str]` bound as it is (`as _`): the macro's check knows only `&[String]`.
    sqlx::query!(
        "INSERT INTO urumi.steps (run_id, name, position)
         SELECT $1, * FROM unnest($2::text[], $3::int[])",
        run_id,
        &names[..] as _,
        &positions,
    )
    .execute(&mut *conn)
    .await?;
    let detail = json!({
        "definition": def.name(), "version": def.version(),
        "blocked_by": blocked_by, "superseded": superseded, "rerun_of": rerun_of,
    });
    insert_events(
        conn,
        &[NewEvent {
            run_id,
            subject,
            kind: "run.created",
            step: None,
            actor,
            detail,
        }],
    )
    .await?;
    if blocked_by.is_none() {
        notify_wake(conn).await?;
    }
    Ok(Started {
        run_id,
        blocked_by,
        superseded,
    })
}

fn unique_to_conflict(e: sqlx::Error, subject: &str) -> Error {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        // Only reachable if the advisory lock was bypassed by hand-written SQL.
        return Error::Conflict {
            subject: subject.to_owned(),
            active_run: Uuid::nil(),
        };
    }
    Error::Database(e)
}

async fn request_cancel(
    conn: &mut PgConnection,
    run_id: Uuid,
    subject: &str,
    actor: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE urumi.runs SET cancel_requested_at = coalesce(cancel_requested_at, now()),
             cancel_requested_by = coalesce(cancel_requested_by, $2), updated_at = now()
         WHERE id = $1",
        run_id,
        actor,
    )
    .execute(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[NewEvent {
            run_id,
            subject,
            kind: "run.cancel_requested",
            step: None,
            actor,
            detail: json!({ "reason": reason }),
        }],
    )
    .await?;
    Ok(())
}

/// Cancels a run no worker holds: unfinished steps become `skipped`.
async fn cancel_now(
    conn: &mut PgConnection,
    run_id: Uuid,
    subject: &str,
    actor: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE urumi.steps SET status = 'skipped', wait_kind = NULL, next_attempt_at = NULL, updated_at = now()
         WHERE run_id = $1 AND status NOT IN ('succeeded', 'skipped')",
        run_id,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'cancelled', finished_at = now(), updated_at = now(),
             cancel_requested_at = coalesce(cancel_requested_at, now()),
             cancel_requested_by = coalesce(cancel_requested_by, $2), blocked_by = NULL
         WHERE id = $1",
        run_id,
        actor,
    )
    .execute(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[NewEvent {
            run_id,
            subject,
            kind: "run.cancelled",
            step: None,
            actor,
            detail: json!({ "reason": reason }),
        }],
    )
    .await?;
    release_successors(conn, run_id).await?;
    Ok(())
}

async fn lock_run(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<(String, RunStatus, Option<Uuid>)> {
    let row = sqlx::query!(
        "SELECT subject, status, blocked_by FROM urumi.runs WHERE id = $1 FOR UPDATE",
        run_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound(run_id))?;
    let status = row
        .status
        .parse()
        .map_err(|e: String| Error::InvalidState {
            run: run_id,
            status: row.status.clone(),
            reason: e,
        })?;
    Ok((row.subject, status, row.blocked_by))
}

/// Refuses `run_id` when its subject has a newer run ([`Error::Superseded`]).
async fn ensure_newest(conn: &mut PgConnection, run_id: Uuid, subject: &str) -> Result<()> {
    let newer: Option<Uuid> = sqlx::query_scalar!(
        "SELECT n.id FROM urumi.runs n, urumi.runs r
         WHERE r.id = $1 AND n.subject = $2 AND n.id > r.id
         ORDER BY n.id DESC LIMIT 1",
        run_id,
        subject,
    )
    .fetch_optional(&mut *conn)
    .await?;
    match newer {
        Some(newer) => Err(Error::Superseded {
            run: run_id,
            subject: subject.to_owned(),
            newer,
        }),
        None => Ok(()),
    }
}

/// Cancels `run_id`: at once if no worker holds it, else at its next step boundary.
/// Returns the run's status afterwards (`cancelled`, or `running` with cancel requested).
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] if the run has already ended.
pub(crate) async fn cancel_run(
    conn: &mut PgConnection,
    run_id: Uuid,
    actor: &str,
) -> Result<RunStatus> {
    let (subject, status, _) = lock_run(conn, run_id).await?;
    match status {
        RunStatus::Running => {
            request_cancel(conn, run_id, &subject, actor, "operator").await?;
            Ok(RunStatus::Running)
        }
        RunStatus::Queued | RunStatus::Waiting => {
            cancel_now(conn, run_id, &subject, actor, "operator").await?;
            Ok(RunStatus::Cancelled)
        }
        ended => Err(Error::InvalidState {
            run: run_id,
            status: ended.to_string(),
            reason: "only a queued, running or waiting run can be cancelled".into(),
        }),
    }
}

/// Resumes a failed run at its failed step with a fresh attempt budget; succeeded steps keep
/// their checkpoints and are not run again. Returns the step it resumes at.
///
/// # Errors
/// [`Error::NotFound`]; [`Error::InvalidState`] unless the run failed; [`Error::Conflict`] if
/// the subject has another active run.
pub(crate) async fn retry_run(
    conn: &mut PgConnection,
    run_id: Uuid,
    who: &Who<'_>,
) -> Result<String> {
    let actor = who.actor;
    let (subject, status, _) = lock_run(conn, run_id).await?;
    if status != RunStatus::Failed {
        return Err(Error::InvalidState {
            run: run_id,
            status: status.to_string(),
            reason: "only a failed run can be retried".into(),
        });
    }
    lock_subject(conn, &subject).await?;
    ensure_newest(conn, run_id, &subject).await?;
    if let Some(active) = active_run(conn, &subject).await? {
        return Err(Error::Conflict {
            subject,
            active_run: active.id,
        });
    }
    let step: Option<String> = sqlx::query_scalar!(
        "UPDATE urumi.steps SET status = 'pending', attempts = 0, polls = 0, wait_kind = NULL, wait_reason = NULL,
             transient_retries = 0, transient_since = NULL, interrupted = 0,
             next_attempt_at = NULL, wait_started_at = NULL, started_at = NULL, finished_at = NULL,
             last_error = NULL, updated_at = now()
         WHERE run_id = $1 AND status = 'failed' RETURNING name",
        run_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    // A run failed by the sweeper (no worker served its version) has no failed step: it
    // resumes at its first unfinished one.
    let step = match step {
        Some(s) => s,
        None => sqlx::query_scalar!(
            "SELECT name FROM urumi.steps WHERE run_id = $1 AND status NOT IN ('succeeded', 'skipped')
             ORDER BY position LIMIT 1",
            run_id,
        )
        .fetch_optional(&mut *conn)
        .await?
        .unwrap_or_default(),
    };
    sqlx::query!(
        "UPDATE urumi.runs SET status = 'queued', error = NULL, finished_at = NULL, wake_at = now(),
             cancel_requested_at = NULL, cancel_requested_by = NULL, updated_at = now(),
             lane = $2, owner = $3
         WHERE id = $1",
        run_id,
        who.lane.as_str(),
        who.owner(),
    )
    .execute(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[NewEvent {
            run_id,
            subject: &subject,
            kind: "run.retried",
            step: Some(&step),
            actor,
            detail: json!({ "from_step": step, "lane": who.lane }),
        }],
    )
    .await?;
    notify_wake(conn).await?;
    Ok(step)
}

/// The definition, version, subject and input of `run_id`, for a rerun; refused when the
/// subject has a newer run.
pub(crate) async fn run_origin(
    conn: &mut PgConnection,
    run_id: Uuid,
) -> Result<(String, i32, String, Value)> {
    let row = sqlx::query!(
        "SELECT definition, version, subject, input FROM urumi.runs WHERE id = $1",
        run_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::NotFound(run_id))?;
    lock_subject(conn, &row.subject).await?;
    ensure_newest(conn, run_id, &row.subject).await?;
    Ok((row.definition, row.version, row.subject, row.input))
}

/// Copies the checkpoints of `from`'s first `carried` steps onto the same steps of the new
/// run `to` (a rerun from a named step), and records how many on `to`. Every carried step
/// must have succeeded in `from`.
///
/// # Errors
/// [`Error::NotCarried`] naming the first step before the rerun's step that did not succeed.
pub(crate) async fn carry_over(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
    carried: i32,
) -> Result<()> {
    let unfinished = sqlx::query!(
        "SELECT name, status FROM urumi.steps WHERE run_id = $1 AND position < $2 AND status <> 'succeeded'
         ORDER BY position LIMIT 1",
        from,
        carried,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(u) = unfinished {
        return Err(Error::NotCarried {
            run: from,
            step: u.name,
            status: u.status,
        });
    }
    sqlx::query!(
        "UPDATE urumi.steps s SET status = 'succeeded', output = o.output, attempts = o.attempts,
             polls = o.polls, waited_ms = o.waited_ms, started_at = o.started_at,
             finished_at = o.finished_at, updated_at = now()
         FROM urumi.steps o
         WHERE s.run_id = $2 AND o.run_id = $1 AND o.name = s.name AND o.position < $3",
        from,
        to,
        carried,
    )
    .execute(&mut *conn)
    .await?;
    let subject: String = sqlx::query_scalar!(
        "UPDATE urumi.runs SET carried_steps = $2 WHERE id = $1 RETURNING subject",
        to,
        carried,
    )
    .fetch_one(&mut *conn)
    .await?;
    let steps: Vec<String> = sqlx::query_scalar!(
        "SELECT name FROM urumi.steps WHERE run_id = $1 AND position < $2 ORDER BY position",
        to,
        carried,
    )
    .fetch_all(&mut *conn)
    .await?;
    insert_events(
        conn,
        &[NewEvent {
            run_id: to,
            subject: &subject,
            kind: "run.steps_carried",
            step: None,
            actor: "engine",
            detail: json!({ "from_run": from, "steps": steps }),
        }],
    )
    .await?;
    Ok(())
}

/// Appends an operator action (an audit entry) to `urumi.events`.
pub(crate) async fn append_audit(
    conn: &mut PgConnection,
    e: &crate::listing::AuditEntry<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.events (run_id, subject, kind, actor, detail) VALUES ($1, $2, $3, $4, $5)",
        e.run_id,
        e.subject.as_deref(),
        e.kind,
        e.actor,
        &e.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}
