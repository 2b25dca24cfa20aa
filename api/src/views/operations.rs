//! The JSON shapes of `/api/v1/operations`: what an operator sends (an action, a selector,
//! concurrency, canary, failure budget, dry run) and what comes back (an operation with its
//! progress, its targets, a dry run's preview). Mapped to and from `urumi_ops`' types here.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use super::cluster_plan::{ClusterPlan, StorePlan};
use super::{RunKind, RunStatus, rfc3339, store_of};
use crate::problem::ApiError;
use crate::text::Text;

/// What an operation does to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OperationAction {
    /// Resume a failed run at its failed step (in the bulk lane).
    Retry,
    /// Cancel a queued, running or waiting run.
    Cancel,
    /// A new run of the same definition version and input; from `from_step` when given, the
    /// steps before it carrying over the run's checkpoints.
    Rerun,
    /// Re-apply the store's desired state.
    Repair,
    /// Delete the store and its namespace. Needs `admin`.
    Delete,
    /// Suspend the store (a store not ready is skipped; a suspended one is left as it is).
    Suspend,
    /// Resume the suspended store (a store not suspended is skipped).
    Resume,
    /// Back the store up (a store that is not ready is skipped).
    Backup,
    /// Move the store to the operation's `plan` (a store already on it is skipped; one whose
    /// usage would not fit it is skipped saying why).
    Resize,
    /// Upgrade the store onto the operation's `channel`, or its own channel, with automatic
    /// rollback (a store already on the channel's release is skipped).
    Upgrade,
}

impl From<OperationAction> for urumi_ops::Action {
    fn from(a: OperationAction) -> Self {
        match a {
            OperationAction::Retry => Self::Retry,
            OperationAction::Cancel => Self::Cancel,
            OperationAction::Rerun => Self::Rerun,
            OperationAction::Repair => Self::Repair,
            OperationAction::Delete => Self::Delete,
            OperationAction::Suspend => Self::Suspend,
            OperationAction::Resume => Self::Resume,
            OperationAction::Backup => Self::Backup,
            OperationAction::Resize => Self::Resize,
            OperationAction::Upgrade => Self::Upgrade,
        }
    }
}

impl From<urumi_ops::Action> for OperationAction {
    fn from(a: urumi_ops::Action) -> Self {
        match a {
            urumi_ops::Action::Retry => Self::Retry,
            urumi_ops::Action::Cancel => Self::Cancel,
            urumi_ops::Action::Rerun => Self::Rerun,
            urumi_ops::Action::Repair => Self::Repair,
            urumi_ops::Action::Delete => Self::Delete,
            urumi_ops::Action::Suspend => Self::Suspend,
            urumi_ops::Action::Resume => Self::Resume,
            urumi_ops::Action::Backup => Self::Backup,
            urumi_ops::Action::Resize => Self::Resize,
            urumi_ops::Action::Upgrade => Self::Upgrade,
        }
    }
}

/// Which runs an operation acts on: each its subject's newest run that matches every field
/// set. An empty selector is refused unless `all` is true.
#[derive(Debug, Clone, Default, Object, serde::Serialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct OperationSelector {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RunKind>,
    /// Runs whose step of this name failed.
    #[oai(validator(min_length = 1, max_length = 100))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<Text>,
    /// Runs whose error contains this text (case-insensitive).
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_contains: Option<Text>,
    /// Runs of these stores (at most 1,000 ids; select more by plan, engine or time).
    #[oai(validator(min_items = 1, max_items = 1000))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_ids: Option<Vec<Uuid>>,
    /// Runs of stores on this plan.
    #[oai(validator(min_length = 1, max_length = 50))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Text>,
    /// Runs of stores running this engine.
    #[oai(validator(min_length = 1, max_length = 50))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Text>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub created_after: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub created_before: Option<DateTime<Utc>>,
    /// Set to match every run the other fields allow even when none is set.
    #[oai(default)]
    pub all: bool,
}

