//! `/api/v1/runs`: list and inspect workflow runs; retry a failed run from its failed step;
//! rerun a run (from a named step); cancel at the next step boundary.

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};
use urumi_engine::{Run, RunFilter, Who};
use uuid::Uuid;

use super::{ApiTags, parse_uuid_cursor};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::operations::RerunRequest;
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
    /// 409 when `subject` is a deleted store: its runs are history.
    async fn refuse_deleted_store(&self, subject: &str) -> Result<(), ApiError> {
        if let Some(store_id) = crate::views::store_of(subject)
            && let Some(store) = urumi_store::db::get(&self.0.pool, store_id).await?
            && store.status == urumi_store::status::StoreStatus::Deleted
        {
            return Err(ApiError::conflict(format!(
                "store {store_id} is deleted: its runs cannot be retried or re-run"
            )));
        }
        Ok(())
    }

    async fn detail(&self, id: Uuid) -> Result<RunDetail, ApiError> {
        let d = self.0.engine.run(id).await?;
        Ok(RunDetail {
            run: RunSummary::from(&d.run),
            output: d.run.output.clone(),
            cancel_requested_at: d.run.cancel_requested_at,
            lane: d.run.lane.0.into(),
            owner: d.run.owner.clone(),
            carried_steps: d.run.carried_steps,
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
        self.refuse_deleted_store(&run.subject).await?;
        let step = self.0.engine.retry_run(id.0, auth.0.actor()).await?;
        tracing::info!(run = %id.0, %step, actor = auth.0.actor(), "run retried");
        Ok(Steered::Accepted(JsonBody(self.detail(id.0).await?)))
    }

    /// Rerun a run: a new run of the same definition version, store and input. With
    /// `from_step`, the steps before it carry over this run's checkpoints (they must have
    /// succeeded) and are not run again (Temporal's reset); else it starts from its first
    /// step. Refused (409) unless this is its subject's newest run and the subject has no
    /// active run, or when its store is deleted; 422 for a step the run's workflow does not
    /// have. Needs `operator`.
    #[oai(path = "/runs/:id/rerun", method = "post", operation_id = "rerun_run")]
    async fn rerun_run(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        body: Json<RerunRequest>,
    ) -> Result<Steered, ApiError> {
        auth.0.require(Role::Operator)?;
        let run = self.0.engine.run(id.0).await?.run;
        self.refuse_deleted_store(&run.subject).await?;
        let mut tx = self.0.pool.begin().await?;
        let from_step = body.0.from_step.as_ref().map(|t| t.0.as_str());
        let started = self
            .0
            .engine
            .rerun_in(&mut tx, id.0, from_step, &Who::interactive(auth.0.actor()))
            .await?;
        super::audit_in(
            &mut tx,
            "run.rerun_requested",
            auth.0.actor(),
            crate::views::store_of(&run.subject),
            Some(started.run_id),
            serde_json::json!({ "rerun_of": id.0, "from_step": from_step }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(run = %id.0, new = %started.run_id, ?from_step, actor = auth.0.actor(), "run re-run");
        Ok(Steered::Accepted(JsonBody(
            self.detail(started.run_id).await?,
        )))
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
