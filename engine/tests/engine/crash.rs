//! Crash recovery: a worker dies at a named failure point (or is killed outright); a new
//! worker on the same database finishes the run, and no succeeded step runs again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{
    Definition, FailAction, FailPoint, FailPoints, RunStatus, StepOutcome, StepStatus,
    WorkerOptions,
};

use crate::helpers::*;

fn crashing_at(point: FailPoint, step: &str) -> WorkerOptions {
    WorkerOptions {
        failpoints: FailPoints::at(point, step, FailAction::CrashWorker),
        ..fast_options()
    }
}

/// Runs `three` with a worker that dies at `point` for `step`, then a fresh worker.
/// Returns the finished run and the execution counter.
async fn crash_and_recover(
    pool: &PgPool,
    point: FailPoint,
    step: &str,
) -> (urumi_engine::RunDetail, Counter) {
    let counter = Counter::default();
    let engine = engine(pool, vec![three_steps("three", &counter)]);
    let doomed = start_worker(pool, &engine, crashing_at(point, step)).await;
    let run = start(&engine, "three", "s", json!({})).await;
    tokio::time::timeout(Duration::from_secs(20), doomed.stopped())
        .await
        .expect("the failure point fired")
        .unwrap();
    let before = engine.run(run).await.unwrap();
    assert_eq!(
        before.run.status(),
        RunStatus::Running,
        "a dead worker leaves its run leased"
    );

    let rescuer = start_worker(pool, &engine, fast_options()).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    let events = engine.events_for_run(run).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "run.lease_expired"),
        "the sweeper took the run over"
    );
    rescuer.shutdown().await.unwrap();
    (d, counter)
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_crash_before_a_step_starts_resumes_there_and_reruns_nothing(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let (d, counter) = crash_and_recover(&pool, FailPoint::BeforeStepStart, "a").await;
    for s in ["a", "b", "c"] {
        assert_eq!(counter.get(s), 1, "step {s} ran once");
    }
    // The claim recorded attempt 1 before the crash; the step's code ran only once.
    assert_eq!(step(&d, "a").attempts, 2);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_crash_in_the_middle_of_a_step_reruns_only_that_step(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let (d, counter) = crash_and_recover(&pool, FailPoint::MidStep, "b").await;
    assert_eq!(
        counter.get("a"),
        1,
        "the succeeded step before the crash did not run again"
    );
    assert_eq!(
        counter.get("b"),
        2,
        "the interrupted step ran again (at-least-once)"
    );
    assert_eq!(counter.get("c"), 1);
    assert_eq!(step(&d, "a").attempts, 1);
    assert_eq!(step(&d, "b").attempts, 2);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_crash_after_a_checkpoint_commit_does_not_rerun_the_checkpointed_step(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let (d, counter) = crash_and_recover(&pool, FailPoint::AfterCheckpointCommit, "b").await;
    assert_eq!(counter.get("a"), 1);
    assert_eq!(
        counter.get("b"),
        1,
        "b was checkpointed before the crash: never again"
    );
    assert_eq!(
        counter.get("c"),
        1,
        "c had been marked started but never ran before the crash"
    );
    assert!(d.steps.iter().all(|s| s.status() == StepStatus::Succeeded));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_killed_worker_holding_a_long_step_is_taken_over_after_its_lease(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let mut b = Definition::builder("slow", 1);
    b = counted(b, "quick", &counter, done());
    let c2 = counter.clone();
    b = b.step("long", move |ctx: urumi_engine::StepContext| {
        let c2 = c2.clone();
        async move {
            let n = c2.hit(&ctx.step);
            if n == 1 {
                // The first attempt hangs until its worker is killed.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            StepOutcome::done(json!("finished"))
        }
    });
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let victim = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "slow", "s", json!({})).await;
    wait_for(&engine, run, Duration::from_secs(10), "long running", |d| {
        step(d, "long").status() == StepStatus::Running
    })
    .await;
    // The heartbeat keeps the lease alive while the step runs longer than a lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        engine.run(run).await.unwrap().run.status(),
        RunStatus::Running
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM urumi.events WHERE kind = 'run.lease_expired'"
        )
        .await,
        0
    );

    victim.kill();
    let rescuer = start_worker(&pool, &engine, fast_options()).await;
    let d = wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(counter.get("quick"), 1);
    assert_eq!(counter.get("long"), 2);
    assert_eq!(step(&d, "long").attempts, 2);
    assert_eq!(d.run.output, Some(json!("finished")));
    rescuer.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn graceful_shutdown_finishes_the_current_step_and_releases_the_run(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let entered_tx = Arc::new(std::sync::Mutex::new(entered_tx));
    let mut b = Definition::builder("two", 1);
    b = b.step("first", move |_ctx: urumi_engine::StepContext| {
        let tx = entered_tx.clone();
        async move {
            let _ = tx.lock().unwrap().send(());
            tokio::time::sleep(Duration::from_millis(300)).await;
            StepOutcome::done(json!(1))
        }
    });
    b = counted(b, "second", &counter, done());
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let w1 = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "two", "s", json!({})).await;
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    w1.shutdown().await.unwrap();

    let d = engine.run(run).await.unwrap();
    assert_eq!(
        d.run.status(),
        RunStatus::Queued,
        "released at the boundary, due now"
    );
    assert_eq!(
        step(&d, "first").status(),
        StepStatus::Succeeded,
        "the current step was finished"
    );
    assert_eq!(step(&d, "second").status(), StepStatus::Pending);
    assert!(d.run.lease_owner.is_none());

    let w2 = start_worker(&pool, &engine, fast_options()).await;
    wait_status(&engine, run, RunStatus::Succeeded).await;
    assert_eq!(counter.get("second"), 1);
    w2.shutdown().await.unwrap();
}
