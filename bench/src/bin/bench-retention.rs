//! `make bench-retention`: what retention does to a fleet's tables, and what it costs.
//!
//! Each rep, in a database of its own:
//! 1. a year of compressed churn for `--stores` stores, written straight into the engine's
//!    tables (one INSERT … SELECT per table, in time order): each store's provisioning run
//!    (8 steps, 5 % failed), 0–5 repairs (3 steps, 3 % failed), a deletion for 20 % of them
//!    (4 steps), a waiting run for 1 % (active: never pruned); per run `run.created`,
//!    `run.claimed`, `step.started` + `step.succeeded`/`step.failed` per step and the run's
//!    end; per store the operators' `store.created` (and `store.deleted`) entries. Times are
//!    spread over the last 365 days.
//! 2. table and index sizes, and row counts;
//! 3. claim latency of a live queue (a real engine `Worker`, one probe run started every
//!    25 ms; latency = the run's first claim − its creation, Postgres timestamps) for
//!    `--probe-seconds` before pruning, then while the engine's pruner (`Engine::prune`,
//!    default windows: succeeded 30 d, failed 180 d, audit 365 d; `--batch` rows per
//!    transaction, 20 ms between batches) deletes what is past its window;
//! 4. row counts and sizes after `VACUUM` (space reusable by new rows, files not shrunk)
//!    and after `VACUUM FULL` (what the live rows take).
//!
//! The last line is `RESULT {json}` with medians (min, max) over the reps.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, quantile};
use urumi_engine::{
    Definition, Engine, NewRun, Registry, Retention, StepContext, StepError, StepOutcome, Worker,
    WorkerOptions,
};
use uuid::Uuid;

struct Args {
    stores: u32,
    batch: u32,
    reps: usize,
    probe_seconds: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        stores: 10_000,
        batch: Retention::default().batch,
        reps: 3,
        probe_seconds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--stores" => a.stores = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--reps" => a.reps = value()?.parse()?,
            "--probe-seconds" => a.probe_seconds = value()?.parse()?,
            other => {
                anyhow::bail!(
                    "unknown flag {other}; flags: --stores --batch --reps --probe-seconds"
                )
            }
        }
    }
    anyhow::ensure!(
        a.stores > 0 && a.batch > 0 && a.reps > 0,
        "all counts must be > 0"
    );
    Ok(a)
}

const TABLES: [&str; 3] = ["runs", "steps", "events"];

async fn noop(_: StepContext) -> Result<StepOutcome, StepError> {
    Ok(StepOutcome::done_empty())
}

fn registry() -> anyhow::Result<Registry> {
    Ok(Registry::new([Definition::builder("probe", 1)
        .step("s", noop)
        .build()?])?)
}

