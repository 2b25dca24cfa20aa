//! `make bench-stores`: provision N stores (default 1,000) against the Kubernetes simulator
//! (controller timings zero) with W real `urumi-worker` processes; prints stores/s and
//! p50/p99 time-to-ready. Each repetition uses fresh store names on the same database and
//! simulator; the database is created and dropped by the program. Last line `RESULT {json}`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, quantile};
use urumi_engine::Engine;
use urumi_workflows::store::{service, settings::StoreSettings};
use urumi_workflows::{StoreDeps, registry};

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
    let db = urumi_bench::ScratchDb::create("urumi_bench_stores").await?;
    let result = run(&db.url, stores, workers, reps).await;
    db.drop_now().await?;
    println!("RESULT {}", result?);
    Ok(())
}

async fn run(
    url: &str,
    stores: usize,
    workers: usize,
    reps: usize,
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
    let outcome = measure(&pool, stores, reps).await;
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

async fn measure(pool: &PgPool, stores: usize, reps: usize) -> anyhow::Result<serde_json::Value> {
    let settings = StoreSettings::default();
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: None,
    });
    let engine = Engine::new(pool.clone(), registry(Some(&deps))?);
    println!("bench-stores: {stores} stores x {reps} reps against the simulator (timings zero)");
    let (mut totals, mut p50s, mut p99s) = (Vec::new(), Vec::new(), Vec::new());
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
    }
    let (t, tmin, tmax) = median_min_max(&totals);
    let (p50, _, _) = median_min_max(&p50s);
    let (p99, _, _) = median_min_max(&p99s);
    println!(
        "all ready: median {t:.1} s (min {tmin:.1}, max {tmax:.1}); p50 {p50:.2} s, p99 {p99:.2} s"
    );
    Ok(json!({
        "bench": "stores", "stores": stores, "reps": reps,
        "seconds_to_all_ready": (t * 10.0).round() / 10.0,
        "seconds_to_all_ready_min": (tmin * 10.0).round() / 10.0,
        "seconds_to_all_ready_max": (tmax * 10.0).round() / 10.0,
        "stores_per_sec": ((stores as f64 / t) * 10.0).round() / 10.0,
        "ready_p50_s": (p50 * 100.0).round() / 100.0,
        "ready_p99_s": (p99 * 100.0).round() / 100.0,
    }))
}
