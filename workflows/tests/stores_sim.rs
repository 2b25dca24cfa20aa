//! Store workflows end to end against the Kubernetes simulator: the engine's real `Worker`,
//! a real `kube::Client` over HTTP, a fresh Postgres database per test.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::DeleteParams;
use kube::{Api, Client};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, RunDetail, RunStatus, WorkerHandle};
use urumi_sim::{FaultConfig, FaultRule, JobScript, SimHandle, Simulator};
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

struct Rig {
    pool: PgPool,
    engine: Engine,
    sim: SimHandle,
    client: Client,
    settings: StoreSettings,
    worker: Option<WorkerHandle>,
}

async fn rig(connect: PgConnectOptions) -> Rig {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = Simulator::builder().start().await.unwrap();
    let mut config = kube::Config::new(sim.url().parse().unwrap());
    config.read_timeout = Some(Duration::from_secs(10));
    let client = Client::try_from(config).unwrap();
    let settings = StoreSettings::default();
    let (engine, worker) =
        common::store_worker(&pool, client.clone(), &settings, "stores-test").await;
    Rig {
        pool,
        engine,
        sim,
        client,
        settings,
        worker: Some(worker),
    }
}

impl Rig {
    async fn create(&self, name: &str) -> (Uuid, Uuid) {
        let r = service::create(
            &self.engine,
            &self.settings,
            name,
            "woocommerce",
            None,
            "tester",
        )
        .await
        .unwrap();
        (r.store.id, r.run_id)
    }

