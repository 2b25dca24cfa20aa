//! The engine abstraction is real: a second engine, defined only here, renders a different
//! app (a Postgres data tier and a `shop` web tier on port 8080) and the generic core still
//! applies to it — namespace and Pod Security, quota, NetworkPolicies, labels, Ingress, the
//! setup Job — and the unchanged `store.provision` steps take it to ready on the simulator,
//! storefront check included. Nothing outside this file knows the engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, PodSpec, PodTemplateSpec, Secret, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{Api, Client};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun, RunStatus, Worker, WorkerOptions};
use urumi_sim::Simulator;
use urumi_workflows::store::engines::woocommerce::WooCommerce;
use urumi_workflows::store::engines::{
    AppObject, ArchiveJob, Engines, SETUP_CONFIGMAP, StoreEngine, Tier, Verdict, WebTier, Workload,
};
use urumi_workflows::store::names::slugify;
use urumi_workflows::store::render::{
    self, StoreSpec, env, resources, restricted_container, restricted_pod, secret_env, selector,
    service,
};
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use urumi_workflows::store::steps::PROVISION;
use urumi_workflows::{StoreDeps, registry_for};
use uuid::Uuid;

/// A made-up shop: Postgres behind a small HTTP app.
struct TestShop;

const SHOP: WebTier = WebTier {
    app: "shop",
    port: 8080,
};

fn pod(spec: &StoreSpec<'_>, app: &str, image: &str, uid: i64) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(spec.template_meta(app)),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: app.into(),
                image: Some(image.into()),
                env: Some(vec![secret_env("DB_PASSWORD", "db-password")]),
                resources: Some(resources("100m", "128Mi", "250m", "256Mi")),
                security_context: Some(restricted_container()),
                ..Container::default()
            }],
            security_context: Some(restricted_pod(uid, None)),
            ..PodSpec::default()
        }),
    }
}

fn match_app(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector(app)),
        ..LabelSelector::default()
    }
}

