//! `make bench-stores`: provision N stores (default 1,000) against the Kubernetes simulator
//! (controller timings zero) with W real `urumi-worker` processes; prints stores/s and
//! p50/p99 time-to-ready. Each repetition uses fresh store names on the same database and
//! simulator; the database is created and dropped by the program. Last line `RESULT {json}`.
//!
//! Then, in each repetition, the lifecycle phase (`--no-lifecycle` skips it): the N ready
//! stores are suspended by one bulk operation (`urumi_ops`, action `suspend`, selector the
//! repetition's store ids, `--concurrency` targets at once, default 200) and timed until
//! every one is `suspended` (`suspend_seconds`), then resumed by a second one until every one
//! is `ready` again (`resume_seconds`). The workers run the operation workflow
//! (`operation@1`) beside the store workflows. A failed or skipped target, or a store that
//! does not reach the status, fails the program. Last, a third operation (action `backup`)
//! backs every one up, timed until each has one more complete backup (`backup_seconds`: the
//! simulator emulates the dump Job, so this is the engine's and the workers' share of a
//! backup, not mariadb-dump's).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, quantile};
use urumi_engine::Engine;
use urumi_ops::{Action, Ops, Selector, Spec};
use urumi_store::status::StoreStatus;
use urumi_workflows::store::{service, settings::StoreSettings};
use urumi_workflows::{StoreDeps, registry};
use uuid::Uuid;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).context("flag needs a value")?.parse()?),
        None => Ok(default),
    }
}

/// Connections per worker process.
const WORKER_POOL: u32 = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (stores, workers, reps) = (
        arg("--stores", 1000)?,
        arg("--workers", 2)?,
        arg("--reps", 3)?,
    );
    let lifecycle = (!std::env::args().any(|a| a == "--no-lifecycle"))
        .then(|| arg("--concurrency", 200))
        .transpose()?;
    let db = urumi_bench::ScratchDb::create("urumi_bench_stores").await?;
    let result = run(&db.url, stores, workers, reps, lifecycle).await;
    db.drop_now().await?;
    println!("RESULT {}", result?);
    Ok(())
}

