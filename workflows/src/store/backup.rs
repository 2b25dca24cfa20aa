//! The code of `store.backup@1` and `store.restore@1` (declared in
//! `urumi_store::definitions`). Both name their backup in the run input (`backup_id`),
//! whose row the API wrote with the run (`urumi_store::service::backup_in` / `restore_in`).
//!
//! ```text
//! backup:  target (ConfigMap store-archive; PVC store-backups, or Secret backup-s3)
//!          → dump (Job store-backup-<id>-N: dump, archive, checksum, prune; its log's
//!            URUMI-BACKUP line gives size and sha256) → record (row complete, pruned rows)
//! restore: target → web_down (web tier at 0 replicas) → web_stopped
//!          → import (Job store-restore-<id>-N: checksum verified, database and uploads
//!            replaced) → web_up → wordpress_ready → storefront → mark_restored (event)
//! ```
//!
//! # Idempotency
//! A Job is named by its backup and numbered per attempt (`-1`, `-2`, …): a re-run step
//! adopts the newest Job rather than starting another, so a crash between creating a Job and
//! checkpointing never makes a second archive or a second import; a failed Job stays for
//! inspection and the next attempt gets a fresh number. The scripts themselves are
//! idempotent (an existing archive with its checksum is not dumped again; an import replaces
//! the database and uploads wholesale). `record` marks a pending backup complete once and
//! prunes only complete rows.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, PodTemplateSpec, Secret};
use kube::api::{ListParams, LogParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use urumi_engine::{ResultExt, StepContext, StepError, StepOutcome};
use urumi_store::backups::{self, BackupStatus};
use urumi_store::settings::BackupStorage;
use uuid::Uuid;

use super::cluster::{self, apply};
use super::engines::{
    ARCHIVE_CONFIGMAP, AppObject, ArchiveJob, ArchiveKind, BACKUP_PVC, BACKUP_S3_SECRET,
    BACKUP_SCRIPT, BACKUP_SCRIPT_KEY, RESTORE_SCRIPT, RESTORE_SCRIPT_KEY,
};
use super::numbered_jobs::{self, Family, Followed};
use super::render::{self, StoreSpec};
use super::steps::{Ctx, POLL, put};

/// What a backup Job's main container prints last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Archived {
    pub id: Uuid,
    pub size: i64,
    pub sha256: String,
}

/// What a restore Job's main container prints last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub id: Uuid,
    pub sha256: String,
}

/// The JSON after `marker` on the last line of `log` that has it.
pub(super) fn result_line<T: for<'de> Deserialize<'de>>(log: &str, marker: &str) -> Option<T> {
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(marker))
        .and_then(|rest| serde_json::from_str(rest.trim()).ok())
}

fn backup_id(c: &Ctx) -> Result<Uuid, StepError> {
    c.input()
        .backup_id
        .ok_or_else(|| StepError::fatal("a backup or restore run's input must name backup_id"))
}

/// `target` of `store.backup`: where the archive goes recorded on the backup's row, then
/// [`restore_target`].
pub(super) async fn backup_target(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    backups::set_storage(
        &c.deps.pool,
        backup_id(&c)?,
        c.deps.settings.backups.storage,
    )
    .await
    .retryable()?;
    restore_target(c, sc).await
}

/// Where a store's archives are kept: its backup PVC, or the bucket (whose credentials the
/// Jobs read from a Secret in the store's namespace).
enum Home {
    Pvc(Box<PersistentVolumeClaim>),
    S3 { secret: Box<Secret>, url: String },
}

/// The scripts' ConfigMap and the archives' [`Home`] of the store of `c`.
fn archive_objects(c: &Ctx) -> Result<(ConfigMap, Home), StepError> {
    let spec = c.spec()?;
    let s = &c.deps.settings;
    let mut meta = spec.meta(ARCHIVE_CONFIGMAP);
    meta.labels
        .get_or_insert_default()
        .insert("app.kubernetes.io/name".into(), ARCHIVE_CONFIGMAP.into());
    let scripts = ConfigMap {
        metadata: meta,
        data: Some(
            [
                (BACKUP_SCRIPT_KEY.to_owned(), BACKUP_SCRIPT.to_owned()),
                (RESTORE_SCRIPT_KEY.to_owned(), RESTORE_SCRIPT.to_owned()),
            ]
            .into(),
        ),
        ..ConfigMap::default()
    };
    let home = match (s.backups.storage, &s.backups.s3) {
        (BackupStorage::Pvc, _) => Home::Pvc(Box::new(backup_pvc(&spec, s))),
        (BackupStorage::S3, Some(s3)) => Home::S3 {
            secret: Box::new(Secret {
                metadata: spec.meta(BACKUP_S3_SECRET),
                string_data: Some(
                    [
                        ("AWS_ACCESS_KEY_ID".to_owned(), s3.access_key_id.clone()),
                        (
                            "AWS_SECRET_ACCESS_KEY".to_owned(),
                            s3.secret_access_key.clone(),
                        ),
                    ]
                    .into(),
                ),
                type_: Some("Opaque".into()),
                ..Secret::default()
            }),
            url: s3.store_url(c.input().store_id),
        },
        (BackupStorage::S3, None) => {
            return Err(StepError::fatal(
                "stores.backups.storage is s3 but stores.backups.s3 is not set",
            ));
        }
    };
    Ok((scripts, home))
}

