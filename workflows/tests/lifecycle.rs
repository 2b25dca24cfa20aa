//! `store.suspend@1` and `store.resume@1` against the simulator: a suspended store has no pod
//! left, its Ingress reaches the suspended page, and it keeps its volumes, Secrets and
//! database; a repair of it keeps it suspended; a resume brings it back to `ready` with its
//! storefront answering. Their previews (`dryRun=All`) say so and write nothing; asking for
//! the state a store is already in starts nothing; a store in any other status is refused.

mod common;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun};
use urumi_store::preview::{Change, PREVIEW, PlannedAction, PreviewInput, PreviewOutput};
use urumi_workflows::store::service::{self, Lifecycle};
use urumi_workflows::store::status::StoreStatus;
use uuid::Uuid;

async fn preview(engine: &Engine, action: PlannedAction, store: Uuid) -> Vec<(String, Change)> {
    let run = engine
        .start_run(NewRun::new(
            PREVIEW,
            format!("preview:{}", Uuid::now_v7()),
            json!(PreviewInput {
                action,
                store_ids: vec![store],
                plan: None,
                backup_id: None,
                domains: None,
                channel: None,
            }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(engine, run.run_id).await;
    let out: PreviewOutput = serde_json::from_value(d.run.output.unwrap()).unwrap();
    let plan = &out.stores[0];
    assert_eq!(plan.error, None, "{plan:#?}");
    plan.objects
        .iter()
        .filter(|o| o.change != Change::Unchanged)
        .map(|o| (format!("{}/{}", o.kind, o.name), o.change))
        .collect()
}

fn started(l: Lifecycle) -> Uuid {
    match l {
        Lifecycle::Started(r) => r.run_id,
        Lifecycle::Unchanged(s) => panic!("nothing was started for store {}", s.id),
    }
}

async fn status(engine: &Engine, id: Uuid) -> StoreStatus {
    urumi_store::db::get(engine.pool(), id)
        .await
        .unwrap()
        .unwrap()
        .status
}

fn backend(ing: &Ingress) -> String {
    let spec = ing.spec.as_ref().unwrap();
    let path = &spec.rules.as_ref().unwrap()[0].http.as_ref().unwrap().paths[0];
    path.backend.service.as_ref().unwrap().name.clone()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_suspended_store_keeps_its_data_and_resumes_to_a_working_storefront(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let rig = common::sim_rig(connect, "lifecycle-test").await;
    let (engine, client, settings) = (&rig.engine, &rig.client, &rig.settings);
    let created = service::create(engine, settings, "Nap Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(engine, created.run_id).await;
    let ns = "store-nap-shop";
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let secret_before = Api::<Secret>::namespaced(client.clone(), ns)
        .get("store-credentials")
        .await
        .unwrap();
    let pvcs_before: Vec<_> = pvcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.uid.unwrap())
        .collect();
    assert_eq!(pvcs_before.len(), 2, "database and uploads volumes");

    // The suspend's preview: exactly the replicas, the page's alias and the Ingress.
    let mut plan = preview(engine, PlannedAction::Suspend, id).await;
    plan.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        plan,
        [
            ("Deployment/wordpress".to_owned(), Change::Update),
            ("Ingress/wordpress".to_owned(), Change::Update),
            ("Service/store-suspended".to_owned(), Change::Create),
            ("StatefulSet/mariadb".to_owned(), Change::Update),
        ]
    );
    assert!(services.get_opt("store-suspended").await.unwrap().is_none());
    assert_eq!(status(engine, id).await, StoreStatus::Ready);

    let run = started(service::suspend(engine, id, "t").await.unwrap());
    common::succeeded(engine, run).await;
    assert_eq!(status(engine, id).await, StoreStatus::Suspended);
    let web = deployments.get("wordpress").await.unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(0));
    let db = statefulsets.get("mariadb").await.unwrap();
    assert_eq!(db.spec.unwrap().replicas, Some(0));
    let workload_pods: Vec<String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            let app = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/name"));
            matches!(app.map(String::as_str), Some("wordpress" | "mariadb"))
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(
        workload_pods,
        Vec::<String>::new(),
        "no workload pod is left"
    );
    let page = services.get("store-suspended").await.unwrap().spec.unwrap();
    assert_eq!(page.type_.as_deref(), Some("ExternalName"));
    assert_eq!(
        page.external_name.as_deref(),
        Some("urumi-suspended.urumi-system.svc.cluster.local")
    );
    assert_eq!(
        backend(&ingresses.get("wordpress").await.unwrap()),
        "store-suspended"
    );
    // Kept: the volumes (the same objects) and the credentials (never rewritten).
    let pvcs_after: Vec<_> = pvcs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.uid.unwrap())
        .collect();
    assert_eq!(pvcs_after, pvcs_before);
    let secret_after = Api::<Secret>::namespaced(client.clone(), ns)
        .get("store-credentials")
        .await
        .unwrap();
    assert_eq!(
        secret_after.metadata.resource_version,
        secret_before.metadata.resource_version
    );

    // Suspending a suspended store starts nothing; a repair keeps it suspended.
    assert!(matches!(
        service::suspend(engine, id, "t").await.unwrap(),
        Lifecycle::Unchanged(s) if s.status == StoreStatus::Suspended
    ));
    let repair = service::repair(engine, id, "t").await.unwrap();
    let d = common::succeeded(engine, repair.run_id).await;
    assert_eq!(
        d.run.output.unwrap(),
        json!({ "missing": [], "drifted": [] }),
        "a suspended store's repair finds it as it should be"
    );
    assert_eq!(
        deployments
            .get("wordpress")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );

    // The resume's preview: replicas back, the Ingress back, the alias deleted.
    let mut plan = preview(engine, PlannedAction::Resume, id).await;
    plan.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        plan,
        [
            ("Deployment/wordpress".to_owned(), Change::Update),
            ("Ingress/wordpress".to_owned(), Change::Update),
            ("Service/store-suspended".to_owned(), Change::Delete),
            ("StatefulSet/mariadb".to_owned(), Change::Update),
        ]
    );
    assert!(services.get_opt("store-suspended").await.unwrap().is_some());

    let run = started(service::resume(engine, id, "t").await.unwrap());
    let d = common::succeeded(engine, run).await;
    assert_eq!(status(engine, id).await, StoreStatus::Ready);
    let steps: Vec<&str> = d.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        [
            "scale_up",
            "mariadb_ready",
            "wordpress_ready",
            "route",
            "storefront",
            "mark_ready"
        ]
    );
    assert_eq!(
        deployments
            .get("wordpress")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(1)
    );
    assert_eq!(
        backend(&ingresses.get("wordpress").await.unwrap()),
        "wordpress"
    );
    assert!(services.get_opt("store-suspended").await.unwrap().is_none());
    assert!(matches!(
        service::resume(engine, id, "t").await.unwrap(),
        Lifecycle::Unchanged(s) if s.status == StoreStatus::Ready
    ));
    rig.stop().await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn suspend_and_resume_refuse_a_store_in_any_other_status(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    // No worker: the provisioning run stays queued, statuses are set by hand.
    let pool = PgPoolOptions::new().connect_with(connect).await.unwrap();
    let engine = Engine::new(pool.clone(), urumi_store::registry().unwrap());
    let settings = urumi_workflows::store::settings::StoreSettings::default();
    let created = service::create(&engine, &settings, "Busy Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM urumi.runs")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = runs().await;
    for status in ["provisioning", "failed", "deleting"] {
        sqlx::query("UPDATE urumi.stores SET status = $2 WHERE id = $1")
            .bind(id)
            .bind(status)
            .execute(&pool)
            .await
            .unwrap();
        for (what, result) in [
            ("suspend", service::suspend(&engine, id, "t").await),
            ("resume", service::resume(&engine, id, "t").await),
        ] {
            let err = result.expect_err(what);
            assert!(
                matches!(err, service::Error::WrongStatus { .. }),
                "{what} of a {status} store: {err}"
            );
            assert!(err.to_string().contains(&format!("is {status}")), "{err}");
        }
    }
    sqlx::query("UPDATE urumi.stores SET status = 'deleted' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        service::suspend(&engine, id, "t").await,
        Err(service::Error::Deleted(_))
    ));
    assert!(matches!(
        service::resume(&engine, Uuid::now_v7(), "t").await,
        Err(service::Error::NotFound(_))
    ));
    assert_eq!(runs().await, before, "nothing was started");
}

