//! The code of `store.suspend@1` and `store.resume@1` (declared, with their step order, in
//! `urumi_store::definitions`). Both render the store from their run input, whose `suspended`
//! says which state is desired: a suspend run's input is suspended, a resume run's is not
//! (`urumi_store::service::suspend_in` / `resume_in` write them).
//!
//! ```text
//! suspend: route_suspended (Service store-suspended → the shared page; Ingress to it)
//!          → scale_down (workloads at 0 replicas) → stopped (no pod left) → mark_suspended
//! resume:  scale_up (workloads at 1) → mariadb_ready → wordpress_ready
//!          → route (Ingress back to the web tier; store-suspended deleted)
//!          → storefront (the store answers again) → mark_ready
//! ```
//!
//! What suspension keeps: the namespace, PVCs (and so the database and uploads), Secrets,
//! Services, NetworkPolicies, quota — only replicas and the Ingress backend change. A repair
//! of a suspended store renders it suspended (its input is built from the store's status),
//! so a repair or drift sweep never wakes a store up.
//!
//! # Idempotency
//! Each step may run more than once: the writes are server-side applies of the same desired
//! state, the Service deletion treats "already gone" as done, the waits only read, and the
//! status moves are overwrites the state machine allows from the state they lead to.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use urumi_engine::{StepContext, StepError, StepOutcome};

use super::cluster::{self, apply, get_opt};
use super::engines::{AppObject, Workload};
use super::render::{self, SUSPENDED_SERVICE};
use super::status::StoreStatus;
use super::steps::{Ctx, POLL, move_store, put};

/// Refuses to run a step of `what` on an input that desires the other state (a bug in
/// whatever started the run: suspending with a not-suspended input would scale nothing down).
fn expect(c: &Ctx, suspended: bool, what: &str) -> Result<(), StepError> {
    if c.input().suspended == suspended {
        return Ok(());
    }
    Err(StepError::fatal(format!(
        "a {what} run's input must say suspended = {suspended}"
    )))
}

/// The store's workloads, rendered from the run input (replicas 0 when suspended).
fn workloads(c: &Ctx) -> Result<Vec<AppObject>, StepError> {
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    let mut tiers = engine.data_tier(&spec, s).objects;
    tiers.extend(engine.web_tier(&spec, s).objects);
    Ok(tiers
        .into_iter()
        .filter(|o| matches!(o, AppObject::StatefulSet(_) | AppObject::Deployment(_)))
        .collect())
}

/// `route_suspended`: the shared suspended page's alias Service, then the Ingress to it.
/// Without a suspended page ([`render::suspended_service`] is `None`) the Ingress is left as
/// it is: the ingress controller answers 503 for the scaled-down web Service.
pub(super) async fn route_suspended(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    expect(&c, true, "suspend")?;
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    let Some(service) = render::suspended_service(&spec, s) else {
        return StepOutcome::done(json!({ "page": null }));
    };
    apply(&c.api::<Service>()?, &service).await?;
    apply(
        &c.api::<Ingress>()?,
        &render::ingress(&spec, s, engine.web()),
    )
    .await?;
    StepOutcome::done(json!({ "page": s.suspended_host() }))
}

/// `scale_down` and `scale_up`: the workloads applied with the run input's replicas.
pub(super) async fn scale(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let mut applied = Vec::new();
    for obj in workloads(&c)? {
        put(&c, &obj).await?;
        applied.push(obj.id());
    }
    StepOutcome::done(json!({ "replicas": c.spec()?.replicas(), "applied": applied }))
}

/// `stopped`: done when no workload has a pod left (`status.replicas` 0 or absent).
pub(super) async fn stopped(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    expect(&c, true, "suspend")?;
    let engine = c.engine()?;
    let (spec, s) = (c.spec()?, &c.deps.settings);
    for workload in [
        engine.data_tier(&spec, s).ready,
        engine.web_tier(&spec, s).ready,
    ] {
        let (left, title) = match workload {
            Workload::StatefulSet { name, title } => (
                get_opt(&c.api::<StatefulSet>()?, name)
                    .await?
                    .and_then(|o| o.status)
                    .map_or(0, |st| st.replicas),
                title,
            ),
            Workload::Deployment { name, title } => (
                get_opt(&c.api::<Deployment>()?, name)
                    .await?
                    .and_then(|o| o.status)
                    .and_then(|st| st.replicas)
                    .unwrap_or(0),
                title,
            ),
        };
        if left > 0 {
            return Ok(StepOutcome::wait(
                POLL,
                format!("{title} still has {left} pod(s)"),
            ));
        }
    }
    Ok(StepOutcome::done_empty())
}

/// `mark_suspended`: the store's status becomes `suspended`.
pub(super) async fn mark_suspended(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(now) = move_store(&c, StoreStatus::Suspended, None).await? {
        return Err(StepError::fatal(format!(
            "the store is {now}: it is not marked suspended"
        )));
    }
    Ok(StepOutcome::done_empty())
}

/// `route`: the Ingress back to the web tier, then the suspended page's alias deleted.
pub(super) async fn route(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    expect(&c, false, "resume")?;
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    apply(
        &c.api::<Ingress>()?,
        &render::ingress(&spec, s, engine.web()),
    )
    .await?;
    let services = c.api::<Service>()?;
    let existed = get_opt(&services, SUSPENDED_SERVICE).await?.is_some();
    if existed {
        cluster::delete(&services, SUSPENDED_SERVICE).await?;
    }
    StepOutcome::done(json!({ "backend": engine.web().app, "suspended_page_removed": existed }))
}
