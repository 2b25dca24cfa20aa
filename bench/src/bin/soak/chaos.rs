//! The chaos schedule and its actions. Over the chaos window: SIGKILL a random worker every
//! few seconds (and start it again), `pg_ctl restart -m immediate` Postgres once or twice,
//! SIGKILL the API and start it again, and bursts of simulator faults — errors before
//! anything is applied *and* after-apply faults (applied, then 5xx or a dropped
//! connection). Actions run one at a time, in time order.
//!
//! After each Postgres restart the soak checks, without restarting anything, that every
//! process reconnected: each worker heartbeats again and holds a `LISTEN urumi_runs`
//! session, the API answers `/readyz` and holds its `LISTEN urumi_events` session.
//!
//! ```text
//!  0 ──────────────────────────── chaos window ─────────────────────────────► end
//!  K   K   K   K   K   K   K   K   K   K   K   K   K   K      K = kill a worker
//!   [F]        A    P         [F]   A       P     [F]  A      F = fault burst
//!                                                              A = kill the API, P = Postgres
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::listeners;
use crate::platform::Platform;

/// One scheduled action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    KillWorker,
    RestartPostgres,
    KillApi,
    /// Burst number `n` starts.
    FaultsOn(u64),
    FaultsOff,
}

/// The schedule for a window of `chaos`: a worker kill every `kill_every`; the API killed
/// at 20 %, 55 % and 85 %; Postgres restarted at 35 % and 70 % (once, at 50 %, in windows
/// under 20 s); fault bursts at 10 %, 45 % and 75 %, each lasting 6 s (or 10 % of a short
/// window).
pub fn schedule(chaos: Duration, kill_every: Duration) -> Vec<(Duration, Action)> {
    let at = |f: f64| chaos.mul_f64(f);
    let mut s = Vec::new();
    let mut t = kill_every;
    while t < chaos && !kill_every.is_zero() {
        s.push((t, Action::KillWorker));
        t += kill_every;
    }
    for f in [0.2, 0.55, 0.85] {
        s.push((at(f), Action::KillApi));
    }
    if chaos >= Duration::from_secs(20) {
        s.push((at(0.35), Action::RestartPostgres));
        s.push((at(0.7), Action::RestartPostgres));
    } else {
        s.push((at(0.5), Action::RestartPostgres));
    }
    let burst = Duration::from_secs(6).min(chaos / 10);
    for (n, f) in [0.1, 0.45, 0.75].into_iter().enumerate() {
        s.push((at(f), Action::FaultsOn(n as u64)));
        s.push((at(f) + burst, Action::FaultsOff));
    }
    s.sort_by_key(|(t, a)| (*t, matches!(a, Action::FaultsOff)));
    s
}

/// What every simulator request gets all along: 50 ms of latency, like a real API server
/// under load. It also makes steps last long enough for a SIGKILL to catch some mid-step.
pub fn baseline_rules() -> Vec<Value> {
    vec![json!({"latencyMs": 50})]
}

/// The rules of one fault burst, on top of the baseline: 5 % errors before apply on
/// patches, creates and gets; on every mutating verb, 8 % applied-then-500 and 4 %
/// applied-then-dropped.
pub fn burst_rules() -> Vec<Value> {
    let mut rules = baseline_rules();
    rules.extend([
        json!({"verb": "patch", "errorRate": 0.05, "status": 500}),
        json!({"verb": "create", "errorRate": 0.05, "status": 500}),
        json!({"verb": "get", "errorRate": 0.05, "status": 503}),
        json!({"afterApplyRate": 0.08, "afterApply": "error", "status": 500}),
        json!({"afterApplyRate": 0.04, "afterApply": "drop"}),
    ]);
    rules
}

/// One Postgres restart and what followed.
#[derive(Debug, Clone)]
pub struct PgRestart {
    /// Seconds into the soak.
    pub at_s: f64,
    /// How long `pg_ctl restart` took.
    pub took_s: f64,
    /// The new postmaster's start (epoch seconds, Postgres clock).
    pub postmaster_start: f64,
    /// Seconds from the restart's end until every process had reconnected, if they did.
    pub reconnected_s: Option<f64>,
    /// What was still missing when the check gave up.
    pub missing: Vec<String>,
    /// Worker processes that lived through the restart: (pid, worker id).
    pub survivors: Vec<(u32, String)>,
    /// The next transaction id just before the restart and just after it. After a crash,
    /// ids that never reached the flushed WAL (e.g. of aborted transactions) are handed out
    /// again, so `after` may be below `before`.
    pub next_xid: (Option<u64>, Option<u64>),
}

