//! Metrics hooks: counters and a step-duration histogram the worker updates as it goes, and
//! queue gauges read from Postgres. [`Metrics::render`] writes the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;

const BUCKETS_MS: [u64; 11] = [1, 5, 10, 25, 50, 100, 250, 1000, 5000, 30_000, 300_000];

/// Step duration histogram (cumulative buckets in milliseconds).
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// Counters shared by a worker's tasks. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    steps_started: AtomicU64,
    steps_succeeded: AtomicU64,
    steps_waiting: AtomicU64,
    steps_retried: AtomicU64,
    steps_failed: AtomicU64,
    runs_succeeded: AtomicU64,
    runs_failed: AtomicU64,
    runs_cancelled: AtomicU64,
    leases_taken_over: AtomicU64,
    pruned_runs: AtomicU64,
    pruned_events: AtomicU64,
    step_duration: Histogram,
}

/// What a step attempt ended as, for counting.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttemptEnd {
    Succeeded,
    Waiting,
    Retrying,
    Failed,
}

impl Metrics {
    pub(crate) fn step_started(&self) {
        self.0.steps_started.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn step_ended(&self, end: AttemptEnd, took: Duration) {
        let c = match end {
            AttemptEnd::Succeeded => &self.0.steps_succeeded,
            AttemptEnd::Waiting => &self.0.steps_waiting,
            AttemptEnd::Retrying => &self.0.steps_retried,
            AttemptEnd::Failed => &self.0.steps_failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
        let h = &self.0.step_duration;
        let ms = took.as_millis() as u64;
        for (i, le) in BUCKETS_MS.iter().enumerate() {
            if ms <= *le {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn run_ended(&self, status: crate::RunStatus) {
        let c = match status {
            crate::RunStatus::Succeeded => &self.0.runs_succeeded,
            crate::RunStatus::Failed => &self.0.runs_failed,
            crate::RunStatus::Cancelled => &self.0.runs_cancelled,
            _ => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leases_taken_over(&self, n: u64) {
        self.0.leases_taken_over.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn pruned(&self, r: &crate::PruneReport) {
        self.0.pruned_runs.fetch_add(r.runs, Ordering::Relaxed);
        self.0.pruned_events.fetch_add(r.events, Ordering::Relaxed);
    }

    /// Steps that succeeded in this process so far.
    #[must_use]
    pub fn steps_succeeded(&self) -> u64 {
        self.0.steps_succeeded.load(Ordering::Relaxed)
    }

    /// The counters and histogram in Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        let i = &self.0;
        let mut out = String::new();
        let counters = [
            (
                "urumi_steps_started_total",
                "Step attempts and polls started.",
                &i.steps_started,
            ),
            (
                "urumi_steps_succeeded_total",
                "Steps that succeeded.",
                &i.steps_succeeded,
            ),
            (
                "urumi_steps_waiting_total",
                "Step attempts that returned wait (polls).",
                &i.steps_waiting,
            ),
            (
                "urumi_step_retries_total",
                "Step attempts that failed and were scheduled again.",
                &i.steps_retried,
            ),
            (
                "urumi_steps_failed_total",
                "Steps that failed for good.",
                &i.steps_failed,
            ),
            (
                "urumi_runs_succeeded_total",
                "Runs that succeeded.",
                &i.runs_succeeded,
            ),
            (
                "urumi_runs_failed_total",
                "Runs that failed.",
                &i.runs_failed,
            ),
            (
                "urumi_runs_cancelled_total",
                "Runs cancelled at a step boundary.",
                &i.runs_cancelled,
            ),
            (
                "urumi_leases_taken_over_total",
                "Expired leases put back in the queue by this process.",
                &i.leases_taken_over,
            ),
            (
                "urumi_pruned_runs_total",
                "Finished runs (with their steps) deleted by this process's pruner.",
                &i.pruned_runs,
            ),
            (
                "urumi_pruned_events_total",
                "Events deleted by this process's pruner.",
                &i.pruned_events,
            ),
        ];
        for (name, help, c) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let h = &i.step_duration;
        let name = "urumi_step_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Duration of step attempts.\n# TYPE {name} histogram"
        );
        for (idx, le) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {}",
                *le as f64 / 1000.0,
                h.buckets[idx].load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
        out
    }
}

/// Queue gauges read from Postgres (shared by all workers).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct QueueGauges {
    /// Runs due now and not yet claimed.
    pub due: i64,
    /// Runs waiting (backing off or polling) for a later time.
    pub waiting: i64,
    /// Runs a worker holds.
    pub running: i64,
    /// Seconds the longest-due unclaimed run has been due (0 if none).
    pub oldest_due_age_seconds: f64,
}

impl QueueGauges {
    /// Reads the gauges.
    ///
    /// # Errors
    /// The database error.
    pub async fn read(pool: &PgPool) -> sqlx::Result<Self> {
        let (due, waiting, running, oldest): (i64, i64, i64, f64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND wake_at <= now()),
                    count(*) FILTER (WHERE status = 'waiting' AND wake_at > now()),
                    count(*) FILTER (WHERE status = 'running'),
                    coalesce(extract(epoch FROM now() - min(wake_at) FILTER (
                        WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND wake_at <= now())), 0)::float8
             FROM urumi.runs WHERE status IN ('queued', 'waiting', 'running')",
        )
        .fetch_one(pool)
        .await?;
        Ok(Self {
            due,
            waiting,
            running,
            oldest_due_age_seconds: oldest,
        })
    }

    /// The gauges in Prometheus text format.
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "# HELP urumi_queue_due_runs Runs due and not yet claimed.\n# TYPE urumi_queue_due_runs gauge\nurumi_queue_due_runs {}\n\
             # HELP urumi_queue_waiting_runs Runs waiting for a later time.\n# TYPE urumi_queue_waiting_runs gauge\nurumi_queue_waiting_runs {}\n\
             # HELP urumi_queue_running_runs Runs held by a worker.\n# TYPE urumi_queue_running_runs gauge\nurumi_queue_running_runs {}\n\
             # HELP urumi_queue_oldest_due_age_seconds Age of the longest-due unclaimed run.\n# TYPE urumi_queue_oldest_due_age_seconds gauge\nurumi_queue_oldest_due_age_seconds {}\n",
            self.due, self.waiting, self.running, self.oldest_due_age_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_counts_into_cumulative_buckets() {
        let m = Metrics::default();
        m.step_ended(AttemptEnd::Succeeded, Duration::from_millis(3));
        m.step_ended(AttemptEnd::Retrying, Duration::from_millis(700));
        let text = m.render();
        assert!(
            text.contains("urumi_step_duration_seconds_bucket{le=\"0.001\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("urumi_step_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("urumi_step_duration_seconds_bucket{le=\"1\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("urumi_step_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("urumi_step_retries_total 1"), "{text}");
        assert_eq!(m.steps_succeeded(), 1);
    }
}
