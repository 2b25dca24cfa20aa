//! The code of `store.upgrade@1` (declared, with its step order, in
//! `urumi_store::definitions`): a store onto a channel's release, rolled back automatically
//! — every move, the rollback included, is a visible step.
//!
//! ```text
//! backup_target → backup (Job store-backup-<id>-N) → backup_record     pre-upgrade backup
//!   │ (a failure here fails the run: nothing was changed yet)
//!   ▼
//! apply_pins → mariadb_ready → wordpress_ready → update_db (Job store-upgrade-N) → storefront
//!   │ each catches its own terminal failure and returns done {"failed": why};
//!   │ the forward steps after a failed one return {"skipped": …}
//!   ▼
//! rollback_pins → rollback_db → rollback_ready → rollback_storefront    only after a failure:
//!   │ old pins re-applied (web tier at 0 while the database is restored), the pre-upgrade
//!   │ backup restored if update_db ran, the store back and serving; else "skipped: upgrade
//!   │ succeeded"
//!   ▼
//! finish: success → the store records its new channel, release and pins;
//!         rolled back → the run fails (fatally) saying why; the store stays `ready` on the old release
//! ```
//!
//! A rollback step that gives up fails the run at that step; the database trigger
//! `urumi.store_follows_run` then marks the store `failed` (and `ready` again when an operator
//! retries the run).
//!
//! The run input carries the store's current pins (`pins`, rendered by the rollback steps)
//! and the target (`upgrade`, rendered by the forward steps); the pre-upgrade backup is the
//! input's `backup_id`, whose row the request wrote (`urumi_store::upgrades::upgrade_in`).
//!
//! # Giving up
//! A forward step turns a failure into `{"failed": why}` when it is fatal, when a retryable
//! failure happens on its [`ATTEMPTS`]th attempt (no forward step declares fewer: the Job
//! steps declare 4, the others 8, so a forward step gives up before the engine would), or when it
//! has waited [`GIVE_UP_POLLS`] polls (at least 450 s at the 500 ms poll interval; every
//! forward step's declared wait deadline is at least 1800 s, so the engine's deadline — which
//! would fail the run without a rollback — comes first only if a poll takes over 2 s;
//! `update_db`: [`UPDATE_GIVE_UP_POLLS`], at least 20 min, against 7200 s). A failed update
//! Job is a verdict at once: another Job would run the same migration on the same database.
//! Transient errors keep being retried by the engine.
//!
//! # Idempotency
//! The backup and restore are the archive Jobs of `store.backup`/`store.restore` (named by
//! the backup id, adopted when re-run). Update Jobs carry the run's id as a label and are
//! adopted by a re-run step; their numbers continue across a store's upgrades
//! (`store-upgrade-1`, `-2`, …). Applies are server-side applies of a rendered state; `finish`
//! overwrites the store's release with the target's.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplateSpec};

use serde::Deserialize;
use serde_json::{Value, json};
use urumi_engine::{ResultExt, RetryClass, StepContext, StepError, StepOutcome};
use urumi_store::definitions::UpgradeTarget;

use super::backup as backups;
use super::cluster::get_opt;
use super::engines::{AppObject, UPGRADE_CONFIGMAP, UPGRADE_SCRIPT_KEY, Workload};
use super::numbered_jobs::{self, Family, Followed};
use super::steps::{self, Ctx, POLL, put};

/// The forward steps that may record a failure, in order.
pub const FORWARD: [&str; 5] = [
    "apply_pins",
    "mariadb_ready",
    "wordpress_ready",
    "update_db",
    "storefront",
];

/// The attempt on which a forward step's retryable failure becomes its verdict (at most the
/// declared `max_attempts`: 4 for the Job steps, 8 for the others).
const ATTEMPTS: u32 = 4;
/// Polls after which a waiting forward step gives up (see the module docs).
pub const GIVE_UP_POLLS: u32 = 900;
/// [`GIVE_UP_POLLS`] of `update_db`: a large store's database update may take a while
/// (at least 20 min at the poll interval; its declared deadline is 7200 s).
pub const UPDATE_GIVE_UP_POLLS: u32 = 2400;
/// The update Jobs' `app.kubernetes.io/name`, and their names' prefix (`store-upgrade-N`).
pub const UPGRADE_APP: &str = "store-upgrade";
const RUN_LABEL: &str = "urumi.io/run-id";

fn target(c: &Ctx) -> Result<UpgradeTarget, StepError> {
    c.input()
        .upgrade
        .clone()
        .ok_or_else(|| StepError::fatal("an upgrade run's input must name its target (upgrade)"))
}

/// The context rendering the target's pins.
fn upgraded(c: &Ctx) -> Result<Ctx, StepError> {
    Ok(c.clone().with_pins(target(c)?.pins))
}

