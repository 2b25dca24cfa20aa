//! No viewer can hurt the service through event streams: streams are capped per token and
//! per API process (429 with `Retry-After`), a closed stream gives its place back, and an
//! open stream ends once its token is revoked.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use sqlx::PgPool;
use urumi_api::auth::{self, Role};

use crate::helpers::{TestApp, problem, spawn_app_with};

async fn open(app: &TestApp, token: &str) -> reqwest::Response {
    app.req(Method::GET, "/api/v1/events", token)
        .send()
        .await
        .unwrap()
}

/// Opens streams until one succeeds (a dropped stream's place comes back once the server
/// notices the client left, at its next write), within `wait`.
async fn open_eventually(app: &TestApp, token: &str, wait: Duration) -> reqwest::Response {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = open(app, token).await;
        if r.status() == 200 || tokio::time::Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn streams_are_capped_per_token_and_per_process(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.api.max_streams_per_token = 2;
        s.api.max_streams = 3;
        // The server learns a client left when it next writes: a keep-alive here.
        s.api.sse_keep_alive_ms = 200;
    })
    .await;
    let v1 = open(&app, &app.viewer).await;
    let v2 = open(&app, &app.viewer).await;
    assert_eq!((v1.status().as_u16(), v2.status().as_u16()), (200, 200));
    let r = open(&app, &app.viewer).await;
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, 429).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("max_streams_per_token"),
        "{p}"
    );

    let o1 = open(&app, &app.operator).await;
    assert_eq!(o1.status(), 200);
    let p = problem(open(&app, &app.admin).await, 429).await;
    assert!(
        p["detail"].as_str().unwrap().contains("api.max_streams)"),
        "{p}"
    );

    // A stream the client closes gives its place back.
    drop(v1);
    let again = open_eventually(&app, &app.admin, Duration::from_secs(5)).await;
    assert_eq!(again.status(), 200);
    drop((v2, o1));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_open_stream_ends_once_its_token_is_revoked(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.api.stream_recheck_ms = 200).await;
    let minted = auth::mint(&pool, "short-lived", Role::Viewer, "test")
        .await
        .unwrap();
    let r = open(&app, &minted.token).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    // Still open while the token is valid.
    assert!(
        tokio::time::timeout(Duration::from_millis(800), body.next())
            .await
            .is_err(),
        "an idle stream of a valid token ended or sent data"
    );
    let revoked = app
        .req(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", minted.id),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream was still open 5 s after its token was revoked"
    );
}
