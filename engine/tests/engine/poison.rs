//! What must end instead of looping or spreading: a step that kills every worker running it,
//! a panicking step, transient errors (which spend time, not attempts), and text Postgres
//! cannot store (which must fail one run, never a batch of others).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{
    Definition, FailAction, FailPoint, FailPoints, RetryPolicy, RunStatus, StepError, StepOptions,
    StepOutcome, WorkerOptions,
};

use crate::helpers::*;

fn attempts(max_attempts: u32) -> StepOptions {
    StepOptions::default().retry(RetryPolicy {
        initial_interval: Duration::from_millis(50),
        multiplier: 1.0,
        max_interval: Duration::from_millis(50),
        max_attempts,
    })
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_step_that_kills_every_worker_running_it_fails_the_run_naming_the_step(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let mut b = Definition::builder("poison", 1).step_defaults(attempts(3));
    for s in ["a", "b", "c"] {
        b = counted(b, s, &counter, done());
    }
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let run = start(&engine, "poison", "s", json!({})).await;
    // Three workers, one after the other, each dies while running `b`.
    for _ in 0..3 {
        let doomed = start_worker(
            &pool,
            &engine,
            WorkerOptions {
                failpoints: FailPoints::at(FailPoint::MidStep, "b", FailAction::CrashWorker),
                ..fast_options()
            },
        )
        .await;
        tokio::time::timeout(Duration::from_secs(20), doomed.stopped())
            .await
            .expect("the worker died in b")
            .unwrap();
    }
    // The next worker does not run `b` a fourth time: its attempts are spent.
    let healthy = start_worker(&pool, &engine, fast_options()).await;
    let d = wait_status(&engine, run, RunStatus::Failed).await;
    healthy.shutdown().await.unwrap();
    let error = d.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("\"b\"") && error.contains("the worker died 3 times while running it"),
        "{error}"
    );
    assert_eq!(
        counter.get("b"),
        3,
        "b ran once per dead worker, never again"
    );
    assert_eq!(counter.get("c"), 0);
    assert_eq!(step(&d, "b").interrupted, 3);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_panicking_step_is_a_failed_attempt_with_the_panic_message(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let b = Definition::builder("panics", 1).step_defaults(attempts(2));
    let b = counted(
        b,
        "boom",
        &counter,
        Arc::new(|_, _| panic!("the index was out of range")),
    );
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "panics", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Failed).await;
    worker.shutdown().await.unwrap();
    let s = step(&d, "boom");
    assert_eq!(s.attempts, 2, "each panic is one attempt");
    assert_eq!(s.interrupted, 0, "a panic is not a dead worker");
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("step panicked: the index was out of range"),
        "{:?}",
        s.last_error
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn transient_errors_cost_no_attempt_until_their_time_budget_is_spent(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    // `weather` fails transiently 4 times, then succeeds; it has a single attempt.
    let b = Definition::builder("weather", 1).step_defaults(attempts(1));
    let b = counted(
        b,
        "weather",
        &counter,
        Arc::new(|_, n| {
            if n <= 4 {
                Err(StepError::transient(format!("503 number {n}")))
            } else {
                StepOutcome::done(json!("ok"))
            }
        }),
    );
    // `storm` never stops failing transiently; its budget is short.
    let s = Definition::builder("storm", 1).step_defaults(
        attempts(1)
            .transient_budget(Duration::from_secs(2))
            .retry(RetryPolicy::never()),
    );
    let s = counted(
        s,
        "storm",
        &counter,
        Arc::new(|_, _| Err(StepError::transient("connection reset"))),
    );
    let engine = engine(&pool, vec![b.build().unwrap(), s.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let ok = start(&engine, "weather", "w", json!({})).await;
    let bad = start(&engine, "storm", "s", json!({})).await;

    let d = wait_status(&engine, ok, RunStatus::Succeeded).await;
    assert_eq!(
        step(&d, "weather").attempts,
        1,
        "transient errors spent no attempt"
    );
    let events = engine.events_for_run(ok).await.unwrap();
    let classes: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "step.retry_scheduled")
        .map(|e| &e.detail["class"])
        .collect();
    assert_eq!(classes, vec![&json!("transient"); 4], "{events:?}");

    let d = wait_status(&engine, bad, RunStatus::Failed).await;
    worker.shutdown().await.unwrap();
    let error = d.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("connection reset") && error.contains("transient budget is 2s"),
        "{error}"
    );
    assert_eq!(step(&d, "storm").attempts, 1);
    assert!(counter.get("storm") > 1, "it was retried within the budget");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn nul_bytes_are_cleaned_and_an_unstorable_output_fails_only_its_own_run(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    // A row Postgres refuses for its data (SQLSTATE class 22), as it refuses too deeply nested
    // JSON or an oversized value: here any output that says "unstorable".
    sqlx::raw_sql(
        "CREATE FUNCTION pg_temp_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.output::text LIKE '%unstorable%' THEN
                 RAISE EXCEPTION 'value refused by the test' USING ERRCODE = '22023';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON urumi.steps
             FOR EACH ROW EXECUTE FUNCTION pg_temp_refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();
    let counter = Counter::default();
    let d = Definition::builder("texts", 1).step_defaults(attempts(1));
    let d = counted(
        d,
        "speak",
        &counter,
        Arc::new(|ctx, _| match ctx.input["mode"].as_str() {
            Some("nul-error") => Err(StepError::fatal("log tail: a\0b")),
            Some("nul-output") => StepOutcome::done(json!({ "body\0": "x\0y" })),
            Some("unstorable") => StepOutcome::done(json!("unstorable")),
            _ => StepOutcome::done(json!("fine")),
        }),
    );
    let d = counted(d, "after", &counter, done());
    let engine = engine(&pool, vec![d.build().unwrap()]);
    let mut fine = Vec::new();
    for i in 0..12 {
        fine.push(start(&engine, "texts", &format!("fine-{i}"), json!({})).await);
    }
    let nul_error = start(&engine, "texts", "e", json!({ "mode": "nul-error" })).await;
    let nul_output = start(&engine, "texts", "o", json!({ "mode": "nul-output" })).await;
    let unstorable = start(&engine, "texts", "u", json!({ "mode": "unstorable" })).await;
    let worker = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 16,
            ..fast_options()
        },
    )
    .await;

    let d = wait_status(&engine, nul_error, RunStatus::Failed).await;
    assert!(d.run.error.unwrap().contains("log tail: a\u{FFFD}b"));
    let d = wait_status(&engine, nul_output, RunStatus::Succeeded).await;
    assert_eq!(
        step(&d, "speak").output,
        Some(json!({ "body\u{FFFD}": "x\u{FFFD}y" }))
    );
    let d = wait_status(&engine, unstorable, RunStatus::Failed).await;
    let error = d.run.error.unwrap_or_default();
    assert!(error.contains("output could not be stored"), "{error}");
    // Whatever batch the refused output landed in, the other runs finished.
    for run in fine {
        wait_status(&engine, run, RunStatus::Succeeded).await;
    }
    worker.shutdown().await.unwrap();
}
