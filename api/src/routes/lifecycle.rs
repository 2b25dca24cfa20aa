//! `/api/v1/stores/{id}/suspend`, `/resume`, `/resize` and `/upgrade`, and the dry run every store action accepts
//! (`dry_run=true`): the request is checked exactly as for real — the same service call, in a
//! transaction that is then rolled back — and a worker plans it under `dryRun=All`
//! (`store.preview@1`, waited for up to `api.plan_preview_wait_ms`). A custom-domain change
//! ([`super::domains`]) goes through the same path; its preview renders the domain list the
//! request would leave (read in the transaction before the rollback).

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use urumi_engine::Who;
use urumi_store::backups::BackupReason;
use urumi_store::db::Store as StoreRow;
use urumi_store::preview::PlannedAction;
use urumi_store::service::{self, DomainChange, Lifecycle};
use urumi_store::upgrades::{self, Upgrade};
use uuid::Uuid;

use super::stores::{existing_run, one, run_summary};
use super::{ApiTags, audit_in};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::text::Text;
use crate::views::RunKind;
use crate::views::store_actions::{NotStartedReason, StoreAction};

/// A store's suspension, resumption and plan changes.
#[derive(Debug)]
pub struct LifecycleApi(pub Arc<AppState>);

/// What a store action answers.
#[derive(Debug, ApiResponse)]
pub enum ActionAnswer {
    /// Accepted: the store's run is queued (or was already under way for the same action;
    /// not for a domain change, which always starts its own run).
    #[oai(status = 202)]
    Accepted(JsonBody<StoreAction>),
    /// Nothing was started: the store already is where the action would take it, or this
    /// was a dry run (`not_started`).
    #[oai(status = 200)]
    NotStarted(JsonBody<StoreAction>),
}

/// The dry run of an action the service accepted for `row` (its transaction rolled back by
/// the caller): the plan a worker computes.
pub(super) async fn plan_answer(
    state: &AppState,
    planned: PlannedAction,
    row: &StoreRow,
    new_plan: Option<&str>,
    backup: Option<Uuid>,
    domains: Option<Vec<String>>,
    channel: Option<&str>,
    actor: &str,
) -> Result<ActionAnswer, ApiError> {
    let (plan, store_plan) = state
        .ops
        .plan_store(planned, row.id, new_plan, backup, domains, channel, actor)
        .await?;
    let store = one(state, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("store {} not found", row.id)))?;
    Ok(ActionAnswer::NotStarted(JsonBody(StoreAction {
        store,
        run: None,
        not_started: Some(NotStartedReason::DryRun),
        cluster_plan: Some((&plan).into()),
        plan: store_plan.as_ref().map(Into::into),
    })))
}

/// The plan to move a store to.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct ResizeStore {
    /// One of `GET /api/v1/plans`.
    #[oai(validator(min_length = 1, max_length = 50))]
    pub plan: Text,
}

/// The channel to upgrade a store onto.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct UpgradeStore {
    /// One of `GET /api/v1/channels`; absent: the store's own channel.
    #[oai(validator(min_length = 1, max_length = 50))]
    pub channel: Option<Text>,
}

