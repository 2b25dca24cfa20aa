//! Scheduled runs: two workers tick the same every-second schedule (apalis-cron) and each slot
//! starts exactly one run; a slot whose subject is still busy starts none and says why; a bad
//! cron expression is refused with its reason.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, Error, Schedule, SlotOutcome, StepOutcome};

use crate::helpers::*;

fn every_second(def: &str) -> Schedule {
    Schedule::new("tick", "* * * * * *", def, "schedule:tick", json!({})).unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn two_workers_ticking_the_same_schedule_start_one_run_per_slot(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("nightly", &counter)]);
    let options = || urumi_engine::WorkerOptions {
        schedules: vec![every_second("nightly")],
        ..fast_options()
    };
    let a = start_worker(&pool, &engine, options()).await;
    let b = start_worker(&pool, &engine, options()).await;
    // Wait for at least four slots to have been taken (never a fixed sleep alone).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while count(&pool, "SELECT count(*) FROM urumi.schedule_slots").await < 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 4 slots in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();

    let slots: Vec<(Option<uuid::Uuid>, Option<String>, String)> = sqlx::query_as(
        "SELECT run_id, skipped, started_by FROM urumi.schedule_slots ORDER BY slot_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let runs = count(&pool, "SELECT count(*) FROM urumi.runs").await;
    let started = slots.iter().filter(|s| s.0.is_some()).count() as i64;
    assert_eq!(
        runs, started,
        "one run per started slot, none more: {slots:?}"
    );
    assert!(started >= 1, "{slots:?}");
    for (run, skipped, _) in &slots {
        assert!(
            run.is_some() != skipped.is_some(),
            "a slot either started a run or says why not: {slots:?}"
        );
        if let Some(why) = skipped {
            assert!(why.contains("still active"), "{why}");
        }
    }
    // Both workers ticked: each slot was offered twice, so the second offer of every slot
    // found it taken. The slot's starter is one of the two workers.
    let starters: std::collections::HashSet<_> = slots.iter().map(|s| s.2.clone()).collect();
    assert!(
        starters.iter().all(|w| w.starts_with("test-")),
        "{starters:?}"
    );
    let actors = count(
        &pool,
        "SELECT count(*) FROM urumi.runs WHERE created_by = 'schedule:tick'",
    )
    .await;
    assert_eq!(
        actors, runs,
        "scheduled runs name their schedule as the actor"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_slot_is_started_once_and_a_busy_subject_skips_the_slot(pool: PgPool) {
    // A definition whose only step waits, so the first slot's run stays active.
    let def = Definition::builder("slow", 1)
        .step("wait", |_ctx| async {
            Ok(StepOutcome::wait(
                Duration::from_secs(60),
                "holding the subject",
            ))
        })
        .build()
        .unwrap();
    let engine = engine(&pool, vec![def]);
    let schedule =
        Schedule::new("slow", "0 0 2 * * *", "slow", "schedule:slow", json!({})).unwrap();
    let two_am = Utc.with_ymd_and_hms(2026, 12, 1, 2, 0, 0).unwrap();

    let first = engine.start_slot(&schedule, two_am, "w1").await.unwrap();
    let SlotOutcome::Started(run) = first else {
        panic!("the first offer of a slot starts its run: {first:?}")
    };
    assert_eq!(
        engine.start_slot(&schedule, two_am, "w2").await.unwrap(),
        SlotOutcome::AlreadyTaken
    );
    let next_night = Utc.with_ymd_and_hms(2026, 12, 2, 2, 0, 0).unwrap();
    let skipped = engine
        .start_slot(&schedule, next_night, "w1")
        .await
        .unwrap();
    assert_eq!(
        skipped,
        SlotOutcome::Skipped(format!("the subject's run {run} was still active"))
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM urumi.runs").await, 1);
    let recorded: Option<String> = sqlx::query_scalar(
        "SELECT skipped FROM urumi.schedule_slots WHERE slot_at = '2026-12-02 02:00:00+00'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(recorded.unwrap().contains(&run.to_string()));
}

#[test]
fn a_bad_cron_expression_or_name_is_refused_with_the_reason() {
    let bad = Schedule::new("x", "every night", "d", "s", json!({})).unwrap_err();
    assert!(
        matches!(&bad, Error::InvalidSchedule { name, reason } if name == "x" && reason.contains("every night")),
        "{bad}"
    );
    let unnamed = Schedule::new(" ", "* * * * * *", "d", "s", json!({})).unwrap_err();
    assert!(
        matches!(unnamed, Error::InvalidSchedule { .. }),
        "{unnamed}"
    );
}
