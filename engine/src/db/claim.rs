//! A worker's side of the queue: register, claim due runs, renew leases, sweep expired ones.
//!
//! The `runs` row is the queue entry, so there is no second record that can be lost: a run
//! whose worker died stays `running` with a lease that stops being renewed, and the sweeper
//! (any live worker) puts it back to `queued` once the lease has expired.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::millis;

/// A run a worker has just leased.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub run_id: Uuid,
    pub definition: String,
    pub version: i32,
    pub subject: String,
    pub input: Value,
    pub token: Uuid,
    pub cancel_requested: bool,
    /// The W3C `traceparent` the run was started in, if any.
    pub trace_context: Option<String>,
    /// The run had never been claimed: its first step was just started (attempt 1) by the
    /// claim and every other step is pending.
    pub fresh: bool,
}

/// Records a worker process and the definitions it serves.
pub(crate) async fn register_worker(
    pool: &PgPool,
    id: &str,
    hostname: &str,
    definitions: &[String],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.workers (id, hostname, pid, definitions) VALUES ($1, $2, $3, $4)",
        id,
        hostname,
        std::process::id() as i32,
        definitions,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a worker as stopped (graceful shutdown).
pub(crate) async fn deregister_worker(pool: &PgPool, id: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.workers SET stopped_at = now() WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Leases up to `limit` due runs of the served definitions, oldest due first. A run claimed
/// for the first time also has its first step marked started (attempt 1) in the same commit,
/// which its one `run.claimed` event names (`step`).
pub(crate) async fn claim(
    pool: &PgPool,
    worker: &str,
    def_keys: &[String],
    limit: usize,
    lease: Duration,
) -> sqlx::Result<Vec<Claimed>> {
    // Columns of a data-modifying CTE carry no nullability: `!` says what the UPDATE returns.
    let rows = sqlx::query!(
        r#"WITH due AS (
             SELECT id, started_at IS NULL AS fresh FROM urumi.runs
             WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND wake_at <= now()
               AND def_key = ANY($2)
             ORDER BY wake_at LIMIT $3
             FOR UPDATE SKIP LOCKED
         ), claimed AS (
             UPDATE urumi.runs r SET status = 'running', lease_owner = $1, lease_token = gen_random_uuid(),
                 lease_expires_at = now() + $4 * interval '1 millisecond',
                 started_at = coalesce(r.started_at, now()), updated_at = now()
             FROM due WHERE r.id = due.id
             RETURNING r.id, r.definition, r.version, r.subject, r.input, r.lease_token, due.fresh,
                       r.trace_context,
                       r.cancel_requested_at IS NOT NULL AS cancel_requested
         ), first AS (
             -- A fresh run's first step starts in the claim's own commit.
             UPDATE urumi.steps s SET status = 'running', attempts = s.attempts + 1,
                 started_at = coalesce(s.started_at, now()), updated_at = now()
             FROM claimed WHERE claimed.fresh AND s.run_id = claimed.id AND s.position = 0
             RETURNING s.run_id, s.name
         ), logged AS (
             -- One event per claimed run; a fresh run's first step, started in this commit,
             -- is named by it (`step`, `attempt` 1) rather than by a second event.
             INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail)
             SELECT claimed.id, claimed.subject, 'run.claimed', first.name, $1,
                    CASE WHEN first.run_id IS NULL THEN '{}'::jsonb
                         ELSE jsonb_build_object('attempt', 1) END
             FROM claimed LEFT JOIN first ON first.run_id = claimed.id
             ORDER BY claimed.id
         )
         SELECT id AS "id!", definition AS "definition!", version AS "version!",
                subject AS "subject!", input AS "input!", lease_token AS "lease_token!",
                fresh AS "fresh!", cancel_requested AS "cancel_requested!",
                trace_context AS "trace_context?"
         FROM claimed"#,
        worker,
        def_keys,
        limit as i64,
        millis(lease),
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            run_id: r.id,
            definition: r.definition,
            version: r.version,
            subject: r.subject,
            input: r.input,
            token: r.lease_token,
            cancel_requested: r.cancel_requested,
            trace_context: r.trace_context,
            fresh: r.fresh,
        })
        .collect())
}

/// How long until the next served run is due (zero if one is due now), if any is scheduled.
pub(crate) async fn next_due_in(
    pool: &PgPool,
    def_keys: &[String],
) -> sqlx::Result<Option<Duration>> {
    let ms: Option<f64> = sqlx::query_scalar!(
        "SELECT greatest(0, extract(epoch FROM min(wake_at) - now()) * 1000)::float8 FROM urumi.runs
         WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND def_key = ANY($1)",
        def_keys,
    )
    .fetch_one(pool)
    .await?;
    Ok(ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)))
}

/// Renews the leases this worker holds and its own heartbeat. Returns the runs whose lease
/// is now another worker's (taken over after an expiry), with that worker's id. A run this
/// worker has just ended or released itself is not among them.
pub(crate) async fn heartbeat(
    pool: &PgPool,
    worker: &str,
    held: &[(Uuid, Uuid)],
    lease: Duration,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let ids: Vec<Uuid> = held.iter().map(|h| h.0).collect();
    let tokens: Vec<Uuid> = held.iter().map(|h| h.1).collect();
    let taken = sqlx::query!(
        r#"WITH h AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS h(id, token)),
         renewed AS (
             UPDATE urumi.runs r SET lease_expires_at = now() + $3 * interval '1 millisecond'
             FROM h WHERE r.id = h.id AND r.lease_token = h.token
             RETURNING r.id
         )
         SELECT r.id, r.lease_owner AS "lease_owner!" FROM h JOIN urumi.runs r ON r.id = h.id
         WHERE r.lease_owner IS NOT NULL AND r.lease_owner <> $4
           AND h.id NOT IN (SELECT id FROM renewed)"#,
        &ids,
        &tokens,
        millis(lease),
        worker,
    )
    .fetch_all(pool)
    .await?;
    sqlx::query!(
        "UPDATE urumi.workers SET heartbeat_at = now() WHERE id = $1",
        worker,
    )
    .execute(pool)
    .await?;
    Ok(taken.into_iter().map(|r| (r.id, r.lease_owner)).collect())
}

