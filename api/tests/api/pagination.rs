//! Keyset pagination: walking every page while rows are being inserted returns every row
//! that existed at the start exactly once, with no duplicates.

use std::collections::HashSet;

use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app_with};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn pages_have_no_gaps_or_duplicates_while_rows_are_inserted(pool: PgPool) {
    let app = spawn_app_with(pool, |s| {
        s.api.create_burst = 1000;
        s.api.create_rate_per_sec = 1000.0;
    })
    .await;
    let mut before = HashSet::new();
    for i in 0..60 {
        before.insert(
            app.created(&format!("Page Shop {i}")).await["store"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut inserted = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/stores?limit=7&cursor={c}"),
            None => "/api/v1/stores?limit=7".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        // Inserts between pages.
        app.created(&format!("Late Shop {inserted}")).await;
        inserted += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a store appeared twice");
    for id in &before {
        assert!(unique.contains(id), "store {id} was skipped");
    }
    assert!(inserted >= 9);

    // Filters and bad cursors.
    let ready: Value = app
        .get("/api/v1/stores?status=ready")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ready["items"].as_array().unwrap().len(), 0);
    problem(app.get("/api/v1/stores?cursor=nonsense").await, 400).await;
    problem(app.get("/api/v1/stores?limit=201").await, 400).await;
    problem(app.get("/api/v1/stores?limit=0").await, 400).await;
    problem(app.get("/api/v1/audit?cursor=x").await, 400).await;

    // Runs page the same way.
    let mut runs = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/runs?kind=store.provision&limit=50&cursor={c}"),
            None => "/api/v1/runs?kind=store.provision&limit=50".to_owned(),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        for r in page["items"].as_array().unwrap() {
            assert!(
                runs.insert(r["id"].as_str().unwrap().to_owned()),
                "run twice"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(runs.len() as i64, app.count("runs").await);
}
