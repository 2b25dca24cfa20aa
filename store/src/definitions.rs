//! The store workflows as the engine sees them: `store.provision@1`, `store.delete@1`,
//! `store.repair@1`, `store.suspend@1`, `store.resume@1`, `store.resize@1`, `store.domains@1`,
//! `store.preview@1`, `store.usage@1`, `store.sweep@1`, `store.backup@1`, `store.restore@1`,
//! `store.scheduled_backups@1` and `store.upgrade@1` — names, versions, input, and steps in order with their retry, timeout
//! and wait options. The steps are *declared* here, without code:
//!
//! ```text
//! provision: namespace → quota → network_policies → credentials → mariadb → mariadb_ready
//!            → wordpress → wordpress_ready → setup → storefront → mark_ready
//! delete:    mark_deleting → delete_namespace → namespace_gone → mark_deleted
//! repair:    reapply  (reports missing and drifted objects in its output)
//! suspend:   route_suspended → scale_down → stopped → mark_suspended
//! resume:    scale_up → mariadb_ready → wordpress_ready → route → storefront → mark_ready
//! resize:    reapply (the new plan's quota, LimitRange, volumes) → mariadb_ready → wordpress_ready
//! domains:   route (the Ingress with every custom domain) → site_url (WordPress's home and
//!            siteurl set to the primary domain by a Job) → storefront
//! preview:   preview  (dry run: what a repair or delete would write; see `crate::preview`)
//! usage:     observe  (every store's quota usage, fleet-wide; see `crate::usage`)
//! sweep:     sweep    (every ready store's repair preview: the drifted ones; see `crate::sweep`)
//! backup:    target (backup PVC or bucket credentials) → dump (Job) → record (size, checksum)
//! scheduled_backups: start (a backup run per ready store of the plan; see `crate::scheduled_backups`)
//! restore:   target → web_down → web_stopped → import (Job) → web_up → wordpress_ready
//!            → storefront → mark_restored
//! upgrade:   backup_target → backup (Job) → backup_record → apply_pins → mariadb_ready
//!            → wordpress_ready → update_db (Job) → storefront → rollback_pins → rollback_db
//!            → rollback_ready → rollback_storefront → finish   (see `urumi_workflows::store::upgrade`)
//! ```
//!
//! A declared definition is all `urumi_engine::Engine` needs to start, re-run and check runs
//! (the API's engine is built on [`registry`]). `urumi_workflows::store::steps` gives each
//! declared step its code (`Definition::implement`), so the worker's definitions are these,
//! implemented: the two cannot disagree on a run's steps, versions or options, and a worker
//! refuses to start with a step left without code.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use urumi_engine::{Definition, Registry, Result, RetryPolicy, StepOptions};
use uuid::Uuid;

use super::engines;
use super::preview::{PREVIEW, PREVIEW_VERSION, PreviewInput};
use super::scheduled_backups::{
    SCHEDULED_BACKUPS, SCHEDULED_BACKUPS_VERSION, ScheduledBackupsInput,
};
use super::settings::Pins;
use super::sweep::{SWEEP, SWEEP_VERSION, SweepInput};
use super::usage::{USAGE, USAGE_VERSION};

/// The input of `store.usage@1`: nothing (it observes every store).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageInput {}

/// Definition names.
pub const PROVISION: &str = "store.provision";
/// See [`PROVISION`].
pub const DELETE: &str = "store.delete";
/// See [`PROVISION`].
pub const REPAIR: &str = "store.repair";

/// See [`PROVISION`].
pub const SUSPEND: &str = "store.suspend";
/// See [`PROVISION`].
pub const RESUME: &str = "store.resume";
/// See [`PROVISION`].
pub const RESIZE: &str = "store.resize";
/// See [`PROVISION`].
pub const BACKUP: &str = "store.backup";
/// See [`PROVISION`].
pub const RESTORE: &str = "store.restore";
/// See [`PROVISION`]: a store's custom domains applied (one workflow for adding and
/// removing: its input carries the whole desired list).
pub const DOMAINS: &str = "store.domains";
/// See [`PROVISION`].
pub const UPGRADE: &str = "store.upgrade";

