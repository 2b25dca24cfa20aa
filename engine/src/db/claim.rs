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
    /// The run is in the bulk lane (it holds one of the worker's bulk slots).
    pub bulk: bool,
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

/// Leases up to `limit` due runs of the served definitions, at most `bulk_limit` of them
/// from the bulk lane: interactive runs first (oldest due first), then scheduled ones, then
/// bulk ones round robin across owners (each owner's oldest due first: one from each owner,
/// then a second from each, …). A run claimed for the first time also has its first step
/// marked started (attempt 1) in the same commit, which its one `run.claimed` event names
/// (`step`).
pub(crate) async fn claim(
    pool: &PgPool,
    worker: &str,
    def_keys: &[String],
    limit: usize,
    bulk_limit: usize,
    lease: Duration,
) -> sqlx::Result<Vec<Claimed>> {
    // Each lane locks its own candidates (`SKIP LOCKED`, so two workers claim different rows)
    // and asks only for what the lanes before it left; a lane nobody reaches is not read.
    // Columns of a data-modifying CTE carry no nullability: `!` says what the UPDATE returns.
    let rows = sqlx::query!(
        r#"WITH RECURSIVE owners(owner) AS (
             -- The owners with due bulk runs: a skip scan down runs_due_bulk, one probe each.
             (SELECT owner FROM urumi.runs
              WHERE lane = 'bulk' AND status IN ('queued', 'waiting') AND blocked_by IS NULL
                AND wake_at <= now() AND def_key = ANY($2)
              ORDER BY owner LIMIT 1)
             UNION ALL
             SELECT (SELECT r.owner FROM urumi.runs r
                     WHERE r.lane = 'bulk' AND r.status IN ('queued', 'waiting') AND r.blocked_by IS NULL
                       AND r.wake_at <= now() AND r.def_key = ANY($2) AND r.owner > o.owner
                     ORDER BY r.owner LIMIT 1)
             FROM owners o WHERE o.owner IS NOT NULL
         ), interactive AS (
             SELECT id, started_at IS NULL AND carried_steps = 0 AS fresh FROM urumi.runs
             WHERE lane = 'interactive' AND status IN ('queued', 'waiting') AND blocked_by IS NULL
               AND wake_at <= now() AND def_key = ANY($2)
             ORDER BY wake_at LIMIT $3
             FOR UPDATE SKIP LOCKED
         ), scheduled AS (
             SELECT id, started_at IS NULL AND carried_steps = 0 AS fresh FROM urumi.runs
             WHERE lane = 'scheduled' AND status IN ('queued', 'waiting') AND blocked_by IS NULL
               AND wake_at <= now() AND def_key = ANY($2)
             ORDER BY wake_at LIMIT greatest(0, $3 - (SELECT count(*) FROM interactive))
             FOR UPDATE SKIP LOCKED
         ), bulk AS (
             -- Fair share: an owner's next run ranks by its runs in flight plus its place in
             -- the owner's queue, ties going to the owner claimed least recently. Two owners
             -- with runs due hold about as many slots each.
             SELECT b.id, b.fresh, o.owner FROM owners o
             CROSS JOIN LATERAL (
                 SELECT count(*) AS n FROM urumi.runs f
                 WHERE f.status = 'running' AND f.lane = 'bulk' AND f.owner = o.owner) busy
             LEFT JOIN urumi.bulk_owners bo ON bo.owner = o.owner
             CROSS JOIN LATERAL (
                 SELECT c.id, c.fresh, row_number() OVER (ORDER BY c.wake_at) AS turn FROM (
                     SELECT r.id, r.wake_at, r.started_at IS NULL AND r.carried_steps = 0 AS fresh FROM urumi.runs r
                     WHERE r.lane = 'bulk' AND r.owner = o.owner AND r.status IN ('queued', 'waiting')
                       AND r.blocked_by IS NULL AND r.wake_at <= now() AND r.def_key = ANY($2)
                     ORDER BY r.wake_at LIMIT $5
                     FOR UPDATE SKIP LOCKED) c
             ) b
             WHERE o.owner IS NOT NULL
             ORDER BY busy.n + b.turn, bo.last_claimed_at NULLS FIRST, o.owner
             LIMIT least($5, greatest(0, $3 - (SELECT count(*) FROM interactive)
                                            - (SELECT count(*) FROM scheduled)))
         ), served AS (
             -- When each owner was last served: the round robin's tie-break. In owner order,
             -- so two claims never lock the same owners in opposite orders.
             INSERT INTO urumi.bulk_owners (owner, last_claimed_at)
             SELECT owner, clock_timestamp() FROM (SELECT DISTINCT owner FROM bulk) o ORDER BY owner
             ON CONFLICT (owner) DO UPDATE SET last_claimed_at = excluded.last_claimed_at
         ), due AS (
             SELECT id, fresh FROM interactive
             UNION ALL SELECT id, fresh FROM scheduled
             UNION ALL SELECT id, fresh FROM bulk
         ), claimed AS (
             UPDATE urumi.runs r SET status = 'running', lease_owner = $1, lease_token = gen_random_uuid(),
                 lease_expires_at = now() + $4 * interval '1 millisecond',
                 started_at = coalesce(r.started_at, now()), updated_at = now()
             FROM due WHERE r.id = due.id
             RETURNING r.id, r.definition, r.version, r.subject, r.input, r.lease_token, due.fresh,
                       r.trace_context, r.lane,
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
                trace_context AS "trace_context?", lane AS "lane!"
         FROM claimed"#,
        worker,
        def_keys,
        limit as i64,
        millis(lease),
        bulk_limit as i64,
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
            bulk: r.lane == "bulk",
        })
        .collect())
}

