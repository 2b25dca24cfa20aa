//! Metrics of a worker process on `prometheus-client` (the Prometheus project's Rust client;
//! OpenMetrics text): step attempts started and how they ended, step durations and runs
//! ended — labelled by definition, version and step, a bounded set (never a run or store
//! id) — leases taken over and rows pruned; and the queue gauges read from Postgres, which
//! the API serves, in total and by lane ([`QueueGauges`], [`LaneQueue`]).
//! [`Metrics::render`] and [`QueueGauges::render`] write the text.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::model::{Lane, LaneColumn};

/// Step-duration buckets, in seconds: from a no-op step to a five-minute wait for a cluster.
const BUCKETS_SECONDS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0, 300.0,
];

/// Which step of which definition version.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StepLabels {
    pub definition: String,
    pub version: String,
    pub step: String,
}

impl StepLabels {
    pub(crate) fn new(definition: &str, version: i32, step: &str) -> Self {
        Self {
            definition: definition.to_owned(),
            version: version.to_string(),
            step: step.to_owned(),
        }
    }
}

/// What a step attempt ended as.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    /// Done: checkpointed.
    Succeeded,
    /// Not yet: the step polls again later (no attempt spent).
    Waiting,
    /// Failed retryably (or transiently): tried again after a backoff.
    Retrying,
    /// Failed for good: the run failed.
    Failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    definition: String,
    version: String,
    step: String,
    outcome: AttemptEnd,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum RunEnd {
    Succeeded,
    Failed,
    Cancelled,
}

impl EncodeLabelValue for AttemptEnd {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(match self {
            Self::Succeeded => "succeeded",
            Self::Waiting => "waiting",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        })
    }
}

impl EncodeLabelValue for RunEnd {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    definition: String,
    version: String,
    status: RunEnd,
}

type HistogramFamily = Family<StepLabels, Histogram, fn() -> Histogram>;

/// A worker's metrics, shared by its tasks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    registry: Registry,
    attempts_started: Family<StepLabels, Counter>,
    attempts_ended: Family<AttemptLabels, Counter>,
    step_duration: HistogramFamily,
    step_wait: HistogramFamily,
    runs_ended: Family<RunLabels, Counter>,
    leases_taken_over: Counter,
    pruned_runs: Counter,
    pruned_events: Counter,
}

fn step_histogram() -> Histogram {
    Histogram::new(BUCKETS_SECONDS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let attempts_started = Family::<StepLabels, Counter>::default();
        registry.register(
            "urumi_step_attempts_started",
            "Step attempts and polls started",
            attempts_started.clone(),
        );
        let attempts_ended = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "urumi_step_attempts_ended",
            "Step attempts and polls ended, by outcome (succeeded, waiting, retrying, failed)",
            attempts_ended.clone(),
        );
        let step_duration: HistogramFamily = Family::new_with_constructor(step_histogram);
        registry.register(
            "urumi_step_duration_seconds",
            "Duration of step attempts and polls",
            step_duration.clone(),
        );
        let step_wait: HistogramFamily = Family::new_with_constructor(step_histogram);
        registry.register(
            "urumi_step_wait_seconds",
            "How long a waiting step waited (a readiness poll's or a retry's backoff, until it ran again)",
            step_wait.clone(),
        );
        let runs_ended = Family::<RunLabels, Counter>::default();
        registry.register(
            "urumi_runs_ended",
            "Runs this process ended, by status",
            runs_ended.clone(),
        );
        let leases_taken_over = Counter::default();
        registry.register(
            "urumi_leases_taken_over",
            "Expired leases put back in the queue by this process",
            leases_taken_over.clone(),
        );
        let pruned_runs = Counter::default();
        registry.register(
            "urumi_pruned_runs",
            "Finished runs (with their steps) deleted by this process's pruner",
            pruned_runs.clone(),
        );
        let pruned_events = Counter::default();
        registry.register(
            "urumi_pruned_events",
            "Events deleted by this process's pruner",
            pruned_events.clone(),
        );
        Self(Arc::new(Inner {
            registry,
            attempts_started,
            attempts_ended,
            step_duration,
            step_wait,
            runs_ended,
            leases_taken_over,
            pruned_runs,
            pruned_events,
        }))
    }
}