    async fn wait(&self, run: Uuid, status: RunStatus) -> RunDetail {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let d = self.engine.run(run).await.unwrap();
            if d.run.status() == status {
                return d;
            }
            if tokio::time::Instant::now() > deadline {
                let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::all(self.client.clone());
                let events: Api<k8s_openapi::api::core::v1::Event> = Api::all(self.client.clone());
                let jobs = jobs
                    .list(&Default::default())
                    .await
                    .map(|l| serde_json::to_string(&l.items).unwrap());
                let events = events.list(&Default::default()).await.map(|l| {
                    l.items
                        .iter()
                        .map(|e| format!("{:?}: {:?}", e.reason, e.message))
                        .collect::<Vec<_>>()
                });
                panic!("run never reached {status}: {d:#?}\njobs: {jobs:?}\nevents: {events:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn store_status(&self, id: Uuid) -> (String, Option<String>) {
        let s = urumi_workflows::store::db::get(&self.pool, id)
            .await
            .unwrap()
            .unwrap();
        (s.status.as_str().to_owned(), s.url)
    }

    async fn stop(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

fn step<'a>(d: &'a RunDetail, name: &str) -> &'a urumi_engine::StepRecord {
    d.steps.iter().find(|s| s.name == name).unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_is_provisioned_ready_labelled_created_once_repaired_and_deleted(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    let (store, run) = rig.create("Bob's Bikes").await;
    let d = rig.wait(run, RunStatus::Succeeded).await;
    assert_eq!(
        rig.store_status(store).await,
        (
            "ready".to_owned(),
            Some("http://bob-s-bikes.stores.localhost".to_owned())
        )
    );
    assert!(
        d.steps.iter().all(|s| s.finished_at.is_some()),
        "per-step timings are recorded"
    );

    // Every object is there and labelled.
    let ns = "store-bob-s-bikes";
    let namespace: Namespace = Api::all(rig.client.clone()).get(ns).await.unwrap();
    let labels = namespace.metadata.labels.unwrap();
    assert_eq!(labels["urumi.io/store-id"], store.to_string());
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    let policies: Api<NetworkPolicy> = Api::namespaced(rig.client.clone(), ns);
    assert_eq!(
        policies
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        5
    );

    // The request log shows no object created twice.
    let mut created = std::collections::HashMap::new();
    for r in rig.sim.request_log().entries() {
        if r.status == 201 {
            *created
                .entry((r.resource.clone(), r.namespace.clone(), r.name.clone()))
                .or_insert(0) += 1;
        }
    }
    assert!(created.len() >= 15, "objects created: {created:?}");
    assert!(
        created.values().all(|n| *n == 1),
        "an object was created twice: {created:?}"
    );

    // Repair restores a deleted NetworkPolicy and says so.
    policies
        .delete("allow-dns", &DeleteParams::default())
        .await
        .unwrap();
    let repair = service::repair(&rig.engine, store, "operator")
        .await
        .unwrap();
    let r = rig.wait(repair.run_id, RunStatus::Succeeded).await;
    let report = step(&r, "reapply").output.clone().unwrap();
    assert_eq!(
        report["missing"],
        json!(["NetworkPolicy/allow-dns"]),
        "{report}"
    );
    policies.get("allow-dns").await.unwrap();

    // Deletion removes the namespace and keeps the store row as deleted.
    let del = service::delete(&rig.engine, store, "admin").await.unwrap();
    assert_eq!(del.store.status.as_str(), "deleting");
    rig.wait(del.run_id, RunStatus::Succeeded).await;
    assert!(
        Api::<Namespace>::all(rig.client.clone())
            .get_opt(ns)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(rig.store_status(store).await.0, "deleted");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn deletion_refuses_a_namespace_urumi_does_not_own(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    let (store, run) = rig.create("Owned Shop").await;
    rig.wait(run, RunStatus::Succeeded).await;
    // Someone relabels the namespace: it no longer proves this store owns it.
    let namespaces: Api<Namespace> = Api::all(rig.client.clone());
    let patch = json!({ "metadata": { "labels": { "urumi.io/store-id": "someone-else" } } });
    namespaces
        .patch(
            "store-owned-shop",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let del = service::delete(&rig.engine, store, "admin").await.unwrap();
    let d = rig.wait(del.run_id, RunStatus::Failed).await;
    assert!(
        d.run
            .error
            .as_deref()
            .unwrap()
            .contains("refusing to delete namespace store-owned-shop"),
        "{:?}",
        d.run.error
    );
    assert!(
        namespaces
            .get_opt("store-owned-shop")
            .await
            .unwrap()
            .is_some(),
        "the namespace was kept"
    );
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn with_injected_500s_and_429s_every_store_still_becomes_ready_and_retries_show(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    rig.sim.faults().set(FaultConfig {
        seed: 7,
        rules: vec![
            FaultRule {
                verb: Some("patch".into()),
                error_rate: 0.10,
                status: 500,
                ..FaultRule::any()
            },
            FaultRule {
                verb: Some("get".into()),
                error_rate: 0.05,
                status: 429,
                retry_after_seconds: Some(1),
                ..FaultRule::any()
            },
        ],
    });
    let mut runs = Vec::new();
    for i in 0..5 {
        runs.push(rig.create(&format!("faulty shop {i}")).await);
    }
    let (mut transient, mut attempts_spent) = (0, 0);
    for (store, run) in runs {
        let d = rig.wait(run, RunStatus::Succeeded).await;
        assert_eq!(rig.store_status(store).await.0, "ready");
        attempts_spent += d.steps.iter().map(|s| s.attempts - 1).sum::<i32>();
        transient += rig
            .engine
            .events_for_run(run)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.kind == "step.retry_scheduled" && e.detail["class"] == "transient")
            .count();
    }
    let injected = rig
        .sim
        .request_log()
        .entries()
        .iter()
        .filter(|r| r.status == 500 || r.status == 429)
        .count();
    assert!(injected > 0, "the faults were injected");
    assert!(
        transient > 0,
        "transient retries are visible in the runs' events"
    );
    assert_eq!(attempts_spent, 0, "transient errors cost no attempt");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_setup_job_that_fails_twice_is_retried_until_it_succeeds(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    for n in [1, 2] {
        rig.sim.script_job(
            Some("store-flaky-setup"),
            &format!("store-setup-{n}"),
            JobScript {
                fail_times: u32::MAX,
                log: format!("wp: error {n}\n"),
            },
        );
    }
    let (store, run) = rig.create("Flaky Setup").await;
    let d = rig.wait(run, RunStatus::Succeeded).await;
    assert_eq!(step(&d, "setup").attempts, 3);
    assert_eq!(
        step(&d, "setup").output,
        Some(json!({ "job": "store-setup-3" }))
    );
    assert!(
        step(&d, "setup")
            .last_error
            .as_deref()
            .unwrap()
            .contains("wp: error 2")
    );
    assert_eq!(rig.store_status(store).await.0, "ready");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_setup_job_that_always_fails_fails_the_run_with_its_log_and_an_operator_retry_finishes_it(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    for n in 1..=4 {
        rig.sim.script_job(
            Some("store-broken-setup"),
            &format!("store-setup-{n}"),
            JobScript {
                fail_times: u32::MAX,
                log: "Error: database connection refused\n".into(),
            },
        );
    }
    let (store, run) = rig.create("Broken Setup").await;
    let d = rig.wait(run, RunStatus::Failed).await;
    let err = d.run.error.clone().unwrap();
    assert!(
        err.contains("setup Job store-setup-4 failed")
            && err.contains("database connection refused"),
        "{err}"
    );
    assert_eq!(step(&d, "setup").attempts, 4);
    // The store follows its failed provisioning run (a trigger of the API migration).
    assert_eq!(rig.store_status(store).await.0, "failed");

    // The fault is gone for new Jobs (only -1..-4 were scripted to fail): retry resumes at setup.
    assert_eq!(
        rig.engine.retry_run(run, "operator").await.unwrap(),
        "setup"
    );
    assert_eq!(rig.store_status(store).await.0, "provisioning");
    let d = rig.wait(run, RunStatus::Succeeded).await;
    assert_eq!(
        step(&d, "namespace").attempts,
        1,
        "completed steps were not rerun"
    );
    assert_eq!(
        step(&d, "setup").output,
        Some(json!({ "job": "store-setup-5" }))
    );
    assert_eq!(rig.store_status(store).await.0, "ready");
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_store_requests_are_refused_before_anything_is_created(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    let s = &rig.settings;
    let err = |r: Result<service::Requested, service::Error>| r.unwrap_err().to_string();
    assert!(
        err(service::create(&rig.engine, s, "!!", "woocommerce", None, "t").await)
            .contains("shorter than 3")
    );
    assert!(
        err(service::create(&rig.engine, s, "Admin", "woocommerce", None, "t").await)
            .contains("reserved")
    );
    assert!(
        err(service::create(&rig.engine, s, "Good Name", "magento", None, "t").await)
            .contains("unknown engine")
    );
    assert!(
        err(service::create(
            &rig.engine,
            s,
            "Good Name",
            "woocommerce",
            Some("gold"),
            "t"
        )
        .await)
        .contains("unknown plan")
    );
    let stores: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.stores")
        .fetch_one(&rig.pool)
        .await
        .unwrap();
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.runs")
        .fetch_one(&rig.pool)
        .await
        .unwrap();
    assert_eq!((stores, runs), (0, 0));
    assert!(
        rig.sim
            .request_log()
            .entries()
            .iter()
            .all(|r| r.verb != "create" && r.verb != "patch")
    );
    // A taken address is refused too.
    rig.create("Taken Name").await;
    assert!(
        err(service::create(&rig.engine, s, "taken name", "woocommerce", None, "t").await)
            .contains("is taken")
    );
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_storefront_step_waits_while_the_store_answers_503_and_finishes_once_it_answers(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    // The store's Service proxy answers 503 (as with no ready endpoints) until the rule goes.
    rig.sim.faults().add(
        FaultRule::any()
            .verb("get")
            .resource("services/proxy")
            .namespace("store-slow-shop")
            .error(1.0, 503),
    );
    let (store, run) = rig.create("Slow Shop").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let waited = loop {
        let events = rig.engine.events_for_run(run).await.unwrap();
        if let Some(e) = events
            .iter()
            .find(|e| e.kind == "step.waiting" && e.step.as_deref() == Some("storefront"))
        {
            break e.detail["reason"].as_str().unwrap().to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the storefront step never waited: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        waited.starts_with("the storefront does not answer yet (GET wordpress:80/?rest_route="),
        "{waited}"
    );
    let d = rig.engine.run(run).await.unwrap();
    assert_ne!(d.run.status(), RunStatus::Succeeded);
    assert_eq!(step(&d, "storefront").attempts, 1, "waiting is not failing");
    assert_eq!(rig.store_status(store).await.0, "provisioning");

    rig.sim.faults().clear();
    let d = rig.wait(run, RunStatus::Succeeded).await;
    let out = step(&d, "storefront").output.clone().unwrap();
    assert_eq!(out["ingress_address"], "127.0.0.1", "{out}");
    assert_eq!(out["storefront"]["status"], 200, "{out}");
    assert_eq!(
        out["storefront"]["judged"]["first_product"],
        "Premium Cotton T-Shirt"
    );
    assert_eq!(rig.store_status(store).await.0, "ready");
    let proxied: Vec<_> = rig
        .sim
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| r.resource == "services/proxy")
        .collect();
    assert!(
        proxied.iter().any(|r| r.injected && r.status == 503),
        "the 503s were served"
    );
    assert_eq!(
        proxied.last().map(|r| (r.status, r.injected)),
        Some((200, false))
    );
    rig.stop().await;
}

/// Deletes `name` and waits until the simulator has removed it.
async fn delete_namespace_now(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.delete(name, &Default::default()).await.unwrap();
    for _ in 0..200 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("namespace {name} was never removed");
}

/// Makes namespace `name` labelled as store `owner`'s, as Urumi labels its own.
async fn make_namespace(client: &Client, name: &str, owner: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns: k8s_openapi::api::core::v1::Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": {
            "app.kubernetes.io/managed-by": "urumi", "urumi.io/store-id": owner } }
    }))
    .unwrap();
    api.create(&Default::default(), &ns).await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_namespace_of_the_same_name_made_since_is_never_written_into(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = rig(connect).await;
    let (store, run) = rig.create("Uid Shop").await;
    let d = rig.wait(run, RunStatus::Succeeded).await;
    let ns = step(&d, "namespace").output.as_ref().unwrap()["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    let row = urumi_workflows::store::db::get(&rig.pool, store)
        .await
        .unwrap()
        .unwrap();
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(rig.client.clone());
    let live_uid = api.get(&ns).await.unwrap().metadata.uid;
    assert_eq!(
        row.namespace_uid, live_uid,
        "the namespace step recorded its UID"
    );

    // Someone else's store now has a namespace of that name (as after a reused slug).
    delete_namespace_now(&rig.client, &ns).await;
    make_namespace(&rig.client, &ns, &Uuid::new_v4().to_string()).await;
    let repair = service::repair(&rig.engine, store, "tester").await.unwrap();
    let d = rig.wait(repair.run_id, RunStatus::Failed).await;
    let error = d.run.error.clone().unwrap_or_default();
    assert!(error.contains("is not this store's"), "{error}");

    // The same name with this store's labels, but not the namespace this store made.
    delete_namespace_now(&rig.client, &ns).await;
    make_namespace(&rig.client, &ns, &store.to_string()).await;
    let repair = service::repair(&rig.engine, store, "tester").await.unwrap();
    let d = rig.wait(repair.run_id, RunStatus::Failed).await;
    let error = d.run.error.clone().unwrap_or_default();
    assert!(
        error.contains("was re-created since this store made it"),
        "{error}"
    );
    // Nothing was written into it: no quota, no workloads.
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(rig.client.clone(), &ns);
    assert!(
        quotas
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    rig.stop().await;
}
