//! `store.domains@1` against the simulator: its preview (`store.preview`, a dry run's plan)
//! names the Ingress and writes nothing; a custom domain added to a ready store becomes an
//! Ingress rule with its own cert-manager TLS entry, WordPress's site URL is set to the
//! primary domain by a numbered Job (a failed Job retried with a fresh one, its log tail
//! recorded), a repair keeps the domains, removing one routes it away and moves the site URL
//! to the next; a domain held by one store is refused to another until the first is deleted.

mod common;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::networking::v1::Ingress;
use kube::{Api, Client};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun};
use urumi_sim::JobScript;
use urumi_store::preview::{Change, PREVIEW, PlannedAction, PreviewInput, PreviewOutput};
use urumi_workflows::store::service::{self, DomainChange, Error, Lifecycle};
use urumi_workflows::store::settings::StoreSettings;
use urumi_workflows::store::status::StoreStatus;
use uuid::Uuid;

fn started(l: Lifecycle) -> Uuid {
    match l {
        Lifecycle::Started(r) => r.run_id,
        Lifecycle::Unchanged(s) => panic!("nothing was started for store {}", s.id),
    }
}

/// The Ingress's hosts (rules) and its TLS entries as (hosts, secret).
fn routes(ing: &Ingress) -> (Vec<String>, Vec<(Vec<String>, String)>) {
    let spec = ing.spec.as_ref().unwrap();
    let hosts = spec
        .rules
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.host.clone().unwrap())
        .collect();
    let tls = spec
        .tls
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| (t.hosts.clone().unwrap(), t.secret_name.clone().unwrap()))
        .collect();
    (hosts, tls)
}

/// The `STORE_URL` a site-URL Job sets.
fn job_url(job: &Job) -> String {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let env = pod.containers[0].env.as_ref().unwrap();
    env.iter()
        .find(|e| e.name == "STORE_URL")
        .and_then(|e| e.value.clone())
        .unwrap()
}

async fn job_names(jobs: &Api<Job>) -> Vec<String> {
    let mut names: Vec<String> = jobs
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/name=store-siteurl"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    names.sort();
    names
}

