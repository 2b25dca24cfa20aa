//! Waiting steps: hold no slot, cost no attempt, and are bounded by their deadline.

use std::time::Duration;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, RunStatus, StepOptions, StepOutcome, StepStatus, WorkerOptions};

use crate::helpers::*;

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn waiting_runs_hold_no_worker_slot_and_polls_cost_no_attempts(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let mut b = Definition::builder("poller", 1);
    // Each run's `ready` step says "not yet" until its third poll.
    b = b.step("ready", |ctx: urumi_engine::StepContext| async move {
        if ctx.polls < 3 {
            Ok(StepOutcome::wait(Duration::from_millis(100), "not ready"))
        } else {
            StepOutcome::done(json!({ "polls": ctx.polls, "attempt": ctx.attempt }))
        }
    });
    b = counted(b, "after", &counter, done());
    let engine = engine(&pool, vec![b.build().unwrap()]);
    // One slot, eight runs that each wait three times: they can only all finish if a
    // waiting run gives its slot up.
    let worker = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 1,
            ..fast_options()
        },
    )
    .await;
    let mut runs = Vec::new();
    for i in 0..8 {
        runs.push(start(&engine, "poller", &format!("s{i}"), json!({})).await);
    }
    for run in &runs {
        let d = wait_status(&engine, *run, RunStatus::Succeeded).await;
        let ready = step(&d, "ready");
        assert_eq!(ready.attempts, 1, "polls are not attempts");
        assert_eq!(ready.polls, 3);
        assert_eq!(ready.output, Some(json!({ "polls": 3, "attempt": 1 })));
    }
    assert_eq!(counter.get("after"), 8);
    let waits = count(
        &pool,
        "SELECT count(*) FROM urumi.events WHERE kind = 'step.waiting'",
    )
    .await;
    // Three polls per run with the same reason: one state change each, not one per poll.
    assert_eq!(
        waits, 8,
        "one step.waiting per run, however often it polled"
    );
    let mut starts = 0;
    for run in &runs {
        starts += starts_of(&engine.events_for_run(*run).await.unwrap(), "ready").len();
    }
    assert_eq!(starts, 8, "a poll writes no start");
    for run in &runs {
        let d = engine.run(*run).await.unwrap();
        assert_eq!(step(&d, "ready").wait_reason.as_deref(), Some("not ready"));
    }
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_wait_deadline_fails_the_step_with_a_clear_error(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let def = Definition::builder("never_ready", 1)
        .step_with(
            "ready",
            StepOptions::default().wait_deadline(Duration::from_millis(500)),
            |_ctx: urumi_engine::StepContext| async move {
                Ok(StepOutcome::wait(
                    Duration::from_millis(150),
                    "database not ready",
                ))
            },
        )
        .build()
        .unwrap();
    let engine = engine(&pool, vec![def]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "never_ready", "s", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Failed).await;
    let s = step(&d, "ready");
    assert_eq!(s.status(), StepStatus::Failed);
    assert_eq!(s.attempts, 1);
    let err = s.last_error.as_deref().unwrap();
    assert!(err.contains("wait deadline is 0.5s"), "{err}");
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_long_wait_gives_the_slot_to_other_runs(_: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let long_wait = Definition::builder("long_wait", 1)
        .step("ready", |ctx: urumi_engine::StepContext| async move {
            if ctx.polls == 0 {
                Ok(StepOutcome::wait(Duration::from_secs(3600), "a long time"))
            } else {
                StepOutcome::done(json!(null))
            }
        })
        .build()
        .unwrap();
    let quick = three_steps("quick", &counter);
    let engine = engine(&pool, vec![long_wait, quick]);
    let worker = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 1,
            ..fast_options()
        },
    )
    .await;
    let waiting = start(&engine, "long_wait", "w", json!({})).await;
    wait_status(&engine, waiting, RunStatus::Waiting).await;
    let quick_run = start(&engine, "quick", "q", json!({})).await;
    wait_status(&engine, quick_run, RunStatus::Succeeded).await;
    let d = engine.run(waiting).await.unwrap();
    assert_eq!(d.run.status(), RunStatus::Waiting);
    assert!(d.run.lease_owner.is_none(), "a waiting run holds no lease");
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_waiting_step_records_each_new_reason_once(_: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    // Polls 0-1 wait for the database, 2-4 for the web server, then it is ready.
    let def = Definition::builder("phases", 1)
        .step("ready", |ctx: urumi_engine::StepContext| async move {
            let reason = match ctx.polls {
                0 | 1 => "database not ready",
                2..=4 => "web server not ready",
                _ => return StepOutcome::done(json!({})),
            };
            Ok(StepOutcome::wait(Duration::from_millis(20), reason))
        })
        .build()
        .unwrap();
    let engine = engine(&pool, vec![def]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "phases", "p", json!({})).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(step(&d, "ready").polls, 5);
    assert_eq!(
        step(&d, "ready").wait_reason.as_deref(),
        Some("web server not ready"),
        "the last reason stays visible on the step"
    );
    let reasons: Vec<String> = engine
        .events_for_run(run)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == "step.waiting")
        .map(|e| e.detail["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["database not ready", "web server not ready"]);
    worker.shutdown().await.unwrap();
}
