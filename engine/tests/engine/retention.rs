//! Retention: finished runs past their window go with their steps and progress events,
//! operators' entries stay for the audit window, active runs are never touched, and a worker
//! with a retention policy prunes on its own.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{
    AuditEntry, Definition, PruneReport, Retention, RunStatus, StepOutcome, WorkerOptions,
};
use uuid::Uuid;

use crate::helpers::*;

/// `ok` succeeds; `bad` fails for good; `slow` waits forever (an active run).
fn definitions() -> Vec<Definition> {
    let ok = Definition::builder("ok", 1)
        .step("a", |_| async { StepOutcome::done(json!({})) })
        .step("b", |_| async { StepOutcome::done(json!({})) })
        .build()
        .unwrap();
    let bad = Definition::builder("bad", 1)
        .step("a", |_| async { Err(urumi_engine::StepError::fatal("no")) })
        .build()
        .unwrap();
    let slow = Definition::builder("slow", 1)
        .step("a", |_| async {
            Ok(StepOutcome::wait(Duration::from_secs(3600), "never ready"))
        })
        .build()
        .unwrap();
    vec![ok, bad, slow]
}

/// Moves a run's end (and its events) `days` into the past.
async fn age(pool: &PgPool, run: Uuid, days: i32) {
    sqlx::query(
        "UPDATE urumi.runs SET finished_at = finished_at - make_interval(days => $2),
             created_at = created_at - make_interval(days => $2) WHERE id = $1",
    )
    .bind(run)
    .bind(days)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE urumi.events SET created_at = created_at - make_interval(days => $2) WHERE run_id = $1",
    )
    .bind(run)
    .bind(days)
    .execute(pool)
    .await
    .unwrap();
}

async fn events_of(pool: &PgPool, run: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT kind FROM urumi.events WHERE run_id = $1 ORDER BY id")
        .bind(run)
        .fetch_all(pool)
        .await
        .unwrap()
}