impl StoreEngine for TestShop {
    fn name(&self) -> &'static str {
        "test-shop"
    }
    fn credential_keys(&self) -> &'static [&'static str] {
        &["db-password", "session-secret"]
    }
    fn web(&self) -> WebTier {
        SHOP
    }
    fn data_tier(&self, spec: &StoreSpec<'_>, _: &StoreSettings) -> Tier {
        let sts = StatefulSet {
            metadata: spec.app_meta("db", "db"),
            spec: Some(StatefulSetSpec {
                service_name: Some("db".into()),
                selector: match_app("db"),
                template: pod(spec, "db", "postgres:17", 70),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        };
        Tier {
            objects: vec![
                AppObject::Service(service(spec, "db", 5432)),
                AppObject::StatefulSet(sts),
            ],
            ready: Workload::StatefulSet {
                name: "db",
                title: "Postgres",
            },
        }
    }
    fn web_tier(&self, spec: &StoreSpec<'_>, _: &StoreSettings) -> Tier {
        let deployment = Deployment {
            metadata: spec.app_meta(SHOP.app, SHOP.app),
            spec: Some(DeploymentSpec {
                selector: match_app(SHOP.app),
                template: pod(spec, SHOP.app, "example/shop:1", 1000),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        };
        Tier {
            objects: vec![
                AppObject::Service(service(spec, SHOP.app, SHOP.port)),
                AppObject::Deployment(deployment),
            ],
            ready: Workload::Deployment {
                name: SHOP.app,
                title: "The shop",
            },
        }
    }
    fn setup_script(&self) -> &'static str {
        "#!/bin/sh\nshop migrate && shop seed\n"
    }
    fn setup_pod(&self, spec: &StoreSpec<'_>, _: &StoreSettings) -> PodSpec {
        let mut pod = pod(spec, "seed", "example/shop:1", 1000).spec.unwrap();
        let c = &mut pod.containers[0];
        c.command = Some(vec!["/bin/sh".into(), "/setup/setup.sh".into()]);
        c.env
            .get_or_insert_default()
            .push(env("SHOP_TITLE", spec.name));
        c.volume_mounts = Some(vec![VolumeMount {
            name: "setup".into(),
            mount_path: "/setup".into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]);
        pod.volumes = Some(vec![Volume {
            name: "setup".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: SETUP_CONFIGMAP.into(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }]);
        pod
    }
    fn archive_pod(&self, spec: &StoreSpec<'_>, _: &StoreSettings, job: &ArchiveJob) -> PodSpec {
        // The shop's own dump tool, given the backup to make or restore.
        let mut pod = pod(spec, "archive", "example/shop:1", 1000).spec.unwrap();
        let c = &mut pod.containers[0];
        c.command = Some(vec![
            "shop".into(),
            job.kind.as_str().into(),
            job.backup_id.to_string(),
        ]);
        pod.restart_policy = Some("Never".into());
        pod
    }
    fn storefront_path(&self) -> &'static str {
        "/health"
    }
    fn judge_storefront(&self, status: u16, body: &str) -> Verdict {
        if status == 200 && body.contains("<html") {
            Verdict::Ready(json!({ "page": "html" }))
        } else {
            Verdict::NotYet(format!("{status}"))
        }
    }
}

/// The built-in engines plus the test's.
const WITH_TEST_SHOP: Engines = Engines::new(&[&WooCommerce, &TestShop]);

fn rendered(settings: &StoreSettings) -> Vec<Value> {
    let slug = slugify("Pixel Parts", &settings.platform_namespace).unwrap();
    let pins = settings.image_pins();
    let spec = StoreSpec {
        id: "0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6b",
        name: "Pixel Parts",
        slug: &slug,
        plan: settings.plan(None).unwrap(),
        suspended: false,
        domains: &[],
        pins: &pins,
    };
    let creds: BTreeMap<String, String> = TestShop
        .credential_keys()
        .iter()
        .map(|k| ((*k).to_owned(), "x".repeat(32)))
        .collect();
    render::all(&TestShop, &spec, settings, &creds)
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

#[test]
fn a_second_engine_renders_its_own_app_inside_the_same_generic_store() {
    let settings = StoreSettings::default();
    let objects = rendered(&settings);
    let ids: Vec<String> = objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]).replace('"', ""))
        .collect();
    assert_eq!(
        ids,
        [
            "Namespace/store-pixel-parts",
            "ResourceQuota/store-quota",
            "LimitRange/store-limits",
            "NetworkPolicy/default-deny",
            "NetworkPolicy/allow-same-namespace",
            "NetworkPolicy/allow-ingress-controller",
            "NetworkPolicy/allow-dns",
            "NetworkPolicy/allow-https-egress",
            "Secret/store-credentials",
            "Service/db",
            "StatefulSet/db",
            "Service/shop",
            "Deployment/shop",
            "Ingress/shop",
            "ConfigMap/store-setup",
            "Job/store-setup",
        ]
    );
    let text = serde_json::to_string(&objects).unwrap();
    assert!(
        !text.contains("wordpress") && !text.contains("mariadb"),
        "nothing of WooCommerce leaks into another engine's store"
    );
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "urumi"
        );
        assert_eq!(o["metadata"]["labels"]["urumi.io/store"], "pixel-parts");
    }
    assert_eq!(
        objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    // The ingress controller reaches the shop's pods on the shop's port, through its Service.
    let allow = find(&objects, "NetworkPolicy", "allow-ingress-controller");
    assert_eq!(
        allow["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "shop"
    );
    assert_eq!(allow["spec"]["ingress"][0]["ports"][0]["port"], 8080);
    let backend = &find(&objects, "Ingress", "shop")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        ["service"];
    assert_eq!(
        backend,
        &json!({ "name": "shop", "port": { "number": 8080 } })
    );
    // The engine's secret keys and setup; the core's Job around its pod.
    let keys = find(&objects, "Secret", "store-credentials")["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(keys, ["db-password", "session-secret"]);
    assert!(
        find(&objects, "ConfigMap", "store-setup")["data"]["setup.sh"]
            .as_str()
            .unwrap()
            .contains("shop seed")
    );
    let job = find(&objects, "Job", "store-setup");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["name"],
        "seed"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_unchanged_provisioning_steps_take_a_second_engines_store_to_ready(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = Simulator::builder().start().await.unwrap();
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let settings = StoreSettings::default();
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: Some(client.clone()),
    });
    let registry = registry_for(Some(&deps), WITH_TEST_SHOP).unwrap();
    let engine = Engine::new(pool.clone(), registry.clone());
    let options = WorkerOptions {
        poll_interval: Duration::from_millis(50),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(pool.clone(), registry, options)
        .start()
        .await
        .unwrap();

    // The API's set of engines is the built-in one: it refuses this engine by name.
    let refused = service::create(&engine, &settings, "Pixel Parts", "test-shop", None, "t")
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "unknown engine \"test-shop\"; known engines: woocommerce"
    );

    // So the test writes the store row and starts the run itself.
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO urumi.stores (id, name, slug, engine, plan, created_by)
         VALUES ($1, 'Pixel Parts', 'pixel-parts', 'test-shop', 'starter', 't')",
    )
    .bind(id)
    .execute(&pool)
    .await
    .unwrap();
    let input = json!({ "store_id": id, "name": "Pixel Parts", "slug": "pixel-parts",
                        "plan": "starter", "engine": "test-shop" });
    let run = engine
        .start_run(NewRun::new(PROVISION, format!("store:{id}"), input))
        .await
        .unwrap()
        .run_id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let d = loop {
        let d = engine.run(run).await.unwrap();
        match d.run.status() {
            RunStatus::Succeeded => break d,
            RunStatus::Failed => panic!("provisioning failed: {d:#?}"),
            _ => {}
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready: {d:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = |name: &str| {
        d.steps
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.output.clone())
            .unwrap()
    };
    assert_eq!(
        output("mariadb")["applied"],
        json!(["Service/db", "StatefulSet/db"])
    );
    assert_eq!(
        output("wordpress")["applied"],
        json!(["Service/shop", "Deployment/shop", "Ingress/shop"])
    );
    assert_eq!(output("setup")["job"], "store-setup-1");
    assert_eq!(
        output("storefront")["storefront"],
        json!({ "request": "GET shop:8080/health", "status": 200, "judged": { "page": "html" } })
    );
    let store = urumi_workflows::store::db::get(&pool, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (store.status.as_str(), store.url.as_deref()),
        ("ready", Some("http://pixel-parts.stores.localhost"))
    );

    let ns = "store-pixel-parts";
    let ready = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("shop")
        .await
        .unwrap();
    assert_eq!(ready.status.unwrap().available_replicas, Some(1));
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get("store-credentials")
        .await
        .unwrap();
    let keys: Vec<String> = secret.data.unwrap().into_keys().collect();
    assert_eq!(keys, ["db-password", "session-secret"]);
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(policies.items.len(), 5);
    assert!(
        Api::<Ingress>::namespaced(client.clone(), ns)
            .get_opt("wordpress")
            .await
            .unwrap()
            .is_none()
    );
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}