/// `target` (of `store.restore`, and the rest of `store.backup`'s): the scripts' ConfigMap,
/// and where archives are — the backup PVC (sized by the plan), or the bucket's credentials
/// as a Secret in the store's namespace.
pub(super) async fn restore_target(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let (scripts, home) = archive_objects(&c)?;
    put(&c, &AppObject::ConfigMap(scripts)).await?;
    match home {
        Home::Pvc(pvc) => {
            apply(&c.api::<PersistentVolumeClaim>()?, pvc.as_ref()).await?;
            StepOutcome::done(json!({ "storage": "pvc", "pvc": BACKUP_PVC }))
        }
        Home::S3 { secret, url } => {
            apply(&c.api::<Secret>()?, secret.as_ref()).await?;
            StepOutcome::done(json!({ "storage": "s3", "url": url }))
        }
    }
}

/// What a backup or restore of the store of `c` would write, in order, as JSON objects (a
/// dry run's plan): the scripts, the archives' home, for a restore the web tier at zero,
/// and the first Job.
pub(super) async fn planned(
    c: &Ctx,
    kind: ArchiveKind,
) -> Result<Vec<serde_json::Value>, StepError> {
    let (engine, spec) = (c.engine()?, c.spec()?);
    let (scripts, home) = archive_objects(c)?;
    let mut out = vec![render::value(&scripts)];
    out.push(match &home {
        Home::Pvc(pvc) => render::value(pvc.as_ref()),
        Home::S3 { secret, .. } => render::value(secret.as_ref()),
    });
    let id = backup_id(c)?;
    let mut expect = None;
    if kind == ArchiveKind::Restore {
        let mut down = spec.clone();
        down.suspended = true;
        for obj in engine.web_tier(&down, &c.deps.settings).objects {
            if let AppObject::Deployment(d) = obj {
                out.push(render::value(&d));
            }
        }
        expect = backups::get(&c.deps.pool, id)
            .await
            .retryable()?
            .and_then(|b| b.sha256);
    }
    let job = ArchiveJob {
        kind,
        backup_id: id,
        expect_sha256: expect,
        prune: Vec::new(),
        s3: s3_target(c),
    };
    let name = format!("{}1", job_prefix(kind, id));
    out.push(render::value(&archive_job(
        engine,
        &spec,
        &c.deps.settings,
        &job,
        &name,
    )));
    Ok(out)
}

/// The PVC backups are written to (PVC storage), sized by the plan's `backups.volume`.
#[must_use]
pub fn backup_pvc(
    spec: &StoreSpec<'_>,
    s: &urumi_store::settings::StoreSettings,
) -> PersistentVolumeClaim {
    let mut pvc = PersistentVolumeClaim {
        metadata: spec.app_meta(BACKUP_PVC, BACKUP_PVC),
        spec: Some(render::pvc_spec(&spec.plan.backups.volume, s)),
        ..PersistentVolumeClaim::default()
    };
    pvc.metadata.namespace = Some(spec.namespace());
    pvc
}

