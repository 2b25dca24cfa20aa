//! Create, show, list, delete and repair stores; 409 on a taken name and on a conflicting run.

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn create_writes_store_run_audit_and_queue_entry_together(pool: PgPool) {
    let app = spawn_app(pool).await;
    let body = app.created("Corner Shop").await;
    let store = &body["store"];
    assert_eq!(store["name"], "Corner Shop");
    assert_eq!(store["slug"], "corner-shop");
    assert_eq!(store["engine"], "woocommerce");
    assert_eq!(store["status"], "provisioning");
    assert_eq!(store["plan"], "starter");
    assert_eq!(store["created_by"], "test-admin");
    assert_eq!(body["run"]["kind"], "store.provision");
    assert_eq!(body["run"]["status"], "queued");
    assert_eq!(store["current_run"]["id"], body["run"]["id"]);
    let id = store["id"].as_str().unwrap();

    // The run is a due queue entry for the store's subject; the audit entry names the actor.
    let (subject, status): (String, String) =
        sqlx::query_as("SELECT subject, status FROM urumi.runs WHERE id = $1::uuid")
            .bind(body["run"]["id"].as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (subject.as_str(), status.as_str()),
        (format!("store:{id}").as_str(), "queued")
    );
    let audit: Value = app
        .get(&format!("/api/v1/audit?store_id={id}&kind=store.created"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    assert_eq!(audit["items"][0]["actor"], "test-admin");
    assert_eq!(audit["items"][0]["run_id"], body["run"]["id"]);

    let got: Value = app
        .get(&format!("/api/v1/stores/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["id"], store["id"]);
    assert_eq!(got["timings"]["created_at"], store["timings"]["created_at"]);
    let runs: Value = app
        .get(&format!("/api/v1/stores/{id}/runs"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert_eq!(runs["next_cursor"], Value::Null);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_taken_name_is_409_and_writes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.created("Twin Shop").await;
    let before = (
        app.count("stores").await,
        app.count("runs").await,
        app.count("events").await,
    );
    let p = problem(app.create_store("twin shop").await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains("twin-shop"), "{p}");
    let after = (
        app.count("stores").await,
        app.count("runs").await,
        app.count("events").await,
    );
    assert_eq!(before, after);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn invalid_names_plans_are_422_with_the_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (body, field) in [
        (
            serde_json::json!({"name": "!!", "engine": "woocommerce"}),
            "/name",
        ),
        (
            serde_json::json!({"name": "Admin", "engine": "woocommerce"}),
            "/name",
        ),
        (
            serde_json::json!({"name": "Fine Shop", "engine": "woocommerce", "plan": "platinum"}),
            "/plan",
        ),
    ] {
        let r = app
            .req(Method::POST, "/api/v1/stores", &app.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let p = problem(r, 422).await;
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    assert_eq!(app.count("stores").await, 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn delete_starts_one_deletion_and_asking_again_answers_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let id = app.created("Gone Shop").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let del = |app: &crate::helpers::TestApp| {
        app.req(Method::DELETE, &format!("/api/v1/stores/{id}"), &app.admin)
            .send()
    };
    let r = del(&app).await.unwrap();
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["store"]["status"], "deleting");
    assert_eq!(first["run"]["kind"], "store.delete");
    let again: Value = del(&app).await.unwrap().json().await.unwrap();
    assert_eq!(again["run"]["id"], first["run"]["id"]);
    // The provisioning run was superseded.
    let runs: Value = app
        .get(&format!("/api/v1/stores/{id}/runs"))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<(&str, &str)> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("store.delete", "queued"), ("store.provision", "cancelled")]
    );
    // A repair now conflicts with the active deletion.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/stores/{id}/repair"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    problem(r, 409).await;
    // The audit log shows the request and the store's status change.
    let audit: Value = app
        .get(&format!("/api/v1/audit?store_id={id}"))
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
        kinds.contains(&"store.delete_requested") && kinds.contains(&"store.deleting"),
        "{kinds:?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn unknown_stores_and_runs_are_404(pool: PgPool) {
    let app = spawn_app(pool).await;
    let id = uuid::Uuid::now_v7();
    for p in [
        format!("/api/v1/stores/{id}"),
        format!("/api/v1/stores/{id}/runs"),
        format!("/api/v1/runs/{id}"),
    ] {
        problem(app.get(&p).await, 404).await;
    }
    let r = app
        .req(Method::DELETE, &format!("/api/v1/stores/{id}"), &app.admin)
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{id}/retry"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    problem(r, 404).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_shows_its_own_engine_and_an_unknown_one_is_never_shown_as_another(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let id = app.created("Engine Shop").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got: Value = app
        .get(&format!("/api/v1/stores/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["engine"], "woocommerce");
    // A row a newer release wrote, with an engine this API version does not know.
    let other = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO urumi.stores (id, name, slug, engine, plan, created_by)
         VALUES ($1, 'Future Shop', 'future-shop', 'magento', 'starter', 'test')",
    )
    .bind(other)
    .execute(&pool)
    .await
    .unwrap();
    problem(app.get(&format!("/api/v1/stores/{other}")).await, 500).await;
    problem(app.get("/api/v1/stores").await, 500).await;
}
