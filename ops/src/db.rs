//! Every statement on `urumi.operations` and `urumi.operation_targets`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::model::{Action, CanaryThen, Operation, OperationState, Progress, Target, TargetState};

/// An operation's row before it has targets.
pub(crate) struct NewOperation<'a> {
    pub id: Uuid,
    pub run_id: Uuid,
    pub action: Action,
    pub from_step: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub selector: &'a serde_json::Value,
    pub max_concurrency: i32,
    pub canary_size: i32,
    pub canary_then: Option<CanaryThen>,
    pub max_failures: Option<i32>,
    pub matched: i32,
    pub owner: &'a str,
    pub actor: &'a str,
}

pub(crate) async fn insert(conn: &mut PgConnection, o: &NewOperation<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.operations (id, run_id, action, from_step, plan, channel, selector,
             max_concurrency, canary_size, canary_then, max_failures, matched, owner, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        o.id,
        o.run_id,
        o.action.as_str(),
        o.from_step,
        o.plan,
        o.channel,
        o.selector,
        o.max_concurrency,
        o.canary_size,
        CanaryThen::stored(o.canary_then),
        o.max_failures,
        o.matched,
        o.owner,
        o.actor,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts the targets in order (positions 0, 1, …).
pub(crate) async fn insert_targets(
    conn: &mut PgConnection,
    operation: Uuid,
    runs: &[Uuid],
    subjects: &[String],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.operation_targets (operation_id, position, run_id, subject)
         SELECT $1, t.ord::int - 1, t.run_id, t.subject
         FROM unnest($2::uuid[], $3::text[]) WITH ORDINALITY AS t(run_id, subject, ord)",
        operation,
        runs,
        subjects,
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct Row {
    id: Uuid,
    run_id: Uuid,
    action: String,
    from_step: Option<String>,
    plan: Option<String>,
    channel: Option<String>,
    selector: serde_json::Value,
    max_concurrency: i32,
    canary_size: i32,
    canary_then: Option<String>,
    canary_passed: bool,
    max_failures: Option<i32>,
    state: String,
    reason: Option<String>,
    matched: i32,
    owner: String,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

fn parse<T: std::str::FromStr<Err = String>>(s: &str) -> sqlx::Result<T> {
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

impl Row {
    fn into_operation(self, progress: Progress) -> sqlx::Result<Operation> {
        Ok(Operation {
            id: self.id,
            run_id: self.run_id,
            action: parse(&self.action)?,
            from_step: self.from_step,
            plan: self.plan,
            channel: self.channel,
            selector: self.selector,
            max_concurrency: self.max_concurrency,
            canary_size: self.canary_size,
            canary_then: CanaryThen::parse(self.canary_then.as_deref()),
            canary_passed: self.canary_passed,
            max_failures: self.max_failures,
            state: parse(&self.state)?,
            reason: self.reason,
            progress: Progress {
                matched: i64::from(self.matched),
                ..progress
            },
            owner: self.owner,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        })
    }
}

/// How many of an operation's targets are in each state.
pub(crate) async fn progress<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> sqlx::Result<Progress> {
    let rows = sqlx::query!(
        r#"SELECT state, count(*) AS "n!" FROM urumi.operation_targets WHERE operation_id = $1 GROUP BY state"#,
        id,
    )
    .fetch_all(exec)
    .await?;
    let mut p = Progress::default();
    for r in rows {
        let n = r.n;
        match parse::<TargetState>(&r.state)? {
            TargetState::Pending => p.pending = n,
            TargetState::Running => p.running = n,
            TargetState::Succeeded => p.succeeded = n,
            TargetState::Failed => p.failed = n,
            TargetState::Skipped => p.skipped = n,
        }
    }
    Ok(p)
}

/// One operation, locked for update when `lock`.
pub(crate) async fn get(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> sqlx::Result<Option<Operation>> {
    let row = if lock {
        sqlx::query_as!(Row, "SELECT id, run_id, action, from_step, plan, channel, selector, max_concurrency, canary_size,
                 canary_then, canary_passed, max_failures, state, reason, matched, owner, created_by,
                 created_at, updated_at, finished_at
             FROM urumi.operations WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?
    } else {
        sqlx::query_as!(Row, "SELECT id, run_id, action, from_step, plan, channel, selector, max_concurrency, canary_size,
                 canary_then, canary_passed, max_failures, state, reason, matched, owner, created_by,
                 created_at, updated_at, finished_at
             FROM urumi.operations WHERE id = $1", id)
        .fetch_optional(&mut *conn)
        .await?
    };
    match row {
        None => Ok(None),
        Some(row) => {
            let p = progress(&mut *conn, id).await?;
            row.into_operation(p).map(Some)
        }
    }
}

/// A page of operations, newest first, before the cursor `(created_at, id)` of the
/// previous page's last one.
pub(crate) async fn page(
    pool: &PgPool,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Operation>> {
    let rows = sqlx::query_as!(
        Row,
        "SELECT id, run_id, action, from_step, plan, channel, selector, max_concurrency, canary_size,
             canary_then, canary_passed, max_failures, state, reason, matched, owner, created_by,
             created_at, updated_at, finished_at
         FROM urumi.operations
         WHERE $1::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM urumi.operations WHERE id = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2",
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let p = progress(pool, row.id).await?;
        out.push(row.into_operation(p)?);
    }
    Ok(out)
}

/// A page of an operation's targets in position order, after position `after`, optionally
/// only those in `state`.
pub(crate) async fn targets(
    pool: &PgPool,
    id: Uuid,
    state: Option<TargetState>,
    after: Option<i32>,
    limit: i64,
) -> sqlx::Result<Vec<Target>> {
    let rows = sqlx::query!(
        "SELECT position, run_id, subject, state, child_run_id, reason, updated_at
         FROM urumi.operation_targets
         WHERE operation_id = $1 AND ($2::text IS NULL OR state = $2) AND position > coalesce($3, -1)
         ORDER BY position LIMIT $4",
        id,
        state.map(TargetState::as_str),
        after,
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Target {
                position: r.position,
                run_id: r.run_id,
                subject: r.subject,
                state: parse(&r.state)?,
                child_run_id: r.child_run_id,
                reason: r.reason,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// Moves the operation from one of `from` to `state` with `reason` (and `finished_at` when
/// final); false when it was in none of `from` (an operator or a poll moved it first).
pub(crate) async fn move_state(
    conn: &mut PgConnection,
    id: Uuid,
    from: &[OperationState],
    state: OperationState,
    reason: Option<&str>,
) -> sqlx::Result<bool> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let r = sqlx::query!(
        "UPDATE urumi.operations SET state = $3, reason = $4, updated_at = now(),
             finished_at = CASE WHEN $5 THEN coalesce(finished_at, now()) END
         WHERE id = $1 AND state = ANY($2)",
        id,
        &from[..] as _,
        state.as_str(),
        reason,
        state.is_final(),
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records that the canary passed (approved, or finished well with `continue`).
pub(crate) async fn pass_canary(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.operations SET canary_passed = true, updated_at = now() WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Skips every pending target with `reason`; returns how many.
pub(crate) async fn skip_pending(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> sqlx::Result<u64> {
    let r = sqlx::query!(
        "UPDATE urumi.operation_targets SET state = 'skipped', reason = $2, updated_at = now()
         WHERE operation_id = $1 AND state = 'pending'",
        id,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected())
}

/// A target still to start or to watch.
pub(crate) struct Open {
    pub position: i32,
    pub run_id: Uuid,
    pub subject: String,
    pub child_run_id: Option<Uuid>,
}

/// The running targets (with their child runs).
pub(crate) async fn running(pool: &PgPool, id: Uuid) -> sqlx::Result<Vec<Open>> {
    sqlx::query_as!(
        Open,
        "SELECT position, run_id, subject, child_run_id FROM urumi.operation_targets
         WHERE operation_id = $1 AND state = 'running' ORDER BY position",
        id,
    )
    .fetch_all(pool)
    .await
}

/// Up to `limit` pending targets at positions below `below`, in position order.
pub(crate) async fn pending(
    pool: &PgPool,
    id: Uuid,
    below: i32,
    limit: i64,
) -> sqlx::Result<Vec<Open>> {
    sqlx::query_as!(
        Open,
        "SELECT position, run_id, subject, child_run_id FROM urumi.operation_targets
         WHERE operation_id = $1 AND state = 'pending' AND position < $2 ORDER BY position LIMIT $3",
        id,
        below,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// How many of the first `size` targets are still pending or running, and how many failed.
pub(crate) async fn canary_counts(pool: &PgPool, id: Uuid, size: i32) -> sqlx::Result<(i64, i64)> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE state IN ('pending', 'running')) AS "open!",
                  count(*) FILTER (WHERE state = 'failed') AS "failed!"
           FROM urumi.operation_targets WHERE operation_id = $1 AND position < $2"#,
        id,
        size,
    )
    .fetch_one(pool)
    .await?;
    Ok((r.open, r.failed))
}

/// Moves one target from `from` to `to`, with its child run and reason; false when it was
/// not in `from` any more (another poll moved it).
pub(crate) async fn move_target(
    conn: &mut PgConnection,
    id: Uuid,
    position: i32,
    from: TargetState,
    to: TargetState,
    child: Option<Uuid>,
    reason: Option<&str>,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE urumi.operation_targets SET state = $4, child_run_id = coalesce($5, child_run_id),
             reason = $6, updated_at = now()
         WHERE operation_id = $1 AND position = $2 AND state = $3",
        id,
        position,
        from.as_str(),
        to.as_str(),
        child,
        reason,
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
