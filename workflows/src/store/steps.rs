//! The code of the store workflows' steps: `store.provision@1`, `store.delete@1`,
//! `store.repair@1`, `store.preview@1` (the last two through [`super::preview`]),
//! `store.suspend@1` and `store.resume@1` ([`super::lifecycle`]), `store.resize@1`,
//! `store.domains@1` ([`super::domains`]),
//! `store.usage@1` ([`super::usage`]) and `store.sweep@1` ([`super::sweep`]). Their names,
//! versions, steps in order and options are declared in
//! `urumi_store::definitions` (see the diagram there); [`definitions_for`] gives each
//! declared step its code here.
//!
//! The steps are the generic core; what a store runs comes from its engine (the run input's
//! `engine`, looked up in [`Engines`]): `mariadb`/`mariadb_ready` apply and wait on the
//! engine's data tier, `wordpress`/`wordpress_ready` its web tier (plus the Ingress),
//! `setup` runs its setup pod, `storefront` asks its storefront over HTTP.
//!
//! # Idempotency
//! Every step may run more than once. Objects are server-side applied with one field
//! manager (re-applying the same desired state changes nothing); the credentials Secret is
//! created only if absent and never overwritten; the setup Job is named per attempt and the
//! script it runs is itself re-runnable; status updates are plain overwrites.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota, Secret};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;
use urumi_engine::{Definition, ResultExt, StepContext, StepError, StepOutcome};
use urumi_store::preview::{Change, MAX_PREVIEWED, PlannedAction, PreviewInput, PreviewOutput};
use uuid::Uuid;

use super::backup as backups;
use super::cluster::{self, apply, create_if_absent, get_opt};
use super::engines::{AppObject, Engines, StoreEngine, Verdict, Workload};
use super::lifecycle;
use super::names::{Slug, slugify};
use super::numbered_jobs::{self, Family, Followed};
use super::proxy::{self, Answer};
use super::render::{self, SETUP_APP, StoreSpec};
use super::settings::StoreSettings;
use super::status::StoreStatus;
use super::upgrade as upgrades;

pub use urumi_store::definitions::{DELETE, PROVISION, REPAIR, StoreInput};

/// What the store steps need. `client` is `None` in processes that only start runs (the
/// API): their steps never execute there.
#[derive(Clone)]
pub struct StoreDeps {
    pub settings: StoreSettings,
    pub pool: PgPool,
    pub client: Option<Client>,
}

impl std::fmt::Debug for StoreDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreDeps")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a step of one store works with: its run input, validated, and the worker's deps.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) deps: Arc<StoreDeps>,
    engines: Engines,
    input: StoreInput,
    slug: Slug,
    id: String,
    /// The store's pins: the input's, or `[stores.images]` for a store without recorded ones.
    pins: urumi_store::settings::Pins,
}

