//! Bad input never reaches the database: malformed JSON, unknown fields, wrong enum values,
//! oversized bodies (announced or chunked), malformed ids and unknown routes are each a 4xx
//! problem document, and nothing is written.

use reqwest::Method;
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn malformed_bodies_are_4xx_problems_and_write_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    let events = app.count("events").await;
    let post = |body: &'static str| {
        app.req(Method::POST, "/api/v1/stores", &app.admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, status) in [
        ("{", 400),
        ("[]", 400),
        ("", 400),
        (r#"{"name": "Shop"}"#, 400), // missing engine
        (r#"{"name": "Shop", "engine": "magento"}"#, 400), // not in the enum
        (
            r#"{"name": "Shop", "engine": "woocommerce", "admin": true}"#,
            400,
        ), // unknown field
        (r#"{"name": ["x"], "engine": "woocommerce"}"#, 400),
        (r#"{"name": {"a": 1}, "engine": "woocommerce"}"#, 400),
        (r#"{"name": "", "engine": "woocommerce"}"#, 400),
        (r#"{"name": "Nul\u0000Shop", "engine": "woocommerce"}"#, 400),
        (r#"{"name": false, "engine": "woocommerce"}"#, 400),
    ] {
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        problem(r, status).await;
    }
    let r = app
        .req(Method::POST, "/api/v1/stores", &app.admin)
        .header("content-type", "text/plain")
        .body(r#"{"name": "Shop", "engine": "woocommerce"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    problem(r, 415).await;
    assert_eq!(app.count("stores").await, 0);
    assert_eq!(app.count("events").await, events);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn oversized_bodies_are_413_whether_announced_or_chunked(pool: PgPool) {
    let app = spawn_app(pool).await;
    let big = format!(
        r#"{{"name": "{}", "engine": "woocommerce"}}"#,
        "x".repeat(70_000)
    );
    let r = app
        .req(Method::POST, "/api/v1/stores", &app.admin)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    problem(r, 413).await;
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(4096)
        .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
        .collect();
    let r = app
        .req(Method::POST, "/api/v1/stores", &app.admin)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    problem(r, 413).await;
    assert_eq!(app.count("stores").await, 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn malformed_ids_params_and_unknown_routes_are_problems_never_500(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in [
        "/api/v1/stores/not-a-uuid",
        "/api/v1/stores/123/runs",
        "/api/v1/runs/%00",
        "/api/v1/runs?status=sleeping",
        "/api/v1/runs?kind=store.explode",
        "/api/v1/runs?store_id=abc",
        "/api/v1/stores?status=READY",
        "/api/v1/stores?limit=ten",
        "/api/v1/audit?actor=%00",
        "/api/v1/audit?kind=a%00b",
    ] {
        problem(app.get(path).await, 400).await;
    }
    for (m, p) in [
        (Method::DELETE, "/api/v1/stores/zzz"),
        (Method::POST, "/api/v1/runs/zzz/retry"),
        (Method::DELETE, "/api/v1/tokens/zzz"),
    ] {
        let r = app.req(m, p, &app.admin).send().await.unwrap();
        problem(r, 400).await;
    }
    problem(app.get("/api/v1/nothing-here").await, 404).await;
    let r = app
        .req(Method::PATCH, "/api/v1/stores", &app.admin)
        .send()
        .await
        .unwrap();
    problem(r, 405).await;
}
