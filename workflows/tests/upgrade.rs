//! `store.upgrade@1` against the simulator: a store provisioned on `stable` 2026.11 is
//! upgraded when the channel moves to 2026.12 — a complete `pre_upgrade` backup, the new
//! pins in its workloads, the new release recorded, `ready`. When the update Job fails, the
//! rollback steps put the old pins back and restore the pre-upgrade backup (the restore Job
//! is given its checksum), the run fails saying why, and the store is `ready` on its old
//! release. A rollback whose restore Job fails once runs a second and ends the same way; one
//! whose restore never succeeds fails the run at `rollback_db` and the store is `failed`
//! (`ready` again while an operator's retry resumes it). Bad requests (unknown channel, a
//! store that is not ready, already current) change nothing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunDetail, RunStatus};
use urumi_sim::JobScript;
use urumi_store::backups::{self, BackupReason, BackupStatus};
use urumi_store::settings::{Channel, Pins, StoreSettings};
use urumi_store::upgrades::{self, Upgrade};
use urumi_workflows::store::service::{self, Error};
use uuid::Uuid;

const NEW_WORDPRESS: &str = "wordpress:6.9.0-php8.3-apache";
const NEW_WP_CLI: &str = "wordpress:cli-2.12.0-php8.4";

/// `settings` with `stable` moved on to 2026.12 (new WordPress and WP-CLI images, a newer
/// WooCommerce; MariaDB unchanged).
fn moved_on(settings: &StoreSettings) -> StoreSettings {
    let mut s = settings.clone();
    let old = settings.image_pins();
    s.channels = BTreeMap::from([(
        "stable".to_owned(),
        Channel {
            version: "2026.12".into(),
            pins: Pins {
                wordpress: NEW_WORDPRESS.into(),
                wp_cli: NEW_WP_CLI.into(),
                woocommerce: "10.4.0".into(),
                mariadb: old.mariadb,
            },
        },
    )]);
    s
}