/// The Job of `job` for `spec`, named `name`.
#[must_use]
pub fn archive_job(
    engine: &dyn super::engines::StoreEngine,
    spec: &StoreSpec<'_>,
    s: &urumi_store::settings::StoreSettings,
    job: &ArchiveJob,
    name: &str,
) -> Job {
    let app = format!("store-{}", job.kind.as_str());
    let mut meta = spec.app_meta(name, &app);
    let labels = meta.labels.get_or_insert_default();
    labels.insert("urumi.io/job".into(), job.kind.as_str().into());
    labels.insert("urumi.io/backup-id".into(), job.backup_id.to_string());
    let mut template = spec.template_meta(&app);
    template
        .labels
        .get_or_insert_default()
        .insert("urumi.io/job".into(), job.kind.as_str().into());
    Job {
        metadata: meta,
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(template),
                spec: Some(engine.archive_pod(spec, s, job)),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The Job prefix of `kind` for `backup`: `store-backup-<uuid, no dashes>-`.
fn job_prefix(kind: ArchiveKind, backup: Uuid) -> String {
    format!("store-{}-{}-", kind.as_str(), backup.simple())
}

/// Where a Job stands.
enum JobState {
    /// Still running (or just started): poll again.
    Waiting(StepOutcome),
    /// Succeeded; its main container's log.
    Succeeded { name: String, log: String },
}

/// Follows the newest Job of `job` (adopting one a crashed attempt started), or starts the
/// next-numbered one when there is none or the newest failed on an earlier attempt.
async fn run_job(c: &Ctx, sc: &StepContext, job: &ArchiveJob) -> Result<JobState, StepError> {
    let (engine, spec) = (c.engine()?, c.spec()?);
    let prefix = job_prefix(job.kind, job.backup_id);
    let family = Family {
        selector: &format!("urumi.io/backup-id={}", job.backup_id),
        prefix: &prefix,
        what: job.kind.as_str(),
    };
    let of_kind = |j: &Job| {
        j.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(&prefix))
    };
    let make = |name: &str| archive_job(engine, &spec, &c.deps.settings, job, name);
    match numbered_jobs::follow(
        &c.api::<Job>()?,
        &family,
        sc.poll,
        of_kind,
        numbered_jobs::not_failed,
        make,
    )
    .await?
    {
        Followed::Waiting(outcome) => Ok(JobState::Waiting(outcome)),
        Followed::Succeeded(name) => {
            let log = job_log(c, &name).await?;
            Ok(JobState::Succeeded { name, log })
        }
        Followed::Failed(name) => {
            let tail: String = {
                let log = job_log(c, &name).await.unwrap_or_else(|e| e.message);
                let chars: Vec<char> = log.chars().collect();
                chars[chars.len().saturating_sub(2000)..].iter().collect()
            };
            Err(StepError::retryable(format!(
                "{} Job {name} failed; log tail:\n{tail}",
                job.kind.as_str()
            )))
        }
    }
}

/// The log of the main container of `job`'s pod (the last 50 lines).
pub(super) async fn job_log(c: &Ctx, job: &str) -> Result<String, StepError> {
    let pods = c.api::<Pod>()?;
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
        .map_err(|e| cluster::classify("list Job pods", &e))?;
    let mut items = list.items;
    if items.is_empty() {
        // Simulated and older clusters may not label Job pods with job-name: match owners.
        items = pods
            .list(&ListParams::default().labels("urumi.io/job"))
            .await
            .map_err(|e| cluster::classify("list Job pods", &e))?
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|r| r.name == job))
            })
            .collect();
    }
    let mut log = String::new();
    for pod in items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let main = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.clone());
        let params = LogParams {
            container: main,
            tail_lines: Some(50),
            limit_bytes: Some(64 * 1024),
            ..LogParams::default()
        };
        let text = pods
            .logs(&name, &params)
            .await
            .map_err(|e| cluster::classify("read a Job pod's log", &e))?;
        log.push_str(&text);
    }
    Ok(log)
}

fn s3_target(c: &Ctx) -> Option<(String, String)> {
    let s = &c.deps.settings.backups;
    match (s.storage, &s.s3) {
        (BackupStorage::S3, Some(s3)) => {
            Some((s3.store_url(c.input().store_id), s3.region.clone()))
        }
        _ => None,
    }
}

/// `dump`: the backup Job (which also prunes the archives retention drops), followed until
/// it succeeds; its output is the archive's size and checksum from the Job's log.
pub(super) async fn dump(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let id = backup_id(&c)?;
    let keep = c.spec()?.plan.backups.retention;
    let prune = backups::to_prune(&c.deps.pool, c.input().store_id, id, keep)
        .await
        .retryable()?;
    let job = ArchiveJob {
        kind: ArchiveKind::Backup,
        backup_id: id,
        expect_sha256: None,
        prune: prune.clone(),
        s3: s3_target(&c),
    };
    match run_job(&c, &sc, &job).await? {
        JobState::Waiting(outcome) => Ok(outcome),
        JobState::Succeeded { name, log } => {
            let archived: Archived = result_line(&log, "URUMI-BACKUP").ok_or_else(|| {
                StepError::retryable(format!(
                    "backup Job {name} succeeded but printed no URUMI-BACKUP line; log:\n{log}"
                ))
            })?;
            if archived.id != id {
                return Err(StepError::fatal(format!(
                    "backup Job {name} archived {} instead of {id}",
                    archived.id
                )));
            }
            StepOutcome::done(json!({
                "job": name,
                "size": archived.size,
                "sha256": archived.sha256,
                "pruned": prune,
            }))
        }
    }
}

