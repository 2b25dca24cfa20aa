//! The hot path of a worker's writes: starting a step attempt ([`start`]) and the batched
//! step-success checkpoint ([`checkpoint_batch`]), each fenced on the lease inside its one
//! statement, so a step's result, the next step's start and their events land in one
//! commit. The other transitions are in [`super::transition`].

use std::time::Duration;

use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

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

/// What a started attempt knows.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Started {
    pub attempt: u32,
    pub polls: u32,
    /// Milliseconds since the step first returned `Wait`, if it is polling.
    pub waited_ms: Option<f64>,
    /// Milliseconds since the current streak of transient errors began, if in one.
    pub transient_ms: Option<f64>,
    /// Transient retries in the current streak.
    pub transient_retries: u32,
    /// Attempts that ended with no outcome (the worker died mid-step), this one's
    /// predecessor included when it was interrupted.
    pub interrupted: u32,
    /// Milliseconds the wait this start ends lasted (from the step being set waiting to
    /// now), if it was waiting.
    pub wait_ended_ms: Option<f64>,
}

/// What kind of start a step's (re)start is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartKind {
    /// A new attempt: counts against the step's attempts.
    Attempt,
    /// Polling a waiting step again: costs no attempt.
    Poll,
    /// Trying again after a transient error: costs no attempt.
    Transient,
    /// The previous attempt never ended (its worker died or lost the lease): counts as an
    /// attempt, and as an interruption.
    AfterInterruption,
}

impl StartKind {
    fn as_str(self) -> &'static str {
        match self {
            StartKind::Attempt => "attempt",
            StartKind::Poll => "poll",
            StartKind::Transient => "transient",
            StartKind::AfterInterruption => "interrupted",
        }
    }
}

// ---------------------------------------------------------------------------------------
// The hot path. Each of these is ONE statement (data-modifying CTEs, autocommit), so a step
// costs one round trip and one commit: fence + checkpoint + next start + events, atomically.
// If the fence finds no row (lease lost) no CTE modifies anything.
// ---------------------------------------------------------------------------------------

/// Fence, mark `step` running (only a new attempt or one after an interruption costs an
/// attempt), append `step.started` (not for a poll).
pub(crate) async fn start(
    conn: &mut PgConnection,
    lease: &Lease,
    step: &str,
    kind: StartKind,
) -> sqlx::Result<Result<Started, LeaseLost>> {
    // Columns of a data-modifying CTE carry no nullability: `!` and `?` say what it returns.
    let row = sqlx::query!(
        r#"WITH fence AS (
             SELECT id, subject FROM urumi.runs WHERE id = $1 AND lease_token = $2 FOR UPDATE
         ), prev AS (
             -- The step as it was: a waiting step's wait began when it was set waiting.
             SELECT s.status, s.updated_at FROM urumi.steps s JOIN fence ON s.run_id = fence.id
             WHERE s.name = $3
         ), started AS (
             UPDATE urumi.steps s SET status = 'running',
                 attempts = s.attempts + CASE WHEN $4 IN ('attempt', 'interrupted') THEN 1 ELSE 0 END,
                 polls = s.polls + CASE WHEN $4 = 'poll' THEN 1 ELSE 0 END,
                 interrupted = s.interrupted + CASE WHEN $4 = 'interrupted' THEN 1 ELSE 0 END,
                 waited_ms = s.waited_ms + CASE WHEN prev.status = 'waiting'
                     THEN (extract(epoch FROM now() - prev.updated_at) * 1000)::bigint ELSE 0 END,
                 started_at = coalesce(s.started_at, now()), next_attempt_at = NULL, updated_at = now()
             FROM fence, prev WHERE s.run_id = fence.id AND s.name = $3
             RETURNING s.attempts, s.polls, s.interrupted, s.transient_retries,
                 CASE WHEN prev.status = 'waiting'
                      THEN extract(epoch FROM now() - prev.updated_at)::float8 * 1000 END AS wait_ended_ms,
                 CASE WHEN $4 = 'poll' THEN extract(epoch FROM now() - s.wait_started_at)::float8 * 1000 END AS waited_ms,
                 extract(epoch FROM now() - s.transient_since)::float8 * 1000 AS transient_ms
         ), ev AS (
             -- A poll of a waiting step is a check, not a state change: no event.
             INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail)
             SELECT fence.id, fence.subject, 'step.started', $3, $5,
                    jsonb_build_object('attempt', started.attempts, 'start', $4::text)
             FROM fence, started WHERE $4 <> 'poll'
         )
         SELECT attempts AS "attempts!", polls AS "polls!", interrupted AS "interrupted!",
                transient_retries AS "transient_retries!", waited_ms AS "waited_ms?",
                wait_ended_ms AS "wait_ended_ms?",
                transient_ms AS "transient_ms?"
         FROM started"#,
        lease.run_id,
        lease.token,
        step,
        kind.as_str(),
        &lease.worker,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row
        .map(|r| Started {
            attempt: r.attempts as u32,
            polls: r.polls as u32,
            waited_ms: r.waited_ms,
            transient_ms: r.transient_ms,
            transient_retries: r.transient_retries as u32,
            interrupted: r.interrupted as u32,
            wait_ended_ms: r.wait_ended_ms,
        })
        .ok_or(LeaseLost))
}

