//! Crash recovery of store provisioning with real `urumi-worker` processes against the
//! Kubernetes API simulator: killing the worker at every step boundary and mid-step still
//! ends in the same cluster state, and the simulator's request log shows no object created
//! twice.
//!
//! All 22 cases run: each of the 11 `store.provision` steps with the worker aborted (by
//! `URUMI_FAILPOINT`) at `after_checkpoint_commit` — the boundary after the step — and at
//! `mid_step` — its side effects made in the cluster, its result not yet checkpointed. One
//! simulator and one database serve every case, one store per case:
//!
//! 1. Crash phase, one case at a time: a worker process armed with `point:step` starts, a
//!    store is created, the process claims the run and aborts at the failure point. It is
//!    the only live worker, so the run it crashes in is that case's run. Its lease is long
//!    (10 min), so the next case's worker cannot take the dead run over (its sweeper sees no
//!    expired lease) and fire its own failure point in it.
//! 2. Recovery phase: the dead processes' leases are aged to the past in SQL — what the
//!    clock would do after the lease, without the wait — and one clean worker (no failure
//!    point) takes every run over through its sweeper (`run.lease_expired`) and finishes
//!    it, along with a reference store that never saw a crash.
//!
//! Then, for every store: its run succeeded and the store is `ready`; the steps checkpointed
//! before the crash show one attempt (they never ran again); the run was taken over once,
//! from the dead process; its namespace holds exactly the reference's objects, of every kind
//! the simulator serves (kind, name, labels, annotations, owners, generation and spec, with
//! uids, the store's id and slug, generated pod names, Secret values, cluster IPs and volume
//! names abstracted); exactly one setup Job, `store-setup-1`, ran, with one pod; and in the
//! simulator's request log each object was created once (HTTP 201 from a create or a
//! server-side apply), the same objects as for the reference, and no other request changed
//! anything (re-applying after a crash was a no-op). `after_checkpoint_commit:mark_ready`
//! dies after the run succeeded: nothing to recover, checked all the same.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunDetail, RunStatus, StepStatus};
use urumi_sim::{SimHandle, Simulator};
use urumi_workflows::StoreDeps;
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

use common::cluster::{namespace_state, objects_by_namespace, store_worker};
use common::{url_for, wait_until};

/// The steps of `store.provision`, in order.
const STEPS: [&str; 11] = [
    "namespace",
    "quota",
    "network_policies",
    "credentials",
    "mariadb",
    "mariadb_ready",
    "wordpress",
    "wordpress_ready",
    "setup",
    "storefront",
    "mark_ready",
];

/// The failure points exercised, with the short form used in store names.
const POINTS: [(&str, &str); 2] = [("after_checkpoint_commit", "cp"), ("mid_step", "mid")];

/// A doomed worker's lease: longer than the whole crash phase.
const DOOMED_LEASE_MS: u64 = 600_000;

/// The rescuer's lease: production-like, so a heartbeat delayed by a loaded machine does not
/// hand its own live runs back to the queue (which would rerun a step and blur the counts).
const RESCUER_LEASE_MS: u64 = 15_000;

/// One store, provisioned through a crash (or not, for the reference).
struct Case {
    /// `Some((point, step index))`; `None` for the reference store.
    crash: Option<(&'static str, usize)>,
    store: Uuid,
    run: Uuid,
    slug: String,
    /// The dead process's worker id, when it left the run leased.
    dead_owner: Option<String>,
}

impl Case {
    fn label(&self) -> String {
        match self.crash {
            Some((point, i)) => format!("{point}:{}", STEPS[i]),
            None => "the reference (no crash)".into(),
        }
    }

    fn namespace(&self) -> String {
        format!("store-{}", self.slug)
    }

