//! Where time goes: per definition, version and step, over a window of finished runs — how
//! many steps ended, how many failed, exact duration percentiles, retries, time spent
//! waiting (polls and backoffs) against working, the most common errors — and the duration
//! distribution of a definition's runs (for `store.provision`: the fleet's provisioning
//! time) — and the runs that ended per hour. Read for people by the API
//! (`/api/v1/insights/…`).
//!
//! Both reads start from the runs that finished in the window (`runs_finished`, a partial
//! index on `(status, finished_at)`) and reach their steps by primary key, so they cost what
//! the window holds, not what the tables hold, and add no index to the step writes (an
//! index on `steps.finished_at` would make every checkpoint a non-HOT update). Steps of
//! runs still going are not counted until their run ends. Step insights over more than 6
//! hours read hourly rollups instead ([`crate::rollup`]).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Longest window an insight reads (the retention window of succeeded runs).
pub const MAX_WINDOW_HOURS: u32 = 720;

/// Bounds, in seconds, of the run-duration histogram: bucket `i` holds the durations from
/// bound `i - 1` (inclusive; 0 for the first) to bound `i` (exclusive); one more bucket holds
/// the durations from the last bound on.
pub const RUN_BUCKETS_SECONDS: [f64; 10] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// How many of a step's most common errors are kept.
pub(crate) const TOP_ERRORS: usize = 3;

/// One step of one definition version over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInsight {
    pub definition: String,
    pub version: i32,
    pub step: String,
    /// Steps that ended (succeeded or failed) in runs that finished in the window.
    pub count: i64,
    pub failed: i64,
    /// From a step's first start to its end, in milliseconds: values of the data
    /// (`percentile_disc`), not interpolations — exact, or see [`StepInsight::exact`].
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Attempts beyond the first, summed.
    pub retries: i64,
    /// Readiness checks of waiting steps, summed.
    pub polls: i64,
    /// Time spent waiting (polls, backoffs, the claim after a wait) and the rest of the
    /// steps' durations, summed, in milliseconds.
    pub waiting_ms: f64,
    pub working_ms: f64,
    /// The most common last errors (up to three), most frequent first.
    pub errors: Vec<ErrorCount>,
    /// Whether the percentiles are exact values of the data (windows of 6 hours or less) or
    /// histogram buckets' middles, within ±2.5 % (longer windows, read from the hourly
    /// rollups: [`crate::rollup`]).
    pub exact: bool,
}

/// How many steps ended with (or retried after) this error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    /// The error, cut to 200 characters.
    pub error: String,
    pub steps: i64,
}

/// A definition's runs that finished in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInsight {
    pub definition: String,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// From enqueue to success, in milliseconds (exact values; `None` without a success).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Succeeded runs per bucket of [`RUN_BUCKETS_SECONDS`] (one more than bounds).
    pub histogram: Vec<i64>,
}

/// Runs of one definition that ended in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHour {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    pub definition: String,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// Runs that ended since `since`, per hour and definition, oldest hour first.
pub(crate) async fn run_hours(pool: &PgPool, since: DateTime<Utc>) -> sqlx::Result<Vec<RunHour>> {
    let rows = sqlx::query!(
        r#"SELECT date_trunc('hour', finished_at) AS "hour!", definition,
                  count(*) FILTER (WHERE status = 'succeeded') AS "succeeded!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!",
                  count(*) FILTER (WHERE status = 'cancelled') AS "cancelled!"
           FROM urumi.runs
           WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $1
           GROUP BY 1, 2 ORDER BY 1, 2"#,
        since,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RunHour {
            hour: r.hour,
            definition: r.definition,
            succeeded: r.succeeded,
            failed: r.failed,
            cancelled: r.cancelled,
        })
        .collect())
}

/// Windows up to this long are read from the step rows, exactly; longer ones from the hourly
/// rollups ([`crate::rollup`]).
pub const EXACT_WINDOW_HOURS: i64 = 6;

/// Per-step figures of the runs (of `definition`, or of all) that finished since `since`:
/// exact over 6 hours or less, else from the hourly rollups when they cover the window.
pub(crate) async fn steps(
    pool: &PgPool,
    since: DateTime<Utc>,
    definition: Option<&str>,
) -> sqlx::Result<Vec<StepInsight>> {
    // A minute of slack: a caller's "the last 6 hours" is computed a moment before this.
    if Utc::now() - since
        > chrono::Duration::hours(EXACT_WINDOW_HOURS) + chrono::Duration::minutes(1)
        && let Some(rolled) = crate::rollup::steps(pool, since, definition).await?
    {
        return Ok(rolled);
    }
    exact_steps(pool, since, definition).await
}