/// The version of [`PROVISION`] this build declares.
pub const PROVISION_VERSION: i32 = 1;
/// The version of [`DELETE`] this build declares.
pub const DELETE_VERSION: i32 = 1;
/// The version of [`REPAIR`] this build declares.
pub const REPAIR_VERSION: i32 = 1;
/// The version of [`SUSPEND`] this build declares.
pub const SUSPEND_VERSION: i32 = 1;
/// The version of [`RESUME`] this build declares.
pub const RESUME_VERSION: i32 = 1;
/// The version of [`RESIZE`] this build declares.
pub const RESIZE_VERSION: i32 = 1;
/// The version of [`BACKUP`] this build declares.
pub const BACKUP_VERSION: i32 = 1;
/// The version of [`RESTORE`] this build declares.
pub const RESTORE_VERSION: i32 = 1;
/// The version of [`DOMAINS`] this build declares.
pub const DOMAINS_VERSION: i32 = 1;
/// The version of [`UPGRADE`] this build declares.
pub const UPGRADE_VERSION: i32 = 1;

/// Where a `store.upgrade` run takes the store: a channel's release and its pins (read from
/// the settings when the upgrade was asked for, so the run does not change its mind when the
/// channel moves on meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeTarget {
    pub channel: String,
    pub version: String,
    pub pins: Pins,
}

/// The input of every store workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreInput {
    pub store_id: Uuid,
    pub name: String,
    pub slug: String,
    pub plan: String,
    /// The store's engine ([`engines::DEFAULT`] for runs started before inputs named it).
    #[serde(default = "default_engine")]
    pub engine: String,
    /// The store's desired state is the suspended one (workloads at zero replicas, the
    /// Ingress to the suspended page): true in `store.suspend` runs and in repairs of a
    /// suspended store, so that a repair never wakes a store up.
    #[serde(default)]
    pub suspended: bool,
    /// The backup a `store.backup` run makes, or a `store.restore` run restores (its row in
    /// `urumi.store_backups`, written with the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<Uuid>,
    /// The store's custom domains, oldest first (the first is its primary domain,
    /// `crate::domains::primary`): every run renders its Ingress with them, so a repair, a
    /// suspend or a resume keeps them. Written by the request that starts the run, from
    /// `urumi.store_domains` in the same transaction; absent in inputs from before domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// What the store runs, as recorded on it; `None` for a store from before channels,
    /// which is rendered from `[stores.images]` (`StoreSettings::image_pins`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pins: Option<Pins>,
    /// A `store.upgrade` run's target (`pins` stays what the store runs before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeTarget>,
}

impl StoreInput {
    /// The input of a run on `store` as it is now (suspended when its status says so), with
    /// its custom domains (`crate::db::domains`, oldest first).
    #[must_use]
    pub fn of(store: &crate::db::Store, domains: Vec<String>) -> Self {
        Self {
            store_id: store.id,
            name: store.name.clone(),
            slug: store.slug.clone(),
            plan: store.plan.clone(),
            engine: store.engine.clone(),
            suspended: store.status == crate::status::StoreStatus::Suspended,
            backup_id: None,
            domains,
            pins: store.pins.as_ref().map(|p| p.0.clone()),
            upgrade: None,
        }
    }
}

fn default_engine() -> String {
    engines::DEFAULT.to_owned()
}

/// The options of a step that calls the cluster.
fn cluster_options() -> StepOptions {
    StepOptions::default()
        .retry(RetryPolicy {
            initial_interval: Duration::from_millis(200),
            multiplier: 2.0,
            max_interval: Duration::from_secs(30),
            max_attempts: 8,
        })
        .timeout(Duration::from_secs(60))
}

