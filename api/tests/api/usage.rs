//! Resource usage over HTTP: a store's quota usage as last observed (nothing before the first
//! observation), the used fraction per resource, the fleet's totals, and 404 / 401.

use chrono::Utc;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;
use urumi_store::usage::{self, ResourceUsage};
use uuid::Uuid;

use crate::helpers::{problem, spawn_app};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_stores_usage_is_shown_against_its_quota_and_summed_for_the_fleet(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let one = app.created("Usage A").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = app.created("Usage B").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/stores/{one}/usage");

    let before: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(
        before,
        serde_json::json!({ "store_id": one, "resources": [] })
    );

    let at = Utc::now();
    let observed = [
        (
            one.parse().unwrap(),
            vec![
                ResourceUsage::new("requests.cpu", "500m", "2"),
                ResourceUsage::new("requests.memory", "256Mi", "1Gi"),
                ResourceUsage::new("pods", "3", "0"),
            ],
        ),
        (
            two.parse().unwrap(),
            vec![ResourceUsage::new("requests.cpu", "1500m", "2")],
        ),
        // A store that does not exist is not recorded.
        (Uuid::now_v7(), vec![ResourceUsage::new("pods", "1", "2")]),
    ];
    assert_eq!(usage::record(&pool, &observed, at).await.unwrap(), 2);

    let r = app
        .req(Method::GET, &path, &app.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "any role reads usage");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(body["observed_at"].as_str().unwrap())
            .unwrap()
            .timestamp_micros(),
        at.timestamp_micros()
    );
    let resources = body["resources"].as_array().unwrap();
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["requests.cpu", "requests.memory", "pods"],
        "the quota's order"
    );
    assert_eq!(resources[0]["used"], "500m");
    assert_eq!(resources[0]["hard"], "2");
    assert_eq!(resources[0]["fraction"], 0.25);
    assert_eq!(resources[1]["fraction"], 0.25);
    assert!(
        resources[2].get("fraction").is_none(),
        "no fraction against a zero quota: {body}"
    );

    let fleet: Value = app
        .get("/api/v1/insights/fleet")
        .await
        .json()
        .await
        .unwrap();
    let cpu = fleet["usage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "requests.cpu")
        .unwrap();
    assert_eq!(
        (cpu["used"].as_f64(), cpu["hard"].as_f64()),
        (Some(2.0), Some(4.0))
    );
    assert_eq!(cpu["stores"], 2);

    let missing = Uuid::now_v7();
    problem(
        app.get(&format!("/api/v1/stores/{missing}/usage")).await,
        404,
    )
    .await;
    problem(app.req(Method::GET, &path, "").send().await.unwrap(), 401).await;
}
