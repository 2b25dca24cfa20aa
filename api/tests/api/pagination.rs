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

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_stores_runs_come_a_page_at_a_time(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |_| {}).await;
    let id = app.created("Busy Shop").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Twelve finished repairs of the store, as years of operation leave behind.
    sqlx::query(
        "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by, finished_at)
         SELECT gen_random_uuid(), 'store.repair', 1, 'store:' || $1, '{}', 'succeeded', 'test', now()
         FROM generate_series(1, 12)",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    let mut seen = HashSet::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/stores/{id}/runs?limit=5&cursor={c}"),
            None => format!("/api/v1/stores/{id}/runs?limit=5"),
        };
        let page: Value = app.get(&path).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5, "{page}");
        for r in items {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_owned()),
                "run twice"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 13, "the provisioning run and twelve repairs");
    assert_eq!(pages, 3);
    problem(
        app.get(&format!("/api/v1/stores/{id}/runs?cursor=nonsense"))
            .await,
        400,
    )
    .await;
    problem(
        app.get(&format!("/api/v1/stores/{id}/runs?limit=201"))
            .await,
        400,
    )
    .await;
}
