//! Role boundaries: no or a bad token is 401 on every `/api/v1` path; a role below the
//! operation's is 403; tokens are stored hashed and stop working when revoked.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app, spawn_app_with};

const ID: &str = "0190a0b0-0000-7000-8000-000000000000";

fn every_path() -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/api/v1/stores".into()),
        (Method::GET, "/api/v1/stores".into()),
        (Method::GET, format!("/api/v1/stores/{ID}")),
        (Method::DELETE, format!("/api/v1/stores/{ID}")),
        (Method::POST, format!("/api/v1/stores/{ID}/repair")),
        (Method::GET, format!("/api/v1/stores/{ID}/runs")),
        (Method::POST, format!("/api/v1/stores/{ID}/domains")),
        (
            Method::DELETE,
            format!("/api/v1/stores/{ID}/domains/shop.example.com"),
        ),
        (Method::GET, "/api/v1/runs".into()),
        (Method::GET, format!("/api/v1/runs/{ID}")),
        (Method::POST, format!("/api/v1/runs/{ID}/retry")),
        (Method::POST, format!("/api/v1/runs/{ID}/cancel")),
        (Method::GET, "/api/v1/audit".into()),
        (Method::GET, "/api/v1/events".into()),
        (Method::POST, "/api/v1/tokens".into()),
        (Method::GET, "/api/v1/tokens".into()),
        (Method::GET, "/api/v1/tokens/current".into()),
        (Method::DELETE, format!("/api/v1/tokens/{ID}")),
    ]
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn every_api_path_is_401_without_a_valid_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let forged = format!("{}x", &app.admin[..app.admin.len() - 1]);
    for (method, path) in every_path() {
        for token in ["", "not-a-token", forged.as_str()] {
            let r = app
                .req(method.clone(), &path, token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let p = problem(r, 401).await;
            assert!(
                p["detail"].as_str().unwrap().contains("Bearer"),
                "{method} {path}: {p}"
            );
        }
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn roles_below_the_operation_get_403_and_nothing_changes(pool: PgPool) {
    let app = spawn_app(pool).await;
    let store = app.created("Role Shop").await;
    let store_id = store["store"]["id"].as_str().unwrap().to_owned();
    let run_id = store["run"]["id"].as_str().unwrap().to_owned();
    let events_before = app.count("events").await;
    let admin_only = [
        (Method::POST, "/api/v1/stores".to_owned()),
        (Method::DELETE, format!("/api/v1/stores/{store_id}")),
        (Method::POST, "/api/v1/tokens".to_owned()),
        (Method::GET, "/api/v1/tokens".to_owned()),
        (Method::DELETE, format!("/api/v1/tokens/{ID}")),
    ];
    let operator_up = [
        (Method::POST, format!("/api/v1/runs/{run_id}/retry")),
        (Method::POST, format!("/api/v1/runs/{run_id}/cancel")),
        (Method::POST, format!("/api/v1/stores/{store_id}/repair")),
        (
            Method::DELETE,
            format!("/api/v1/stores/{store_id}/domains/shop.example.com"),
        ),
    ];
    let bodies = |path: &str| {
        if path.ends_with("/tokens") {
            json!({ "name": "x", "role": "viewer" })
        } else {
            json!({ "name": "Another Shop", "engine": "woocommerce" })
        }
    };
    for (m, p) in &admin_only {
        for token in [&app.viewer, &app.operator] {
            let r = app
                .req(m.clone(), p, token)
                .json(&bodies(p))
                .send()
                .await
                .unwrap();
            let body = problem(r, 403).await;
            assert!(
                body["detail"].as_str().unwrap().contains("admin"),
                "{m} {p}: {body}"
            );
        }
    }
    for (m, p) in &operator_up {
        let r = app.req(m.clone(), p, &app.viewer).send().await.unwrap();
        problem(r, 403).await;
    }
    assert_eq!(app.count("stores").await, 1);
    assert_eq!(
        app.count("events").await,
        events_before,
        "a refused request wrote events"
    );
    // Reads are open to every role.
    for token in [&app.viewer, &app.operator, &app.admin] {
        for p in ["/api/v1/stores", "/api/v1/runs", "/api/v1/audit"] {
            let r = app.req(Method::GET, p, token).send().await.unwrap();
            assert_eq!(r.status(), 200, "{p}");
        }
    }
    // An operator may cancel.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn tokens_are_hashed_minted_listed_without_secrets_and_revocable(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app
        .req(Method::POST, "/api/v1/tokens", &app.admin)
        .json(&json!({ "name": "ci-bot", "role": "operator" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let minted: serde_json::Value = r.json().await.unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    let id = minted["id"].as_str().unwrap().to_owned();
    assert_eq!(minted["role"], "operator");

    // Only a hash is stored: the secret appears nowhere in the database row.
    let stored: (Vec<u8>,) =
        sqlx::query_as("SELECT secret_hash FROM urumi.api_tokens WHERE name = 'ci-bot'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored.0.len(), 32);
    let secret = token.rsplit('_').next().unwrap();
    assert!(!String::from_utf8_lossy(&stored.0).contains(secret));

    let list = app.get("/api/v1/tokens").await.text().await.unwrap();
    assert!(list.contains("ci-bot") && !list.contains(secret), "{list}");

    // A second live token with the same name is refused.
    let r = app
        .req(Method::POST, "/api/v1/tokens", &app.admin)
        .json(&json!({ "name": "ci-bot", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    problem(r, 409).await;

    let r = app
        .req(Method::GET, "/api/v1/runs", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::DELETE, &format!("/api/v1/tokens/{id}"), &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .req(Method::GET, "/api/v1/runs", &token)
        .send()
        .await
        .unwrap();
    problem(r, 401).await;

    let audit = app
        .get("/api/v1/audit?kind=token.revoked")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(audit["items"][0]["actor"], "test-admin");
    assert_eq!(audit["items"][0]["detail"]["name"], "ci-bot");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn every_role_can_read_its_own_token_and_nothing_else_about_tokens(pool: PgPool) {
    let app = spawn_app(pool).await;
    for (token, name, role) in [
        (&app.viewer, "test-viewer", "viewer"),
        (&app.operator, "test-operator", "operator"),
        (&app.admin, "test-admin", "admin"),
    ] {
        let r = app
            .req(Method::GET, "/api/v1/tokens/current", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let me: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(me["name"], name);
        assert_eq!(me["role"], role);
        let secret = token.rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "{text}");
    }
    // The list stays admin-only.
    let r = app
        .req(Method::GET, "/api/v1/tokens", &app.viewer)
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn tokens_may_expire_and_the_platforms_actor_names_are_refused(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.api.token_cache_ms = 0).await;
    let before = app.count("events").await;
    for name in ["system", "cli", "worker-7", "Urumi-bot"] {
        let r = app
            .req(Method::POST, "/api/v1/tokens", &app.admin)
            .json(&json!({ "name": name, "role": "viewer" }))
            .send()
            .await
            .unwrap();
        let p = problem(r, 422).await;
        assert_eq!(p["errors"][0]["field"], "name", "{p}");
    }
    assert_eq!(
        app.count("events").await,
        before,
        "a refused mint writes nothing"
    );

    let r = app
        .req(Method::POST, "/api/v1/tokens", &app.admin)
        .json(&json!({ "name": "temporary", "role": "viewer", "expires_in_hours": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let minted: Value = r.json().await.unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    assert!(minted["expires_at"].is_string(), "{minted}");
    let ok = app
        .req(Method::GET, "/api/v1/stores", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Time passes: its expiry is behind it.
    sqlx::query("UPDATE urumi.api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'temporary'")
        .execute(&pool)
        .await
        .unwrap();
    let r = app
        .req(Method::GET, "/api/v1/stores", &token)
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}