impl OperationSelector {
    fn to_ops(&self) -> urumi_ops::Selector {
        urumi_ops::Selector {
            status: self.status.map(Into::into),
            definition: self.kind.map(|k| k.definition().to_owned()),
            failed_step: self.failed_step.as_ref().map(|t| t.0.clone()),
            error_contains: self.error_contains.as_ref().map(|t| t.0.clone()),
            store_ids: self.store_ids.clone(),
            plan: self.plan.as_ref().map(|t| t.0.clone()),
            engine: self.engine.as_ref().map(|t| t.0.clone()),
            created_after: self.created_after,
            created_before: self.created_before,
            all: self.all,
        }
    }

    fn from_ops(s: &urumi_ops::Selector) -> Self {
        Self {
            status: s.status.map(Into::into),
            kind: s.definition.as_deref().map(RunKind::from_definition),
            failed_step: s.failed_step.clone().map(Text),
            error_contains: s.error_contains.clone().map(Text),
            store_ids: s.store_ids.clone(),
            plan: s.plan.clone().map(Text),
            engine: s.engine.clone().map(Text),
            created_after: s.created_after,
            created_before: s.created_before,
            all: s.all,
        }
    }
}

/// A number of targets: exactly one of `count` or `percent` (of the matched targets,
/// rounded up).
#[derive(Debug, Clone, Copy, Object, serde::Serialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct TargetCount {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
}

impl TargetCount {
    fn to_budget(self, field: &'static str) -> Result<urumi_ops::Budget, ApiError> {
        match (self.count, self.percent) {
            (Some(n), None) => Ok(urumi_ops::Budget::Count(n)),
            (None, Some(p)) => Ok(urumi_ops::Budget::Percent(p)),
            _ => Err(ApiError::unprocessable(
                Some(field),
                "give exactly one of count or percent",
            )),
        }
    }
}

/// What happens after a canary whose targets all succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CanaryThen {
    /// Wait for an operator's approval (`POST /operations/{id}/approve`).
    Pause,
    /// Go on by itself.
    Continue,
}

/// The first targets, acted on before the rest; any failure among them stops the operation.
#[derive(Debug, Clone, Copy, Object, serde::Serialize)]
#[oai(deny_unknown_fields, skip_serializing_if_is_none)]
pub struct CanarySpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// `pause` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<CanaryThen>,
}

/// Act on every run a selector matches.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateOperation {
    pub action: OperationAction,
    pub selector: OperationSelector,
    /// For `rerun`: the step to rerun from (needs `selector.kind`).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub from_step: Option<Text>,
    /// For `resize` (required): the plan every matched store moves to (one of
    /// `GET /plans`; `selector.plan` filters by the plan stores are on now).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub plan: Option<Text>,
    /// For `upgrade`: the release channel (one of `GET /channels`); each store's own channel
    /// when absent.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub channel: Option<Text>,
    /// Targets under way at once, 1 to 10,000 (10 when absent).
    pub max_concurrency: Option<i64>,
    pub canary: Option<CanarySpec>,
    /// Stop by itself once more than this many targets failed.
    pub failure_budget: Option<TargetCount>,
    /// Answer what would happen and start nothing.
    #[oai(default)]
    pub dry_run: bool,
}