/// One step-success checkpoint to write in a batch: `done` succeeded with `output`; `next`
/// is the step to start, or `None` when `done` was the last (the run then succeeds).
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    pub lease: Lease,
    pub done: String,
    pub output: Value,
    pub next: Option<String>,
}

/// What a [`Checkpoint`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Advanced {
    /// `next` was started.
    Started(Started),
    /// `done` was checkpointed but a cancel was requested, so `next` was not started.
    CancelRequested,
    /// The run succeeded (runs that waited for it were unblocked and woken in the same commit).
    Finished,
}

/// Writes many checkpoints in ONE transaction (two statements: runs that go on, runs that
/// finish), so concurrent runners of a worker share a commit. Each checkpoint is fenced on
/// its own lease token: a lost lease excludes only that run's rows. Returns one result per
/// checkpoint, in order.
pub(crate) async fn checkpoint_batch(
    pool: &sqlx::PgPool,
    batch: &[Checkpoint],
) -> sqlx::Result<Vec<Result<Advanced, LeaseLost>>> {
    let mut results: Vec<Result<Advanced, LeaseLost>> = vec![Err(LeaseLost); batch.len()];
    let (going, ending): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|i| batch[*i].next.is_some());
    if !going.is_empty() && !ending.is_empty() {
        let mut tx = pool.begin().await?;
        advance(&mut tx, batch, &going, &mut results).await?;
        if finish(&mut tx, batch, &ending, &mut results).await? {
            super::notify_wake(&mut tx).await?;
        }
        tx.commit().await?;
    } else {
        // One statement commits on its own: no BEGIN and COMMIT round trips.
        let mut conn = pool.acquire().await?;
        if !going.is_empty() {
            advance(&mut conn, batch, &going, &mut results).await?;
        } else if finish(&mut conn, batch, &ending, &mut results).await? {
            super::notify_wake(&mut conn).await?;
        }
    }
    Ok(results)
}

/// Checkpoints of runs that go on: each step succeeded and the next one started.
async fn advance(
    conn: &mut PgConnection,
    batch: &[Checkpoint],
    going: &[usize],
    results: &mut [Result<Advanced, LeaseLost>],
) -> sqlx::Result<()> {
    {
        let col = |f: &dyn Fn(&Checkpoint) -> String| {
            going.iter().map(|i| f(&batch[*i])).collect::<Vec<String>>()
        };
        let ids: Vec<uuid::Uuid> = going.iter().map(|i| batch[*i].lease.run_id).collect();
        let tokens: Vec<uuid::Uuid> = going.iter().map(|i| batch[*i].lease.token).collect();
        let outputs: Vec<Value> = going.iter().map(|i| batch[*i].output.clone()).collect();
        let rows = sqlx::query!(
            r#"WITH req AS (
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[])
                     AS r(run_id, token, done, next, output, actor)
             ), fence AS (
                 SELECT r.id, r.subject, r.cancel_requested_at IS NOT NULL AS cancel_requested
                 FROM urumi.runs r JOIN req ON r.id = req.run_id AND r.lease_token = req.token
                 ORDER BY r.id FOR UPDATE OF r
             ), done AS (
                 UPDATE urumi.steps s SET status = 'succeeded', output = req.output, finished_at = now(),
                     wait_kind = NULL, next_attempt_at = NULL, wait_started_at = NULL, updated_at = now()
                 FROM fence JOIN req ON req.run_id = fence.id
                 WHERE s.run_id = fence.id AND s.name = req.done
                 RETURNING s.run_id, extract(epoch FROM now() - s.started_at)::float8 * 1000 AS duration_ms
             ), next AS (
                 UPDATE urumi.steps s SET status = 'running', attempts = s.attempts + 1,
                     started_at = coalesce(s.started_at, now()), next_attempt_at = NULL, updated_at = now()
                 FROM fence JOIN req ON req.run_id = fence.id
                 WHERE s.run_id = fence.id AND s.name = req.next AND NOT fence.cancel_requested
                 RETURNING s.run_id, s.attempts, s.polls
             ), ev AS (
                 -- One event per checkpoint: the next step's start is in the same commit, so
                 -- it is said here (`next`, `next_attempt`) rather than by a second event.
                 INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail)
                 SELECT fence.id, fence.subject, 'step.succeeded', req.done, req.actor,
                        jsonb_build_object('duration_ms', round(done.duration_ms))
                        || CASE WHEN next.run_id IS NULL THEN '{}'::jsonb
                                ELSE jsonb_build_object('next', req.next, 'next_attempt', next.attempts) END
                 FROM fence JOIN req ON req.run_id = fence.id JOIN done ON done.run_id = fence.id
                 LEFT JOIN next ON next.run_id = fence.id
                 ORDER BY fence.id
             )
             SELECT fence.id AS "id!", fence.cancel_requested AS "cancel_requested!",
                    next.attempts AS "attempts?", next.polls AS "polls?"
             FROM fence LEFT JOIN next ON next.run_id = fence.id"#,
            &ids,
            &tokens,
            &col(&|c| c.done.clone()),
            &col(&|c| c.next.clone().unwrap_or_default()),
            &outputs,
            &col(&|c| c.lease.worker.clone()),
        )
        .fetch_all(&mut *conn)
        .await?;
        for r in rows {
            let id = r.id;
            let Some(i) = going.iter().copied().find(|i| batch[*i].lease.run_id == id) else {
                continue;
            };
            results[i] = Ok(match r.attempts {
                Some(attempts) if !r.cancel_requested => Advanced::Started(Started {
                    attempt: attempts as u32,
                    polls: r.polls.unwrap_or(0) as u32,
                    ..Started::default()
                }),
                _ => Advanced::CancelRequested,
            });
        }
    }
    Ok(())
}