    /// The attempts every step must show after recovery: 1, except the step the crash
    /// interrupted (`mid_step`: it ran again) or the step the dead process had already
    /// marked started after its checkpoint (`after_checkpoint_commit`: started again).
    fn expected_attempts(&self) -> Vec<(String, i32)> {
        let again = match self.crash {
            Some(("mid_step", i)) => Some(i),
            Some((_, i)) if i + 1 < STEPS.len() => Some(i + 1),
            _ => None,
        };
        STEPS
            .iter()
            .enumerate()
            .map(|(j, s)| ((*s).to_owned(), if Some(j) == again { 2 } else { 1 }))
            .collect()
    }
}

async fn create_store(
    engine: &Engine,
    settings: &StoreSettings,
    name: &str,
) -> (Uuid, Uuid, String) {
    let r = service::create(engine, settings, name, "woocommerce", None, "tester")
        .await
        .unwrap();
    (r.store.id, r.run_id, r.store.slug)
}

fn statuses(d: &RunDetail) -> Vec<(String, StepStatus, i32)> {
    d.steps
        .iter()
        .map(|s| (s.name.clone(), s.status(), s.attempts))
        .collect()
}

/// Checks that the dead process left the run exactly at its failure point.
fn assert_crashed_where_armed(d: &RunDetail, point: &str, i: usize) {
    let got = statuses(d);
    let done = if point == "mid_step" { i } else { i + 1 };
    for (j, (name, status, attempts)) in got.iter().enumerate() {
        let want = if j < done {
            (StepStatus::Succeeded, 1)
        } else if j == done && done < STEPS.len() {
            (StepStatus::Running, 1)
        } else {
            (StepStatus::Pending, 0)
        };
        assert_eq!(
            (*status, *attempts),
            want,
            "{point}:{}: step {name} after the crash; all: {got:?}",
            STEPS[i]
        );
    }
    let run_status = if done == STEPS.len() {
        RunStatus::Succeeded
    } else {
        RunStatus::Running
    };
    assert_eq!(d.run.status(), run_status, "{point}:{}", STEPS[i]);
}

/// The objects created in each namespace according to the request log, as
/// `(resource, name)` → how many times: every 201 from a create (POST; the log has no name
/// for those) or a server-side apply that created the object. Panics if any other request
/// changed stored state.
fn creates_by_namespace(sim: &SimHandle) -> BTreeMap<String, BTreeMap<(String, String), usize>> {
    let log = sim.request_log().entries();
    assert_eq!(
        log.first().map(|r| r.seq),
        Some(1),
        "the request log kept every request"
    );
    let mut by_ns: BTreeMap<String, BTreeMap<(String, String), usize>> = BTreeMap::new();
    for r in log {
        // Re-applying a step's objects after a crash is a no-op: the only requests that
        // changed stored state are the creations.
        assert!(
            !r.changed || r.status == 201,
            "a write changed an existing object: {r:?}"
        );
        if r.status != 201 {
            continue;
        }
        assert!(
            matches!(r.verb.as_str(), "create" | "patch"),
            "a 201 from {r:?}"
        );
        let (ns, name) = if r.resource == "namespaces" {
            (r.name, Some("(the namespace)".to_owned()))
        } else {
            (r.namespace, r.name)
        };
        let name = name.unwrap_or_else(|| "(POST)".into());
        *by_ns
            .entry(ns.expect("a create in or of a namespace"))
            .or_default()
            .entry((r.resource, name))
            .or_insert(0) += 1;
    }
    by_ns
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn killing_the_worker_at_every_provision_step_boundary_and_mid_step_ends_in_the_reference_cluster_state_with_no_object_created_twice(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let t0 = Instant::now();
    let url = url_for(&connect);
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let settings = StoreSettings::default();
    // This process only starts runs: the store definitions without a cluster client.
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: None,
    });
    let engine = Engine::new(
        pool.clone(),
        urumi_workflows::registry(Some(&deps)).unwrap(),
    );
    let sim = Simulator::builder().start().await.unwrap();
    let kubeconfig = sim.kubeconfig_path().to_owned();

    // 1. Crash phase: one armed worker process per case, one at a time.
    let mut cases = Vec::new();
    for (i, step) in STEPS.iter().enumerate() {
        for (point, short) in POINTS {
            let failpoint = format!("{point}:{step}");
            let mut doomed = store_worker(&url, &kubeconfig, Some(&failpoint), DOOMED_LEASE_MS);
            let name = format!("crash-{short}-{}", step.replace('_', "-"));
            let (store, run, slug) = create_store(&engine, &settings, &name).await;
            let status = doomed.exit_status(Duration::from_secs(30)).await;
            assert!(
                !status.success(),
                "{failpoint}: the process aborted: {status}"
            );
            let d = engine.run(run).await.unwrap();
            assert_crashed_where_armed(&d, point, i);
            cases.push(Case {
                crash: Some((point, i)),
                store,
                run,
                slug,
                dead_owner: d.run.lease_owner.clone(),
            });
        }
    }
    let crashed = t0.elapsed();

