//! `make bench-insights`: the insight queries (`Engine::step_insights`, `Engine::run_insights`,
//! what `/api/v1/insights/…` answers) against a fleet's month of history: N step rows
//! (default 1,000,000) of the store workflows' real steps, in runs that finished over the
//! last 30 days (the retention window of succeeded runs), 3 % failed.
//!
//! It creates and drops its own database, prints each query's plan (`EXPLAIN ANALYZE`) once
//! and then, per query and window (24 h, 7 days, 30 days), the latency of `--reps` calls
//! after a warm-up: p50 and p99 — first before the hourly rollups exist (every window read
//! from the step rows), then after rolling the month (`Engine::roll_insights`, timed), when
//! windows over 6 h read the rollups. The last line is `RESULT {json}`
//! (`worst_query_p99_ms` after, `worst_query_p99_ms_before`, `rollup_seconds`).

use std::time::Instant;

use anyhow::Context;
use chrono::Utc;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::quantile;
use urumi_engine::Engine;

struct Args {
    steps: i64,
    reps: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        steps: 1_000_000,
        reps: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--steps" => a.steps = value()?.parse()?,
            "--reps" => a.reps = value()?.parse()?,
            other => anyhow::bail!("unknown flag {other}; flags: --steps --reps"),
        }
    }
    anyhow::ensure!(
        a.steps >= 1000 && a.reps >= 2,
        "--steps >= 1000, --reps >= 2"
    );
    Ok(a)
}

/// Writes runs of the store workflows (provision 70 %, repair 20 %, delete 10 %) with all
/// their steps, until `steps` step rows exist; runs finished uniformly over 30 days.
async fn generate(pool: &PgPool, engine: &Engine, steps: i64) -> anyhow::Result<()> {
    let mut defs: Vec<(String, i32, Vec<String>, i64)> = Vec::new();
    for (name, share) in [
        (urumi_store::definitions::PROVISION, 70),
        (urumi_store::definitions::REPAIR, 20),
        (urumi_store::definitions::DELETE, 10),
    ] {
        let d = engine.registry().get(name, None)?;
        let names: Vec<String> = d.steps().iter().map(|s| s.name.clone()).collect();
        defs.push((name.to_owned(), d.version(), names, share));
    }
    // Step rows per 100 runs of the mix, so the run count gives `steps` rows.
    let per_100: i64 = defs.iter().map(|d| d.3 * d.2.len() as i64).sum();
    let runs = steps * 100 / per_100;
    for (name, version, names, share) in &defs {
        let n = runs * share / 100;
        // Runs: enqueued 20 s–10 min before they finished; 3 % failed at a random step.
        sqlx::query(
            "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by,
                 created_at, started_at, finished_at, error)
             SELECT gen_random_uuid(), $1, $2, 'store:' || gen_random_uuid(), '{}',
                    CASE WHEN random() < 0.03 THEN 'failed' ELSE 'succeeded' END, 'bench',
                    f - d, f - d, f, NULL
             FROM (SELECT now() - random() * interval '30 days' AS f,
                          (20 + random() * 580) * interval '1 second' AS d
                   FROM generate_series(1, $3)) g",
        )
        .bind(name)
        .bind(version)
        .bind(n)
        .execute(pool)
        .await?;
        // Steps: each of the definition's steps, 5 ms–30 s, 5 % retried (with an error), a
        // failed run's steps failing at a random position (later ones pending), polls and
        // waits on a third of them.
        sqlx::query(
            "WITH r AS (
                 SELECT id, status, finished_at,
                        CASE WHEN status = 'failed' THEN floor(random() * $3)::int END AS fail_at
                 FROM urumi.runs WHERE definition = $1 AND version = $2
             )
             INSERT INTO urumi.steps (run_id, name, position, status, attempts, polls, waited_ms,
                                      last_error, started_at, finished_at)
             SELECT r.id, s.name, s.pos - 1,
                    CASE WHEN r.fail_at IS NULL OR s.pos - 1 < r.fail_at THEN 'succeeded'
                         WHEN s.pos - 1 = r.fail_at THEN 'failed' ELSE 'pending' END,
                    CASE WHEN r.fail_at IS NOT NULL AND s.pos - 1 > r.fail_at THEN 0
                         WHEN x.retry THEN 2 ELSE 1 END,
                    CASE WHEN x.poll THEN 1 + floor(random() * 5)::int ELSE 0 END,
                    CASE WHEN x.poll THEN floor(x.ms * random() * 0.8)::bigint ELSE 0 END,
                    CASE WHEN x.retry OR s.pos - 1 = r.fail_at
                         THEN (ARRAY['the API server timed out', '409 conflict on apply',
                                     'pod not ready: CrashLoopBackOff', 'quota exceeded'])[1 + floor(random() * 4)::int] END,
                    CASE WHEN r.fail_at IS NULL OR s.pos - 1 <= r.fail_at
                         THEN r.finished_at - x.ms * interval '1 millisecond' END,
                    CASE WHEN r.fail_at IS NULL OR s.pos - 1 <= r.fail_at THEN r.finished_at END
             FROM r CROSS JOIN unnest($4::text[]) WITH ORDINALITY AS s(name, pos)
             CROSS JOIN LATERAL (SELECT 5 + random() * 29995 AS ms, random() < 0.05 AS retry,
                                        random() < 0.33 AS poll, s.pos AS p) x",
        )
        .bind(name)
        .bind(version)
        .bind(names.len() as i32)
        .bind(names)
        .execute(pool)
        .await?;
    }
    sqlx::query("ANALYZE urumi.runs").execute(pool).await?;
    sqlx::query("ANALYZE urumi.steps").execute(pool).await?;
    Ok(())
}