/// Checkpoints of runs whose last step succeeded: the run succeeds, and the runs waiting for
/// it are unblocked. Returns whether any was (so idle workers should be woken).
async fn finish(
    conn: &mut PgConnection,
    batch: &[Checkpoint],
    ending: &[usize],
    results: &mut [Result<Advanced, LeaseLost>],
) -> sqlx::Result<bool> {
    {
        let ids: Vec<uuid::Uuid> = ending.iter().map(|i| batch[*i].lease.run_id).collect();
        let tokens: Vec<uuid::Uuid> = ending.iter().map(|i| batch[*i].lease.token).collect();
        let dones: Vec<String> = ending.iter().map(|i| batch[*i].done.clone()).collect();
        let outputs: Vec<Value> = ending.iter().map(|i| batch[*i].output.clone()).collect();
        let actors: Vec<String> = ending
            .iter()
            .map(|i| batch[*i].lease.worker.clone())
            .collect();
        let rows = sqlx::query!(
            r#"WITH req AS (
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[])
                     AS r(run_id, token, done, output, actor)
             ), locked AS (
                 SELECT r.id FROM urumi.runs r JOIN req ON r.id = req.run_id AND r.lease_token = req.token
                 ORDER BY r.id FOR UPDATE OF r
             ), fence AS (
                 UPDATE urumi.runs r SET status = 'succeeded', output = req.output, finished_at = now(),
                     lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
                 FROM locked JOIN req ON req.run_id = locked.id
                 WHERE r.id = locked.id
                 RETURNING r.id, r.subject
             ), done AS (
                 UPDATE urumi.steps s SET status = 'succeeded', output = req.output, finished_at = now(),
                     wait_kind = NULL, next_attempt_at = NULL, wait_started_at = NULL, updated_at = now()
                 FROM fence JOIN req ON req.run_id = fence.id
                 WHERE s.run_id = fence.id AND s.name = req.done
                 RETURNING s.run_id, extract(epoch FROM now() - s.started_at)::float8 * 1000 AS duration_ms
             ), successors AS (
                 UPDATE urumi.runs r SET blocked_by = NULL, wake_at = now(), updated_at = now()
                 FROM fence WHERE r.blocked_by = fence.id AND r.status = 'queued'
                 RETURNING r.id, r.blocked_by AS was_blocked_by
             ), ev AS (
                 -- One event per finished run: the last step's success is in the same commit
                 -- and is named by it (`step`, its `duration_ms`).
                 INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail)
                 SELECT fence.id, fence.subject, 'run.succeeded', req.done, req.actor,
                        jsonb_build_object('duration_ms', round(done.duration_ms))
                 FROM fence JOIN req ON req.run_id = fence.id JOIN done ON done.run_id = fence.id
                 ORDER BY fence.id
             )
             SELECT fence.id AS "id!", (SELECT count(*) FROM successors) AS "unblocked!" FROM fence"#,
            &ids,
            &tokens,
            &dones,
            &outputs,
            &actors,
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut any_unblocked = false;
        for r in rows {
            let id = r.id;
            any_unblocked |= r.unblocked > 0;
            if let Some(i) = ending
                .iter()
                .copied()
                .find(|i| batch[*i].lease.run_id == id)
            {
                results[i] = Ok(Advanced::Finished);
            }
        }
        Ok(any_unblocked)
    }
}
