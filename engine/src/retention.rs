//! Retention: what the engine's tables keep, and the pruner that enforces it.
//!
//! ```text
//!   succeeded runs   ─┐ after `succeeded`  ─► run, its steps and its progress events go
//!   failed runs      ─┤ after `failed`        (step.*, PROGRESS_RUN_KINDS)
//!   cancelled runs   ─┘ after `failed`
//!   every event         after `audit`      ─► operators' entries (run.created, run.retried,
//!                                              run.cancelled, store.*, token.*, …) outlive
//!                                              their run until then
//!   stopped workers     after `workers`
//!   schedule slots      after `failed`     ─► which run each cron slot started (or why none)
//! ```
//!
//! Pruning runs in batches of `batch` rows, each its own short transaction, with a pause
//! between batches; runs are picked oldest first through `runs_finished` with `SKIP LOCKED`,
//! so two workers pruning at once share the work and nothing that claims, checkpoints or
//! reads a run waits on the pruner. Active runs (queued, running, waiting) are never pruned.

use std::time::Duration;

use sqlx::PgPool;

use crate::db::millis;

/// The run events that tell a run's progress (with every `step.*` event): they go with the
/// run. The rest — `run.created`, `run.retried`, `run.cancel_requested`, `run.cancelled`
/// (whoever cancelled) and the callers' own entries — are operators' actions, kept for the
/// audit window.
pub const PROGRESS_RUN_KINDS: [&str; 5] = [
    "run.claimed",
    "run.lease_expired",
    "run.released",
    "run.succeeded",
    "run.failed",
];

const DAY: Duration = Duration::from_secs(24 * 3600);

/// How long finished runs and audit entries are kept, and how the pruner paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Succeeded runs, with their steps and progress events.
    pub succeeded: Duration,
    /// Failed and cancelled runs (kept longer: an operator may still retry or study them).
    pub failed: Duration,
    /// Every event, operators' audit entries included. At least `succeeded` and `failed`.
    pub audit: Duration,
    /// Rows of workers that stopped (or stopped heart-beating).
    pub workers: Duration,
    /// Rows deleted per transaction.
    pub batch: u32,
    /// Pause between two batches, so pruning never takes more than its share of the database.
    pub pause: Duration,
    /// How often a worker looks for something to prune.
    pub interval: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            succeeded: 30 * DAY,
            failed: 180 * DAY,
            audit: 365 * DAY,
            workers: 7 * DAY,
            batch: 500,
            pause: Duration::from_millis(20),
            interval: Duration::from_secs(60),
        }
    }
}

impl Retention {
    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first problem found, naming the setting (`retention.…`).
    pub fn validate(&self) -> Result<(), String> {
        if self.audit < self.succeeded || self.audit < self.failed {
            return Err(
                "retention.audit_days must be at least retention.succeeded_days and \
                 retention.failed_days (a run's events are kept while the run is)"
                    .into(),
            );
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err("retention.batch must be between 1 and 10000".into());
        }
        if self.interval.is_zero() {
            return Err("retention.interval_ms must be > 0".into());
        }
        Ok(())
    }
}

/// What one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub runs: u64,
    pub steps: u64,
    /// Progress events deleted with their runs, and events older than the audit window.
    pub events: u64,
    pub workers: u64,
    /// Scheduled slots ([`crate::Schedule`]) older than the failed-runs window.
    pub slots: u64,
    /// Owners of the bulk lane's round robin (`urumi.bulk_owners`) idle for longer than the
    /// workers' window, with no bulk run queued or running.
    pub bulk_owners: u64,
}

impl PruneReport {
    /// Rows deleted in all.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.runs + self.steps + self.events + self.workers + self.slots + self.bulk_owners
    }

    fn add(&mut self, o: PruneReport) {
        self.runs += o.runs;
        self.steps += o.steps;
        self.events += o.events;
        self.workers += o.workers;
        self.slots += o.slots;
        self.bulk_owners += o.bulk_owners;
    }
}

/// Which finished runs a batch prunes.
#[derive(Debug, Clone, Copy)]
enum FinishedRuns {
    Succeeded,
    Failed,
    Cancelled,
}

impl FinishedRuns {
    const ALL: [FinishedRuns; 3] = [Self::Succeeded, Self::Failed, Self::Cancelled];

