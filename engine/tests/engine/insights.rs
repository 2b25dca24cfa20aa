//! Insights: exact percentiles, failures, retries, waiting against working and the most
//! common errors per step, and the run-duration distribution — on known rows — and the
//! waiting time a real polling step accumulates (in the insights and the wait metric).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, RUN_BUCKETS_SECONDS, RunStatus, StepOutcome};

use crate::helpers::*;

/// A step row: name, position, status, duration ms, attempts, waited ms, last error.
type StepRow<'a> = (&'a str, i32, &'a str, f64, i32, i64, Option<&'a str>);

/// Writes a finished run of `demo`@`version` (`status`), enqueued `secs` seconds before it
/// finished `ago_h` hours ago, with `steps`.
#[allow(clippy::too_many_arguments)] // reason: one argument per column the test varies
async fn finished_run(
    pool: &PgPool,
    version: i32,
    status: &str,
    secs: f64,
    ago_h: f64,
    steps: &[StepRow<'_>],
) {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by,
             created_at, started_at, finished_at)
         VALUES ($1, 'demo', $2, $1::text, '{}', $3, 'test',
             now() - ($4 * interval '1 hour') - ($5 * interval '1 second'),
             now() - ($4 * interval '1 hour') - ($5 * interval '1 second'),
             now() - ($4 * interval '1 hour'))",
    )
    .bind(id)
    .bind(version)
    .bind(status)
    .bind(ago_h)
    .bind(secs)
    .execute(pool)
    .await
    .unwrap();
    for (name, position, st, ms, attempts, waited, error) in steps {
        sqlx::query(
            "INSERT INTO urumi.steps (run_id, name, position, status, attempts, waited_ms,
                 last_error, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7,
                 now() - ($8 * interval '1 hour') - ($9 * interval '1 millisecond'),
                 now() - ($8 * interval '1 hour'))",
        )
        .bind(id)
        .bind(name)
        .bind(position)
        .bind(st)
        .bind(attempts)
        .bind(waited)
        .bind(error)
        .bind(ago_h)
        .bind(ms)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn step_and_run_insights_are_exact_on_known_rows(pool: PgPool) {
    let engine = engine(&pool, vec![]);
    // 100 succeeded runs: step `a` took i ms (i = 1..=100), `b` 10·i ms; every tenth `a`
    // took three attempts and waited 1 ms of each ms after a timeout; runs took i seconds.
    for i in 1..=100 {
        let retried = i % 10 == 0;
        let a = (
            "a",
            0,
            "succeeded",
            f64::from(i),
            if retried { 3 } else { 1 },
            if retried { i64::from(i) / 2 } else { 0 },
            retried.then_some("timeout talking to the API server"),
        );
        let b = ("b", 1, "succeeded", f64::from(10 * i), 1, 0, None);
        finished_run(&pool, 1, "succeeded", f64::from(i), 1.0, &[a, b]).await;
    }
    // Two failed runs (`a` failed with a conflict), one cancelled before `a` ended.
    for _ in 0..2 {
        let a = ("a", 0, "failed", 500.0, 2, 0, Some("409 conflict"));
        finished_run(
            &pool,
            1,
            "failed",
            3.0,
            2.0,
            &[a, ("b", 1, "pending", 0.0, 0, 0, None)],
        )
        .await;
    }
    finished_run(
        &pool,
        1,
        "cancelled",
        3.0,
        2.0,
        &[("a", 0, "skipped", 0.0, 0, 0, None)],
    )
    .await;
    // Outside a 24-hour window: a run of version 2 three days ago.
    finished_run(
        &pool,
        2,
        "succeeded",
        5000.0,
        72.0,
        &[("a", 0, "succeeded", 7.0, 1, 0, None)],
    )
    .await;
    // A run still going: its succeeded step is not counted until the run ends.
    sqlx::query(
        "WITH r AS (INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by, lease_token)
                    VALUES (gen_random_uuid(), 'demo', 1, 'going', '{}', 'running', 'test', gen_random_uuid()) RETURNING id)
         INSERT INTO urumi.steps (run_id, name, position, status, attempts, started_at, finished_at)
         SELECT id, 'a', 0, 'succeeded', 1, now() - interval '1 second', now() FROM r",
    )
    .execute(&pool)
    .await
    .unwrap();

    let day = Utc::now() - chrono::Duration::hours(24);
    let steps = engine.step_insights(day, Some("demo")).await.unwrap();
    assert_eq!(steps.len(), 2, "{steps:#?}");
    let a = &steps[0];
    assert_eq!(
        (a.definition.as_str(), a.version, a.step.as_str()),
        ("demo", 1, "a")
    );
    assert_eq!((a.count, a.failed), (102, 2));
    // percentile_disc over 1..=100 and two 500s: the values at ranks 51, 97 and 101 of 102.
    let close = |x: f64, want: f64| (x - want).abs() < 0.01;
    assert!(close(a.p50_ms, 51.0), "{a:#?}");
    assert!(close(a.p95_ms, 97.0), "{a:#?}");
    assert!(close(a.p99_ms, 500.0), "{a:#?}");
    assert_eq!(a.retries, 10 * 2 + 2);
    let waited: i64 = (1..=10).map(|k| 10 * k / 2).sum();
    assert!(close(a.waiting_ms, waited as f64), "{a:#?}");
    let total: f64 = (1..=100).map(f64::from).sum::<f64>() + 1000.0;
    assert!(close(a.working_ms, total - waited as f64), "{a:#?}");
    assert_eq!(a.errors.len(), 2);
    assert_eq!(
        (a.errors[0].error.as_str(), a.errors[0].steps),
        ("timeout talking to the API server", 10)
    );
    assert_eq!(
        (a.errors[1].error.as_str(), a.errors[1].steps),
        ("409 conflict", 2)
    );
    let b = &steps[1];
    assert_eq!((b.step.as_str(), b.count, b.failed), ("b", 100, 0));
    assert!(
        close(b.p50_ms, 500.0) && close(b.p95_ms, 950.0) && close(b.p99_ms, 990.0),
        "{b:#?}"
    );
    assert!(b.errors.is_empty());

    // A wider window takes in version 2; another definition has none.
    let week = Utc::now() - chrono::Duration::hours(96);
    let wide = engine.step_insights(week, None).await.unwrap();
    assert_eq!(wide.len(), 3);
    assert_eq!((wide[2].version, wide[2].count), (2, 1));
    assert!(
        engine
            .step_insights(week, Some("other"))
            .await
            .unwrap()
            .is_empty()
    );

    let runs = engine.run_insights(day, "demo").await.unwrap();
    assert_eq!((runs.succeeded, runs.failed, runs.cancelled), (100, 2, 1));
    assert!(close(runs.p50_ms.unwrap(), 50_000.0), "{runs:#?}");
    assert!(close(runs.p95_ms.unwrap(), 95_000.0), "{runs:#?}");
    assert!(close(runs.p99_ms.unwrap(), 99_000.0), "{runs:#?}");
    // Runs of 1..=100 s in [bound i-1, bound i) buckets.
    let mut want = vec![0_i64; RUN_BUCKETS_SECONDS.len() + 1];
    for i in 1..=100 {
        let s = f64::from(i);
        want[RUN_BUCKETS_SECONDS.iter().take_while(|b| s >= **b).count()] += 1;
    }
    assert_eq!(runs.histogram, want);
    assert_eq!(&runs.histogram[..6], &[0, 4, 10, 15, 30, 41]);
    let none = engine.run_insights(day, "other").await.unwrap();
    assert_eq!((none.succeeded, none.p50_ms), (0, None));
    assert_eq!(none.histogram.iter().sum::<i64>(), 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_polling_step_counts_its_waits_as_waiting_in_insights_and_metrics(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let mut b = Definition::builder("poller", 1);
    b = b.step("ready", |ctx: urumi_engine::StepContext| async move {
        if ctx.polls < 2 {
            Ok(StepOutcome::wait(Duration::from_millis(300), "not ready"))
        } else {
            StepOutcome::done(json!({}))
        }
    });
    let engine = engine(&pool, vec![b.build().unwrap()]);
    let worker = start_worker(&pool, &engine, fast_options()).await;
    let run = start(&engine, "poller", "p", json!({})).await;
    wait_status(&engine, run, RunStatus::Succeeded).await;
    // Each of the two waits is observed once, labelled by the step.
    let text = worker.metrics().render();
    let labels = r#"{definition="poller",version="1",step="ready"}"#;
    assert!(
        text.contains(&format!("urumi_step_wait_seconds_count{labels} 2")),
        "{text}"
    );
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("urumi_step_wait_seconds_sum{labels} ")))
        .expect("a wait sum")
        .parse()
        .unwrap();
    assert!(sum >= 0.6, "two waits of at least 300 ms each: {sum}");
    worker.shutdown().await.unwrap();
    let since = Utc::now() - chrono::Duration::hours(1);
    let s = engine.step_insights(since, Some("poller")).await.unwrap();
    assert_eq!(s.len(), 1);
    // Two waits of at least 300 ms each; the no-op step itself works far less.
    assert!(s[0].waiting_ms >= 600.0, "{s:#?}");
    assert!(s[0].working_ms < s[0].waiting_ms, "{s:#?}");
    assert_eq!(s[0].polls, 2);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn long_windows_read_hourly_rollups_with_exact_counts_and_close_percentiles(pool: PgPool) {
    let engine = engine(&pool, vec![]);
    // 300 runs over the last 60 hours — some inside the 48-hour window's ragged first hour,
    // some in the last half hour (not rolled yet) — with durations over four decades, every
    // seventh failed, every fifth retried with one of two errors.
    for i in 0..300_i32 {
        let ago_h = match i % 30 {
            0 => 47.9,
            1 => 0.2,
            _ => f64::from(i % 60) + 0.5,
        };
        let failed = i % 7 == 0;
        let retried = i % 5 == 0;
        let error = match (failed, retried, i % 2) {
            (true, _, _) => Some("409 conflict"),
            (false, true, 0) => Some("timeout talking to the API server"),
            (false, true, _) => Some("connection reset"),
            _ => None,
        };
        let a = (
            "a",
            0,
            if failed { "failed" } else { "succeeded" },
            3.0 * f64::from(i) * f64::from(i) + 0.4,
            if retried { 3 } else { 1 },
            i64::from(i % 4),
            error,
        );
        let b = ("b", 1, "succeeded", 50.0 + f64::from(i % 17), 1, 0, None);
        finished_run(
            &pool,
            1,
            if failed { "failed" } else { "succeeded" },
            5.0,
            ago_h,
            &[a, b],
        )
        .await;
    }
    let since = Utc::now() - chrono::Duration::hours(48);
    let exact = engine.step_insights(since, Some("demo")).await.unwrap();
    assert!(
        exact.iter().all(|s| s.exact),
        "nothing rolled yet: read exactly"
    );

    let rolled = engine.roll_insights().await.unwrap();
    assert!(rolled.hours >= 719 && rolled.rows > 0, "{rolled:?}");
    assert_eq!(
        engine.roll_insights().await.unwrap().hours,
        0,
        "an hour is rolled once"
    );
    let done_until: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT done_until FROM urumi.insight_rollup")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(done_until <= Utc::now() - chrono::Duration::minutes(5));

    let read = engine.step_insights(since, Some("demo")).await.unwrap();
    assert_eq!(read.len(), exact.len());
    for (r, e) in read.iter().zip(&exact) {
        assert!(!r.exact, "{}: read from the rollups", r.step);
        assert_eq!(
            (
                &r.definition,
                r.version,
                &r.step,
                r.count,
                r.failed,
                r.retries,
                r.polls
            ),
            (
                &e.definition,
                e.version,
                &e.step,
                e.count,
                e.failed,
                e.retries,
                e.polls
            )
        );
        for (got, want) in [(r.waiting_ms, e.waiting_ms), (r.working_ms, e.working_ms)] {
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                "{got} vs {want}"
            );
        }
        for (got, want) in [
            (r.p50_ms, e.p50_ms),
            (r.p95_ms, e.p95_ms),
            (r.p99_ms, e.p99_ms),
        ] {
            assert!(
                (got / want - 1.0).abs() <= 0.025 + 1e-9 || (want < 1.0 && got < 1.0),
                "{}: {got} vs exact {want}",
                r.step
            );
        }
        assert_eq!(r.errors, e.errors, "{}", r.step);
    }
    assert!(
        read[0].count > 200,
        "the window holds most runs: {}",
        read[0].count
    );
    // Without the definition filter the same steps come back.
    assert_eq!(engine.step_insights(since, None).await.unwrap(), read);
    // 6 hours or less stays exact; a day reads the rollups.
    let short = engine
        .step_insights(Utc::now() - chrono::Duration::hours(6), None)
        .await
        .unwrap();
    assert!(!short.is_empty() && short.iter().all(|s| s.exact));
    let day = engine
        .step_insights(Utc::now() - chrono::Duration::hours(24), None)
        .await
        .unwrap();
    assert!(day.iter().all(|s| !s.exact));
}