impl CreateOperation {
    /// The request as `urumi_ops` takes it.
    ///
    /// # Errors
    /// 422 naming the field for a count or budget given both ways or neither.
    pub fn to_spec(&self) -> Result<urumi_ops::Spec, ApiError> {
        let max_concurrency = self.max_concurrency.unwrap_or(10);
        let max_concurrency = u32::try_from(max_concurrency).map_err(|_| {
            ApiError::unprocessable(
                Some("/max_concurrency"),
                format!(
                    "max_concurrency must be 1 to {}",
                    urumi_ops::MAX_CONCURRENCY
                ),
            )
        })?;
        let canary = match self.canary {
            None => None,
            Some(c) => Some(urumi_ops::Canary {
                size: TargetCount {
                    count: c.count,
                    percent: c.percent,
                }
                .to_budget("/canary")?,
                then: match c.then {
                    Some(CanaryThen::Continue) => urumi_ops::CanaryThen::Continue,
                    _ => urumi_ops::CanaryThen::Pause,
                },
            }),
        };
        Ok(urumi_ops::Spec {
            action: self.action.into(),
            from_step: self.from_step.as_ref().map(|t| t.0.clone()),
            plan: self.plan.as_ref().map(|t| t.0.clone()),
            channel: self.channel.as_ref().map(|t| t.0.clone()),
            selector: self.selector.to_ops(),
            max_concurrency,
            canary,
            failure_budget: self
                .failure_budget
                .map(|b| b.to_budget("/failure_budget"))
                .transpose()?,
        })
    }
}

/// Where an operation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Starting targets as slots free up.
    Running,
    /// Paused: no target starts; started ones run to their end.
    Paused,
    /// The canary succeeded; waiting for approval.
    AwaitingApproval,
    /// Every target was acted on.
    Succeeded,
    /// Stopped by itself (failure budget exceeded or canary failed).
    Stopped,
    /// Cancelled by an operator.
    Cancelled,
}

impl From<urumi_ops::OperationState> for OperationState {
    fn from(s: urumi_ops::OperationState) -> Self {
        use urumi_ops::OperationState as S;
        match s {
            S::Running => Self::Running,
            S::Paused => Self::Paused,
            S::AwaitingApproval => Self::AwaitingApproval,
            S::Succeeded => Self::Succeeded,
            S::Stopped => Self::Stopped,
            S::Cancelled => Self::Cancelled,
        }
    }
}

/// Where one target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// Not acted on; `reason` says why.
    Skipped,
}

impl From<urumi_ops::TargetState> for TargetState {
    fn from(s: urumi_ops::TargetState) -> Self {
        use urumi_ops::TargetState as S;
        match s {
            S::Pending => Self::Pending,
            S::Running => Self::Running,
            S::Succeeded => Self::Succeeded,
            S::Failed => Self::Failed,
            S::Skipped => Self::Skipped,
        }
    }
}

impl From<TargetState> for urumi_ops::TargetState {
    fn from(s: TargetState) -> Self {
        match s {
            TargetState::Pending => Self::Pending,
            TargetState::Running => Self::Running,
            TargetState::Succeeded => Self::Succeeded,
            TargetState::Failed => Self::Failed,
            TargetState::Skipped => Self::Skipped,
        }
    }
}

