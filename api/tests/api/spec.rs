//! The served OpenAPI document is the committed `api/openapi.json`, so every contract change
//! shows in a diff. Regenerate with `make openapi`.

use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_served_spec_is_the_committed_one(pool: PgPool) {
    let app = spawn_app(pool).await;
    let served: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "api/openapi.json is stale: run `make openapi` and commit the diff"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn every_operation_has_an_id_and_every_error_is_a_problem(pool: PgPool) {
    let app = spawn_app(pool).await;
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut ops = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops += 1;
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            if path.starts_with("/api/") {
                for code in ["400", "401", "403", "404", "422", "429", "500"] {
                    let content = &op["responses"][code]["content"];
                    assert!(
                        content.get("application/problem+json").is_some(),
                        "{method} {path} {code}: {content}"
                    );
                }
            }
        }
    }
    assert_eq!(ops, 43);
}
