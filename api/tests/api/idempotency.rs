//! `Idempotency-Key`: the same key and body answer the first result (even concurrently); the
//! same key with another body is 422.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn same_key_same_body_is_the_same_store_even_concurrently(pool: PgPool) {
    let app = spawn_app(pool).await;
    let send = |body: Value| {
        app.req(Method::POST, "/api/v1/stores", &app.admin)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };
    let body = json!({ "name": "Once Shop", "engine": "woocommerce" });
    let (a, b, c) = tokio::join!(send(body.clone()), send(body.clone()), send(body.clone()));
    let mut answers = Vec::new();
    for r in [a, b, c] {
        let r = r.unwrap();
        assert_eq!(r.status(), 202);
        answers.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(answers[0]["store"]["id"], answers[1]["store"]["id"]);
    assert_eq!(answers[0]["store"]["id"], answers[2]["store"]["id"]);
    assert_eq!(answers[0]["run"]["id"], answers[2]["run"]["id"]);
    assert_eq!(app.count("stores").await, 1);
    assert_eq!(app.count("runs").await, 1);

    let other = send(json!({ "name": "Other Shop", "engine": "woocommerce" }))
        .await
        .unwrap();
    let p = problem(other, 422).await;
    assert!(p["detail"].as_str().unwrap().contains("order-42"), "{p}");
    assert_eq!(app.count("stores").await, 1);

    // Keys belong to their actor: another admin's same key is a new request.
    let minted =
        urumi_api::auth::mint(&app.pool, "second-admin", urumi_api::auth::Role::Admin, "t")
            .await
            .unwrap();
    let r = app
        .req(Method::POST, "/api/v1/stores", &minted.token)
        .header("Idempotency-Key", "order-42")
        .json(&json!({ "name": "Second Shop", "engine": "woocommerce" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(app.count("stores").await, 2);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_refused_create_does_not_burn_its_key(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.created("Busy Shop").await;
    let send = |name: &str| {
        app.req(Method::POST, "/api/v1/stores", &app.admin)
            .header("Idempotency-Key", "k1")
            .json(&json!({ "name": name, "engine": "woocommerce" }))
            .send()
    };
    problem(send("Busy Shop").await.unwrap(), 409).await;
    // The failed attempt left no record, so the key can be used for the corrected request.
    problem(send("Busy Shop").await.unwrap(), 409).await;
    let r = send("Busy Shop Two").await.unwrap();
    assert_eq!(r.status(), 202);
}