/// The next transaction id Postgres will hand out (`xmax` of a fresh snapshot).
async fn next_xid(pool: &sqlx::PgPool) -> Option<u64> {
    sqlx::query_scalar!(r#"SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS "x!""#)
        .fetch_one(pool)
        .await
        .ok()
        .map(|x| x as u64)
}

/// What the chaos did.
#[derive(Debug, Default)]
pub struct Report {
    pub worker_kills: u64,
    pub api_kills: u64,
    pub bursts: u64,
    pub pg_restarts: Vec<PgRestart>,
    /// Actions that could not be carried out.
    pub errors: Vec<String>,
}

/// How long the reconnect check waits after a Postgres restart.
const RECONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Runs `plan` from `t0`; logs each action.
pub async fn run(p: &Platform, plan: &[(Duration, Action)], t0: Instant, seed: u64) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut r = Report::default();
    let secs = || t0.elapsed().as_secs_f64();
    for &(when, action) in plan {
        tokio::time::sleep_until(t0 + when).await;
        match action {
            Action::KillWorker => {
                let idx = p.workers[rng.random_range(0..p.workers.len())];
                let mut procs = p.procs.lock().await;
                let before = procs.list[idx].pid;
                procs.kill(idx).await;
                drop(procs);
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
                let mut procs = p.procs.lock().await;
                let restarted = procs.restart(idx);
                let (name, pid) = (procs.list[idx].spec.name.clone(), procs.list[idx].pid);
                drop(procs);
                match restarted {
                    Ok(()) => {
                        r.worker_kills += 1;
                        // Up before the next action: a worker still starting when Postgres
                        // goes down exits (it cannot connect), which is not this test.
                        let up = registered(p, pid.unwrap_or(0)).await;
                        println!(
                            "[{:6.1}s] {name} SIGKILLed (pid {}), started again (pid {}){}",
                            secs(),
                            before.unwrap_or(0),
                            pid.unwrap_or(0),
                            up.map_or(" — not registered after 10 s".into(), |s| format!(
                                ", up in {s:.1} s"
                            )),
                        );
                    }
                    Err(e) => r.errors.push(format!("restarting a worker: {e:#}")),
                }
            }
            Action::KillApi => {
                let mut procs = p.procs.lock().await;
                procs.kill(p.api_idx).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let restarted = procs.restart(p.api_idx);
                drop(procs);
                match restarted {
                    Ok(()) => {
                        r.api_kills += 1;
                        let t = Instant::now();
                        while !p.api.ready().await && t.elapsed() < Duration::from_secs(20) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        println!(
                            "[{:6.1}s] API SIGKILLed and started again (ready after {:.1} s)",
                            secs(),
                            t.elapsed().as_secs_f64()
                        );
                    }
                    Err(e) => r.errors.push(format!("restarting the API: {e:#}")),
                }
            }
            Action::RestartPostgres => {
                let at_s = secs();
                let before = next_xid(&p.pool).await;
                match p.pg.restart_immediate().await {
                    Ok(took) => {
                        let mut restart = reconnect_check(p).await;
                        restart.at_s = at_s;
                        restart.took_s = took.as_secs_f64();
                        restart.next_xid = (before, restart.next_xid.1);
                        let xids = |x: Option<u64>| x.map_or("?".into(), |x| x.to_string());
                        println!(
                            "[{:6.1}s] Postgres restarted -m immediate in {:.1} s (next xid {} before, {} after); {}",
                            at_s,
                            restart.took_s,
                            xids(before),
                            xids(restart.next_xid.1),
                            match restart.reconnected_s {
                                Some(s) => format!(
                                    "every process reconnected and re-LISTENed within {s:.1} s"
                                ),
                                None => format!("NOT reconnected: {}", restart.missing.join("; ")),
                            }
                        );
                        r.pg_restarts.push(restart);
                    }
                    Err(e) => r.errors.push(format!("restarting Postgres: {e:#}")),
                }
            }
            Action::FaultsOn(n) => match p.sim.set_faults(seed + n, &burst_rules()).await {
                Ok(()) => {
                    r.bursts += 1;
                    println!("[{:6.1}s] fault burst {} on", secs(), n + 1);
                }
                Err(e) => r.errors.push(format!("setting faults: {e:#}")),
            },
            Action::FaultsOff => match p.sim.set_faults(seed, &baseline_rules()).await {
                Ok(()) => println!("[{:6.1}s] faults off", secs()),
                Err(e) => r.errors.push(format!("clearing faults: {e:#}")),
            },
        }
    }
    r
}