impl Ctx {
    fn new(deps: Arc<StoreDeps>, engines: Engines, ctx: &StepContext) -> Result<Self, StepError> {
        Self::from_input(deps, engines, ctx.input_as()?)
    }
    pub(super) fn from_input(
        deps: Arc<StoreDeps>,
        engines: Engines,
        input: StoreInput,
    ) -> Result<Self, StepError> {
        let slug = slugify(&input.slug, &deps.settings.platform_namespace).fatal()?;
        if slug.as_str() != input.slug {
            return Err(StepError::fatal(format!(
                "stored slug {:?} is not a valid slug",
                input.slug
            )));
        }
        let id = input.store_id.to_string();
        let pins = input
            .pins
            .clone()
            .unwrap_or_else(|| deps.settings.image_pins());
        Ok(Self {
            deps,
            engines,
            input,
            slug,
            id,
            pins,
        })
    }
    /// The store's engine. Looked up when a step needs it, so that deletion, which needs
    /// none, works for any store.
    pub(super) fn engine(&self) -> Result<&'static dyn StoreEngine, StepError> {
        self.engines.get(&self.input.engine).ok_or_else(|| {
            StepError::fatal(format!(
                "unknown engine {:?}; this worker serves: {}",
                self.input.engine,
                self.engines.names().join(", ")
            ))
        })
    }
    /// The run input.
    pub(super) fn input(&self) -> &StoreInput {
        &self.input
    }
    pub(super) fn client(&self) -> Result<&Client, StepError> {
        self.deps
            .client
            .as_ref()
            .ok_or_else(|| StepError::fatal("this process has no cluster configured"))
    }
    /// This context rendering `pins` instead of the store's own (an upgrade's new release).
    pub(super) fn with_pins(mut self, pins: urumi_store::settings::Pins) -> Self {
        self.pins = pins;
        self
    }
    /// This context rendering the suspended state (workloads at zero replicas).
    pub(super) fn suspended_view(mut self) -> Self {
        self.input.suspended = true;
        self
    }
    pub(super) fn spec(&self) -> Result<StoreSpec<'_>, StepError> {
        let plan = self
            .deps
            .settings
            .plan(Some(&self.input.plan))
            .map_err(StepError::fatal)?;
        Ok(StoreSpec {
            id: &self.id,
            name: &self.input.name,
            slug: &self.slug,
            plan,
            suspended: self.input.suspended,
            domains: &self.input.domains,
            pins: &self.pins,
        })
    }
    pub(super) fn ns(&self) -> String {
        self.slug.namespace()
    }
    /// Proves that the namespace this step writes into is this store's: it exists, its labels
    /// name this store, and its UID is the one recorded when a run of this store created it.
    /// A namespace of the same name made since (a reused slug, a re-creation) is refused.
    pub(super) async fn own_namespace(&self) -> Result<(), StepError> {
        let store = super::db::get(&self.deps.pool, self.input.store_id)
            .await
            .retryable()?
            .ok_or_else(|| StepError::fatal(format!("store {} does not exist", self.id)))?;
        let api: Api<Namespace> = Api::all(self.client()?.clone());
        let ns = get_opt(&api, &self.ns()).await?.ok_or_else(|| {
            StepError::fatal(format!(
                "namespace {} does not exist: it was deleted after this store's namespace step",
                self.ns()
            ))
        })?;
        ensure_ours(&ns, &self.input.store_id, store.namespace_uid.as_deref())
    }

    pub(super) fn api<K>(&self) -> Result<Api<K>, StepError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + kube::Resource<DynamicType = ()>,
    {
        Ok(cluster::api(self.client()?, Some(&self.ns())))
    }
}

/// Wraps a step function taking the store context.
fn step<F, Fut>(deps: &Arc<StoreDeps>, engines: Engines, f: F) -> impl urumi_engine::Step
where
    F: Fn(Ctx, StepContext) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<StepOutcome, StepError>> + Send + 'static,
{
    let deps = deps.clone();
    move |sc: StepContext| {
        let ctx = Ctx::new(deps.clone(), engines, &sc);
        async move { f(ctx?, sc).await }
    }
}

/// [`step`] for a step that writes into the store's namespace: it first proves the namespace
/// is this store's ([`Ctx::own_namespace`]).
fn guarded<F, Fut>(deps: &Arc<StoreDeps>, engines: Engines, f: F) -> impl urumi_engine::Step
where
    F: Fn(Ctx, StepContext) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<StepOutcome, StepError>> + Send + 'static,
{
    step(deps, engines, move |c: Ctx, sc: StepContext| async move {
        c.own_namespace().await?;
        f(c, sc).await
    })
}

pub(super) const POLL: Duration = Duration::from_millis(500);