/// The store workflows, their steps declared (no code): provision, delete, repair, suspend,
/// resume, resize, domains, preview, usage, sweep.
///
/// # Errors
/// Never in practice; the builder's checks.
pub fn declared() -> Result<[Definition; 14]> {
    let o = cluster_options();
    let provision = Definition::builder(PROVISION, PROVISION_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("namespace")
        .declare("quota")
        .declare("network_policies")
        .declare("credentials")
        .declare("mariadb")
        .declare_with("mariadb_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare("wordpress")
        .declare_with("wordpress_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare_with(
            "setup",
            o.retry(RetryPolicy {
                max_attempts: 4,
                ..o.retry
            })
            .wait_deadline(Duration::from_secs(1200)),
        )
        .declare_with("storefront", o.wait_deadline(Duration::from_secs(600)))
        .declare("mark_ready")
        .build()?;
    let delete = Definition::builder(DELETE, DELETE_VERSION)
        .input::<StoreInput>()
        .supersedes(PROVISION)
        .supersedes(REPAIR)
        .supersedes(SUSPEND)
        .supersedes(RESUME)
        .supersedes(RESIZE)
        .supersedes(BACKUP)
        .supersedes(RESTORE)
        .supersedes(DOMAINS)
        .supersedes(UPGRADE)
        .step_defaults(o)
        .declare("mark_deleting")
        .declare("delete_namespace")
        .declare_with("namespace_gone", o.wait_deadline(Duration::from_secs(1800)))
        .declare("mark_deleted")
        .build()?;
    let repair = Definition::builder(REPAIR, REPAIR_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("reapply")
        .build()?;
    // Suspend: the storefront goes to the suspended page first, so customers never meet a
    // scaled-down store's 502; then the workloads go to zero and the store is marked.
    let suspend = Definition::builder(SUSPEND, SUSPEND_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("route_suspended")
        .declare("scale_down")
        .declare_with("stopped", o.wait_deadline(Duration::from_secs(900)))
        .declare("mark_suspended")
        .build()?;
    // Resume: the workloads come back and must be ready before the Ingress leaves the
    // suspended page; the storefront check passes again before the store is ready.
    let resume = Definition::builder(RESUME, RESUME_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("scale_up")
        .declare_with("mariadb_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare_with("wordpress_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare("route")
        .declare_with("storefront", o.wait_deadline(Duration::from_secs(600)))
        .declare("mark_ready")
        .build()?;
    // Resize: the plan is recorded by the request; the run applies it (the repair walk with
    // the new plan) and waits for the workloads to be back (a suspended store's are skipped).
    let resize = Definition::builder(RESIZE, RESIZE_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("reapply")
        .declare_with("mariadb_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare_with("wordpress_ready", o.wait_deadline(Duration::from_secs(900)))
        .build()?;
    // Backup: the archive's home (the backup PVC, or the bucket's credentials), the dump
    // Job (which also prunes what retention drops), then the archive's size and checksum
    // recorded from the Job's log.
    let backup = Definition::builder(BACKUP, BACKUP_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("target")
        .declare_with(
            "dump",
            o.retry(RetryPolicy {
                max_attempts: 4,
                ..o.retry
            })
            .wait_deadline(Duration::from_secs(3600)),
        )
        .declare("record")
        .build()?;
    // Restore: shoppers are kept off while the database is replaced (the web tier at zero),
    // the import Job, then the web tier back, ready, and the storefront check.
    let restore = Definition::builder(RESTORE, RESTORE_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("target")
        .declare("web_down")
        .declare_with("web_stopped", o.wait_deadline(Duration::from_secs(900)))
        .declare_with(
            "import",
            o.retry(RetryPolicy {
                max_attempts: 4,
                ..o.retry
            })
            .wait_deadline(Duration::from_secs(3600)),
        )
        .declare("web_up")
        .declare_with("wordpress_ready", o.wait_deadline(Duration::from_secs(900)))
        .declare_with("storefront", o.wait_deadline(Duration::from_secs(600)))
        .declare("mark_restored")
        .build()?;
    // Scheduled backups: one step that starts a backup run per ready store of the plan.
    let scheduled_backups = Definition::builder(SCHEDULED_BACKUPS, SCHEDULED_BACKUPS_VERSION)
        .input::<ScheduledBackupsInput>()
        .step_defaults(o.timeout(Duration::from_secs(1800)))
        .declare("start")
        .build()?;
    // Domains: the Ingress first (cert-manager starts issuing as soon as it sees the TLS
    // entries), then WordPress is told its primary URL (a Job, like setup: retried with a
    // fresh Job), then the storefront must still answer.
    let domains = Definition::builder(DOMAINS, DOMAINS_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("route")
        .declare_with(
            "site_url",
            o.retry(RetryPolicy {
                max_attempts: 4,
                ..o.retry
            })
            .wait_deadline(Duration::from_secs(600)),
        )
        .declare_with("storefront", o.wait_deadline(Duration::from_secs(600)))
        .build()?;
    // Upgrade: every step visible, rollback included. The forward steps after the backup
    // turn their own terminal failure into an output `{"failed": why}` (see
    // `urumi_workflows::store::upgrade`), the later forward steps then skip and the rollback
    // steps act; `finish` records the new release, or fails the run saying why it was rolled
    // back. The forward waits' deadlines (at least 1800 s) are four times the steps' own
    // give-up budget (900 polls, at least 450 s), so the step's own verdict (and the
    // rollback) comes first.
    let job = o.retry(RetryPolicy {
        max_attempts: 4,
        ..o.retry
    });
    let upgrade = Definition::builder(UPGRADE, UPGRADE_VERSION)
        .input::<StoreInput>()
        .step_defaults(o)
        .declare("backup_target")
        .declare_with("backup", job.wait_deadline(Duration::from_secs(3600)))
        .declare("backup_record")
        .declare("apply_pins")
        .declare_with("mariadb_ready", o.wait_deadline(Duration::from_secs(1800)))
        .declare_with(
            "wordpress_ready",
            o.wait_deadline(Duration::from_secs(1800)),
        )
        .declare_with("update_db", job.wait_deadline(Duration::from_secs(7200)))
        .declare_with("storefront", o.wait_deadline(Duration::from_secs(1800)))
        .declare("rollback_pins")
        .declare_with("rollback_db", job.wait_deadline(Duration::from_secs(3600)))
        .declare_with("rollback_ready", o.wait_deadline(Duration::from_secs(1800)))
        .declare_with(
            "rollback_storefront",
            o.wait_deadline(Duration::from_secs(1200)),
        )
        .declare("finish")
        .build()?;
    // A preview answers an operator waiting on a dry run: a few quick attempts, no long
    // backoff (the API stops waiting after a few seconds anyway).
    let preview = Definition::builder(PREVIEW, PREVIEW_VERSION)
        .input::<PreviewInput>()
        .step_defaults(o.retry(RetryPolicy {
            initial_interval: Duration::from_millis(100),
            multiplier: 2.0,
            max_interval: Duration::from_secs(1),
            max_attempts: 3,
        }))
        .declare("preview")
        .build()?;
    let usage = Definition::builder(USAGE, USAGE_VERSION)
        .input::<UsageInput>()
        .step_defaults(o.timeout(Duration::from_secs(600)))
        .declare("observe")
        .build()?;
    // A preview of every ready store (and a repair started per drifted one): long.
    let sweep = Definition::builder(SWEEP, SWEEP_VERSION)
        .input::<SweepInput>()
        .step_defaults(o.timeout(Duration::from_secs(1800)))
        .declare("sweep")
        .build()?;
    Ok([
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

/// The store workflows, declared: enough for an `Engine` that starts, re-runs and checks
/// store runs (the API's); not for a `Worker`, which needs `urumi_workflows::registry`.
///
/// # Errors
/// Never in practice; the builder's checks.
pub fn registry() -> Result<Registry> {
    Registry::new(declared()?)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_store_workflows_are_declared_at_their_versions_without_code() {
        let registry = registry().unwrap();
        let mut keys = registry.keys();
        keys.sort();
        assert_eq!(
            keys,
            [
                "store.backup@1",
                "store.delete@1",
                "store.domains@1",
                "store.preview@1",
                "store.provision@1",
                "store.repair@1",
                "store.resize@1",
                "store.restore@1",
                "store.resume@1",
                "store.scheduled_backups@1",
                "store.suspend@1",
                "store.sweep@1",
                "store.upgrade@1",
                "store.usage@1"
            ]
        );
        assert!(registry.iter().all(|d| !d.is_executable()));
        let delete = registry.get(DELETE, None).unwrap();
        assert!(delete.supersedes(PROVISION) && delete.supersedes(REPAIR));
        assert!(delete.supersedes(SUSPEND) && delete.supersedes(RESUME));
        assert!(delete.supersedes(RESIZE) && delete.supersedes(DOMAINS));
        assert!(delete.supersedes(UPGRADE));
        assert!(!registry.get(PROVISION, None).unwrap().supersedes(DELETE));
    }

    #[test]
    fn a_store_input_without_an_engine_is_a_default_engine_store() {
        let id = Uuid::now_v7();
        let input: StoreInput = serde_json::from_value(
            json!({ "store_id": id, "name": "A", "slug": "aaa", "plan": "starter" }),
        )
        .unwrap();
        assert_eq!(input.engine, engines::DEFAULT);
        assert!(
            input.domains.is_empty(),
            "an input from before domains has none"
        );
        assert!(
            !input.suspended,
            "a run input from before suspension is not suspended"
        );
        let provision = registry().unwrap().get(PROVISION, None).unwrap();
        assert!(
            provision
                .check_input(
                    &json!({ "store_id": id, "name": "A", "slug": "aaa", "plan": "p", "extra": 1 })
                )
                .is_err(),
            "unknown fields are refused"
        );
    }
}