/// The first forward step that recorded a failure, and why.
#[must_use]
pub fn failure(
    outputs: &std::collections::BTreeMap<String, Value>,
) -> Option<(&'static str, String)> {
    FORWARD.iter().find_map(|step| {
        outputs
            .get(*step)
            .and_then(|o| o.get("failed"))
            .and_then(Value::as_str)
            .map(|why| (*step, why.to_owned()))
    })
}

/// Runs forward step `f` unless an earlier one failed, and turns its terminal failure into
/// `{"failed": why}` (see the module docs).
async fn forward<Fut>(sc: &StepContext, budget: u32, f: Fut) -> Result<StepOutcome, StepError>
where
    Fut: Future<Output = Result<StepOutcome, StepError>>,
{
    if let Some((step, _)) = failure(&sc.outputs) {
        return StepOutcome::done(json!({ "skipped": format!("{step} failed") }));
    }
    match f.await {
        Ok(StepOutcome::Wait { reason, .. }) if sc.polls >= budget => StepOutcome::done(json!({
            "failed": format!("gave up after {} polls: {reason}", sc.polls)
        })),
        Err(e)
            if e.class == RetryClass::Fatal
                || (e.class == RetryClass::Retryable && sc.attempt >= ATTEMPTS) =>
        {
            StepOutcome::done(json!({ "failed": e.message }))
        }
        other => other,
    }
}

/// `apply_pins`: the data and web tiers (and the Ingress) applied with the target's pins.
pub(super) async fn apply_pins(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    forward(&sc, GIVE_UP_POLLS, async {
        let to = target(&c)?;
        let new = upgraded(&c)?;
        let data = steps::data_tier(new.clone(), sc.clone()).await?;
        let web = steps::web_tier(new, sc.clone()).await?;
        let applied = |o: &StepOutcome| match o {
            StepOutcome::Done(v) => v["applied"].clone(),
            StepOutcome::Wait { .. } => Value::Null,
        };
        let changes: Vec<Value> = c
            .spec()?
            .pins
            .changes(&to.pins)
            .into_iter()
            .map(|(what, from, to)| json!({ "pin": what, "from": from, "to": to }))
            .collect();
        StepOutcome::done(json!({
            "to": { "channel": to.channel, "version": to.version },
            "changes": changes,
            "applied": [applied(&data), applied(&web)],
        }))
    })
    .await
}

/// Done when `workload` runs its newest spec: its controller has seen the latest generation,
/// a replica is updated and ready (available). A `ready` count alone would pass on the old
/// pod just after an apply.
async fn rolled_out(c: &Ctx, workload: Workload) -> Result<StepOutcome, StepError> {
    let (generation, observed, updated, name) = match workload {
        Workload::StatefulSet { name, .. } => {
            let o = get_opt(&c.api::<StatefulSet>()?, name).await?;
            let st = o.as_ref().and_then(|o| o.status.as_ref());
            (
                o.as_ref().and_then(|o| o.metadata.generation),
                st.and_then(|s| s.observed_generation),
                st.and_then(|s| s.updated_replicas).unwrap_or(0),
                name,
            )
        }
        Workload::Deployment { name, .. } => {
            let o = get_opt(&c.api::<Deployment>()?, name).await?;
            let st = o.as_ref().and_then(|o| o.status.as_ref());
            (
                o.as_ref().and_then(|o| o.metadata.generation),
                st.and_then(|s| s.observed_generation),
                st.and_then(|s| s.updated_replicas).unwrap_or(0),
                name,
            )
        }
    };
    if observed < generation || updated < 1 {
        return Ok(StepOutcome::wait(
            POLL,
            format!(
                "{name} is rolling out its new spec (generation {generation:?}, observed {observed:?}, updated {updated})"
            ),
        ));
    }
    steps::ready(c, workload).await
}

/// `mariadb_ready` and `wordpress_ready` of an upgrade: the tier rolled out on the new pins.
pub(super) async fn tier_ready(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    forward(&sc, GIVE_UP_POLLS, async {
        let (engine, spec) = (c.engine()?, upgraded(&c)?);
        let s = &c.deps.settings;
        let workload = if sc.step == "mariadb_ready" {
            engine.data_tier(&spec.spec()?, s).ready
        } else {
            engine.web_tier(&spec.spec()?, s).ready
        };
        rolled_out(&c, workload).await
    })
    .await
}

#[derive(Deserialize)]
struct Reached {
    wordpress: String,
    woocommerce: String,
}

/// The update Job `name` for the store of `c` rendered on the new pins.
fn update_job(
    c: &Ctx,
    run_id: uuid::Uuid,
    name: &str,
) -> Result<Option<(ConfigMap, Job)>, StepError> {
    let new = upgraded(c)?;
    Ok(upgrade_job(c.engine()?, &new.spec()?, run_id, name))
}

