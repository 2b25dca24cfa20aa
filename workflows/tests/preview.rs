//! `store.preview@1` against the simulator: a repair's plan names exactly what the repair then
//! does (the missing object, the drifted field), writes nothing (every write it sends carries
//! `dryRun=All`), and a delete's plan deletes nothing.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun};
use urumi_store::preview::{
    Change, PREVIEW, PlannedAction, PreviewInput, PreviewOutput, StorePlan,
};
use urumi_workflows::store::service;
use uuid::Uuid;

async fn preview(engine: &Engine, action: PlannedAction, stores: Vec<Uuid>) -> PreviewOutput {
    let run = engine
        .start_run(NewRun::new(
            PREVIEW,
            format!("preview:{}", Uuid::now_v7()),
            json!(PreviewInput {
                action,
                store_ids: stores,
                plan: None,
                backup_id: None,
                domains: None,
                channel: None,
            }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(engine, run.run_id).await;
    serde_json::from_value(d.run.output.unwrap()).unwrap()
}

fn change_of(plan: &StorePlan, kind: &str, name: &str) -> (Change, Vec<String>) {
    let o = plan
        .objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("{kind}/{name} is not in the plan: {plan:#?}"));
    (o.change, o.fields.clone())
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_repair_preview_names_what_the_repair_then_does_and_writes_nothing(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = common::sim_rig(connect, "preview-test").await;
    let (engine, client, settings, sim) = (&rig.engine, &rig.client, &rig.settings, &rig.sim);
    let created = service::create(engine, settings, "Plan Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let store = created.store.id;
    common::succeeded(engine, created.run_id).await;
    let ns = "store-plan-shop";

    // Drift: one object deleted, one field changed by someone else.
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

    let since = sim.request_log().entries().last().map_or(0, |r| r.seq);
    let missing = Uuid::now_v7();
    let out = preview(engine, PlannedAction::Repair, vec![store, missing]).await;
    assert_eq!(out.stores.len(), 2);
    let plan = &out.stores[0];
    assert_eq!(plan.store_id, store);
    assert_eq!(plan.error, None, "{plan:#?}");
    assert_eq!(
        change_of(plan, "NetworkPolicy", "allow-dns"),
        (Change::Create, vec![])
    );
    assert_eq!(
        change_of(plan, "ResourceQuota", "store-quota"),
        (Change::Update, vec!["/spec/hard/pods".to_owned()])
    );
    assert_eq!(
        change_of(plan, "Secret", "store-credentials").0,
        Change::Unchanged
    );
    let others: Vec<_> = plan
        .objects
        .iter()
        .filter(|o| o.name != "allow-dns" && o.name != "store-quota")
        .collect();
    assert!(others.len() >= 10, "{plan:#?}");
    assert!(
        others.iter().all(|o| o.change == Change::Unchanged),
        "only the drifted objects change: {plan:#?}"
    );
    assert_eq!(out.stores[1].store_id, missing);
    assert_eq!(
        out.stores[1].error.as_deref(),
        Some(format!("store {missing} does not exist").as_str())
    );

    // Nothing was written: every write the preview sent was a dry run, and the drift is
    // still there.
    let writes: Vec<_> = sim
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| {
            r.seq > since && matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete")
        })
        .collect();
    assert!(
        writes.len() >= 10,
        "the preview applied every object: {writes:#?}"
    );
    assert!(
        writes.iter().all(|r| r.query.contains("dryRun=All")),
        "a preview write without dryRun=All: {writes:#?}"
    );
    assert!(policies.get_opt("allow-dns").await.unwrap().is_none());
    let quota = quotas.get("store-quota").await.unwrap();
    assert_eq!(quota.spec.unwrap().hard.unwrap()["pods"].0, "99");

    // The repair does what the preview said, and afterwards the preview finds nothing to do.
    let repair = service::repair(engine, store, "operator").await.unwrap();
    let d = common::succeeded(engine, repair.run_id).await;
    let report = d.steps[0].output.clone().unwrap();
    assert_eq!(
        report,
        json!({ "missing": ["NetworkPolicy/allow-dns"], "drifted": ["ResourceQuota/store-quota"] })
    );
    let again = preview(engine, PlannedAction::Repair, vec![store]).await;
    assert!(
        again.stores[0]
            .objects
            .iter()
            .all(|o| o.change == Change::Unchanged),
        "{again:#?}"
    );

    // A delete's preview deletes the namespace — under dryRun=All: it is still there.
    let del = preview(engine, PlannedAction::Delete, vec![store]).await;
    assert_eq!(change_of(&del.stores[0], "Namespace", ns).0, Change::Delete);
    assert!(
        Api::<Namespace>::all(client.clone())
            .get_opt(ns)
            .await
            .unwrap()
            .is_some()
    );
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_repair_preview_of_a_store_whose_namespace_is_gone_says_the_repair_would_fail(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = common::sim_rig(connect, "preview-gone").await;
    let (engine, client, settings) = (&rig.engine, &rig.client, &rig.settings);
    let created = service::create(engine, settings, "Gone Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    common::succeeded(engine, created.run_id).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("store-gone-shop", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while namespaces
        .get_opt("store-gone-shop")
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the namespace never went"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = preview(engine, PlannedAction::Repair, vec![created.store.id]).await;
    let plan = &out.stores[0];
    assert!(plan.objects.is_empty(), "{plan:#?}");
    let error = plan.error.as_deref().unwrap();
    assert!(
        error.contains("namespace store-gone-shop does not exist"),
        "{error}"
    );
    let del = preview(engine, PlannedAction::Delete, vec![created.store.id]).await;
    let (change, _) = change_of(&del.stores[0], "Namespace", "store-gone-shop");
    assert_eq!(change, Change::Unchanged, "{del:#?}");
    rig.stop().await;
}
