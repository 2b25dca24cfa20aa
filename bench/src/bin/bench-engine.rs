//! `make bench-engine`: the engine's overhead — N runs × K no-op steps × W worker processes
//! against the local Postgres (durable defaults: `fsync` and `synchronous_commit` on).
//!
//! It creates and drops its own database, starts W copies of itself in `--worker` mode (the
//! engine's real `Worker`, one definition of K no-op steps), then:
//! 1. idle latency: 200 runs started one at a time, 20 ms apart; enqueue → first step start;
//! 2. throughput, repeated: N runs made visible in one commit; checkpointed steps/s from that
//!    commit to the last run's finish (Postgres timestamps).
//!
//! The last line is `RESULT {json}`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, proc_mib, quantile};
use urumi_engine::{
    Definition, Engine, NewRun, Registry, StepContext, StepError, StepOutcome, Worker,
    WorkerOptions,
};

struct Args {
    runs: usize,
    steps: usize,
    workers: usize,
    concurrency: usize,
    /// Each worker's pool size; `None`: the worker's default ([`WorkerOptions::POOL_SIZE`]).
    connections: Option<u32>,
    reps: usize,
    worker_url: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        runs: 4000,
        steps: 5,
        workers: 2,
        concurrency: WorkerOptions::default().concurrency,
        connections: None,
        reps: 3,
        worker_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => a.runs = value()?.parse()?,
            "--steps" => a.steps = value()?.parse()?,
            "--workers" => a.workers = value()?.parse()?,
            "--concurrency" => a.concurrency = value()?.parse()?,
            "--connections" => a.connections = Some(value()?.parse()?),
            "--reps" => a.reps = value()?.parse()?,
            "--worker" => a.worker_url = Some(value()?),
            other => anyhow::bail!(
                "unknown flag {other}; flags: --runs --steps --workers --concurrency --connections --reps"
            ),
        }
    }
    anyhow::ensure!(
        a.runs > 0 && a.steps > 0 && a.workers > 0 && a.reps > 0,
        "all counts must be > 0"
    );
    Ok(a)
}

async fn noop(_: StepContext) -> Result<StepOutcome, StepError> {
    Ok(StepOutcome::done_empty())
}

fn registry(steps: usize) -> anyhow::Result<Registry> {
    let mut b = Definition::builder("bench.noop", 1);
    for i in 1..=steps {
        b = b.step(format!("s{i}"), noop);
    }
    Ok(Registry::new([b.build()?])?)
}

async fn worker_mode(url: &str, a: &Args) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(a.connections.unwrap_or(WorkerOptions::POOL_SIZE))
        .connect(url)
        .await?;
    let options = WorkerOptions {
        concurrency: a.concurrency,
        name: "bench".into(),
        ..WorkerOptions::default()
    };
    Worker::new(pool, registry(a.steps)?, options)
        .run(urumi_bench::stdin_closed())
        .await?;
    Ok(())
}