#[derive(Deserialize)]
struct Dumped {
    size: i64,
    sha256: String,
    pruned: Vec<Uuid>,
}

/// `record`: the backup complete with its size and checksum; the pruned ones marked.
pub(super) async fn record(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    record_of(c, sc, "dump").await
}

/// [`record`] from the output of the [`dump`] that ran as step `dumped_by` (`dump` in
/// `store.backup`, `backup` in `store.upgrade`).
pub(super) async fn record_of(
    c: Ctx,
    sc: StepContext,
    dumped_by: &'static str,
) -> Result<StepOutcome, StepError> {
    let id = backup_id(&c)?;
    let dumped: Dumped = sc.output_of(dumped_by)?;
    if dumped.sha256.len() != 64 || !dumped.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StepError::fatal(format!(
            "the backup Job reported a malformed sha256 {:?}",
            dumped.sha256
        )));
    }
    let mut tx = c.deps.pool.begin().await.retryable()?;
    backups::complete(
        &mut tx,
        id,
        dumped.size,
        &dumped.sha256.to_ascii_lowercase(),
        &dumped.pruned,
    )
    .await
    .retryable()?;
    tx.commit().await.retryable()?;
    StepOutcome::done(json!({ "backup": id, "size": dumped.size, "pruned": dumped.pruned }))
}

/// `web_down` and `web_up`: the web tier's Deployment applied with 0 replicas (down) or the
/// store's own (up); the data tier is left running, the import needs it.
pub(super) async fn web(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let down = sc.step == "web_down";
    let (engine, mut spec) = (c.engine()?, c.spec()?);
    spec.suspended = down;
    let mut applied = Vec::new();
    for obj in engine.web_tier(&spec, &c.deps.settings).objects {
        if matches!(obj, AppObject::Deployment(_)) {
            put(&c, &obj).await?;
            applied.push(obj.id());
        }
    }
    StepOutcome::done(json!({ "replicas": spec.replicas(), "applied": applied }))
}

/// `web_stopped`: done when the web tier has no pod left, so no request writes to the
/// database while it is replaced.
pub(super) async fn web_stopped(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    use k8s_openapi::api::apps::v1::Deployment;
    let web = c.engine()?.web();
    let left = super::cluster::get_opt(&c.api::<Deployment>()?, web.app)
        .await?
        .and_then(|d| d.status)
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    if left > 0 {
        return Ok(StepOutcome::wait(
            POLL,
            format!("{} still has {left} pod(s)", web.app),
        ));
    }
    Ok(StepOutcome::done_empty())
}

/// `import`: the restore Job, with the checksum recorded for the backup; it refuses an
/// archive whose checksum differs.
pub(super) async fn import(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let id = backup_id(&c)?;
    let backup = backups::get(&c.deps.pool, id)
        .await
        .retryable()?
        .ok_or_else(|| StepError::fatal(format!("backup {id} does not exist")))?;
    if backup.store_id != c.input().store_id {
        return Err(StepError::fatal(format!(
            "backup {id} is another store's; a store is only restored from its own"
        )));
    }
    let sha = match (backup.status, backup.sha256) {
        (BackupStatus::Complete, Some(sha)) => sha,
        (status, _) => {
            return Err(StepError::fatal(format!(
                "backup {id} is {}: there is no archive to restore",
                status.as_str()
            )));
        }
    };
    let job = ArchiveJob {
        kind: ArchiveKind::Restore,
        backup_id: id,
        expect_sha256: Some(sha.clone()),
        prune: Vec::new(),
        s3: s3_target(&c),
    };
    match run_job(&c, &sc, &job).await? {
        JobState::Waiting(outcome) => Ok(outcome),
        JobState::Succeeded { name, log } => {
            let restored: Restored = result_line(&log, "URUMI-RESTORE").ok_or_else(|| {
                StepError::retryable(format!(
                    "restore Job {name} succeeded but printed no URUMI-RESTORE line; log:\n{log}"
                ))
            })?;
            if restored.id != id || !restored.sha256.eq_ignore_ascii_case(&sha) {
                return Err(StepError::fatal(format!(
                    "restore Job {name} restored {} ({}) instead of {id} ({sha})",
                    restored.id, restored.sha256
                )));
            }
            StepOutcome::done(json!({ "job": name, "backup": id, "sha256": sha }))
        }
    }
}

/// `mark_restored`: an event `store.restored` on the store's subject, naming the backup.
pub(super) async fn mark_restored(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let id = backup_id(&c)?;
    urumi_store::backups::record_restored(&c.deps.pool, c.input().store_id, id, sc.run_id)
        .await
        .retryable()?;
    StepOutcome::done(json!({ "backup": id }))
}
