//! What the API answers with: the JSON shapes of stores, runs, steps, audit entries and
//! tokens, and their conversions from the stored rows. Every schema has a name and every
//! closed set is an enum, so generated clients need no hand edits.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde_json::Value;
use urumi_engine::{
    Event, Run, RunStatus as EngineRunStatus, StepRecord, StepStatus as EngineStepStatus,
};
use urumi_store::db::Store as StoreRow;
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
    /// Workloads at zero replicas, the storefront answered by the suspended page; resume
    /// brings it back.
    Suspended,
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
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
        }
    }
}

impl From<StoreStatus> for urumi_store::status::StoreStatus {
    fn from(s: StoreStatus) -> Self {
        match s {
            StoreStatus::Provisioning => Self::Provisioning,
            StoreStatus::Ready => Self::Ready,
            StoreStatus::Failed => Self::Failed,
            StoreStatus::Suspended => Self::Suspended,
            StoreStatus::Deleting => Self::Deleting,
            StoreStatus::Deleted => Self::Deleted,
        }
    }
}

impl From<urumi_store::status::StoreStatus> for StoreStatus {
    fn from(s: urumi_store::status::StoreStatus) -> Self {
        use urumi_store::status::StoreStatus as S;
        match s {
            S::Provisioning => Self::Provisioning,
            S::Ready => Self::Ready,
            S::Failed => Self::Failed,
            S::Suspended => Self::Suspended,
            S::Deleting => Self::Deleting,
            S::Deleted => Self::Deleted,
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
    /// The engine a stored name names; `None` for one this API version does not know.
    #[must_use]
    pub fn from_stored(name: &str) -> Option<Self> {
        match name {
            "woocommerce" => Some(Self::Woocommerce),
            _ => None,
        }
    }

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Woocommerce => "woocommerce",
        }
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
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

impl From<RunStatus> for EngineRunStatus {
    fn from(s: RunStatus) -> Self {
        match s {
            RunStatus::Queued => Self::Queued,
            RunStatus::Running => Self::Running,
            RunStatus::Waiting => Self::Waiting,
            RunStatus::Succeeded => Self::Succeeded,
            RunStatus::Failed => Self::Failed,
            RunStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
pub enum RunKind {
    /// Build a store.
    #[oai(rename = "store.provision")]
    #[serde(rename = "store.provision")]
    Provision,
    /// Delete a store.
    #[oai(rename = "store.delete")]
    #[serde(rename = "store.delete")]
    Delete,
    /// Re-apply a store's desired state.
    #[oai(rename = "store.repair")]
    #[serde(rename = "store.repair")]
    Repair,
    /// Suspend a store (workloads to zero, the storefront to the suspended page).
    #[oai(rename = "store.suspend")]
    #[serde(rename = "store.suspend")]
    Suspend,
    /// Resume a suspended store.
    #[oai(rename = "store.resume")]
    #[serde(rename = "store.resume")]
    Resume,
    /// Move a store to another plan.
    #[oai(rename = "store.resize")]
    #[serde(rename = "store.resize")]
    Resize,
    /// Back a store up (a dump Job; archive size and checksum recorded).
    #[oai(rename = "store.backup")]
    #[serde(rename = "store.backup")]
    Backup,
    /// Restore a store from one of its backups.
    #[oai(rename = "store.restore")]
    #[serde(rename = "store.restore")]
    Restore,
    /// A plan's scheduled backups (its `backups.schedule`): a backup run per ready store.
    #[oai(rename = "store.scheduled_backups")]
    #[serde(rename = "store.scheduled_backups")]
    ScheduledBackups,
    /// Apply a store's custom domains (one added or removed): Ingress hosts and TLS, the
    /// app's site URL.
    #[oai(rename = "store.domains")]
    #[serde(rename = "store.domains")]
    Domains,
    /// Upgrade a store to a channel's release (pre-upgrade backup, new pins, database
    /// update Job, storefront check; rolled back automatically on failure).
    #[oai(rename = "store.upgrade")]
    #[serde(rename = "store.upgrade")]
    Upgrade,
    /// The engine's demonstration workflow.
    #[oai(rename = "demo")]
    #[serde(rename = "demo")]
    Demo,
    /// A bulk operation's parent run (`/operations`).
    #[oai(rename = "operation")]
    #[serde(rename = "operation")]
    Operation,
    /// The cluster plan of a repair or delete operation's dry run (dry-run applies only).
    #[oai(rename = "store.preview")]
    #[serde(rename = "store.preview")]
    Preview,
    /// The fleet's resource usage observation (`[usage] cron`).
    #[oai(rename = "store.usage")]
    #[serde(rename = "store.usage")]
    Usage,
    /// The fleet drift sweep (`[sweep] cron`): each ready store's repair preview, drifted
    /// stores listed (and repaired when the worker's `[sweep] repair` says so).
    #[oai(rename = "store.sweep")]
    #[serde(rename = "store.sweep")]
    Sweep,
}

impl RunKind {
    /// The engine's definition name.
    #[must_use]
    pub fn definition(self) -> &'static str {
        use urumi_store::definitions::{
            BACKUP, DELETE, DOMAINS, PROVISION, REPAIR, RESIZE, RESTORE, RESUME, SUSPEND, UPGRADE,
        };
        use urumi_store::preview::PREVIEW;
        use urumi_store::sweep::SWEEP;
        use urumi_store::usage::USAGE;
        match self {
            Self::Provision => PROVISION,
            Self::Delete => DELETE,
            Self::Repair => REPAIR,
            Self::Suspend => SUSPEND,
            Self::Resume => RESUME,
            Self::Resize => RESIZE,
            Self::Backup => BACKUP,
            Self::Restore => RESTORE,
            Self::ScheduledBackups => urumi_store::scheduled_backups::SCHEDULED_BACKUPS,
            Self::Domains => DOMAINS,
            Self::Upgrade => UPGRADE,
            Self::Demo => "demo",
            Self::Operation => urumi_ops::NAME,
            Self::Preview => PREVIEW,
            Self::Usage => USAGE,
            Self::Sweep => SWEEP,
        }
    }
    /// The kind of a run of definition `d`.
    #[must_use]
    pub fn from_definition(d: &str) -> Self {
        use urumi_store::definitions::{
            BACKUP, DELETE, DOMAINS, PROVISION, REPAIR, RESIZE, RESTORE, RESUME, SUSPEND, UPGRADE,
        };
        use urumi_store::preview::PREVIEW;
        use urumi_store::sweep::SWEEP;
        use urumi_store::usage::USAGE;
        match d {
            PROVISION => Self::Provision,
            DELETE => Self::Delete,
            REPAIR => Self::Repair,
            SUSPEND => Self::Suspend,
            RESUME => Self::Resume,
            RESIZE => Self::Resize,
            BACKUP => Self::Backup,
            RESTORE => Self::Restore,
            urumi_store::scheduled_backups::SCHEDULED_BACKUPS => Self::ScheduledBackups,
            DOMAINS => Self::Domains,
            UPGRADE => Self::Upgrade,
            urumi_ops::NAME => Self::Operation,
            PREVIEW => Self::Preview,
            USAGE => Self::Usage,
            SWEEP => Self::Sweep,
            _ => Self::Demo,
        }
    }
}

/// Where a step is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

/// Why a waiting step waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum WaitKind {
    /// Not ready yet: it checks again later (costs no attempt).
    Poll,
    /// It failed and tries again after a backoff (a new attempt).
    Backoff,
    /// Something it talks to failed (5xx, timeout): it tries again without spending an
    /// attempt, within its transient budget.
    Transient,
}

impl WaitKind {
    /// The stored name's kind; `None` for anything else (never written by the engine).
    fn parse(s: &str) -> Option<Self> {
        match s {
            "poll" => Some(Self::Poll),
            "backoff" => Some(Self::Backoff),
            "transient" => Some(Self::Transient),
            _ => None,
        }
    }
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
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunSummary {
    pub id: Uuid,
    pub kind: RunKind,
    /// The store the run works on, for store runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<Uuid>,
    pub status: RunStatus,
    /// Who started it.
    pub created_by: String,
    #[serde(serialize_with = "rfc3339::one")]
    pub created_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run this one re-runs, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_of: Option<Uuid>,
}

pub use urumi_store::subject::store_of;

impl From<&Run> for RunSummary {
    fn from(r: &Run) -> Self {
        Self::from(&urumi_engine::RunHead::from(r))
    }
}

impl From<&urumi_engine::RunHead> for RunSummary {
    fn from(r: &urumi_engine::RunHead) -> Self {
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
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StepView {
    pub name: String,
    pub position: i32,
    pub status: StepStatus,
    /// Executions so far (polls of a waiting step are not attempts).
    pub attempts: i32,
    /// Times it polled for readiness.
    pub polls: i32,
    /// While it waits: why (a readiness poll, a retry backoff, a transient retry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_kind: Option<WaitKind>,
    /// Time spent waiting so far (polls and backoffs, summed), in milliseconds.
    pub waited_ms: i64,
    /// Why it last waited (its latest poll's reason). Each poll is counted in `polls`; an
    /// event is written only when the reason changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_reason: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When a waiting step runs next.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The step's result, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
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
            wait_kind: s.wait_kind.as_deref().and_then(WaitKind::parse),
            waited_ms: s.waited_ms,
            wait_reason: s.wait_reason.clone(),
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
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunDetail {
    #[oai(flatten)]
    #[serde(flatten)]
    pub run: RunSummary,
    /// The run's result (e.g. a repair's report), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// When an operator asked to cancel it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// The lane it is claimed in.
    pub lane: Lane,
    /// Whose work it is (the bulk lane's round-robin key).
    pub owner: String,
    /// How many of its first steps were carried over from `rerun_of` (a rerun from a step).
    pub carried_steps: i32,
    pub steps: Vec<StepView>,
}

/// A run's priority lane: interactive runs are claimed first, then scheduled ones, then bulk
/// ones (a bulk operation's targets) round robin across owners; bulk runs never hold every
/// worker slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Interactive,
    Scheduled,
    Bulk,
}

impl From<urumi_engine::Lane> for Lane {
    fn from(l: urumi_engine::Lane) -> Self {
        match l {
            urumi_engine::Lane::Interactive => Self::Interactive,
            urumi_engine::Lane::Scheduled => Self::Scheduled,
            urumi_engine::Lane::Bulk => Self::Bulk,
        }
    }
}

/// How long a store took.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreTimings {
    #[serde(serialize_with = "rfc3339::one")]
    pub created_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub ready_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub deleted_at: Option<DateTime<Utc>>,
    /// From the request to ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_to_ready: Option<f64>,
}

/// A store.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Store {
    pub id: Uuid,
    /// The name as given.
    pub name: String,
    /// The DNS label derived from the name; the store's namespace is `store-<slug>`.
    pub slug: String,
    pub engine: StoreEngine,
    pub plan: String,
    /// The release channel the store follows (`GET /api/v1/channels`).
    pub channel: String,
    /// The channel release it runs; absent for a store from before channels until its
    /// first upgrade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub status: StoreStatus,
    /// The storefront, once ready: always the platform's own host `<slug>.<base domain>`,
    /// which keeps answering beside any custom domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The store's custom domains, oldest first. The first is its primary domain, the
    /// address the store's app is told it lives at (WordPress's site URL) once the
    /// `store.domains` run that added it has finished. (Defaults to none when read back
    /// from an answer recorded before stores had domains: an idempotent replay.)
    #[oai(default)]
    pub domains: Vec<String>,
    pub created_by: String,
    pub timings: StoreTimings,
    /// The newest run working on (or that last worked on) the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_run: Option<RunSummary>,
}

/// A stored store whose engine this API version does not know (a newer release wrote it):
/// never shown as some other engine.
#[derive(Debug)]
pub struct UnknownEngine {
    pub store: Uuid,
    pub engine: String,
}

impl std::fmt::Display for UnknownEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "store {} runs engine {:?}, which this API version does not know",
            self.store, self.engine
        )
    }
}

impl Store {
    /// From the stored row and its newest run.
    ///
    /// # Errors
    /// [`UnknownEngine`].
    pub fn from_row(
        s: &StoreRow,
        current_run: Option<RunSummary>,
        domains: Vec<String>,
    ) -> Result<Self, UnknownEngine> {
        Self::from_owned(s.clone(), current_run, domains)
    }

