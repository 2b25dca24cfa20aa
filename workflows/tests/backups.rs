//! `store.backup@1` and `store.restore@1` against the simulator (which emulates the dump and
//! import Jobs: `sim/src/lifecycle.rs`): a backup is recorded complete with the archive's
//! size and checksum from its Job; retention prunes the oldest complete backups (the next
//! Job is told which); a restore takes the web tier down, imports with the recorded
//! checksum, and brings the store back with its storefront answering. Refused requests
//! (another store's backup, a pruned one, a suspended store) change nothing; a dump Job that
//! fails every attempt fails the run and marks its backup failed.

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim};
use kube::{Api, Client};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunStatus, Who};
use urumi_sim::JobScript;
use urumi_store::backups::{self, BackupReason, BackupStatus};
use urumi_workflows::store::service::{self, BackupRequested};
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

async fn backup(engine: &Engine, id: Uuid) -> BackupRequested {
    let mut tx = engine.pool().begin().await.unwrap();
    let r = service::backup_in(
        &mut tx,
        engine,
        id,
        BackupReason::Manual,
        &Who::interactive("t"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    r
}

async fn restore(
    engine: &Engine,
    id: Uuid,
    backup: Uuid,
) -> Result<BackupRequested, service::Error> {
    let mut tx = engine.pool().begin().await.unwrap();
    let r = service::restore_in(&mut tx, engine, id, backup, &Who::interactive("t")).await;
    tx.commit().await.unwrap();
    r
}

fn env_of(job: &Job, name: &str) -> Option<String> {
    let pod = job.spec.as_ref()?.template.spec.as_ref()?;
    pod.containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

async fn runs(engine: &Engine) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM urumi.runs")
        .fetch_one(engine.pool())
        .await
        .unwrap()
}

async fn rig(
    connect: PgConnectOptions,
    settings: StoreSettings,
    name: &str,
) -> (common::SimRig, Client) {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let (engine, worker) = common::store_worker(&pool, client.clone(), &settings, name).await;
    (
        common::SimRig {
            pool,
            sim,
            client: client.clone(),
            settings,
            engine,
            worker,
        },
        client,
    )
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn backups_are_recorded_pruned_by_retention_and_a_store_is_restored_from_its_own(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let mut settings = StoreSettings::default();
    settings.plans.get_mut("starter").unwrap().backups.retention = 2;
    let (rig, client) = rig(connect, settings, "backups-test").await;
    let (engine, settings) = (&rig.engine, &rig.settings);
    let created = service::create(engine, settings, "Safe Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(engine, created.run_id).await;
    let ns = "store-safe-shop";
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);

    // Three backups, one after the other; retention keeps two complete ones.
    let mut made = Vec::new();
    for _ in 0..3 {
        let r = backup(engine, id).await;
        common::succeeded(engine, r.requested.run_id).await;
        made.push(r.backup_id);
    }
    let first = backups::get(engine.pool(), made[0]).await.unwrap().unwrap();
    assert_eq!(first.status, BackupStatus::Pruned, "{first:?}");
    assert!(first.pruned_at.is_some());
    for b in &made[1..] {
        let b = backups::get(engine.pool(), *b).await.unwrap().unwrap();
        assert_eq!(b.status, BackupStatus::Complete, "{b:?}");
        assert_eq!(b.storage.as_deref(), Some("pvc"));
        let sha = b.sha256.clone().unwrap();
        assert_eq!(sha.len(), 64, "{sha}");
        assert!(b.size_bytes.unwrap() > 0);
        assert!(b.completed_at.is_some());
    }
    // The third backup's Job was told to prune the first archive, and only it.
    let third_job = jobs
        .get(&format!("store-backup-{}-1", made[2].simple()))
        .await
        .unwrap();
    assert_eq!(env_of(&third_job, "PRUNE"), Some(made[0].to_string()));
    assert_eq!(env_of(&third_job, "BACKUP_ID"), Some(made[2].to_string()));
    assert_eq!(
        env_of(
            &jobs
                .get(&format!("store-backup-{}-1", made[1].simple()))
                .await
                .unwrap(),
            "PRUNE"
        ),
        Some(String::new()),
        "the second backup prunes nothing: two complete ones fit"
    );
    assert!(
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .get_opt("store-backups")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt("store-archive")
            .await
            .unwrap()
            .is_some()
    );
    let listed = backups::of_store(engine.pool(), id, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|b| b.id).collect::<Vec<_>>(),
        [made[2], made[1], made[0]],
        "newest first"
    );

    // A restore from the second backup: the import Job gets its recorded checksum, the web
    // tier comes back, the store is ready and an event says what was restored.
    let chosen = backups::get(engine.pool(), made[1]).await.unwrap().unwrap();
    let r = restore(engine, id, made[1]).await.unwrap();
    let done = common::succeeded(engine, r.requested.run_id).await;
    let steps: Vec<&str> = done.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        [
            "target",
            "web_down",
            "web_stopped",
            "import",
            "web_up",
            "wordpress_ready",
            "storefront",
            "mark_restored"
        ]
    );
    let import = jobs
        .get(&format!("store-restore-{}-1", made[1].simple()))
        .await
        .unwrap();
    assert_eq!(env_of(&import, "EXPECT_SHA256"), chosen.sha256);
    let web = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("wordpress")
        .await
        .unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(1));
    let restored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM urumi.events WHERE run_id = $1 AND kind = 'store.restored'
           AND detail->>'backup' = $2",
    )
    .bind(r.requested.run_id)
    .bind(made[1].to_string())
    .fetch_one(engine.pool())
    .await
    .unwrap();
    assert_eq!(restored, 1);
    let store = urumi_store::db::get(engine.pool(), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status.as_str(), "ready");

    // Refused, nothing started: a pruned backup; another store's backup; an unknown one.
    let before = runs(engine).await;
    let err = restore(engine, id, made[0]).await.unwrap_err();
    assert!(
        matches!(err, service::Error::BackupNotRestorable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pruned"), "{err}");
    let other = service::create(engine, settings, "Other Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    common::succeeded(engine, other.run_id).await;
    let before = before + 1;
    let err = restore(engine, other.store.id, made[1]).await.unwrap_err();
    assert!(
        matches!(err, service::Error::BackupOfAnotherStore { .. }),
        "{err}"
    );
    let err = restore(engine, id, Uuid::now_v7()).await.unwrap_err();
    assert!(
        matches!(err, service::Error::BackupNotFound { .. }),
        "{err}"
    );
    assert_eq!(runs(engine).await, before, "no run was started");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_backup_whose_dump_always_fails_fails_its_run_and_is_marked_failed(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (rig, _client) = rig(connect, StoreSettings::default(), "backups-fail").await;
    let (engine, settings, sim) = (&rig.engine, &rig.settings, &rig.sim);
    let created = service::create(engine, settings, "Frail Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(engine, created.run_id).await;
    // Every dump Job of this store fails (each attempt is a Job of its own: the prefix
    // covers them all).
    sim.script_job(
        Some("store-frail-shop"),
        "store-backup-",
        JobScript::fail("mariadb-dump: Got error: 2002: Can't connect to server\n"),
    );
    let r = backup(engine, id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let detail = loop {
        let d = engine.run(r.requested.run_id).await.unwrap();
        if !d.run.status().is_active() {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "{d:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail.run.status(), RunStatus::Failed, "{detail:#?}");
    let dump = detail.steps.iter().find(|s| s.name == "dump").unwrap();
    let error = dump.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("Can't connect"),
        "the log tail is shown: {error}"
    );
    let b = backups::get(engine.pool(), r.backup_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.status, BackupStatus::Failed, "{b:?}");
    assert_eq!(b.sha256, None);

    // A suspended store is not backed up: its database is not running.
    let run = match service::suspend(engine, id, "t").await.unwrap() {
        service::Lifecycle::Started(r) => r.run_id,
        service::Lifecycle::Unchanged(_) => panic!("a ready store is suspended"),
    };
    common::succeeded(engine, run).await;
    let mut tx = engine.pool().begin().await.unwrap();
    let err = service::backup_in(
        &mut tx,
        engine,
        id,
        BackupReason::Manual,
        &Who::interactive("t"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, service::Error::WrongStatus { .. }), "{err}");
    assert!(err.to_string().contains("resume it first"), "{err}");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_scheduled_run_backs_up_every_ready_store_of_its_plan_and_skips_a_busy_one(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    use urumi_engine::NewRun;
    use urumi_store::scheduled_backups::{
        SCHEDULED_BACKUPS, ScheduledBackupsInput, ScheduledBackupsOutput, actor, subject,
    };
    let (rig, _client) = rig(connect, StoreSettings::default(), "backups-scheduled").await;
    let (engine, settings) = (&rig.engine, &rig.settings);
    let mut ids = Vec::new();
    for name in ["Night One", "Night Two", "Night Busy"] {
        let c = service::create(engine, settings, name, "woocommerce", None, "t")
            .await
            .unwrap();
        common::succeeded(engine, c.run_id).await;
        ids.push(c.store.id);
    }
    // The third store is busy: a backup of its own is under way (its dump never ends).
    rig.sim.script_job(
        Some("store-night-busy"),
        "store-backup-",
        JobScript::fail("mariadb-dump: interrupted\n"),
    );
    let busy = backup(engine, ids[2]).await;
    let run = engine
        .start_run(NewRun::new(
            SCHEDULED_BACKUPS,
            subject("starter"),
            serde_json::json!(ScheduledBackupsInput {
                plan: "starter".into()
            }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(engine, run.run_id).await;
    let out: ScheduledBackupsOutput = serde_json::from_value(d.run.output.unwrap()).unwrap();
    let mut started: Vec<Uuid> = out.started.iter().map(|s| s.store_id).collect();
    started.sort();
    assert_eq!(started, ids[..2], "{out:#?}");
    assert_eq!(out.skipped.len(), 1, "{out:#?}");
    assert_eq!(out.skipped[0].store_id, ids[2]);
    assert!(out.skipped[0].why.contains("active run"), "{out:#?}");
    for s in &out.started {
        common::succeeded(engine, s.run_id).await;
        let b = backups::get(engine.pool(), s.backup_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.status, BackupStatus::Complete, "{b:?}");
        assert_eq!(b.reason, BackupReason::Scheduled);
        assert_eq!(b.requested_by, actor(run.run_id));
        let lane: String = sqlx::query_scalar("SELECT lane FROM urumi.runs WHERE id = $1")
            .bind(s.run_id)
            .fetch_one(engine.pool())
            .await
            .unwrap();
        assert_eq!(
            lane, "bulk",
            "scheduled backups leave customers their share"
        );
    }
    assert_ne!(busy.backup_id, Uuid::nil());
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn with_s3_storage_the_keys_go_to_a_secret_and_the_jobs_stage_the_archive_for_the_bucket(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    use k8s_openapi::api::core::v1::Secret;
    use urumi_workflows::store::settings::{BackupStorage, S3Settings};
    let mut settings = StoreSettings::default();
    settings.backups.storage = BackupStorage::S3;
    settings.backups.s3 = Some(S3Settings {
        endpoint: "http://s3.example:9000".into(),
        bucket: "shops".into(),
        region: "eu-west-1".into(),
        prefix: "stores".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        secret_access_key: "secret".into(),
    });
    let (rig, client) = rig(connect, settings, "backups-s3").await;
    let (engine, settings) = (&rig.engine, &rig.settings);
    let created = service::create(engine, settings, "Cloud Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(engine, created.run_id).await;
    let ns = "store-cloud-shop";
    let r = backup(engine, id).await;
    common::succeeded(engine, r.requested.run_id).await;
    let b = backups::get(engine.pool(), r.backup_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b.status, b.storage.as_deref()),
        (BackupStatus::Complete, Some("s3"))
    );
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get("backup-s3")
        .await
        .unwrap();
    let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    assert!(
        Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .get_opt("store-backups")
            .await
            .unwrap()
            .is_none(),
        "no backup volume with S3 storage"
    );
    let job = Api::<Job>::namespaced(client.clone(), ns)
        .get(&format!("store-backup-{}-1", r.backup_id.simple()))
        .await
        .unwrap();
    assert_eq!(
        env_of(&job, "S3_URL"),
        Some(format!("http://s3.example:9000/shops/stores/{id}"))
    );
    let restore = restore(engine, id, r.backup_id).await.unwrap();
    common::succeeded(engine, restore.requested.run_id).await;
    rig.stop().await;
}
