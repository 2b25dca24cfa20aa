//! `/healthz`, `/readyz`, `/metrics` and `/openapi.json` against a fresh database.

use poem::test::TestClient;
use sqlx::PgPool;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn health_readiness_metrics_and_the_spec_answer(pool: PgPool) {
    let client = TestClient::new(urumi_api::app(pool.clone()));

    let resp = client.get("/healthz").send().await;
    resp.assert_status_is_ok();
    resp.assert_text("ok").await;

    let resp = client.get("/readyz").send().await;
    resp.assert_status_is_ok();
    let body: serde_json::Value = resp.json().await.value().deserialize();
    assert_eq!(body["migrations_current"], serde_json::json!(true));

    let resp = client.get("/metrics").send().await;
    resp.assert_status_is_ok();
    let text = resp.0.into_body().into_string().await.unwrap();
    assert!(text.contains("urumi_queue_due_runs 0"), "{text}");

    let resp = client.get("/openapi.json").send().await;
    resp.assert_status_is_ok();
    let spec: serde_json::Value = resp.json().await.value().deserialize();
    let ops: Vec<&str> = ["/healthz", "/readyz", "/metrics"]
        .iter()
        .map(|p| spec["paths"][p]["get"]["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["healthz", "readyz", "metrics"]);
}

#[sqlx::test(migrations = false)]
async fn readiness_says_not_ready_when_migrations_are_missing(pool: PgPool) {
    let client = TestClient::new(urumi_api::app(pool));
    let resp = client.get("/readyz").send().await;
    resp.assert_status(poem::http::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = resp.json().await.value().deserialize();
    assert_eq!(body["migrations_current"], serde_json::json!(false));
}