    /// [`Store::from_row`] taking the row (no string copies: list pages build 50 of these).
    ///
    /// # Errors
    /// [`UnknownEngine`].
    pub fn from_owned(
        s: StoreRow,
        current_run: Option<RunSummary>,
        domains: Vec<String>,
    ) -> Result<Self, UnknownEngine> {
        let Some(engine) = StoreEngine::from_stored(&s.engine) else {
            return Err(UnknownEngine {
                store: s.id,
                engine: s.engine,
            });
        };
        Ok(Self {
            id: s.id,
            status: s.status.into(),
            timings: StoreTimings {
                created_at: s.created_at,
                ready_at: s.ready_at,
                deleted_at: s.deleted_at,
                seconds_to_ready: s
                    .ready_at
                    .map(|r| (r - s.created_at).num_milliseconds() as f64 / 1000.0),
            },
            name: s.name,
            slug: s.slug,
            engine,
            plan: s.plan,
            channel: s.channel,
            version: s.version,
            url: s.url,
            domains,
            created_by: s.created_by,
            current_run,
        })
    }
}

/// A store and the run just started for it.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreAccepted {
    /// The store, as `GET /api/v1/stores/{id}` shows it.
    pub store: Store,
    /// The run started for the request.
    pub run: RunSummary,
}