/// A read-only snapshot for reading a window's steps. The window's runs finished recently, so
/// their steps' pages are recent and cached: an index probe per run costs about what a
/// sequential page does, and `random_page_cost = 1.1` says so (with the default cost of 4 the
/// planner reads every step row of the table through a hash join instead).
pub(crate) async fn read_steps(
    pool: &PgPool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::query!("SET LOCAL random_page_cost = 1.1")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// [`steps`] from the step rows: exact percentiles.
async fn exact_steps(
    pool: &PgPool,
    since: DateTime<Utc>,
    definition: Option<&str>,
) -> sqlx::Result<Vec<StepInsight>> {
    let mut tx = read_steps(pool).await?;
    let rows = sqlx::query!(
        r#"WITH ended AS (
             SELECT r.definition, r.version, s.name, s.position, s.status, s.attempts, s.polls,
                    s.waited_ms::float8 AS waited_ms,
                    extract(epoch FROM s.finished_at - s.started_at)::float8 * 1000 AS duration_ms
             FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
             WHERE r.status IN ('succeeded', 'failed', 'cancelled') AND r.finished_at >= $1
               AND ($2::text IS NULL OR r.definition = $2)
               AND s.status IN ('succeeded', 'failed')
               AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
         )
         SELECT definition AS "definition!", version AS "version!", name AS "step!",
                count(*) AS "count!",
                count(*) FILTER (WHERE status = 'failed') AS "failed!",
                percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50!",
                percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95!",
                percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) AS "p99!",
                sum(greatest(attempts - 1, 0))::int8 AS "retries!",
                sum(polls)::int8 AS "polls!",
                sum(least(waited_ms, duration_ms)) AS "waiting!",
                sum(duration_ms) AS "total!"
         FROM ended
         GROUP BY definition, version, name
         ORDER BY definition, version, min(position)"#,
        since,
        definition,
    )
    .fetch_all(&mut *tx)
    .await?;
    let errors = sqlx::query!(
        r#"SELECT r.definition, r.version, s.name AS step, left(s.last_error, 200) AS "error!",
                  count(*) AS "steps!"
           FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
           WHERE r.status IN ('succeeded', 'failed', 'cancelled') AND r.finished_at >= $1
             AND ($2::text IS NULL OR r.definition = $2)
             AND s.status IN ('succeeded', 'failed') AND s.last_error IS NOT NULL
           GROUP BY 1, 2, 3, 4
           ORDER BY 5 DESC, 4"#,
        since,
        definition,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut out: Vec<StepInsight> = rows
        .into_iter()
        .map(|r| StepInsight {
            definition: r.definition,
            version: r.version,
            step: r.step,
            count: r.count,
            failed: r.failed,
            p50_ms: r.p50,
            p95_ms: r.p95,
            p99_ms: r.p99,
            retries: r.retries,
            polls: r.polls,
            waiting_ms: r.waiting,
            working_ms: r.total - r.waiting,
            errors: Vec::new(),
            exact: true,
        })
        .collect();
    for e in errors {
        if let Some(s) = out
            .iter_mut()
            .find(|s| s.definition == e.definition && s.version == e.version && s.step == e.step)
            && s.errors.len() < TOP_ERRORS
        {
            s.errors.push(ErrorCount {
                error: e.error,
                steps: e.steps,
            });
        }
    }
    Ok(out)
}

/// The runs of `definition` that finished since `since`.
pub(crate) async fn runs(
    pool: &PgPool,
    since: DateTime<Utc>,
    definition: &str,
) -> sqlx::Result<RunInsight> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE status = 'succeeded') AS "succeeded!",
                  count(*) FILTER (WHERE status = 'failed') AS "failed!",
                  count(*) FILTER (WHERE status = 'cancelled') AS "cancelled!",
                  percentile_disc(0.5) WITHIN GROUP (ORDER BY d) FILTER (WHERE status = 'succeeded') AS p50,
                  percentile_disc(0.95) WITHIN GROUP (ORDER BY d) FILTER (WHERE status = 'succeeded') AS p95,
                  percentile_disc(0.99) WITHIN GROUP (ORDER BY d) FILTER (WHERE status = 'succeeded') AS p99
           FROM (SELECT status, extract(epoch FROM finished_at - created_at)::float8 * 1000 AS d
                 FROM urumi.runs
                 WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $1
                   AND definition = $2) f"#,
        since,
        definition,
    )
    .fetch_one(&mut *tx)
    .await?;
    // width_bucket: 0 below the first bound, i for [bound i-1, bound i), n from the last on:
    // exactly the histogram's buckets.
    let buckets = sqlx::query!(
        r#"SELECT width_bucket(extract(epoch FROM finished_at - created_at)::float8, $3::float8[]) AS "bucket!",
                  count(*) AS "runs!"
           FROM urumi.runs
           WHERE status = 'succeeded' AND finished_at >= $1 AND definition = $2
           GROUP BY 1"#,
        since,
        definition,
        &RUN_BUCKETS_SECONDS[..],
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut histogram = vec![0; RUN_BUCKETS_SECONDS.len() + 1];
    for b in buckets {
        if let Some(slot) = histogram.get_mut(b.bucket as usize) {
            *slot += b.runs;
        }
    }
    Ok(RunInsight {
        definition: definition.to_owned(),
        succeeded: r.succeeded,
        failed: r.failed,
        cancelled: r.cancelled,
        p50_ms: r.p50,
        p95_ms: r.p95,
        p99_ms: r.p99,
        histogram,
    })
}
