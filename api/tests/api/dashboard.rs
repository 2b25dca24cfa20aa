//! The dashboard: with `api.dashboard_dir` set, its files are served at `/dashboard/`, every
//! other path below it answers its `index.html` (client-side routes reload), and nothing
//! outside the directory is reachable; without the setting there is no `/dashboard`.

use std::path::PathBuf;

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

/// `<tmp>/dist` as a built dashboard, beside `<tmp>/secret.txt`, which must never be served.
fn built_dashboard() -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("urumi-dashboard-{}", uuid::Uuid::now_v7()));
    let dist = root.join("dist");
    std::fs::create_dir_all(dist.join("assets")).unwrap();
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><title>Urumi</title>",
    )
    .unwrap();
    std::fs::write(dist.join("assets/app-1234.js"), "console.log(1)").unwrap();
    std::fs::write(root.join("secret.txt"), "not-for-you").unwrap();
    (root, dist)
}

/// GET `path` exactly as written (HTTP clients would normalise dot segments away).
async fn raw_get(app: &TestApp, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_dashboard_is_served_with_its_index_as_fallback(pool: PgPool) {
    let (root, dist) = built_dashboard();
    let dir = dist.to_str().unwrap().to_owned();
    let app = spawn_app_with(pool, |s| s.api.dashboard_dir = dir).await;

    for p in [
        "/dashboard",
        "/dashboard/",
        "/dashboard/stores/0190-abc",
        "/dashboard/runs?status=failed",
    ] {
        let r = app.http.get(app.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{p}: {ct}");
        assert!(
            r.text().await.unwrap().contains("<title>Urumi</title>"),
            "{p}"
        );
    }
    let r = app
        .http
        .get(app.url("/dashboard/assets/app-1234.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.contains("javascript"), "{ct}");

    // Nothing outside the directory, however the path is spelled.
    for p in [
        "/dashboard/../secret.txt",
        "/dashboard/%2e%2e/secret.txt",
        "/dashboard/assets/../../secret.txt",
    ] {
        let answer = raw_get(&app, p).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") || answer.starts_with("HTTP/1.1 404"),
            "{p}: {answer}"
        );
        assert!(
            !answer.contains("not-for-you"),
            "{p} served a file outside the dashboard:\n{answer}"
        );
    }
    // The API beside it is unchanged.
    problem(
        app.req(reqwest::Method::GET, "/api/v1/stores", "")
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    problem(app.get("/api/v1/nope").await, 404).await;
    std::fs::remove_dir_all(root).unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn without_a_dashboard_dir_there_is_no_dashboard(pool: PgPool) {
    let app = spawn_app(pool).await;
    problem(app.get("/dashboard/").await, 404).await;
}
