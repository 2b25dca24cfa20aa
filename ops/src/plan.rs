//! The cluster plan in a dry run of a repair or delete operation: the API holds no cluster
//! credentials, so it asks a worker — a `store.preview@1` run (interactive lane) over the
//! previewed stores — and waits a bounded time for its output. Each previewed target then
//! carries its store's plan: the objects that would be created, changed (which fields) or
//! deleted, found with server-side apply `dryRun=All` (see `urumi_store::preview`).
//!
//! # Guarantees
//! - A dry run never waits longer than the configured wait; a plan not ready by then is
//!   `pending` with the run's id, whose output holds it once a worker gets to it.
//! - The preview run writes nothing to the cluster (every write is a dry run).

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use urumi_engine::{Engine, NewRun, RunStatus};
use urumi_store::preview::{
    MAX_PREVIEWED, PREVIEW, PREVIEW_VERSION, PlannedAction, PreviewInput, PreviewOutput, StorePlan,
};
use uuid::Uuid;

use crate::error::Error;
use crate::model::{Action, Spec};
use crate::select::Preview;

/// How often the API looks at the preview run while it waits.
const POLL: Duration = Duration::from_millis(100);

/// Where a dry run's cluster plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// The plan of every previewed store is in its target.
    Ready,
    /// No worker finished the preview within the wait: its run's output will hold it.
    Pending,
    /// The preview run failed (its error says why).
    Failed,
}

/// The cluster plan of a dry run, as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    /// The `store.preview@1` run computing it.
    pub run_id: Uuid,
    pub state: PlanState,
    /// Why it failed.
    pub error: Option<String>,
}

/// The action's preview, for the actions that write to the cluster.
fn planned(action: Action) -> Option<PlannedAction> {
    match action {
        Action::Repair => Some(PlannedAction::Repair),
        Action::Delete => Some(PlannedAction::Delete),
        Action::Suspend => Some(PlannedAction::Suspend),
        Action::Resume => Some(PlannedAction::Resume),
        Action::Backup => Some(PlannedAction::Backup),
        Action::Resize => Some(PlannedAction::Resize),
        Action::Upgrade => Some(PlannedAction::Upgrade),
        Action::Retry | Action::Cancel | Action::Rerun => None,
    }
}

/// Computes the cluster plan of `preview`'s targets that would be acted on, waiting at most
/// `wait`, and puts each store's plan into its target. Nothing to plan (another action, or
/// every shown target skipped) leaves the preview as it is.
///
/// # Errors
/// [`Error::Engine`] / [`Error::Database`] when the preview run cannot be started or read.
pub(crate) async fn attach(
    engine: &Engine,
    spec: &Spec,
    preview: &mut Preview,
    actor: &str,
    wait: Duration,
) -> Result<(), Error> {
    let Some(planned) = planned(spec.action) else {
        return Ok(());
    };
    let store_ids: Vec<Uuid> = preview
        .targets
        .iter()
        .filter(|t| !t.would.starts_with("skip:"))
        .filter_map(|t| urumi_store::subject::store_of(&t.subject))
        .take(MAX_PREVIEWED)
        .collect();
    if store_ids.is_empty() {
        return Ok(());
    }
    let (plan, plans) = compute(
        engine,
        planned,
        store_ids,
        spec.plan.clone(),
        None,
        None,
        spec.channel.clone(),
        actor,
        wait,
    )
    .await?;
    let mut plans: HashMap<Uuid, StorePlan> = plans.into_iter().map(|p| (p.store_id, p)).collect();
    for t in &mut preview.targets {
        if let Some(id) = urumi_store::subject::store_of(&t.subject) {
            t.plan = plans.remove(&id);
        }
    }
    preview.cluster_plan = Some(plan);
    Ok(())
}

/// Starts a `store.preview@1` run of `planned` over `store_ids` (at most [`MAX_PREVIEWED`])
/// and waits at most `wait` for it: the plan as a whole, and each store's plan when it is
/// ready (`plan`: a resize's new plan; `channel`: an upgrade's channel). Also what a single store's dry run (suspend, resume,
/// resize, …) answers.
///
/// # Errors
/// [`Error::Engine`] / [`Error::Database`] when the preview run cannot be started or read.
pub async fn compute(
    engine: &Engine,
    planned: PlannedAction,
    store_ids: Vec<Uuid>,
    plan: Option<String>,
    backup_id: Option<Uuid>,
    domains: Option<Vec<String>>,
    channel: Option<String>,
    actor: &str,
    wait: Duration,
) -> Result<(ClusterPlan, Vec<StorePlan>), Error> {
    let store_ids: Vec<Uuid> = store_ids.into_iter().take(MAX_PREVIEWED).collect();
    let started = engine
        .start_run(
            NewRun::new(
                PREVIEW,
                format!("preview:{}", Uuid::now_v7()),
                serde_json::json!(PreviewInput {
                    action: planned,
                    store_ids,
                    plan,
                    backup_id,
                    domains,
                    channel,
                }),
            )
            .version(PREVIEW_VERSION)
            .actor(actor)
            .owner(actor),
        )
        .await?;
    let run_id = started.run_id;
    let deadline = tokio::time::Instant::now() + wait;
    let (state, error, output) = loop {
        let detail = engine.run(run_id).await?;
        let status = detail.run.status();
        match status {
            RunStatus::Succeeded => break (PlanState::Ready, None, detail.run.output),
            RunStatus::Failed | RunStatus::Cancelled => {
                let error = detail
                    .run
                    .error
                    .unwrap_or_else(|| format!("the preview run is {status}"));
                break (PlanState::Failed, Some(error), None);
            }
            _ if tokio::time::Instant::now() >= deadline => {
                break (PlanState::Pending, None, None);
            }
            _ => tokio::time::sleep(POLL).await,
        }
    };
    let (state, error, plans) = match output.map(serde_json::from_value::<PreviewOutput>) {
        Some(Ok(out)) => (state, error, out.stores),
        Some(Err(e)) => (
            PlanState::Failed,
            Some(format!("the preview run's output is not a plan: {e}")),
            Vec::new(),
        ),
        None => (state, error, Vec::new()),
    };
    Ok((
        ClusterPlan {
            run_id,
            state,
            error,
        },
        plans,
    ))
}
