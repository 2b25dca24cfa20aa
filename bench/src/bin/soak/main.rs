//! `make soak`: the chaos soak. N stores are provisioned by 3 real `urumi-worker`
//! processes with short leases, through the real `urumi-api`, against the Kubernetes
//! simulator, on a Postgres of the soak's own — while a driver SIGKILLs random workers
//! every few seconds, restarts Postgres with `pg_ctl restart -m immediate`, kills and
//! restarts the API, deletes some stores mid-provisioning and injects bursts of simulator
//! faults (before apply, and after apply: the write happens, the answer is a 5xx or a
//! dropped connection). An SSE client follows the event stream throughout, reconnecting
//! with `Last-Event-ID`.
//!
//! Then it checks, from the database, the simulator's request log, the follower and the
//! processes' exits: every store terminal as expected; no stuck or failed run; no step
//! executed again after it succeeded and no second setup Job; no object created twice;
//! every event received exactly once and in order; every create and delete audited; no
//! process died by itself; every process reconnected (and re-LISTENed) after each Postgres
//! restart. One line per invariant, then `RESULT {json}`; the exit code is 1 when an
//! invariant fails, 2 when the soak could not run.
//!
//! ```text
//! soak [--stores 150] [--seconds 300] [--chaos-seconds S/2] [--workers 3]
//!      [--kill-every 4] [--delete-every 5] [--seed 1] [--first-xid 9000] [--bin-dir DIR] [--keep]
//! ```
//! `--seconds` bounds the whole run after start-up (chaos, then waiting for every store to
//! end). `--first-xid` starts Postgres at that transaction id (0: where `initdb` leaves it,
//! ~730), so that even a short run crosses 9,999 → 10,000 — the event stream's cursors are
//! transaction ids, and a cursor compared as text would put 10000 before 9999. `--bin-dir` holds `urumi-sim`, `urumi-api` and `urumi-worker` (default: this
//! program's directory). Everything listens on 127.0.0.1; the temp dir (Postgres data,
//! logs) is removed unless the soak fails or `--keep` is given.

mod chaos;
mod driver;
mod follower;
mod invariants;
mod listeners;
mod platform;
mod postgres;
mod procs;
mod simulator;
mod stream;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, watch};
use tokio::time::Instant;