/// Puts runs whose lease expired back in the queue (their worker died or hung), with a
/// `run.lease_expired` event naming the previous owner. Returns how many.
pub(crate) async fn requeue_expired(pool: &PgPool, sweeper: &str) -> sqlx::Result<u64> {
    let n: i64 = sqlx::query_scalar!(
        r#"WITH expired AS (
             SELECT id, lease_owner FROM urumi.runs
             WHERE status = 'running' AND lease_expires_at < now()
             FOR UPDATE SKIP LOCKED
         ), requeued AS (
             UPDATE urumi.runs r SET status = 'queued', lease_owner = NULL, lease_token = NULL,
                 lease_expires_at = NULL, wake_at = now(), updated_at = now()
             FROM expired WHERE r.id = expired.id
             RETURNING r.id, r.subject, expired.lease_owner AS previous_owner
         ), logged AS (
             INSERT INTO urumi.events (run_id, subject, kind, actor, detail)
             SELECT id, subject, 'run.lease_expired', $1, jsonb_build_object('previous_owner', previous_owner)
             FROM requeued
         )
         SELECT count(*) AS "count!" FROM requeued"#,
        sweeper,
    )
    .fetch_one(pool)
    .await?;
    if n > 0 {
        sqlx::query!("SELECT pg_notify($1, '')", super::WAKE_CHANNEL)
            .execute(pool)
            .await?;
    }
    Ok(n as u64)
}

/// Fails runs that have been due for longer than `grace` while no live worker (heartbeat
/// within `liveness`) serves their definition version. Returns the failed run ids.
pub(crate) async fn fail_unserved(
    pool: &PgPool,
    sweeper: &str,
    grace: Duration,
    liveness: Duration,
) -> sqlx::Result<Vec<Uuid>> {
    let mut tx = pool.begin().await?;
    let failed: Vec<Uuid> = sqlx::query_scalar!(
        r#"WITH unserved AS (
             SELECT r.id FROM urumi.runs r
             WHERE r.status IN ('queued', 'waiting') AND r.blocked_by IS NULL
               AND r.wake_at < now() - $2 * interval '1 millisecond'
               AND NOT EXISTS (
                   SELECT 1 FROM urumi.workers w
                   WHERE w.stopped_at IS NULL
                     AND w.heartbeat_at > now() - $3 * interval '1 millisecond'
                     AND r.def_key = ANY(w.definitions))
             FOR UPDATE OF r SKIP LOCKED
         ), failed AS (
             UPDATE urumi.runs r SET status = 'failed', finished_at = now(), updated_at = now(),
                 error = 'no live worker serves workflow ' || r.def_key
             FROM unserved WHERE r.id = unserved.id
             RETURNING r.id, r.subject, r.def_key
         ), logged AS (
             INSERT INTO urumi.events (run_id, subject, kind, actor, detail)
             SELECT id, subject, 'run.failed', $1,
                    jsonb_build_object('error', 'no live worker serves workflow ' || def_key)
             FROM failed
         )
         SELECT id AS "id!" FROM failed"#,
        sweeper,
        millis(grace),
        millis(liveness),
    )
    .fetch_all(&mut *tx)
    .await?;
    for id in &failed {
        super::release_successors(&mut tx, *id).await?;
    }
    tx.commit().await?;
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::PgPool;
    use uuid::Uuid;

    /// A run in `status`, leased to `owner` with `token` when running.
    async fn run(pool: &PgPool, status: &str, owner: Option<&str>, token: Option<Uuid>) -> Uuid {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO urumi.runs (id, definition, version, subject, input, status, lease_owner, lease_token, created_by)
             VALUES ($1, 'd', 1, $1::text, '{}', $2, $3, $4, 'test')",
        )
        .bind(id)
        .bind(status)
        .bind(owner)
        .bind(token)
        .execute(pool)
        .await
        .unwrap();
        id
    }

    #[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
    async fn the_heartbeat_names_only_leases_another_worker_now_holds(pool: PgPool) {
        let me = "w-me";
        let mine = Uuid::new_v4();
        let renewed = run(&pool, "running", Some(me), Some(mine)).await;
        // Runs this worker ended or gave back itself while the heartbeat read its list.
        let finished = run(&pool, "succeeded", None, None).await;
        let released = run(&pool, "queued", None, None).await;
        // A run taken over by another worker after this one missed its renewals.
        let taken = run(&pool, "running", Some("w-other"), Some(Uuid::new_v4())).await;
        let held = [
            (renewed, mine),
            (finished, Uuid::new_v4()),
            (released, Uuid::new_v4()),
            (taken, Uuid::new_v4()),
        ];
        sqlx::query(
            "INSERT INTO urumi.workers (id, hostname, pid, definitions) VALUES ($1, 'h', 1, '{}')",
        )
        .bind(me)
        .execute(&pool)
        .await
        .unwrap();
        let lost = super::heartbeat(&pool, me, &held, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(lost, vec![(taken, "w-other".to_owned())]);
    }
}
