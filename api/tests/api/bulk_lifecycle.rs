//! Resize and upgrade in bulk over HTTP: with a simulator-backed worker (store workflows and
//! `operation@1`), one operation moves two ready stores to another plan (after one to a plan
//! they do not fit skipped each, saying why) and another upgrades them onto another channel;
//! asking again skips every store, saying why. A resize
//! without a plan, an unknown plan or channel, or a parameter of another action is a 422
//! naming the field, and creates nothing.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use urumi_store::settings::{Plan, StoreSettings};

use crate::helpers::{TestApp, problem, spawn_app_with};
use crate::operations::wait_for;
use crate::upgrades::{with_edge, worker_with};

/// Channels `stable` and `edge`; plans `starter`, a larger `business`, and `bigdb` (a larger
/// database volume, which no store can move to).
fn settings() -> StoreSettings {
    let mut s = with_edge();
    s.plans.insert(
        "business".to_owned(),
        Plan {
            pods: "20".into(),
            requests_cpu: "2".into(),
            requests_memory: "3Gi".into(),
            limits_cpu: "4".into(),
            limits_memory: "6Gi".into(),
            pvcs: "6".into(),
            requests_storage: "40Gi".into(),
            wp_storage: "10Gi".into(),
            ..Plan::default()
        },
    );
    // A store cannot move here: its database volume's size is fixed when it is made.
    s.plans.insert(
        "bigdb".to_owned(),
        Plan {
            db_storage: "10Gi".into(),
            ..Plan::default()
        },
    );
    s
}

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates the operation, waits for it to succeed, and answers its targets.
async fn carried_out(app: &TestApp, body: Value) -> Vec<Value> {
    let r = create(app, body.clone()).await;
    assert_eq!(r.status(), 201, "{body} → {}", r.text().await.unwrap());
    let op: Value = r.json().await.unwrap();
    let id = op["operation"]["id"].as_str().unwrap().to_owned();
    wait_for(
        app,
        &format!("/api/v1/operations/{id}"),
        "state",
        "succeeded",
    )
    .await;
    let targets: Value = app
        .get(&format!("/api/v1/operations/{id}/targets"))
        .await
        .json()
        .await
        .unwrap();
    targets["items"].as_array().unwrap().clone()
}

/// Asserts every target ended `state`, and for a skipped one that its reason `says` so.
fn assert_all(targets: &[Value], state: &str, says: &str) {
    assert_eq!(targets.len(), 2, "{targets:#?}");
    for t in targets {
        assert_eq!(t["state"], state, "{t:#}");
        if state == "skipped" {
            let reason = t["reason"].as_str().unwrap_or_default();
            assert!(reason.contains(says), "{t:#}");
        }
    }
}

async fn store(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/stores/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn stores_are_resized_and_upgraded_in_bulk_and_a_second_ask_skips_them(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.stores = settings()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = worker_with(&pool, &sim, settings()).await;
    let mut stores = Vec::new();
    for name in ["Bulk One", "Bulk Two"] {
        let body = app.created(name).await;
        let run = body["run"]["id"].as_str().unwrap();
        wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
        stores.push(body["store"]["id"].as_str().unwrap().to_owned());
    }
    let selector = json!({ "store_ids": stores });

    // The dry run says where each store would go and plans it with a worker.
    let r = create(
        &app,
        json!({ "action": "resize", "plan": "business", "selector": selector, "dry_run": true }),
    )
    .await;
    assert_eq!(r.status(), 200);
    let preview: Value = r.json().await.unwrap();
    let preview = &preview["preview"];
    assert_eq!(preview["matched"], 2, "{preview:#}");
    assert!(
        preview["targets"][0]["would"]
            .as_str()
            .unwrap()
            .contains("to plan business"),
        "{preview:#}"
    );
    assert_eq!(preview["cluster_plan"]["state"], "ready", "{preview:#}");
    let quota_changes = preview["targets"][0]["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["kind"] == "ResourceQuota" && o["change"] == "update");
    assert!(quota_changes, "{preview:#}");

    // A plan the stores do not fit: each target is skipped with the refusal, nothing started.
    let targets = carried_out(
        &app,
        json!({ "action": "resize", "plan": "bigdb", "selector": selector }),
    )
    .await;
    assert_all(&targets, "skipped", "does not fit plan bigdb");
    let targets = carried_out(
        &app,
        json!({ "action": "resize", "plan": "business", "selector": selector }),
    )
    .await;
    assert_all(&targets, "succeeded", "");
    for id in &stores {
        let s = store(&app, id).await;
        assert_eq!(s["plan"], "business", "{s:#}");
        assert_eq!(s["status"], "ready", "{s:#}");
    }
    let op: Value = app.get("/api/v1/operations").await.json().await.unwrap();
    assert_eq!(op["items"][0]["plan"], "business", "{op:#}");

    // Again: every store is already there.
    let targets = carried_out(
        &app,
        json!({ "action": "resize", "plan": "business", "selector": selector }),
    )
    .await;
    assert_all(&targets, "skipped", "already on plan business");

    // Upgrade both onto `edge`, each with its pre-upgrade backup; then nothing is left to do.
    let targets = carried_out(
        &app,
        json!({ "action": "upgrade", "channel": "edge", "selector": selector }),
    )
    .await;
    assert_all(&targets, "succeeded", "");
    for id in &stores {
        let s = store(&app, id).await;
        assert_eq!(
            (s["channel"].as_str(), s["version"].as_str()),
            (Some("edge"), Some("2026.12")),
            "{s:#}"
        );
    }
    let targets = carried_out(
        &app,
        json!({ "action": "upgrade", "channel": "edge", "selector": selector }),
    )
    .await;
    assert_all(&targets, "skipped", "already runs channel edge");
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE definition = 'store.upgrade'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(runs, 2, "one upgrade per store, none for the second ask");
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bulk_resize_and_upgrade_parameters_are_checked_before_anything_is_created(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.stores = settings()).await;
    let body = app.created("Checked Shop").await;
    let selector = json!({ "store_ids": [body["store"]["id"]] });
    let cases = [
        (json!({ "action": "resize" }), "/plan", "names the plan"),
        (
            json!({ "action": "resize", "plan": "platinum" }),
            "/plan",
            "known plans: bigdb, business, starter",
        ),
        (
            json!({ "action": "suspend", "plan": "business" }),
            "/plan",
            "resize action only",
        ),
        (
            json!({ "action": "upgrade", "channel": "nightly" }),
            "/channel",
            "known channels: edge, stable",
        ),
        (
            json!({ "action": "resize", "plan": "business", "channel": "edge" }),
            "/channel",
            "upgrade action only",
        ),
    ];
    for (mut body, field, says) in cases {
        body["selector"] = selector.clone();
        for dry_run in [false, true] {
            body["dry_run"] = json!(dry_run);
            let p = problem(create(&app, body.clone()).await, 422).await;
            assert_eq!(p["errors"][0]["field"], field, "{body} → {p:#}");
            assert!(
                p["detail"].as_str().unwrap().contains(says),
                "{body} → {p:#}"
            );
        }
    }
    // An empty plan is malformed (400) before it is looked up.
    let r = create(
        &app,
        json!({ "action": "resize", "plan": "", "selector": selector }),
    )
    .await;
    problem(r, 400).await;
    let operations: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.operations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(operations, 0);
}
