//! Rerun from a named step (Temporal's reset): the steps before it carry over the earlier
//! run's checkpoints exactly and are not run again; bad steps are refused with nothing written.

use serde_json::json;
use sqlx::PgPool;
use urumi_engine::{Definition, Error, RunStatus, StepError, Who};

use super::helpers::*;

/// `d@1`: `a`, `b` succeed; `c` fails for good on its first execution in this process and
/// succeeds after.
fn flaky_last(counter: &Counter) -> Definition {
    let mut b = Definition::builder("d", 1);
    b = counted(b, "a", counter, done());
    b = counted(b, "b", counter, done());
    b = counted(
        b,
        "c",
        counter,
        std::sync::Arc::new(|ctx, n| {
            if n == 1 {
                Err(StepError::fatal("boom"))
            } else {
                urumi_engine::StepOutcome::done(json!({ "step": ctx.step, "n": n }))
            }
        }),
    );
    b.build().unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_rerun_from_a_step_carries_exactly_the_earlier_checkpoints(pool: PgPool) {
    let counter = Counter::default();
    let engine = engine(&pool, vec![flaky_last(&counter)]);
    let handle = start_worker(&pool, &engine, fast_options()).await;
    let first = start(&engine, "d", "s", json!({})).await;
    let failed = wait_status(&engine, first, RunStatus::Failed).await;

    let mut tx = pool.begin().await.unwrap();
    let started = engine
        .rerun_in(&mut tx, first, Some("b"), &Who::interactive("op"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let rerun = wait_status(&engine, started.run_id, RunStatus::Succeeded).await;
    handle.shutdown().await.unwrap();

    assert_eq!(rerun.run.rerun_of, Some(first));
    assert_eq!(rerun.run.carried_steps, 1);
    // `a` ran once (in the first run); `b` ran again, `c` twice in all.
    assert_eq!(
        (counter.get("a"), counter.get("b"), counter.get("c")),
        (1, 2, 2)
    );
    let (old_a, new_a) = (step(&failed, "a"), step(&rerun, "a"));
    assert_eq!(
        new_a.output, old_a.output,
        "a's checkpoint is carried as it was"
    );
    assert_eq!(new_a.attempts, old_a.attempts);
    assert_eq!(new_a.started_at, old_a.started_at);
    assert_eq!(new_a.finished_at, old_a.finished_at);
    assert_ne!(
        step(&rerun, "b").finished_at,
        step(&failed, "b").finished_at,
        "b ran again"
    );
    let events = engine.events_for_run(started.run_id).await.unwrap();
    let carried: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "run.steps_carried")
        .collect();
    assert_eq!(carried.len(), 1);
    assert_eq!(carried[0].detail["steps"], json!(["a"]));
    assert!(
        starts_of(&events, "a").is_empty(),
        "a never started in the rerun"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_rerun_refuses_unknown_steps_and_steps_that_did_not_succeed(pool: PgPool) {
    let counter = Counter::default();
    let engine = engine(&pool, vec![flaky_last(&counter)]);
    let handle = start_worker(&pool, &engine, fast_options()).await;
    let first = start(&engine, "d", "s", json!({})).await;
    wait_status(&engine, first, RunStatus::Failed).await;
    handle.shutdown().await.unwrap();
    let runs_before = count(&pool, "SELECT count(*) FROM urumi.runs").await;

    let mut tx = pool.begin().await.unwrap();
    let err = engine
        .rerun_in(&mut tx, first, Some("nope"), &Who::interactive("op"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownStep { step, steps, .. } if step == "nope" && steps == &["a", "b", "c"]),
        "{err:?}"
    );
    drop(tx);

    // Carrying `c` over would carry a failed step.
    let err = {
        let mut tx = pool.begin().await.unwrap();
        let started = engine
            .rerun_in(&mut tx, first, Some("c"), &Who::interactive("op"))
            .await
            .unwrap();
        // From `c` is fine (a and b succeeded): roll back and try a definition whose middle
        // step failed instead.
        assert_ne!(started.run_id, first);
        tx.rollback().await.unwrap();
        sqlx::query("UPDATE urumi.steps SET status = 'failed' WHERE run_id = $1 AND name = 'b'")
            .bind(first)
            .execute(&pool)
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        engine
            .rerun_in(&mut tx, first, Some("c"), &Who::interactive("op"))
            .await
            .unwrap_err()
    };
    assert!(
        matches!(&err, Error::NotCarried { step, status, .. } if step == "b" && status == "failed"),
        "{err:?}"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.runs").await,
        runs_before,
        "nothing was written"
    );
}
