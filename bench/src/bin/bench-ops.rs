//! `make bench-ops`: bulk operations against customers' work, with 2 worker processes.
//!
//! 10,000 failed runs of `bench.job@1` (steps `prepare` ✓, `work` ✗, `finish`; each step of a
//! retried run sleeps `--step-ms`) are replayed, twice on the same workers:
//! - **before**: as an operator had to before operations and lanes — a script retrying every
//!   failed run (here in one transaction, so all 10,000 are due at once), every run in the one
//!   lane the engine had, claimed in wake order as the old claim did;
//! - **after**: one retry operation (`max_concurrency` 10,000): its parent run starts the
//!   targets in the bulk lane.
//!
//! While the replay's runs are due, a single interactive run (`bench.interactive@1`, one
//! step sleeping `--interactive-ms`) is started every 50 ms, as customers creating stores would; their enqueue →
//! first-step latency is read from the database. Then two owners' equal operations (3,000
//! runs each, started together) share the workers: each owner's share of worker time (step
//! time) until the first of them is done. And the dry run's latency (median of 5).
//!
//! The last line is `RESULT {json}`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, quantile};
use urumi_engine::{
    Definition, Engine, NewRun, Registry, RunStatus, StepContext, StepError, StepOutcome, Worker,
    WorkerOptions,
};
use urumi_ops::{Action, Ops, Selector, Spec};
use uuid::Uuid;

struct Args {
    runs: usize,
    owner_runs: usize,
    step_ms: u64,
    interactive_ms: u64,
    workers: usize,
    worker_url: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        runs: 10_000,
        owner_runs: 3_000,
        step_ms: 1000,
        interactive_ms: 200,
        workers: 2,
        worker_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => a.runs = value()?.parse()?,
            "--owner-runs" => a.owner_runs = value()?.parse()?,
            "--step-ms" => a.step_ms = value()?.parse()?,
            "--interactive-ms" => a.interactive_ms = value()?.parse()?,
            "--workers" => a.workers = value()?.parse()?,
            "--worker" => a.worker_url = Some(value()?),
            other => anyhow::bail!(
                "unknown flag {other}; flags: --runs --owner-runs --step-ms --interactive-ms --workers"
            ),
        }
    }
    anyhow::ensure!(
        a.runs > 0 && a.owner_runs > 0 && a.workers > 0,
        "all counts must be > 0"
    );
    Ok(a)
}

fn registry(step_ms: u64, interactive_ms: u64) -> anyhow::Result<Registry> {
    let sleeping = |ms: u64| {
        move |_: StepContext| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, StepError>(StepOutcome::done_empty())
        }
    };
    let sleep = sleeping(step_ms);
    let job = Definition::builder("bench.job", 1)
        .step("prepare", sleep)
        .step("work", sleep)
        .step("finish", sleep)
        .build()?;
    let interactive = Definition::builder("bench.interactive", 1)
        .step("create", sleeping(interactive_ms))
        .build()?;
    Ok(Registry::new([job, interactive])?)
}

async fn worker_mode(url: &str, a: &Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(WorkerOptions::POOL_SIZE)
        .connect(url)
        .await?;
    let registry = urumi_ops::with_code(
        pool.clone(),
        &registry(a.step_ms, a.interactive_ms)?,
        Default::default(),
    )?;
    let options = WorkerOptions {
        name: "bench".into(),
        ..WorkerOptions::default()
    };
    Worker::new(pool, registry, options)
        .run(urumi_bench::stdin_closed())
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    if let Some(url) = &a.worker_url {
        return worker_mode(url, &a).await;
    }
    let db = urumi_bench::ScratchDb::create("urumi_bench_ops").await?;
    let result = run(&a, &db.url).await;
    db.drop_now().await?;
    result
}