use crate::platform::Platform;
use crate::simulator::LogSummary;

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    stores: usize,
    seconds: u64,
    chaos_seconds: u64,
    workers: usize,
    kill_every: u64,
    delete_every: usize,
    seed: u64,
    first_xid: u64,
    bin_dir: PathBuf,
    keep: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| -> Option<&String> {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
    };
    let num = |flag: &str, default: u64| -> anyhow::Result<u64> {
        value(flag).map_or(Ok(default), |v| {
            v.parse()
                .with_context(|| format!("{flag} needs a number, not {v:?}"))
        })
    };
    let known = [
        "--stores",
        "--seconds",
        "--chaos-seconds",
        "--workers",
        "--kill-every",
        "--delete-every",
        "--seed",
        "--first-xid",
        "--bin-dir",
    ];
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--keep" => i += 1,
            f if known.contains(&f) => i += 2,
            other => anyhow::bail!(
                "unknown argument {other:?}; see the top of bench/src/bin/soak/main.rs"
            ),
        }
    }
    let seconds = num("--seconds", 300)?;
    let args = Args {
        stores: num("--stores", 150)? as usize,
        seconds,
        chaos_seconds: num("--chaos-seconds", seconds / 2)?,
        workers: num("--workers", 3)? as usize,
        kill_every: num("--kill-every", 4)?,
        delete_every: num("--delete-every", 5)? as usize,
        seed: num("--seed", 1)?,
        first_xid: num("--first-xid", 9000)?,
        bin_dir: match value("--bin-dir") {
            Some(d) => PathBuf::from(d),
            None => std::env::current_exe()?
                .parent()
                .context("this program's directory")?
                .to_path_buf(),
        },
        keep: argv.iter().any(|a| a == "--keep"),
    };
    anyhow::ensure!(
        args.stores > 0 && args.workers > 0,
        "--stores and --workers must be > 0"
    );
    anyhow::ensure!(
        args.chaos_seconds >= 5 && args.chaos_seconds < args.seconds,
        "--chaos-seconds must be at least 5 and below --seconds"
    );
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("urumi-soak.{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("soak: creating {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    // The hard deadline: start-up, the run, the event catch-up and the teardown.
    let limit = Duration::from_secs(args.seconds + 120);
    let outcome = tokio::select! {
        r = tokio::time::timeout(limit, soak(&args, &dir)) => r.unwrap_or_else(|_| Err(anyhow::anyhow!("the soak overran its hard limit of {limit:?}"))),
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let (code, result) = match outcome {
        Ok((passed, result)) => (if passed { 0 } else { 1 }, result),
        Err(e) => {
            eprintln!("soak: could not complete: {e:#}");
            let mut m = Map::new();
            m.insert("error".into(), json!(format!("{e:#}")));
            m.insert("passed".into(), json!(false));
            (2, m)
        }
    };
    if code == 0 && !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        let _ = std::fs::remove_dir_all(dir.join("pg").join("data"));
        println!("soak: logs kept in {}", dir.display());
    }
    println!("RESULT {}", Value::Object(result));
    ExitCode::from(code)
}

/// Runs the soak; returns whether every invariant held, and the `RESULT` figures.
async fn soak(args: &Args, dir: &std::path::Path) -> anyhow::Result<(bool, Map<String, Value>)> {
    println!(
        "soak: {} stores (every {}th deleted mid-provisioning), {} workers (lease {} ms), chaos for {} s, all within {} s, seed {}; in {}",
        args.stores,
        args.delete_every,
        args.workers,
        platform::LEASE_MS,
        args.chaos_seconds,
        args.seconds,
        args.seed,
        dir.display()
    );
    let mut p = Platform::start(dir, &args.bin_dir, args.workers, args.first_xid).await?;
    p.sim
        .set_faults(args.seed, &chaos::baseline_rules())
        .await?;
    let t0 = Instant::now();
    // The same moment on Postgres's clock, for the time to all terminal.
    let t0_db: f64 =
        sqlx::query_scalar!(r#"SELECT extract(epoch FROM clock_timestamp())::float8 AS "t0!""#)
            .fetch_one(&p.pool)
            .await?;
    let deadline = t0 + Duration::from_secs(args.seconds);
    let chaos_len = Duration::from_secs(args.chaos_seconds);
    println!(
        "soak: platform up (API {}, simulator {})",
        p.api.url, p.sim.url
    );

    // Background: the event-stream follower, the process monitor, the request-log drain.
    let (stop_tx, stop_rx) = watch::channel(false);
    let seen = Arc::new(follower::Seen::default());
    let follower = tokio::spawn(follower::follow(
        p.api.url.clone(),
        p.api.token().to_owned(),
        seen.clone(),
        stop_rx.clone(),
    ));
    let log = Arc::new(Mutex::new(LogSummary::default()));
    let background = {
        let (procs, sim, log, mut stop) =
            (p.procs.clone(), p.sim.clone(), log.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.changed() => return,
                }
                procs.lock().await.reap();
                let mut l = log.lock().await;
                let _ = sim.drain(&mut l).await;
            }
        })
    };

    // The driver: creates spread over the first three quarters of the chaos window (so that
    // the chaos keeps landing on stores being provisioned); every `delete_every`th store
    // deleted 0.3–4 s after its create was accepted.
    let names: Vec<String> = (0..args.stores)
        .map(|n| format!("soak store {n}"))
        .collect();
    let to_delete: BTreeSet<String> = names
        .iter()
        .enumerate()
        .filter(|(n, _)| args.delete_every > 0 && n % args.delete_every == args.delete_every - 1)
        .map(|(_, s)| s.clone())
        .collect();
    let mut rng = StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let spacing = chaos_len.mul_f64(0.75) / args.stores as u32;
    let mut requests = tokio::task::JoinSet::new();
    for (n, name) in names.iter().enumerate() {
        let (api, name) = (p.api.clone(), name.clone());
        let delete = to_delete.contains(&name);
        let after = Duration::from_millis(rng.random_range(300..4000));
        let (start, key) = (t0 + spacing * n as u32, format!("soak-{}-{n}", args.seed));
        requests.spawn(async move {
            tokio::time::sleep_until(start).await;
            let id = api.create(&name, &key, deadline).await;
            if let (true, Some(id)) = (delete, id) {
                tokio::time::sleep(after).await;
                api.delete(&name, id, deadline).await;
            }
        });
    }

    let plan = chaos::schedule(chaos_len, Duration::from_secs(args.kill_every));
    let report = chaos::run(&p, &plan, t0, args.seed).await;
    tokio::time::sleep_until(t0 + chaos_len).await;
    p.sim.set_faults(args.seed, &[]).await?;
    println!(
        "[{:6.1}s] chaos over; waiting for every store to end",
        t0.elapsed().as_secs_f64()
    );
    while requests.join_next().await.is_some() {}

    // Convergence: every store terminal, no run active. The time to all terminal is when the
    // last run finished (Postgres's clock), which may be before the chaos ended.
    let mut all_terminal = None;
    while Instant::now() < deadline {
        let row: Result<(i64, i64, i64, Option<f64>), _> = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM urumi.stores WHERE name LIKE 'soak store %'
                         AND status IN ('ready', 'failed', 'deleted')) AS "terminal!",
                      (SELECT count(*) FROM urumi.stores WHERE name LIKE 'soak store %') AS "total!",
                      (SELECT count(*) FROM urumi.runs
                         WHERE status IN ('queued', 'running', 'waiting')) AS "active!",
                      (SELECT extract(epoch FROM max(finished_at))::float8 FROM urumi.runs) AS last"#,
        )
        .fetch_one(&p.pool)
        .await
        .map(|r| (r.terminal, r.total, r.active, r.last));
        if let Ok((terminal, total, active, last)) = row
            && terminal == total
            && active == 0
        {
            all_terminal = Some(last.map_or(0.0, |l| l - t0_db));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    match all_terminal {
        Some(s) => println!(
            "[{:6.1}s] every store ended (the last run finished at {s:.1} s); no run active",
            t0.elapsed().as_secs_f64()
        ),
        None => println!(
            "[{:6.1}s] deadline: not every store ended",
            t0.elapsed().as_secs_f64()
        ),
    }

    // Let the follower catch up with the log (everything is quiet now), then stop it.
    caught_up(&seen, &p.pool).await;
    let _ = stop_tx.send(true);
    let _ = follower.await;
    // A second reader replays the whole log from the start, in the API's batches.
    let replay = Arc::new(follower::Seen::default());
    let (replay_stop, replay_rx) = watch::channel(false);
    let replayer = tokio::spawn(follower::follow(
        p.api.url.clone(),
        p.api.token().to_owned(),
        replay.clone(),
        replay_rx,
    ));
    caught_up(&replay, &p.pool).await;
    let _ = replay_stop.send(true);
    let _ = replayer.await;
    let _ = background.await;
    let mut log = Arc::try_unwrap(log)
        .expect("the drain has stopped")
        .into_inner();
    p.sim.drain(&mut log).await?;
    let faults_injected = p.sim.stats().await?["faultsInjected"].as_u64().unwrap_or(0);
    let unexpected = {
        let mut procs = p.procs.lock().await;
        procs.reap();
        procs.unexpected.clone()
    };

    let ledger = std::mem::take(&mut *p.api.ledger.lock().expect("ledger"));
    let received = std::mem::take(&mut *seen.events.lock().expect("seen lock"));
    let replayed = std::mem::take(&mut *replay.events.lock().expect("seen lock"));
    let inputs = invariants::Inputs {
        names: &names,
        to_delete: &to_delete,
        ledger: &ledger,
        live: stream::Stream {
            received: &received,
            reconnects: seen.reconnects.load(Ordering::Relaxed),
            malformed: seen.malformed.load(Ordering::Relaxed),
        },
        replay: stream::Stream {
            received: &replayed,
            reconnects: replay.reconnects.load(Ordering::Relaxed),
            malformed: replay.malformed.load(Ordering::Relaxed),
        },
        log: &log,
        chaos: &report,
        faults_injected,
        seconds_to_all_terminal: all_terminal,
    };
    let (mut checks, mut fig) = invariants::verdict(&p.pool, &p.sim, &inputs).await?;
    // Everything stops on SIGTERM, cleanly: part of "no process died by itself".
    let bad_stops = p.procs.lock().await.stop_all(Duration::from_secs(15)).await;
    checks.push(invariants::processes(&unexpected, &bad_stops, &mut fig));
    p.pool.close().await;
    p.pg.stop();

    let passed = checks.iter().all(|c| c.ok);
    for c in &checks {
        println!(
            "invariant {}: {} — {}",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.detail
        );
        if !c.ok {
            for e in c.evidence.iter().take(10) {
                println!("    {e}");
            }
            if c.evidence.len() > 10 {
                println!("    … and {} more", c.evidence.len() - 10);
            }
        }
    }
    fig.insert("workers".into(), json!(args.workers));
    fig.insert("chaos_seconds".into(), json!(args.chaos_seconds));
    fig.insert("seed".into(), json!(args.seed));
    fig.insert("passed".into(), json!(passed));
    fig.insert(
        "failed_invariants".into(),
        json!(
            checks
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.name)
                .collect::<Vec<_>>()
        ),
    );
    Ok((passed, fig))
}

/// Waits until `seen` holds as many distinct events as `urumi.events`, or it has received
/// nothing new for 5 s, or 30 s have passed.
async fn caught_up(seen: &follower::Seen, pool: &sqlx::PgPool) {
    let (start, mut last_progress, mut last_count) = (Instant::now(), Instant::now(), 0);
    while start.elapsed() < Duration::from_secs(30)
        && last_progress.elapsed() < Duration::from_secs(5)
    {
        let want: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM urumi.events"#)
            .fetch_one(pool)
            .await
            .unwrap_or(i64::MAX);
        let got = {
            let ev = seen.events.lock().expect("seen lock");
            ev.iter().map(|e| e.id).collect::<BTreeSet<_>>().len()
        };
        if got as i64 >= want {
            return;
        }
        if got > last_count {
            (last_count, last_progress) = (got, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