/// One page of stores.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StorePage {
    pub items: Vec<Store>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One page of runs.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunPage {
    pub items: Vec<RunSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An entry of the audit log: an operator's action or a run, step or store transition.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntry {
    pub id: i64,
    /// e.g. `store.created`, `run.retried`, `step.succeeded`, `store.ready`, `token.revoked`.
    pub kind: String,
    /// Who did it: a token's name, a worker's id, or `system`.
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub detail: Value,
    #[serde(serialize_with = "rfc3339::one")]
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
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An API token (never its secret).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Token {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    #[serde(serialize_with = "rfc3339::one")]
    pub created_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// When the token stops working, if it was minted with an expiry.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub expires_at: Option<DateTime<Utc>>,
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
            expires_at: t.expires_at,
        }
    }
}

/// A token just minted: `token` is shown this once.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct MintedToken {
    #[oai(flatten)]
    #[serde(flatten)]
    pub info: Token,
    /// The bearer token. Store it now; it cannot be shown again.
    pub token: String,
}

/// One page of tokens.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TokenList {
    pub items: Vec<Token>,
}

/// A release channel: its current release and what the release pins.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ChannelView {
    pub name: String,
    /// The channel of a new store.
    pub default: bool,
    /// The current release's label (what an upgrade onto the channel reaches).
    pub version: String,
    /// Images (WordPress, MariaDB, WP-CLI) and the WooCommerce plugin version.
    pub wordpress: String,
    pub mariadb: String,
    pub wp_cli: String,
    pub woocommerce: String,
}