/// The three store workflows ([`urumi_store::definitions::declared`]) with the code of
/// every step, serving `engines` ([`super::engines::BUILT_IN`] in the binaries; tests add engines of
/// their own).
///
/// # Errors
/// Never in practice: [`urumi_engine::Error::InvalidDefinition`] if a step named here is not
/// declared, or declared twice.
pub fn definitions_for(
    deps: &Arc<StoreDeps>,
    engines: Engines,
) -> urumi_engine::Result<Vec<Definition>> {
    let [
        provision,
        delete,
        repair,
        suspend,
        resume,
        resize,
        domains,
        preview,
        usage,
        sweep,
        backup,
        restore,
        scheduled_backups,
        upgrade,
    ] = urumi_store::definitions::declared()?;
    let provision = provision
        .implement("namespace", step(deps, engines, namespace))?
        .implement("quota", guarded(deps, engines, quota))?
        .implement("network_policies", guarded(deps, engines, network_policies))?
        .implement("credentials", guarded(deps, engines, credentials))?
        .implement("mariadb", guarded(deps, engines, data_tier))?
        .implement("mariadb_ready", guarded(deps, engines, data_tier_ready))?
        .implement("wordpress", guarded(deps, engines, web_tier))?
        .implement("wordpress_ready", guarded(deps, engines, web_tier_ready))?
        .implement("setup", guarded(deps, engines, setup))?
        .implement("storefront", guarded(deps, engines, storefront))?
        .implement("mark_ready", guarded(deps, engines, mark_ready))?;
    let delete = delete
        .implement("mark_deleting", step(deps, engines, mark_deleting))?
        .implement("delete_namespace", step(deps, engines, delete_namespace))?
        .implement("namespace_gone", step(deps, engines, namespace_gone))?
        .implement("mark_deleted", step(deps, engines, mark_deleted))?;
    let repair = repair.implement("reapply", guarded(deps, engines, reapply))?;
    let suspend = suspend
        .implement(
            "route_suspended",
            guarded(deps, engines, lifecycle::route_suspended),
        )?
        .implement("scale_down", guarded(deps, engines, lifecycle::scale))?
        .implement("stopped", guarded(deps, engines, lifecycle::stopped))?
        .implement(
            "mark_suspended",
            guarded(deps, engines, lifecycle::mark_suspended),
        )?;
    let resume = resume
        .implement("scale_up", guarded(deps, engines, lifecycle::scale))?
        .implement("mariadb_ready", guarded(deps, engines, data_tier_ready))?
        .implement("wordpress_ready", guarded(deps, engines, web_tier_ready))?
        .implement("route", guarded(deps, engines, lifecycle::route))?
        .implement("storefront", guarded(deps, engines, storefront))?
        .implement("mark_ready", guarded(deps, engines, mark_ready))?;
    let resize = resize
        .implement("reapply", guarded(deps, engines, reapply))?
        .implement("mariadb_ready", guarded(deps, engines, data_tier_ready))?
        .implement("wordpress_ready", guarded(deps, engines, web_tier_ready))?;
    let domains = domains
        .implement("route", guarded(deps, engines, super::domains::route))?
        .implement("site_url", guarded(deps, engines, super::domains::site_url))?
        .implement("storefront", guarded(deps, engines, storefront))?;
    let preview = preview.implement("preview", {
        let deps = deps.clone();
        move |sc: StepContext| previews(deps.clone(), engines, sc)
    })?;
    let usage = usage.implement("observe", {
        let deps = deps.clone();
        move |sc: StepContext| super::usage::observe(deps.clone(), sc)
    })?;
    // The sweep starts repair runs: an engine over the declarations is all that needs.
    let starter = urumi_engine::Engine::new(deps.pool.clone(), urumi_store::registry()?);
    let sweep = sweep.implement("sweep", {
        let deps = deps.clone();
        move |sc: StepContext| super::sweep::sweep(deps.clone(), engines, starter.clone(), sc)
    })?;
    let backup = backup
        .implement("target", guarded(deps, engines, backups::backup_target))?
        .implement("dump", guarded(deps, engines, backups::dump))?
        .implement("record", guarded(deps, engines, backups::record))?;
    let restore = restore
        .implement("target", guarded(deps, engines, backups::restore_target))?
        .implement("web_down", guarded(deps, engines, backups::web))?
        .implement("web_stopped", guarded(deps, engines, backups::web_stopped))?
        .implement("import", guarded(deps, engines, backups::import))?
        .implement("web_up", guarded(deps, engines, backups::web))?
        .implement("wordpress_ready", guarded(deps, engines, web_tier_ready))?
        .implement("storefront", guarded(deps, engines, storefront))?
        .implement(
            "mark_restored",
            guarded(deps, engines, backups::mark_restored),
        )?;
    let scheduled_backups = scheduled_backups.implement("start", {
        let deps = deps.clone();
        let starter = urumi_engine::Engine::new(deps.pool.clone(), urumi_store::registry()?);
        move |sc: StepContext| super::scheduled_backups::start(deps.clone(), starter.clone(), sc)
    })?;
    let upgrade = upgrade
        .implement(
            "backup_target",
            guarded(deps, engines, backups::backup_target),
        )?
        .implement("backup", guarded(deps, engines, backups::dump))?
        .implement(
            "backup_record",
            guarded(deps, engines, |c, sc| backups::record_of(c, sc, "backup")),
        )?
        .implement("apply_pins", guarded(deps, engines, upgrades::apply_pins))?
        .implement(
            "mariadb_ready",
            guarded(deps, engines, upgrades::tier_ready),
        )?
        .implement(
            "wordpress_ready",
            guarded(deps, engines, upgrades::tier_ready),
        )?
        .implement("update_db", guarded(deps, engines, upgrades::update_db))?
        .implement("storefront", guarded(deps, engines, upgrades::storefront))?
        .implement(
            "rollback_pins",
            guarded(deps, engines, upgrades::rollback_pins),
        )?
        .implement("rollback_db", guarded(deps, engines, upgrades::rollback_db))?
        .implement(
            "rollback_ready",
            guarded(deps, engines, upgrades::rollback_ready),
        )?
        .implement(
            "rollback_storefront",
            guarded(deps, engines, upgrades::rollback_storefront),
        )?
        .implement("finish", guarded(deps, engines, upgrades::finish))?;
    Ok(vec![
        provision,
        delete,
        repair,
        suspend,
        resume,
        resize,
        domains,
        preview,
        usage,
        sweep,
        backup,
        restore,
        scheduled_backups,
        upgrade,
    ])
}