/// What is measured: one insight query over one window.
#[derive(Clone, Copy)]
enum Query {
    StepsAll,
    StepsProvision,
    RunsProvision,
}

impl Query {
    fn name(self) -> &'static str {
        match self {
            Query::StepsAll => "steps (every definition)",
            Query::StepsProvision => "steps (store.provision)",
            Query::RunsProvision => "runs (store.provision)",
        }
    }

    async fn call(self, engine: &Engine, hours: i64) -> anyhow::Result<usize> {
        let since = Utc::now() - chrono::Duration::hours(hours);
        let provision = urumi_store::definitions::PROVISION;
        Ok(match self {
            Query::StepsAll => engine.step_insights(since, None).await?.len(),
            Query::StepsProvision => engine.step_insights(since, Some(provision)).await?.len(),
            Query::RunsProvision => {
                let r = engine.run_insights(since, provision).await?;
                usize::try_from(r.succeeded)?
            }
        })
    }
}

/// The steps query's plan over `hours`, with `EXPLAIN (ANALYZE, BUFFERS)`.
async fn plan(pool: &PgPool, hours: i64) -> anyhow::Result<Vec<String>> {
    // The statement `Engine::step_insights` runs (engine/src/insights.rs), with its
    // parameters written in and its session setting, so the plan is the one for this window.
    let sql = format!(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) WITH ended AS (
             SELECT r.definition, r.version, s.name, s.position, s.status, s.attempts, s.polls,
                    s.waited_ms::float8 AS waited_ms,
                    extract(epoch FROM s.finished_at - s.started_at)::float8 * 1000 AS duration_ms
             FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
             WHERE r.status IN ('succeeded', 'failed', 'cancelled')
               AND r.finished_at >= now() - interval '{hours} hours'
               AND s.status IN ('succeeded', 'failed')
               AND s.started_at IS NOT NULL AND s.finished_at IS NOT NULL
         )
         SELECT definition, version, name, count(*),
                percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms)
         FROM ended GROUP BY definition, version, name"
    );
    // Safe: `hours` is an integer this program chose.
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL random_page_cost = 1.1")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Every query over every window, `reps` calls each after a warm-up: the figures, the worst
/// p99 and the worst p99 of the default (24 h) window.
async fn measure(
    engine: &Engine,
    reps: usize,
) -> anyhow::Result<(Vec<serde_json::Value>, f64, f64)> {
    let mut figures = Vec::new();
    let mut worst = 0.0_f64;
    let mut worst_default = 0.0_f64;
    for hours in [24_i64, 168, 720] {
        for q in [Query::StepsAll, Query::StepsProvision, Query::RunsProvision] {
            q.call(engine, hours).await?; // warm-up: connection, plan cache
            let mut ms = Vec::with_capacity(reps);
            let mut answer = 0;
            for _ in 0..reps {
                let t = Instant::now();
                answer = q.call(engine, hours).await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            let (p50, p99) = (quantile(&ms, 0.5), quantile(&ms, 0.99));
            println!(
                "{:>4} h  {:<26} p50 {:>8.1} ms  p99 {:>8.1} ms  ({answer} {})",
                hours,
                q.name(),
                p50,
                p99,
                if matches!(q, Query::RunsProvision) {
                    "runs succeeded"
                } else {
                    "steps listed"
                }
            );
            worst = worst.max(p99);
            if hours == 24 {
                worst_default = worst_default.max(p99);
            }
            figures.push(json!({
                "query": q.name(), "hours": hours,
                "p50_ms": (p50 * 10.0).round() / 10.0, "p99_ms": (p99 * 10.0).round() / 10.0,
            }));
        }
    }
    Ok((figures, worst, worst_default))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let db = urumi_bench::ScratchDb::create("urumi_bench_insights").await?;
    let result = run(&a, &db.url).await;
    db.drop_now().await?;
    result
}

async fn run(a: &Args, url: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    urumi_migrations::MIGRATOR.run(&pool).await?;
    let engine = Engine::new(pool.clone(), urumi_store::registry()?);
    let t = Instant::now();
    generate(&pool, &engine, a.steps).await?;
    let (runs, steps): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM urumi.runs), (SELECT count(*) FROM urumi.steps)",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "bench-insights: {steps} step rows in {runs} runs over 30 days, generated in {:.1} s; {} calls per query and window",
        t.elapsed().as_secs_f64(),
        a.reps
    );
    println!("plan of the steps query over 24 h:");
    for line in plan(&pool, 24).await? {
        println!("  {line}");
    }
    // Before: no rollups yet, so every window reads the step rows (what this code did
    // before the rollups); after: windows over 6 hours read the hourly rollups.
    println!("before the rollups (every window read from the step rows):");
    let (before, worst_before, _) = measure(&engine, a.reps).await?;
    let t = Instant::now();
    let rolled = engine.roll_insights().await?;
    let rollup_seconds = t.elapsed().as_secs_f64();
    println!(
        "rolled {} hours into {} rows in {rollup_seconds:.1} s",
        rolled.hours, rolled.rows
    );
    println!("after (windows over 6 h from the hourly rollups):");
    let (figures, worst, worst_default) = measure(&engine, a.reps).await?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "RESULT {}",
        json!({
            "bench": "insights", "step_rows": steps, "runs": runs, "reps": a.reps, "cores": cores,
            "worst_query_p99_ms": (worst * 10.0).round() / 10.0,
            "worst_query_p99_ms_default_window": (worst_default * 10.0).round() / 10.0,
            "worst_query_p99_ms_before": (worst_before * 10.0).round() / 10.0,
            "rollup_seconds": (rollup_seconds * 10.0).round() / 10.0,
            "queries": figures,
            "queries_before": before,
        })
    );
    Ok(())
}
