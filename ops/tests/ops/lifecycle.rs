//! An operation carried out by its parent run: retries in the bulk lane, canary and approval,
//! a failed canary, the failure budget, skips with reasons, and pause / resume / cancel that
//! hold across a killed worker.

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::RunStatus;
use urumi_ops::{Action, Budget, Canary, CanaryThen, Control, OperationState, TargetState};
use uuid::Uuid;

use super::helpers::*;

async fn target_states(w: &World, id: Uuid) -> Vec<(TargetState, Option<String>)> {
    w.ops
        .targets(id, None, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.state, t.reason))
        .collect()
}

async fn events(pool: &PgPool, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind, actor FROM urumi.events WHERE subject = $1 AND kind LIKE 'operation.%' ORDER BY id",
    )
    .bind(format!("operation:{id}"))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_retry_operation_retries_every_failed_run_in_the_bulk_lane(
    _p: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    let failed = w.failed_runs(5).await;
    w.health.set(true);
    let mut spec = on_failed_jobs(Action::Retry);
    spec.max_concurrency = 2;
    let op = w.ops.create(&spec, "alice", "alice").await.unwrap();
    assert_eq!(
        (op.state, op.progress.matched, op.progress.pending),
        (OperationState::Running, 5, 5)
    );
    let worker = w.worker().await;
    let done = w.wait_state(op.id, OperationState::Succeeded).await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        (
            done.progress.succeeded,
            done.progress.pending,
            done.progress.running
        ),
        (5, 0, 0)
    );
    for id in &failed {
        let run = w.engine.run(*id).await.unwrap().run;
        assert_eq!(run.status(), RunStatus::Succeeded);
        assert_eq!(
            run.lane.0,
            urumi_engine::Lane::Bulk,
            "retried in the bulk lane"
        );
        assert_eq!(run.owner, "alice");
    }
    let kinds: Vec<String> = events(&pool, op.id)
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("operation.created"));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "operation.target_started")
            .count(),
        5
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "operation.target_succeeded")
            .count(),
        5
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("operation.succeeded")
    );
    // The parent run succeeded with the operation's final progress.
    let parent = w.engine.run(op.run_id).await.unwrap().run;
    assert_eq!(parent.status(), RunStatus::Succeeded);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_canary_waits_for_approval_then_the_rest_go(
    _p: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    w.failed_runs(6).await;
    w.health.set(true);
    let mut spec = on_failed_jobs(Action::Retry);
    spec.canary = Some(Canary {
        size: Budget::Count(2),
        then: CanaryThen::Pause,
    });
    let op = w.ops.create(&spec, "alice", "alice").await.unwrap();
    let worker = w.worker().await;
    let waiting = w.wait_state(op.id, OperationState::AwaitingApproval).await;
    assert_eq!(
        (waiting.progress.succeeded, waiting.progress.pending),
        (2, 4),
        "only the canary went"
    );
    // Nothing more starts while it waits.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(w.ops.get(op.id).await.unwrap().progress.pending, 4);
    let approved = w.ops.control(op.id, Control::Approve, "bob").await.unwrap();
    assert!(approved.canary_passed);
    let done = w.wait_state(op.id, OperationState::Succeeded).await;
    worker.shutdown().await.unwrap();
    assert_eq!(done.progress.succeeded, 6);
    let evs = events(&pool, op.id).await;
    assert!(evs.contains(&("operation.awaiting_approval".into(), "system".into())));
    assert!(
        evs.contains(&("operation.approved".into(), "bob".into())),
        "the approval is audited with its actor"
    );
    // Approving twice is refused.
    assert!(matches!(
        w.ops.control(op.id, Control::Approve, "bob").await,
        Err(urumi_ops::Error::InvalidState { .. })
    ));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_failed_canary_stops_the_operation(_p: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    w.failed_runs(5).await;
    // Still unhealthy: the canary's retries fail again.
    let mut spec = on_failed_jobs(Action::Retry);
    spec.canary = Some(Canary {
        size: Budget::Percent(20),
        then: CanaryThen::Continue,
    });
    let op = w.ops.create(&spec, "alice", "alice").await.unwrap();
    assert_eq!(op.canary_size, 1, "20% of 5");
    let worker = w.worker().await;
    let stopped = w
        .wait_op(op.id, "stopped with nothing running", |o| {
            o.state == OperationState::Stopped && o.progress.running == 0
        })
        .await;
    worker.shutdown().await.unwrap();
    assert_eq!((stopped.progress.failed, stopped.progress.skipped), (1, 4));
    assert!(
        stopped
            .reason
            .as_deref()
            .unwrap()
            .starts_with("canary failed"),
        "{:?}",
        stopped.reason
    );
    let states = target_states(&w, op.id).await;
    assert!(states[1..].iter().all(|(s, r)| {
        *s == TargetState::Skipped
            && r.as_deref()
                .unwrap()
                .starts_with("operation stopped: canary failed")
    }));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_failure_budget_stops_the_operation(_p: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    w.failed_runs(10).await;
    let mut spec = on_failed_jobs(Action::Retry);
    spec.max_concurrency = 1;
    spec.failure_budget = Some(Budget::Count(2));
    let op = w.ops.create(&spec, "alice", "alice").await.unwrap();
    let worker = w.worker().await;
    let stopped = w
        .wait_op(op.id, "stopped with nothing running", |o| {
            o.state == OperationState::Stopped && o.progress.running == 0
        })
        .await;
    worker.shutdown().await.unwrap();
    // One at a time: the third failure exceeds a budget of two, and nothing else started.
    assert_eq!(
        (
            stopped.progress.failed,
            stopped.progress.succeeded,
            stopped.progress.skipped
        ),
        (3, 0, 7)
    );
    assert_eq!(
        stopped.reason.as_deref(),
        Some("failure budget exceeded: 3 targets failed, 2 allowed")
    );
    let parent = w.engine.run(op.run_id).await.unwrap().run;
    assert_eq!(
        parent.status(),
        RunStatus::Succeeded,
        "the parent run ended cleanly"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn targets_that_changed_are_skipped_with_the_reason(
    _p: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    let failed = w.failed_runs(3).await;
    w.health.set(true);
    let op = w
        .ops
        .create(&on_failed_jobs(Action::Retry), "alice", "alice")
        .await
        .unwrap();
    // Before the operation's worker gets to it, someone retries s1 by hand.
    w.engine.retry_run(failed[1], "carol").await.unwrap();
    let worker = w.worker().await;
    let done = w.wait_state(op.id, OperationState::Succeeded).await;
    worker.shutdown().await.unwrap();
    assert_eq!((done.progress.succeeded, done.progress.skipped), (2, 1));
    let states = target_states(&w, op.id).await;
    assert_eq!(states[1].0, TargetState::Skipped);
    let reason = states[1].1.as_deref().unwrap();
    assert!(
        reason.contains("only a failed run can be retried"),
        "{reason}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn pause_resume_and_cancel_hold_across_a_killed_worker(
    _p: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let w = world(&pool);
    w.failed_runs(4).await;
    w.health.set(true);
    let op = w
        .ops
        .create(&on_failed_jobs(Action::Retry), "alice", "alice")
        .await
        .unwrap();
    w.ops.control(op.id, Control::Pause, "alice").await.unwrap();
    // A worker polls the paused operation a few times, then dies without a word (its tasks
    // aborted, its leases left to expire: what SIGKILL leaves).
    let doomed = w.worker().await;
    let polled = || async {
        sqlx::query_scalar::<_, i32>("SELECT polls FROM urumi.steps WHERE run_id = $1")
            .bind(op.run_id)
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while polled().await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parent never polled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let paused = w.ops.get(op.id).await.unwrap();
    assert_eq!(
        (paused.state, paused.progress.pending),
        (OperationState::Paused, 4),
        "nothing started while paused"
    );
    doomed.kill();
    w.ops
        .control(op.id, Control::Resume, "alice")
        .await
        .unwrap();
    // Another worker takes the parent run over once its lease expires, and finishes it.
    let survivor = w.worker().await;
    let done = w.wait_state(op.id, OperationState::Succeeded).await;
    assert_eq!(done.progress.succeeded, 4);

    // Cancel: a second operation cancelled before its first poll skips every target. No
    // worker runs until it is cancelled: a live one may poll it at once and act on targets
    // first (seen under load: 0 skipped).
    let more = w.failed_runs_after(2).await;
    survivor.shutdown().await.unwrap();
    let op2 = w
        .ops
        .create(&on_failed_jobs(Action::Retry), "alice", "alice")
        .await
        .unwrap();
    assert_eq!(op2.progress.matched, more.len() as i64);
    let cancelled = w
        .ops
        .control(op2.id, Control::Cancel, "dave")
        .await
        .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.progress.skipped),
        (OperationState::Cancelled, 2)
    );
    let parent = op2.run_id;
    let finisher = w.worker().await;
    w.wait_run(parent, RunStatus::Succeeded).await;
    finisher.shutdown().await.unwrap();
    for (state, reason) in target_states(&w, op2.id).await {
        assert_eq!(state, TargetState::Skipped);
        assert_eq!(reason.as_deref(), Some("operation cancelled by dave"));
    }
    for id in more {
        assert_eq!(
            w.engine.run(id).await.unwrap().run.status(),
            RunStatus::Failed,
            "not retried"
        );
    }
    assert!(matches!(
        w.ops.control(op2.id, Control::Resume, "dave").await,
        Err(urumi_ops::Error::InvalidState { .. })
    ));
}
