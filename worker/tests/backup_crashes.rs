//! Crash recovery of `store.backup@1` and `store.restore@1` with real `urumi-worker`
//! processes against the Kubernetes API simulator (which emulates the dump and import Jobs):
//! killing the worker at every step boundary and mid-step still ends in the same cluster
//! state as an uncrashed backup or restore, with one archive Job per request — no second
//! backup object for the same request, no double restore.
//!
//! All 22 cases run: each of the 3 backup steps and the 8 restore steps with the worker
//! aborted (by `URUMI_FAILPOINT`) at `after_checkpoint_commit` and at `mid_step`, in the
//! phases of `lifecycle_crashes.rs` (read its module docs for why one armed process at a
//! time): 0. setup with a clean worker — every store provisioned, and each restore case's
//! store backed up once; 1. crash phase, one armed process per case; 2. recovery — the dead
//! leases aged, a reference backup and restore requested, one clean worker finishes all.
//!
//! Then, for every store: its run succeeded; the steps checkpointed before the crash show
//! one attempt; the run was taken over once, from the dead process; a backup's row is
//! complete with a 64-hex checksum and the size its Job reported; a restore's event
//! `store.restored` was written once; the namespace holds exactly one Job of the flow
//! (`store-backup-<id>-1` or `store-restore-<id>-1`) and, with the backup's id and
//! checksum abstracted, exactly the reference's objects.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::Who;
use urumi_engine::{Engine, RunStatus};
use urumi_sim::Simulator;
use urumi_store::backups::{self, BackupReason, BackupStatus};
use urumi_workflows::StoreDeps;
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

use common::cluster::{namespace_state_with, objects_by_namespace, store_worker};
use common::crash::{
    CLEAN_LEASE_MS, DOOMED_LEASE_MS, POINTS, all_runs_ended, assert_crashed_where_armed,
    assert_succeeded, expected_attempts,
};
use common::url_for;

/// The two workflows under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Backup,
    Restore,
}

impl Flow {
    const ALL: [Flow; 2] = [Flow::Backup, Flow::Restore];

    /// The workflow's steps, in order.
    fn steps(self) -> &'static [&'static str] {
        match self {
            Flow::Backup => &["target", "dump", "record"],
            Flow::Restore => &[
                "target",
                "web_down",
                "web_stopped",
                "import",
                "web_up",
                "wordpress_ready",
                "storefront",
                "mark_restored",
            ],
        }
    }

    /// The store name prefix.
    fn short(self) -> &'static str {
        match self {
            Flow::Backup => "bak",
            Flow::Restore => "rst",
        }
    }

    /// The Job prefix of the flow's archive Jobs.
    fn job_prefix(self) -> &'static str {
        match self {
            Flow::Backup => "store-backup-",
            Flow::Restore => "store-restore-",
        }
    }

    /// Requests the workflow's run on `store` (a restore from `backup`); the run and the
    /// backup it concerns.
    async fn request(self, engine: &Engine, store: Uuid, backup: Option<Uuid>) -> (Uuid, Uuid) {
        let mut tx = engine.pool().begin().await.unwrap();
        let who = Who::interactive("tester");
        let r = match self {
            Flow::Backup => service::backup_in(&mut tx, engine, store, BackupReason::Manual, &who)
                .await
                .unwrap(),
            Flow::Restore => {
                service::restore_in(&mut tx, engine, store, backup.expect("a backup"), &who)
                    .await
                    .unwrap()
            }
        };
        tx.commit().await.unwrap();
        (r.requested.run_id, r.backup_id)
    }
}

/// One store, backed up or restored through a crash (or not, for a reference).
struct Case {
    flow: Flow,
    /// `Some((point, step index))`; `None` for the flow's reference store.
    crash: Option<(&'static str, usize)>,
    store: Uuid,
    slug: String,
    /// The case's backup or restore run, once requested.
    run: Option<Uuid>,
    /// The backup it makes (a backup) or restores from (a restore: made at setup).
    backup: Option<Uuid>,
    /// The dead process's worker id, when it left the run leased.
    dead_owner: Option<String>,
}

impl Case {
    fn label(&self) -> String {
        match self.crash {
            Some((point, i)) => format!("{:?} {point}:{}", self.flow, self.flow.steps()[i]),
            None => format!("{:?} reference (no crash)", self.flow),
        }
    }

