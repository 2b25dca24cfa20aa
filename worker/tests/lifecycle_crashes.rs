//! Crash recovery of `store.suspend@1`, `store.resume@1`, `store.domains@1` and
//! `store.resize@1` with real `urumi-worker` processes against the Kubernetes API simulator:
//! killing the worker at every step boundary and mid-step still ends in the same cluster
//! state as an uncrashed suspend, resume, domain addition or plan change, and the
//! simulator's request log shows nothing done twice and no volume or Secret written (a
//! resize re-applies the volume claims, unchanged).
//!
//! All 32 cases run: each of the 4 suspend steps, the 6 resume steps, the 3 domains steps
//! (a custom domain `<slug>.example.com` added to a ready store) and the 3 resize steps (a
//! ready store moved to a plan with more pods and CPU; the workers read both plans from a
//! `urumi.toml`) with the worker
//! aborted (by `URUMI_FAILPOINT`) at `after_checkpoint_commit` — the boundary after the step
//! — and at `mid_step` — its side effects made, its result not yet checkpointed. One
//! simulator and one database serve every case, one store per case, in the phases of
//! `store_crashes.rs`:
//!
//! 0. Setup, with a clean worker: every store is provisioned, and the stores of the resume
//!    cases (and the resume reference) are suspended. The worker then stops, and the
//!    request log's last entry marks where the lifecycle runs under test begin.
//! 1. Crash phase, one case at a time: a worker process armed with `point:step` starts, the
//!    case's suspend or resume is requested, the process claims the run and aborts at the
//!    failure point. Failure points name a step only (`mariadb_ready`, `wordpress_ready`,
//!    `storefront` and `mark_ready` are provisioning steps too), so it matters that the
//!    armed process is the only live worker and the case's run the only one it can claim:
//!    every provisioning run has ended, and the earlier cases' runs stay leased by their
//!    dead processes (10 min leases; the sweeper sees no expired lease).
//! 2. Recovery phase: the dead processes' leases are aged to the past in SQL, a reference
//!    suspend and a reference resume are requested, and one clean worker takes every run
//!    over (`run.lease_expired`) and finishes it.
//!
//! Then, for every store: its run succeeded and the store is `suspended` (suspend cases) or
//! `ready` (resume cases); the steps checkpointed before the crash show one attempt; the run
//! was taken over once, from the dead process; its namespace holds exactly the reference's
//! objects (kind, name, labels, annotations, owners, generation and spec, abstracted as in
//! `store_crashes.rs`) — the workloads' replicas, the Ingress backend and the presence of the
//! `store-suspended` Service checked by name as well; and in the request log since setup,
//! the writes that changed an object in its namespace are exactly the reference's, each
//! once (`store-suspended` created once by a suspend, deleted once by a resume), and no
//! request wrote a PersistentVolumeClaim or a Secret at all. The `after_checkpoint_commit`
//! cases of the last steps die after their run succeeded: nothing to recover, checked all
//! the same.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::DynamicObject;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunStatus};
use urumi_sim::{SimHandle, Simulator};
use urumi_workflows::StoreDeps;
use urumi_workflows::store::service::{self, DomainChange, Lifecycle};
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

use common::cluster::{namespace_state, objects_by_namespace, store_worker_with};
use common::crash::{
    CLEAN_LEASE_MS, DOOMED_LEASE_MS, POINTS, all_runs_ended, assert_crashed_where_armed,
    assert_succeeded, expected_attempts,
};
use common::url_for;

/// The workflows under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Suspend,
    Resume,
    /// `store.domains`: a custom domain added to a ready store.
    Domains,
    /// `store.resize`: a ready store moved to plan [`BIGGER`].
    Resize,
}

/// The plan the resize cases move to: `starter` with more pods and CPU (its volumes the
/// same, so nothing is refused and no volume grows).
const BIGGER: &str = "bigger";

