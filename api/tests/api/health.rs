//! `/healthz`, `/readyz`, `/metrics` need no token and tell the truth.

use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn health_readiness_and_metrics_answer_without_a_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["migrations_current"], true);
    app.created("Metrics Shop").await;
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("urumi_queue_due_runs 1"), "{text}");
    // By lane: the store's provisioning run is interactive; every lane has its series.
    for line in [
        r#"urumi_queue_depth{lane="interactive"} 1"#,
        r#"urumi_queue_depth{lane="scheduled"} 0"#,
        r#"urumi_queue_depth{lane="bulk"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    for lane in ["interactive", "scheduled", "bulk"] {
        let prefix = format!("urumi_queue_oldest_due_seconds{{lane=\"{lane}\"}} ");
        assert!(text.lines().any(|l| l.starts_with(&prefix)), "{text}");
    }
    assert!(
        text.contains("urumi_http_requests_total{method=\"POST\",status=\"2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("urumi_http_request_duration_seconds_count"),
        "{text}"
    );
}

#[sqlx::test(migrations = false)]
async fn readiness_says_not_ready_when_migrations_are_missing(pool: PgPool) {
    // Without migrations the token tables do not exist either: build the app by hand.
    let settings = urumi_api::settings::Settings::defaults();
    let (_tx, rx) = tokio::sync::watch::channel(0);
    let state = std::sync::Arc::new(urumi_api::AppState::new(pool, settings, rx).unwrap());
    let client = poem::test::TestClient::new(urumi_api::app(state));
    let resp = client.get("/readyz").send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = resp.json().await.value().deserialize();
    assert_eq!(body["migrations_current"], serde_json::json!(false));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn api_sessions_cut_statements_off_and_plan_for_actual_values(
    _: sqlx::postgres::PgPoolOptions,
    connect: sqlx::postgres::PgConnectOptions,
) {
    let opts = urumi_api::db::api_session(connect, std::time::Duration::from_millis(300));
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    sqlx::query("SELECT pg_sleep(0.05)")
        .execute(&pool)
        .await
        .unwrap();
    let err = sqlx::query("SELECT pg_sleep(2)")
        .execute(&pool)
        .await
        .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    assert_eq!(code, "57014", "query_canceled by statement_timeout: {err}");
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "force_custom_plan");
}
