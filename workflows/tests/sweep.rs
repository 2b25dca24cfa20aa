//! `store.sweep@1` against the simulator: of two ready stores (a third, still provisioning,
//! is not swept), the sweep lists exactly the
//! drifted one with exactly its drifted objects and writes nothing (the drift is still
//! there, no repair started); told to repair, it starts one bulk-lane `store.repair` run for
//! that store only, which removes the drift; the next sweep finds nothing. A drifted store
//! whose repair is already active (as after a crashed sweep attempt) is listed with that
//! repair, and no second one is started.

mod common;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{
    Engine, Lane, NewRun, Registry, RunFilter, Worker, WorkerHandle, WorkerOptions,
};
use urumi_sim::JobScript;
use urumi_store::definitions::REPAIR;
use urumi_store::sweep::{SWEEP, SWEEP_ACTOR, SWEEP_SUBJECT, SweepInput, SweepOutput};
use urumi_workflows::StoreDeps;
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;

async fn sweep(engine: &Engine, repair: bool) -> SweepOutput {
    let run = engine
        .start_run(NewRun::new(
            SWEEP,
            SWEEP_SUBJECT,
            json!(SweepInput { repair }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(engine, run.run_id).await;
    serde_json::from_value(d.run.output.unwrap()).unwrap()
}

async fn repair_runs(engine: &Engine) -> Vec<urumi_engine::Run> {
    let filter = RunFilter {
        definition: Some(REPAIR.to_owned()),
        ..RunFilter::default()
    };
    engine.list_runs(&filter, 100).await.unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_sweep_lists_only_the_drifted_store_and_repairs_it_only_when_told(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = common::sim_rig(connect, "sweep-test").await;
    let (engine, client, settings, sim) = (&rig.engine, &rig.client, &rig.settings, &rig.sim);
    let mut stores = Vec::new();
    for name in ["Sweep One", "Sweep Two"] {
        let c = service::create(engine, settings, name, "woocommerce", None, "t")
            .await
            .unwrap();
        common::succeeded(engine, c.run_id).await;
        stores.push(c.store.id);
    }
    let ns = "store-sweep-one";
    // A third store never gets ready: its setup Job fails on every attempt (each attempt is
    // a Job of its own, store-setup-1, -2, …: the prefix covers them all). Not swept.
    sim.script_job(
        Some("store-sweep-stuck"),
        "store-setup-",
        JobScript {
            fail_times: u32::MAX,
            log: "setup refused\n".into(),
        },
    );
    let stuck = service::create(engine, settings, "Sweep Stuck", "woocommerce", None, "t")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !engine
        .run(stuck.run_id)
        .await
        .unwrap()
        .steps
        .iter()
        .any(|s| s.name == "setup" && s.last_error.is_some())
    {
        assert!(tokio::time::Instant::now() < deadline, "setup never failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Before any drift: nothing to list (and only the two ready stores are checked).
    let clean = sweep(engine, false).await;
    assert_eq!(
        (clean.checked, clean.drifted.len(), clean.failed.len()),
        (2, 0, 0),
        "{clean:#?}"
    );

    // Drift in store one: an object deleted, a field changed by someone else.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), ns);
    policies
        .delete("allow-dns", &DeleteParams::default())
        .await
        .unwrap();
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
    quotas
        .patch(
            "store-quota",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "hard": { "pods": "99" } } })),
        )
        .await
        .unwrap();

    // Dry: listed, nothing written.
    let since = sim.request_log().entries().last().map_or(0, |r| r.seq);
    let dry = sweep(engine, false).await;
    assert_eq!(
        (dry.repair, dry.checked, dry.failed.len()),
        (false, 2, 0),
        "{dry:#?}"
    );
    assert_eq!(dry.drifted.len(), 1, "{dry:#?}");
    let d = &dry.drifted[0];
    assert_eq!((d.store_id, d.slug.as_str()), (stores[0], "sweep-one"));
    let mut objects = d.objects.clone();
    objects.sort();
    assert_eq!(
        objects,
        ["NetworkPolicy/allow-dns", "ResourceQuota/store-quota"]
    );
    assert_eq!((d.repair_run_id, d.note.as_deref()), (None, None));
    let writes: Vec<_> = sim
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| {
            // The stuck store's provisioning keeps retrying its setup meanwhile: its own
            // writes are not the sweep's.
            r.seq > since
                && r.namespace.as_deref() != Some("store-sweep-stuck")
                && matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete")
        })
        .collect();
    assert!(
        writes.len() >= 20,
        "both stores were previewed: {writes:#?}"
    );
    assert!(
        writes.iter().all(|r| r.query.contains("dryRun=All")),
        "a dry sweep's write without dryRun=All: {writes:#?}"
    );
    assert!(policies.get_opt("allow-dns").await.unwrap().is_none());
    let pods = |q: ResourceQuota| q.spec.unwrap().hard.unwrap()["pods"].0.clone();
    assert_eq!(pods(quotas.get("store-quota").await.unwrap()), "99");
    assert!(repair_runs(engine).await.is_empty(), "no repair started");

    // Told to repair: one bulk-lane repair of the drifted store, which removes the drift.
    let wet = sweep(engine, true).await;
    assert_eq!((wet.repair, wet.drifted.len()), (true, 1), "{wet:#?}");
    assert_eq!(wet.drifted[0].store_id, stores[0]);
    let run_id = wet.drifted[0].repair_run_id.expect("a repair was started");
    let started = repair_runs(engine).await;
    assert_eq!(
        started.iter().map(|r| r.id).collect::<Vec<_>>(),
        [run_id],
        "one repair, of the drifted store only"
    );
    let repair = common::succeeded(engine, run_id).await;
    assert_eq!(repair.run.subject, format!("store:{}", stores[0]));
    assert_eq!(repair.run.lane.0, Lane::Bulk);
    assert_eq!(
        (repair.run.created_by.as_str(), repair.run.owner.as_str()),
        (SWEEP_ACTOR, SWEEP_ACTOR)
    );
    assert_eq!(
        repair.steps[0].output.clone().unwrap(),
        json!({ "missing": ["NetworkPolicy/allow-dns"], "drifted": ["ResourceQuota/store-quota"] })
    );
    assert!(policies.get_opt("allow-dns").await.unwrap().is_some());
    assert_ne!(pods(quotas.get("store-quota").await.unwrap()), "99");

    // Nothing left to find, and so nothing more to repair.
    let after = sweep(engine, true).await;
    assert_eq!(
        (after.checked, after.drifted.len(), after.failed.len()),
        (2, 0, 0),
        "{after:#?}"
    );
    assert_eq!(repair_runs(engine).await.len(), 1);
    rig.stop().await;
}

/// A worker that serves `store.sweep` and nothing else: a repair started meanwhile stays
/// queued, as one a crashed sweep attempt started would still be active.
async fn sweep_only_worker(
    pool: &PgPool,
    client: &Client,
    settings: &StoreSettings,
) -> WorkerHandle {
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: Some(client.clone()),
    });
    let all = urumi_workflows::registry(Some(&deps)).unwrap();
    let only = Registry::new(
        all.iter()
            .filter(|d| d.name() == SWEEP)
            .map(|d| (**d).clone()),
    )
    .unwrap();
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(50),
        name: "sweep-only".into(),
        ..WorkerOptions::default()
    };
    Worker::new(pool.clone(), only, options)
        .start()
        .await
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_drifted_store_whose_repair_is_already_active_is_listed_with_that_repair_and_not_repaired_again(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let common::SimRig {
        pool,
        sim,
        client,
        settings,
        engine,
        worker,
    } = common::sim_rig(connect, "sweep-busy").await;
    let c = service::create(&engine, &settings, "Busy Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    common::succeeded(&engine, c.run_id).await;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), "store-busy-shop");
    policies
        .delete("allow-dns", &DeleteParams::default())
        .await
        .unwrap();
    worker.shutdown().await.unwrap();
    let sweeper = sweep_only_worker(&pool, &client, &settings).await;
    let queued = service::repair(&engine, c.store.id, "operator")
        .await
        .unwrap();

    let out = sweep(&engine, true).await;
    assert_eq!(out.drifted.len(), 1, "{out:#?}");
    let d = &out.drifted[0];
    assert_eq!(d.objects, ["NetworkPolicy/allow-dns"]);
    assert_eq!(d.repair_run_id, Some(queued.run_id), "{out:#?}");
    assert_eq!(
        d.note.as_deref(),
        Some(format!("already being repaired by run {}", queued.run_id).as_str())
    );
    assert_eq!(
        repair_runs(&engine).await.len(),
        1,
        "the sweep started no second repair"
    );
    sweeper.shutdown().await.unwrap();
    sim.shutdown().await;
}
