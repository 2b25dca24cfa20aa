//! The real-cluster end to end (k3d, see `scripts/setup-local.sh`): provision a store,
//! place a Cash-on-Delivery order through the WooCommerce Store API, delete the store.
//! Ignored by default: no Kubernetes cluster (nor Docker) can be had on the development and
//! CI machines. Run with `cargo test -p urumi-workflows --test real_cluster -- --ignored`
//! and `DATABASE_URL`, `KUBECONFIG` (k3d) and `URUMI_INGRESS` (default `127.0.0.1:8080`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use urumi_engine::{Engine, RunStatus, Worker, WorkerOptions};
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use urumi_workflows::{StoreDeps, registry};

/// A minimal HTTP/1.1 client: one request per connection, to the ingress with a Host header.
fn http(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, String, String) {
    let ingress = std::env::var("URUMI_INGRESS").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let mut stream = TcpStream::connect(&ingress).expect("connect to the ingress");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Store API bodies may come chunked; take the JSON between the first `{`/`[` and the last `}`/`]`.
/// Places a Cash-on-Delivery order of one `product_id` through the Store API; its order id.
fn place_order(host: &str, product_id: i64) -> i64 {
    let (status, head, _) = http("GET", host, "/?rest_route=/wc/store/v1/cart", &[], None);
    assert_eq!(status, 200);
    let nonce = header(&head, "Nonce").expect("a Nonce header");
    let token = header(&head, "Cart-Token").expect("a Cart-Token header");
    let auth = [("Nonce", nonce.as_str()), ("Cart-Token", token.as_str())];
    let (status, _, body) = http(
        "POST",
        host,
        "/?rest_route=/wc/store/v1/cart/add-item",
        &auth,
        Some(&json!({ "id": product_id, "quantity": 1 })),
    );
    assert!(status == 200 || status == 201, "{body}");
    let address = json!({
        "first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Analytical St", "city": "London",
        "state": "", "postcode": "N1 1AA", "country": "GB", "email": "ada@example.com", "phone": "0123456789"
    });
    let checkout =
        json!({ "billing_address": address, "shipping_address": address, "payment_method": "cod" });
    let (status, _, body) = http(
        "POST",
        host,
        "/?rest_route=/wc/store/v1/checkout",
        &auth,
        Some(&checkout),
    );
    assert_eq!(status, 200, "{body}");
    json_body(&body)["order_id"].as_i64().expect("an order id")
}

fn json_body(body: &str) -> Value {
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |i| i + 1);
    serde_json::from_str(&body[start..end]).unwrap_or(Value::Null)
}

