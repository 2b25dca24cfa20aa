//! `/api/v1/runs`: list and inspect workflow runs; retry a failed run from its failed step;
//! cancel at the next step boundary.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, OpenApi};
use urumi_engine::{Run, RunFilter};
use uuid::Uuid;

use super::{ApiTags, parse_uuid_cursor};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{RunDetail, RunKind, RunPage, RunStatus, RunSummary, StepView};

/// Runs: what operators inspect and steer.
#[derive(Debug)]
pub struct RunsApi(pub Arc<AppState>);

#[derive(Debug, ApiResponse)]
enum Steered {
    /// Accepted; the run as it is now.
    #[oai(status = 202)]
    Accepted(JsonBody<RunDetail>),
}

/// A page of runs matching `filter`: up to `limit`, and the cursor of the next page when
/// there is one (`/runs` and `/stores/{id}/runs`).
pub(super) async fn run_page(
    state: &AppState,
    filter: &RunFilter,
    limit: i64,
) -> Result<JsonBody<RunPage>, ApiError> {
    let runs: Vec<Run> = state.engine.list_runs(filter, limit + 1).await?;
    let more = runs.len() as i64 > limit;
    let runs = &runs[..runs.len().min(limit as usize)];
    Ok(JsonBody(RunPage {
        items: runs.iter().map(RunSummary::from).collect(),
        next_cursor: more
            .then(|| runs.last().map(|r| r.id.to_string()))
            .flatten(),
    }))
}

impl RunsApi {
    async fn detail(&self, id: Uuid) -> Result<RunDetail, ApiError> {
        let d = self.0.engine.run(id).await?;
        Ok(RunDetail {
            run: RunSummary::from(&d.run),
            output: d.run.output.clone(),
            cancel_requested_at: d.run.cancel_requested_at,
            steps: d.steps.iter().map(StepView::from).collect(),
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Runs")]
impl RunsApi {
    /// List runs, newest first, filtered by status (e.g. `failed`), kind and store.
    #[oai(path = "/runs", method = "get", operation_id = "list_runs")]
    async fn list_runs(
        &self,
        _auth: Auth,
        status: Query<Option<RunStatus>>,
        kind: Query<Option<RunKind>>,
        store_id: Query<Option<Uuid>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<RunPage>, ApiError> {
        let before = parse_uuid_cursor(cursor.0.as_deref())?;
        let filter = RunFilter {
            status: status.0.map(urumi_engine::RunStatus::from),
            definition: kind.0.map(|k| k.definition().to_owned()),
            subject: store_id.0.map(urumi_store::subject::subject),
            before,
        };
        run_page(&self.0, &filter, limit.0).await
    }

    /// A run with every step: status, attempts, start, end, duration, last error.
    #[oai(path = "/runs/:id", method = "get", operation_id = "get_run")]
    async fn get_run(&self, _auth: Auth, id: Path<Uuid>) -> Result<JsonBody<RunDetail>, ApiError> {
        Ok(JsonBody(self.detail(id.0).await?))
    }

    /// Resume a failed run at its failed step; steps that succeeded are not run again.
    /// Refused (409) for a run that is not its subject's newest, or whose store is deleted.
    /// Needs `operator`.
    #[oai(path = "/runs/:id/retry", method = "post", operation_id = "retry_run")]
    async fn retry_run(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        auth.0.require(Role::Operator)?;
        let run = self.0.engine.run(id.0).await?.run;
        if let Some(store_id) = crate::views::store_of(&run.subject)
            && let Some(store) = urumi_store::db::get(&self.0.pool, store_id).await?
            && store.status == urumi_store::status::StoreStatus::Deleted
        {
            return Err(ApiError::conflict(format!(
                "store {store_id} is deleted: its runs cannot be retried"
            )));
        }
        let step = self.0.engine.retry_run(id.0, auth.0.actor()).await?;
        tracing::info!(run = %id.0, %step, actor = auth.0.actor(), "run retried");
        Ok(Steered::Accepted(JsonBody(self.detail(id.0).await?)))
    }

    /// Cancel a run: at once if it is queued or waiting, else at its next step boundary.
    /// Needs `operator`.
    #[oai(
        path = "/runs/:id/cancel",
        method = "post",
        operation_id = "cancel_run"
    )]
    async fn cancel_run(&self, auth: Auth, id: Path<Uuid>) -> Result<Steered, ApiError> {
        auth.0.require(Role::Operator)?;
        self.0.engine.cancel_run(id.0, auth.0.actor()).await?;
        Ok(Steered::Accepted(JsonBody(self.detail(id.0).await?)))
    }
}
