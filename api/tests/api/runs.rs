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

/// Marks store `id`'s deletion finished, as a worker with a cluster would have.
async fn finish_deletion(pool: &PgPool, id: &str) {
    sqlx::query(
        "UPDATE urumi.runs SET status = 'succeeded', finished_at = now()
         WHERE subject = 'store:' || $1 AND definition = 'store.delete'",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE urumi.stores SET status = 'deleted', deleted_at = now() WHERE id = $1::uuid",
    )
    .bind(id)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_old_run_of_a_deleted_store_is_not_retried_over_a_new_store_with_its_slug(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    // Store A's provisioning fails; A is deleted.
    let a = app.created("Reused Shop").await;
    let (a_id, a_run) = (
        a["store"]["id"].as_str().unwrap().to_owned(),
        a["run"]["id"].as_str().unwrap().to_owned(),
    );
    let worker = clusterless_worker(&pool).await;
    wait_for(&app, &format!("/api/v1/runs/{a_run}"), "status", "failed").await;
    worker.shutdown().await.unwrap();
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/stores/{a_id}"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    finish_deletion(&pool, &a_id).await;
    // Store B takes the same slug.
    let b = app.created("Reused Shop").await;
    let b_id = b["store"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b["store"]["slug"], a["store"]["slug"]);
    let before: Value = app
        .get(&format!("/api/v1/stores/{b_id}"))
        .await
        .json()
        .await
        .unwrap();

    // An operator retries A's old failed run: refused, with the reason.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{a_run}/retry"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    let p = problem(r, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("is deleted"), "{p}");
    // Nothing changed: A's run is still failed, B is as it was, with its one run.
    let a_after: Value = app
        .get(&format!("/api/v1/runs/{a_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a_after["status"], "failed");
    let after: Value = app
        .get(&format!("/api/v1/stores/{b_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
    let b_runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE subject = 'store:' || $1")
            .bind(&b_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(b_runs, 1);
    // And `deleted` is final, whoever writes.
    let resurrect = sqlx::query("UPDATE urumi.stores SET status = 'ready' WHERE id = $1::uuid")
        .bind(&a_id)
        .execute(&pool)
        .await;
    assert!(
        resurrect.unwrap_err().to_string().contains("is deleted"),
        "a deleted store came back"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_run_that_is_not_its_subjects_newest_is_not_retried(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let c = app.created("Older Run Shop").await;
    let (c_id, c_run) = (
        c["store"]["id"].as_str().unwrap().to_owned(),
        c["run"]["id"].as_str().unwrap().to_owned(),
    );
    let worker = clusterless_worker(&pool).await;
    wait_for(&app, &format!("/api/v1/runs/{c_run}"), "status", "failed").await;
    // A deletion comes after it (and fails too: no cluster), so the store is not deleted.
    let r = app
        .req(
            Method::DELETE,
            &format!("/api/v1/stores/{c_id}"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    let delete_run = r.json::<Value>().await.unwrap()["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(
        &app,
        &format!("/api/v1/runs/{delete_run}"),
        "status",
        "failed",
    )
    .await;
    worker.shutdown().await.unwrap();
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{c_run}/retry"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    let p = problem(r, 409).await;
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("not the newest run") && detail.contains(&delete_run),
        "{detail}"
    );
    let after: Value = app
        .get(&format!("/api/v1/runs/{c_run}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["status"], "failed");
}