/// Waits (90 s at most) for `run` to end.
async fn ended(engine: &Engine, run: Uuid) -> RunDetail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let d = engine.run(run).await.unwrap();
        if !d.run.status().is_active() {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ended: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn output(d: &RunDetail, step: &str) -> Value {
    d.steps
        .iter()
        .find(|s| s.name == step)
        .and_then(|s| s.output.clone())
        .unwrap_or_else(|| panic!("no output for {step}: {d:#?}"))
}

async fn images(client: &kube::Client, ns: &str) -> (String, String) {
    let web = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("wordpress")
        .await
        .unwrap();
    let pod = web.spec.unwrap().template.spec.unwrap();
    let init = pod.init_containers.unwrap()[0].image.clone().unwrap();
    let main = pod.containers[0].image.clone().unwrap();
    assert_eq!(init, main, "core is synced from the image Apache runs");
    let db = Api::<StatefulSet>::namespaced(client.clone(), ns)
        .get("mariadb")
        .await
        .unwrap();
    let db_image = db.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap();
    (main, db_image)
}

/// A rig whose worker serves `stable` at 2026.12, with a store provisioned at 2026.11.
struct Upgraded {
    rig: common::SimRig,
    settings: StoreSettings,
    store: Uuid,
}

async fn store_behind(connect: PgConnectOptions, name: &str) -> Upgraded {
    let mut rig = common::sim_rig(connect, "upgrade-test").await;
    let created = service::create(&rig.engine, &rig.settings, name, "woocommerce", None, "t")
        .await
        .unwrap();
    common::succeeded(&rig.engine, created.run_id).await;
    assert_eq!(created.store.channel, "stable");
    assert_eq!(created.store.version.as_deref(), Some("2026.11"));
    // The channel moves on: a worker (and a request side) with the new settings.
    let settings = moved_on(&rig.settings);
    let worker = std::mem::replace(
        &mut rig.worker,
        common::store_worker(&rig.pool, rig.client.clone(), &settings, "upgrade-test-2")
            .await
            .1,
    );
    worker.shutdown().await.unwrap();
    Upgraded {
        rig,
        settings,
        store: created.store.id,
    }
}

async fn upgrade(u: &Upgraded, channel: Option<&str>) -> Result<Upgrade, Error> {
    let mut tx = u.rig.pool.begin().await.unwrap();
    let out = upgrades::upgrade_in(
        &mut tx,
        &u.rig.engine,
        &u.settings,
        u.store,
        channel,
        &urumi_engine::Who::interactive("t"),
    )
    .await;
    tx.commit().await.unwrap();
    out
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_is_upgraded_to_its_channels_new_release_after_a_pre_upgrade_backup(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let u = store_behind(connect, "Fresh Paint").await;
    let (client, engine) = (&u.rig.client, &u.rig.engine);
    let ns = "store-fresh-paint";
    let old = u.rig.settings.image_pins();
    assert_eq!(
        images(client, ns).await,
        (old.wordpress.clone(), old.mariadb.clone())
    );

    let Upgrade::Started {
        requested,
        backup_id,
        target,
    } = upgrade(&u, None).await.unwrap()
    else {
        panic!("the store is behind its channel")
    };
    assert_eq!(
        (target.channel.as_str(), target.version.as_str()),
        ("stable", "2026.12")
    );
    let d = common::succeeded(engine, requested.run_id).await;

    let backup = backups::get(&u.rig.pool, backup_id).await.unwrap().unwrap();
    assert_eq!(backup.reason, BackupReason::PreUpgrade);
    assert_eq!(backup.status, BackupStatus::Complete);
    assert_eq!(backup.run_id, requested.run_id);
    assert_eq!(
        images(client, ns).await,
        (NEW_WORDPRESS.into(), old.mariadb.clone())
    );
    let update = output(&d, "update_db");
    assert_eq!(update["job"], "store-upgrade-1");
    assert_eq!(update["wordpress"], "6.9.0");
    assert_eq!(update["woocommerce"], "10.4.0");
    let job = Api::<Job>::namespaced(client.clone(), ns)
        .get("store-upgrade-1")
        .await
        .unwrap();
    assert_eq!(
        job.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some(NEW_WP_CLI),
        "the update runs the new release's WP-CLI"
    );
    for step in [
        "rollback_pins",
        "rollback_db",
        "rollback_ready",
        "rollback_storefront",
    ] {
        assert_eq!(
            output(&d, step),
            json!({ "skipped": "upgrade succeeded" }),
            "{step}"
        );
    }
    let changes = output(&d, "apply_pins")["changes"].clone();
    let changed: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pin"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["wordpress", "wp_cli", "woocommerce"]);

    let store = urumi_store::db::get(&u.rig.pool, u.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status.as_str(), "ready");
    assert_eq!(store.version.as_deref(), Some("2026.12"));
    assert_eq!(
        store.pins.map(|p| p.0),
        Some(u.settings.channel(None).unwrap().1.pins)
    );
    // Now current: asking again starts nothing, and a repair keeps the new pins.
    assert!(matches!(
        upgrade(&u, None).await.unwrap(),
        Upgrade::Already(_)
    ));
    let repair = service::repair(engine, u.store, "t").await.unwrap();
    common::succeeded(engine, repair.run_id).await;
    assert_eq!(images(client, ns).await.0, NEW_WORDPRESS);
    u.rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_failed_update_job_rolls_back_pins_and_database_and_the_store_stays_ready_on_its_release(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let u = store_behind(connect, "Old Faithful").await;
    let (client, engine) = (&u.rig.client, &u.rig.engine);
    let ns = "store-old-faithful";
    u.rig.sim.script_job(
        Some(ns),
        "store-upgrade-",
        JobScript::fail(
            "Error: WooCommerce database update failed: table wp_wc_orders is locked\n",
        ),
    );
    let Upgrade::Started {
        requested,
        backup_id,
        ..
    } = upgrade(&u, None).await.unwrap()
    else {
        panic!("the store is behind its channel")
    };
    let d = ended(engine, requested.run_id).await;
    assert_eq!(d.run.status(), RunStatus::Failed, "{d:#?}");
    let error = d.run.error.clone().unwrap();
    assert!(
        error.contains(
            "step \"finish\" failed: upgrade to stable 2026.12 rolled back: update_db: update Job store-upgrade-1 failed"
        ) && error.contains("wp_wc_orders is locked"),
        "{error}"
    );
    assert_eq!(
        output(&d, "storefront"),
        json!({ "skipped": "update_db failed" })
    );
    assert_eq!(output(&d, "rollback_pins")["web_stopped_for_restore"], true);
    assert_eq!(output(&d, "rollback_ready")["ready"], true);
    assert!(
        output(&d, "rollback_storefront")
            .get("storefront")
            .is_some()
    );

    // The database: the pre-upgrade backup, restored by a restore Job given its checksum.
    let backup = backups::get(&u.rig.pool, backup_id).await.unwrap().unwrap();
    assert_eq!(
        backup.status,
        BackupStatus::Complete,
        "a rollback keeps the backup"
    );
    let sha = backup.sha256.unwrap();
    let restored = output(&d, "rollback_db");
    assert_eq!(restored["sha256"], sha.as_str());
    let restores = Api::<Job>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("urumi.io/job=restore"))
        .await
        .unwrap()
        .items;
    assert_eq!(restores.len(), 1);
    let env = restores[0].spec.clone().unwrap().template.spec.unwrap();
    let expect: Vec<String> = env
        .containers
        .iter()
        .chain(env.init_containers.iter().flatten())
        .flat_map(|c| c.env.clone().unwrap_or_default())
        .filter(|e| e.name == "EXPECT_SHA256")
        .filter_map(|e| e.value)
        .collect();
    assert!(expect.contains(&sha), "{expect:?} vs {sha}");

    // The workloads and the record: the old release.
    let old = u.rig.settings.image_pins();
    assert_eq!(images(client, ns).await, (old.wordpress, old.mariadb));
    let web = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("wordpress")
        .await
        .unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(1), "the web tier is back");
    let store = urumi_store::db::get(&u.rig.pool, u.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status.as_str(), "ready");
    assert_eq!(store.version.as_deref(), Some("2026.11"));
    u.rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_unknown_channel_or_a_store_that_is_not_ready_is_refused_and_nothing_changes(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let u = store_behind(connect, "Picky Shop").await;
    let runs = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM urumi.runs")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = runs(u.rig.pool.clone()).await;
    let e = upgrade(&u, Some("nightly")).await.unwrap_err();
    assert!(
        matches!(&e, Error::UnknownChannel(m) if m.contains("known channels: stable")),
        "{e}"
    );
    let suspended = service::suspend(&u.rig.engine, u.store, "t").await.unwrap();
    let service::Lifecycle::Started(s) = suspended else {
        panic!("a ready store is suspended")
    };
    common::succeeded(&u.rig.engine, s.run_id).await;
    let before_suspended = runs(u.rig.pool.clone()).await;
    assert_eq!(before_suspended, before + 1);
    let e = upgrade(&u, None).await.unwrap_err();
    assert!(matches!(e, Error::WrongStatus { .. }), "{e}");
    assert_eq!(runs(u.rig.pool.clone()).await, before_suspended);
    let backups: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.store_backups")
        .fetch_one(&u.rig.pool)
        .await
        .unwrap();
    assert_eq!(backups, 0, "a refused upgrade records no backup");
    let store = urumi_store::db::get(&u.rig.pool, u.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.version.as_deref(), Some("2026.11"));
    u.rig.stop().await;
}

/// Runs an upgrade whose update Job fails; `restore` scripts the rollback's restore Jobs,
/// given the name prefix of the pre-upgrade backup's restore Jobs (`store-restore-<id>-`),
/// before the run can start. Answers the ended run.
async fn rolled_back_with_restore(
    u: &Upgraded,
    ns: &str,
    restore: impl FnOnce(&str) -> (String, JobScript),
) -> RunDetail {
    u.rig.sim.script_job(
        Some(ns),
        "store-upgrade-",
        JobScript::fail("Error: WooCommerce database update failed\n"),
    );
    let mut tx = u.rig.pool.begin().await.unwrap();
    let started = upgrades::upgrade_in(
        &mut tx,
        &u.rig.engine,
        &u.settings,
        u.store,
        None,
        &urumi_engine::Who::interactive("t"),
    )
    .await
    .unwrap();
    let Upgrade::Started {
        requested,
        backup_id,
        ..
    } = started
    else {
        panic!("the store is behind its channel")
    };
    let (prefix, script) = restore(&format!("store-restore-{}-", backup_id.simple()));
    u.rig.sim.script_job(Some(ns), &prefix, script);
    tx.commit().await.unwrap();
    ended(&u.rig.engine, requested.run_id).await
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_rollback_whose_restore_job_fails_once_retries_it_and_the_store_ends_ready_on_its_release(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let u = store_behind(connect, "Second Try").await;
    let ns = "store-second-try";
    // The first restore Job fails; the next is the simulator's emulated restore.
    let d = rolled_back_with_restore(&u, ns, |jobs| {
        let log = "restore: mariadb: ERROR 2013: Lost connection\n";
        (format!("{jobs}1"), JobScript::fail(log))
    })
    .await;
    assert_eq!(d.run.status(), RunStatus::Failed, "{d:#?}");
    let error = d.run.error.clone().unwrap();
    assert!(error.contains("rolled back"), "{error}");
    // The rollback's restore step ran twice: its first Job failed, a second one succeeded.
    let step = d.steps.iter().find(|s| s.name == "rollback_db").unwrap();
    assert_eq!(step.attempts, 2, "{d:#?}");
    let restores = Api::<Job>::namespaced(u.rig.client.clone(), ns)
        .list(&ListParams::default().labels("urumi.io/job=restore"))
        .await
        .unwrap()
        .items;
    assert_eq!(
        restores.len(),
        2,
        "a failed Job stays; the retry ran another"
    );
    let store = urumi_store::db::get(&u.rig.pool, u.store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (store.status.as_str(), store.version.as_deref()),
        ("ready", Some("2026.11"))
    );
    let old = u.rig.settings.image_pins();
    assert_eq!(
        images(&u.rig.client, ns).await,
        (old.wordpress, old.mariadb)
    );
    u.rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_rollback_whose_restore_never_succeeds_fails_the_run_at_that_step_and_the_store(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let u = store_behind(connect, "No Way Back").await;
    let ns = "store-no-way-back";
    let d = rolled_back_with_restore(&u, ns, |jobs| {
        let log = "restore: checksum mismatch: the archive is damaged\n";
        (jobs.to_owned(), JobScript::fail(log))
    })
    .await;
    assert_eq!(d.run.status(), RunStatus::Failed, "{d:#?}");
    let error = d.run.error.clone().unwrap();
    assert!(
        error.contains("rollback_db") && error.contains("checksum mismatch"),
        "the run names the rollback step and the Job's log: {error}"
    );
    let step = d.steps.iter().find(|s| s.name == "rollback_db").unwrap();
    assert!(step.attempts > 1, "retried before giving up: {d:#?}");
    let later: Vec<(&str, i32)> = d
        .steps
        .iter()
        .skip_while(|s| s.name != "rollback_db")
        .skip(1)
        .map(|s| (s.name.as_str(), s.attempts))
        .collect();
    assert!(
        later.iter().all(|(_, attempts)| *attempts == 0),
        "nothing after the failed rollback step ran: {later:?}"
    );
    // On neither release (the web tier down, the database migrated): the store is failed.
    let status = async || {
        let s = urumi_store::db::get(&u.rig.pool, u.store)
            .await
            .unwrap()
            .unwrap();
        (s.status.as_str().to_owned(), s.version)
    };
    assert_eq!(
        status().await,
        ("failed".to_owned(), Some("2026.11".into()))
    );
    // An operator's retry resumes the rollback: ready again meanwhile, failed again when the
    // restore fails again.
    let run = d.run.id;
    u.rig.engine.retry_run(run, "t").await.unwrap();
    assert_eq!(status().await.0, "ready");
    let again = ended(&u.rig.engine, run).await;
    assert_eq!(again.run.status(), RunStatus::Failed, "{again:#?}");
    assert_eq!(status().await.0, "failed");
    u.rig.stop().await;
}
