//! `/api/v1/plans` lists the configured plans with the default marked, to any role, and
//! the plan a store is created on is one of them.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;
use urumi_store::settings::Plan;

use crate::helpers::{problem, spawn_app_with};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn plans_are_listed_by_name_with_their_quota_and_the_default_marked(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.stores.plans.insert(
            "business".into(),
            Plan {
                pods: "20".into(),
                requests_cpu: "2".into(),
                requests_memory: "4Gi".into(),
                limits_cpu: "4".into(),
                limits_memory: "8Gi".into(),
                pvcs: "6".into(),
                requests_storage: "60Gi".into(),
                db_storage: "20Gi".into(),
                wp_storage: "30Gi".into(),
                backups: urumi_store::settings::BackupPolicy {
                    retention: 14,
                    schedule: Some("0 0 3 * * *".into()),
                    volume: "40Gi".into(),
                },
            },
        );
        s.stores.default_plan = "business".into();
    })
    .await;
    for token in [&app.viewer, &app.operator, &app.admin] {
        let r = app
            .req(Method::GET, "/api/v1/plans", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        let starter = Plan::default();
        assert_eq!(
            body,
            json!({ "items": [
                { "name": "business", "default": true, "pods": "20", "requests_cpu": "2",
                  "requests_memory": "4Gi", "limits_cpu": "4", "limits_memory": "8Gi",
                  "pvcs": "6", "requests_storage": "60Gi", "db_storage": "20Gi",
                  "wp_storage": "30Gi",
                  "backups": { "retention": 14, "schedule": "0 0 3 * * *", "volume": "40Gi" } },
                { "name": "starter", "default": false, "pods": starter.pods,
                  "requests_cpu": starter.requests_cpu, "requests_memory": starter.requests_memory,
                  "limits_cpu": starter.limits_cpu, "limits_memory": starter.limits_memory,
                  "pvcs": starter.pvcs, "requests_storage": starter.requests_storage,
                  "db_storage": starter.db_storage, "wp_storage": starter.wp_storage,
                  "backups": { "retention": 7, "volume": "5Gi" } },
            ]})
        );
    }
    // A store created without a plan is on the default one; an unknown plan is refused with
    // the known ones named.
    let r = app
        .req(Method::POST, "/api/v1/stores", &app.admin)
        .json(&json!({ "name": "Planned Shop", "engine": "woocommerce" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let store: serde_json::Value = r.json().await.unwrap();
    assert_eq!(store["store"]["plan"], "business", "{store}");
    let r = app
        .req(Method::POST, "/api/v1/stores", &app.admin)
        .json(&json!({ "name": "Other Shop", "engine": "woocommerce", "plan": "gold" }))
        .send()
        .await
        .unwrap();
    let p = problem(r, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("business, starter"),
        "{p}"
    );
    // Without a token: 401.
    let r = app
        .req(Method::GET, "/api/v1/plans", "")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}