#[tokio::test]
#[ignore = "needs a real cluster (k3d): see scripts/setup-local.sh"]
async fn a_real_store_takes_a_cash_on_delivery_order_and_is_deleted() {
    let pool = PgPoolOptions::new()
        .connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    urumi_migrations::MIGRATOR.run(&pool).await.unwrap();
    let client = kube::Client::try_default()
        .await
        .expect("a kubeconfig for the k3d cluster");
    // Two channels: `stable` as the defaults pin it, and `broken`, whose WooCommerce version
    // does not exist, so an upgrade to it fails in its update Job and is rolled back.
    let mut settings = StoreSettings::default();
    let stable = settings.channels()["stable"].clone();
    let mut broken = stable.clone();
    broken.version = "9999.1".into();
    broken.pins.woocommerce = "0.0.1".into();
    settings.channels = [("stable".to_owned(), stable), ("broken".to_owned(), broken)].into();
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: Some(client),
    });
    let registry = registry(Some(&deps)).unwrap();
    let engine = Engine::new(pool.clone(), registry.clone());
    let worker = Worker::new(pool.clone(), registry, WorkerOptions::default())
        .start()
        .await
        .unwrap();

    let name = format!("e2e {}", std::process::id());
    let created = service::create(&engine, &settings, &name, "woocommerce", None, "e2e")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1200);
    loop {
        let run = engine.run(created.run_id).await.unwrap();
        match run.run.status() {
            RunStatus::Succeeded => break,
            RunStatus::Failed => panic!("provisioning failed: {:?}", run.run.error),
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready in 20 minutes"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let host = format!("{}.{}", created.store.slug, settings.base_domain);

    // The Store API (`?rest_route=`: the setup keeps plain permalinks, under which `/wp-json/`
    // is not routed): find the seeded T-shirt, get a cart (and its Nonce), add it, check out
    // with COD.
    let (status, _, body) = http(
        "GET",
        &host,
        "/?rest_route=/wc/store/v1/products&sku=URUMI-TSHIRT",
        &[],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let product_id = json_body(&body)[0]["id"]
        .as_i64()
        .expect("the seeded product");
    let (status, head, _) = http("GET", &host, "/?rest_route=/wc/store/v1/cart", &[], None);
    assert_eq!(status, 200);
    let nonce = header(&head, "Nonce").expect("a Nonce header");
    let token = header(&head, "Cart-Token").expect("a Cart-Token header");
    let auth = [("Nonce", nonce.as_str()), ("Cart-Token", token.as_str())];
    let (status, _, body) = http(
        "POST",
        &host,
        "/?rest_route=/wc/store/v1/cart/add-item",
        &auth,
        Some(&json!({ "id": product_id, "quantity": 1 })),
    );
    assert!(status == 200 || status == 201, "{body}");
    let address = json!({
        "first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Analytical St", "city": "London",
        "state": "", "postcode": "N1 1AA", "country": "GB", "email": "ada@example.com", "phone": "0123456789"
    });
    let checkout =
        json!({ "billing_address": address, "shipping_address": address, "payment_method": "cod" });
    let (status, _, body) = http(
        "POST",
        &host,
        "/?rest_route=/wc/store/v1/checkout",
        &auth,
        Some(&checkout),
    );
    assert_eq!(status, 200, "{body}");
    let order = json_body(&body);
    assert!(order["order_id"].as_i64().unwrap_or(0) > 0, "{order}");
    assert_eq!(order["payment_method"], "cod");

    // Suspended: the storefront no longer serves the shop (the suspended page's 503 where
    // the chart's page and Traefik's ExternalName support are installed; the controller's own
    // answer for a backend without pods otherwise); resumed: the same shop, its data kept.
    let finished = |run: uuid::Uuid, what: &'static str| {
        let engine = engine.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(900);
            loop {
                let d = engine.run(run).await.unwrap();
                match d.run.status() {
                    RunStatus::Succeeded => break,
                    s if !s.is_active() => panic!("{what} ended as {s}: {:?}", d.run.error),
                    _ => {}
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what} took 15 minutes"
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    let product_path = "/?rest_route=/wc/store/v1/products&sku=URUMI-TSHIRT";
    match service::suspend(&engine, created.store.id, "e2e")
        .await
        .unwrap()
    {
        service::Lifecycle::Started(r) => finished(r.run_id, "the suspension").await,
        service::Lifecycle::Unchanged(_) => panic!("a ready store was not suspended"),
    }
    let (status, _, body) = http("GET", &host, product_path, &[], None);
    assert_ne!(
        status, 200,
        "a suspended store still serves its shop: {body}"
    );
    match service::resume(&engine, created.store.id, "e2e")
        .await
        .unwrap()
    {
        service::Lifecycle::Started(r) => finished(r.run_id, "the resumption").await,
        service::Lifecycle::Unchanged(_) => panic!("a suspended store was not resumed"),
    }
    let (status, _, body) = http("GET", &host, product_path, &[], None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_body(&body)[0]["id"].as_i64(),
        Some(product_id),
        "the same shop"
    );

    // Backup → restore: an order placed after the backup is undone by the restore — the next
    // order gets the id the undone one had (the orders table's AUTO_INCREMENT comes back
    // with the dump).
    let who = urumi_engine::Who::interactive("e2e");
    let mut tx = pool.begin().await.unwrap();
    let backup = service::backup_in(
        &mut tx,
        &engine,
        created.store.id,
        urumi_store::backups::BackupReason::Manual,
        &who,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    finished(backup.requested.run_id, "the backup").await;
    let after_backup = place_order(&host, product_id);
    let mut tx = pool.begin().await.unwrap();
    let restore = service::restore_in(&mut tx, &engine, created.store.id, backup.backup_id, &who)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    finished(restore.requested.run_id, "the restore").await;
    assert_eq!(
        place_order(&host, product_id),
        after_backup,
        "the order placed after the backup was undone by the restore"
    );

    // Upgrade → rollback: the `broken` channel's update Job fails; the run fails saying why,
    // after restoring the old pins and the pre-upgrade backup; the store is ready on its old
    // release and serves the same shop.
    let mut tx = pool.begin().await.unwrap();
    let upgrade = urumi_store::upgrades::upgrade_in(
        &mut tx,
        &engine,
        &settings,
        created.store.id,
        Some("broken"),
        &who,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let urumi_store::upgrades::Upgrade::Started { requested, .. } = upgrade else {
        panic!("the upgrade did not start");
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2400);
    let failed = loop {
        let d = engine.run(requested.run_id).await.unwrap();
        if !d.run.status().is_active() {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upgrade took 40 minutes"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    assert_eq!(failed.run.status(), RunStatus::Failed, "{failed:#?}");
    let why = failed.run.error.clone().unwrap_or_default();
    assert!(why.contains("rolled back"), "{why}");
    let store = urumi_store::db::get(&pool, created.store.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.status.as_str(), "ready");
    assert_ne!(
        store.version.as_deref(),
        Some("9999.1"),
        "still on the old release"
    );
    let (status, _, body) = http("GET", &host, product_path, &[], None);
    assert_eq!(status, 200, "{body}");

    let deleted = service::delete(&engine, created.store.id, "e2e")
        .await
        .unwrap();
    loop {
        let run = engine.run(deleted.run_id).await.unwrap();
        if run.run.status() == RunStatus::Succeeded {
            break;
        }
        assert!(
            run.run.status().is_active(),
            "deletion ended as {}",
            run.run.status()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    worker.shutdown().await.unwrap();
}