/// The year of churn (see the module doc).
async fn generate(pool: &PgPool, stores: u32) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // Not query! macros: the statements read the temp tables `gen_stores` and `gen_runs`,
    // which exist only inside this transaction, so there is nothing to check them against.
    for sql in [
        "CREATE TEMP TABLE gen_stores ON COMMIT DROP AS
         SELECT gen_random_uuid() AS id, now() - random() * interval '365 days' AS born,
                random() < 0.2 AS deleted, random() < 0.01 AS busy,
                (random() * 5.99)::int AS repairs
         FROM generate_series(1, $1)",
        "CREATE TEMP TABLE gen_runs ON COMMIT DROP AS
         SELECT gen_random_uuid() AS id, s.id AS store, d.def, d.steps, d.at,
                CASE WHEN d.def = 'store.provision' AND random() < 0.05 THEN 'failed'
                     WHEN d.def = 'store.repair' AND random() < 0.03 THEN 'failed'
                     ELSE 'succeeded' END AS status
         FROM gen_stores s
         CROSS JOIN LATERAL (
             SELECT 'store.provision' AS def, 8 AS steps, s.born AS at
             UNION ALL
             SELECT 'store.repair', 3, s.born + random() * (now() - s.born)
             FROM generate_series(1, s.repairs)
             UNION ALL
             SELECT 'store.delete', 4, s.born + random() * (now() - s.born) WHERE s.deleted
         ) d",
        "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by,
                                 created_at, started_at, finished_at, updated_at, error)
         SELECT id, def, 1, 'store:' || store, '{}', status, 'operator', at, at,
                at + interval '3 minutes', at + interval '3 minutes',
                CASE WHEN status = 'failed' THEN 'step \"s0\" failed: bench' END
         FROM gen_runs ORDER BY at",
        "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by, wake_at)
         SELECT gen_random_uuid(), 'store.repair', 1, 'store:' || id, '{}', 'waiting', 'operator',
                now() + interval '1 day'
         FROM gen_stores WHERE busy AND NOT deleted",
        "INSERT INTO urumi.steps (run_id, name, position, status, attempts, output, started_at,
                                  finished_at, updated_at)
         SELECT r.id, 's' || p, p,
                CASE WHEN r.status = 'failed' AND p = 0 THEN 'failed'
                     WHEN r.status = 'failed' THEN 'pending' ELSE 'succeeded' END,
                1, '{\"ok\": true}', r.at, r.at + interval '20 seconds', r.at
         FROM gen_runs r CROSS JOIN LATERAL generate_series(0, r.steps - 1) p",
        // Events in time order, so their ids grow with time as real ones do.
        "INSERT INTO urumi.events (run_id, subject, kind, step, actor, detail, created_at)
         SELECT run_id, subject, kind, step, actor, detail, at FROM (
             SELECT r.id AS run_id, 'store:' || r.store AS subject, 'run.created' AS kind,
                    NULL AS step, 'operator' AS actor, '{}'::jsonb AS detail, r.at
             FROM gen_runs r
             UNION ALL
             SELECT r.id, 'store:' || r.store, 'run.claimed', NULL, 'worker-1', '{}', r.at + interval '1 second'
             FROM gen_runs r
             UNION ALL
             SELECT r.id, 'store:' || r.store, e.kind, 's' || p, 'worker-1', '{\"attempt\": 1}',
                    r.at + p * interval '10 seconds' + e.off
             FROM gen_runs r
             CROSS JOIN LATERAL generate_series(0, r.steps - 1) p
             CROSS JOIN LATERAL (VALUES ('step.started', interval '2 seconds'),
                                        (CASE WHEN r.status = 'failed' THEN 'step.failed'
                                              ELSE 'step.succeeded' END, interval '9 seconds')) e(kind, off)
             WHERE r.status = 'succeeded' OR p = 0
             UNION ALL
             SELECT r.id, 'store:' || r.store, 'run.' || r.status, NULL, 'worker-1', '{}', r.at + interval '3 minutes'
             FROM gen_runs r
             UNION ALL
             SELECT NULL, 'store:' || s.id, 'store.created', NULL, 'operator', '{}', s.born FROM gen_stores s
             UNION ALL
             SELECT NULL, 'store:' || s.id, 'store.deleted', NULL, 'operator', '{}', now() - random() * (now() - s.born)
             FROM gen_stores s WHERE s.deleted
         ) e ORDER BY at",
    ] {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") {
            q.bind(i64::from(stores))
        } else {
            q
        };
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    for t in TABLES {
        // Not a query! macro: the table name is interpolated from `TABLES`.
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE urumi.{t}")))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Rows, table bytes and index bytes per table.
async fn sizes(pool: &PgPool) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    for t in TABLES {
        // Not a query_as! macro: the table name is interpolated from `TABLES`.
        let (rows, table, indexes): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM urumi.{t}),
                    pg_table_size('urumi.{t}'), pg_indexes_size('urumi.{t}')"
        )))
        .fetch_one(pool)
        .await?;
        out.insert(
            t.into(),
            json!({ "rows": rows, "table_mib": mib(table), "indexes_mib": mib(indexes) }),
        );
    }
    Ok(Value::Object(out))
}

fn mib(bytes: i64) -> f64 {
    (bytes as f64 / 1048576.0 * 10.0).round() / 10.0
}

fn total_rows(s: &Value) -> i64 {
    TABLES
        .iter()
        .map(|t| s[t]["rows"].as_i64().unwrap_or(0))
        .sum()
}