impl ChannelView {
    /// The view of channel `name`.
    #[must_use]
    pub fn new(name: &str, c: &urumi_store::settings::Channel, default: bool) -> Self {
        Self {
            name: name.to_owned(),
            default,
            version: c.version.clone(),
            wordpress: c.pins.wordpress.clone(),
            mariadb: c.pins.mariadb.clone(),
            wp_cli: c.pins.wp_cli.clone(),
            woocommerce: c.pins.woocommerce.clone(),
        }
    }
}

/// How many live stores run one release of one channel.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct VersionCountView {
    pub channel: String,
    /// Absent: stores from before channels, not upgraded since (their release is not
    /// recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub stores: i64,
    /// Whether this is the channel's current release (false also for a channel no longer
    /// configured).
    pub current: bool,
}

/// The channels, and the fleet's version spread.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ChannelList {
    pub items: Vec<ChannelView>,
    /// Live (not deleted) stores by channel and release: what is left to roll out.
    pub versions: Vec<VersionCountView>,
}

/// A plan a store can be created on: what its namespace's ResourceQuota allows and the
/// sizes of its volumes (Kubernetes quantities, as the quota and PVCs are written).
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct PlanView {
    pub name: String,
    /// The plan of a store created without one.
    pub default: bool,
    /// Pods the store's namespace may run.
    pub pods: String,
    /// CPU and memory the namespace's pods may request, and their limits, in total.
    pub requests_cpu: String,
    pub requests_memory: String,
    pub limits_cpu: String,
    pub limits_memory: String,
    /// PersistentVolumeClaims the namespace may hold, and the storage they may request.
    pub pvcs: String,
    pub requests_storage: String,
    /// The database's volume.
    pub db_storage: String,
    /// WordPress's volume (uploads, plugins).
    pub wp_storage: String,
    /// How the plan's stores are backed up.
    pub backups: PlanBackups,
}