async fn domains(engine: &Engine, id: Uuid) -> Vec<String> {
    urumi_store::db::domains(engine.pool(), id).await.unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn custom_domains_are_routed_with_tls_and_set_as_the_site_url_then_removed(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let settings = StoreSettings {
        tls_issuer: Some("letsencrypt".into()),
        ..StoreSettings::default()
    };
    let (engine, worker) =
        common::store_worker(&pool, client.clone(), &settings, "domains-test").await;
    let engine = Arc::new(engine);
    let created = service::create(&engine, &settings, "Domain Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    let id = created.store.id;
    common::succeeded(&engine, created.run_id).await;
    let ns = "store-domain-shop";
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    // The first site-URL Job fails (WordPress's database unreachable, say): the step retries
    // with a fresh Job.
    sim.script_job(
        Some(ns),
        "store-siteurl-1",
        JobScript::fail("Error: Error establishing a database connection."),
    );

    // The preview of a domain change (a dry run's plan): the Ingress would change; nothing is
    // written.
    let preview = engine
        .start_run(NewRun::new(
            PREVIEW,
            format!("preview:{}", Uuid::now_v7()),
            json!(PreviewInput {
                action: PlannedAction::Domains,
                store_ids: vec![id],
                plan: None,
                backup_id: None,
                domains: Some(vec!["shop.example.com".into()]),
                channel: None,
            }),
        ))
        .await
        .unwrap();
    let d = common::succeeded(&engine, preview.run_id).await;
    let out: PreviewOutput = serde_json::from_value(d.run.output.unwrap()).unwrap();
    let changed: Vec<(String, Change)> = out.stores[0]
        .objects
        .iter()
        .filter(|o| o.change != Change::Unchanged)
        .map(|o| (format!("{}/{}", o.kind, o.name), o.change))
        .collect();
    assert_eq!(changed, [("Ingress/wordpress".to_owned(), Change::Update)]);
    let (hosts, _) = routes(&ingresses.get("wordpress").await.unwrap());
    assert_eq!(
        hosts,
        ["domain-shop.stores.localhost"],
        "the preview wrote nothing"
    );

    let add = |d: &'static str| {
        let (engine, settings) = (engine.clone(), settings.clone());
        async move { service::domains(&engine, &settings, id, DomainChange::Add(d), "t").await }
    };
    let run = started(add("Shop.Example.com").await.unwrap());
    let d = common::succeeded(&engine, run).await;
    let steps: Vec<&str> = d.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["route", "site_url", "storefront"]);
    let site_url = &d.steps[1];
    assert_eq!(site_url.attempts, 2, "{site_url:#?}");
    assert_eq!(
        site_url.output,
        Some(json!({ "job": "store-siteurl-2", "url": "https://shop.example.com" }))
    );
    assert_eq!(
        d.steps[0].output,
        Some(json!({ "hosts": ["domain-shop.stores.localhost", "shop.example.com"], "tls": true }))
    );
    let (hosts, tls) = routes(&ingresses.get("wordpress").await.unwrap());
    assert_eq!(hosts, ["domain-shop.stores.localhost", "shop.example.com"]);
    assert_eq!(
        tls,
        [
            (
                vec!["domain-shop.stores.localhost".to_owned()],
                "store-tls".to_owned()
            ),
            (
                vec!["shop.example.com".to_owned()],
                "shop.example.com".to_owned()
            ),
        ],
        "one certificate per host: a domain whose DNS is not ready holds up no other"
    );
    let ing = ingresses.get("wordpress").await.unwrap();
    assert_eq!(
        ing.metadata.annotations.unwrap()["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert_eq!(
        job_names(&jobs).await,
        ["store-siteurl-1", "store-siteurl-2"]
    );
    let job = jobs.get("store-siteurl-2").await.unwrap();
    assert_eq!(job_url(&job), "https://shop.example.com");
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        pod.security_context.unwrap().run_as_non_root,
        Some(true),
        "the Job runs as non-root, like the setup Job"
    );
    assert_eq!(domains(&engine, id).await, ["shop.example.com"]);
    let store = urumi_store::db::get(engine.pool(), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status, StoreStatus::Ready);

    // Asking again, or for the store's own host, starts nothing.
    assert!(matches!(
        add("shop.example.com").await.unwrap(),
        Lifecycle::Unchanged(_)
    ));
    assert!(matches!(
        add("domain-shop.stores.localhost").await.unwrap(),
        Lifecycle::Unchanged(_)
    ));

    // A repair finds the Ingress as it should be: its input carries the domains.
    let repair = service::repair(&engine, id, "t").await.unwrap();
    let d = common::succeeded(&engine, repair.run_id).await;
    assert_eq!(
        d.run.output.unwrap(),
        json!({ "missing": [], "drifted": [] }),
        "a repair keeps the custom domains"
    );

    // A second domain: routed too; the primary (the site URL) stays the oldest, which the
    // newest Job already set: it is not set again.
    let run = started(add("www.example.org").await.unwrap());
    let d = common::succeeded(&engine, run).await;
    assert_eq!(
        d.steps[1].output,
        Some(json!({ "job": "store-siteurl-2", "url": "https://shop.example.com" }))
    );
    assert_eq!(
        job_names(&jobs).await,
        ["store-siteurl-1", "store-siteurl-2"]
    );
    let (hosts, _) = routes(&ingresses.get("wordpress").await.unwrap());
    assert_eq!(
        hosts,
        [
            "domain-shop.stores.localhost",
            "shop.example.com",
            "www.example.org"
        ]
    );

    // Removing the primary: no longer routed; the next oldest becomes the site URL.
    let remove = service::domains(
        &engine,
        &settings,
        id,
        DomainChange::Remove("SHOP.example.com"),
        "t",
    )
    .await
    .unwrap();
    common::succeeded(&engine, started(remove)).await;
    let (hosts, tls) = routes(&ingresses.get("wordpress").await.unwrap());
    assert_eq!(hosts, ["domain-shop.stores.localhost", "www.example.org"]);
    assert_eq!(tls.len(), 2);
    assert_eq!(
        job_url(&jobs.get("store-siteurl-3").await.unwrap()),
        "https://www.example.org"
    );
    assert_eq!(domains(&engine, id).await, ["www.example.org"]);

    // Another store cannot take it while this one holds it; once this one is deleted, it can.
    let other = service::create(&engine, &settings, "Other Shop", "woocommerce", None, "t")
        .await
        .unwrap();
    common::succeeded(&engine, other.run_id).await;
    let taken = service::domains(
        &engine,
        &settings,
        other.store.id,
        DomainChange::Add("www.example.org"),
        "t",
    )
    .await;
    assert!(
        matches!(&taken, Err(Error::DomainTaken(d)) if d == "www.example.org"),
        "{taken:?}"
    );
    let deletion = service::delete(&engine, id, "t").await.unwrap();
    common::succeeded(&engine, deletion.run_id).await;
    assert!(
        domains(&engine, id).await.is_empty(),
        "a deleted store frees its domains"
    );
    let run = started(
        service::domains(
            &engine,
            &settings,
            other.store.id,
            DomainChange::Add("www.example.org"),
            "t",
        )
        .await
        .unwrap(),
    );
    common::succeeded(&engine, run).await;
    assert_eq!(domains(&engine, other.store.id).await, ["www.example.org"]);
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}
