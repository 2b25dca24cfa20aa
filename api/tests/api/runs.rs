//! Runs: a failed run is listed with `status=failed`, shows every step with its error, and
//! an operator retry resumes it at the failed step; cancel stops a queued run.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use urumi_engine::{Worker, WorkerOptions};

use crate::helpers::{problem, spawn_app};

/// A worker with the store workflows but no cluster: the first step fails for good.
async fn clusterless_worker(pool: &PgPool) -> urumi_engine::WorkerHandle {
    let deps = std::sync::Arc::new(urumi_workflows::StoreDeps {
        settings: Default::default(),
        pool: pool.clone(),
        client: None,
    });
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(100),
        ..WorkerOptions::default()
    };
    Worker::new(
        pool.clone(),
        urumi_workflows::registry(Some(&deps)).unwrap(),
        options,
    )
    .start()
    .await
    .unwrap()
}

async fn wait_for(app: &crate::helpers::TestApp, path: &str, field: &str, want: &str) -> Value {
    for _ in 0..100 {
        let v: Value = app.get(path).await.json().await.unwrap();
        if v[field] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never had {field} = {want}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_failed_run_is_listed_shown_step_by_step_and_retried_by_an_operator(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let body = app.created("Failing Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap().to_owned();
    let worker = clusterless_worker(&pool).await;
    let detail = wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "failed").await;
    worker.shutdown().await.unwrap();

    let steps = detail["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 11);
    assert_eq!(steps[0]["name"], "namespace");
    assert_eq!(steps[0]["status"], "failed");
    assert_eq!(steps[0]["attempts"], 1);
    assert!(
        steps[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no cluster"),
        "{}",
        steps[0]
    );
    assert!(steps[1..].iter().all(|s| s["status"] == "pending"));
    // The store followed its run.
    let s: Value = app
        .get(&format!("/api/v1/stores/{store}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "failed");

    let failed: Value = app
        .get("/api/v1/runs?status=failed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed["items"][0]["id"], run.as_str());
    let none: Value = app
        .get("/api/v1/runs?status=failed&kind=store.delete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);

    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run}/retry"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let retried: Value = r.json().await.unwrap();
    assert_eq!(retried["status"], "queued");
    let s: Value = app
        .get(&format!("/api/v1/stores/{store}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["status"], "provisioning");
    let audit: Value = app
        .get(&format!("/api/v1/audit?run_id={run}&actor=test-operator"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !audit["items"].as_array().unwrap().is_empty(),
        "the retry is not audited with its actor"
    );

    // Retrying a run that is not failed is a conflict; cancelling the queued run works once.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run}/retry"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    problem(r, 409).await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    problem(r, 409).await;
}
