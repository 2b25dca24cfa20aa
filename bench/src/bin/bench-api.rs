//! `make bench-api`: load against the real `urumi-api` process (release build) on a scratch
//! database. It creates `--stores` stores through the API (timed, in `--reps` equal batches:
//! creates/s), then per repetition drives `--seconds` of `GET /api/v1/stores/{id}` (random
//! ids; req/s and latency) and of list pages (`GET /api/v1/stores?limit=50&cursor=<random>`),
//! each from `--concurrency` keep-alive connections, while sampling the API's resident
//! memory. The load generator runs on the same machine as the API and Postgres: `wrk`
//! (`--client wrk`, the default; one thread unless `--wrk-threads`, script
//! `bench/wrk/random-id.lua`) or this program's own reqwest loop (`--client reqwest`, the
//! generator of the first published figures, which spends more of the 2 cores itself).
//! Last line `RESULT {json}` with `get_store_rps`, `get_store_p99_ms`, `list_rps`,
//! `create_per_sec`, `api_rss_mib`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::Rng;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use urumi_bench::{median_min_max, proc_cpu_secs, proc_mib, quantile};

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).context("flag needs a value")?.parse()?),
        None => Ok(default),
    }
}

fn text_arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

struct Api(Child);

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts {
        stores: arg("--stores", 10_000)?,
        concurrency: arg("--concurrency", 32)?,
        seconds: arg("--seconds", 10)?,
        reps: arg("--reps", 3)?.max(1),
        client: text_arg("--client", "wrk"),
        wrk_threads: arg("--wrk-threads", 1)?.max(1),
    };
    if !["wrk", "reqwest"].contains(&opts.client.as_str()) {
        bail!("--client is wrk or reqwest, not {:?}", opts.client);
    }
    let db = urumi_bench::ScratchDb::create("urumi_bench_api").await?;
    let result = run(&db.url, &opts).await;
    db.drop_now().await?;
    println!("RESULT {}", result?);
    Ok(())
}

struct Opts {
    stores: usize,
    concurrency: usize,
    seconds: usize,
    reps: usize,
    client: String,
    wrk_threads: usize,
}

/// Per-phase figures of one load run.
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    /// CPU time the API process spent per answered request, in µs.
    api_cpu_us: f64,
}

