//! The soak's verdict, computed from what really happened — the database (`urumi.stores`,
//! `urumi.runs`, `urumi.events`), the simulator's request log, what the event-stream
//! follower received and how the processes ended — never from what the soak expects to
//! have happened. Each invariant prints one line; the figures go into `RESULT`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::chaos;
use crate::driver::Ledger;
use crate::follower::parse_cursor;
use crate::platform::ACTOR;
use crate::simulator::{LogSummary, Sim};
use crate::stream;

/// One invariant's outcome.
#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// Evidence, one line each (printed under a failed check, at most 10).
    pub evidence: Vec<String>,
}

/// Everything the verdict reads besides the database.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub names: &'a [String],
    pub to_delete: &'a BTreeSet<String>,
    pub ledger: &'a Ledger,
    /// What the follower that ran through the chaos received.
    pub live: stream::Stream<'a>,
    /// What a reader resuming from `0-0` after the chaos received.
    pub replay: stream::Stream<'a>,
    pub log: &'a LogSummary,
    pub chaos: &'a chaos::Report,
    pub faults_injected: u64,
    pub seconds_to_all_terminal: Option<f64>,
}

impl Check {
    pub fn new(name: &'static str, ok: bool, detail: String, evidence: Vec<String>) -> Self {
        Self {
            name,
            ok,
            detail,
            evidence,
        }
    }
}

/// One row of `urumi.events`, as the verdict reads it.
#[derive(Debug)]
pub struct EventRow {
    pub id: i64,
    /// `<txid>-<id>`, as the stream sends it.
    pub cursor: String,
    pub run_id: Option<Uuid>,
    pub subject: Option<String>,
    pub kind: String,
    pub step: Option<String>,
    /// The step a `step.succeeded` started in its commit (`detail.next`).
    pub next: Option<String>,
    pub actor: String,
    /// `created_at` (its transaction's start), epoch seconds.
    pub at: f64,
}