fn owned_by(ns: &Namespace, store_id: &Uuid) -> bool {
    let labels = ns.metadata.labels.clone().unwrap_or_default();
    labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("urumi")
        && labels.get("urumi.io/store-id").map(String::as_str) == Some(&store_id.to_string())
}

/// Refuses to delete a namespace whose labels do not prove the store of `c` owns it.
pub(super) fn ensure_owned(ns: &Namespace, c: &Ctx) -> Result<(), StepError> {
    if owned_by(ns, &c.input.store_id) {
        return Ok(());
    }
    Err(StepError::fatal(format!(
        "refusing to delete namespace {}: its labels do not prove this store owns it",
        c.ns()
    )))
}

/// Refuses a namespace whose labels do not name this store, or whose UID is not the one
/// recorded for it (when one is).
fn ensure_ours(
    ns: &Namespace,
    store_id: &Uuid,
    recorded_uid: Option<&str>,
) -> Result<(), StepError> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    if !owned_by(ns, store_id) {
        let owner = ns
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("urumi.io/store-id"))
            .map_or("nobody".to_owned(), |o| format!("store {o}"));
        return Err(StepError::fatal(format!(
            "namespace {name} is not this store's (its labels name {owner}); refusing to write into it"
        )));
    }
    let uid = ns.metadata.uid.as_deref();
    if let Some(recorded) = recorded_uid
        && uid != Some(recorded)
    {
        return Err(StepError::fatal(format!(
            "namespace {name} was re-created since this store made it (uid {}, this store's is {recorded}); refusing to write into it",
            uid.unwrap_or("none")
        )));
    }
    Ok(())
}

async fn namespace(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let api: Api<Namespace> = Api::all(c.client()?.clone());
    let store = super::db::get(&c.deps.pool, c.input.store_id)
        .await
        .retryable()?
        .ok_or_else(|| StepError::fatal(format!("store {} does not exist", c.id)))?;
    let existing = get_opt(&api, &c.ns()).await?;
    if let Some(existing) = &existing {
        ensure_ours(existing, &c.input.store_id, store.namespace_uid.as_deref())?;
    }
    let ns = apply(&api, &render::namespace(&c.spec()?)).await?;
    // Made by this run (or by a run of this store before UIDs were recorded): this store's.
    if (existing.is_none() || store.namespace_uid.is_none())
        && let Some(uid) = ns.metadata.uid.as_deref()
    {
        super::db::record_namespace_uid(&c.deps.pool, c.input.store_id, uid)
            .await
            .retryable()?;
    }
    StepOutcome::done(
        json!({ "namespace": c.ns(), "pod_security": render::PSA_LEVEL, "uid": ns.metadata.uid }),
    )
}

async fn quota(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let spec = c.spec()?;
    apply(&c.api::<ResourceQuota>()?, &render::resource_quota(&spec)).await?;
    apply(&c.api::<LimitRange>()?, &render::limit_range(&spec)).await?;
    StepOutcome::done(json!({ "plan": c.input.plan }))
}

