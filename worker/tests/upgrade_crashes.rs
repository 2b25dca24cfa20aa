//! Crash recovery of `store.upgrade@1` with real `urumi-worker` processes against the
//! Kubernetes API simulator, in the harness of `lifecycle_crashes.rs`: the worker killed at
//! every step boundary (`after_checkpoint_commit`) and mid-step (`mid_step`) of the upgrade's
//! success path — 13 steps, 26 cases — still ends like an uncrashed reference upgrade: the
//! run succeeded, the steps checkpointed before the crash ran once, the run was taken over
//! once from the dead process, the store records the new release, its pre-upgrade backup is
//! complete, its namespace holds exactly the reference's objects (the backup's and the run's
//! ids, which differ per store, normalized away), and the request log shows the same changes
//! as the reference's, each once (one backup Job, one update Job), with no volume claim or
//! Secret written.
//!
//! The same harness runs the rollback path: every update Job fails (the simulator's Job
//! script), so each upgrade — crashed at every step but after `finish`'s checkpoint, which
//! the failing `finish` never commits (25 cases) — ends like the uncrashed reference
//! rollback: the run failed at `finish` saying it rolled back, the store `ready` on its old
//! release, one backup, update and restore Job each.
//!
//! Phases: 0. every store provisioned by a clean worker on `stable` 2026.11 (the settings'
//! default); 1. one armed worker per case, alone, claims the case's upgrade to `stable`
//! 2026.12 (the target travels in the run input, so the workers need no channel settings)
//! and aborts at its failure point; 2. the dead leases aged, a reference upgrade requested,
//! one clean worker finishes every run.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunStatus, Who};
use urumi_sim::{JobScript, SimHandle, Simulator};
use urumi_store::backups::{self, BackupStatus};
use urumi_store::settings::{Channel, Pins};
use urumi_store::upgrades::{self, Upgrade};
use urumi_workflows::StoreDeps;
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

use common::cluster::{normalized, objects_by_namespace, store_worker};
use common::crash::{
    self, CLEAN_LEASE_MS, DOOMED_LEASE_MS, POINTS, all_runs_ended, assert_succeeded,
};
use common::url_for;

/// `store.upgrade@1`'s steps, in order.
const STEPS: &[&str] = &[
    "backup_target",
    "backup",
    "backup_record",
    "apply_pins",
    "mariadb_ready",
    "wordpress_ready",
    "update_db",
    "storefront",
    "rollback_pins",
    "rollback_db",
    "rollback_ready",
    "rollback_storefront",
    "finish",
];

/// Which way every upgrade of a test goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    /// The update Job succeeds: the store ends on the new release.
    Forward,
    /// Every update Job fails: the rollback steps restore the old pins and the pre-upgrade
    /// backup, the run fails at `finish`, the store stays ready on its old release.
    RolledBack,
}

impl Path {
    /// Whether the worker is killed at `point` of step `i` on this path: everywhere, except
    /// after `finish`'s checkpoint on the rollback path (`finish` fails the run there: no
    /// checkpoint is committed for the point to follow).
    fn crashes_at(self, point: &str, i: usize) -> bool {
        !(self == Path::RolledBack && point == "after_checkpoint_commit" && i + 1 == STEPS.len())
    }
}

