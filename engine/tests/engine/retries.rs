//! Retries: backoff persisted and honoured, fatal errors, exhaustion, operator retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{
    Definition, RetryPolicy, RunStatus, StepError, StepOptions, StepOutcome, StepStatus,
};

use crate::helpers::*;

fn policy(max_attempts: u32) -> StepOptions {
    StepOptions::default().retry(RetryPolicy {
        initial_interval: Duration::from_millis(300),
        multiplier: 2.0,
        max_interval: Duration::from_secs(2),
        max_attempts,
    })
}

/// `a` succeeds, `flaky` fails retryably `fails` times then succeeds, `c` succeeds.
fn flaky(counter: &Counter, fails: usize, max_attempts: u32) -> Definition {
    let mut b = Definition::builder("flaky", 1);
    b = counted(b, "a", counter, done());
    b = b.step_defaults(policy(max_attempts));
    b = counted(
        b,
        "flaky",
        counter,
        Arc::new(move |_, n| {
            if n <= fails {
                Err(StepError::retryable(format!("blip {n}")))
            } else {
                StepOutcome::done(json!("ok"))
            }
        }),
    );
    b = counted(b, "c", counter, done());
    b.build().unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn retryable_failures_back_off_and_no_attempt_starts_before_its_backoff(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![flaky(&counter, 2, 5)]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "flaky", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(step(&d, "flaky").attempts, 3);
    assert_eq!(counter.get("a"), 1, "retries do not rerun earlier steps");
    assert_eq!(step(&d, "flaky").last_error.as_deref(), Some("blip 2"));

    // Each retry_scheduled event names its backoff; the next step.started came no earlier.
    let events = engine.events_for_run(run).await.unwrap();
    let flaky_events: Vec<_> = events
        .iter()
        .filter(|e| e.step.as_deref() == Some("flaky"))
        .collect();
    let mut retries = 0;
    for pair in flaky_events.windows(2) {
        if pair[0].kind == "step.retry_scheduled" {
            retries += 1;
            assert_eq!(pair[1].kind, "step.started");
            let after_ms = pair[0].detail["after_ms"].as_i64().unwrap();
            let gap = (pair[1].created_at - pair[0].created_at).num_milliseconds();
            assert!(
                gap >= after_ms,
                "retried after {gap} ms, before its backoff of {after_ms} ms"
            );
        }
    }
    assert_eq!(retries, 2);
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn attempts_and_backoff_survive_a_worker_restart(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let long = StepOptions::default().retry(RetryPolicy {
        initial_interval: Duration::from_secs(1),
        multiplier: 1.0,
        max_interval: Duration::from_secs(1),
        max_attempts: 3,
    });
    let mut b = Definition::builder("flaky", 1).step_defaults(long);
    b = counted(
        b,
        "flaky",
        &counter,
        Arc::new(|_, n| {
            if n <= 1 {
                Err(StepError::retryable("first try fails"))
            } else {
                StepOutcome::done(json!(n))
            }
        }),
    );
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let w1 = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "flaky", "s", json!({})).await;
    let waiting = wait_status(&engine, run, RunStatus::Waiting).await;
    w1.shutdown().await.unwrap();
    let s = step(&waiting, "flaky");
    assert_eq!(s.attempts, 1);
    assert_eq!(s.wait_kind.as_deref(), Some("backoff"));
    let next_attempt_at = s.next_attempt_at.expect("the backoff is persisted");
    assert_eq!(next_attempt_at, waiting.run.wake_at);

    let w2 = start_worker(&pool, &engine, fast_options()).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(
        step(&d, "flaky").attempts,
        2,
        "the attempt count carried over the restart"
    );
    let restarted = engine.events_for_run(run).await.unwrap();
    let starts = starts_of(&restarted, "flaky");
    assert_eq!(starts.len(), 2, "{restarted:#?}");
    let second_start = starts[1];
    assert!(
        second_start.created_at >= next_attempt_at,
        "the new worker honoured the persisted backoff"
    );
    w2.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_fatal_error_fails_the_run_at_once(_: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let mut b = Definition::builder("fatal", 1).step_defaults(policy(5));
    b = counted(b, "a", &counter, done());
    b = counted(
        b,
        "boom",
        &counter,
        Arc::new(|_, _| Err(StepError::fatal("bad plan"))),
    );
    b = counted(b, "never", &counter, done());
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "fatal", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Failed).await;
    assert_eq!(step(&d, "boom").attempts, 1);
    assert_eq!(step(&d, "boom").status(), StepStatus::Failed);
    assert_eq!(step(&d, "never").status(), StepStatus::Pending);
    assert_eq!(counter.get("never"), 0);
    assert_eq!(
        d.run.error.as_deref(),
        Some("step \"boom\" failed: bad plan")
    );
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn exhausted_retries_fail_the_run_with_the_last_error_and_an_operator_retry_resumes_there(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let healed = Arc::new(AtomicBool::new(false));
    let h = healed.clone();
    let mut b = Definition::builder("flaky", 1);
    b = counted(b, "a", &counter, done());
    b = b.step_defaults(StepOptions::default().retry(RetryPolicy {
        initial_interval: Duration::from_millis(20),
        multiplier: 1.0,
        max_interval: Duration::from_millis(20),
        max_attempts: 3,
    }));
    b = counted(
        b,
        "flaky",
        &counter,
        Arc::new(move |_, n| {
            if h.load(Ordering::SeqCst) {
                StepOutcome::done(json!("healed"))
            } else {
                Err(StepError::retryable(format!("still broken ({n})")))
            }
        }),
    );
    b = counted(b, "c", &counter, done());
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "flaky", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Failed).await;
    assert_eq!(step(&d, "flaky").attempts, 3);
    assert_eq!(
        step(&d, "flaky").last_error.as_deref(),
        Some("still broken (3) (gave up after 3 attempts)")
    );
    assert!(d.run.error.as_deref().unwrap().contains("still broken (3)"));

    healed.store(true, Ordering::SeqCst);
    let resumed_at = engine.retry_run(run, "operator:alice").await.unwrap();
    assert_eq!(resumed_at, "flaky");
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(
        counter.get("a"),
        1,
        "the completed step kept its checkpoint"
    );
    assert_eq!(counter.get("flaky"), 4);
    assert_eq!(counter.get("c"), 1);
    assert_eq!(
        step(&d, "flaky").attempts,
        1,
        "a retry starts a fresh attempt budget"
    );
    assert_eq!(
        step(&d, "flaky").last_error,
        None,
        "the failure before the retry stays in the event log, not on the step"
    );
    let events = engine.events_for_run(run).await.unwrap();
    let retried = events.iter().find(|e| e.kind == "run.retried").unwrap();
    assert_eq!(retried.actor, "operator:alice");
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_step_that_exceeds_its_timeout_is_retried(_: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let c = counter.clone();
    let opts = StepOptions::default()
        .timeout(Duration::from_millis(100))
        .retry(RetryPolicy {
            initial_interval: Duration::from_millis(10),
            multiplier: 1.0,
            max_interval: Duration::from_millis(10),
            max_attempts: 3,
        });
    let def = Definition::builder("slow", 1)
        .step_with("hangs_once", opts, move |ctx: urumi_engine::StepContext| {
            let n = c.hit(&ctx.step);
            async move {
                if n == 1 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                StepOutcome::done(json!(n))
            }
        })
        .build()
        .unwrap();
    let engine = engine(&pool, vec![def]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "slow", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(step(&d, "hangs_once").attempts, 2);
    let events = engine.events_for_run(run).await.unwrap();
    let retry = events
        .iter()
        .find(|e| e.kind == "step.retry_scheduled")
        .unwrap();
    assert_eq!(retry.detail["error"], json!("step timed out after 0.1s"));
    worker.shutdown().await.unwrap();
}
