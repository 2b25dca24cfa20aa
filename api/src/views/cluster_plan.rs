//! The JSON shapes of a dry run's cluster plan (repair and delete operations): per previewed
//! target, the objects the action would create, change or delete, as a worker found them with
//! server-side apply `dryRun=All`. Mapped from `urumi_store::preview` / `urumi_ops` here.

use poem_openapi::{Enum, Object};
use uuid::Uuid;

/// Where a dry run's cluster plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Every previewed target that would be acted on has its `plan`.
    Ready,
    /// No worker finished the preview within `api.plan_preview_wait_ms`: the run `run_id`
    /// will hold it in its output (`GET /api/v1/runs/{run_id}`).
    Pending,
    /// The preview run failed; `error` says why.
    Failed,
}

impl From<urumi_ops::PlanState> for PlanState {
    fn from(s: urumi_ops::PlanState) -> Self {
        match s {
            urumi_ops::PlanState::Ready => Self::Ready,
            urumi_ops::PlanState::Pending => Self::Pending,
            urumi_ops::PlanState::Failed => Self::Failed,
        }
    }
}

/// The cluster plan of a dry run as a whole: the `store.preview` run a worker computes it in.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ClusterPlan {
    pub run_id: Uuid,
    pub state: PlanState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&urumi_ops::ClusterPlan> for ClusterPlan {
    fn from(p: &urumi_ops::ClusterPlan) -> Self {
        Self {
            run_id: p.run_id,
            state: p.state.into(),
            error: p.error.clone(),
        }
    }
}

/// What the action would do to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ObjectChange {
    /// Missing: it would be created.
    Create,
    /// It differs from the desired state in `fields`.
    Update,
    /// Already as desired.
    Unchanged,
    /// It would be deleted.
    Delete,
}

impl From<urumi_store::preview::Change> for ObjectChange {
    fn from(c: urumi_store::preview::Change) -> Self {
        use urumi_store::preview::Change as C;
        match c {
            C::Create => Self::Create,
            C::Update => Self::Update,
            C::Unchanged => Self::Unchanged,
            C::Delete => Self::Delete,
        }
    }
}

/// One object of a store's plan.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PlannedObject {
    pub kind: String,
    pub name: String,
    pub change: ObjectChange,
    /// For `update`: JSON pointers of the fields that would change (at most 20).
    pub fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a repair or delete would write for one target's store; `error` when the action
/// would fail for it (e.g. its namespace is gone or not its own).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StorePlan {
    pub objects: Vec<PlannedObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&urumi_store::preview::StorePlan> for StorePlan {
    fn from(p: &urumi_store::preview::StorePlan) -> Self {
        Self {
            objects: p
                .objects
                .iter()
                .map(|o| PlannedObject {
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    change: o.change.into(),
                    fields: o.fields.clone(),
                    note: o.note.clone(),
                })
                .collect(),
            error: p.error.clone(),
        }
    }
}