/// A plan's backup policy.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct PlanBackups {
    /// Complete backups kept per store; older ones are pruned when a new one completes.
    pub retention: u32,
    /// The cron expression (seconds first) on which the plan's ready stores are backed up;
    /// absent: only on request.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The size of a store's backup volume (when backups are kept in the cluster).
    pub volume: String,
}

impl PlanView {
    #[must_use]
    pub fn new(name: &str, plan: &urumi_store::settings::Plan, default: bool) -> Self {
        Self {
            name: name.to_owned(),
            default,
            pods: plan.pods.clone(),
            requests_cpu: plan.requests_cpu.clone(),
            requests_memory: plan.requests_memory.clone(),
            limits_cpu: plan.limits_cpu.clone(),
            limits_memory: plan.limits_memory.clone(),
            pvcs: plan.pvcs.clone(),
            requests_storage: plan.requests_storage.clone(),
            db_storage: plan.db_storage.clone(),
            wp_storage: plan.wp_storage.clone(),
            backups: PlanBackups {
                retention: plan.backups.retention,
                schedule: plan.backups.schedule.clone(),
                volume: plan.backups.volume.clone(),
            },
        }
    }
}

/// The plans, by name.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct PlanList {
    pub items: Vec<PlanView>,
}

/// One step of one workflow version over an insight window.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct StepInsightView {
    pub definition: String,
    pub version: i32,
    pub step: String,
    /// Steps that ended (succeeded or failed).
    pub count: i64,
    pub failed: i64,
    /// `failed / count`.
    pub failure_rate: f64,
    /// From the step's first start to its end, in milliseconds: values of the data, exact
    /// when `exact` (windows of 6 hours or less), else a histogram bucket's middle within
    /// ±2.5 % (longer windows read hourly rollups).
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Whether the percentiles are exact (see `p50_ms`).
    pub exact: bool,
    /// Attempts beyond the first, summed.
    pub retries: i64,
    /// Readiness checks of waiting steps, summed.
    pub polls: i64,
    /// Time spent waiting (polls, retry backoffs) and working, summed, in milliseconds.
    pub waiting_ms: f64,
    pub working_ms: f64,
    /// The most common errors (up to three), most frequent first.
    pub errors: Vec<ErrorCountView>,
}

/// An error and how many steps ended with or retried after it.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct ErrorCountView {
    /// The error, cut to 200 characters.
    pub error: String,
    pub steps: i64,
}

/// Per-step insights over a window.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct StepInsights {
    /// The window's start.
    pub since: DateTime<Utc>,
    pub hours: u32,
    /// By definition, version, then the steps' order.
    pub items: Vec<StepInsightView>,
}

/// The runs of one definition over a window.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RunInsights {
    pub definition: String,
    /// The window's start.
    pub since: DateTime<Utc>,
    pub hours: u32,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Successes, from enqueue to end, in milliseconds (exact values; absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// Successes by duration.
    pub histogram: Vec<DurationBucket>,
}

/// Runs that took from `from_seconds` (inclusive) to `to_seconds` (exclusive; absent for
/// the last bucket, which has no end).
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct DurationBucket {
    pub from_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_seconds: Option<f64>,
    pub runs: i64,
}