    fn status(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn kept(self, r: &Retention) -> Duration {
        match self {
            Self::Succeeded => r.succeeded,
            Self::Failed | Self::Cancelled => r.failed,
        }
    }
}

/// Prunes everything that is past its retention, batch after batch, until nothing is left.
///
/// # Errors
/// The database's; what was deleted before the error stays deleted.
pub(crate) async fn prune(pool: &PgPool, r: &Retention) -> sqlx::Result<PruneReport> {
    let mut total = PruneReport::default();
    for which in FinishedRuns::ALL {
        loop {
            let got = prune_runs(pool, which, r).await?;
            total.add(got);
            if got.runs < u64::from(r.batch) {
                break;
            }
            tokio::time::sleep(r.pause).await;
        }
    }
    total.events += prune_old_events(pool, r).await?;
    total.workers += sqlx::query!(
        "DELETE FROM urumi.workers
         WHERE coalesce(stopped_at, heartbeat_at) < now() - $1 * interval '1 millisecond'",
        millis(r.workers),
    )
    .execute(pool)
    .await?
    .rows_affected();
    // An owner without a row only loses the round robin's tie-break memory (it counts as
    // never served, and its next claim writes the row again).
    total.bulk_owners += sqlx::query!(
        "DELETE FROM urumi.bulk_owners bo
         WHERE last_claimed_at < now() - $1 * interval '1 millisecond'
           AND NOT EXISTS (SELECT 1 FROM urumi.runs r
                           WHERE r.lane = 'bulk' AND r.owner = bo.owner
                             AND r.status IN ('queued', 'running', 'waiting'))",
        millis(r.workers),
    )
    .execute(pool)
    .await?
    .rows_affected();
    loop {
        let slots = sqlx::query!(
            "DELETE FROM urumi.schedule_slots WHERE (schedule, slot_at) IN (
                 SELECT schedule, slot_at FROM urumi.schedule_slots
                 WHERE created_at < now() - $1 * interval '1 millisecond'
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            millis(r.failed),
            i64::from(r.batch),
        )
        .execute(pool)
        .await?
        .rows_affected();
        total.slots += slots;
        if slots < u64::from(r.batch) {
            break;
        }
        tokio::time::sleep(r.pause).await;
    }
    Ok(total)
}

/// One batch of finished runs: the runs, their steps and their progress events, in one
/// statement. Operators' entries about the run (`run.created`, `run.retried`, …) stay.
async fn prune_runs(
    pool: &PgPool,
    which: FinishedRuns,
    r: &Retention,
) -> sqlx::Result<PruneReport> {
    let row = sqlx::query!(
        r#"WITH doomed AS (
             SELECT id FROM urumi.runs
             WHERE status = $1 AND finished_at < now() - $2 * interval '1 millisecond'
             ORDER BY finished_at LIMIT $3
             FOR UPDATE SKIP LOCKED
         ), progress AS (
             DELETE FROM urumi.events e USING doomed
             WHERE e.run_id = doomed.id
               AND (e.kind LIKE 'step.%' OR e.kind = ANY($4))
             RETURNING 1
         ), steps AS (
             DELETE FROM urumi.steps s USING doomed WHERE s.run_id = doomed.id RETURNING 1
         ), runs AS (
             DELETE FROM urumi.runs r USING doomed WHERE r.id = doomed.id RETURNING 1
         )
         SELECT (SELECT count(*) FROM runs) AS "runs!", (SELECT count(*) FROM steps) AS "steps!",
                (SELECT count(*) FROM progress) AS "events!""#,
        which.status(),
        millis(which.kept(r)),
        i64::from(r.batch),
        // `&[&str]` bound as it is (`as _`): the macro's check knows only `&[String]`.
        &PROGRESS_RUN_KINDS[..] as _,
    )
    .fetch_one(pool)
    .await?;
    Ok(PruneReport {
        runs: row.runs as u64,
        steps: row.steps as u64,
        events: row.events as u64,
        ..PruneReport::default()
    })
}

/// Events older than the audit window, oldest first, walking the primary key in ranges of
/// `batch` ids from the oldest event: ids are handed out in time order, so the walk stops at
/// the first range that holds an event inside the window. (No index on `created_at`: every
/// event insert would pay for it.)
async fn prune_old_events(pool: &PgPool, r: &Retention) -> sqlx::Result<u64> {
    let bounds = sqlx::query!("SELECT min(id) AS lo, max(id) AS hi FROM urumi.events")
        .fetch_one(pool)
        .await?;
    let (Some(mut lo), Some(max)) = (bounds.lo, bounds.hi) else {
        return Ok(0);
    };
    let span = i64::from(r.batch);
    let mut deleted = 0;
    while lo <= max {
        let row = sqlx::query!(
            r#"WITH gone AS (
                 DELETE FROM urumi.events
                 WHERE id >= $1 AND id < $1 + $2 AND created_at < now() - $3 * interval '1 millisecond'
                 RETURNING 1
             )
             SELECT (SELECT count(*) FROM gone) AS "gone!",
                    EXISTS (SELECT 1 FROM urumi.events
                            WHERE id >= $1 AND id < $1 + $2
                              AND created_at >= now() - $3 * interval '1 millisecond') AS "inside!""#,
            lo,
            span,
            millis(r.audit),
        )
        .fetch_one(pool)
        .await?;
        let gone = row.gone as u64;
        deleted += gone;
        if row.inside {
            break;
        }
        lo += span;
        if gone > 0 {
            tokio::time::sleep(r.pause).await;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        Retention::default().validate().unwrap();
        let short_audit = Retention {
            audit: DAY,
            ..Retention::default()
        };
        assert!(short_audit.validate().unwrap_err().contains("audit_days"));
        let no_batch = Retention {
            batch: 0,
            ..Retention::default()
        };
        assert!(no_batch.validate().unwrap_err().contains("batch"));
    }
}
