//! `spawn_app()`: the whole API on 127.0.0.1:0 over a fresh database, with one token per role.

use std::net::SocketAddr;
use std::sync::Arc;

use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use urumi_api::auth::{self, Role};
use urumi_api::settings::Settings;
use urumi_api::{AppState, feed};

/// A running API and what tests need to call it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub admin: String,
    pub operator: String,
    pub viewer: String,
    /// Stops the event feed, as the server's shutdown does.
    pub feed: tokio::task::AbortHandle,
}

/// [`spawn_app_with`] on the default settings.
pub async fn spawn_app(pool: PgPool) -> TestApp {
    spawn_app_with(pool, |_| {}).await
}

/// Starts the API with `tune`d settings on a free port.
pub async fn spawn_app_with(pool: PgPool, tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::defaults();
    tune(&mut settings);
    settings.validate().unwrap();
    let (changed, feed) = feed::spawn_stoppable(pool.clone());
    let state = Arc::new(AppState::new(pool.clone(), settings, changed).unwrap());
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(urumi_api::app(state)));
    let admin = auth::mint(&pool, "test-admin", Role::Admin, "test")
        .await
        .unwrap()
        .token;
    let operator = auth::mint(&pool, "test-operator", Role::Operator, "test")
        .await
        .unwrap()
        .token;
    let viewer = auth::mint(&pool, "test-viewer", Role::Viewer, "test")
        .await
        .unwrap()
        .token;
    TestApp {
        addr,
        pool,
        http: reqwest::Client::new(),
        admin,
        operator,
        viewer,
        feed,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    /// A request with `token` as bearer (none if empty).
    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        let b = self.http.request(method, self.url(path));
        if token.is_empty() {
            b
        } else {
            b.bearer_auth(token)
        }
    }
    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path, &self.admin)
            .send()
            .await
            .unwrap()
    }
    pub async fn create_store(&self, name: &str) -> Response {
        self.req(Method::POST, "/api/v1/stores", &self.admin)
            .json(&json!({ "name": name, "engine": "woocommerce" }))
            .send()
            .await
            .unwrap()
    }
    /// Creates a store and returns the 202 body.
    pub async fn created(&self, name: &str) -> Value {
        let r = self.create_store(name).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        r.json().await.unwrap()
    }
    pub async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "stores" => "SELECT count(*) FROM urumi.stores",
            "runs" => "SELECT count(*) FROM urumi.runs",
            "events" => "SELECT count(*) FROM urumi.events",
            other => panic!("no count for {other}"),
        };
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

/// Asserts a problem document with `status`; returns it.
pub async fn problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "wrong status");
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}