/// The update script's ConfigMap and Job `name` of run `run_id` for `spec` (rendered with
/// the pins to reach), labelled `urumi.io/job=upgrade` and with the run's id; `None` when
/// the engine has no database update ([`super::engines::StoreEngine::upgrade`]).
#[must_use]
pub fn upgrade_job(
    engine: &dyn super::engines::StoreEngine,
    spec: &super::render::StoreSpec<'_>,
    run_id: uuid::Uuid,
    name: &str,
) -> Option<(ConfigMap, Job)> {
    let (script, pod) = engine.upgrade(spec)?;
    let mut meta = spec.meta(UPGRADE_CONFIGMAP);
    meta.labels
        .get_or_insert_default()
        .insert("app.kubernetes.io/name".into(), UPGRADE_CONFIGMAP.into());
    let scripts = ConfigMap {
        metadata: meta,
        data: Some([(UPGRADE_SCRIPT_KEY.to_owned(), script.to_owned())].into()),
        ..ConfigMap::default()
    };
    let mut meta = spec.app_meta(name, UPGRADE_APP);
    let labels = meta.labels.get_or_insert_default();
    labels.insert("urumi.io/job".into(), "upgrade".into());
    labels.insert(RUN_LABEL.into(), run_id.to_string());
    let mut template = spec.template_meta(UPGRADE_APP);
    template
        .labels
        .get_or_insert_default()
        .insert("urumi.io/job".into(), "upgrade".into());
    let job = Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(template),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    };
    Some((scripts, job))
}

/// What an upgrade of the store of `c` would write first, as JSON objects (a dry run's
/// plan): the update script's ConfigMap and an update Job (named `store-upgrade-1` and
/// labelled with a nil run id; the real one is numbered after the store's earlier ones).
pub(super) fn planned(c: &Ctx) -> Result<Vec<Value>, StepError> {
    Ok(
        update_job(c, uuid::Uuid::nil(), &format!("{UPGRADE_APP}-1"))?
            .map(|(scripts, job)| vec![super::render::value(&scripts), super::render::value(&job)])
            .unwrap_or_default(),
    )
}

/// The context of `c` on its upgrade's target pins (for a dry run's apply of the tiers).
pub(super) fn target_view(c: &Ctx) -> Result<Ctx, StepError> {
    upgraded(c)
}

/// `update_db`: Job `store-upgrade-N` on the new pins (WooCommerce to its pinned version,
/// WordPress's and WooCommerce's database updates); its log's `URUMI-UPGRADE` line must name
/// the target's versions. A failed Job is the step's failure at once (see the module docs).
pub(super) async fn update_db(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    forward(
        &sc,
        UPDATE_GIVE_UP_POLLS,
        Box::pin(async {
            let to = target(&c)?;
            let Some((scripts, template)) = update_job(&c, sc.run_id, UPGRADE_APP)? else {
                return StepOutcome::done(
                    json!({ "skipped": "the store's engine has no database update" }),
                );
            };
            put(&c, &AppObject::ConfigMap(scripts)).await?;
            let family = Family {
                selector: "urumi.io/job=upgrade",
                prefix: &format!("{UPGRADE_APP}-"),
                what: "update",
            };
            // This run's Jobs (labelled with its id), numbered after the store's earlier
            // upgrades' Jobs. Its newest is adopted even when it failed: a failed update Job
            // is the verdict (another would run the same migration on the same database),
            // also for an attempt re-run after a crash.
            let run = sc.run_id.to_string();
            let ours =
                |j: &Job| j.metadata.labels.as_ref().and_then(|l| l.get(RUN_LABEL)) == Some(&run);
            let jobs = c.api::<Job>()?;
            let name =
                match numbered_jobs::follow(&jobs, &family, sc.poll, ours, |_| true, |_| template)
                    .await?
                {
                    Followed::Waiting(outcome) => return Ok(outcome),
                    Followed::Failed(name) => {
                        let log = backups::job_log(&c, &name)
                            .await
                            .unwrap_or_else(|e| e.message);
                        let tail: String = {
                            let chars: Vec<char> = log.trim().chars().collect();
                            chars[chars.len().saturating_sub(1000)..].iter().collect()
                        };
                        return StepOutcome::done(json!({
                            "job": name,
                            "failed": format!("update Job {name} failed: {tail}"),
                        }));
                    }
                    Followed::Succeeded(name) => name,
                };
            let log = backups::job_log(&c, &name).await?;
            let reached: Reached =
                backups::result_line(&log, "URUMI-UPGRADE").ok_or_else(|| {
                    StepError::fatal(format!(
                        "update Job {name} succeeded but printed no URUMI-UPGRADE line; log:\n{log}"
                    ))
                })?;
            if reached.woocommerce != to.pins.woocommerce {
                return Err(StepError::fatal(format!(
                    "update Job {name} left WooCommerce at {} instead of {}",
                    reached.woocommerce, to.pins.woocommerce
                )));
            }
            StepOutcome::done(json!({
                "job": name,
                "wordpress": reached.wordpress,
                "woocommerce": reached.woocommerce,
            }))
        }),
    )
    .await
}

