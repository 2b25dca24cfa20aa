//! A bulk operation carried by real `urumi-worker` processes: the worker holding its parent
//! run and a target is SIGKILLed while the operation is being paused; another process takes
//! both over, obeys the pause, and finishes the operation once resumed — every target started
//! exactly once.

mod common;

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunStatus, StepStatus};
use urumi_ops::{Action, Control, OperationState, Ops, Selector, Spec};
use uuid::Uuid;

use common::{WorkerProcess, url_for, wait_until};

/// A failed `demo@1` run: `greet` succeeded, `work` (sleeping `work_ms` when run) failed.
async fn failed_demo(pool: &PgPool, name: &str, work_ms: u64) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO urumi.runs (id, definition, version, subject, input, status, error, created_by, started_at, finished_at)
         VALUES ($1, 'demo', 1, $2, $3, 'failed', 'boom', 'test', now(), now())",
    )
    .bind(id)
    .bind(name)
    .bind(json!({ "name": name, "work_ms": work_ms }))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO urumi.steps (run_id, name, position, status, attempts, output, last_error)
         VALUES ($1, 'greet', 0, 'succeeded', 1, $2, NULL),
                ($1, 'work', 1, 'failed', 1, NULL, 'boom'),
                ($1, 'finish', 2, 'pending', 0, NULL, NULL)",
    )
    .bind(id)
    .bind(json!({ "greeting": format!("hello, {name}") }))
    .execute(pool)
    .await
    .unwrap();
    id
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_operation_survives_a_sigkilled_worker_and_obeys_pause_and_resume_across_it(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let url = url_for(&connect);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let registry = urumi_ops::with_declared(&urumi_workflows::registry(None).unwrap()).unwrap();
    let engine = Engine::new(pool.clone(), registry);
    let ops = Ops::new(engine.clone(), Default::default());
    let mut runs = Vec::new();
    for name in ["d0", "d1", "d2"] {
        runs.push(failed_demo(&pool, name, 1500).await);
    }
    let spec = Spec {
        action: Action::Retry,
        from_step: None,
        plan: None,
        channel: None,
        selector: Selector {
            status: Some(RunStatus::Failed),
            definition: Some("demo".into()),
            ..Selector::default()
        },
        max_concurrency: 1,
        canary: None,
        failure_budget: None,
    };
    let op = ops.create(&spec, "alice", "alice").await.unwrap();

    let victim = WorkerProcess::spawn_with_lease(&url, None, 1500);
    // The first target's retried run is in its slow step: pause, then SIGKILL the process
    // that holds it (and the parent run).
    wait_until(
        "the first target's work step",
        Duration::from_secs(30),
        async || {
            engine
                .run(runs[0])
                .await
                .unwrap()
                .steps
                .iter()
                .any(|s| s.name == "work" && s.status() == StepStatus::Running)
        },
    )
    .await;
    ops.control(op.id, Control::Pause, "alice").await.unwrap();
    victim.kill();

    let rescuer = WorkerProcess::spawn_with_lease(&url, None, 1500);
    // The rescuer takes over the target's run and the parent; the target succeeds...
    wait_until(
        "the first target to succeed",
        Duration::from_secs(30),
        async || ops.get(op.id).await.unwrap().progress.succeeded == 1,
    )
    .await;
    // ...and, paused, the parent starts nothing more (several polls of 0.5 s).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paused = ops.get(op.id).await.unwrap();
    assert_eq!(
        (
            paused.state,
            paused.progress.pending,
            paused.progress.running
        ),
        (OperationState::Paused, 2, 0)
    );
    ops.control(op.id, Control::Resume, "alice").await.unwrap();
    wait_until(
        "the operation to succeed",
        Duration::from_secs(60),
        async || ops.get(op.id).await.unwrap().state == OperationState::Succeeded,
    )
    .await;
    rescuer.terminate();

    let done = ops.get(op.id).await.unwrap();
    assert_eq!(done.progress.succeeded, 3);
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM urumi.events WHERE subject = $1 AND kind = 'operation.target_started'",
    )
    .bind(format!("operation:{}", op.id))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(started, 3, "every target started exactly once");
    let work_attempts =
        |d: &urumi_engine::RunDetail| d.steps.iter().find(|s| s.name == "work").unwrap().attempts;
    // The killed attempt counts: the first run's `work` ran twice, the others once (after
    // the failed attempt of before the retry, which a retry resets).
    assert_eq!(work_attempts(&engine.run(runs[0]).await.unwrap()), 2);
    for r in &runs[1..] {
        let d = engine.run(*r).await.unwrap();
        assert_eq!(d.run.status(), RunStatus::Succeeded);
        assert_eq!(work_attempts(&d), 1);
    }
}
