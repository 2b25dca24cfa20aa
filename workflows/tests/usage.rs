//! `store.usage@1` against the simulator: one fleet-wide LIST of the stores' quotas writes
//! each store's `status.used` against `status.hard` to `urumi.store_usage`, exactly as the
//! quota says it; a second observation overwrites the first.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Api;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun};
use urumi_store::usage::{self, USAGE, USAGE_SUBJECT};
use urumi_workflows::store::service;

async fn observe(engine: &Engine) -> serde_json::Value {
    let run = engine
        .start_run(NewRun::new(USAGE, USAGE_SUBJECT, json!({})))
        .await
        .unwrap();
    common::succeeded(engine, run.run_id)
        .await
        .run
        .output
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_usage_run_records_each_stores_quota_status_as_the_quota_says_it(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = common::sim_rig(connect, "usage-test").await;
    let (pool, engine, client, sim) = (&rig.pool, &rig.engine, &rig.client, &rig.sim);
    let mut stores = Vec::new();
    for name in ["Usage One", "Usage Two"] {
        let c = service::create(engine, &rig.settings, name, "woocommerce", None, "t")
            .await
            .unwrap();
        common::succeeded(engine, c.run_id).await;
        stores.push(c.store.id);
    }
    assert!(sim.wait_idle(Duration::from_secs(10)).await);
    assert_eq!(
        usage::of_store(pool, stores[0])
            .await
            .unwrap()
            .map(|u| u.observed_at),
        None,
        "nothing before the first observation"
    );

    let out = observe(engine).await;
    assert_eq!(out, json!({ "quotas": 2, "stores": 2 }));
    for (id, ns) in stores.iter().zip(["store-usage-one", "store-usage-two"]) {
        let quota: ResourceQuota = Api::namespaced(client.clone(), ns)
            .get("store-quota")
            .await
            .unwrap();
        let status = quota.status.unwrap();
        let (hard, used) = (status.hard.unwrap(), status.used.unwrap());
        let recorded = usage::of_store(pool, *id).await.unwrap().unwrap();
        let names: Vec<&str> = recorded.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, hard.keys().map(String::as_str).collect::<Vec<_>>());
        for r in &recorded.resources {
            assert_eq!(r.hard, hard[&r.name].0, "{}", r.name);
            assert_eq!(
                r.used,
                used.get(&r.name).map_or("0", |q| q.0.as_str()),
                "{}",
                r.name
            );
            assert!(r.hard_value.is_some() && r.used_value.is_some(), "{r:?}");
        }
        let pods = recorded
            .resources
            .iter()
            .find(|r| r.name == "pods")
            .unwrap();
        assert!(
            pods.used_value.unwrap() >= 2.0,
            "the database and the web pods count: {pods:?}"
        );
        let cpu = recorded
            .resources
            .iter()
            .find(|r| r.name == "requests.cpu")
            .unwrap();
        assert!(cpu.used_value.unwrap() > 0.0, "{cpu:?}");
    }
    let fleet = usage::fleet(pool).await.unwrap();
    let pods = fleet.iter().find(|r| r.name == "pods").unwrap();
    assert_eq!(pods.stores, 2);
    let one = usage::of_store(pool, stores[0]).await.unwrap().unwrap();
    let two = usage::of_store(pool, stores[1]).await.unwrap().unwrap();
    let per = |u: &usage::StoreUsage| {
        u.resources
            .iter()
            .find(|r| r.name == "pods")
            .unwrap()
            .used_value
            .unwrap()
    };
    assert_eq!(pods.used, per(&one) + per(&two));

    // Again: the newest observation replaces the last.
    observe(engine).await;
    let again = usage::of_store(pool, stores[0]).await.unwrap().unwrap();
    assert!(again.observed_at > one.observed_at);
    assert_eq!(again.resources, one.resources);
    rig.stop().await;
}