fn plan(pods: &str, cpu: &str, db: &str, wp: &str) -> urumi_workflows::store::settings::Plan {
    urumi_workflows::store::settings::Plan {
        pods: pods.into(),
        requests_cpu: cpu.into(),
        db_storage: db.into(),
        wp_storage: wp.into(),
        ..urumi_workflows::store::settings::Plan::default()
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_moves_to_a_plan_its_usage_fits_and_is_refused_one_it_does_not(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    use k8s_openapi::api::core::v1::ResourceQuota;
    use urumi_store::usage::{USAGE, USAGE_SUBJECT};
    use urumi_workflows::store::settings::{Plan, StoreSettings};

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let mut settings = StoreSettings::default();
    let starter = Plan::default();
    settings.plans.extend([
        (
            "pro".to_owned(),
            plan("20", "2", &starter.db_storage, "10Gi"),
        ),
        (
            "tiny".to_owned(),
            plan("1", "1", &starter.db_storage, &starter.wp_storage),
        ),
        (
            "small-disk".to_owned(),
            plan("10", "1", &starter.db_storage, "1Gi"),
        ),
        (
            "big-db".to_owned(),
            plan("10", "1", "50Gi", &starter.wp_storage),
        ),
    ]);
    let (engine, worker) = common::store_worker(&pool, client.clone(), &settings, "resize").await;
    let engine = &engine;
    let created = service::create(engine, &settings, "Grow Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(engine, created.run_id).await;
    let resize = |to: &'static str| {
        let settings = settings.clone();
        async move {
            let mut tx = engine.pool().begin().await.unwrap();
            let who = urumi_engine::Who::interactive("t");
            let r = service::resize_in(&mut tx, engine, &settings, id, to, &who).await;
            tx.commit().await.unwrap();
            r
        }
    };
    let refusal = |r: Result<Lifecycle, service::Error>| match r {
        Err(e @ service::Error::DoesNotFit { .. }) => e.to_string(),
        other => panic!("not refused as not fitting: {other:?}"),
    };

    // Lowering the quota before any usage was observed is refused.
    let why = refusal(resize("tiny").await);
    assert!(why.contains("not been observed"), "{why}");
    let observed = engine
        .start_run(NewRun::new(USAGE, USAGE_SUBJECT, json!({})))
        .await
        .unwrap();
    common::succeeded(engine, observed.run_id).await;
    // Two pods run; tiny allows one.
    let why = refusal(resize("tiny").await);
    assert!(why.contains("pods: uses 2, plan tiny allows 1"), "{why}");
    let why = refusal(resize("small-disk").await);
    assert!(
        why.contains("uploads volume cannot shrink (5Gi → 1Gi)"),
        "{why}"
    );
    let why = refusal(resize("big-db").await);
    assert!(why.contains("database volume's size is fixed"), "{why}");
    assert!(matches!(
        resize("platinum").await,
        Err(service::Error::UnknownPlan(_))
    ));
    let store = urumi_store::db::get(&pool, id).await.unwrap().unwrap();
    assert_eq!(store.plan, "starter", "a refusal changes nothing");

    // The preview of a move to pro: the quota changes (the LimitRange's limits are the same),
    // the uploads volume grows.
    let run = engine
        .start_run(NewRun::new(
            PREVIEW,
            format!("preview:{}", Uuid::now_v7()),
            json!(PreviewInput {
                action: PlannedAction::Resize,
                store_ids: vec![id],
                plan: Some("pro".into()),
                backup_id: None,
                domains: None,
                channel: None,
            }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(engine, run.run_id).await;
    let out: PreviewOutput = serde_json::from_value(d.run.output.unwrap()).unwrap();
    let mut changed: Vec<(String, Vec<String>)> = out.stores[0]
        .objects
        .iter()
        .filter(|o| o.change != Change::Unchanged)
        .map(|o| (format!("{}/{}", o.kind, o.name), o.fields.clone()))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            (
                "PersistentVolumeClaim/wordpress-content".to_owned(),
                vec!["/spec/resources/requests/storage".to_owned()]
            ),
            (
                "ResourceQuota/store-quota".to_owned(),
                vec![
                    "/spec/hard/pods".to_owned(),
                    "/spec/hard/requests.cpu".to_owned()
                ]
            ),
        ],
        "{out:#?}"
    );

    let run = match resize("pro").await.unwrap() {
        Lifecycle::Started(r) => r.run_id,
        Lifecycle::Unchanged(_) => panic!("nothing started"),
    };
    let d = common::succeeded(engine, run).await;
    let steps: Vec<&str> = d.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["reapply", "mariadb_ready", "wordpress_ready"]);
    assert_eq!(
        d.steps[0].output.clone().unwrap(),
        json!({ "missing": [], "drifted": ["ResourceQuota/store-quota", "PersistentVolumeClaim/wordpress-content"] })
    );
    let store = urumi_store::db::get(&pool, id).await.unwrap().unwrap();
    assert_eq!(
        (store.plan.as_str(), store.status),
        ("pro", StoreStatus::Ready)
    );
    let quota = Api::<ResourceQuota>::namespaced(client.clone(), "store-grow-shop")
        .get("store-quota")
        .await
        .unwrap();
    let hard = quota.spec.unwrap().hard.unwrap();
    assert_eq!(hard["pods"].0, "20");
    assert!(matches!(resize("pro").await, Ok(Lifecycle::Unchanged(_))));
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}
