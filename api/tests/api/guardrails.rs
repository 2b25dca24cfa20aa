//! 429 with `Retry-After` at the create-rate limit and at the active-store caps.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app_with};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_create_rate_limit_answers_429_with_retry_after(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.api.create_rate_per_sec = 0.5;
        s.api.create_burst = 2;
    })
    .await;
    app.created("Rate One").await;
    app.created("Rate Two").await;
    let r = app.create_store("Rate Three").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    problem(r, 429).await;
    assert_eq!(app.count("stores").await, 2);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn active_store_caps_answer_429_and_deleted_stores_free_a_place(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.api.max_active_stores = 3;
        s.api.max_active_stores_per_actor = 2;
    })
    .await;
    app.created("Cap One").await;
    let two = app.created("Cap Two").await;
    let r = app.create_store("Cap Three").await;
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, 429).await;
    assert!(p["detail"].as_str().unwrap().contains("test-admin"), "{p}");

    // Another actor may still create, up to the global cap.
    let other = urumi_api::auth::mint(&app.pool, "other-admin", urumi_api::auth::Role::Admin, "t")
        .await
        .unwrap()
        .token;
    let create = |name: &str| {
        app.req(Method::POST, "/api/v1/stores", &other)
            .json(&json!({ "name": name, "engine": "woocommerce" }))
            .send()
    };
    assert_eq!(create("Cap Four").await.unwrap().status(), 202);
    let p = problem(create("Cap Five").await.unwrap(), 429).await;
    assert!(p["detail"].as_str().unwrap().contains("platform"), "{p}");

    // A deleted store no longer counts.
    sqlx::query("UPDATE urumi.stores SET status = 'deleted' WHERE id = $1::uuid")
        .bind(two["store"]["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(create("Cap Five").await.unwrap().status(), 202);
}