/// A store action as the API asks the store service for it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Request<'a> {
    Delete,
    Repair,
    Suspend,
    Resume,
    Resize(&'a str),
    Backup,
    Restore(Uuid),
    /// Attach a custom domain (as typed).
    AddDomain(&'a str),
    /// Detach a custom domain.
    RemoveDomain(&'a str),
    /// Onto a channel's current release (`None`: the store's own channel).
    Upgrade(Option<&'a str>),
}

impl Request<'_> {
    /// The kind of the run it starts (a request while one is under way answers that run).
    fn kind(self) -> RunKind {
        match self {
            Request::Delete => RunKind::Delete,
            Request::Repair => RunKind::Repair,
            Request::Suspend => RunKind::Suspend,
            Request::Resume => RunKind::Resume,
            Request::Resize(_) => RunKind::Resize,
            Request::Backup => RunKind::Backup,
            Request::Restore(_) => RunKind::Restore,
            Request::AddDomain(_) | Request::RemoveDomain(_) => RunKind::Domains,
            Request::Upgrade(_) => RunKind::Upgrade,
        }
    }
    /// Whether a request while a run of its kind is under way is answered with that run. Not
    /// for domain changes: an active domains run applies another change than this one.
    fn joins_active_run(self) -> bool {
        !matches!(self, Request::AddDomain(_) | Request::RemoveDomain(_))
    }
    /// The action a dry run previews.
    fn planned(self) -> PlannedAction {
        match self {
            Request::Delete => PlannedAction::Delete,
            Request::Repair => PlannedAction::Repair,
            Request::Suspend => PlannedAction::Suspend,
            Request::Resume => PlannedAction::Resume,
            Request::Resize(_) => PlannedAction::Resize,
            Request::Backup => PlannedAction::Backup,
            Request::Restore(_) => PlannedAction::Restore,
            Request::AddDomain(_) | Request::RemoveDomain(_) => PlannedAction::Domains,
            Request::Upgrade(_) => PlannedAction::Upgrade,
        }
    }
    /// The audit entry's kind and detail.
    fn audit(self, store: &StoreRow) -> (&'static str, serde_json::Value) {
        match self {
            Request::Delete => ("store.delete_requested", serde_json::json!({})),
            Request::Repair => ("store.repair_requested", serde_json::json!({})),
            Request::Suspend => ("store.suspend_requested", serde_json::json!({})),
            Request::Resume => ("store.resume_requested", serde_json::json!({})),
            Request::Resize(to) => (
                "store.resize_requested",
                serde_json::json!({ "from": store.plan, "to": to }),
            ),
            Request::Backup => ("store.backup_requested", serde_json::json!({})),
            Request::Restore(backup) => (
                "store.restore_requested",
                serde_json::json!({ "backup": backup }),
            ),
            Request::AddDomain(domain) => (
                "store.domain_add_requested",
                serde_json::json!({ "domain": urumi_store::domains::normalize(domain) }),
            ),
            Request::RemoveDomain(domain) => (
                "store.domain_remove_requested",
                serde_json::json!({ "domain": urumi_store::domains::normalize(domain) }),
            ),
            Request::Upgrade(channel) => (
                "store.upgrade_requested",
                serde_json::json!({
                    "from": { "channel": store.channel, "version": store.version },
                    "channel": channel.unwrap_or(&store.channel),
                }),
            ),
        }
    }
    async fn start_in(
        self,
        tx: &mut sqlx::PgConnection,
        state: &AppState,
        id: Uuid,
        who: &Who<'_>,
    ) -> Result<Lifecycle, service::Error> {
        let engine = &state.engine;
        Ok(match self {
            Request::Delete => Lifecycle::Started(service::delete_in(tx, engine, id, who).await?),
            Request::Repair => Lifecycle::Started(service::repair_in(tx, engine, id, who).await?),
            Request::Suspend => service::suspend_in(tx, engine, id, who).await?,
            Request::Resume => service::resume_in(tx, engine, id, who).await?,
            Request::Resize(plan) => {
                service::resize_in(tx, engine, &state.settings.stores, id, plan, who).await?
            }
            Request::Backup => Lifecycle::Started(
                service::backup_in(tx, engine, id, BackupReason::Manual, who)
                    .await?
                    .requested,
            ),
            Request::Restore(backup) => Lifecycle::Started(
                service::restore_in(tx, engine, id, backup, who)
                    .await?
                    .requested,
            ),
            Request::AddDomain(domain) => {
                let change = DomainChange::Add(domain);
                service::domains_in(tx, engine, &state.settings.stores, id, change, who).await?
            }
            Request::RemoveDomain(domain) => {
                let change = DomainChange::Remove(domain);
                service::domains_in(tx, engine, &state.settings.stores, id, change, who).await?
            }
            Request::Upgrade(channel) => {
                match upgrades::upgrade_in(tx, engine, &state.settings.stores, id, channel, who)
                    .await?
                {
                    Upgrade::Started { requested, .. } => Lifecycle::Started(requested),
                    Upgrade::Already(store) => Lifecycle::Unchanged(store),
                }
            }
        })
    }
}

/// Carries out a store action for `auth` (who must hold `role`): the service's checks and
/// the run, its audit entry, in one transaction — or, for a dry run, the same checks rolled
/// back and the worker's cluster plan; a store already where the action leads answers
/// `already`, a request while the same action runs answers that run.
pub(super) async fn act(
    state: &AppState,
    auth: &Auth,
    role: Role,
    id: Uuid,
    dry_run: bool,
    request: Request<'_>,
) -> Result<ActionAnswer, ApiError> {
    auth.0.require(role)?;
    let actor = auth.0.actor();
    let who = Who::interactive(actor);
    let mut tx = state.pool.begin().await?;
    let requested = match request.start_in(&mut tx, state, id, &who).await {
        Ok(Lifecycle::Started(r)) => r,
        Ok(Lifecycle::Unchanged(row)) => {
            drop(tx);
            return already(state, row.id).await;
        }
        Err(service::Error::Engine(urumi_engine::Error::Conflict { active_run, .. }))
            if !dry_run && request.joins_active_run() =>
        {
            drop(tx);
            return existing_run(state, id, active_run, request.kind()).await;
        }
        Err(e) => return Err(e.into()),
    };
    if dry_run {
        // A domain change's list as the request leaves it (read before the rollback): what
        // the preview renders.
        let domains = match request {
            Request::AddDomain(_) | Request::RemoveDomain(_) => {
                Some(urumi_store::db::domains(&mut *tx, id).await?)
            }
            _ => None,
        };
        // Checked as for real; rolled back, so nothing was started or marked.
        tx.rollback().await?;
        let new_plan = match request {
            Request::Resize(plan) => Some(plan),
            _ => None,
        };
        let backup = match request {
            Request::Restore(backup) => Some(backup),
            _ => None,
        };
        let channel = match request {
            Request::Upgrade(channel) => channel,
            _ => None,
        };
        return plan_answer(
            state,
            request.planned(),
            &requested.store,
            new_plan,
            backup,
            domains,
            channel,
            actor,
        )
        .await;
    }
    let (kind, detail) = request.audit(&requested.store);
    audit_in(
        &mut tx,
        kind,
        actor,
        Some(id),
        Some(requested.run_id),
        detail,
    )
    .await?;
    started(state, tx, &requested).await
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Stores")]
impl LifecycleApi {
    /// Suspend a ready store: its storefront answers "suspended" (503) from the platform's
    /// shared page, its workloads go to zero replicas; its volumes, database and Secrets are
    /// kept. A suspended store is left as it is (200, `not_started: already`). Refused (409) for a
    /// store that is provisioning, failed or deleting. With `dry_run=true`, nothing is
    /// started: the answer holds the objects the suspension would change. Needs `operator`.
    #[oai(
        path = "/stores/:id/suspend",
        method = "post",
        operation_id = "suspend_store"
    )]
    async fn suspend_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
    ) -> Result<ActionAnswer, ApiError> {
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Suspend,
        )
        .await
    }

    /// Resume a suspended store: its workloads come back, and once they are ready its
    /// storefront leaves the suspended page and must answer before the store is `ready`. A
    /// ready store is left as it is (200, `not_started: already`). With `dry_run=true`, nothing is
    /// started: the answer holds the objects the resumption would change. Needs `operator`.
    #[oai(
        path = "/stores/:id/resume",
        method = "post",
        operation_id = "resume_store"
    )]
    async fn resume_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
    ) -> Result<ActionAnswer, ApiError> {
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Resume,
        )
        .await
    }

    /// Move a ready or suspended store to another plan: its quota, LimitRange and volume
    /// sizes are re-applied and its workloads waited for (a suspended store's stay at zero).
    /// Refused (409) when its last observed usage is above the new plan's quota, when the
    /// plan lowers the quota and its usage was never observed, or when a volume would shrink;
    /// 422 for an unknown plan. Its current plan answers 200 `already`. With `dry_run=true`,
    /// nothing is started: the answer holds what would change. Needs `operator`.
    #[oai(
        path = "/stores/:id/resize",
        method = "post",
        operation_id = "resize_store"
    )]
    async fn resize_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
        body: Json<ResizeStore>,
    ) -> Result<ActionAnswer, ApiError> {
        let plan: &str = &body.0.plan;
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Resize(plan),
        )
        .await
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Stores")]
impl UpgradeApi {
    /// Upgrade a ready store to a release channel's current release (body `{"channel": …}`;
    /// `{}`: the store's own channel). The run backs the store up (`pre_upgrade`), applies
    /// the release's images, waits for them, runs the database update Job and checks the
    /// storefront; when any of that fails it restores the old images and, if the database
    /// was touched, the pre-upgrade backup — the run then fails saying why, and the store
    /// stays `ready` on its old release. A store already on the release answers 200
    /// `already`; 422 for an unknown channel; 409 for a store that is not ready or has a
    /// run under way. With `dry_run=true`, nothing is started: the answer holds the objects
    /// whose images change and the update Job. Needs `operator`.
    #[oai(
        path = "/stores/:id/upgrade",
        method = "post",
        operation_id = "upgrade_store"
    )]
    async fn upgrade_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
        body: Json<UpgradeStore>,
    ) -> Result<ActionAnswer, ApiError> {
        let channel: Option<&str> = body.0.channel.as_deref();
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Upgrade(channel),
        )
        .await
    }
}

/// Store upgrades (`POST /api/v1/stores/{id}/upgrade`).
#[derive(Debug)]
pub struct UpgradeApi(pub Arc<AppState>);

/// The answer for a store already where an action would take it.
async fn already(state: &AppState, id: Uuid) -> Result<ActionAnswer, ApiError> {
    let store = one(state, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("store {id} not found")))?;
    Ok(ActionAnswer::NotStarted(JsonBody(StoreAction {
        store,
        run: None,
        not_started: Some(NotStartedReason::Already),
        cluster_plan: None,
        plan: None,
    })))
}

/// Commits `tx` (the run and its audit entry) and answers the started run.
async fn started(
    state: &AppState,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    requested: &service::Requested,
) -> Result<ActionAnswer, ApiError> {
    let run = run_summary(&mut tx, requested.run_id).await?;
    tx.commit().await?;
    let store = one(state, requested.store.id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("store {} not found", requested.store.id)))?;
    Ok(ActionAnswer::Accepted(JsonBody(StoreAction {
        store,
        run: Some(run),
        not_started: None,
        cluster_plan: None,
        plan: None,
    })))
}