/// The workers' `urumi.toml`: the built-in `starter` plan and [`BIGGER`].
const PLANS: &str = r#"
[stores.plans.starter]
pods = "10"
requests_cpu = "1"
requests_memory = "1536Mi"
limits_cpu = "2"
limits_memory = "3Gi"
pvcs = "4"
requests_storage = "20Gi"
db_storage = "5Gi"
wp_storage = "5Gi"

[stores.plans.bigger]
pods = "20"
requests_cpu = "2"
requests_memory = "1536Mi"
limits_cpu = "4"
limits_memory = "3Gi"
pvcs = "4"
requests_storage = "20Gi"
db_storage = "5Gi"
wp_storage = "5Gi"
"#;

/// The request side's settings: [`PLANS`].
fn settings_with_plans() -> StoreSettings {
    let mut s = StoreSettings::default();
    let mut bigger = s.plans["starter"].clone();
    bigger.pods = "20".into();
    bigger.requests_cpu = "2".into();
    bigger.limits_cpu = "4".into();
    s.plans.insert(BIGGER.to_owned(), bigger);
    s
}

impl Flow {
    const ALL: [Flow; 4] = [Flow::Suspend, Flow::Resume, Flow::Domains, Flow::Resize];

    /// The workflow's steps, in order.
    fn steps(self) -> &'static [&'static str] {
        match self {
            Flow::Suspend => &["route_suspended", "scale_down", "stopped", "mark_suspended"],
            Flow::Resume => &[
                "scale_up",
                "mariadb_ready",
                "wordpress_ready",
                "route",
                "storefront",
                "mark_ready",
            ],
            Flow::Domains => &["route", "site_url", "storefront"],
            Flow::Resize => &["reapply", "mariadb_ready", "wordpress_ready"],
        }
    }

    /// The store name prefix.
    fn short(self) -> &'static str {
        match self {
            Flow::Suspend => "sus",
            Flow::Resume => "res",
            Flow::Domains => "dom",
            Flow::Resize => "rsz",
        }
    }

    /// The store's status after the run.
    fn status_after(self) -> &'static str {
        match self {
            Flow::Suspend => "suspended",
            Flow::Resume | Flow::Domains | Flow::Resize => "ready",
        }
    }

    /// The workloads' replicas after the run.
    fn replicas_after(self) -> i64 {
        match self {
            Flow::Suspend => 0,
            Flow::Resume | Flow::Domains | Flow::Resize => 1,
        }
    }

    /// The Ingress's backend Service after the run.
    fn backend_after(self) -> &'static str {
        match self {
            Flow::Suspend => "store-suspended",
            Flow::Resume | Flow::Domains | Flow::Resize => "wordpress",
        }
    }

    /// Requests the workflow's run on `store` (a domains run adds `<slug>.example.com`).
    async fn request(
        self,
        engine: &Engine,
        settings: &StoreSettings,
        store: Uuid,
        slug: &str,
    ) -> Uuid {
        let done = match self {
            Flow::Suspend => service::suspend(engine, store, "tester").await,
            Flow::Resume => service::resume(engine, store, "tester").await,
            Flow::Domains => {
                let domain = format!("{slug}.example.com");
                let add = DomainChange::Add(&domain);
                service::domains(engine, settings, store, add, "tester").await
            }
            Flow::Resize => {
                let mut tx = engine.pool().begin().await.unwrap();
                let who = urumi_engine::Who::interactive("tester");
                let done = service::resize_in(&mut tx, engine, settings, store, BIGGER, &who).await;
                tx.commit().await.unwrap();
                done
            }
        };
        match done.unwrap() {
            Lifecycle::Started(r) => r.run_id,
            Lifecycle::Unchanged(s) => panic!("{self:?}: nothing started for {}", s.slug),
        }
    }
}

