//! Bad requests get a clear error and change nothing.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, Error, NewRun, RunStatus, WorkerOptions, parse_input};

use crate::helpers::*;

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "deserialized only to check the input's shape")]
struct StoreInput {
    name: String,
    plan: String,
}

fn typed(counter: &Counter) -> Definition {
    counted(
        Definition::builder("typed", 1).input::<StoreInput>(),
        "a",
        counter,
        done(),
    )
    .build()
    .unwrap()
}

async fn nothing_written(pool: &PgPool) {
    assert_eq!(count(pool, "SELECT count(*) FROM urumi.runs").await, 0);
    assert_eq!(count(pool, "SELECT count(*) FROM urumi.events").await, 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_unknown_definition_or_version_is_refused_and_nothing_is_written(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let engine = engine(&pool, vec![typed(&Counter::default())]);
    let err = engine
        .start_run(NewRun::new("nope", "s", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownDefinition { .. }));
    assert_eq!(err.to_string(), "unknown workflow definition \"nope\"");
    let err = engine
        .start_run(NewRun::new("typed", "s", json!({})).version(7))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown workflow definition \"typed\" version 7"
    );
    nothing_written(&pool).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn malformed_input_json_is_refused_and_nothing_is_written(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let engine = engine(&pool, vec![typed(&Counter::default())]);
    let err = parse_input("typed", "{\"name\": ").unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    assert!(err.to_string().contains("EOF while parsing"), "{err}");
    let err = engine
        .start_run(NewRun::new("typed", "s", json!({ "name": 3 })))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    assert!(
        err.to_string()
            .starts_with("invalid input for \"typed@1\": invalid type: integer `3`"),
        "{err}"
    );
    let err = engine
        .start_run(NewRun::new(
            "typed",
            "",
            json!({ "name": "x", "plan": "y" }),
        ))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("subject must be 1 to 512 characters"),
        "{err}"
    );
    nothing_written(&pool).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn cancelling_a_finished_run_or_retrying_a_healthy_one_is_refused_and_changes_nothing(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("three", &counter)]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "three", "s", json!({})).await;
    wait_status(&engine, run, RunStatus::Succeeded).await;
    worker.shutdown().await.unwrap();
    let events_before = count(&pool, "SELECT count(*) FROM urumi.events").await;

    let err = engine.cancel_run(run, "op").await.unwrap_err();
    assert!(matches!(err, Error::InvalidState { .. }));
    assert!(
        err.to_string()
            .contains("is succeeded: only a queued, running or waiting run can be cancelled"),
        "{err}"
    );
    let err = engine.retry_run(run, "op").await.unwrap_err();
    assert!(
        err.to_string().contains("only a failed run can be retried"),
        "{err}"
    );
    let missing = uuid::Uuid::now_v7();
    assert!(
        matches!(engine.cancel_run(missing, "op").await.unwrap_err(), Error::NotFound(id) if id == missing)
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.events").await,
        events_before
    );
    assert_eq!(
        engine.run(run).await.unwrap().run.status(),
        RunStatus::Succeeded
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_leaves_runs_of_versions_it_lacks_to_a_worker_that_has_them(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let v1 = counted(Definition::builder("wf", 1), "old", &counter, done())
        .build()
        .unwrap();
    let v2 = counted(Definition::builder("wf", 2), "new", &counter, done())
        .build()
        .unwrap();
    let both = engine(&pool, vec![v1.clone(), v2.clone()]);
    let only_v1 = engine(&pool, vec![v1]);
    let old_worker = start_worker(&pool, &only_v1, fast_options()).await;
    let run = both
        .start_run(NewRun::new("wf", "s", json!({})))
        .await
        .unwrap()
        .run_id;
    assert_eq!(
        both.run(run).await.unwrap().run.version,
        2,
        "the latest version is pinned"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        both.run(run).await.unwrap().run.status(),
        RunStatus::Queued,
        "the v1 worker left it alone"
    );

    let new_worker = start_worker(&pool, &both, fast_options()).await;
    wait_status(&both, run, RunStatus::Succeeded).await;
    assert_eq!(counter.get("new"), 1);
    assert_eq!(counter.get("old"), 0);
    old_worker.shutdown().await.unwrap();
    new_worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_run_whose_version_no_live_worker_serves_fails_with_a_clear_error(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let v1 = counted(Definition::builder("wf", 1), "old", &counter, done())
        .build()
        .unwrap();
    let v2 = counted(Definition::builder("wf", 2), "new", &counter, done())
        .build()
        .unwrap();
    let api_side = engine(&pool, vec![v1.clone(), v2]);
    let worker_side = engine(&pool, vec![v1]);
    let run = api_side
        .start_run(NewRun::new("wf", "s", json!({})))
        .await
        .unwrap()
        .run_id;
    let opts = WorkerOptions {
        unserved_grace: Duration::from_millis(300),
        ..fast_options()
    };
    let worker = start_worker(&pool, &worker_side, opts).await;
    let d = wait_status(&api_side, run, RunStatus::Failed).await;
    assert_eq!(
        d.run.error.as_deref(),
        Some("no live worker serves workflow wf@2")
    );
    assert_eq!(counter.get("new"), 0);
    worker.shutdown().await.unwrap();
}
