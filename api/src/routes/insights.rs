//! `/api/v1/insights/…`: where time goes — per definition, version and step over a window
//! of finished runs (`steps`), and the duration distribution of one definition's runs
//! (`runs`; for `store.provision`, the fleet's provisioning time), and the fleet at a glance
//! (`fleet`: stores by status, runs per hour, quota usage summed). Any role may read them; the engine computes
//! the run figures (`urumi_engine::insights`), the store crate counts the stores.

use std::sync::Arc;

use chrono::Utc;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;

use super::ApiTags;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{
    DurationBucket, ErrorCountView, FleetInsights, RunHourView, RunInsights, StatusCount,
    StepInsightView, StepInsights,
};

/// Insights.
#[derive(Debug)]
pub struct InsightsApi(pub Arc<AppState>);

/// The default window, in hours.
fn default_hours() -> u32 {
    24
}

impl InsightsApi {
    /// `definition` if the platform knows it, else 422 naming the known ones.
    fn known(&self, definition: &str) -> Result<(), ApiError> {
        let registry = self.0.engine.registry();
        if registry.iter().any(|d| d.name() == definition) {
            return Ok(());
        }
        let mut known: Vec<&str> = registry.iter().map(|d| d.name()).collect();
        known.sort_unstable();
        known.dedup();
        Err(ApiError::unprocessable(
            Some("definition"),
            format!(
                "unknown workflow definition {definition:?}; known: {}",
                known.join(", ")
            ),
        ))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Insights")]
impl InsightsApi {
    /// Per definition, version and step, the steps of the runs that finished in the last
    /// `hours`: how many ended and failed, duration percentiles (exact up to 6 hours; over
    /// longer windows from hourly rollups, within ±2.5 %: see `exact`), retries, polls, time
    /// spent waiting against working, and the most common errors. Steps of runs still going
    /// are counted once their run ends.
    #[oai(
        path = "/insights/steps",
        method = "get",
        operation_id = "step_insights"
    )]
    async fn step_insights(
        &self,
        _auth: Auth,
        /// Only this workflow definition, e.g. `store.provision`.
        #[oai(validator(max_length = 100))]
        definition: Query<Option<String>>,
        /// The window: runs that finished in the last this many hours, 1 to 720 (30 days).
        #[oai(
            default = "default_hours",
            validator(minimum(value = "1"), maximum(value = "720"))
        )]
        hours: Query<u32>,
    ) -> Result<JsonBody<StepInsights>, ApiError> {
        if let Some(d) = definition.0.as_deref() {
            self.known(d)?;
        }
        let since = Utc::now() - chrono::Duration::hours(i64::from(hours.0));
        let rows = self
            .0
            .engine
            .step_insights(since, definition.0.as_deref())
            .await?;
        Ok(JsonBody(StepInsights {
            since,
            hours: hours.0,
            items: rows
                .into_iter()
                .map(|s| StepInsightView {
                    failure_rate: if s.count > 0 {
                        s.failed as f64 / s.count as f64
                    } else {
                        0.0
                    },
                    definition: s.definition,
                    version: s.version,
                    step: s.step,
                    count: s.count,
                    failed: s.failed,
                    p50_ms: s.p50_ms,
                    p95_ms: s.p95_ms,
                    p99_ms: s.p99_ms,
                    exact: s.exact,
                    retries: s.retries,
                    polls: s.polls,
                    waiting_ms: s.waiting_ms,
                    working_ms: s.working_ms,
                    errors: s
                        .errors
                        .into_iter()
                        .map(|e| ErrorCountView {
                            error: e.error,
                            steps: e.steps,
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    /// The fleet at a glance: how many stores are in each status, and the runs that ended
    /// per hour and definition over the last `hours`.
    #[oai(
        path = "/insights/fleet",
        method = "get",
        operation_id = "fleet_insights"
    )]
    async fn fleet_insights(
        &self,
        _auth: Auth,
        /// The window of `runs_per_hour`, 1 to 720 hours (30 days).
        #[oai(
            default = "default_hours",
            validator(minimum(value = "1"), maximum(value = "720"))
        )]
        hours: Query<u32>,
    ) -> Result<JsonBody<FleetInsights>, ApiError> {
        let since = Utc::now() - chrono::Duration::hours(i64::from(hours.0));
        let counted = urumi_store::db::count_by_status(&self.0.pool).await?;
        let stores = urumi_store::status::StoreStatus::ALL
            .into_iter()
            .map(|st| StatusCount {
                status: st.into(),
                count: counted
                    .iter()
                    .find(|(s, _)| *s == st)
                    .map_or(0, |(_, n)| *n),
            })
            .collect();
        let runs_per_hour = self
            .0
            .engine
            .run_hours(since)
            .await?
            .into_iter()
            .map(|h| RunHourView {
                hour: h.hour,
                definition: h.definition,
                succeeded: h.succeeded,
                failed: h.failed,
                cancelled: h.cancelled,
            })
            .collect();
        let usage = urumi_store::usage::fleet(&self.0.pool)
            .await?
            .iter()
            .map(crate::views::usage::FleetResource::from)
            .collect();
        Ok(JsonBody(FleetInsights {
            since,
            hours: hours.0,
            stores,
            runs_per_hour,
            usage,
        }))
    }

    /// The runs of `definition` that finished in the last `hours`: how many succeeded,
    /// failed and were cancelled, and the durations of the successes from enqueue to end
    /// (exact percentiles and a histogram).
    #[oai(path = "/insights/runs", method = "get", operation_id = "run_insights")]
    async fn run_insights(
        &self,
        _auth: Auth,
        /// The workflow definition, e.g. `store.provision`.
        #[oai(validator(min_length = 1, max_length = 100))]
        definition: Query<String>,
        /// The window: runs that finished in the last this many hours, 1 to 720 (30 days).
        #[oai(
            default = "default_hours",
            validator(minimum(value = "1"), maximum(value = "720"))
        )]
        hours: Query<u32>,
    ) -> Result<JsonBody<RunInsights>, ApiError> {
        self.known(&definition.0)?;
        let since = Utc::now() - chrono::Duration::hours(i64::from(hours.0));
        let r = self.0.engine.run_insights(since, &definition.0).await?;
        let bounds = urumi_engine::RUN_BUCKETS_SECONDS;
        let histogram = r
            .histogram
            .iter()
            .enumerate()
            .map(|(i, runs)| DurationBucket {
                from_seconds: if i == 0 { 0.0 } else { bounds[i - 1] },
                to_seconds: bounds.get(i).copied(),
                runs: *runs,
            })
            .collect();
        Ok(JsonBody(RunInsights {
            definition: r.definition,
            since,
            hours: hours.0,
            succeeded: r.succeeded,
            failed: r.failed,
            cancelled: r.cancelled,
            p50_ms: r.p50_ms,
            p95_ms: r.p95_ms,
            p99_ms: r.p99_ms,
            histogram,
        }))
    }
}
