//! Hourly rollups of finished steps, so step insights over long windows stay fast: a 30-day
//! window reads its 720 hours' rows (`urumi.step_hours`, `urumi.step_hour_errors`) plus the raw
//! steps of its two ragged ends, not a month of step rows.
//!
//! ```text
//!  workers' pruner loop ─► roll: hours [done_until, last ended hour) a day per transaction,
//!      under the one row of urumi.insight_rollup (FOR UPDATE SKIP LOCKED: one roller at a
//!      time) ─► step_hours (+ errors) ─► done_until moves ─► hours past the longest window go
//!  read (window > a day): rolled hours inside the window + raw steps of the window's ragged
//!      start and of the hours not rolled yet ─► merged per definition/version/step
//! ```
//!
//! # Guarantees
//! - Counts, failures, retries, polls and waiting/working sums over a long window equal the
//!   exact figures of the same runs (an hour is rolled once, after it ended, with 5 minutes of
//!   slack for late commits).
//! - Percentiles over a long window come from a duration histogram of log buckets (factor
//!   [`RATIO`]): the answer is a bucket's geometric middle, within ±2.5 % of the exact
//!   `percentile_disc` value. Windows of 6 hours or less are exact (`StepInsight::exact`).
//!
//! # Assumptions
//! A run counts in the hour it finished. A failed run retried later finishes again: its
//! steps count in the hour of their first end (rolled then) and again in the hour of the new
//! end, as each ending happened.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use sqlx::PgPool;

use crate::insights::{ErrorCount, MAX_WINDOW_HOURS, StepInsight, TOP_ERRORS};

/// The ratio between two histogram buckets' bounds: bucket `b >= 1` holds durations in
/// `[RATIO^(b-1), RATIO^b)` ms, bucket 0 those under 1 ms.
pub const RATIO: f64 = 1.05;

/// A bucket's stand-in value (ms): its geometric middle (0.5 ms for bucket 0).
#[must_use]
pub fn bucket_value(b: i32) -> f64 {
    if b <= 0 {
        0.5
    } else {
        RATIO.powi(b - 1) * RATIO.sqrt()
    }
}

/// What one pass rolled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rolled {
    /// Hours rolled.
    pub hours: i64,
    /// Rows written to `step_hours`.
    pub rows: u64,
}