/// One store, suspended or resumed through a crash (or not, for a reference).
struct Case {
    flow: Flow,
    /// `Some((point, step index))`; `None` for the flow's reference store.
    crash: Option<(&'static str, usize)>,
    store: Uuid,
    slug: String,
    /// The case's suspend or resume run, once requested.
    run: Option<Uuid>,
    /// The dead process's worker id, when it left the run leased.
    dead_owner: Option<String>,
}

impl Case {
    fn label(&self) -> String {
        match self.crash {
            Some((point, i)) => format!("{:?} {point}:{}", self.flow, self.flow.steps()[i]),
            None => format!("{:?} reference (no crash)", self.flow),
        }
    }

    fn namespace(&self) -> String {
        format!("store-{}", self.slug)
    }

    fn run(&self) -> Uuid {
        self.run.expect("the run was requested")
    }

    /// The attempts every step must show after recovery ([`expected_attempts`]).
    fn expected_attempts(&self) -> Vec<(String, i32)> {
        expected_attempts(self.flow.steps(), self.crash)
    }
}

/// The writes since request `after` that changed an object in each namespace, as
/// `"verb resource/name"` → how many times (`create` for a 201, also from a server-side
/// apply). Panics at any request after `after` that wrote a PersistentVolumeClaim or a
/// Secret (changed or not): suspending and resuming keep data — except in `reapplied`
/// namespaces (a resize re-applies the whole desired state, volume claims included), where
/// it panics only at one that changed one.
fn writes_by_namespace(
    sim: &SimHandle,
    after: u64,
    reapplied: &[String],
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let log = sim.request_log().entries();
    assert!(
        log.first().is_some_and(|r| r.seq <= after + 1),
        "the request log kept every request since setup"
    );
    let mut by_ns: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in log.into_iter().filter(|r| r.seq > after) {
        let write = matches!(
            r.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        );
        let resource = r.resource.split('/').next().unwrap_or_default();
        let lenient = r
            .namespace
            .as_ref()
            .is_some_and(|ns| reapplied.contains(ns));
        assert!(
            !(write
                && (r.changed || !lenient)
                && matches!(resource, "persistentvolumeclaims" | "secrets")),
            "a lifecycle run wrote a volume claim or Secret: {r:?}"
        );
        if !r.changed {
            continue;
        }
        let name = r.name.clone().or(r.created.clone()).unwrap_or_default();
        // A server-side apply that made its object is a creation too.
        let verb = if r.status == 201 { "create" } else { &r.verb };
        let ns = if r.resource == "namespaces" {
            Some(name.clone())
        } else {
            r.namespace.clone()
        };
        let ns = ns.unwrap_or_else(|| panic!("a change outside any namespace: {r:?}"));
        *by_ns
            .entry(ns)
            .or_default()
            .entry(format!("{verb} {}/{name}", r.resource))
            .or_insert(0) += 1;
    }
    by_ns
}

/// The backend Service of an Ingress's first path.
fn backend(ingress: &DynamicObject) -> Value {
    ingress.data["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"].clone()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn killing_the_worker_at_every_suspend_resume_domains_and_resize_step_boundary_and_mid_step_ends_in_the_reference_cluster_state_with_nothing_done_twice(
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
    let settings = settings_with_plans();
    let config = std::env::temp_dir().join(format!(
        "urumi-lifecycle-crashes-{}.toml",
        std::process::id()
    ));
    std::fs::write(&config, PLANS).unwrap();
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

    // 0. Setup: every store provisioned, the resume cases' stores suspended, cleanly.
    let mut cases = Vec::new();
    let mut provisions = Vec::new();
    for flow in Flow::ALL {
        let crashes = (0..flow.steps().len())
            .flat_map(|i| POINTS.iter().map(move |(point, short)| (i, *point, *short)));
        let named: Vec<(Option<(&'static str, usize)>, String)> = crashes
            .map(|(i, point, short)| {
                let step = flow.steps()[i].replace('_', "-");
                (Some((point, i)), format!("{}-{short}-{step}", flow.short()))
            })
            .chain([(None, format!("{}-none", flow.short()))])
            .collect();
        for (crash, name) in named {
            let r = service::create(&engine, &settings, &name, "woocommerce", None, "tester")
                .await
                .unwrap();
            provisions.push(r.run_id);
            cases.push(Case {
                flow,
                crash,
                store: r.store.id,
                slug: r.store.slug,
                run: None,
                dead_owner: None,
            });
        }
    }
    let crash_cases: usize = Flow::ALL.iter().map(|f| 2 * f.steps().len()).sum();
    assert_eq!(crash_cases, 2 * (4 + 6 + 3 + 3));
    assert_eq!(cases.len(), crash_cases + Flow::ALL.len());
    let clean = store_worker_with(&url, &kubeconfig, None, CLEAN_LEASE_MS, Some(&config));
    all_runs_ended(&pool, "every store provisioned", Duration::from_secs(120)).await;
    for (run, c) in provisions.iter().zip(&cases) {
        assert_succeeded(&engine, *run, &format!("{}: provisioning", c.label())).await;
    }
    let mut suspends = Vec::new();
    for c in cases.iter().filter(|c| c.flow == Flow::Resume) {
        let run = Flow::Suspend
            .request(&engine, &settings, c.store, &c.slug)
            .await;
        suspends.push((run, c.label()));
    }
    all_runs_ended(
        &pool,
        "the resume stores suspended",
        Duration::from_secs(60),
    )
    .await;
    for (run, label) in &suspends {
        assert_succeeded(&engine, *run, &format!("{label}: the suspend before")).await;
    }
    clean.terminate();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );
    let setup_done = sim.request_log().entries().last().map_or(0, |r| r.seq);
    let set_up = t0.elapsed();

    // 1. Crash phase: one armed worker process per case, one at a time, and no other worker.
    for c in cases.iter_mut().filter(|c| c.crash.is_some()) {
        let (point, i) = c.crash.unwrap();
        let failpoint = format!("{point}:{}", c.flow.steps()[i]);
        let mut doomed = store_worker_with(
            &url,
            &kubeconfig,
            Some(&failpoint),
            DOOMED_LEASE_MS,
            Some(&config),
        );
        c.run = Some(c.flow.request(&engine, &settings, c.store, &c.slug).await);
        let status = doomed.exit_status(Duration::from_secs(60)).await;
        assert!(
            !status.success(),
            "{}: the process aborted: {status}",
            c.label()
        );
        let d = engine.run(c.run()).await.unwrap();
        assert_crashed_where_armed(&c.label(), c.flow.steps(), c.crash.unwrap(), &d);
        c.dead_owner = d.run.lease_owner.clone();
    }
    let crashed = t0.elapsed();

    // 2. Recovery phase: the dead leases expire; one clean worker finishes every run, and
    //    the references' runs beside them.
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
        "every crash but the ones after the last checkpoint left its run leased"
    );
    assert_eq!(in_flight, crash_cases - Flow::ALL.len());
    for c in cases.iter_mut().filter(|c| c.crash.is_none()) {
        c.run = Some(c.flow.request(&engine, &settings, c.store, &c.slug).await);
    }
    let rescuer = store_worker_with(&url, &kubeconfig, None, CLEAN_LEASE_MS, Some(&config));
    all_runs_ended(&pool, "every run to end", Duration::from_secs(90)).await;
    let recovered = t0.elapsed();
    assert!(
        sim.wait_idle(Duration::from_secs(10)).await,
        "the controllers caught up"
    );

    // The runs: succeeded, checkpoints kept, taken over once from the dead process.
    for c in &cases {
        let d = engine.run(c.run()).await.unwrap();
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
            store.status.as_str(),
            c.flow.status_after(),
            "{}",
            c.label()
        );
        let plan = if c.flow == Flow::Resize {
            BIGGER
        } else {
            "starter"
        };
        assert_eq!(store.plan, plan, "{}", c.label());
        let events = engine.events_for_run(c.run()).await.unwrap();
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

    // The cluster: every store's namespace holds what its flow's reference's holds.
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let objects = objects_by_namespace(&client).await;
    let state = |c: &Case| namespace_state(&objects, &c.namespace(), c.store, &c.slug);
    let object = |c: &Case, kind: &str, name: &str| -> Option<DynamicObject> {
        objects
            .get(&c.namespace())?
            .iter()
            .find(|(k, o)| k == kind && o.metadata.name.as_deref() == Some(name))
            .map(|(_, o)| o.clone())
    };
    let resized: Vec<String> = cases
        .iter()
        .filter(|c| c.flow == Flow::Resize)
        .map(Case::namespace)
        .collect();
    let writes = writes_by_namespace(&sim, setup_done, &resized);
    for flow in Flow::ALL {
        let reference = cases
            .iter()
            .find(|c| c.flow == flow && c.crash.is_none())
            .unwrap();
        let want = state(reference);
        let no_writes = BTreeMap::new();
        let want_writes = writes.get(&reference.namespace()).unwrap_or(&no_writes);
        // What the reference itself did, so that agreeing with it means something.
        let once: Vec<String> = match flow {
            Flow::Suspend => vec!["create services/store-suspended".into()],
            Flow::Resume => vec!["delete services/store-suspended".into()],
            // The Ingress gained the domain; one site-URL Job set it.
            Flow::Domains => vec![
                "patch ingresses/wordpress".into(),
                "create jobs/store-siteurl-1".into(),
            ],
            // The quota and the LimitRange took the new plan's values, once.
            Flow::Resize => vec![
                "patch resourcequotas/store-quota".into(),
                "patch limitranges/store-limits".into(),
            ],
        };
        let scaled = ["statefulsets/mariadb", "deployments/wordpress"]
            .into_iter()
            .filter(|_| matches!(flow, Flow::Suspend | Flow::Resume))
            .map(|w| format!("patch {w}"));
        for write in once.into_iter().chain(scaled) {
            assert_eq!(
                want_writes.get(&write),
                Some(&1),
                "{}: {write} once; all writes: {want_writes:#?}",
                reference.label()
            );
        }
        if flow == Flow::Domains {
            let ingress = object(reference, "Ingress", "wordpress").expect("the Ingress");
            assert_eq!(
                ingress.data["spec"]["rules"][1]["host"],
                json!(format!("{}.example.com", reference.slug)),
                "the reference's Ingress answers its domain"
            );
        }
        for c in cases.iter().filter(|c| c.flow == flow) {
            for (kind, name) in [("Deployment", "wordpress"), ("StatefulSet", "mariadb")] {
                let o = object(c, kind, name).unwrap_or_else(|| panic!("{}: {kind}", c.label()));
                assert_eq!(
                    o.data["spec"]["replicas"],
                    json!(flow.replicas_after()),
                    "{}: {kind}/{name} replicas",
                    c.label()
                );
            }
            let ingress = object(c, "Ingress", "wordpress").expect("the Ingress");
            assert_eq!(
                backend(&ingress),
                json!(flow.backend_after()),
                "{}: the Ingress backend",
                c.label()
            );
            assert_eq!(
                object(c, "Service", "store-suspended").is_some(),
                flow == Flow::Suspend,
                "{}: the suspended page's Service",
                c.label()
            );
            let got = state(c);
            let missing: Vec<&String> = want.iter().filter(|o| !got.contains(o)).collect();
            let extra: Vec<&String> = got.iter().filter(|o| !want.contains(o)).collect();
            assert!(
                got == want,
                "{}: not the reference's cluster state;\nmissing: {missing:#?}\nextra: {extra:#?}",
                c.label()
            );
            // The request log: the same changes as the reference's, each made once.
            let got_writes = writes.get(&c.namespace()).unwrap_or(&no_writes);
            assert_eq!(
                got_writes,
                want_writes,
                "{}: the writes that changed an object, with how many times",
                c.label()
            );
        }
    }

    rescuer.terminate();
    sim.shutdown().await;
    eprintln!(
        "set up by {:.1}s, 26 crashes by {:.1}s, recovered by {:.1}s, checked by {:.1}s",
        set_up.as_secs_f64(),
        crashed.as_secs_f64(),
        recovered.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