/// How many targets are where.
#[derive(Debug, Clone, Copy, Object, serde::Serialize)]
pub struct OperationProgress {
    pub matched: i64,
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// An operation's canary.
#[derive(Debug, Clone, Copy, Object, serde::Serialize)]
pub struct CanaryView {
    /// Its targets: the first this many.
    pub size: i32,
    pub then: CanaryThen,
    /// It succeeded and the operation went on (approved, or by itself).
    pub passed: bool,
}

/// An operation and its progress.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Operation {
    pub id: Uuid,
    /// The parent run carrying it out (`GET /runs/{id}`).
    pub run_id: Uuid,
    pub action: OperationAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_step: Option<String>,
    /// A resize's plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// An upgrade's channel (absent: each store's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub selector: OperationSelector,
    pub max_concurrency: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryView>,
    /// Failures tolerated before it stops by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<i32>,
    pub state: OperationState,
    /// Why it stopped, paused, waits or was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub progress: OperationProgress,
    /// Whose work its runs are (the bulk lane's round robin shares workers between owners).
    pub owner: String,
    pub created_by: String,
    #[serde(serialize_with = "rfc3339::one")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::one")]
    pub updated_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&urumi_ops::Operation> for Operation {
    fn from(o: &urumi_ops::Operation) -> Self {
        let selector: urumi_ops::Selector =
            serde_json::from_value(o.selector.clone()).unwrap_or_default();
        let p = o.progress;
        Self {
            id: o.id,
            run_id: o.run_id,
            action: o.action.into(),
            from_step: o.from_step.clone(),
            plan: o.plan.clone(),
            channel: o.channel.clone(),
            selector: OperationSelector::from_ops(&selector),
            max_concurrency: o.max_concurrency,
            canary: (o.canary_size > 0).then_some(CanaryView {
                size: o.canary_size,
                then: match o.canary_then {
                    Some(urumi_ops::CanaryThen::Continue) => CanaryThen::Continue,
                    _ => CanaryThen::Pause,
                },
                passed: o.canary_passed,
            }),
            max_failures: o.max_failures,
            state: o.state.into(),
            reason: o.reason.clone(),
            progress: OperationProgress {
                matched: p.matched,
                pending: p.pending,
                running: p.running,
                succeeded: p.succeeded,
                failed: p.failed,
                skipped: p.skipped,
            },
            owner: o.owner.clone(),
            created_by: o.created_by.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
            finished_at: o.finished_at,
        }
    }
}

/// A page of operations, newest first.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct OperationPage {
    pub items: Vec<Operation>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One target of an operation.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct OperationTarget {
    /// Its place: targets start in this order.
    pub position: i32,
    /// The run the selector matched.
    pub run_id: Uuid,
    /// The store, for store runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<Uuid>,
    pub subject: String,
    pub state: TargetState,
    /// The run started for it (the run itself for a retry or cancel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_run_id: Option<Uuid>,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(serialize_with = "rfc3339::one")]
    pub updated_at: DateTime<Utc>,
}

impl From<&urumi_ops::Target> for OperationTarget {
    fn from(t: &urumi_ops::Target) -> Self {
        Self {
            position: t.position,
            run_id: t.run_id,
            store_id: store_of(&t.subject),
            subject: t.subject.clone(),
            state: t.state.into(),
            child_run_id: t.child_run_id,
            reason: t.reason.clone(),
            updated_at: t.updated_at,
        }
    }
}

/// A page of an operation's targets in order.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct OperationTargetPage {
    pub items: Vec<OperationTarget>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One target of a dry run, with what would happen to it.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PreviewTarget {
    pub run_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<Uuid>,
    pub subject: String,
    pub kind: RunKind,
    pub version: i32,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the operation would do to it; starts with `skip:` when it would not act.
    pub would: String,
    /// Repair and delete: what the action would write, once the cluster plan is `ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<StorePlan>,
}

/// What a dry run answers: nothing was started.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct OperationPreview {
    /// How many runs the selector matches (the operation's targets).
    pub matched: i64,
    /// The first 20 targets, in the order they would start.
    pub targets: Vec<PreviewTarget>,
    /// Repair and delete: the cluster plan of the shown targets, computed by a worker with
    /// server-side apply `dryRun=All` (nothing is written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_plan: Option<ClusterPlan>,
}

impl From<&urumi_ops::Preview> for OperationPreview {
    fn from(p: &urumi_ops::Preview) -> Self {
        Self {
            matched: p.matched as i64,
            targets: p
                .targets
                .iter()
                .map(|t| PreviewTarget {
                    run_id: t.run_id,
                    store_id: store_of(&t.subject),
                    subject: t.subject.clone(),
                    kind: RunKind::from_definition(&t.definition),
                    version: t.version,
                    status: t.status.into(),
                    failed_step: t.failed_step.clone(),
                    error: t.error.clone(),
                    would: t.would.clone(),
                    plan: t.plan.as_ref().map(StorePlan::from),
                })
                .collect(),
            cluster_plan: p.cluster_plan.as_ref().map(ClusterPlan::from),
        }
    }
}