/// Rolls every ended hour not rolled yet, a day per transaction, and drops hours past the
/// longest window. Another worker rolling meanwhile makes this pass a no-op.
///
/// # Errors
/// The database's; hours rolled before the error stay rolled.
pub(crate) async fn roll(pool: &PgPool) -> sqlx::Result<Rolled> {
    let mut out = Rolled::default();
    sqlx::query!(
        "INSERT INTO urumi.insight_rollup (done_until)
         VALUES (date_trunc('hour', now()) - $1 * interval '1 hour')
         ON CONFLICT (id) DO NOTHING",
        f64::from(MAX_WINDOW_HOURS),
    )
    .execute(pool)
    .await?;
    loop {
        let mut tx = pool.begin().await?;
        let Some(row) = sqlx::query!(
            "SELECT done_until, date_trunc('hour', now() - interval '5 minutes') AS \"ended!\"
             FROM urumi.insight_rollup FOR UPDATE SKIP LOCKED"
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(out);
        };
        let from = row.done_until;
        let to = (from + Duration::hours(24)).min(row.ended);
        if to <= from {
            break;
        }
        sqlx::query!("SET LOCAL random_page_cost = 1.1")
            .execute(&mut *tx)
            .await?;
        out.rows += sqlx::query!(
            r#"WITH ended AS (
                 SELECT date_trunc('hour', r.finished_at) AS hour, r.definition, r.version,
                        s.name, s.position, s.status, greatest(s.attempts - 1, 0) AS retries,
                        s.polls, s.waited_ms::float8 AS waited_ms,
                        extract(epoch FROM s.finished_at - s.started_at)::float8 * 1000 AS d
                 FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
                 WHERE r.status IN ('succeeded', 'failed', 'cancelled')
                   AND r.finished_at >= $1 AND r.finished_at < $2
                   AND s.status IN ('succeeded', 'failed')
                   AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
             ), bucketed AS (
                 SELECT *, CASE WHEN d < 1 THEN 0 ELSE floor(ln(d) / ln($3::float8))::int4 + 1 END AS b
                 FROM ended
             ), hist AS (
                 SELECT hour, definition, version, name,
                        array_agg(b ORDER BY b) AS bs, array_agg(n ORDER BY b) AS ns
                 FROM (SELECT hour, definition, version, name, b, count(*) AS n
                       FROM bucketed GROUP BY 1, 2, 3, 4, 5) p
                 GROUP BY 1, 2, 3, 4
             )
             INSERT INTO urumi.step_hours (hour, definition, version, step, position, count,
                 failed, retries, polls, waiting_ms, total_ms, buckets, counts)
             SELECT a.hour, a.definition, a.version, a.name, a.position, a.n, a.failed,
                    a.retries, a.polls, a.waiting, a.total, h.bs, h.ns
             FROM (SELECT hour, definition, version, name, min(position) AS position,
                          count(*) AS n, count(*) FILTER (WHERE status = 'failed') AS failed,
                          sum(retries)::int8 AS retries, sum(polls)::int8 AS polls,
                          sum(least(waited_ms, d)) AS waiting, sum(d) AS total
                   FROM bucketed GROUP BY 1, 2, 3, 4) a
             JOIN hist h USING (hour, definition, version, name)
             ON CONFLICT (hour, definition, version, step) DO NOTHING"#,
            from,
            to,
            RATIO,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query!(
            "INSERT INTO urumi.step_hour_errors (hour, definition, version, step, error, steps)
             SELECT date_trunc('hour', r.finished_at), r.definition, r.version, s.name,
                    left(s.last_error, 200), count(*)
             FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
             WHERE r.status IN ('succeeded', 'failed', 'cancelled')
               AND r.finished_at >= $1 AND r.finished_at < $2
               AND s.status IN ('succeeded', 'failed') AND s.last_error IS NOT NULL
             GROUP BY 1, 2, 3, 4, 5
             ON CONFLICT (hour, definition, version, step, error) DO NOTHING",
            from,
            to,
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!("UPDATE urumi.insight_rollup SET done_until = $1", to)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        out.hours += (to - from).num_hours();
    }
    // Hours no window reaches any more.
    let keep = f64::from(MAX_WINDOW_HOURS + 1);
    sqlx::query!(
        "DELETE FROM urumi.step_hours WHERE hour < now() - $1 * interval '1 hour'",
        keep
    )
    .execute(pool)
    .await?;
    sqlx::query!(
        "DELETE FROM urumi.step_hour_errors WHERE hour < now() - $1 * interval '1 hour'",
        keep
    )
    .execute(pool)
    .await?;
    Ok(out)
}

#[derive(Default)]
struct Acc {
    position: i32,
    count: i64,
    failed: i64,
    retries: i64,
    polls: i64,
    waiting: f64,
    total: f64,
    /// Count per bucket number (dense: a few hundred buckets cover a month in ms).
    hist: Vec<i64>,
    errors: HashMap<String, i64>,
}

impl Acc {
    /// The accumulator of `key`, its position the lowest seen.
    fn of(accs: &mut BTreeMap<Key, Acc>, key: Key, position: i32) -> &mut Acc {
        let a = accs.entry(key).or_insert_with(|| Acc {
            position,
            ..Acc::default()
        });
        a.position = a.position.min(position);
        a
    }

    /// Adds counts (steps, failed, retries, polls) and times (waiting, total ms).
    fn sums(&mut self, [count, failed, retries, polls]: [i64; 4], [waiting, total]: [f64; 2]) {
        self.count += count;
        self.failed += failed;
        self.retries += retries;
        self.polls += polls;
        self.waiting += waiting;
        self.total += total;
    }

    fn add(&mut self, bucket: i32, n: i64) {
        let i = usize::try_from(bucket.max(0)).unwrap_or(0);
        if self.hist.len() <= i {
            self.hist.resize(i + 1, 0);
        }
        self.hist[i] += n;
    }

    fn percentile(&self, p: f64) -> f64 {
        // percentile_disc: the first value whose cumulative count reaches p of all.
        let rank = ((p * self.count as f64).ceil() as i64).max(1);
        let mut seen = 0;
        let mut last = 0;
        for (b, n) in self.hist.iter().enumerate().filter(|(_, n)| **n > 0) {
            seen += n;
            last = b;
            if seen >= rank {
                break;
            }
        }
        bucket_value(i32::try_from(last).unwrap_or(i32::MAX))
    }
}

type Key = (String, i32, String);

/// Step insights since `since` from the rolled hours inside the window and the raw steps of
/// the rest; `None` when nothing is rolled inside the window yet (read the raw steps then).
pub(crate) async fn steps(
    pool: &PgPool,
    since: DateTime<Utc>,
    definition: Option<&str>,
) -> sqlx::Result<Option<Vec<StepInsight>>> {
    let mut tx = crate::insights::read_steps(pool).await?;
    let Some(done_until) = sqlx::query_scalar!("SELECT done_until FROM urumi.insight_rollup")
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let truncated = since.duration_trunc(Duration::hours(1)).unwrap_or(since);
    let first_hour = if truncated == since {
        since
    } else {
        truncated + Duration::hours(1)
    };
    if done_until <= first_hour {
        return Ok(None);
    }
    let mut accs: BTreeMap<Key, Acc> = BTreeMap::new();
    let rolled = sqlx::query!(
        "SELECT definition, version, step, position, count, failed, retries, polls,
                waiting_ms, total_ms, buckets, counts
         FROM urumi.step_hours
         WHERE hour >= $1 AND hour < $2 AND ($3::text IS NULL OR definition = $3)",
        first_hour,
        done_until,
        definition,
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in rolled {
        let a = Acc::of(&mut accs, (r.definition, r.version, r.step), r.position);
        a.sums(
            [r.count, r.failed, r.retries, r.polls],
            [r.waiting_ms, r.total_ms],
        );
        for (b, n) in r.buckets.iter().zip(&r.counts) {
            a.add(*b, *n);
        }
    }
    // The ragged start [since, first_hour) and the hours not rolled yet [done_until, now).
    // Two ranges, each its own index scan (an OR of them would read the whole window).
    let raw = sqlx::query!(
        r#"WITH runs AS (
             SELECT id, definition, version FROM urumi.runs
             WHERE status IN ('succeeded', 'failed', 'cancelled')
               AND finished_at >= $1 AND finished_at < $2
               AND ($4::text IS NULL OR definition = $4)
             UNION ALL
             SELECT id, definition, version FROM urumi.runs
             WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $3
               AND ($4::text IS NULL OR definition = $4)
         ), ended AS (
             SELECT r.definition, r.version, s.name, s.position, s.status,
                    greatest(s.attempts - 1, 0) AS retries, s.polls,
                    s.waited_ms::float8 AS waited_ms,
                    extract(epoch FROM s.finished_at - s.started_at)::float8 * 1000 AS d
             FROM runs r JOIN urumi.steps s ON s.run_id = r.id
             WHERE s.status IN ('succeeded', 'failed')
               AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
         )
         SELECT definition AS "definition!", version AS "version!", name AS "step!",
                min(position) AS "position!",
                CASE WHEN d < 1 THEN 0 ELSE floor(ln(d) / ln($5::float8))::int4 + 1 END AS "bucket!",
                count(*) AS "count!", count(*) FILTER (WHERE status = 'failed') AS "failed!",
                sum(retries)::int8 AS "retries!", sum(polls)::int8 AS "polls!",
                sum(least(waited_ms, d)) AS "waiting!", sum(d) AS "total!"
         FROM ended GROUP BY 1, 2, 3, 5"#,
        since,
        first_hour,
        done_until,
        definition,
        RATIO,
    )
    .fetch_all(&mut *tx)
    .await?;
    for r in raw {
        let a = Acc::of(&mut accs, (r.definition, r.version, r.step), r.position);
        a.sums(
            [r.count, r.failed, r.retries, r.polls],
            [r.waiting, r.total],
        );
        a.add(r.bucket, r.count);
    }
    let errors = sqlx::query!(
        r#"SELECT definition AS "definition!", version AS "version!", step AS "step!",
                  error AS "error!", sum(steps)::int8 AS "steps!"
           FROM (SELECT definition, version, step, error, steps
                 FROM urumi.step_hour_errors
                 WHERE hour >= $2 AND hour < $3 AND ($4::text IS NULL OR definition = $4)
                 UNION ALL
                 SELECT r.definition, r.version, s.name, left(s.last_error, 200), 1
                 FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
                 WHERE r.status IN ('succeeded', 'failed', 'cancelled')
                   AND ((r.finished_at >= $1 AND r.finished_at < $2) OR r.finished_at >= $3)
                   AND ($4::text IS NULL OR r.definition = $4)
                   AND s.status IN ('succeeded', 'failed') AND s.last_error IS NOT NULL) e
           GROUP BY 1, 2, 3, 4"#,
        since,
        first_hour,
        done_until,
        definition,
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    for e in errors {
        if let Some(a) = accs.get_mut(&(e.definition, e.version, e.step)) {
            a.errors.insert(e.error, e.steps);
        }
    }
    let mut out: Vec<(i32, StepInsight)> = accs
        .into_iter()
        .map(|((definition, version, step), a)| {
            let mut errors: Vec<ErrorCount> = a
                .errors
                .iter()
                .map(|(error, steps)| ErrorCount {
                    error: error.clone(),
                    steps: *steps,
                })
                .collect();
            errors.sort_by(|x, y| y.steps.cmp(&x.steps).then_with(|| x.error.cmp(&y.error)));
            errors.truncate(TOP_ERRORS);
            (
                a.position,
                StepInsight {
                    p50_ms: a.percentile(0.5),
                    p95_ms: a.percentile(0.95),
                    p99_ms: a.percentile(0.99),
                    definition,
                    version,
                    step,
                    count: a.count,
                    failed: a.failed,
                    retries: a.retries,
                    polls: a.polls,
                    waiting_ms: a.waiting,
                    working_ms: a.total - a.waiting,
                    errors,
                    exact: false,
                },
            )
        })
        .collect();
    out.sort_by(|(pa, a), (pb, b)| {
        (&a.definition, a.version, pa).cmp(&(&b.definition, b.version, pb))
    });
    Ok(Some(out.into_iter().map(|(_, s)| s).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_value_is_within_its_bounds_and_2_5_percent_of_them() {
        for b in 1..400 {
            let (lo, hi) = (RATIO.powi(b - 1), RATIO.powi(b));
            let v = bucket_value(b);
            assert!(lo <= v && v < hi, "{b}");
            assert!(v / lo <= 1.025 && hi / v <= 1.025, "{b}");
        }
    }

    #[test]
    fn percentiles_are_the_first_bucket_whose_cumulative_count_reaches_the_rank() {
        let mut a = Acc {
            count: 100,
            ..Acc::default()
        };
        for (b, n) in [(10, 50), (20, 45), (30, 5)] {
            a.add(b, n);
        }
        assert_eq!(a.percentile(0.5), bucket_value(10));
        assert_eq!(a.percentile(0.51), bucket_value(20));
        assert_eq!(a.percentile(0.95), bucket_value(20));
        assert_eq!(a.percentile(0.99), bucket_value(30));
    }
}