async fn run(a: &Args, url: &str) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    urumi_migrations::MIGRATOR.run(&pool).await?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let defaults = WorkerOptions::default();
    println!(
        "bench-ops: {} failed runs (3 steps, {} ms each when run; interactive runs {} ms), {} worker processes x {} slots ({} for bulk runs), {cores} cores",
        a.runs,
        a.step_ms,
        a.interactive_ms,
        a.workers,
        defaults.concurrency,
        defaults.bulk_slots()
    );
    let me = std::env::current_exe()?;
    let mut children: Vec<Child> = (0..a.workers)
        .map(|_| {
            Command::new(&me)
                .args([
                    "--worker",
                    url,
                    "--step-ms",
                    &a.step_ms.to_string(),
                    "--interactive-ms",
                    &a.interactive_ms.to_string(),
                ])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let outcome = measure(a, &pool).await;
    for c in &mut children {
        drop(c.stdin.take());
    }
    for c in &mut children {
        let _ = c.wait();
    }
    println!("RESULT {}", outcome?);
    Ok(())
}

async fn measure(a: &Args, pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let base = registry(a.step_ms, a.interactive_ms)?;
    let engine = Engine::new(pool.clone(), urumi_ops::with_declared(&base)?);
    let ops = Ops::new(engine.clone(), Default::default());
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM urumi.workers WHERE stopped_at IS NULL"#
    )
    .fetch_one(pool)
    .await?
        < a.workers as i64
    {
        anyhow::ensure!(Instant::now() < deadline, "workers did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Before: a loop of single retries, one lane.
    reset(pool).await?;
    insert_failed(pool, "b", a.runs).await?;
    let before = replay(pool, &engine, a.runs, || async {
        let ids: Vec<Uuid> = sqlx::query_scalar!(
            "SELECT id FROM urumi.runs WHERE definition = 'bench.job' AND status = 'failed' ORDER BY id"
        )
        .fetch_all(pool)
        .await?;
        let mut tx = pool.begin().await?;
        for id in ids {
            engine
                .retry_run_in(&mut tx, id, &urumi_engine::Who::interactive("operator-script"))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    })
    .await?;
    println!(
        "before (a retry script, one lane): all {} runs started after {:.1} s; interactive enqueue -> first step p50 {:.0} ms, p99 {:.0} ms ({} runs)",
        a.runs, before.all_started_s, before.p50_ms, before.p99_ms, before.n
    );

    // After: one operation, bulk lane.
    reset(pool).await?;
    insert_failed(pool, "a", a.runs).await?;
    let spec = Spec {
        action: Action::Retry,
        from_step: None,
        plan: None,
        channel: None,
        selector: Selector {
            status: Some(RunStatus::Failed),
            definition: Some("bench.job".into()),
            ..Selector::default()
        },
        max_concurrency: urumi_ops::MAX_CONCURRENCY,
        canary: None,
        failure_budget: None,
    };
    let mut dry = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let p = ops.preview(&spec, "bench").await?;
        dry.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(p.matched == a.runs, "the dry run matched {}", p.matched);
    }
    let (dry_ms, dry_min, dry_max) = median_min_max(&dry);
    println!(
        "dry run over {} failed runs: median {dry_ms:.0} ms ({dry_min:.0}-{dry_max:.0}) of 5",
        a.runs
    );
    let after = replay(pool, &engine, a.runs, || async {
        ops.create(&spec, "operator", "operator").await?;
        Ok(())
    })
    .await?;
    println!(
        "after (one operation, bulk lane): all {} runs started after {:.1} s; interactive enqueue -> first step p50 {:.0} ms, p99 {:.0} ms ({} runs)",
        a.runs, after.all_started_s, after.p50_ms, after.p99_ms, after.n
    );

    // Two owners' equal operations.
    reset(pool).await?;
    insert_failed(pool, "x", a.owner_runs).await?;
    insert_failed(pool, "y", a.owner_runs).await?;
    let t0: f64 = now(pool).await?;
    for (owner, prefix) in [("owner-x", "x"), ("owner-y", "y")] {
        // Each owner's own failed runs (their errors name the owner).
        let mut s = spec.clone();
        s.selector.error_contains = Some(format!("owner {prefix}"));
        ops.create(&s, owner, owner).await?;
    }
    wait_started_and_done(pool, 2 * a.owner_runs as i64).await?;
    let shares = sqlx::query!(
        r#"WITH ends AS (
             SELECT r.owner, max(extract(epoch FROM r.finished_at))::float8 AS done
             FROM urumi.runs r WHERE r.definition = 'bench.job' GROUP BY r.owner),
           t1 AS (SELECT min(done) AS t1 FROM ends)
           SELECT r.owner AS "owner!",
                  sum(greatest(0, least(extract(epoch FROM s.finished_at)::float8, (SELECT t1 FROM t1))
                                  - greatest(extract(epoch FROM s.started_at)::float8, $1::float8)))::float8 AS "busy!"
           FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id
           WHERE r.definition = 'bench.job' AND s.position > 0 AND s.started_at IS NOT NULL
           GROUP BY r.owner ORDER BY r.owner"#,
        t0,
    )
    .fetch_all(pool)
    .await?;
    let total: f64 = shares.iter().map(|s| s.busy).sum();
    let pct: Vec<(String, f64)> = shares
        .iter()
        .map(|s| (s.owner.clone(), 100.0 * s.busy / total.max(f64::EPSILON)))
        .collect();
    let min_pct = pct.iter().map(|p| p.1).fold(100.0, f64::min);
    println!(
        "two owners' equal operations ({} runs each): worker time until the first is done {}",
        a.owner_runs,
        pct.iter()
            .map(|(o, p)| format!("{o} {p:.1}%"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    Ok(json!({
        "runs": a.runs,
        "step_ms": a.step_ms,
        "interactive_ms": a.interactive_ms,
        "workers": a.workers,
        "dry_run_ms": round1(dry_ms),
        "seconds_to_all_started": round1(after.all_started_s),
        "seconds_to_all_started_before": round1(before.all_started_s),
        "interactive_start_p50_ms": round1(after.p50_ms),
        "interactive_start_p99_ms": round1(after.p99_ms),
        "interactive_start_p50_ms_before": round1(before.p50_ms),
        "interactive_start_p99_ms_before": round1(before.p99_ms),
        "interactive_runs": after.n,
        "interactive_runs_before": before.n,
        "owner_share_min_pct": round1(min_pct),
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

async fn now(pool: &PgPool) -> anyhow::Result<f64> {
    Ok(
        sqlx::query_scalar!(r#"SELECT extract(epoch FROM clock_timestamp())::float8 AS "t!""#)
            .fetch_one(pool)
            .await?,
    )
}

async fn reset(pool: &PgPool) -> anyhow::Result<()> {
    // Wait until nothing is left running (the previous phase's tail), then clear.
    let deadline = Instant::now() + Duration::from_secs(600);
    while sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM urumi.runs WHERE status IN ('queued', 'running', 'waiting')"#
    )
    .fetch_one(pool)
    .await?
        > 0
    {
        anyhow::ensure!(Instant::now() < deadline, "runs still active after 10 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query!("TRUNCATE urumi.runs, urumi.steps, urumi.events, urumi.operations, urumi.operation_targets, urumi.bulk_owners")
        .execute(pool)
        .await?;
    Ok(())
}

/// `n` failed runs of `bench.job` (`prepare` succeeded, `work` failed), subjects `<prefix>-i`,
/// their error naming the owner prefix.
async fn insert_failed(pool: &PgPool, prefix: &str, n: usize) -> anyhow::Result<()> {
    sqlx::query!(
        r#"WITH r AS (
             INSERT INTO urumi.runs (id, definition, version, subject, input, status, error,
                                     created_by, started_at, finished_at)
             SELECT gen_random_uuid(), 'bench.job', 1, $1 || '-' || g, '{}', 'failed',
                    'boom: owner ' || $1, 'bench', now(), now()
             FROM generate_series(1, $2::int) g
             RETURNING id)
           INSERT INTO urumi.steps (run_id, name, position, status, attempts, started_at, finished_at, last_error)
           SELECT r.id, s.name, s.pos,
                  CASE s.pos WHEN 0 THEN 'succeeded' WHEN 1 THEN 'failed' ELSE 'pending' END,
                  CASE WHEN s.pos < 2 THEN 1 ELSE 0 END,
                  CASE WHEN s.pos < 2 THEN now() END, CASE WHEN s.pos < 2 THEN now() END,
                  CASE WHEN s.pos = 1 THEN 'boom' END
           FROM r CROSS JOIN (VALUES ('prepare', 0), ('work', 1), ('finish', 2)) AS s(name, pos)"#,
        prefix,
        n as i32,
    )
    .execute(pool)
    .await?;
    sqlx::query!("ANALYZE urumi.runs").execute(pool).await?;
    Ok(())
}

struct Replay {
    all_started_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    n: usize,
}

/// Starts the replay (`go`), meanwhile starts an interactive run every 50 ms until every
/// replayed run has started again, then reads the figures from the database.
async fn replay<F, Fut>(
    pool: &PgPool,
    engine: &Engine,
    runs: usize,
    go: F,
) -> anyhow::Result<Replay>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let t0 = now(pool).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let customers = {
        let (stop, engine) = (stop.clone(), engine.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                engine
                    .start_run(
                        NewRun::new("bench.interactive", format!("customer-{i}"), json!({}))
                            .actor("customer"),
                    )
                    .await?;
                i += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(i)
        })
    };
    go().await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let started: i64 = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM urumi.steps s JOIN urumi.runs r ON r.id = s.run_id
               WHERE r.definition = 'bench.job' AND s.position = 1 AND s.started_at >= to_timestamp($1::float8)"#,
            t0,
        )
        .fetch_one(pool)
        .await?;
        if started >= runs as i64 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the replay did not start in 15 minutes ({started} of {runs})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let n = customers.await??;
    let last: f64 = sqlx::query_scalar!(
        r#"SELECT extract(epoch FROM max(s.started_at))::float8 AS "t!" FROM urumi.steps s
           JOIN urumi.runs r ON r.id = s.run_id WHERE r.definition = 'bench.job' AND s.position = 1"#,
    )
    .fetch_one(pool)
    .await?;
    // Wait for the customers' runs to have started, then read their latencies.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut lat: Vec<f64> = loop {
        let rows = sqlx::query!(
            r#"SELECT (extract(epoch FROM s.started_at - r.created_at) * 1000)::float8 AS ms
               FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id AND s.position = 0
               WHERE r.definition = 'bench.interactive'"#,
        )
        .fetch_all(pool)
        .await?;
        if rows.iter().all(|r| r.ms.is_some()) && rows.len() == n {
            break rows.into_iter().filter_map(|r| r.ms).collect();
        }
        anyhow::ensure!(Instant::now() < deadline, "interactive runs did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    lat.sort_by(f64::total_cmp);
    Ok(Replay {
        all_started_s: last - t0,
        p50_ms: quantile(&lat, 0.5),
        p99_ms: quantile(&lat, 0.99),
        n: lat.len(),
    })
}

/// Waits until `n` bench jobs have succeeded.
async fn wait_started_and_done(pool: &PgPool, n: i64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(900);
    while sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM urumi.runs WHERE definition = 'bench.job' AND status = 'succeeded'"#
    )
    .fetch_one(pool)
    .await?
        < n
    {
        anyhow::ensure!(Instant::now() < deadline, "the owners' operations did not finish in 15 minutes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