/// What creating an operation answers: exactly one of `operation` (201: it was created) and
/// `preview` (200: a dry run; nothing was started). One schema for both, so generated
/// clients have one type to read.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct OperationCreated {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<OperationPreview>,
}

/// Rerun a run: a new run of the same definition version and input.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct RerunRequest {
    /// Rerun from this step: the steps before it carry over this run's checkpoints (they must
    /// have succeeded). From the first step when absent.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub from_step: Option<Text>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::cluster_plan::{ObjectChange, PlanState, PlannedObject};
    use crate::views::tests::{at, same};

    #[test]
    fn operations_serialise_as_their_schemas_say() {
        for full in [true, false] {
            let selector = OperationSelector {
                status: full.then_some(RunStatus::Failed),
                kind: full.then_some(RunKind::Provision),
                failed_step: full.then(|| Text("setup".into())),
                error_contains: full.then(|| Text("timeout \"x\"".into())),
                store_ids: full.then(|| vec![Uuid::now_v7()]),
                plan: full.then(|| Text("small".into())),
                engine: full.then(|| Text("woocommerce".into())),
                created_after: full.then(|| at(1)),
                created_before: full.then(|| at(2)),
                all: !full,
            };
            let op = Operation {
                id: Uuid::now_v7(),
                run_id: Uuid::now_v7(),
                action: OperationAction::Rerun,
                from_step: full.then(|| "wordpress".into()),
                plan: full.then(|| "business".into()),
                channel: full.then(|| "stable".into()),
                selector,
                max_concurrency: 10,
                canary: full.then_some(CanaryView {
                    size: 2,
                    then: CanaryThen::Pause,
                    passed: false,
                }),
                max_failures: full.then_some(3),
                state: OperationState::AwaitingApproval,
                reason: full.then(|| "the canary's 2 targets succeeded".into()),
                progress: OperationProgress {
                    matched: 5,
                    pending: 3,
                    running: 0,
                    succeeded: 2,
                    failed: 0,
                    skipped: 0,
                },
                owner: "alice".into(),
                created_by: "alice".into(),
                created_at: at(3),
                updated_at: at(4),
                finished_at: full.then(|| at(5)),
            };
            same(&OperationPage {
                items: vec![op.clone()],
                next_cursor: full.then(|| "x".into()),
            });
            let target = OperationTarget {
                position: 0,
                run_id: Uuid::now_v7(),
                store_id: full.then(Uuid::now_v7),
                subject: "store:x".into(),
                state: TargetState::Skipped,
                child_run_id: full.then(Uuid::now_v7),
                reason: full.then(|| "the run is succeeded".into()),
                updated_at: at(6),
            };
            same(&OperationTargetPage {
                items: vec![target],
                next_cursor: None,
            });
            let preview = OperationPreview {
                matched: 1,
                targets: vec![PreviewTarget {
                    run_id: Uuid::now_v7(),
                    store_id: full.then(Uuid::now_v7),
                    subject: "s".into(),
                    kind: RunKind::Operation,
                    version: 1,
                    status: RunStatus::Failed,
                    failed_step: full.then(|| "namespace".into()),
                    error: full.then(|| "boom".into()),
                    would: "resume".into(),
                    plan: full.then(|| StorePlan {
                        objects: vec![PlannedObject {
                            kind: "Deployment".into(),
                            name: "web".into(),
                            change: ObjectChange::Update,
                            fields: vec!["/spec/replicas".into()],
                            note: Some("n".into()),
                        }],
                        error: Some("e".into()),
                    }),
                }],
                cluster_plan: full.then(|| ClusterPlan {
                    run_id: Uuid::now_v7(),
                    state: PlanState::Failed,
                    error: Some("boom".into()),
                }),
            };
            same(&preview);
            same(&OperationCreated {
                operation: full.then(|| op.clone()),
                preview: (!full).then_some(preview),
            });
        }
    }
}