/// `concurrency` tasks send `make(rng)` requests for `seconds`; counts 2xx answers.
async fn load(
    client: &reqwest::Client,
    concurrency: usize,
    seconds: usize,
    make: Arc<dyn Fn(&mut rand::rngs::ThreadRng) -> String + Send + Sync>,
    token: &str,
) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds as u64);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, make, token) = (client.clone(), make.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let url = make(&mut rand::rng());
                let t = Instant::now();
                match client.get(&url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await.unwrap_or_default();
        all.extend(lat);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    Load {
        rps: all.len() as f64 / seconds as f64,
        p50_ms: quantile(&all, 0.5),
        p99_ms: quantile(&all, 0.99),
        errors,
        api_cpu_us: 0.0,
    }
}

/// The same phase driven by `wrk`: GET `<base><prefix><random id><suffix>`.
fn load_wrk(
    o: &Opts,
    base: &str,
    ids_file: &std::path::Path,
    prefix: &str,
    suffix: &str,
    token: &str,
) -> anyhow::Result<Load> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/wrk/random-id.lua");
    let out = Command::new("wrk")
        .args([
            "-t",
            &o.wrk_threads.to_string(),
            "-c",
            &o.concurrency.to_string(),
            "-d",
            &format!("{}s", o.seconds),
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-s",
            script,
            base,
            "--",
        ])
        .arg(ids_file)
        .args([prefix, suffix])
        .output()
        .context("running wrk (make bench-api installs it; or pass --client reqwest)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK "))
        .with_context(|| {
            format!(
                "wrk printed no WRK line: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: Value = serde_json::from_str(line)?;
    let n = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let errors = n("errors") + n("non_2xx_or_3xx");
    Ok(Load {
        rps: n("requests") / (n("duration_us") / 1e6),
        p50_ms: n("p50_us") / 1000.0,
        p99_ms: n("p99_us") / 1000.0,
        errors: errors as usize,
        api_cpu_us: 0.0,
    })
}

async fn run(url: &str, o: &Opts) -> anyhow::Result<Value> {
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    urumi_migrations::MIGRATOR.run(&pool).await?;
    let pg_version: String =
        sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
            .fetch_one(&pool)
            .await?;
    let token = urumi_api::auth::mint(&pool, "bench-admin", urumi_api::auth::Role::Admin, "bench")
        .await?
        .token;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let bin = std::env::current_exe()?.with_file_name("urumi-api");
    let api = Api(Command::new(&bin)
        .env("URUMI__DATABASE__URL", url)
        .env("URUMI__DATABASE__MAX_CONNECTIONS", "24")
        .env("URUMI__API__LISTEN", format!("127.0.0.1:{port}"))
        .env("URUMI__API__CREATE_RATE_PER_SEC", "1000000")
        .env("URUMI__API__CREATE_BURST", "1000000")
        .env("URUMI__API__MAX_ACTIVE_STORES", "100000000")
        .env("URUMI__API__MAX_ACTIVE_STORES_PER_ACTOR", "100000000")
        .env("URUMI__LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?);
    let pid = api.0.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency * 2)
        .tcp_nodelay(true)
        .build()?;
    let ready = async {
        for _ in 0..100 {
            if client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    if !ready.await {
        bail!("the API did not become ready at {base}");
    }
    let rss_idle = proc_mib(pid, "VmRSS").unwrap_or(0.0);
    let peak = Arc::new(std::sync::Mutex::new(rss_idle));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Some(m) = proc_mib(pid, "VmRSS") {
                    let mut p = peak.lock().expect("peak lock");
                    *p = p.max(m);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    // Creates, in `reps` batches, from `concurrency` clients.
    let mut ids: Vec<String> = Vec::with_capacity(o.stores);
    let mut create_rates = Vec::new();
    let per_batch = o.stores.div_ceil(o.reps);
    for rep in 0..o.reps {
        let n = per_batch.min(o.stores - ids.len());
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..o.concurrency {
            let (client, base, token, next) =
                (client.clone(), base.clone(), token.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut made = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(made);
                    }
                    let r = client
                        .post(format!("{base}/api/v1/stores"))
                        .bearer_auth(&token)
                        .json(&json!({ "name": format!("bench shop {rep} {i}"), "engine": "woocommerce" }))
                        .send()
                        .await?;
                    if r.status() != 202 {
                        bail!("create answered {}: {}", r.status(), r.text().await.unwrap_or_default());
                    }
                    let v: Value = r.json().await?;
                    made.push(v["store"]["id"].as_str().context("no store id")?.to_owned());
                }
            }));
        }
        for t in tasks {
            ids.extend(t.await??);
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        println!(
            "rep {}: created {n} stores through the API at {rate:.0}/s ({} in the database)",
            rep + 1,
            ids.len()
        );
        create_rates.push(rate);
    }

    let ids_file = std::env::temp_dir().join(format!("urumi-bench-api-ids-{}", std::process::id()));
    std::fs::write(&ids_file, ids.join("\n") + "\n")?;
    let ids = Arc::new(ids);
    let (mut get_rps, mut get_p99, mut list_rps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut get_cpu, mut list_cpu) = (Vec::new(), Vec::new());
    let phases = [
        ("/api/v1/stores/", ""),
        ("/api/v1/stores?limit=50&cursor=", ""),
    ];
    for rep in 0..o.reps {
        let mut got = Vec::new();
        for (prefix, suffix) in phases {
            let cpu_before = proc_cpu_secs(pid).unwrap_or(0.0);
            let mut l = if o.client == "wrk" {
                load_wrk(o, &base, &ids_file, prefix, suffix, &token)?
            } else {
                let (ids, url) = (ids.clone(), format!("{base}{prefix}"));
                load(
                    &client,
                    o.concurrency,
                    o.seconds,
                    Arc::new(move |rng| {
                        format!("{url}{}{suffix}", ids[rng.random_range(0..ids.len())])
                    }),
                    &token,
                )
                .await
            };
            let cpu = proc_cpu_secs(pid).unwrap_or(0.0) - cpu_before;
            l.api_cpu_us = cpu * 1e6 / (l.rps * o.seconds as f64).max(1.0);
            got.push(l);
        }
        let (get, list) = (&got[0], &got[1]);
        report(rep, get, list)?;
        get_rps.push(get.rps);
        get_p99.push(get.p99_ms);
        get_cpu.push(get.api_cpu_us);
        list_rps.push(list.rps);
        list_cpu.push(list.api_cpu_us);
    }
    let _ = std::fs::remove_file(&ids_file);
    sampling.store(false, Ordering::Relaxed);
    sampler.await?;
    let peak = *peak.lock().expect("peak lock");
    println!("API resident memory: idle {rss_idle:.1} MiB, peak under load {peak:.1} MiB");
    let fig = |xs: &[f64]| {
        let (m, lo, hi) = median_min_max(xs);
        json!({ "median": m.round(), "min": lo.round(), "max": hi.round() })
    };
    let fig2 = |xs: &[f64]| {
        let (m, lo, hi) = median_min_max(xs);
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({ "median": r(m), "min": r(lo), "max": r(hi) })
    };
    drop(api);
    Ok(json!({
        "bench": "api",
        "stores": ids.len(),
        "concurrency": o.concurrency,
        "seconds_per_phase": o.seconds,
        "client": if o.client == "wrk" { format!("wrk -t{}", o.wrk_threads) } else { o.client.clone() },
        "reps": o.reps,
        "machine": {
            "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
            "postgres": pg_version,
        },
        "create_per_sec": fig(&create_rates),
        "get_store_rps": fig(&get_rps),
        "get_store_p99_ms": fig2(&get_p99),
        "list_rps": fig(&list_rps),
        "api_cpu_us_per_get": fig(&get_cpu),
        "api_cpu_us_per_list": fig(&list_cpu),
        "api_rss_mib": (peak * 10.0).round() / 10.0,
        "api_rss_idle_mib": (rss_idle * 10.0).round() / 10.0,
    }))
}

fn report(rep: usize, get: &Load, list: &Load) -> anyhow::Result<()> {
    println!(
        "rep {}: GET store {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors, API CPU {:.0} µs/req); list pages of 50 {:.0} req/s (p99 {:.2} ms, {} errors, API CPU {:.0} µs/req)",
        rep + 1,
        get.rps,
        get.p50_ms,
        get.p99_ms,
        get.errors,
        get.api_cpu_us,
        list.rps,
        list.p99_ms,
        list.errors,
        list.api_cpu_us
    );
    if get.errors + list.errors > 0 {
        bail!("requests failed under load");
    }
    Ok(())
}