fn now_policy() -> Retention {
    Retention {
        batch: 2,
        pause: Duration::ZERO,
        ..Retention::default()
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn finished_runs_past_their_window_go_and_nothing_else(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    // Operators' entries without a run, written first as they were long ago: 400 days old
    // (past the audit window) and 10 days old.
    let mut tx = pool.begin().await.unwrap();
    for (kind, days) in [("token.created", 400), ("token.revoked", 10)] {
        urumi_engine::audit_in(
            &mut tx,
            AuditEntry {
                kind,
                actor: "admin",
                subject: None,
                run_id: None,
                detail: json!({ "days": days }),
            },
        )
        .await
        .unwrap();
        sqlx::query(
            "UPDATE urumi.events SET created_at = now() - make_interval(days => $2)
             WHERE id = (SELECT max(id) FROM urumi.events WHERE kind = $1)",
        )
        .bind(kind)
        .bind(days)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let engine = engine(&pool, definitions());
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let mut old_ok = Vec::new();
    for i in 0..5 {
        old_ok.push(start(&engine, "ok", &format!("old-{i}"), json!({})).await);
    }
    let young_ok = start(&engine, "ok", "young", json!({})).await;
    let old_bad = start(&engine, "bad", "old-bad", json!({})).await;
    let middle_bad = start(&engine, "bad", "middle-bad", json!({})).await;
    let old_cancelled = start(&engine, "slow", "old-cancelled", json!({})).await;
    let active = start(&engine, "slow", "active", json!({})).await;
    for r in old_ok.iter().chain([&young_ok]) {
        wait_status(&engine, *r, RunStatus::Succeeded).await;
    }
    for r in [old_bad, middle_bad] {
        wait_status(&engine, r, RunStatus::Failed).await;
    }
    wait_for(
        &engine,
        old_cancelled,
        Duration::from_secs(20),
        "waiting",
        |d| d.run.status() == RunStatus::Waiting,
    )
    .await;
    engine
        .cancel_run(old_cancelled, "operator-ann")
        .await
        .unwrap();
    wait_status(&engine, old_cancelled, RunStatus::Cancelled).await;
    wait_for(&engine, active, Duration::from_secs(20), "waiting", |d| {
        d.run.status() == RunStatus::Waiting
    })
    .await;
    worker.shutdown().await.unwrap();

    // Succeeded 40 days ago (past 30), failed 200 days ago (past 180), failed 100 days ago
    // (kept), cancelled 200 days ago (past 180). The active run is a year old.
    for r in &old_ok {
        age(&pool, *r, 40).await;
    }
    age(&pool, old_bad, 200).await;
    age(&pool, middle_bad, 100).await;
    age(&pool, old_cancelled, 200).await;
    sqlx::query(
        "UPDATE urumi.runs SET created_at = created_at - interval '365 days' WHERE id = $1",
    )
    .bind(active)
    .execute(&pool)
    .await
    .unwrap();
    // A worker row that stopped 10 days ago.
    sqlx::query("UPDATE urumi.workers SET stopped_at = now() - interval '10 days'")
        .execute(&pool)
        .await
        .unwrap();

    // Two scheduled slots: one past the failed-runs window (it goes), one not.
    sqlx::query(
        "INSERT INTO urumi.schedule_slots (schedule, slot_at, skipped, started_by, created_at)
         VALUES ('nightly', now() - interval '200 days', 'busy', 'w', now() - interval '200 days'),
                ('nightly', now() - interval '10 days', 'busy', 'w', now() - interval '10 days')",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Bulk owners: one idle for 10 days (it goes), one served an hour ago and one idle for
    // 10 days whose bulk run is still queued (they stay).
    sqlx::query(
        "INSERT INTO urumi.bulk_owners (owner, last_claimed_at)
         VALUES ('idle', now() - interval '10 days'), ('busy', now() - interval '1 hour'),
                ('queued', now() - interval '10 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE urumi.runs SET lane = 'bulk', owner = 'queued' WHERE id = $1")
        .bind(active)
        .execute(&pool)
        .await
        .unwrap();

    let events_before = count(&pool, "SELECT count(*) FROM urumi.events").await;
    let report = engine.prune(&now_policy()).await.unwrap();
    let events_after = count(&pool, "SELECT count(*) FROM urumi.events").await;
    assert_eq!(
        report.events,
        (events_before - events_after) as u64,
        "{report:?}"
    );
    // Five succeeded runs + one failed + one cancelled; two steps each for `ok`, one for the
    // others.
    assert_eq!(report.runs, 7, "{report:?}");
    assert_eq!(report.steps, 5 * 2 + 1 + 1, "{report:?}");
    assert_eq!(report.workers, 1, "{report:?}");
    assert_eq!(report.slots, 1, "{report:?}");
    assert_eq!(report.bulk_owners, 1, "{report:?}");
    let owners: Vec<String> =
        sqlx::query_scalar("SELECT owner FROM urumi.bulk_owners ORDER BY owner")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(owners, ["busy", "queued"]);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.schedule_slots").await,
        1
    );

    let left: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM urumi.runs ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut kept = vec![young_ok, middle_bad, active];
    kept.sort();
    assert_eq!(left, kept, "only runs past their window were pruned");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM urumi.steps WHERE run_id NOT IN (SELECT id FROM urumi.runs)"
        )
        .await,
        0
    );
    // The pruned runs' progress is gone; what operators did stays.
    for r in old_ok.iter().chain([&old_bad, &old_cancelled]) {
        let left = events_of(&pool, *r).await;
        assert!(
            left.iter()
                .all(|k| ["run.created", "run.cancelled"].contains(&k.as_str())),
            "{r}: {left:?}"
        );
        assert!(left.contains(&"run.created".to_owned()), "{r}: {left:?}");
    }
    assert_eq!(
        events_of(&pool, old_cancelled).await,
        ["run.created", "run.cancelled"],
        "who cancelled it stays in the audit log"
    );
    for r in [young_ok, middle_bad, active] {
        assert!(
            events_of(&pool, r)
                .await
                .iter()
                .any(|k| k.starts_with("step.")),
            "{r}"
        );
    }
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM urumi.events WHERE kind LIKE 'token.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        ["token.revoked"],
        "the 400-day-old entry went, the 10-day one stayed"
    );

    // Nothing more to do: a second pass deletes nothing.
    assert_eq!(
        engine.prune(&now_policy()).await.unwrap(),
        PruneReport::default()
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_with_a_retention_policy_prunes_on_its_own(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let engine = engine(&pool, definitions());
    let first = start_worker(&pool, &engine, fast_options()).await;
    let mut runs = Vec::new();
    for i in 0..6 {
        runs.push(start(&engine, "ok", &format!("s{i}"), json!({})).await);
    }
    for r in &runs {
        wait_status(&engine, *r, RunStatus::Succeeded).await;
        age(&pool, *r, 31).await;
    }
    first.shutdown().await.unwrap();
    // Two workers prune at once, sharing the work.
    let options = WorkerOptions {
        retention: Some(Retention {
            interval: Duration::from_millis(50),
            ..now_policy()
        }),
        ..fast_options()
    };
    let a = start_worker(&pool, &engine, options.clone()).await;
    let b = start_worker(&pool, &engine, options).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while count(&pool, "SELECT count(*) FROM urumi.runs").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers never pruned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&pool, "SELECT count(*) FROM urumi.steps").await, 0);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM urumi.events WHERE kind LIKE 'step.%'"
        )
        .await,
        0
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