/// One store, upgraded through a crash (or not, for the reference).
struct Case {
    crash: Option<(&'static str, usize)>,
    store: Uuid,
    slug: String,
    run: Option<Uuid>,
    backup: Option<Uuid>,
    /// The pre-upgrade backup's checksum (a restore Job's `EXPECT_SHA256`), once complete.
    sha256: Option<String>,
    dead_owner: Option<String>,
}

impl Case {
    fn label(&self) -> String {
        match self.crash {
            Some((point, i)) => format!("upgrade {point}:{}", STEPS[i]),
            None => "upgrade reference (no crash)".into(),
        }
    }
    fn namespace(&self) -> String {
        format!("store-{}", self.slug)
    }
    fn run(&self) -> Uuid {
        self.run.expect("the run was requested")
    }
    fn expected_attempts(&self) -> Vec<(String, i32)> {
        crash::expected_attempts(STEPS, self.crash)
    }
    /// What differs between two stores' upgrades whatever happened: the store's id and slug,
    /// its pre-upgrade backup's id (Job names, labels, env) and checksum (a restore Job's env), and
    /// its run's id (a label).
    fn replacements(&self) -> Vec<(String, &'static str)> {
        let backup = self.backup.expect("the upgrade's backup");
        let sha = self.sha256.iter().map(|s| (s.clone(), "<sha256>"));
        sha.chain([
            (self.store.to_string(), "<store-id>"),
            (self.slug.clone(), "<slug>"),
            (backup.to_string(), "<backup-id>"),
            (backup.simple().to_string(), "<backup-id>"),
            (self.run().to_string(), "<run-id>"),
        ])
        .collect()
    }
}

/// `settings` with `stable` moved on to 2026.12.
fn moved_on(settings: &StoreSettings) -> StoreSettings {
    let mut s = settings.clone();
    let old = settings.image_pins();
    s.channels = BTreeMap::from([(
        "stable".to_owned(),
        Channel {
            version: "2026.12".into(),
            pins: Pins {
                wordpress: "wordpress:6.9.0-php8.3-apache".into(),
                wp_cli: "wordpress:cli-2.12.0-php8.4".into(),
                woocommerce: "10.4.0".into(),
                mariadb: old.mariadb,
            },
        },
    )]);
    s
}

async fn request(engine: &Engine, settings: &StoreSettings, store: Uuid) -> (Uuid, Uuid) {
    let mut tx = engine.pool().begin().await.unwrap();
    let done = upgrades::upgrade_in(
        &mut tx,
        engine,
        settings,
        store,
        None,
        &Who::interactive("tester"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    match done {
        Upgrade::Started {
            requested,
            backup_id,
            ..
        } => (requested.run_id, backup_id),
        Upgrade::Already(s) => panic!("nothing started for {}", s.slug),
    }
}

/// The objects of one case's namespace, normalized with [`Case::replacements`], sorted.
fn state(objects: &BTreeMap<String, Vec<(String, DynamicObject)>>, c: &Case) -> Vec<String> {
    let in_ns = objects
        .get(&c.namespace())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut replace: Vec<(String, &str)> = in_ns
        .iter()
        .filter_map(|(_, o)| o.metadata.uid.clone())
        .map(|uid| (uid, "<uid>"))
        .collect();
    replace.extend(c.replacements());
    let mut v: Vec<String> = in_ns
        .iter()
        .map(|(kind, o)| normalized(kind, o, &replace))
        .collect();
    v.sort();
    v
}

/// The writes since request `after` that changed an object in each namespace, as
/// `"verb resource/name"` → how many times (`create` for a 201, also from a server-side
/// apply). Panics at any request after `after` that changed a PersistentVolumeClaim other
/// than the backups' `store-backups`, or a Secret: an upgrade keeps data.
fn writes_by_namespace(sim: &SimHandle, after: u64) -> BTreeMap<String, BTreeMap<String, usize>> {
    let log = sim.request_log().entries();
    assert!(
        log.first().is_some_and(|r| r.seq <= after + 1),
        "the request log kept every request since setup"
    );
    let mut by_ns: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in log.into_iter().filter(|r| r.seq > after) {
        let write = matches!(
            r.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        let resource = r.resource.split('/').next().unwrap_or_default();
        // The pre-upgrade backup's home (`store-backups`, PVC storage) is the one claim an
        // upgrade may change (create); the data volumes are re-applied unchanged with the
        // web tier, and the Secrets never change.
        let backup_home = resource == "persistentvolumeclaims"
            && r.name.as_deref().or(r.created.as_deref()) == Some("store-backups");
        assert!(
            !(write
                && r.changed
                && matches!(resource, "persistentvolumeclaims" | "secrets")
                && !backup_home),
            "an upgrade wrote a volume claim or Secret: {r:?}"
        );
        if !r.changed {
            continue;
        }
        let name = r.name.clone().or(r.created.clone()).unwrap_or_default();
        // A server-side apply that made its object is a creation too.
        let verb = if r.status == 201 { "create" } else { &r.verb };
        let ns = if r.resource == "namespaces" {
            Some(name.clone())
        } else {
            r.namespace.clone()
        };
        let ns = ns.unwrap_or_else(|| panic!("a change outside any namespace: {r:?}"));
        *by_ns
            .entry(ns)
            .or_default()
            .entry(format!("{verb} {}/{name}", r.resource))
            .or_insert(0) += 1;
    }
    by_ns
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn killing_the_worker_at_every_upgrade_step_boundary_and_mid_step_ends_like_an_uncrashed_upgrade(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    crash_every_step(connect, Path::Forward).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn killing_the_worker_at_every_step_of_an_upgrade_that_rolls_back_ends_like_an_uncrashed_rollback(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    crash_every_step(connect, Path::RolledBack).await;
}

async fn crash_every_step(connect: PgConnectOptions, path: Path) {
    let t0 = Instant::now();
    let url = url_for(&connect);
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let settings = StoreSettings::default();
    let target = moved_on(&settings);
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: None,
    });
    let engine = Engine::new(
        pool.clone(),
        urumi_workflows::registry(Some(&deps)).unwrap(),
    );
    let sim = Simulator::builder().start().await.unwrap();
    let kubeconfig = sim.kubeconfig_path().to_owned();

    // 0. Setup: every store provisioned on stable 2026.11.
    let mut cases = Vec::new();
    let mut provisions = Vec::new();
    let named: Vec<(Option<(&'static str, usize)>, String)> = (0..STEPS.len())
        .flat_map(|i| POINTS.iter().map(move |(point, short)| (i, *point, *short)))
        .filter(|(i, point, _)| path.crashes_at(point, *i))
        .map(|(i, point, short)| {
            let step = STEPS[i].replace('_', "-");
            (Some((point, i)), format!("up-{short}-{step}"))
        })
        .chain([(None, "up-none".to_owned())])
        .collect();
    for (crash, name) in named {
        let r = service::create(&engine, &settings, &name, "woocommerce", None, "tester")
            .await
            .unwrap();
        provisions.push(r.run_id);
        cases.push(Case {
            crash,
            store: r.store.id,
            slug: r.store.slug,
            run: None,
            backup: None,
            sha256: None,
            dead_owner: None,
        });
    }
    let crash_cases = cases.iter().filter(|c| c.crash.is_some()).count();
    assert_eq!(
        crash_cases + usize::from(path == Path::RolledBack),
        2 * STEPS.len()
    );
    let clean = store_worker(&url, &kubeconfig, None, CLEAN_LEASE_MS);
    all_runs_ended(&pool, "every store provisioned", Duration::from_secs(180)).await;
    for (run, c) in provisions.iter().zip(&cases) {
        assert_succeeded(&engine, *run, &format!("{}: provisioning", c.label())).await;
    }
    clean.terminate();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );
    if path == Path::RolledBack {
        sim.script_job(
            None,
            "store-upgrade-",
            JobScript::fail("Error: WooCommerce database update failed\n"),
        );
    }
    let setup_done = sim.request_log().entries().last().map_or(0, |r| r.seq);
    let set_up = t0.elapsed();

    // 1. Crash phase: one armed worker process per case, alone.
    for c in cases.iter_mut().filter(|c| c.crash.is_some()) {
        let (point, i) = c.crash.unwrap();
        let failpoint = format!("{point}:{}", STEPS[i]);
        let mut doomed = store_worker(&url, &kubeconfig, Some(&failpoint), DOOMED_LEASE_MS);
        let (run, backup) = request(&engine, &target, c.store).await;
        (c.run, c.backup) = (Some(run), Some(backup));
        let status = doomed.exit_status(Duration::from_secs(90)).await;
        assert!(
            !status.success(),
            "{}: the process aborted: {status}",
            c.label()
        );
        let d = engine.run(c.run()).await.unwrap();
        crash::assert_crashed_where_armed(&c.label(), STEPS, c.crash.unwrap(), &d);
        c.dead_owner = d.run.lease_owner.clone();
    }
    let crashed = t0.elapsed();

    // 2. Recovery phase.
    let aged = sqlx::query(
        "UPDATE urumi.runs SET lease_expires_at = now() - interval '1 millisecond'
         WHERE status = 'running'",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    let in_flight = cases.iter().filter(|c| c.dead_owner.is_some()).count();
    assert_eq!(
        aged as usize, in_flight,
        "every crash but the last checkpoint's left its run leased"
    );
    // Every crash leaves its run leased but the one after the last step's checkpoint (the
    // forward path's `finish`: the run had succeeded).
    let after_last = usize::from(path == Path::Forward);
    assert_eq!(in_flight, crash_cases - after_last);
    for c in cases.iter_mut().filter(|c| c.crash.is_none()) {
        let (run, backup) = request(&engine, &target, c.store).await;
        (c.run, c.backup) = (Some(run), Some(backup));
    }
    let rescuer = store_worker(&url, &kubeconfig, None, CLEAN_LEASE_MS);
    all_runs_ended(&pool, "every run to end", Duration::from_secs(180)).await;
    let recovered = t0.elapsed();
    for c in &mut cases {
        let backup = backups::get(&pool, c.backup.unwrap()).await.unwrap();
        c.sha256 = backup.and_then(|b| b.sha256);
    }
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );

    let (_, release) = match path {
        Path::Forward => target.channel(None).unwrap(),
        Path::RolledBack => settings.channel(None).unwrap(),
    };
    for c in &cases {
        let d = engine.run(c.run()).await.unwrap();
        match path {
            Path::Forward => assert_eq!(
                d.run.status(),
                RunStatus::Succeeded,
                "{}: {:?}",
                c.label(),
                d.run.error
            ),
            Path::RolledBack => {
                assert_eq!(d.run.status(), RunStatus::Failed, "{}", c.label());
                let error = d.run.error.clone().unwrap_or_default();
                assert!(
                    error.contains(
                        "step \"finish\" failed: upgrade to stable 2026.12 rolled back: update_db"
                    ),
                    "{}: {error}",
                    c.label()
                );
            }
        }
        let attempts: Vec<(String, i32)> = d
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.attempts))
            .collect();
        assert_eq!(
            attempts,
            c.expected_attempts(),
            "{}: checkpointed steps ran once",
            c.label()
        );
        let store = urumi_workflows::store::db::get(&pool, c.store)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.status.as_str(), "ready", "{}", c.label());
        assert_eq!(
            store.version.as_deref(),
            Some(release.version.as_str()),
            "{}",
            c.label()
        );
        assert_eq!(
            store.pins.map(|p| p.0).as_ref(),
            Some(&release.pins),
            "{}",
            c.label()
        );
        let backup = backups::get(&pool, c.backup.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(backup.status, BackupStatus::Complete, "{}", c.label());
        let events = engine.events_for_run(c.run()).await.unwrap();
        let expired: Vec<&Value> = events
            .iter()
            .filter(|e| e.kind == "run.lease_expired")
            .map(|e| &e.detail["previous_owner"])
            .collect();
        let want: Vec<Value> = c.dead_owner.iter().map(|o| json!(o)).collect();
        assert_eq!(
            expired,
            want.iter().collect::<Vec<_>>(),
            "{}: taken over once",
            c.label()
        );
    }

    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let objects = objects_by_namespace(&client).await;
    let writes = writes_by_namespace(&sim, setup_done);
    let normalized_writes = |c: &Case| -> BTreeMap<String, usize> {
        let no_writes = BTreeMap::new();
        writes
            .get(&c.namespace())
            .unwrap_or(&no_writes)
            .iter()
            .map(|(k, n)| {
                let k = c
                    .replacements()
                    .iter()
                    .fold(k.clone(), |k, (from, to)| k.replace(from, to));
                (k, *n)
            })
            .collect()
    };
    let reference = cases.iter().find(|c| c.crash.is_none()).unwrap();
    let want = state(&objects, reference);
    let want_writes = normalized_writes(reference);
    // What the reference itself did, so that agreeing with it means something.
    let did: &[&str] = match path {
        Path::Forward => &[
            "create jobs/store-backup-<backup-id>-1",
            "create jobs/store-upgrade-1",
            "patch deployments/wordpress",
        ],
        Path::RolledBack => &[
            "create jobs/store-backup-<backup-id>-1",
            "create jobs/store-upgrade-1",
            "create jobs/store-restore-<backup-id>-1",
        ],
    };
    for job in did {
        assert_eq!(
            want_writes.get(*job),
            Some(&1),
            "{}: {job}; all writes: {want_writes:#?}",
            reference.label()
        );
    }
    for c in cases.iter().filter(|c| c.crash.is_some()) {
        let got = state(&objects, c);
        let missing: Vec<&String> = want.iter().filter(|o| !got.contains(o)).collect();
        let extra: Vec<&String> = got.iter().filter(|o| !want.contains(o)).collect();
        assert!(
            got == want,
            "{}: not the reference's cluster state;\nmissing: {missing:#?}\nextra: {extra:#?}",
            c.label()
        );
        assert_eq!(
            normalized_writes(c),
            want_writes,
            "{}: the writes that changed an object, with how many times",
            c.label()
        );
    }

    rescuer.terminate();
    sim.shutdown().await;
    eprintln!(
        "{path:?}: set up by {:.1}s, {crash_cases} crashes by {:.1}s, recovered by {:.1}s, checked by {:.1}s",
        set_up.as_secs_f64(),
        crashed.as_secs_f64(),
        recovered.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