async fn network_policies(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let api = c.api::<NetworkPolicy>()?;
    let mut names = Vec::new();
    for np in render::network_policies(&c.spec()?, &c.deps.settings, c.engine()?.web()) {
        names.push(np.metadata.name.clone());
        apply(&api, &np).await?;
    }
    StepOutcome::done(json!({ "policies": names }))
}

fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn credentials(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let values: BTreeMap<String, String> = c
        .engine()?
        .credential_keys()
        .iter()
        .map(|k| ((*k).to_owned(), random_secret()))
        .collect();
    let created = create_if_absent(
        &c.api::<Secret>()?,
        &render::credentials(&c.spec()?, &values),
    )
    .await?;
    // Never the values themselves: only whether they were made now.
    StepOutcome::done(json!({ "secret": render::CREDENTIALS, "created": created }))
}

/// Server-side applies one of the engine's objects.
pub(super) async fn put(c: &Ctx, obj: &AppObject) -> Result<(), StepError> {
    match obj {
        AppObject::Service(o) => apply(&c.api()?, o).await.map(drop),
        AppObject::StatefulSet(o) => apply(&c.api()?, o).await.map(drop),
        AppObject::Deployment(o) => apply(&c.api()?, o).await.map(drop),
        AppObject::PersistentVolumeClaim(o) => apply(&c.api()?, o).await.map(drop),
        AppObject::ConfigMap(o) => apply(&c.api()?, o).await.map(drop),
    }
}

/// The `mariadb` step: the engine's data tier.
pub(super) async fn data_tier(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let tier = c.engine()?.data_tier(&c.spec()?, &c.deps.settings);
    for obj in &tier.objects {
        put(&c, obj).await?;
    }
    let applied: Vec<String> = tier.objects.iter().map(AppObject::id).collect();
    StepOutcome::done(json!({ "applied": applied }))
}

/// Done when `workload` has a ready (StatefulSet) or available (Deployment) replica — at
/// once for a suspended store (its workloads have none, as they should: a resize of a
/// suspended store waits for nothing).
pub(super) async fn ready(c: &Ctx, workload: Workload) -> Result<StepOutcome, StepError> {
    if c.input.suspended {
        return StepOutcome::done(json!({ "skipped": "the store is suspended" }));
    }
    let (count, key, title, state) = match workload {
        Workload::StatefulSet { name, title } => {
            let sts = get_opt(&c.api::<StatefulSet>()?, name)
                .await?
                .ok_or_else(|| StepError::retryable(format!("StatefulSet {name} is missing")))?;
            let n = sts.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            (n, "ready_replicas", title, "ready")
        }
        Workload::Deployment { name, title } => {
            let dep = get_opt(&c.api::<Deployment>()?, name)
                .await?
                .ok_or_else(|| StepError::retryable(format!("Deployment {name} is missing")))?;
            let n = dep.status.and_then(|s| s.available_replicas).unwrap_or(0);
            (n, "available_replicas", title, "available")
        }
    };
    if count >= 1 {
        StepOutcome::done(json!({ key: count }))
    } else {
        Ok(StepOutcome::wait(
            POLL,
            format!("{title} is not {state} yet (0/1)"),
        ))
    }
}

/// The `mariadb_ready` step: the data tier's workload is ready.
pub(super) async fn data_tier_ready(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let workload = c.engine()?.data_tier(&c.spec()?, &c.deps.settings).ready;
    ready(&c, workload).await
}

/// The `wordpress` step: the engine's web tier and the Ingress to it.
pub(super) async fn web_tier(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    let tier = engine.web_tier(&spec, s);
    for obj in &tier.objects {
        put(&c, obj).await?;
    }
    apply(
        &c.api::<Ingress>()?,
        &render::ingress(&spec, s, engine.web()),
    )
    .await?;
    let mut applied: Vec<String> = tier.objects.iter().map(AppObject::id).collect();
    applied.push(format!("Ingress/{}", engine.web().app));
    StepOutcome::done(json!({ "applied": applied, "host": spec.host(s) }))
}

/// The `wordpress_ready` step: the web tier's workload is available.
pub(super) async fn web_tier_ready(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let workload = c.engine()?.web_tier(&c.spec()?, &c.deps.settings).ready;
    ready(&c, workload).await
}