/// How long until the next served run is due (zero if one is due now), if any is scheduled;
/// bulk runs count only when `with_bulk` (this worker has a free bulk slot).
pub(crate) async fn next_due_in(
    pool: &PgPool,
    def_keys: &[String],
    with_bulk: bool,
) -> sqlx::Result<Option<Duration>> {
    let ms: Option<f64> = sqlx::query_scalar!(
        // One `min` per lane, each the first entry of its part of runs_due.
        "WITH lanes(lane) AS (SELECT unnest(CASE WHEN $2 THEN ARRAY['interactive', 'scheduled', 'bulk']
                                                  ELSE ARRAY['interactive', 'scheduled'] END))
         SELECT greatest(0, extract(epoch FROM min(next.wake_at) - now()) * 1000)::float8
         FROM lanes CROSS JOIN LATERAL (
             SELECT min(wake_at) AS wake_at FROM urumi.runs r
             WHERE r.lane = lanes.lane AND r.status IN ('queued', 'waiting') AND r.blocked_by IS NULL
               AND r.def_key = ANY($1)) next",
        def_keys,
        with_bulk,
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

    /// Runs of definition `d@1` in `lane`, owned by `owner`, due now.
    async fn due(pool: &PgPool, n: usize, lane: &str, owner: &str) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO urumi.runs (id, definition, version, subject, input, created_by, lane, owner)
                 VALUES ($1, 'd', 1, $1::text, '{}', 'test', $2, $3)",
            )
            .bind(id)
            .bind(lane)
            .bind(owner)
            .execute(pool)
            .await
            .unwrap();
            ids.push(id);
        }
        ids
    }

    #[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
    async fn one_claim_takes_many_bulk_runs_of_several_owners_within_its_bulk_limit(pool: PgPool) {
        let customer = due(&pool, 1, "interactive", "carol").await;
        due(&pool, 10, "bulk", "alice").await;
        due(&pool, 10, "bulk", "bob").await;
        let keys = ["d@1".to_owned()];
        let lease = Duration::from_secs(30);
        // Eight slots, six of them for bulk runs: the customer's run and six bulk runs,
        // three of each owner.
        let claimed = super::claim(&pool, "w1", &keys, 8, 6, lease).await.unwrap();
        assert_eq!(claimed.len(), 7);
        assert!(claimed.iter().any(|c| c.run_id == customer[0] && !c.bulk));
        let owners: Vec<String> = sqlx::query_scalar(
            "SELECT owner FROM urumi.runs WHERE status = 'running' AND lane = 'bulk' ORDER BY owner",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(owners, ["alice", "alice", "alice", "bob", "bob", "bob"]);
        // No bulk slot free: only non-bulk runs could be claimed, and there are none.
        let none = super::claim(&pool, "w1", &keys, 8, 0, lease).await.unwrap();
        assert!(none.is_empty());
        // The next claim serves both owners again.
        let next = super::claim(&pool, "w2", &keys, 4, 4, lease).await.unwrap();
        assert_eq!(next.len(), 4);
        assert!(next.iter().all(|c| c.bulk));
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