impl Metrics {
    pub(crate) fn step_started(&self, step: &StepLabels) {
        self.0.attempts_started.get_or_create(step).inc();
    }

    pub(crate) fn step_ended(&self, step: &StepLabels, end: AttemptEnd, took: Duration) {
        let labels = AttemptLabels {
            definition: step.definition.clone(),
            version: step.version.clone(),
            step: step.step.clone(),
            outcome: end,
        };
        self.0.attempts_ended.get_or_create(&labels).inc();
        self.0
            .step_duration
            .get_or_create(step)
            .observe(took.as_secs_f64());
    }

    pub(crate) fn step_waited(&self, step: &StepLabels, waited: Duration) {
        self.0
            .step_wait
            .get_or_create(step)
            .observe(waited.as_secs_f64());
    }

    pub(crate) fn run_ended(&self, definition: &str, version: i32, status: RunEnd) {
        let labels = RunLabels {
            definition: definition.to_owned(),
            version: version.to_string(),
            status,
        };
        self.0.runs_ended.get_or_create(&labels).inc();
    }

    pub(crate) fn leases_taken_over(&self, n: u64) {
        self.0.leases_taken_over.inc_by(n);
    }

    pub(crate) fn pruned(&self, r: &crate::PruneReport) {
        self.0.pruned_runs.inc_by(r.runs);
        self.0.pruned_events.inc_by(r.events);
    }

    /// The metrics in the OpenMetrics text format (served as
    /// `application/openmetrics-text; version=1.0.0`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.0.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Queue gauges read from Postgres (shared by all workers): the whole queue's and each
/// lane's.
///
/// The API's `/metrics` serves them (the workers' own `/metrics` do not: the queue is the
/// same for every worker), read fresh by one statement on every scrape ([`Self::read`]),
/// never cached, so every API replica answers the same values and they are as fresh as the
/// scrape interval.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueGauges {
    /// Runs due now and not yet claimed.
    pub due: i64,
    /// Runs waiting (backing off or polling) for a later time.
    pub waiting: i64,
    /// Runs a worker holds.
    pub running: i64,
    /// Seconds the longest-due unclaimed run has been due (0 if none).
    pub oldest_due_age_seconds: f64,
    /// Each lane's due runs, one entry per [`Lane`] in [`Lane::ALL`]'s order, also for a
    /// lane with nothing in it (zeros). `due` is their sum, `oldest_due_age_seconds` their
    /// largest.
    pub lanes: Vec<LaneQueue>,
}

/// One lane's part of the queue: what a claim could take from that lane now.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LaneQueue {
    /// The lane.
    pub lane: Lane,
    /// Its runs due now and not yet claimed: `queued` or `waiting`, not blocked by another
    /// run of their subject, `wake_at` passed (the claim's own predicate, `db::claim`).
    pub due: i64,
    /// Seconds its longest-due unclaimed run has been due (`now() - wake_at`; 0 if none).
    pub oldest_due_age_seconds: f64,
}

impl LaneQueue {
    fn empty(lane: Lane) -> Self {
        Self {
            lane,
            due: 0,
            oldest_due_age_seconds: 0.0,
        }
    }
}

impl EncodeLabelValue for Lane {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

/// The one label of the lane gauges: three values, whatever the fleet's size.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LaneLabels {
    lane: Lane,
}

