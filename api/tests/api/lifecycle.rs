//! Suspend and resume over HTTP: with a simulator-backed worker a store is suspended and
//! resumed (one at a time and by a bulk operation), a dry run plans without starting
//! anything, asking for the state a store is in answers `already`; bad requests are problems
//! that start nothing.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};
use crate::operations::{cluster_worker, wait_for};

async fn post(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.req(Method::POST, path, token).send().await.unwrap()
}

async fn runs_of(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE definition = $1")
        .bind(kind)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_is_suspended_and_resumed_one_at_a_time_and_in_bulk(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = cluster_worker(&pool, &sim).await;
    let body = app.created("Sleepy Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    let path = |action: &str| format!("/api/v1/stores/{store}/{action}");

    // A dry run: the plan from a worker, nothing started.
    let r = post(
        &app,
        &format!("{}?dry_run=true", path("suspend")),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "dry_run", "{body:#}");
    assert_eq!(body["cluster_plan"]["state"], "ready", "{body:#}");
    let mut changed: Vec<String> = body["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["change"] != "unchanged")
        .map(|o| {
            format!(
                "{} {}/{}",
                o["change"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "create Service/store-suspended",
            "update Deployment/wordpress",
            "update Ingress/wordpress",
            "update StatefulSet/mariadb",
        ]
    );
    assert_eq!(runs_of(&app, "store.suspend").await, 0);
    assert_eq!(body["store"]["status"], "ready");

    let r = post(&app, &path("suspend"), &app.operator).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run"]["kind"], "store.suspend", "{body:#}");
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    wait_for(
        &app,
        &format!("/api/v1/stores/{store}"),
        "status",
        "suspended",
    )
    .await;
    let audit: Value = app
        .get(&format!("/api/v1/audit?store_id={store}"))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"store.suspend_requested") && kinds.contains(&"store.suspended"),
        "{kinds:?}"
    );

    // Again: already suspended, nothing started.
    let r = post(&app, &path("suspend"), &app.operator).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "already");
    assert_eq!(body["store"]["status"], "suspended");
    assert_eq!(runs_of(&app, "store.suspend").await, 1);

    let r = post(&app, &path("resume"), &app.operator).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    wait_for(&app, &format!("/api/v1/stores/{store}"), "status", "ready").await;

    // In bulk: an operation suspends every store it selects.
    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&json!({ "action": "suspend", "selector": { "store_ids": [store] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    wait_for(
        &app,
        &format!("/api/v1/stores/{store}"),
        "status",
        "suspended",
    )
    .await;
    assert_eq!(runs_of(&app, "store.suspend").await, 2);
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_suspend_and_resume_requests_are_problems_that_start_nothing(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.api.plan_preview_wait_ms = 200).await;
    let body = app.created("Young Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let provisioning = body["run"]["id"].as_str().unwrap().to_owned();
    let runs = app.count("runs").await;

    // Provisioning: neither can be suspended nor resumed, for real or as a dry run.
    for path in [
        format!("/api/v1/stores/{store}/suspend"),
        format!("/api/v1/stores/{store}/resume"),
        format!("/api/v1/stores/{store}/suspend?dry_run=true"),
    ] {
        let p = problem(post(&app, &path, &app.operator).await, 409).await;
        assert!(
            p["detail"].as_str().unwrap().contains("is provisioning"),
            "{p}"
        );
    }
    // A viewer may not; an unknown store is 404; a malformed flag is 400.
    problem(
        post(
            &app,
            &format!("/api/v1/stores/{store}/suspend"),
            &app.viewer,
        )
        .await,
        403,
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    problem(
        post(
            &app,
            &format!("/api/v1/stores/{unknown}/resume"),
            &app.operator,
        )
        .await,
        404,
    )
    .await;
    problem(
        post(
            &app,
            &format!("/api/v1/stores/{store}/suspend?dry_run=maybe"),
            &app.operator,
        )
        .await,
        400,
    )
    .await;
    assert_eq!(app.count("runs").await, runs, "nothing was started");

    // A ready store: resume is `already`; a suspend's dry run with no worker is pending.
    sqlx::query("UPDATE urumi.stores SET status = 'ready' WHERE id = $1::uuid")
        .bind(&store)
        .execute(&pool)
        .await
        .unwrap();
    // Its provisioning run is still queued: another run of the store is active.
    let p = problem(
        post(
            &app,
            &format!("/api/v1/stores/{store}/suspend"),
            &app.operator,
        )
        .await,
        409,
    )
    .await;
    assert!(p["detail"].as_str().unwrap().contains(&provisioning), "{p}");
    let r = post(
        &app,
        &format!("/api/v1/runs/{provisioning}/cancel"),
        &app.operator,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    let r = post(
        &app,
        &format!("/api/v1/stores/{store}/resume"),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["not_started"], "already");
    let r = post(
        &app,
        &format!("/api/v1/stores/{store}/suspend?dry_run=true"),
        &app.operator,
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["cluster_plan"]["state"], "pending", "{body:#}");
    assert!(body.get("plan").is_none());
    assert_eq!(runs_of(&app, "store.suspend").await, 0);
    assert_eq!(
        app.count("runs").await,
        runs + 1,
        "only the preview run was started"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_resize_requests_are_problems_that_start_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let body = app.created("Sized Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/stores/{store}/resize");
    let resize = |plan: Value| {
        app.req(Method::POST, &path, &app.operator)
            .json(&json!({ "plan": plan }))
            .send()
    };
    let runs = app.count("runs").await;
    // A provisioning store cannot be resized.
    let p = problem(resize(json!("starter")).await.unwrap(), 409).await;
    assert!(
        p["detail"].as_str().unwrap().contains("is provisioning"),
        "{p}"
    );
    sqlx::query("UPDATE urumi.stores SET status = 'ready' WHERE id = $1::uuid")
        .bind(&store)
        .execute(&pool)
        .await
        .unwrap();
    // An unknown plan names the known ones; a body without a plan, an empty one, an
    // unknown field are 400/422.
    let p = problem(resize(json!("platinum")).await.unwrap(), 422).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("known plans: starter"),
        "{p}"
    );
    problem(resize(json!("")).await.unwrap(), 400).await;
    let r = app
        .req(Method::POST, &path, &app.operator)
        .json(&json!({ "plan": "starter", "size": 3 }))
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    problem(
        app.req(Method::POST, &path, &app.viewer)
            .json(&json!({ "plan": "starter" }))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;
    // Its own plan: nothing to do.
    let r = resize(json!("starter")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["not_started"], "already");
    assert_eq!(app.count("runs").await, runs, "nothing was started");
}
