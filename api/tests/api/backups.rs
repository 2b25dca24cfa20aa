//! Backups and restore over HTTP, with a simulator-backed worker: a dry run plans the dump
//! Job and starts nothing; a backup completes with its size and checksum listed; a restore
//! from it brings the store back ready; bad requests (another store's backup, an unknown
//! one, a malformed body, a viewer) are problems that start nothing; a bulk operation backs
//! stores up.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, problem, spawn_app};
use crate::operations::{cluster_worker, wait_for};

async fn runs_of(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE definition = $1")
        .bind(kind)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn backups(app: &TestApp, store: &str) -> Vec<Value> {
    let r = app
        .req(
            Method::GET,
            &format!("/api/v1/stores/{store}/backups"),
            &app.viewer,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_is_backed_up_and_restored_and_bad_restores_change_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = cluster_worker(&pool, &sim).await;
    let mut stores = Vec::new();
    for name in ["Kept Shop", "Other Kept Shop"] {
        let body = app.created(name).await;
        let run = body["run"]["id"].as_str().unwrap().to_owned();
        wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
        stores.push(body["store"]["id"].as_str().unwrap().to_owned());
    }
    let store = &stores[0];
    assert!(backups(&app, store).await.is_empty());

    // A dry run: the plan names the archive's home and the dump Job; nothing started.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/stores/{store}/backups?dry_run=true"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "dry_run", "{body:#}");
    let created: Vec<String> = body["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["change"] == "create")
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        created.contains(&"PersistentVolumeClaim/store-backups".to_owned()),
        "{body:#}"
    );
    assert!(
        created.contains(&"ConfigMap/store-archive".to_owned()),
        "{body:#}"
    );
    assert!(
        created.iter().any(|c| c.starts_with("Job/store-backup-")),
        "{body:#}"
    );
    assert_eq!(runs_of(&app, "store.backup").await, 0);
    assert!(
        backups(&app, store).await.is_empty(),
        "a dry run records no backup"
    );

    // For real: 202 with the run; the backup is listed complete with size and checksum.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/stores/{store}/backups"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run"]["kind"], "store.backup", "{body:#}");
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    let listed = backups(&app, store).await;
    assert_eq!(listed.len(), 1);
    let backup = &listed[0];
    assert_eq!(backup["status"], "complete", "{backup:#}");
    assert_eq!(backup["reason"], "manual");
    assert_eq!(backup["storage"], "pvc");
    assert_eq!(backup["run_id"], run);
    assert!(backup["size_bytes"].as_i64().unwrap() > 0);
    assert_eq!(backup["sha256"].as_str().unwrap().len(), 64);
    let backup_id = backup["id"].as_str().unwrap().to_owned();

    // Bad restores: another store's backup (422), an unknown one (404), a malformed body
    // (400), a viewer (403) — none starts a run.
    let restore = |store: &str, body: Value, token: &str| {
        app.req(
            Method::POST,
            &format!("/api/v1/stores/{store}/restore"),
            token,
        )
        .json(&body)
        .send()
    };
    let p = problem(
        restore(&stores[1], json!({ "backup_id": backup_id }), &app.operator)
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("belongs to another store"),
        "{p}"
    );
    problem(
        restore(
            store,
            json!({ "backup_id": uuid::Uuid::now_v7() }),
            &app.operator,
        )
        .await
        .unwrap(),
        404,
    )
    .await;
    problem(
        restore(store, json!({ "backup": backup_id }), &app.operator)
            .await
            .unwrap(),
        400,
    )
    .await;
    problem(
        restore(store, json!({ "backup_id": backup_id }), &app.viewer)
            .await
            .unwrap(),
        403,
    )
    .await;
    assert_eq!(runs_of(&app, "store.restore").await, 0);

    // The restore: 202, the store ready again afterwards.
    let r = restore(store, json!({ "backup_id": backup_id }), &app.operator)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run"]["kind"], "store.restore", "{body:#}");
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    wait_for(&app, &format!("/api/v1/stores/{store}"), "status", "ready").await;

    // A bulk operation backs both stores up.
    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&json!({ "action": "backup", "selector": { "store_ids": stores } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let op: Value = r.json().await.unwrap();
    let op_id = op["operation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{op:#}"));
    wait_for(
        &app,
        &format!("/api/v1/operations/{op_id}"),
        "state",
        "succeeded",
    )
    .await;
    for (s, count) in stores.iter().zip([2, 1]) {
        let listed = backups(&app, s).await;
        assert_eq!(listed.len(), count, "{listed:#?}");
        assert_eq!(listed[0]["status"], "complete", "{listed:#?}");
    }
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}