async fn run(
    url: &str,
    stores: usize,
    workers: usize,
    reps: usize,
    lifecycle: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(url)
        .await?;
    urumi_migrations::MIGRATOR.run(&pool).await?;
    let max: String = sqlx::query_scalar!(r#"SELECT current_setting('max_connections') AS "max!""#)
        .fetch_one(&pool)
        .await?;
    let needed = workers as u32 * WORKER_POOL + 16 + 2;
    anyhow::ensure!(
        max.parse::<u32>().unwrap_or(0) >= needed,
        "{workers} workers x {WORKER_POOL} connections + 18 need max_connections >= {needed}; the server has {max}"
    );
    let kubeconfig = std::env::temp_dir().join(format!(
        "urumi-bench-stores-{}.kubeconfig",
        std::process::id()
    ));
    let sim = urumi_sim::Simulator::builder()
        .kubeconfig_path(&kubeconfig)
        .start()
        .await?;
    let worker_bin = std::env::current_exe()?.with_file_name("urumi-worker");
    anyhow::ensure!(
        worker_bin.exists(),
        "{} not found: build it with cargo build --release -p urumi-worker",
        worker_bin.display()
    );
    let mut children: Vec<Child> = (0..workers)
        .map(|n| {
            Command::new(&worker_bin)
                .arg("run")
                .env("URUMI__DATABASE__URL", url)
                .env("URUMI__CLUSTER__KUBECONFIG", &kubeconfig)
                .env("URUMI__WORKER__CONCURRENCY", "64")
                // Each worker's pool is fixed here so the check above on max_connections
                // holds whatever the worker's default is.
                .env("URUMI__DATABASE__MAX_CONNECTIONS", WORKER_POOL.to_string())
                .env("URUMI__WORKER__NAME", format!("bench-{n}"))
                .env("URUMI__LOG__FILTER", "error")
                .stdout(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    let outcome = measure(&pool, stores, reps, lifecycle).await;
    for c in &mut children {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
    }
    for c in &mut children {
        let _ = c.wait();
    }
    sim.shutdown().await;
    let _ = std::fs::remove_file(&kubeconfig);
    let pg: String = sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
        .fetch_one(&pool)
        .await?;
    let mut v = outcome?;
    v["machine"] = json!({ "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1), "postgres": pg });
    v["workers"] = json!(workers);
    Ok(v)
}

async fn measure(
    pool: &PgPool,
    stores: usize,
    reps: usize,
    lifecycle: Option<usize>,
) -> anyhow::Result<serde_json::Value> {
    let settings = StoreSettings::default();
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: None,
    });
    // The operation workflow declared beside the store workflows, so the bench can create
    // operations; the workers (the real `urumi-worker`) run its code.
    let engine = Engine::new(
        pool.clone(),
        urumi_ops::with_declared(&registry(Some(&deps))?)?,
    );
    let ops = Ops::new(engine.clone(), Arc::new(settings.clone()));
    println!("bench-stores: {stores} stores x {reps} reps against the simulator (timings zero)");
    let (mut totals, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut suspends, mut resumes, mut backups) = (Vec::new(), Vec::new(), Vec::new());
    let mut earlier: HashSet<Uuid> = HashSet::new();
    for rep in 1..=reps {
        let mut tasks = tokio::task::JoinSet::new();
        let per = stores.div_ceil(8);
        for chunk in 0..8 {
            let (engine, settings) = (engine.clone(), settings.clone());
            tasks.spawn(async move {
                for i in (chunk * per)..((chunk + 1) * per).min(stores) {
                    service::create(
                        &engine,
                        &settings,
                        &format!("bench r{rep} s{i}"),
                        "woocommerce",
                        None,
                        "bench",
                    )
                    .await
                    .context("creating a store")?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r??;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let counts = sqlx::query!(
                r#"SELECT count(*) FILTER (WHERE s.status = 'ready') AS "ready!",
                          (SELECT count(*) FROM urumi.runs WHERE status = 'failed') AS "failed!"
                   FROM urumi.stores s WHERE s.name LIKE $1"#,
                format!("bench r{rep} %"),
            )
            .fetch_one(pool)
            .await?;
            let (ready, failed) = (counts.ready, counts.failed);
            if failed > 0 {
                let why: Vec<(String, i64)> = sqlx::query!(
                    r#"SELECT coalesce(left(error, 300), '?') AS "error!", count(*) AS "n!"
                       FROM urumi.runs
                       WHERE status = 'failed' GROUP BY 1 ORDER BY 2 DESC LIMIT 5"#,
                )
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|r| (r.error, r.n))
                .collect();
                for (error, n) in &why {
                    eprintln!("{n} runs failed: {error}");
                }
                anyhow::bail!("{failed} provisioning runs failed");
            }
            if ready as usize == stores {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "only {ready}/{stores} stores ready after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (total, mut each): (f64, Vec<f64>) = {
            let rows: Vec<(f64, f64)> = sqlx::query!(
                r#"SELECT extract(epoch FROM ready_at - created_at)::float8 AS "each!",
                          extract(epoch FROM (SELECT max(ready_at) - min(created_at) FROM urumi.stores WHERE name LIKE $1))::float8 AS "total!"
                   FROM urumi.stores WHERE name LIKE $1"#,
                format!("bench r{rep} %"),
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| (r.each, r.total))
            .collect();
            (
                rows.first().map_or(0.0, |r| r.1),
                rows.iter().map(|r| r.0).collect(),
            )
        };
        each.sort_by(f64::total_cmp);
        let (p50, p99) = (quantile(&each, 0.5), quantile(&each, 0.99));
        println!(
            "rep {rep}: {stores} stores ready in {total:.1} s ({:.1} stores/s); time to ready p50 {p50:.2} s, p99 {p99:.2} s",
            stores as f64 / total
        );
        totals.push(total);
        p50s.push(p50);
        p99s.push(p99);
        // This repetition's stores: every store but those of the earlier repetitions.
        let ids: Vec<Uuid> = urumi_store::db::matching_ids(pool, None, None, None)
            .await?
            .into_iter()
            .filter(|id| !earlier.contains(id))
            .collect();
        earlier.extend(ids.iter().copied());
        anyhow::ensure!(
            ids.len() == stores,
            "found {} stores of rep {rep}",
            ids.len()
        );
        if let Some(concurrency) = lifecycle {
            for (action, to, times) in [
                (
                    Action::Suspend,
                    Goal::Status(StoreStatus::Suspended),
                    &mut suspends,
                ),
                (
                    Action::Resume,
                    Goal::Status(StoreStatus::Ready),
                    &mut resumes,
                ),
                (Action::Backup, Goal::Backups, &mut backups),
            ] {
                let s = bulk(pool, &ops, &ids, action, to, concurrency).await?;
                println!(
                    "rep {rep}: {stores} stores {to} by one {action} operation in {s:.1} s ({:.1} stores/s)",
                    stores as f64 / s
                );
                times.push(s);
            }
        }
    }
    let (t, tmin, tmax) = median_min_max(&totals);
    let (p50, _, _) = median_min_max(&p50s);
    let (p99, _, _) = median_min_max(&p99s);
    println!(
        "all ready: median {t:.1} s (min {tmin:.1}, max {tmax:.1}); p50 {p50:.2} s, p99 {p99:.2} s"
    );
    let mut v = json!({
        "bench": "stores", "stores": stores, "reps": reps,
        "seconds_to_all_ready": (t * 10.0).round() / 10.0,
        "seconds_to_all_ready_min": (tmin * 10.0).round() / 10.0,
        "seconds_to_all_ready_max": (tmax * 10.0).round() / 10.0,
        "stores_per_sec": ((stores as f64 / t) * 10.0).round() / 10.0,
        "ready_p50_s": (p50 * 100.0).round() / 100.0,
        "ready_p99_s": (p99 * 100.0).round() / 100.0,
    });
    if let Some(concurrency) = lifecycle {
        v["lifecycle_max_concurrency"] = json!(concurrency);
        for (name, times, done) in [
            ("suspend", &suspends, "suspended"),
            ("resume", &resumes, "resumed"),
            ("backup", &backups, "backed up"),
        ] {
            let (t, tmin, tmax) = median_min_max(times);
            println!(
                "all {done}: median {t:.1} s (min {tmin:.1}, max {tmax:.1}); {:.1} stores/s",
                stores as f64 / t
            );
            v[format!("{name}_seconds")] = json!((t * 10.0).round() / 10.0);
            v[format!("{name}_seconds_min")] = json!((tmin * 10.0).round() / 10.0);
            v[format!("{name}_seconds_max")] = json!((tmax * 10.0).round() / 10.0);
            v[format!("{name}_stores_per_sec")] =
                json!(((stores as f64 / t) * 10.0).round() / 10.0);
        }
    }
    Ok(v)
}

/// What a bulk operation of the lifecycle phase is waited for.
#[derive(Debug, Clone, Copy)]
enum Goal {
    /// Every store in this status.
    Status(StoreStatus),
    /// Every store with one more complete backup.
    Backups,
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::Status(s) => write!(f, "{s}"),
            Goal::Backups => f.write_str("backed up"),
        }
    }
}

/// Acts on the stores `ids` (all in status `ready` or `suspended`) with one bulk operation
/// of `action`, `concurrency` targets at once; returns the seconds from its creation until
/// every one of them reached `to`.
///
/// # Errors
/// When the operation cannot be created, a target failed or was skipped, or the stores do
/// not all reach `to` within 10 minutes.
async fn bulk(
    pool: &PgPool,
    ops: &Ops,
    ids: &[Uuid],
    action: Action,
    to: Goal,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let count = async || -> anyhow::Result<i64> {
        Ok(match to {
            Goal::Status(to) => urumi_store::db::count_by_status(pool)
                .await?
                .iter()
                .find(|(s, _)| *s == to)
                .map_or(0, |(_, n)| *n),
            Goal::Backups => urumi_store::backups::count_complete(pool, ids).await?,
        })
    };
    // Stores of earlier repetitions are `ready` too (and backed up before): the target is
    // `ids` more than now.
    let expected = count().await? + ids.len() as i64;
    let spec = Spec {
        action,
        from_step: None,
        plan: None,
        channel: None,
        selector: Selector {
            store_ids: Some(ids.to_vec()),
            ..Selector::default()
        },
        max_concurrency: u32::try_from(concurrency)?,
        canary: None,
        failure_budget: None,
    };
    let started = tokio::time::Instant::now();
    let op = ops
        .create(&spec, "bench", "bench")
        .await
        .with_context(|| format!("creating the {action} operation"))?;
    anyhow::ensure!(
        op.progress.matched == ids.len() as i64,
        "the {action} operation matched {} of {} stores",
        op.progress.matched,
        ids.len()
    );
    let mut reached: Option<f64> = None;
    loop {
        // The operation first: once it is final its targets' statuses are written, so the
        // count read after it sees them.
        let op = ops.get(op.id).await?;
        let p = op.progress;
        let n = count().await?;
        if reached.is_none() && n == expected {
            reached = Some(started.elapsed().as_secs_f64());
        }
        if p.failed > 0 || p.skipped > 0 || (op.state.is_final() && reached.is_none()) {
            anyhow::bail!(
                "{action} operation {} is {} ({}): {} succeeded, {} failed, {} skipped of {}; {n}/{expected} stores {to}",
                op.id,
                op.state,
                op.reason.as_deref().unwrap_or("-"),
                p.succeeded,
                p.failed,
                p.skipped,
                p.matched,
            );
        }
        if let Some(s) = reached
            && op.state.is_final()
        {
            println!(
                "  {action} operation {}: {} of {} targets succeeded, 0 failed, 0 skipped",
                op.id, p.succeeded, p.matched
            );
            return Ok(s);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{action}: only {n}/{expected} stores {to} after 10 minutes ({} of {} targets done)",
            p.succeeded,
            p.matched
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