    fn namespace(&self) -> String {
        format!("store-{}", self.slug)
    }

    fn run(&self) -> Uuid {
        self.run.expect("the run was requested")
    }

    /// The attempts every step must show after recovery ([`expected_attempts`]).
    fn expected_attempts(&self) -> Vec<(String, i32)> {
        expected_attempts(self.flow.steps(), self.crash)
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn killing_the_worker_at_every_backup_and_restore_step_boundary_and_mid_step_ends_in_the_reference_cluster_state_with_one_archive_job_per_request(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let t0 = Instant::now();
    let url = url_for(&connect);
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let settings = StoreSettings::default();
    // This process only starts runs: the store definitions without a cluster client.
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

    // 0. Setup: every store provisioned, each restore case's store backed up, cleanly.
    let mut cases = Vec::new();
    let mut provisions = Vec::new();
    for flow in Flow::ALL {
        let crashes = (0..flow.steps().len())
            .flat_map(|i| POINTS.iter().map(move |(point, short)| (i, *point, *short)));
        let named: Vec<(Option<(&'static str, usize)>, String)> = crashes
            .map(|(i, point, short)| {
                let step = flow.steps()[i].replace('_', "-");
                (Some((point, i)), format!("{}-{short}-{step}", flow.short()))
            })
            .chain([(None, format!("{}-none", flow.short()))])
            .collect();
        for (crash, name) in named {
            let r = service::create(&engine, &settings, &name, "woocommerce", None, "tester")
                .await
                .unwrap();
            provisions.push(r.run_id);
            cases.push(Case {
                flow,
                crash,
                store: r.store.id,
                slug: r.store.slug,
                run: None,
                backup: None,
                dead_owner: None,
            });
        }
    }
    assert_eq!(cases.len(), 2 * (3 + 8) + 2);
    let clean = store_worker(&url, &kubeconfig, None, CLEAN_LEASE_MS);
    all_runs_ended(&pool, "every store provisioned", Duration::from_secs(120)).await;
    for (run, c) in provisions.iter().zip(&cases) {
        assert_succeeded(&engine, *run, &format!("{}: provisioning", c.label())).await;
    }
    let mut setup_backups = Vec::new();
    for c in cases.iter_mut().filter(|c| c.flow == Flow::Restore) {
        let (run, backup) = Flow::Backup.request(&engine, c.store, None).await;
        c.backup = Some(backup);
        setup_backups.push((run, c.label()));
    }
    all_runs_ended(
        &pool,
        "the restore stores backed up",
        Duration::from_secs(90),
    )
    .await;
    for (run, label) in &setup_backups {
        assert_succeeded(&engine, *run, &format!("{label}: the backup before")).await;
    }
    clean.terminate();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );
    let set_up = t0.elapsed();

    // 1. Crash phase: one armed worker process per case, one at a time, and no other worker.
    for c in cases.iter_mut().filter(|c| c.crash.is_some()) {
        let (point, i) = c.crash.unwrap();
        let failpoint = format!("{point}:{}", c.flow.steps()[i]);
        let mut doomed = store_worker(&url, &kubeconfig, Some(&failpoint), DOOMED_LEASE_MS);
        let (run, backup) = c.flow.request(&engine, c.store, c.backup).await;
        c.run = Some(run);
        c.backup = Some(backup);
        let status = doomed.exit_status(Duration::from_secs(60)).await;
        assert!(
            !status.success(),
            "{}: the process aborted: {status}",
            c.label()
        );
        let d = engine.run(c.run()).await.unwrap();
        assert_crashed_where_armed(&c.label(), c.flow.steps(), c.crash.unwrap(), &d);
        c.dead_owner = d.run.lease_owner.clone();
    }
    let crashed = t0.elapsed();

    // 2. Recovery phase: the dead leases expire; one clean worker finishes every run, and
    //    the references' runs beside them.
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
        "every crash but the ones after the last checkpoint left its run leased"
    );
    assert_eq!(in_flight, 2 * (3 + 8) - 2);
    for c in cases.iter_mut().filter(|c| c.crash.is_none()) {
        let (run, backup) = c.flow.request(&engine, c.store, c.backup).await;
        c.run = Some(run);
        c.backup = Some(backup);
    }
    let rescuer = store_worker(&url, &kubeconfig, None, CLEAN_LEASE_MS);
    all_runs_ended(&pool, "every run to end", Duration::from_secs(120)).await;
    let recovered = t0.elapsed();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );

    // The runs: succeeded, checkpoints kept, taken over once from the dead process; the
    // backups recorded, the restores recorded once.
    for c in &cases {
        let d = engine.run(c.run()).await.unwrap();
        assert_eq!(
            d.run.status(),
            RunStatus::Succeeded,
            "{}: {:?}",
            c.label(),
            d.run.error
        );
        let attempts: Vec<(String, i32)> = d
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.attempts))
            .collect();
        assert_eq!(
            attempts,
            c.expected_attempts(),
            "{}: the steps checkpointed before the crash ran once",
            c.label()
        );
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
            "{}: taken over once, from the dead process",
            c.label()
        );
        let backup = backups::get(&pool, c.backup.unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(backup.status, BackupStatus::Complete, "{}", c.label());
        assert_eq!(
            backup.sha256.as_ref().map(String::len),
            Some(64),
            "{}",
            c.label()
        );
        if c.flow == Flow::Backup {
            let dump = d.steps.iter().find(|s| s.name == "dump").unwrap();
            let reported = dump.output.as_ref().unwrap();
            assert_eq!(
                (json!(backup.size_bytes), json!(backup.sha256)),
                (reported["size"].clone(), reported["sha256"].clone()),
                "{}: recorded as its Job reported",
                c.label()
            );
        } else {
            let restored = events.iter().filter(|e| e.kind == "store.restored").count();
            assert_eq!(restored, 1, "{}: one restored event", c.label());
        }
    }

