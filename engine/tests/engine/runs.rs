//! The happy path: steps run in order, outputs flow, events record everything.

use std::sync::Arc;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, RunStatus, StepOutcome, StepStatus, Worker};

use crate::helpers::*;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_run_of_several_steps_completes_and_each_output_reaches_the_next(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let mut b = Definition::builder("chain", 1);
    b = counted(
        b,
        "double",
        &counter,
        Arc::new(|ctx, _| {
            let n = ctx.input["n"].as_i64().unwrap();
            StepOutcome::done(json!({ "n": n * 2 }))
        }),
    );
    b = counted(
        b,
        "add_three",
        &counter,
        Arc::new(|ctx, _| {
            let prev: serde_json::Value = ctx.output_of("double")?;
            StepOutcome::done(json!({ "n": prev["n"].as_i64().unwrap() + 3 }))
        }),
    );
    b = counted(
        b,
        "square",
        &counter,
        Arc::new(|ctx, _| {
            let prev: serde_json::Value = ctx.output_of("add_three")?;
            let n = prev["n"].as_i64().unwrap();
            StepOutcome::done(json!({ "n": n * n }))
        }),
    );
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;

    let run = start(&engine, "chain", "subject-1", json!({ "n": 5 })).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;

    assert_eq!(d.run.output, Some(json!({ "n": 169 })), "(5*2+3)^2");
    assert_eq!(step(&d, "double").output, Some(json!({ "n": 10 })));
    assert_eq!(step(&d, "add_three").output, Some(json!({ "n": 13 })));
    for s in &d.steps {
        assert_eq!(s.status(), StepStatus::Succeeded);
        assert_eq!(s.attempts, 1);
        assert!(s.started_at.is_some() && s.finished_at.is_some());
        assert_eq!(counter.get(&s.name), 1);
    }
    assert!(d.run.finished_at.is_some());
    assert!(d.run.lease_owner.is_none(), "a finished run holds no lease");
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn every_transition_is_an_event_with_its_actor_in_order(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("three", &counter)]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "three", "s", json!({})).await;
    wait_status(&engine, run, RunStatus::Succeeded).await;
    let events = engine.events_for_run(run).await.unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match &e.step {
            Some(s) => format!("{}:{s}", e.kind),
            None => e.kind.clone(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run.created",
            "run.claimed:a",
            "step.succeeded:a",
            "step.succeeded:b",
            "run.succeeded:c",
        ]
    );
    // A state change written in the same commit as another is named by that one's event:
    // the claim started step a (attempt 1), each checkpoint started the next step, and the
    // run succeeded with its last step.
    let claimed = events.iter().find(|e| e.kind == "run.claimed").unwrap();
    assert_eq!(claimed.detail, json!({ "attempt": 1 }));
    let ended = events.iter().find(|e| e.kind == "run.succeeded").unwrap();
    assert!(
        ended.detail["duration_ms"].is_number(),
        "{:?}",
        ended.detail
    );
    // A checkpoint that also started the next step says so in its one event.
    let next: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "step.succeeded")
        .map(|e| (e.detail["next"].clone(), e.detail["next_attempt"].clone()))
        .collect();
    assert_eq!(next, [(json!("b"), json!(1)), (json!("c"), json!(1))]);
    // The audit log: by kind, step progress is found too; by actor, an actor's actions (a
    // worker's claims and run ends), not its step progress.
    let by_kind = engine
        .list_events(
            &urumi_engine::EventFilter {
                kind: Some("step.succeeded".into()),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap();
    assert_eq!(by_kind.len(), 2);
    let worker_id = events
        .iter()
        .find(|e| e.kind == "run.claimed")
        .unwrap()
        .actor
        .clone();
    let by_actor: Vec<String> = engine
        .list_events(
            &urumi_engine::EventFilter {
                actor: Some(worker_id),
                ..Default::default()
            },
            50,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(by_actor, ["run.succeeded", "run.claimed"], "newest first");
    assert_eq!(events[0].actor, "tester");
    assert!(
        events[1..].iter().all(|e| e.actor == worker.id()),
        "worker transitions carry the worker's id"
    );
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn two_workers_share_many_runs_and_no_step_runs_twice(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("three", &counter)]);
    let w1 = start_worker(&pool, &engine, fast_options()).await;
    let w2 = Worker::new(pool.clone(), engine.registry().clone(), fast_options())
        .start()
        .await
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..200 {
        runs.push(start(&engine, "three", &format!("s{i}"), json!({})).await);
    }
    for run in &runs {
        wait_status(&engine, *run, RunStatus::Succeeded).await;
    }
    assert_eq!(counter.get("a"), 200);
    assert_eq!(counter.get("b"), 200);
    assert_eq!(counter.get("c"), 200);
    let by_worker = count(
        &pool,
        "SELECT count(DISTINCT actor) FROM urumi.events WHERE kind = 'run.claimed'",
    )
    .await;
    assert_eq!(by_worker, 2, "both workers claimed runs");
    w1.shutdown().await.unwrap();
    w2.shutdown().await.unwrap();
}