/// Starts a probe run every 25 ms until `stop` is set; their claim latencies (ms).
async fn probe(
    engine: Engine,
    pool: PgPool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Vec<f64>> {
    let mut ids: Vec<Uuid> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    while !*stop.borrow() {
        tick.tick().await;
        let subject = format!("probe:{}", Uuid::now_v7());
        ids.push(
            engine
                .start_run(NewRun::new("probe", &subject, json!({})))
                .await?
                .run_id,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lat: Vec<Option<f64>> = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM started_at - created_at)::float8 * 1000 AS "ms?"
               FROM urumi.runs WHERE id = ANY($1)"#,
            &ids,
        )
        .fetch_all(&pool)
        .await?;
        if lat.iter().all(Option::is_some) {
            let mut v: Vec<f64> = lat.into_iter().flatten().collect();
            v.sort_by(f64::total_cmp);
            return Ok(v);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "probe runs were not claimed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn probe_for(engine: &Engine, pool: &PgPool, d: Duration) -> anyhow::Result<Vec<f64>> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(probe(engine.clone(), pool.clone(), rx));
    tokio::time::sleep(d).await;
    tx.send(true)?;
    task.await?
}

struct Rep {
    before: Value,
    after_vacuum: Value,
    after_full: Value,
    pruned: u64,
    prune_secs: f64,
    idle_p99: f64,
    pruning_p50: f64,
    pruning_p99: f64,
}

async fn rep(a: &Args) -> anyhow::Result<Rep> {
    let db = urumi_bench::ScratchDb::create("urumi_bench_retention").await?;
    let result = rep_in(a, &db.url).await;
    db.drop_now().await?;
    result
}

async fn rep_in(a: &Args, url: &str) -> anyhow::Result<Rep> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    urumi_migrations::MIGRATOR.run(&pool).await?;
    let t = Instant::now();
    generate(&pool, a.stores).await?;
    let before = sizes(&pool).await?;
    println!(
        "  generated in {:.1} s: {before}",
        t.elapsed().as_secs_f64()
    );

    let engine = Engine::new(pool.clone(), registry()?);
    let worker = Worker::new(
        pool.clone(),
        engine.registry().clone(),
        WorkerOptions {
            concurrency: 4,
            name: "probe".into(),
            ..WorkerOptions::default()
        },
    )
    .start()
    .await?;
    // Warm-up (connections, plans), then the queue's claim latency with nothing pruning.
    probe_for(&engine, &pool, Duration::from_secs(1)).await?;
    let idle = probe_for(&engine, &pool, Duration::from_secs(a.probe_seconds)).await?;

    let retention = Retention {
        batch: a.batch,
        ..Retention::default()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let probing = tokio::spawn(probe(engine.clone(), pool.clone(), rx));
    let t = Instant::now();
    let report = engine.prune(&retention).await?;
    let prune_secs = t.elapsed().as_secs_f64();
    tx.send(true)?;
    let pruning = probing.await??;
    worker.shutdown().await?;
    println!(
        "  pruned {} rows in {prune_secs:.1} s ({report:?}); probe runs: {} idle, {} while pruning",
        report.rows(),
        idle.len(),
        pruning.len()
    );

    for t in TABLES {
        // Not a query! macro: the table name is interpolated from `TABLES`.
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE urumi.{t}")))
            .execute(&pool)
            .await?;
    }
    let after_vacuum = sizes(&pool).await?;
    for t in TABLES {
        // Not a query! macro: the table name is interpolated from `TABLES`.
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM FULL urumi.{t}")))
            .execute(&pool)
            .await?;
    }
    let after_full = sizes(&pool).await?;
    println!("  after VACUUM: {after_vacuum}\n  after VACUUM FULL: {after_full}");
    pool.close().await;
    Ok(Rep {
        before,
        after_vacuum,
        after_full,
        pruned: report.rows(),
        prune_secs,
        idle_p99: quantile(&idle, 0.99),
        pruning_p50: quantile(&pruning, 0.5),
        pruning_p99: quantile(&pruning, 0.99),
    })
}

fn stat(xs: &[f64]) -> Value {
    let (med, min, max) = median_min_max(xs);
    json!({ "median": (med * 10.0).round() / 10.0, "min": (min * 10.0).round() / 10.0, "max": (max * 10.0).round() / 10.0 })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await?;
    let settings = sqlx::query!(
        r#"SELECT current_setting('server_version') AS "pg_version!",
                  current_setting('synchronous_commit') AS "sync_commit!""#,
    )
    .fetch_one(&admin)
    .await?;
    let (pg_version, sync_commit) = (settings.pg_version, settings.sync_commit);
    admin.close().await;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench-retention: {} stores, a year of churn; prune batch {}; {} reps; postgres {pg_version} \
         (synchronous_commit={sync_commit}), {cores} cores",
        a.stores, a.batch, a.reps
    );
    let mut reps = Vec::new();
    for i in 1..=a.reps {
        println!("rep {i}:");
        let r = rep(&a).await?;
        println!(
            "  rows {} -> {}; prune {:.0} rows/s; claim latency p99 {:.1} ms idle, p50 {:.1} / p99 {:.1} ms while pruning",
            total_rows(&r.before),
            total_rows(&r.after_vacuum),
            r.pruned as f64 / r.prune_secs,
            r.idle_p99,
            r.pruning_p50,
            r.pruning_p99
        );
        reps.push(r);
    }
    let col = |f: &dyn Fn(&Rep) -> f64| stat(&reps.iter().map(f).collect::<Vec<_>>());
    let last = reps.last().context("no reps")?;
    let result = json!({
        "bench": "retention",
        "stores": a.stores,
        "batch": a.batch,
        "reps": a.reps,
        "rows_before": col(&|r| total_rows(&r.before) as f64),
        "rows_after": col(&|r| total_rows(&r.after_vacuum) as f64),
        "rows_pruned": col(&|r| r.pruned as f64),
        "prune_seconds": col(&|r| r.prune_secs),
        "prune_rows_per_sec": col(&|r| r.pruned as f64 / r.prune_secs),
        "claim_p99_ms_idle": col(&|r| r.idle_p99),
        "claim_p50_ms_while_pruning": col(&|r| r.pruning_p50),
        "claim_p99_ms_while_pruning": col(&|r| r.pruning_p99),
        "tables_before": last.before,
        "tables_after_vacuum": last.after_vacuum,
        "tables_after_vacuum_full": last.after_full,
        "machine": { "cores": cores, "postgres": pg_version },
    });
    println!("RESULT {result}");
    Ok(())
}