/// The last lines of the logs of `job`'s pods (labelled `app.kubernetes.io/name: <app>`).
pub(super) async fn log_tail(c: &Ctx, app: &str, job: &str) -> String {
    let Ok(pods) = c.api::<Pod>() else {
        return String::new();
    };
    let list = match pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={app}")))
        .await
    {
        Ok(l) => l,
        Err(e) => return format!("(pod list unavailable: {e})"),
    };
    let mut tail = String::new();
    for pod in list.items.iter().filter(|p| {
        p.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|r| r.name == job))
    }) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let params = LogParams {
            tail_lines: Some(20),
            limit_bytes: Some(16 * 1024),
            ..LogParams::default()
        };
        match pods.logs(&name, &params).await {
            Ok(log) => tail.push_str(&log),
            Err(e) => tail.push_str(&format!("(logs of {name} unavailable: {e})")),
        }
    }
    tail.chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

async fn setup(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let (engine, spec) = (c.engine()?, c.spec()?);
    apply(&c.api::<ConfigMap>()?, &render::setup_script(engine, &spec)).await?;
    // Jobs are numbered store-setup-1, -2, …: a failed Job stays (with its log) for
    // inspection, and each new attempt — also after an operator retry — gets a fresh one.
    let family = Family {
        selector: &format!("app.kubernetes.io/name={SETUP_APP}"),
        prefix: &format!("{SETUP_APP}-"),
        what: "setup",
    };
    let make = |_: &str| render::setup_job(engine, &spec, &c.deps.settings);
    match numbered_jobs::follow(
        &c.api::<Job>()?,
        &family,
        sc.poll,
        |_| true,
        numbered_jobs::not_failed,
        make,
    )
    .await?
    {
        Followed::Waiting(outcome) => Ok(outcome),
        Followed::Succeeded(name) => StepOutcome::done(json!({ "job": name })),
        Followed::Failed(name) => {
            let tail = log_tail(&c, SETUP_APP, &name).await;
            Err(StepError::retryable(format!(
                "setup Job {name} failed; log tail:\n{tail}"
            )))
        }
    }
}

/// The store answers HTTP: its Ingress has an address from the ingress controller, and a
/// request to its web Service, through the API server's Service proxy ([`proxy`]), gets an
/// answer the engine judges ready. Until then the step polls (up to its wait deadline).
///
/// # Guarantees
/// Read-only: it changes nothing in the cluster.
pub(super) async fn storefront(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let (engine, web) = (c.engine()?, c.engine()?.web());
    let ing = get_opt(&c.api::<Ingress>()?, web.app)
        .await?
        .ok_or_else(|| StepError::retryable(format!("Ingress {} is missing", web.app)))?;
    let Some(address) = ing
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .and_then(|i| i.into_iter().next())
        .and_then(|i| i.ip.or(i.hostname))
    else {
        return Ok(StepOutcome::wait(POLL, "the Ingress has no address yet"));
    };
    let path = engine.storefront_path();
    let request = format!("GET {}:{}{path}", web.app, web.port);
    match proxy::get(c.client()?, &c.ns(), web.app, web.port, path).await? {
        Answer::Unavailable(why) => Ok(StepOutcome::wait(
            POLL,
            format!("the storefront does not answer yet ({request}): {why}"),
        )),
        Answer::App { status, body } => match engine.judge_storefront(status, &body) {
            Verdict::NotYet(why) => Ok(StepOutcome::wait(
                POLL,
                format!("the storefront is not ready yet ({request}): {why}"),
            )),
            Verdict::Ready(judged) => StepOutcome::done(json!({
                "ingress_address": address,
                "storefront": { "request": request, "status": status, "judged": judged },
            })),
        },
    }
}

/// Moves the store to `to`; `Some(status)` when the state machine refused (the store was
/// already past it).
pub(super) async fn move_store(
    c: &Ctx,
    to: StoreStatus,
    url: Option<&str>,
) -> Result<Option<StoreStatus>, StepError> {
    let mut conn = c.deps.pool.acquire().await.transient()?;
    super::db::set_status(&mut conn, c.input.store_id, to, url)
        .await
        .transient()
}

async fn mark_ready(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let url = c.spec()?.url(&c.deps.settings);
    if let Some(now) = move_store(&c, StoreStatus::Ready, Some(&url)).await? {
        return Err(StepError::fatal(format!(
            "the store is {now}: this run does not mark it ready"
        )));
    }
    StepOutcome::done(json!({ "url": url }))
}