/// The fleet at a glance: stores by status and the runs that ended per hour.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct FleetInsights {
    /// The window's start (for `runs_per_hour`).
    pub since: DateTime<Utc>,
    pub hours: u32,
    /// Every store status with its count (zero included), in the order of the statuses.
    pub stores: Vec<StatusCount>,
    /// Per hour (oldest first) and definition, the runs that ended in it; hours without
    /// runs are absent.
    pub runs_per_hour: Vec<RunHourView>,
    /// Per quota resource, the live stores' usage and quota summed (their last observations).
    pub usage: Vec<usage::FleetResource>,
}

/// How many stores are in a status.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct StatusCount {
    pub status: StoreStatus,
    pub count: i64,
}

/// Runs of one definition that ended in one hour.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct RunHourView {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    pub definition: String,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
}

/// Timestamps as poem-openapi's `ToJSON` writes them (`to_rfc3339`: `+00:00`, sub-second
/// digits as needed), so stored and served views read the same.
pub mod backups;
pub mod cluster_plan;
pub mod operations;
pub mod store_actions;
pub mod usage;

mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub(super) fn one<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    #[allow(
        clippy::ref_option,
        reason = "serde's serialize_with passes &Option<T>"
    )]
    pub(super) fn opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => one(t, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The bytes sent (serde) must equal what the schema describes (poem-openapi's `ToJSON`).

    use chrono::TimeZone;
    use poem_openapi::types::ToJSON;
    use serde_json::json;

    use super::*;

    pub(super) fn same<T: ToJSON + serde::Serialize>(view: &T) {
        let sent = serde_json::to_value(view).expect("serialises");
        let described = view.to_json().expect("to_json");
        assert_eq!(sent, described);
    }

    pub(super) fn at(nanos: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_000_000, nanos)
            .single()
            .expect("valid")
    }

    fn run(full: bool, kind: RunKind, status: RunStatus) -> RunSummary {
        RunSummary {
            id: Uuid::now_v7(),
            kind,
            store_id: full.then(Uuid::now_v7),
            status,
            created_by: "admin \"quoted\" ü".into(),
            created_at: at(0),
            started_at: full.then(|| at(123_000_000)),
            finished_at: full.then(|| at(123_456_789)),
            error: full.then(|| "boom\nline 2".into()),
            rerun_of: full.then(Uuid::now_v7),
        }
    }

    fn store(full: bool, status: StoreStatus) -> Store {
        Store {
            id: Uuid::now_v7(),
            name: "Café <One>".into(),
            slug: "cafe-one".into(),
            engine: StoreEngine::Woocommerce,
            plan: "small".into(),
            channel: "stable".into(),
            version: full.then(|| "2026.11".into()),
            status,
            url: full.then(|| "https://cafe-one.stores.example".into()),
            domains: if full {
                vec!["shop.cafe-one.example".into()]
            } else {
                Vec::new()
            },
            created_by: "admin".into(),
            timings: StoreTimings {
                created_at: at(1_000),
                ready_at: full.then(|| at(999_999_999)),
                deleted_at: full.then(|| at(500_000)),
                seconds_to_ready: full.then_some(12.345),
            },
            current_run: full.then(|| run(true, RunKind::Provision, RunStatus::Running)),
        }
    }

    #[test]
    fn every_store_and_page_serialises_as_its_schema_says() {
        let statuses = [
            StoreStatus::Provisioning,
            StoreStatus::Ready,
            StoreStatus::Failed,
            StoreStatus::Deleting,
            StoreStatus::Deleted,
        ];
        let items: Vec<Store> = statuses
            .iter()
            .flat_map(|s| [store(true, *s), store(false, *s)])
            .collect();
        for s in &items {
            same(s);
        }
        same(&StorePage {
            items,
            next_cursor: Some("abc".into()),
        });
        same(&StorePage {
            items: vec![],
            next_cursor: None,
        });
        same(&StoreAccepted {
            store: store(true, StoreStatus::Provisioning),
            run: run(false, RunKind::Provision, RunStatus::Queued),
        });
    }

    #[test]
    fn every_store_engine_and_store_workflow_has_its_view() {
        for name in urumi_store::engines::NAMES {
            let view = StoreEngine::from_stored(name);
            assert_eq!(view.map(StoreEngine::as_str), Some(*name), "engine {name}");
        }
        for def in urumi_store::registry().unwrap().iter() {
            let kind = RunKind::from_definition(def.name());
            assert_ne!(kind, RunKind::Demo, "{} shows as a demo run", def.key());
            assert_eq!(kind.definition(), def.name());
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                json!(def.name()),
                "the run kind is sent as its definition's name"
            );
        }
    }

    #[test]
    fn every_run_step_and_page_serialises_as_its_schema_says() {
        let kinds = [
            RunKind::Provision,
            RunKind::Delete,
            RunKind::Repair,
            RunKind::Domains,
            RunKind::Demo,
        ];
        let statuses = [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Waiting,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ];
        let mut items = vec![];
        for k in kinds {
            for s in statuses {
                items.push(run(true, k, s));
                items.push(run(false, k, s));
            }
        }
        for r in &items {
            same(r);
        }
        same(&RunPage {
            items,
            next_cursor: None,
        });
        let step_statuses = [
            StepStatus::Pending,
            StepStatus::Running,
            StepStatus::Waiting,
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::Skipped,
        ];
        let steps: Vec<StepView> = step_statuses
            .iter()
            .enumerate()
            .map(|(i, s)| StepView {
                name: format!("step-{i}"),
                position: i32::try_from(i).expect("small"),
                status: *s,
                attempts: 2,
                polls: 7,
                wait_kind: [
                    None,
                    Some(WaitKind::Poll),
                    Some(WaitKind::Backoff),
                    Some(WaitKind::Transient),
                ][i % 4],
                waited_ms: 250,
                wait_reason: None,
                started_at: (i % 2 == 0).then(|| at(1)),
                finished_at: (i % 2 == 0).then(|| at(10_000)),
                duration_ms: (i % 2 == 0).then_some(12),
                last_error: (i % 3 == 0).then(|| "429 Too Many Requests".into()),
                next_attempt_at: (i % 3 == 1).then(|| at(0)),
                output: (i % 2 == 0).then(|| json!({"objects": ["a", "b"], "n": 1.5, "x": null})),
            })
            .collect();
        for with in [true, false] {
            same(&RunDetail {
                run: run(with, RunKind::Repair, RunStatus::Succeeded),
                output: with.then(|| json!({"missing": [], "drifted": ["np/default-deny"]})),
                cancel_requested_at: with.then(|| at(42)),
                lane: [Lane::Interactive, Lane::Bulk][usize::from(with)],
                owner: "ops".into(),
                carried_steps: i32::from(with),
                steps: steps.clone(),
            });
        }
    }

    #[test]
    fn audit_entries_and_tokens_serialise_as_their_schemas_say() {
        let entries: Vec<AuditEntry> = [true, false]
            .iter()
            .map(|full| AuditEntry {
                id: i64::MAX,
                kind: "step.failed".into(),
                actor: "worker-1".into(),
                store_id: full.then(Uuid::now_v7),
                run_id: full.then(Uuid::now_v7),
                step: full.then(|| "setup".into()),
                detail: json!({"error": "x", "attempt": 3}),
                created_at: at(7),
            })
            .collect();
        same(&AuditPage {
            items: entries,
            next_cursor: Some("9".into()),
        });
        let tokens: Vec<Token> = [Role::Viewer, Role::Operator, Role::Admin]
            .iter()
            .enumerate()
            .map(|(i, role)| Token {
                id: Uuid::now_v7(),
                name: format!("t{i}"),
                role: *role,
                created_by: "bootstrap".into(),
                created_at: at(0),
                revoked_at: (i == 1).then(|| at(5)),
                revoked_by: (i == 1).then(|| "admin".into()),
                expires_at: (i == 2).then(|| at(9)),
            })
            .collect();
        same(&MintedToken {
            info: tokens[0].clone(),
            token: "urumi_x_y".into(),
        });
        same(&TokenList { items: tokens });
    }
}
