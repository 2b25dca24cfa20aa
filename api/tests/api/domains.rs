//! Custom domains over HTTP: with a simulator-backed worker a domain's dry run plans the
//! Ingress change, the domain is added (202, a `store.domains` run, the store view lists it)
//! and removed; every bad request — an invalid
//! name, one under the platform's domain, one another store holds, a store at its limit, an
//! unknown store, a store not ready, a store with another active run (a domains run too),
//! removing a domain it does not have — is a problem naming the rule, and changes nothing: no run, no row.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};
use crate::operations::{cluster_worker, wait_for};

async fn add(app: &TestApp, store: &str, domain: &str, query: &str) -> reqwest::Response {
    app.req(
        Method::POST,
        &format!("/api/v1/stores/{store}/domains{query}"),
        &app.operator,
    )
    .json(&json!({ "domain": domain }))
    .send()
    .await
    .unwrap()
}

async fn remove(app: &TestApp, store: &str, domain: &str) -> reqwest::Response {
    app.req(
        Method::DELETE,
        &format!("/api/v1/stores/{store}/domains/{domain}"),
        &app.operator,
    )
    .send()
    .await
    .unwrap()
}

async fn rows(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT store_id::text, domain FROM urumi.store_domains ORDER BY domain")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// A store marked ready without a worker (its provisioning run cancelled first, so no run of
/// it is active); returns its id and slug.
async fn ready_store(app: &TestApp, name: &str) -> (String, String) {
    let body = app.created(name).await;
    let id = body["store"]["id"].as_str().unwrap().to_owned();
    let slug = body["store"]["slug"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap();
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{run}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    sqlx::query("UPDATE urumi.stores SET status = 'ready' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    (id, slug)
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_domain_requests_are_problems_that_change_nothing(pool: PgPool) {
    let app = spawn_app_with(pool.clone(), |s| s.api.plan_preview_wait_ms = 200).await;
    let (store, slug) = ready_store(&app, "Named Shop").await;
    let (other, _) = ready_store(&app, "Holding Shop").await;
    sqlx::query(
        "INSERT INTO urumi.store_domains (store_id, domain) VALUES ($1::uuid, 'held.example.com')",
    )
    .bind(&other)
    .execute(&pool)
    .await
    .unwrap();
    let before = rows(&pool).await;
    let runs = app.count("runs").await;
    let unchanged = |what: &'static str| {
        let (app, pool, before) = (&app, &pool, before.clone());
        async move {
            assert_eq!(app.count("runs").await, runs, "{what}: no run was started");
            assert_eq!(rows(pool).await, before, "{what}: no domain row changed");
        }
    };

    // Invalid names: 422 at /domain, the rule named.
    for (domain, rule) in [
        ("shop..example.com", "must be 1 to 63 characters"),
        ("*.example.com", "wildcard"),
        ("10.0.0.1", "IP address"),
        ("localhost", "at least two"),
        ("shop.example.123", "all digits"),
        ("shop.example.com.", "trailing dot"),
        ("shop_1.example.com", "may hold only"),
        ("-shop.example.com", "must not start or end with '-'"),
        ("stores.localhost", "platform's domain"),
        ("another.stores.localhost", "platform's domain"),
    ] {
        let p = problem(add(&app, &store, domain, "").await, 422).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(rule), "{domain}: {detail}");
        assert_eq!(p["errors"][0]["field"], "/domain", "{p}");
        unchanged("an invalid domain").await;
    }
    // Too long for the body's own limit: the schema's 422 (or 400) before any check.
    let long = format!("{}.com", "a".repeat(260));
    let r = add(&app, &store, &long, "").await;
    assert!(r.status() == 400 || r.status() == 422, "{}", r.status());
    unchanged("an over-long domain").await;

    // Another store's domain: 409, in any case.
    let p = problem(add(&app, &store, "HELD.example.com", "").await, 409).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("taken by another store"),
        "{p}"
    );
    unchanged("a taken domain").await;
    // The dry run applies the same checks.
    problem(
        add(&app, &store, "held.example.com", "?dry_run=true").await,
        409,
    )
    .await;
    unchanged("a taken domain's dry run").await;

    // An unknown store: 404; a viewer may not: 403.
    let unknown = uuid::Uuid::now_v7().to_string();
    problem(add(&app, &unknown, "shop.example.com", "").await, 404).await;
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/stores/{store}/domains"),
            &app.viewer,
        )
        .json(&json!({ "domain": "shop.example.com" }))
        .send()
        .await
        .unwrap();
    problem(r, 403).await;
    // Removing a domain the store does not have (or another store's): 404.
    problem(remove(&app, &store, "shop.example.com").await, 404).await;
    problem(remove(&app, &store, "held.example.com").await, 404).await;
    unchanged("unknown store, viewer, removing what is not there").await;

    // The store's own host: nothing to add.
    let r = add(&app, &store, &format!("{slug}.stores.localhost"), "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["not_started"], "already");
    unchanged("the own host").await;

    // A store that is not ready: 409 naming its status.
    let young = app.created("Young Shop").await;
    let young_id = young["store"]["id"].as_str().unwrap().to_owned();
    let runs_now = app.count("runs").await;
    let p = problem(add(&app, &young_id, "young.example.com", "").await, 409).await;
    assert!(
        p["detail"].as_str().unwrap().contains("is provisioning"),
        "{p}"
    );
    assert_eq!(app.count("runs").await, runs_now);
    assert_eq!(rows(&pool).await, before);

    // Another run of the store is active: 409 naming it, and the row is not kept.
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/stores/{store}/repair"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let repair: Value = r.json().await.unwrap();
    let repair_run = repair["run"]["id"].as_str().unwrap();
    let runs_now = app.count("runs").await;
    let p = problem(add(&app, &store, "busy.example.com", "").await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains(repair_run), "{p}");
    assert_eq!(app.count("runs").await, runs_now);
    assert_eq!(rows(&pool).await, before);
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{repair_run}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // A domains run under way: another domain change is 409 naming that run (it is not
    // answered with it, as a repeated suspend would be: it applies another change).
    let r = add(&app, &store, "first.example.com", "").await;
    assert_eq!(r.status(), 202);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["run"]["kind"], "store.domains");
    let first_run = first["run"]["id"].as_str().unwrap().to_owned();
    let (rows_now, runs_now) = (rows(&pool).await, app.count("runs").await);
    let p = problem(add(&app, &store, "second.example.com", "").await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains(&first_run), "{p}");
    let p = problem(remove(&app, &store, "first.example.com").await, 409).await;
    assert!(p["detail"].as_str().unwrap().contains(&first_run), "{p}");
    assert_eq!(app.count("runs").await, runs_now);
    assert_eq!(rows(&pool).await, rows_now);
    let r = app
        .req(
            Method::POST,
            &format!("/api/v1/runs/{first_run}/cancel"),
            &app.operator,
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // At its limit of 10 domains (first.example.com and 9 more): 422.
    for n in 0..9 {
        sqlx::query("INSERT INTO urumi.store_domains (store_id, domain) VALUES ($1::uuid, $2)")
            .bind(&store)
            .bind(format!("d{n}.example.com"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let runs_now = app.count("runs").await;
    let full = rows(&pool).await;
    let p = problem(add(&app, &store, "eleventh.example.com", "").await, 422).await;
    assert!(
        p["detail"].as_str().unwrap().contains("10 custom domains"),
        "{p}"
    );
    assert_eq!(app.count("runs").await, runs_now);
    assert_eq!(rows(&pool).await, full);

    // A valid dry run (a store with room): checked, no row written, only the preview run
    // started (no worker here: its plan is pending).
    let (roomy, _) = ready_store(&app, "Roomy Shop").await;
    let runs_now = app.count("runs").await;
    let r = add(&app, &roomy, "roomy.example.com", "?dry_run=true").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "dry_run", "{body:#}");
    assert_eq!(body["cluster_plan"]["state"], "pending", "{body:#}");
    assert_eq!(body["store"]["domains"], json!([]));
    assert_eq!(
        app.count("runs").await,
        runs_now + 1,
        "only the preview run"
    );
    assert_eq!(rows(&pool).await, full);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_domain_is_added_and_removed_by_store_domains_runs(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let worker = cluster_worker(&pool, &sim).await;
    let body = app.created("Branded Shop").await;
    let store = body["store"]["id"].as_str().unwrap().to_owned();
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;

    // The dry run: a worker's plan renders the Ingress with the domain; nothing written.
    let r = add(&app, &store, "shop.branded.example", "?dry_run=true").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["not_started"], "dry_run", "{body:#}");
    assert_eq!(body["cluster_plan"]["state"], "ready", "{body:#}");
    let changed: Vec<String> = body["plan"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["change"] != "unchanged")
        .map(|o| {
            format!(
                "{} {}/{}",
                o["change"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(changed, ["update Ingress/wordpress"], "{body:#}");
    assert!(rows(&pool).await.is_empty());

    let r = add(&app, &store, "Shop.Branded.example", "").await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run"]["kind"], "store.domains", "{body:#}");
    assert_eq!(body["store"]["domains"], json!(["shop.branded.example"]));
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    let shown: Value = app
        .get(&format!("/api/v1/stores/{store}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["domains"], json!(["shop.branded.example"]));
    assert_eq!(shown["status"], "ready");
    // Again: already there, nothing started.
    let r = add(&app, &store, "shop.branded.example", "").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["not_started"], "already");

    let r = remove(&app, &store, "SHOP.branded.example").await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    let run = body["run"]["id"].as_str().unwrap();
    wait_for(&app, &format!("/api/v1/runs/{run}"), "status", "succeeded").await;
    assert!(rows(&pool).await.is_empty());
    let audit: Value = app
        .get(&format!("/api/v1/audit?store_id={store}"))
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"store.domain_add_requested")
            && kinds.contains(&"store.domain_remove_requested"),
        "{kinds:?}"
    );
    worker.shutdown().await.unwrap();
    sim.shutdown().await;
}