    // 2. Recovery phase: the dead leases expire; one clean worker finishes every run.
    let aged = sqlx::query(
        "UPDATE urumi.runs SET lease_expires_at = now() - interval '1 millisecond'
         WHERE status = 'running'",
    )
    .execute(&pool)
    .await
    .unwrap()
    .rows_affected();
    let in_flight = cases.iter().filter(|c| c.dead_owner.is_some()).count();
    assert_eq!(
        aged as usize, in_flight,
        "every crash but the one after the last checkpoint left its run leased"
    );
    assert_eq!(in_flight, STEPS.len() * POINTS.len() - 1);
    let (store, run, slug) = create_store(&engine, &settings, "crash-none").await;
    cases.push(Case {
        crash: None,
        store,
        run,
        slug,
        dead_owner: None,
    });
    let rescuer = store_worker(&url, &kubeconfig, None, RESCUER_LEASE_MS);
    wait_until("every run to end", Duration::from_secs(60), async || {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM urumi.runs WHERE status IN ('queued', 'running', 'waiting')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        active == 0
    })
    .await;
    let recovered = t0.elapsed();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );

    // The runs: succeeded, checkpoints kept, taken over once from the dead process.
    for c in &cases {
        let d = engine.run(c.run).await.unwrap();
        assert_eq!(
            d.run.status(),
            RunStatus::Succeeded,
            "{}: {:?}",
            c.label(),
            d.run.error
        );
        let attempts: Vec<(String, i32)> = d
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.attempts))
            .collect();
        assert_eq!(
            attempts,
            c.expected_attempts(),
            "{}: the steps checkpointed before the crash ran once",
            c.label()
        );
        let store = urumi_workflows::store::db::get(&pool, c.store)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (store.status.as_str(), store.url),
            ("ready", Some(format!("http://{}.stores.localhost", c.slug))),
            "{}",
            c.label()
        );
        let output = |step: &str| {
            d.steps
                .iter()
                .find(|s| s.name == step)
                .and_then(|s| s.output.clone())
                .unwrap()
        };
        assert_eq!(
            output("setup"),
            json!({ "job": "store-setup-1" }),
            "{}",
            c.label()
        );
        // A rerun of `credentials` finds the Secret the dead process made and keeps it.
        let rerun_credentials = c.crash == Some(("mid_step", 3));
        assert_eq!(
            output("credentials")["created"],
            json!(!rerun_credentials),
            "{}",
            c.label()
        );
        let events = engine.events_for_run(c.run).await.unwrap();
        let expired: Vec<&Value> = events
            .iter()
            .filter(|e| e.kind == "run.lease_expired")
            .map(|e| &e.detail["previous_owner"])
            .collect();
        let want: Vec<Value> = c.dead_owner.iter().map(|o| json!(o)).collect();
        assert_eq!(
            expired,
            want.iter().collect::<Vec<_>>(),
            "{}: taken over once, from the dead process",
            c.label()
        );
    }

    // The cluster: every store's namespace holds what the reference's holds.
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let objects = objects_by_namespace(&client).await;
    let state =
        |c: &Case| -> Vec<String> { namespace_state(&objects, &c.namespace(), c.store, &c.slug) };
    let reference = cases.last().unwrap();
    let want = state(reference);
    let kinds: Vec<String> = objects[&reference.namespace()]
        .iter()
        .map(|(k, o)| format!("{k}/{}", o.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    for expected in [
        "Namespace/store-crash-none",
        "Secret/store-credentials",
        "StatefulSet/mariadb",
        "Deployment/wordpress",
        "Ingress/wordpress",
        "Job/store-setup-1",
        "NetworkPolicy/allow-dns",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "the reference has {expected}: {kinds:?}"
        );
    }
    for c in &cases {
        let got = state(c);
        let missing: Vec<&String> = want.iter().filter(|o| !got.contains(o)).collect();
        let extra: Vec<&String> = got.iter().filter(|o| !want.contains(o)).collect();
        assert!(
            got == want,
            "{}: not the reference's cluster state;\nmissing: {missing:#?}\nextra: {extra:#?}",
            c.label()
        );
        // Exactly one setup Job, and it (and its one pod) succeeded.
        let jobs: Vec<&DynamicObject> = objects[&c.namespace()]
            .iter()
            .filter(|(k, _)| k == "Job")
            .map(|(_, o)| o)
            .collect();
        assert_eq!(jobs.len(), 1, "{}: one setup Job", c.label());
        assert_eq!(
            jobs[0].data["status"]["succeeded"],
            json!(1),
            "{}",
            c.label()
        );
        let setup_pods: Vec<&Value> = objects[&c.namespace()]
            .iter()
            .filter(|(k, o)| {
                k == "Pod"
                    && o.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|r| r.kind == "Job")
            })
            .map(|(_, o)| &o.data["status"]["phase"])
            .collect();
        assert_eq!(
            setup_pods,
            [&json!("Succeeded")],
            "{}: one setup pod ran",
            c.label()
        );
    }

    // The request log: nothing created twice, and the same creations as the reference.
    let creates = creates_by_namespace(&sim);
    let reference_creates = &creates[&reference.namespace()];
    assert!(
        reference_creates.len() >= 15,
        "the reference's creations: {reference_creates:?}"
    );
    for c in &cases {
        let created = &creates[&c.namespace()];
        let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{}: created more than once: {twice:?}",
            c.label()
        );
        assert_eq!(
            created.keys().collect::<Vec<_>>(),
            reference_creates.keys().collect::<Vec<_>>(),
            "{}: the same objects were created as for the reference",
            c.label()
        );
    }

    rescuer.terminate();
    sim.shutdown().await;
    eprintln!(
        "22 crashes in {:.1}s, recovered by {:.1}s, checked by {:.1}s",
        crashed.as_secs_f64(),
        recovered.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