/// `storefront` of an upgrade: the storefront check on the upgraded store.
pub(super) async fn storefront(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    forward(&sc, GIVE_UP_POLLS, steps::storefront(c, sc.clone())).await
}

/// The rollback steps' guard: `Some(skip output)` when there is nothing to roll back.
fn nothing_to_roll_back(sc: &StepContext) -> Option<Value> {
    failure(&sc.outputs)
        .is_none()
        .then(|| json!({ "skipped": "upgrade succeeded" }))
}

/// Whether the database was (maybe) migrated: `update_db` ran, whatever its verdict.
fn migrated(sc: &StepContext) -> bool {
    sc.outputs
        .get("update_db")
        .is_some_and(|o| o.get("skipped").is_none())
}

/// `rollback_pins`: the data and web tiers back on the store's own (old) pins; the web tier
/// at zero replicas when the database is to be restored (no request writes to it meanwhile;
/// `rollback_ready` brings it back).
pub(super) async fn rollback_pins(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(skip) = nothing_to_roll_back(&sc) {
        return StepOutcome::done(skip);
    }
    let (engine, s) = (c.engine()?, &c.deps.settings);
    let mut applied: Vec<String> = Vec::new();
    for obj in engine.data_tier(&c.spec()?, s).objects {
        put(&c, &obj).await?;
        applied.push(obj.id());
    }
    let mut web = c.clone();
    let restore = migrated(&sc);
    if restore {
        web = web.suspended_view();
    }
    for obj in engine.web_tier(&web.spec()?, s).objects {
        put(&c, &obj).await?;
        applied.push(obj.id());
    }
    StepOutcome::done(json!({
        "pins": c.spec()?.pins,
        "applied": applied,
        "web_stopped_for_restore": restore,
    }))
}

/// `rollback_db`: when `update_db` ran, the pre-upgrade backup restored with the restore Job
/// (once the web tier has no pod left); else skipped.
pub(super) async fn rollback_db(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(skip) = nothing_to_roll_back(&sc) {
        return StepOutcome::done(skip);
    }
    if !migrated(&sc) {
        return StepOutcome::done(json!({
            "skipped": "the database was not migrated (update_db did not run)"
        }));
    }
    match backups::web_stopped(c.clone(), sc.clone()).await? {
        StepOutcome::Done(_) => {}
        wait @ StepOutcome::Wait { .. } => return Ok(wait),
    }
    backups::import(c, sc).await
}

/// `rollback_ready`: the web tier back at its replicas on the old pins, and both tiers
/// rolled out and ready.
pub(super) async fn rollback_ready(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(skip) = nothing_to_roll_back(&sc) {
        return StepOutcome::done(skip);
    }
    let (engine, s) = (c.engine()?, &c.deps.settings);
    let spec = c.spec()?;
    for obj in engine.web_tier(&spec, s).objects {
        if matches!(obj, AppObject::Deployment(_)) {
            put(&c, &obj).await?;
        }
    }
    let data = rolled_out(&c, engine.data_tier(&spec, s).ready).await?;
    if let StepOutcome::Wait { .. } = data {
        return Ok(data);
    }
    let web = rolled_out(&c, engine.web_tier(&spec, s).ready).await?;
    if let StepOutcome::Wait { .. } = web {
        return Ok(web);
    }
    StepOutcome::done(json!({ "pins": spec.pins, "ready": true }))
}

/// `rollback_storefront`: the storefront check on the rolled-back store.
pub(super) async fn rollback_storefront(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    if let Some(skip) = nothing_to_roll_back(&sc) {
        return StepOutcome::done(skip);
    }
    steps::storefront(c, sc).await
}

/// `finish`: after success, the store records its new channel, release and pins (what a
/// repair renders from now on); after a rollback, the run fails, fatally, saying why — the
/// store keeps its old release and stays `ready`.
pub(super) async fn finish(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let to = target(&c)?;
    if let Some((step, why)) = failure(&sc.outputs) {
        return Err(StepError::fatal(format!(
            "upgrade to {} {} rolled back: {step}: {why}",
            to.channel, to.version
        )));
    }
    urumi_store::db::set_release(
        &c.deps.pool,
        c.input().store_id,
        &to.channel,
        &to.version,
        &to.pins,
    )
    .await
    .retryable()?;
    StepOutcome::done(json!({
        "channel": to.channel,
        "version": to.version,
        "pins": to.pins,
    }))
}