/// Computes every invariant; returns the checks and the `RESULT` figures.
///
/// # Errors
/// When the database or the simulator does not answer.
pub async fn verdict(
    pool: &PgPool,
    sim: &Sim,
    i: &Inputs<'_>,
) -> anyhow::Result<(Vec<Check>, Map<String, Value>)> {
    let mut checks = Vec::new();
    let mut fig = Map::new();

    // Stores: every one terminal as expected, its namespace present or gone accordingly.
    let rows: Vec<(Uuid, String, String, String)> = sqlx::query!(
        "SELECT id, name, slug, status FROM urumi.stores WHERE name LIKE 'soak store %'"
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.name, r.slug, r.status))
    .collect();
    let mut by_name: HashMap<&str, Vec<&(Uuid, String, String, String)>> = HashMap::new();
    for r in &rows {
        by_name.entry(r.1.as_str()).or_default().push(r);
    }
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut bad = Vec::new();
    for name in i.names {
        let want = if i.to_delete.contains(name) {
            "deleted"
        } else {
            "ready"
        };
        let found = by_name
            .get(name.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [(id, _, slug, status)] = found else {
            bad.push(format!("{name}: {} store rows", found.len()));
            continue;
        };
        *statuses.entry(status.clone()).or_default() += 1;
        let ns = format!("store-{slug}");
        let ns_status = sim.namespace_status(&ns).await?;
        let want_ns = if want == "ready" { 200 } else { 404 };
        if status != want || ns_status != want_ns {
            bad.push(format!(
                "{name} ({id}): {status}, namespace {ns} answers {ns_status}; expected {want} and {want_ns}"
            ));
        }
    }
    bad.extend(
        i.ledger
            .refused
            .iter()
            .map(|r| format!("request not accepted: {r}")),
    );
    let deleted_mid: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM urumi.events e JOIN urumi.stores s ON e.subject = 'store:' || s.id
         WHERE e.kind = 'store.deleting' AND e.detail->>'from' = 'provisioning'
           AND s.name LIKE 'soak store %'"#,
    )
    .fetch_one(pool)
    .await?;
    checks.push(Check::new(
        "stores_terminal_as_expected",
        bad.is_empty(),
        format!(
            "{} stores: {} (expected {} ready, {} deleted; {deleted_mid} deleted mid-provisioning)",
            i.names.len(),
            statuses
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", "),
            i.names.len() - i.to_delete.len(),
            i.to_delete.len()
        ),
        bad,
    ));

    // Runs: none left active, none failed.
    let stuck: Vec<(Uuid, String, String)> = sqlx::query!(
        "SELECT id, definition, status FROM urumi.runs WHERE status IN ('queued', 'running', 'waiting')",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.definition, r.status))
    .collect();
    checks.push(Check::new(
        "no_stuck_runs",
        stuck.is_empty(),
        format!("{} runs not terminal at the end", stuck.len()),
        stuck
            .iter()
            .map(|(id, d, s)| format!("{d} run {id} is {s}"))
            .collect(),
    ));
    let failed: Vec<(Uuid, String, Option<String>)> = sqlx::query!(
        "SELECT id, definition, left(error, 400) AS error FROM urumi.runs WHERE status = 'failed' ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.definition, r.error))
    .collect();
    checks.push(Check::new(
        "no_failed_runs",
        failed.is_empty(),
        format!("{} runs failed", failed.len()),
        failed
            .iter()
            .map(|(id, d, e)| {
                format!(
                    "{d} run {id}: {}",
                    e.as_deref().unwrap_or("?").replace('\n', " | ")
                )
            })
            .collect(),
    ));

    let events: Vec<EventRow> = sqlx::query_as!(
        EventRow,
        r#"SELECT id, txid::text || '-' || id AS "cursor!", run_id, subject, kind, step,
                detail->>'next' AS next, actor, extract(epoch FROM created_at)::float8 AS "at!"
         FROM urumi.events ORDER BY id"#,
    )
    .fetch_all(pool)
    .await?;

    // Steps: a step whose checkpoint said succeeded never started again; no second setup Job.
    let mut done: HashMap<(Uuid, &str), (i64, u32)> = HashMap::new();
    for e in &events {
        // A run's last step succeeds in the commit that ends the run: `run.succeeded` names it.
        if let (Some(run), Some(step), "step.succeeded" | "run.succeeded") =
            (e.run_id, &e.step, e.kind.as_str())
        {
            done.entry((run, step.as_str())).or_insert((e.id, 0)).1 += 1;
        }
    }
    let mut reexec = Vec::new();
    for ((run, step), (_, n)) in &done {
        if *n > 1 {
            reexec.push(format!("run {run} step {step} succeeded {n} times"));
        }
    }
    for e in &events {
        // A step starts with `step.started`, or named by `run.claimed` (a fresh run's first
        // step) or by the previous step's `step.succeeded` (`next`).
        let started = match (e.kind.as_str(), &e.step) {
            ("step.started" | "run.claimed", Some(step)) => Some(step.as_str()),
            ("step.succeeded", _) => e.next.as_deref(),
            _ => None,
        };
        if let (Some(run), Some(step)) = (e.run_id, started)
            && let Some((first_done, _)) = done.get(&(run, step))
            && e.id > *first_done
        {
            reexec.push(format!(
                "run {run} step {step} started again (event {}, {}) after it succeeded",
                e.id, e.actor
            ));
        }
    }
    let setup_dups: Vec<String> = i
        .log
        .setup_jobs()
        .into_iter()
        .filter(|(_, jobs)| jobs.len() > 1)
        .map(|(ns, jobs)| {
            format!(
                "{ns}: {} setup Jobs created ({})",
                jobs.len(),
                jobs.iter().copied().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    let extra_jobs: usize = i
        .log
        .setup_jobs()
        .values()
        .map(|j| j.len().saturating_sub(1))
        .sum();
    let dup_steps = reexec.len() + extra_jobs;
    checks.push(Check::new(
        "no_duplicate_step_executions",
        dup_steps == 0,
        format!(
            "{} succeeded steps executed again, {extra_jobs} setup Jobs beyond the first in a store",
            reexec.len()
        ),
        reexec.into_iter().chain(setup_dups).collect(),
    ));

    // Objects: none created twice (the simulator's log; after-apply creations included).
    let dups = i.log.duplicates();
    let dup_objects: u32 = dups.iter().map(|(_, n)| n - 1).sum();
    checks.push(Check::new(
        "no_duplicate_objects",
        dup_objects == 0 && i.log.gaps == 0,
        format!(
            "{} objects created, {dup_objects} created again; {} requests read, {} missed (log wrapped)",
            i.log.creations.len(),
            i.log.requests,
            i.log.gaps
        ),
        dups.iter()
            .map(|((res, ns, name), n)| format!("{res} {ns}/{name} created {n} times"))
            .collect(),
    ));

    // The event stream: every event once, in cursor order — for the follower that lived
    // through the chaos, and for a reader replaying the whole log from the start at the end.
    let (live, lost) = stream::check(
        &i.chaos.pg_restarts,
        "event_stream_exactly_once_in_order",
        "across the chaos",
        &i.live,
        &events,
    );
    let (replay, replay_lost) = stream::check(
        &i.chaos.pg_restarts,
        "event_stream_replay_exactly_once_in_order",
        "replayed from 0-0 at the end",
        &i.replay,
        &events,
    );
    checks.push(live);
    checks.push(replay);

    // Audit: each accepted create and delete has exactly one entry by the soak's token.
    let mut audit: HashMap<(&str, &str), u32> = HashMap::new();
    for e in &events {
        if e.actor == ACTOR
            && let Some(s) = &e.subject
        {
            *audit.entry((s.as_str(), e.kind.as_str())).or_default() += 1;
        }
    }
    let mut unaudited = Vec::new();
    let subjects: Vec<(String, &str, String)> = i
        .ledger
        .created
        .iter()
        .map(|(name, id)| (format!("store:{id}"), "store.created", name.clone()))
        .chain(i.ledger.deleted.iter().map(|(id, name)| {
            (
                format!("store:{id}"),
                "store.delete_requested",
                name.clone(),
            )
        }))
        .collect();
    for (subject, kind, name) in &subjects {
        let n = audit.get(&(subject.as_str(), *kind)).copied().unwrap_or(0);
        if n != 1 {
            unaudited.push(format!("{name}: {n} {kind} entries by {ACTOR}"));
        }
    }
    checks.push(Check::new(
        "every_mutation_audited",
        unaudited.is_empty(),
        format!(
            "{} creates and {} deletes accepted, {} without exactly one audit entry",
            i.ledger.created.len(),
            i.ledger.deleted.len(),
            unaudited.len()
        ),
        unaudited.clone(),
    ));

    // Reconnection: after each Postgres restart, every process back without a restart, and
    // the workers that lived through it went on executing steps.
    let mut recon = Vec::new();
    for (n, r) in i.chaos.pg_restarts.iter().enumerate() {
        if r.reconnected_s.is_none() {
            recon.push(format!(
                "restart {} at {:.1} s: {}",
                n + 1,
                r.at_s,
                r.missing.join("; ")
            ));
        }
        let ids: Vec<String> = r.survivors.iter().map(|s| s.1.clone()).collect();
        let counts = sqlx::query!(
            r#"SELECT count(*) FILTER (WHERE actor = ANY($1)) AS "by_survivors!",
                      count(*) AS "by_anyone!"
               FROM urumi.events
               WHERE (kind LIKE 'step.%' OR kind = 'run.claimed') AND created_at > to_timestamp($2)"#,
            &ids as _,
            r.postmaster_start,
        )
        .fetch_one(pool)
        .await?;
        let (by_survivors, by_anyone) = (counts.by_survivors, counts.by_anyone);
        if by_anyone > 0 && by_survivors == 0 {
            recon.push(format!(
                "restart {}: {by_anyone} step events after it, none by the {} workers that lived through it",
                n + 1,
                ids.len()
            ));
        }
    }
    checks.push(Check::new(
        "reconnected_after_postgres_restarts",
        recon.is_empty() && !i.chaos.pg_restarts.is_empty(),
        format!(
            "{} restarts; reconnected and re-LISTENed within {} s",
            i.chaos.pg_restarts.len(),
            i.chaos
                .pg_restarts
                .iter()
                .map(|r| r
                    .reconnected_s
                    .map_or("never".into(), |s| format!("{s:.1}")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        recon,
    ));

    // The chaos itself happened as scheduled (a soak that injected nothing proves nothing).
    let took_place = i.chaos.errors.is_empty()
        && i.chaos.worker_kills > 0
        && i.chaos.api_kills > 0
        && i.faults_injected > 0;
    checks.push(Check::new(
        "chaos_happened",
        took_place,
        format!(
            "{} worker kills, {} API kills, {} Postgres restarts, {} fault bursts, {} faults injected ({} writes applied and then answered 5xx or dropped)",
            i.chaos.worker_kills,
            i.chaos.api_kills,
            i.chaos.pg_restarts.len(),
            i.chaos.bursts,
            i.faults_injected,
            i.log.hidden_writes
        ),
        i.chaos.errors.clone(),
    ));

    let takeovers = events
        .iter()
        .filter(|e| e.kind == "run.lease_expired")
        .count();
    let txids: Vec<u64> = events
        .iter()
        .filter_map(|e| parse_cursor(&e.cursor).map(|c| c.0))
        .collect();
    fig.insert(
        "txid_range".into(),
        json!([txids.iter().min(), txids.iter().max()]),
    );
    for (k, v) in [
        ("stores", json!(i.names.len())),
        ("stores_deleted", json!(i.to_delete.len())),
        ("deleted_mid_provisioning", json!(deleted_mid)),
        ("faults_injected", json!(i.faults_injected)),
        ("writes_applied_then_failed", json!(i.log.hidden_writes)),
        ("takeovers", json!(takeovers)),
        ("worker_kills", json!(i.chaos.worker_kills)),
        ("api_kills", json!(i.chaos.api_kills)),
        ("postgres_restarts", json!(i.chaos.pg_restarts.len())),
        ("duplicate_step_executions", json!(dup_steps)),
        ("stuck_runs", json!(stuck.len())),
        ("failed_runs", json!(failed.len())),
        ("lost_events", json!(lost)),
        ("replay_lost_events", json!(replay_lost)),
        ("events", json!(events.len())),
        ("sse_reconnects", json!(i.live.reconnects)),
        ("duplicate_objects", json!(dup_objects)),
        ("unaudited_mutations", json!(unaudited.len())),
        ("api_retries", json!(i.ledger.retries)),
        (
            "seconds_to_all_terminal",
            json!(i.seconds_to_all_terminal.map(|s| (s * 10.0).round() / 10.0)),
        ),
    ] {
        fig.insert(k.into(), v);
    }
    Ok((checks, fig))
}

/// No process died by itself during the soak (`unexpected`), and every one stopped cleanly
/// on SIGTERM at the end (`bad_stops` lists those that did not); adds `unexpected_exits`.
pub fn processes(
    unexpected: &[String],
    bad_stops: &[String],
    fig: &mut Map<String, Value>,
) -> Check {
    fig.insert(
        "unexpected_exits".into(),
        json!(unexpected.len() + bad_stops.len()),
    );
    Check::new(
        "no_process_died_by_itself",
        unexpected.is_empty() && bad_stops.is_empty(),
        format!(
            "{} exits nobody asked for, {} processes that did not stop cleanly on SIGTERM",
            unexpected.len(),
            bad_stops.len()
        ),
        unexpected.iter().chain(bad_stops).cloned().collect(),
    )
}