async fn mark_deleting(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    // Already deleted: this deletion has nothing left to do but its idempotent steps.
    let refused = move_store(&c, StoreStatus::Deleting, None).await?;
    StepOutcome::done(json!({ "was": refused }))
}

async fn delete_namespace(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let api: Api<Namespace> = Api::all(c.client()?.clone());
    let Some(ns) = get_opt(&api, &c.ns()).await? else {
        return StepOutcome::done(json!({ "existed": false }));
    };
    ensure_owned(&ns, &c)?;
    cluster::delete(&api, &c.ns()).await?;
    StepOutcome::done(json!({ "existed": true }))
}

async fn namespace_gone(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let api: Api<Namespace> = Api::all(c.client()?.clone());
    match get_opt(&api, &c.ns()).await? {
        None => Ok(StepOutcome::done_empty()),
        Some(_) => Ok(StepOutcome::wait(
            POLL,
            format!("namespace {} is terminating", c.ns()),
        )),
    }
}

async fn mark_deleted(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(now) = move_store(&c, StoreStatus::Deleted, None).await? {
        return Err(StepError::fatal(format!(
            "the store is {now}, not deleting: it is not marked deleted"
        )));
    }
    Ok(StepOutcome::done_empty())
}

/// What `reapply` reports: the objects it re-created and those whose fields it changed.
#[derive(Debug, Default, Serialize)]
struct Report {
    missing: Vec<String>,
    drifted: Vec<String>,
}

async fn reapply(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let mut r = Report::default();
    for o in super::preview::repair(&c, false).await? {
        let id = format!("{}/{}", o.kind, o.name);
        match o.change {
            Change::Create => r.missing.push(id),
            Change::Update => r.drifted.push(id),
            Change::Unchanged | Change::Delete => {}
        }
    }
    StepOutcome::done(serde_json::to_value(&r).fatal()?)
}

/// The `preview` step of `store.preview@1`: each store's plan for the input's action
/// ([`super::preview::plan`]), nothing written.
async fn previews(
    deps: Arc<StoreDeps>,
    engines: Engines,
    sc: StepContext,
) -> Result<StepOutcome, StepError> {
    let input: PreviewInput = sc.input_as()?;
    let input_action = input.action;
    let plan = input.plan.clone();
    let backup_id = input.backup_id;
    let wanted_domains = input.domains.clone();
    let channel = input.channel.clone();
    let mut out = PreviewOutput::default();
    for &id in input.store_ids.iter().take(MAX_PREVIEWED) {
        let store = super::db::get(&deps.pool, id).await.retryable()?;
        let domains = super::db::domains(&deps.pool, id).await.retryable()?;
        let make = || {
            let store =
                store.ok_or_else(|| StepError::fatal(format!("store {id} does not exist")))?;
            if store.status == StoreStatus::Deleted {
                return Err(StepError::fatal(format!("store {id} is deleted")));
            }
            let mut input = StoreInput::of(&store, domains);
            if let Some(plan) = &plan {
                input.plan.clone_from(plan);
            }
            if let Some(domains) = &wanted_domains {
                input.domains.clone_from(domains);
            }
            // A suspend is previewed as the suspended state, a resume as the running one.
            match input_action {
                PlannedAction::Suspend => input.suspended = true,
                PlannedAction::Resume => input.suspended = false,
                PlannedAction::Backup | PlannedAction::Restore => {
                    input.backup_id = Some(backup_id.unwrap_or_else(Uuid::nil));
                }
                PlannedAction::Upgrade => {
                    let target = urumi_store::upgrades::target_of(
                        &deps.settings,
                        &store,
                        channel.as_deref(),
                    )
                    .map_err(|e| StepError::fatal(e.to_string()))?;
                    input.upgrade = Some(target);
                    input.backup_id = Some(backup_id.unwrap_or_else(Uuid::nil));
                }
                PlannedAction::Repair
                | PlannedAction::Delete
                | PlannedAction::Resize
                | PlannedAction::Domains => {}
            }
            Ctx::from_input(deps.clone(), engines, input)
        };
        out.stores
            .push(super::preview::plan(make, id, input.action).await?);
    }
    StepOutcome::done(out)
}