async fn wait_all_done(pool: &PgPool, expected: i64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    loop {
        let done: i64 = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM urumi.runs WHERE status = 'succeeded'"#
        )
        .fetch_one(pool)
        .await?;
        if done >= expected {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "runs did not finish in 10 minutes"
        );
        // The figure is taken from the runs' own finish times, not from when this poll sees
        // them; polling more often would only take database time from the workers.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    if let Some(url) = &a.worker_url {
        return worker_mode(url, &a).await;
    }
    let db = urumi_bench::ScratchDb::create("urumi_bench").await?;
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
    let settings = sqlx::query!(
        r#"SELECT current_setting('server_version') AS "pg_version!",
                  current_setting('synchronous_commit') AS "sync_commit!",
                  current_setting('fsync') AS "fsync!""#,
    )
    .fetch_one(&pool)
    .await?;
    let (pg_version, sync_commit, fsync) =
        (settings.pg_version, settings.sync_commit, settings.fsync);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "bench-engine: {} runs x {} no-op steps, {} worker processes x {} slots, {} reps",
        a.runs, a.steps, a.workers, a.concurrency, a.reps
    );
    println!(
        "postgres {pg_version} (synchronous_commit={sync_commit}, fsync={fsync}), {cores} cores"
    );

    let me = std::env::current_exe()?;
    let mut children: Vec<Child> = (0..a.workers)
        .map(|_| {
            Command::new(&me)
                .args([
                    "--worker",
                    url,
                    "--steps",
                    &a.steps.to_string(),
                    "--concurrency",
                    &a.concurrency.to_string(),
                ])
                .args(
                    a.connections
                        .map(|n| ["--connections".to_string(), n.to_string()])
                        .into_iter()
                        .flatten(),
                )
                .env("RUST_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(Stdio::inherit())
                .stderr(Stdio::inherit())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let outcome = measure(a, &pool, &children).await;
    for c in &mut children {
        drop(c.stdin.take());
    }
    for c in &mut children {
        let _ = c.wait();
    }
    let outcome = outcome?;
    println!("RESULT {outcome}");
    let collapsed = outcome["collapsed_reps"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        collapsed == 0,
        "rep(s) {} ran below a third of the median: throughput collapsed",
        outcome["collapsed_reps"]
    );
    Ok(())
}

async fn measure(a: &Args, pool: &PgPool, children: &[Child]) -> anyhow::Result<serde_json::Value> {
    let registry = registry(a.steps)?;
    let engine = Engine::new(pool.clone(), registry);
    // Wait for the workers to register, then let them settle before reading idle memory.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM urumi.workers WHERE stopped_at IS NULL"#
    )
    .fetch_one(pool)
    .await?
        < a.workers as i64
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "workers did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle: Vec<f64> = children
        .iter()
        .filter_map(|c| proc_mib(c.id(), "VmRSS"))
        .collect();
    let rss_idle_max = rss_idle.iter().copied().fold(0.0, f64::max);
    println!(
        "worker RSS idle: {:?} MiB",
        rss_idle
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );

    // 1. Idle latency.
    let latency_runs = 200;
    for i in 0..latency_runs {
        engine
            .start_run(NewRun::new("bench.noop", format!("lat-{i}"), json!({})))
            .await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_all_done(pool, latency_runs).await?;
    let mut lat: Vec<f64> = sqlx::query_scalar!(
        r#"SELECT (extract(epoch FROM s.started_at - r.created_at) * 1000)::float8 AS "ms!"
           FROM urumi.runs r JOIN urumi.steps s ON s.run_id = r.id AND s.position = 0"#,
    )
    .fetch_all(pool)
    .await?;
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (quantile(&lat, 0.5), quantile(&lat, 0.99));
    println!(
        "enqueue -> first step start, idle ({} runs): p50 {p50:.2} ms, p99 {p99:.2} ms",
        lat.len()
    );

    // 2. Throughput.
    let writes_before = table_writes(pool).await?;
    let mut steps_per_sec = Vec::new();
    let mut runs_per_sec = Vec::new();
    for rep in 1..=a.reps {
        sqlx::query!("TRUNCATE urumi.runs, urumi.steps, urumi.events, urumi.operations, urumi.operation_targets")
            .execute(pool)
            .await?;
        let mut tx = pool.begin().await?;
        for i in 0..a.runs {
            engine
                .start_run_in(
                    &mut tx,
                    NewRun::new("bench.noop", format!("r{rep}-{i}"), json!({})),
                )
                .await?;
        }
        tx.commit().await?;
        let committed: f64 = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM clock_timestamp())::float8 AS "committed!""#
        )
        .fetch_one(pool)
        .await?;
        wait_all_done(pool, a.runs as i64).await?;
        let finished: f64 = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM max(finished_at))::float8 AS "finished!" FROM urumi.runs"#,
        )
        .fetch_one(pool)
        .await?;
        let secs = finished - committed;
        let sps = (a.runs * a.steps) as f64 / secs;
        steps_per_sec.push(sps);
        runs_per_sec.push(a.runs as f64 / secs);
        println!(
            "rep {rep}: {} runs x {} steps in {secs:.2} s = {sps:.0} checkpointed steps/s, {:.0} runs/s",
            a.runs,
            a.steps,
            a.runs as f64 / secs
        );
    }
    // The statistics are flushed by each backend about once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let writes = table_writes(pool).await?.since(&writes_before);
    let steps_done = (a.runs * a.steps * a.reps) as f64;
    let (rows_per_step, entries_per_step) = (
        writes.rows() as f64 / steps_done,
        writes.index_entries() as f64 / steps_done,
    );
    for t in &writes.0 {
        println!(
            "writes per checkpointed step: {:<7} {:.2} rows ({:.2} inserted, {:.2} updated of which {:.2} HOT); {:.2} entries in its {} full indexes, at most {:.2} in its {} partial ones",
            t.table,
            (t.inserted + t.updated) as f64 / steps_done,
            t.inserted as f64 / steps_done,
            t.updated as f64 / steps_done,
            t.hot as f64 / steps_done,
            t.index_entries() as f64 / steps_done,
            t.indexes,
            t.partial_entries_at_most() as f64 / steps_done,
            t.partial,
        );
    }
    println!(
        "writes per checkpointed step: {rows_per_step:.2} rows, {entries_per_step:.2} entries in full indexes (partial indexes above)"
    );
    let rss_peak: f64 = children
        .iter()
        .filter_map(|c| proc_mib(c.id(), "VmHWM"))
        .fold(0.0, f64::max);
    let (s_med, s_min, s_max) = median_min_max(&steps_per_sec);
    let (r_med, r_min, r_max) = median_min_max(&runs_per_sec);
    println!("checkpointed steps/s: median {s_med:.0} (min {s_min:.0}, max {s_max:.0})");
    // A collapsed rep (e.g. plans made on statistics from before a burst) must not hide in
    // a median: say it, and fail the run after printing every figure.
    let collapsed: Vec<usize> = steps_per_sec
        .iter()
        .enumerate()
        .filter(|(_, sps)| **sps < s_med / 3.0)
        .map(|(i, _)| i + 1)
        .collect();
    println!("runs/s: median {r_med:.0} (min {r_min:.0}, max {r_max:.0})");
    println!("worker RSS: idle {rss_idle_max:.1} MiB, peak {rss_peak:.1} MiB");
    let pg_version: String =
        sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
            .fetch_one(pool)
            .await?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Ok(json!({
        "bench": "engine",
        "runs": a.runs, "steps": a.steps, "workers": a.workers, "concurrency": a.concurrency, "reps": a.reps,
        "steps_per_sec": s_med.round(), "steps_per_sec_min": s_min.round(), "steps_per_sec_max": s_max.round(),
        "steps_per_sec_reps": steps_per_sec.iter().map(|v| v.round()).collect::<Vec<f64>>(),
        "collapsed_reps": collapsed,
        "rows_written_per_step": (rows_per_step * 100.0).round() / 100.0,
        "index_entries_per_step": (entries_per_step * 100.0).round() / 100.0,
        "runs_per_sec": r_med.round(), "runs_per_sec_min": r_min.round(), "runs_per_sec_max": r_max.round(),
        "enqueue_to_start_p50_ms": (p50 * 100.0).round() / 100.0,
        "enqueue_to_start_p99_ms": (p99 * 100.0).round() / 100.0,
        "worker_rss_idle_mib": (rss_idle_max * 10.0).round() / 10.0,
        "worker_rss_peak_mib": (rss_peak * 10.0).round() / 10.0,
        "machine": { "cores": cores, "postgres": pg_version },
    }))
}

