//! One mutation per subject: conflicts, supersession, cancel and rerun.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Notify;
use urumi_engine::{Definition, Error, NewRun, RunStatus, StepOutcome, StepStatus};

use crate::helpers::*;

/// `provision` whose `gate` step blocks until `open` is notified; `delete` supersedes it.
fn gated(counter: &Counter, open: Arc<Notify>) -> Vec<Definition> {
    let mut p = Definition::builder("provision", 1);
    p = counted(p, "a", counter, done());
    let c = counter.clone();
    p = p.step("gate", move |ctx: urumi_engine::StepContext| {
        let open = open.clone();
        let c = c.clone();
        async move {
            c.hit(&ctx.step);
            open.notified().await;
            StepOutcome::done(json!("gate passed"))
        }
    });
    p = counted(p, "after_gate", counter, done());
    let mut d = Definition::builder("delete", 1).supersedes("provision");
    d = counted(d, "remove", counter, done());
    vec![p.build().unwrap(), d.build().unwrap()]
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_second_run_for_a_subject_is_refused_with_the_active_runs_id(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let open = Arc::new(Notify::new());
    let engine = engine(&pool, gated(&counter, open.clone()));
    let first = start(&engine, "provision", "store:1", json!({})).await;
    let err = engine
        .start_run(NewRun::new("provision", "store:1", json!({})))
        .await
        .unwrap_err();
    match err {
        Error::Conflict { active_run, .. } => assert_eq!(active_run, first),
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.runs").await,
        1,
        "nothing was written"
    );
    // Another subject is independent.
    start(&engine, "provision", "store:2", json!({})).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn deletion_while_provisioning_cancels_provisioning_at_the_next_boundary_then_runs(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let open = Arc::new(Notify::new());
    let engine = engine(&pool, gated(&counter, open.clone()));
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let prov = start(&engine, "provision", "store:1", json!({})).await;
    wait_for(
        &engine,
        prov,
        Duration::from_secs(10),
        "gate running",
        |d| step(d, "gate").status() == StepStatus::Running,
    )
    .await;

    let del = engine
        .start_run(NewRun::new("delete", "store:1", json!({})).actor("admin"))
        .await
        .unwrap();
    assert_eq!(del.blocked_by, Some(prov));
    assert_eq!(del.superseded, Some(prov));
    // A second deletion is refused with the waiting one's id: nothing is queued twice.
    match engine
        .start_run(NewRun::new("delete", "store:1", json!({})))
        .await
        .unwrap_err()
    {
        Error::Conflict { active_run, .. } => assert_eq!(active_run, del.run_id),
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        engine.run(del.run_id).await.unwrap().run.status(),
        RunStatus::Queued
    );

    open.notify_one();
    let p = wait_status(&engine, prov, RunStatus::Cancelled).await;
    assert_eq!(
        step(&p, "gate").status(),
        StepStatus::Succeeded,
        "the current step finished"
    );
    assert_eq!(step(&p, "after_gate").status(), StepStatus::Skipped);
    assert_eq!(counter.get("after_gate"), 0);
    let d = wait_status(&engine, del.run_id, RunStatus::Succeeded).await;
    assert!(
        d.run.started_at.unwrap() >= p.run.finished_at.unwrap(),
        "deletion ran after provisioning stopped"
    );
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn deletion_supersedes_a_provisioning_run_no_worker_holds_at_once(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, gated(&counter, Arc::new(Notify::new())));
    let prov = start(&engine, "provision", "store:1", json!({})).await;
    let del = engine
        .start_run(NewRun::new("delete", "store:1", json!({})))
        .await
        .unwrap();
    assert_eq!(
        del.blocked_by, None,
        "nothing to wait for: the queued run was cancelled at once"
    );
    let p = engine.run(prov).await.unwrap();
    assert_eq!(p.run.status(), RunStatus::Cancelled);
    assert!(p.steps.iter().all(|s| s.status() == StepStatus::Skipped));
    let worker = start_worker(&pool, &engine, fast_options()).await;
    wait_status(&engine, del.run_id, RunStatus::Succeeded).await;
    assert_eq!(counter.get("a"), 0);
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn cancel_stops_a_running_run_at_the_next_step_boundary(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let open = Arc::new(Notify::new());
    let engine = engine(&pool, gated(&counter, open.clone()));
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "provision", "store:1", json!({})).await;
    wait_for(&engine, run, Duration::from_secs(10), "gate running", |d| {
        step(d, "gate").status() == StepStatus::Running
    })
    .await;
    assert_eq!(
        engine.cancel_run(run, "operator:bob").await.unwrap(),
        RunStatus::Running
    );
    open.notify_one();
    let d = wait_status(&engine, run, RunStatus::Cancelled).await;
    assert_eq!(step(&d, "after_gate").status(), StepStatus::Skipped);
    assert_eq!(d.run.cancel_requested_by.as_deref(), Some("operator:bob"));
    // The subject is free again: a rerun starts from scratch as a new run.
    let rerun = engine.rerun(run, "operator:bob").await.unwrap();
    assert_ne!(rerun.run_id, run);
    let gate_runs_before = counter.get("gate");
    wait_for(
        &engine,
        rerun.run_id,
        Duration::from_secs(10),
        "gate running",
        |d| step(d, "gate").status() == StepStatus::Running,
    )
    .await;
    open.notify_one();
    let r = wait_status(&engine, rerun.run_id, RunStatus::Succeeded).await;
    assert_eq!(r.run.rerun_of, Some(run));
    assert_eq!(counter.get("gate"), gate_runs_before + 1);
    assert_eq!(counter.get("a"), 2, "a rerun runs every step again");
    worker.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn newest_runs_names_each_subjects_newest_run_and_leaves_out_subjects_without_runs(
    pool: sqlx::PgPool,
) {
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("job", &counter)]);
    let first_a = start(&engine, "job", "a", json!({})).await;
    engine.cancel_run(first_a, "test").await.unwrap();
    let second_a = start(&engine, "job", "a", json!({})).await;
    let only_b = start(&engine, "job", "b", json!({})).await;

    let subjects = ["a", "b", "c"].map(String::from);
    let newest = engine.newest_runs(&subjects).await.unwrap();
    assert_eq!(newest.len(), 2, "{newest:?}");
    assert_eq!(newest["a"].id, second_a);
    assert_eq!(newest["a"].status(), RunStatus::Queued);
    assert_eq!(newest["b"].id, only_b);
    assert_eq!(newest["b"].definition, "job");
    assert!(!newest.contains_key("c"));

    let mut conn = pool.acquire().await.unwrap();
    let in_tx = urumi_engine::newest_runs_in(&mut conn, &subjects[..1])
        .await
        .unwrap();
    assert_eq!(in_tx.keys().collect::<Vec<_>>(), ["a"]);
    assert!(engine.newest_runs(&[]).await.unwrap().is_empty());
}
