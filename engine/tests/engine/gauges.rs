//! The queue gauges by lane: what a claim could take from each lane now, as the API's
//! `/metrics` renders them (every lane a series, zero when empty).

use serde_json::json;
use sqlx::PgPool;
use urumi_engine::{Engine, Lane, NewRun, QueueGauges};
use uuid::Uuid;

use super::helpers::*;

async fn start_in(engine: &Engine, subject: &str, lane: Lane) -> Uuid {
    engine
        .start_run(
            NewRun::new("d", subject, json!({}))
                .actor("tester")
                .lane(lane)
                .owner("tester"),
        )
        .await
        .unwrap()
        .run_id
}

/// Moves the runs' wake time `seconds` into the past (negative: the future).
async fn due_since(pool: &PgPool, runs: &[Uuid], seconds: i64) {
    sqlx::query(
        "UPDATE urumi.runs SET wake_at = now() - $2 * interval '1 second' WHERE id = ANY($1)",
    )
    .bind(runs)
    .bind(seconds)
    .execute(pool)
    .await
    .unwrap();
}

/// The value of the line `name{lane="lane"} <value>` in `text`.
fn value(text: &str, name: &str, lane: &str) -> f64 {
    let prefix = format!("{name}{{lane=\"{lane}\"}} ");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 1, "one {prefix:?} line in:\n{text}");
    lines[0][prefix.len()..].parse().unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn queue_depth_and_oldest_due_age_are_counted_per_lane_with_every_lane_present(pool: PgPool) {
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("d", &counter)]);
    // Nothing queued: every lane has its series, at zero.
    let text = QueueGauges::read(&pool).await.unwrap().render();
    for lane in Lane::ALL {
        let lane = lane.as_str();
        assert_eq!(value(&text, "urumi_queue_depth", lane), 0.0, "{text}");
        assert_eq!(
            value(&text, "urumi_queue_oldest_due_seconds", lane),
            0.0,
            "{text}"
        );
    }

    // Interactive: two runs due for two minutes, one due only in an hour.
    let i1 = start_in(&engine, "i1", Lane::Interactive).await;
    let i2 = start_in(&engine, "i2", Lane::Interactive).await;
    due_since(&pool, &[i1, i2], 120).await;
    let later = start_in(&engine, "i3", Lane::Interactive).await;
    due_since(&pool, &[later], -3600).await;
    // Bulk: three runs due, the oldest for 30 s; a fourth held by a worker (not due however
    // long ago it woke) and a fifth waiting for a poll an hour away.
    let b1 = start_in(&engine, "b1", Lane::Bulk).await;
    start_in(&engine, "b2", Lane::Bulk).await;
    start_in(&engine, "b3", Lane::Bulk).await;
    due_since(&pool, &[b1], 30).await;
    let held = start_in(&engine, "b4", Lane::Bulk).await;
    sqlx::query(
        "UPDATE urumi.runs SET status = 'running', lease_owner = 'w', lease_token = gen_random_uuid(),
             lease_expires_at = now() + interval '1 hour', started_at = now(),
             wake_at = now() - interval '1 hour'
         WHERE id = $1",
    )
    .bind(held)
    .execute(&pool)
    .await
    .unwrap();
    let polling = start_in(&engine, "b5", Lane::Bulk).await;
    sqlx::query("UPDATE urumi.runs SET status = 'waiting', wake_at = now() + interval '1 hour' WHERE id = $1")
        .bind(polling)
        .execute(&pool)
        .await
        .unwrap();

    let gauges = QueueGauges::read(&pool).await.unwrap();
    let text = gauges.render();
    assert_eq!(value(&text, "urumi_queue_depth", "interactive"), 2.0);
    assert_eq!(value(&text, "urumi_queue_depth", "bulk"), 3.0);
    assert_eq!(value(&text, "urumi_queue_depth", "scheduled"), 0.0);
    let interactive = value(&text, "urumi_queue_oldest_due_seconds", "interactive");
    assert!((120.0..180.0).contains(&interactive), "{text}");
    let bulk = value(&text, "urumi_queue_oldest_due_seconds", "bulk");
    assert!((30.0..90.0).contains(&bulk), "{text}");
    assert_eq!(
        value(&text, "urumi_queue_oldest_due_seconds", "scheduled"),
        0.0
    );
    // The totals are the lanes' sum and largest age.
    for line in [
        "urumi_queue_due_runs 5",
        "urumi_queue_waiting_runs 1",
        "urumi_queue_running_runs 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    assert_eq!(gauges.oldest_due_age_seconds, interactive);
    // Only the lane label: one series per lane and gauge, whatever the runs.
    let series = text
        .lines()
        .filter(|l| l.starts_with("urumi_queue_depth{") || l.starts_with("urumi_queue_oldest"))
        .count();
    assert_eq!(series, 2 * Lane::ALL.len() + 1, "{text}");
}
