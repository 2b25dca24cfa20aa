//! Bulk operations and reruns over HTTP: roles (operator; admin for deleting actions), bad
//! requests as problems that start nothing, a dry run, an operation carried out by a worker,
//! and a rerun from a named step.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use urumi_engine::{Worker, WorkerOptions};

use crate::helpers::{TestApp, problem, spawn_app};

/// A worker with the store workflows (no cluster: a provisioning run fails at its first step)
/// and the operation workflow.
async fn clusterless_worker(pool: &PgPool) -> urumi_engine::WorkerHandle {
    worker(pool, None).await
}

/// A worker with the store and operation workflows whose kube client is `client`.
pub(crate) async fn worker(
    pool: &PgPool,
    client: Option<kube::Client>,
) -> urumi_engine::WorkerHandle {
    let deps = std::sync::Arc::new(urumi_workflows::StoreDeps {
        settings: Default::default(),
        pool: pool.clone(),
        client,
    });
    let registry = urumi_workflows::registry(Some(&deps)).unwrap();
    let registry = urumi_ops::with_code(pool.clone(), &registry, Default::default()).unwrap();
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    Worker::new(pool.clone(), registry, options)
        .start()
        .await
        .unwrap()
}

pub(crate) async fn wait_for(app: &TestApp, path: &str, field: &str, want: &str) -> Value {
    for _ in 0..200 {
        let v: Value = app.get(path).await.json().await.unwrap();
        if v[field] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never had {field} = {want}");
}

/// A store whose provisioning run failed; returns (store id, run id).
async fn failed_store(app: &TestApp, pool: &PgPool, name: &str) -> (String, String) {
    let body = app.created(name).await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap().to_owned();
    let worker = clusterless_worker(pool).await;
    wait_for(app, &format!("/api/v1/runs/{run}"), "status", "failed").await;
    worker.shutdown().await.unwrap();
    (store, run)
}

async fn operations(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM urumi.operations")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn retry_failed(dry_run: bool) -> Value {
    json!({ "action": "retry", "selector": { "status": "failed", "kind": "store.provision" }, "dry_run": dry_run })
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn operations_need_operator_and_deleting_actions_need_admin(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    failed_store(&app, &pool, "Failing Shop").await;
    let post = |token: &str, body: Value| {
        app.req(Method::POST, "/api/v1/operations", token)
            .json(&body)
            .send()
    };
    problem(post("", retry_failed(true)).await.unwrap(), 401).await;
    problem(post(&app.viewer, retry_failed(true)).await.unwrap(), 403).await;
    assert_eq!(
        post(&app.operator, retry_failed(true))
            .await
            .unwrap()
            .status(),
        200
    );
    let delete = json!({ "action": "delete", "selector": { "status": "failed" }, "dry_run": true });
    problem(post(&app.operator, delete.clone()).await.unwrap(), 403).await;
    let r = post(&app.admin, delete).await.unwrap();
    assert_eq!(r.status(), 200);
    let preview: Value = r.json().await.unwrap();
    assert!(
        preview["preview"]["targets"][0]["would"]
            .as_str()
            .unwrap()
            .starts_with("delete store ")
    );

    let created: Value = post(&app.operator, retry_failed(false))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["operation"]["id"].as_str().unwrap();
    // Reading needs any role; steering needs operator.
    for path in [
        "/api/v1/operations".to_owned(),
        format!("/api/v1/operations/{id}"),
        format!("/api/v1/operations/{id}/targets"),
    ] {
        assert_eq!(
            app.req(Method::GET, &path, &app.viewer)
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{path}"
        );
        problem(app.req(Method::GET, &path, "").send().await.unwrap(), 401).await;
    }
    for control in ["pause", "resume", "approve", "cancel"] {
        let path = format!("/api/v1/operations/{id}/{control}");
        problem(
            app.req(Method::POST, &path, &app.viewer)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
    }
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/operations/{id}/pause"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let paused: Value = r.json().await.unwrap();
    assert_eq!(paused["state"], "paused");
    // Approving an operation that waits for no approval is a conflict.
    problem(
        app.req(
            Method::POST,
            &format!("/api/v1/operations/{id}/approve"),
            &app.operator,
        )
        .send()
        .await
        .unwrap(),
        409,
    )
    .await;
    // Who did it is in the audit log.
    let audit: Value = app
        .get("/api/v1/audit?kind=operation.paused")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["actor"], "test-operator");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_operation_requests_are_problems_that_start_nothing(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    failed_store(&app, &pool, "Failing Shop").await;
    let runs = app.count("runs").await;
    let post = |body: Value| {
        app.req(Method::POST, "/api/v1/operations", &app.operator)
            .json(&body)
            .send()
    };
    let failed = json!({ "status": "failed" });
    for (body, status, pointer) in [
        (
            json!({ "action": "explode", "selector": failed }),
            400,
            None,
        ),
        (
            json!({ "action": "retry", "selector": failed, "surprise": 1 }),
            400,
            None,
        ),
        (
            json!({ "action": "retry", "selector": {} }),
            422,
            Some("/selector"),
        ),
        (
            json!({ "action": "retry", "selector": failed, "max_concurrency": 0 }),
            422,
            Some("/max_concurrency"),
        ),
        (
            json!({ "action": "retry", "selector": failed, "max_concurrency": 10001 }),
            422,
            Some("/max_concurrency"),
        ),
        (
            json!({ "action": "retry", "selector": failed, "max_concurrency": -1 }),
            422,
            Some("/max_concurrency"),
        ),
        (
            json!({ "action": "rerun", "selector": { "status": "failed", "kind": "store.provision" }, "from_step": "nope" }),
            422,
            Some("/from_step"),
        ),
        (
            json!({ "action": "rerun", "selector": failed, "from_step": "namespace" }),
            422,
            Some("/selector/kind"),
        ),
        (
            json!({ "action": "retry", "selector": failed, "canary": { "count": 1, "percent": 5 } }),
            422,
            Some("/canary"),
        ),
        (
            json!({ "action": "retry", "selector": failed, "failure_budget": {} }),
            422,
            Some("/failure_budget"),
        ),
        (
            json!({ "action": "retry", "selector": { "error_contains": "no such error" } }),
            422,
            Some("/selector"),
        ),
    ] {
        let p = problem(post(body.clone()).await.unwrap(), status).await;
        if let Some(pointer) = pointer {
            assert_eq!(p["errors"][0]["field"], pointer, "{body} → {p}");
        }
    }
    assert_eq!(
        (app.count("runs").await, operations(&app).await),
        (runs, 0),
        "nothing was started"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_dry_run_previews_and_the_operation_is_carried_out_by_a_worker(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (store, run) = failed_store(&app, &pool, "Failing Shop").await;
    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&retry_failed(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body.get("operation").is_none());
    assert_eq!(body["preview"]["matched"], 1);
    let t = &body["preview"]["targets"][0];
    assert_eq!(
        (t["run_id"].as_str(), t["store_id"].as_str()),
        (Some(run.as_str()), Some(store.as_str()))
    );
    assert_eq!(t["would"], "resume store.provision@1 at step namespace");
    assert_eq!(operations(&app).await, 0, "a dry run starts nothing");

    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&retry_failed(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let op: Value = r.json().await.unwrap();
    let op = &op["operation"];
    let id = op["id"].as_str().unwrap();
    assert_eq!(
        (op["state"].as_str(), op["progress"]["matched"].as_i64()),
        (Some("running"), Some(1))
    );
    assert_eq!(
        op["selector"],
        json!({ "status": "failed", "kind": "store.provision", "all": false })
    );
    // No cluster: the retried run fails again; the operation still ends, with the outcome.
    let worker = clusterless_worker(&pool).await;
    let done = wait_for(
        &app,
        &format!("/api/v1/operations/{id}"),
        "state",
        "succeeded",
    )
    .await;
    worker.shutdown().await.unwrap();
    assert_eq!(done["progress"]["failed"], 1);
    let targets: Value = app
        .get(&format!("/api/v1/operations/{id}/targets?state=failed"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(targets["items"][0]["run_id"], run.as_str());
    assert_eq!(targets["items"][0]["child_run_id"], run.as_str());
    assert!(targets["items"][0]["reason"].as_str().unwrap().len() > 3);
    let retried: Value = app
        .get(&format!("/api/v1/runs/{run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (retried["lane"].as_str(), retried["owner"].as_str()),
        (Some("bulk"), Some("test-operator"))
    );
    let parent: Value = app
        .get(&format!(
            "/api/v1/runs/{}",
            done["run_id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (parent["kind"].as_str(), parent["status"].as_str()),
        (Some("operation"), Some("succeeded"))
    );
    let list: Value = app.get("/api/v1/operations").await.json().await.unwrap();
    assert_eq!(list["items"][0]["id"], id);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_run_is_rerun_from_a_named_step(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (_store, run) = failed_store(&app, &pool, "Failing Shop").await;
    let rerun = |token: &str, body: Value| {
        app.req(Method::POST, &format!("/api/v1/runs/{run}/rerun"), token)
            .json(&body)
            .send()
    };
    problem(rerun(&app.viewer, json!({})).await.unwrap(), 403).await;
    let p = problem(
        rerun(&app.operator, json!({ "from_step": "nope" }))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "/from_step");
    assert!(
        p["detail"].as_str().unwrap().contains("namespace"),
        "the steps are named: {p}"
    );
    // The failed step itself cannot be carried over.
    let p = problem(
        rerun(&app.operator, json!({ "from_step": "quota" }))
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("did not succeed"),
        "{p}"
    );
    let r = rerun(&app.operator, json!({ "from_step": "namespace" }))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let new: Value = r.json().await.unwrap();
    assert_eq!(new["rerun_of"], run.as_str());
    assert_eq!(
        (new["carried_steps"].as_i64(), new["lane"].as_str()),
        (Some(0), Some("interactive"))
    );
    // The old run is no longer its store's newest.
    problem(rerun(&app.operator, json!({})).await.unwrap(), 409).await;
}

/// A worker with the store and operation workflows whose kube client is the simulator's.
pub(crate) async fn cluster_worker(
    pool: &PgPool,
    sim: &urumi_sim::SimHandle,
) -> urumi_engine::WorkerHandle {
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    worker(pool, Some(client)).await
}

fn repair_dry_run(store: &str) -> Value {
    json!({ "action": "repair", "selector": { "store_ids": [store] }, "dry_run": true })
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_repair_dry_run_shows_each_stores_cluster_plan_from_a_worker(pool: PgPool) {
    use k8s_openapi::api::networking::v1::NetworkPolicy;

    let app = spawn_app(pool.clone()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = cluster_worker(&pool, &sim).await;
    let body = app.created("Planned Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let policies: kube::Api<NetworkPolicy> = kube::Api::namespaced(client, "store-planned-shop");
    policies
        .delete("allow-dns", &Default::default())
        .await
        .unwrap();

    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&repair_dry_run(&store))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let preview = &body["preview"];
    assert_eq!(preview["cluster_plan"]["state"], "ready", "{body:#}");
    let plan = &preview["targets"][0]["plan"];
    assert!(plan.get("error").is_none(), "{plan:#}");
    let objects = plan["objects"].as_array().unwrap();
    let changed: Vec<(&str, &str, &str)> = objects
        .iter()
        .filter(|o| o["change"] != "unchanged")
        .map(|o| {
            (
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap(),
                o["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [("NetworkPolicy", "allow-dns", "create")],
        "{plan:#}"
    );
    assert!(objects.len() >= 10, "{plan:#}");
    assert!(
        policies.get_opt("allow-dns").await.unwrap().is_none(),
        "the dry run wrote nothing"
    );
    assert_eq!(operations(&app).await, 0, "a dry run starts no operation");
    // The preview is a run like any other, readable and audited with its actor.
    let plan_run = preview["cluster_plan"]["run_id"].as_str().unwrap();
    let r: Value = app
        .get(&format!("/api/v1/runs/{plan_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["status"].as_str(), r["created_by"].as_str()),
        (Some("succeeded"), Some("test-operator"))
    );
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_dry_run_whose_plan_no_worker_computes_in_time_answers_it_pending(pool: PgPool) {
    let app =
        crate::helpers::spawn_app_with(pool.clone(), |s| s.api.plan_preview_wait_ms = 300).await;
    let body = app.created("Waiting Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&repair_dry_run(&store))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let body: Value = r.json().await.unwrap();
    let plan = &body["preview"]["cluster_plan"];
    assert_eq!(plan["state"], "pending", "{body:#}");
    assert!(body["preview"]["targets"][0].get("plan").is_none());
    // The run holds the plan once a worker gets to it.
    let plan_run = plan["run_id"].as_str().unwrap();
    let r: Value = app
        .get(&format!("/api/v1/runs/{plan_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["kind"].as_str(), r["status"].as_str()),
        (Some("store.preview"), Some("queued"))
    );
    // A retry operation has no cluster plan.
    let r = app
        .req(Method::POST, "/api/v1/operations", &app.operator)
        .json(&json!({ "action": "cancel", "selector": { "store_ids": [store] }, "dry_run": true }))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["preview"].get("cluster_plan").is_none(), "{body:#}");
}
