//! What the API answers with: the JSON shapes of stores, runs, steps, audit entries and
//! tokens, and their conversions from the stored rows. Every schema has a name and every
//! closed set is an enum, so generated clients need no hand edits.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde_json::Value;
use urumi_engine::{
    Event, Run, RunStatus as EngineRunStatus, StepRecord, StepStatus as EngineStepStatus,
};
use urumi_workflows::store::db::Store as StoreRow;
use uuid::Uuid;

use crate::auth::{Role, TokenRow};

/// Where a store is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum StoreStatus {
    Provisioning,
    Ready,
    Failed,
    Deleting,
    Deleted,
}

impl StoreStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            _ => Self::Provisioning,
        }
    }
}

/// The software a store runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum StoreEngine {
    Woocommerce,
}

impl StoreEngine {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Woocommerce => "woocommerce",
        }
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    /// Backing off or polling; holds no worker.
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<EngineRunStatus> for RunStatus {
    fn from(s: EngineRunStatus) -> Self {
        match s {
            EngineRunStatus::Queued => Self::Queued,
            EngineRunStatus::Running => Self::Running,
            EngineRunStatus::Waiting => Self::Waiting,
            EngineRunStatus::Succeeded => Self::Succeeded,
            EngineRunStatus::Failed => Self::Failed,
            EngineRunStatus::Cancelled => Self::Cancelled,
        }
    }
}

impl RunStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RunKind {
    /// Build a store.
    #[oai(rename = "store.provision")]
    Provision,
    /// Delete a store.
    #[oai(rename = "store.delete")]
    Delete,
    /// Re-apply a store's desired state.
    #[oai(rename = "store.repair")]
    Repair,
    /// The engine's demonstration workflow.
    #[oai(rename = "demo")]
    Demo,
}

impl RunKind {
    /// The engine's definition name.
    #[must_use]
    pub fn definition(self) -> &'static str {
        match self {
            Self::Provision => "store.provision",
            Self::Delete => "store.delete",
            Self::Repair => "store.repair",
            Self::Demo => "demo",
        }
    }
    /// The kind of a run of definition `d`.
    #[must_use]
    pub fn from_definition(d: &str) -> Self {
        match d {
            "store.provision" => Self::Provision,
            "store.delete" => Self::Delete,
            "store.repair" => Self::Repair,
            _ => Self::Demo,
        }
    }
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl From<EngineStepStatus> for StepStatus {
    fn from(s: EngineStepStatus) -> Self {
        match s {
            EngineStepStatus::Pending => Self::Pending,
            EngineStepStatus::Running => Self::Running,
            EngineStepStatus::Waiting => Self::Waiting,
            EngineStepStatus::Succeeded => Self::Succeeded,
            EngineStepStatus::Failed => Self::Failed,
            EngineStepStatus::Skipped => Self::Skipped,
        }
    }
}

/// A run in lists.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunSummary {
    pub id: Uuid,
    pub kind: RunKind,
    /// The store the run works on, for store runs.
    pub store_id: Option<Uuid>,
    pub status: RunStatus,
    /// Who started it.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The run this one re-runs, if any.
    pub rerun_of: Option<Uuid>,
}

/// The store id of a `store:<uuid>` subject.
#[must_use]
pub fn store_of(subject: &str) -> Option<Uuid> {
    subject
        .strip_prefix("store:")
        .and_then(|s| Uuid::try_parse(s).ok())
}

impl From<&Run> for RunSummary {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id,
            kind: RunKind::from_definition(&r.definition),
            store_id: store_of(&r.subject),
            status: r.status().into(),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            error: r.error.clone(),
            rerun_of: r.rerun_of,
        }
    }
}

/// One step of a run.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StepView {
    pub name: String,
    pub position: i32,
    pub status: StepStatus,
    /// Executions so far (polls of a waiting step are not attempts).
    pub attempts: i32,
    /// Times it polled for readiness.
    pub polls: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub last_error: Option<String>,
    /// When a waiting step runs next.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The step's result, when it succeeded.
    pub output: Option<Value>,
}

impl From<&StepRecord> for StepView {
    fn from(s: &StepRecord) -> Self {
        Self {
            name: s.name.clone(),
            position: s.position,
            status: s.status().into(),
            attempts: s.attempts,
            polls: s.polls,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s.duration_ms(),
            last_error: s.last_error.clone(),
            next_attempt_at: s.next_attempt_at,
            output: s.output.clone(),
        }
    }
}

/// A run with every step.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunDetail {
    #[oai(flatten)]
    pub run: RunSummary,
    /// The run's result (e.g. a repair's report), when it has one.
    pub output: Option<Value>,
    /// When an operator asked to cancel it.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepView>,
}

/// How long a store took.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreTimings {
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// From the request to ready.
    pub seconds_to_ready: Option<f64>,
}

/// A store.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Store {
    pub id: Uuid,
    /// The name as given.
    pub name: String,
    /// The DNS label derived from the name; the store's namespace is `store-<slug>`.
    pub slug: String,
    pub engine: StoreEngine,
    pub plan: String,
    pub status: StoreStatus,
    /// The storefront, once ready.
    pub url: Option<String>,
    pub created_by: String,
    pub timings: StoreTimings,
    /// The newest run working on (or that last worked on) the store.
    pub current_run: Option<RunSummary>,
}

impl Store {
    /// From the stored row and its newest run.
    #[must_use]
    pub fn from_row(s: &StoreRow, current_run: Option<RunSummary>) -> Self {
        Self {
            id: s.id,
            name: s.name.clone(),
            slug: s.slug.clone(),
            engine: StoreEngine::Woocommerce,
            plan: s.plan.clone(),
            status: StoreStatus::parse(&s.status),
            url: s.url.clone(),
            created_by: s.created_by.clone(),
            timings: StoreTimings {
                created_at: s.created_at,
                ready_at: s.ready_at,
                deleted_at: s.deleted_at,
                seconds_to_ready: s
                    .ready_at
                    .map(|r| (r - s.created_at).num_milliseconds() as f64 / 1000.0),
            },
            current_run,
        }
    }
}

/// A store and the run just started for it.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreAccepted {
    /// The store, as `GET /api/v1/stores/{id}` shows it.
    pub store: Store,
    /// The run started for the request.
    pub run: RunSummary,
}

/// One page of stores.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StorePage {
    pub items: Vec<Store>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One page of runs.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An entry of the audit log: an operator's action or a run, step or store transition.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntry {
    pub id: i64,
    /// e.g. `store.created`, `run.retried`, `step.succeeded`, `store.ready`, `token.revoked`.
    pub kind: String,
    /// Who did it: a token's name, a worker's id, or `system`.
    pub actor: String,
    pub store_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub step: Option<String>,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

impl From<&Event> for AuditEntry {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind.clone(),
            actor: e.actor.clone(),
            store_id: e.subject.as_deref().and_then(store_of),
            run_id: e.run_id,
            step: e.step.clone(),
            detail: e.detail.clone(),
            created_at: e.created_at,
        }
    }
}

/// One page of the audit log.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An API token (never its secret).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Token {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl From<&TokenRow> for Token {
    fn from(t: &TokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            role: Role::parse(&t.role).unwrap_or(Role::Viewer),
            created_by: t.created_by.clone(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            revoked_by: t.revoked_by.clone(),
        }
    }
}

/// A token just minted: `token` is shown this once.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MintedToken {
    #[oai(flatten)]
    pub info: Token,
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
}

/// One page of tokens.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenList {
    pub items: Vec<Token>,
}