impl QueueGauges {
    /// Reads the gauges: one statement, grouped by lane, so the totals and the lanes come
    /// from the same snapshot (the totals are the lanes' sums, and the oldest age their
    /// largest).
    ///
    /// # Errors
    /// The database error.
    pub async fn read(pool: &PgPool) -> sqlx::Result<Self> {
        // "Due" is the claim's predicate (`db::claim::claim`) without its definition filter:
        // a due run of a definition no live worker serves still waits in its lane.
        let rows = sqlx::query!(
            r#"SELECT lane AS "lane!: LaneColumn",
                    count(*) FILTER (WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND wake_at <= now()) AS "due!",
                    count(*) FILTER (WHERE status = 'waiting' AND wake_at > now()) AS "waiting!",
                    count(*) FILTER (WHERE status = 'running') AS "running!",
                    coalesce(extract(epoch FROM now() - min(wake_at) FILTER (
                        WHERE status IN ('queued', 'waiting') AND blocked_by IS NULL AND wake_at <= now())), 0)::float8
                        AS "oldest!"
             FROM urumi.runs WHERE status IN ('queued', 'waiting', 'running')
             GROUP BY lane"#,
        )
        .fetch_all(pool)
        .await?;
        let mut gauges = Self {
            due: 0,
            waiting: 0,
            running: 0,
            oldest_due_age_seconds: 0.0,
            lanes: Lane::ALL.iter().copied().map(LaneQueue::empty).collect(),
        };
        for row in rows {
            gauges.due += row.due;
            gauges.waiting += row.waiting;
            gauges.running += row.running;
            gauges.oldest_due_age_seconds = gauges.oldest_due_age_seconds.max(row.oldest);
            if let Some(lane) = gauges.lanes.iter_mut().find(|l| l.lane == row.lane.0) {
                lane.due = row.due;
                lane.oldest_due_age_seconds = row.oldest;
            }
        }
        Ok(gauges)
    }

    /// Registers the gauges, with these values, in `registry` (the API builds its scrape
    /// from them and its HTTP metrics).
    pub fn register(&self, registry: &mut Registry) {
        let gauge = |v: i64| {
            let g = Gauge::<i64>::default();
            g.set(v);
            g
        };
        registry.register(
            "urumi_queue_due_runs",
            "Runs due and not yet claimed",
            gauge(self.due),
        );
        registry.register(
            "urumi_queue_waiting_runs",
            "Runs waiting for a later time",
            gauge(self.waiting),
        );
        registry.register(
            "urumi_queue_running_runs",
            "Runs held by a worker",
            gauge(self.running),
        );
        let oldest = Gauge::<f64, AtomicU64>::default();
        oldest.set(self.oldest_due_age_seconds);
        registry.register(
            "urumi_queue_oldest_due_age_seconds",
            "Age of the longest-due unclaimed run",
            oldest,
        );
        let depth = Family::<LaneLabels, Gauge<i64>>::default();
        let lane_oldest = Family::<LaneLabels, Gauge<f64, AtomicU64>>::default();
        for l in &self.lanes {
            let labels = LaneLabels { lane: l.lane };
            depth.get_or_create(&labels).set(l.due);
            lane_oldest
                .get_or_create(&labels)
                .set(l.oldest_due_age_seconds);
        }
        registry.register(
            "urumi_queue_depth",
            "Runs due and not yet claimed, by lane (every lane, 0 when empty)",
            depth,
        );
        registry.register(
            "urumi_queue_oldest_due_seconds",
            "Age of the longest-due unclaimed run, by lane (0 when none is due)",
            lane_oldest,
        );
    }

    /// These gauges alone in the OpenMetrics text format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut registry = Registry::default();
        self.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_by_step_and_outcome_into_cumulative_buckets() {
        let m = Metrics::default();
        let setup = StepLabels::new("store.provision", 1, "setup");
        let quota = StepLabels::new("store.provision", 1, "quota");
        m.step_started(&setup);
        m.step_ended(&setup, AttemptEnd::Succeeded, Duration::from_millis(3));
        m.step_started(&quota);
        m.step_ended(&quota, AttemptEnd::Retrying, Duration::from_millis(700));
        m.run_ended("store.provision", 1, RunEnd::Succeeded);
        let text = m.render();
        let setup_labels = r#"definition="store.provision",version="1",step="setup""#;
        for line in [
            format!("urumi_step_attempts_started_total{{{setup_labels}}} 1"),
            format!(
                "urumi_step_attempts_ended_total{{{setup_labels},outcome=\"succeeded\"}} 1"
            ),
            format!("urumi_step_duration_seconds_bucket{{le=\"0.001\",{setup_labels}}} 0"),
            format!("urumi_step_duration_seconds_bucket{{le=\"0.005\",{setup_labels}}} 1"),
            format!("urumi_step_duration_seconds_count{{{setup_labels}}} 1"),
            r#"urumi_step_attempts_ended_total{definition="store.provision",version="1",step="quota",outcome="retrying"} 1"#.to_owned(),
            r#"urumi_runs_ended_total{definition="store.provision",version="1",status="succeeded"} 1"#.to_owned(),
            "urumi_leases_taken_over_total 0".to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
        }
    }
}