/// Rows a table had written (pg_stat_user_tables) and how many indexes each write touches.
#[derive(Debug, Clone)]
struct TableWrites {
    table: String,
    inserted: i64,
    updated: i64,
    hot: i64,
    /// Indexes of every row.
    indexes: i64,
    /// Partial indexes (`WHERE …`): a row has an entry only if it matches.
    partial: i64,
}

impl TableWrites {
    /// An insert or a non-HOT update writes an entry into every full index of the table.
    fn index_entries(&self) -> i64 {
        (self.inserted + self.updated - self.hot) * self.indexes
    }
    /// At most this many more entries in its partial indexes.
    fn partial_entries_at_most(&self) -> i64 {
        (self.inserted + self.updated - self.hot) * self.partial
    }
}

#[derive(Debug, Clone)]
struct Writes(Vec<TableWrites>);

impl Writes {
    fn since(&self, before: &Writes) -> Writes {
        Writes(
            self.0
                .iter()
                .map(|t| {
                    let b = before.0.iter().find(|b| b.table == t.table);
                    TableWrites {
                        inserted: t.inserted - b.map_or(0, |b| b.inserted),
                        updated: t.updated - b.map_or(0, |b| b.updated),
                        hot: t.hot - b.map_or(0, |b| b.hot),
                        ..t.clone()
                    }
                })
                .collect(),
        )
    }
    fn rows(&self) -> i64 {
        self.0.iter().map(|t| t.inserted + t.updated).sum()
    }
    fn index_entries(&self) -> i64 {
        self.0.iter().map(TableWrites::index_entries).sum()
    }
}

async fn table_writes(pool: &PgPool) -> anyhow::Result<Writes> {
    let rows = sqlx::query_as!(
        TableWrites,
        r#"SELECT t.relname::text AS "table!", t.n_tup_ins AS "inserted!",
                  t.n_tup_upd AS "updated!", t.n_tup_hot_upd AS "hot!",
                  (SELECT count(*) FROM pg_index i
                     WHERE i.indrelid = t.relid AND i.indpred IS NULL) AS "indexes!",
                  (SELECT count(*) FROM pg_index i
                     WHERE i.indrelid = t.relid AND i.indpred IS NOT NULL) AS "partial!"
           FROM pg_stat_user_tables t
           WHERE t.schemaname = 'urumi' AND t.relname IN ('runs', 'steps', 'events')
           ORDER BY t.relname"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(Writes(rows))
}
