//! The apalis extension traits the engine's queue implements: `ListWorkers` lists the rows of
//! `urumi.workers`, `WaitForCompletion` yields each run's end (task id = run id).

use apalis_core::backend::{ListWorkers, WaitForCompletion};
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use futures::StreamExt;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, StepError, Worker};

use crate::helpers::*;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn list_workers_and_wait_for_completion_read_the_engines_tables(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let failing = Definition::builder("broken", 1)
        .step("only", |_ctx| async { Err(StepError::fatal("it broke")) })
        .build()
        .unwrap();
    let engine = engine(&pool, vec![three_steps("three", &counter), failing]);
    let registered = Worker::new(pool.clone(), engine.registry().clone(), fast_options())
        .register()
        .await
        .unwrap();
    let mut queue = registered.queue();
    let running = start_worker(&pool, &engine, fast_options()).await;

    let live = queue.list_workers().await.unwrap();
    let ids: Vec<&str> = live.iter().map(|w| w.id.as_str()).collect();
    assert!(
        ids.contains(&registered.id()) && ids.contains(&running.id()),
        "{ids:?}"
    );
    assert!(
        live.iter()
            .all(|w| w.backend == "urumi.runs" && w.queue.contains("three@1"))
    );

    let ok = start(&engine, "three", "a", json!({})).await;
    let bad = start(&engine, "broken", "b", json!({})).await;
    let nobody = uuid::Uuid::now_v7();
    let mut results: Vec<_> = queue
        .wait_for([ok, bad, nobody].map(TaskId::from_uuid))
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await;
    results.sort_by_key(|r| r.task_id.to_string());
    let of = |id: uuid::Uuid| {
        results
            .iter()
            .find(|r| r.task_id == TaskId::from_uuid(id))
            .unwrap()
    };
    let done = of(ok);
    assert_eq!(done.status, Status::Done);
    assert_eq!(
        done.result,
        Ok(engine.run(ok).await.unwrap().run.output.unwrap())
    );
    let failed = of(bad);
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed.result.as_ref().unwrap_err().contains("it broke"),
        "{failed:?}"
    );
    assert_eq!(of(nobody).result, Err("no such run".to_owned()));

    running.shutdown().await.unwrap();
    registered.finish().await.unwrap();
    let all = queue.list_all_workers().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        queue.list_workers().await.unwrap().is_empty(),
        "both stopped"
    );
}