/// Waits (up to 10 s) until the worker process `pid` has registered in `urumi.workers`;
/// returns how long that took.
async fn registered(p: &Platform, pid: u32) -> Option<f64> {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        let found: Option<i64> = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM urumi.workers WHERE pid = $1 AND stopped_at IS NULL"#,
            pid as i32,
        )
        .fetch_one(&p.pool)
        .await
        .ok();
        if found.is_some_and(|n| n > 0) {
            return Some(t.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// After a Postgres restart: waits (nothing is killed meanwhile) until each worker process
/// has heartbeated since the new postmaster started and holds a `LISTEN urumi_runs`
/// session, and the API answers `/readyz` and holds a `LISTEN urumi_events` session.
async fn reconnect_check(p: &Platform) -> PgRestart {
    let t = Instant::now();
    let mut after = None;
    while after.is_none() && t.elapsed() < RECONNECT_LIMIT {
        after = next_xid(&p.pool).await;
        if after.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (mut missing, mut postmaster_start) = (vec!["no answer from Postgres".to_owned()], 0.0);
    let mut survivors = Vec::new();
    while t.elapsed() < RECONNECT_LIMIT {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (workers, api_pid) = {
            let procs = p.procs.lock().await;
            let w: Vec<u32> = p
                .workers
                .iter()
                .filter_map(|i| procs.list[*i].pid)
                .collect();
            (w, procs.list[p.api_idx].pid)
        };
        let Ok(start) = sqlx::query_scalar!(
            r#"SELECT extract(epoch FROM pg_postmaster_start_time())::float8 AS "start!""#,
        )
        .fetch_one(&p.pool)
        .await
        else {
            continue;
        };
        postmaster_start = start;
        let mut all: Vec<u32> = workers.clone();
        all.extend(api_pid);
        let Ok(listening) = listeners::listening(&p.pool, &all).await else {
            continue;
        };
        let mut now_missing = Vec::new();
        survivors.clear();
        for &pid in &workers {
            let row: Option<(String, bool)> = sqlx::query!(
                r#"SELECT id, heartbeat_at > to_timestamp($2) AS "fresh!" FROM urumi.workers
                   WHERE pid = $1 ORDER BY started_at DESC LIMIT 1"#,
                pid as i32,
                start,
            )
            .fetch_optional(&p.pool)
            .await
            .ok()
            .flatten()
            .map(|r| (r.id, r.fresh));
            match row {
                Some((id, true)) => survivors.push((pid, id)),
                Some((id, false)) => {
                    now_missing.push(format!("worker {id} has not heartbeated since"))
                }
                None => now_missing.push(format!("worker pid {pid} has no worker row")),
            }
            if !has(&listening, pid, "urumi_runs") {
                now_missing.push(format!("worker pid {pid} holds no LISTEN urumi_runs"));
            }
        }
        match api_pid {
            Some(pid) if has(&listening, pid, "urumi_events") => {}
            _ => now_missing.push("the API holds no LISTEN urumi_events".into()),
        }
        if !p.api.ready().await {
            now_missing.push("the API's /readyz does not answer 200".into());
        }
        missing = now_missing;
        if missing.is_empty() {
            break;
        }
    }
    PgRestart {
        at_s: 0.0,
        took_s: 0.0,
        postmaster_start,
        reconnected_s: missing.is_empty().then(|| t.elapsed().as_secs_f64()),
        missing,
        survivors,
        next_xid: (None, after),
    }
}

fn has(listening: &BTreeMap<u32, Vec<String>>, pid: u32, channel: &str) -> bool {
    listening
        .get(&pid)
        .is_some_and(|c| c.iter().any(|c| c == channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_has_every_kind_of_action_in_time_order_within_the_window() {
        let chaos = Duration::from_secs(40);
        let s = schedule(chaos, Duration::from_secs(4));
        assert!(s.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(s.iter().all(|(t, _)| *t < chaos));
        let count = |a: Action| s.iter().filter(|(_, x)| *x == a).count();
        assert_eq!(count(Action::KillWorker), 9);
        assert_eq!(count(Action::KillApi), 3);
        assert_eq!(count(Action::RestartPostgres), 2);
        assert_eq!(count(Action::FaultsOff), 3);
        let short = schedule(Duration::from_secs(10), Duration::from_secs(4));
        assert_eq!(
            short
                .iter()
                .filter(|(_, x)| *x == Action::RestartPostgres)
                .count(),
            1
        );
    }
}