    // The cluster: one archive Job of the flow per store, and the reference's objects.
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let objects = objects_by_namespace(&client).await;
    let mut shas = BTreeMap::new();
    for c in &cases {
        let backup = c.backup.unwrap();
        let b = backups::get(&pool, backup).await.unwrap().unwrap();
        shas.insert(backup, b.sha256);
    }
    let state = |c: &Case| {
        let backup = c.backup.unwrap();
        let sha = shas[&backup].clone();
        let mut extra = vec![
            (backup.to_string(), "<backup-id>"),
            (backup.simple().to_string(), "<backup-id>"),
        ];
        extra.extend(sha.map(|s| (s, "<sha256>")));
        namespace_state_with(&objects, &c.namespace(), c.store, &c.slug, &extra)
    };
    for flow in Flow::ALL {
        let reference = cases
            .iter()
            .find(|c| c.flow == flow && c.crash.is_none())
            .unwrap();
        let want = state(reference);
        for c in cases.iter().filter(|c| c.flow == flow) {
            let jobs: Vec<String> = objects
                .get(&c.namespace())
                .into_iter()
                .flatten()
                .filter(|(k, o)| {
                    k == "Job"
                        && o.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with(flow.job_prefix()))
                })
                .map(|(_, o)| o.metadata.name.clone().unwrap_or_default())
                .collect();
            assert_eq!(
                jobs,
                [format!(
                    "{}{}-1",
                    flow.job_prefix(),
                    c.backup.unwrap().simple()
                )],
                "{}: one {} Job for the request",
                c.label(),
                flow.short()
            );
            let got = state(c);
            let missing: Vec<&String> = want.iter().filter(|o| !got.contains(o)).collect();
            let extra: Vec<&String> = got.iter().filter(|o| !want.contains(o)).collect();
            assert!(
                got == want,
                "{}: not the reference's cluster state;\nmissing: {missing:#?}\nextra: {extra:#?}",
                c.label()
            );
        }
    }

    rescuer.terminate();
    sim.shutdown().await;
    eprintln!(
        "set up by {:.1}s, 22 crashes by {:.1}s, recovered by {:.1}s, checked by {:.1}s",
        set_up.as_secs_f64(),
        crashed.as_secs_f64(),
        recovered.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
