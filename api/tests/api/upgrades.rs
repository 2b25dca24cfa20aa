//! Store upgrades over HTTP: `GET /api/v1/channels` lists the channels and the version
//! spread; with a simulator-backed worker a store created on `stable` is upgraded onto
//! `edge` (a dry run first: the images that change and the update Job, nothing started), and
//! the spread follows; asking again answers `already`; an unknown channel is a 422 naming the
//! known ones, a viewer is refused, and neither starts anything.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use urumi_engine::{Worker, WorkerOptions};
use urumi_store::settings::{Channel, Pins, StoreSettings};

use crate::helpers::{TestApp, problem, spawn_app_with};
use crate::operations::wait_for;

/// The default settings plus a channel `edge` at 2026.12 with a newer WordPress.
pub(crate) fn with_edge() -> StoreSettings {
    let mut s = StoreSettings::default();
    let stable = s.channel(None).unwrap().1;
    s.channels = BTreeMap::from([
        ("stable".to_owned(), stable.clone()),
        (
            "edge".to_owned(),
            Channel {
                version: "2026.12".into(),
                pins: Pins {
                    wordpress: "wordpress:6.9.0-php8.3-apache".into(),
                    woocommerce: "10.4.0".into(),
                    ..stable.pins
                },
            },
        ),
    ]);
    s
}

/// A worker of the store workflows and `operation@1` on `settings`, against `sim`.
pub(crate) async fn worker_with(
    pool: &PgPool,
    sim: &urumi_sim::SimHandle,
    settings: StoreSettings,
) -> urumi_engine::WorkerHandle {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let stores = std::sync::Arc::new(settings.clone());
    let deps = std::sync::Arc::new(urumi_workflows::StoreDeps {
        settings,
        pool: pool.clone(),
        client: Some(client),
    });
    let registry = urumi_workflows::registry(Some(&deps)).unwrap();
    let registry = urumi_ops::with_code(pool.clone(), &registry, stores).unwrap();
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    Worker::new(pool.clone(), registry, options)
        .start()
        .await
        .unwrap()
}

async fn upgrade(
    app: &TestApp,
    store: &str,
    query: &str,
    body: Value,
    token: &str,
) -> reqwest::Response {
    app.req(
        Method::POST,
        &format!("/api/v1/stores/{store}/upgrade{query}"),
        token,
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

async fn upgrade_runs(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE definition = 'store.upgrade'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_is_upgraded_onto_another_channel_and_the_version_spread_follows(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.stores = with_edge()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = worker_with(&pool, &sim, with_edge()).await;

    let channels: Value = app.get("/api/v1/channels").await.json().await.unwrap();
    let names: Vec<(&str, bool)> = channels["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["default"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("edge", false), ("stable", true)]);
    assert_eq!(channels["items"][0]["version"], "2026.12");
    assert_eq!(channels["versions"], json!([]));

    let body = app.created("Rolling Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["store"]["channel"], "stable");
    assert_eq!(body["store"]["version"], "2026.11");
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;

    // A dry run: the web tier's image changes and the update Job would be created.
    let r = upgrade(
        &app,
        &store,
        "?dry_run=true",
        json!({ "channel": "edge" }),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await.unwrap();
    assert_eq!(plan["not_started"], "dry_run", "{plan:#}");
    assert_eq!(plan["cluster_plan"]["state"], "ready", "{plan:#}");
    let objects: Vec<String> = plan["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["change"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        objects.contains(&"update Deployment/wordpress".to_owned()),
        "{objects:?}"
    );
    assert!(
        objects.contains(&"create Job/store-upgrade-1".to_owned()),
        "{objects:?}"
    );
    assert!(
        !objects.iter().any(|o| o.contains("StatefulSet")),
        "MariaDB's pin is the same: {objects:?}"
    );
    assert_eq!(upgrade_runs(&app).await, 0);

    let r = upgrade(
        &app,
        &store,
        "",
        json!({ "channel": "edge" }),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run"]["kind"], "store.upgrade", "{body:#}");
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    let shown: Value = app
        .get(&format!("/api/v1/stores/{store}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["channel"].as_str(), shown["version"].as_str()),
        (Some("edge"), Some("2026.12"))
    );
    let channels: Value = app.get("/api/v1/channels").await.json().await.unwrap();
    assert_eq!(
        channels["versions"],
        json!([{ "channel": "edge", "version": "2026.12", "stores": 1, "current": true }])
    );

    // Already there: 200 `already`, nothing started.
    let r = upgrade(
        &app,
        &store,
        "",
        json!({ "channel": "edge" }),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "already");
    assert_eq!(upgrade_runs(&app).await, 1);
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_unknown_channel_a_store_not_ready_and_a_viewer_are_refused_and_start_nothing(
    pool: PgPool,
) {
    let app = spawn_app_with(pool.clone(), |s| s.stores = with_edge()).await;
    let body = app.created("Waiting Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();

    let r = upgrade(
        &app,
        &store,
        "",
        json!({ "channel": "nightly" }),
        &app.operator,
    )
    .await;
    let p = problem(r, 422).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("known channels: edge, stable"),
        "{p:#}"
    );
    // Still provisioning (no worker here): not ready.
    let r = upgrade(&app, &store, "", json!({}), &app.operator).await;
    let p = problem(r, 409).await;
    assert!(
        p["detail"].as_str().unwrap().contains("provisioning"),
        "{p:#}"
    );
    let r = upgrade(&app, &store, "", json!({}), &app.viewer).await;
    problem(r, 403).await;
    assert_eq!(upgrade_runs(&app).await, 0);
    let backups: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.store_backups")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(backups, 0);
}
