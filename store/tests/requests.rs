//! Store requests on the declared store workflows (no step code, no cluster): a create
//! writes the store row and its run with the declared steps in one commit; a refused one
//! writes nothing; a delete supersedes provisioning and marks the store deleting.

use sqlx::PgPool;
use urumi_engine::{Engine, RunStatus};
use urumi_store::service::{self, Error};
use urumi_store::settings::StoreSettings;
use urumi_store::status::StoreStatus;
use urumi_store::{definitions, registry};

fn engine(pool: &PgPool) -> Engine {
    Engine::new(pool.clone(), registry().unwrap())
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_create_writes_the_store_and_a_run_of_the_declared_provision_steps(pool: PgPool) {
    let engine = engine(&pool);
    let settings = StoreSettings::default();
    let created = service::create(&engine, &settings, "Bob's Bikes", "woocommerce", None, "t")
        .await
        .unwrap();
    assert_eq!(created.store.slug, "bob-s-bikes");
    assert_eq!(created.store.status, StoreStatus::Provisioning);
    assert_eq!(created.store.plan, settings.default_plan);
    let run = engine.run(created.run_id).await.unwrap();
    assert_eq!(run.run.status(), RunStatus::Queued);
    assert_eq!(
        run.run.subject,
        urumi_store::subject::subject(created.store.id)
    );
    let declared = registry()
        .unwrap()
        .get(definitions::PROVISION, None)
        .unwrap();
    let steps: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    let want: Vec<&str> = declared.steps().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, want);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_refused_create_writes_nothing(pool: PgPool) {
    let engine = engine(&pool);
    let settings = StoreSettings::default();
    let err = service::create(&engine, &settings, "Good Name", "magento", None, "t")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownEngine(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "unknown engine \"magento\"; known engines: woocommerce"
    );
    let err = service::create(
        &engine,
        &settings,
        "Good Name",
        "woocommerce",
        Some("gold"),
        "t",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnknownPlan(_)), "{err}");
    assert_eq!(count(&pool, "SELECT count(*) FROM urumi.stores").await, 0);
    assert_eq!(count(&pool, "SELECT count(*) FROM urumi.runs").await, 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_delete_supersedes_provisioning_and_marks_the_store_deleting(pool: PgPool) {
    let engine = engine(&pool);
    let settings = StoreSettings::default();
    let created = service::create(&engine, &settings, "Short Lived", "woocommerce", None, "t")
        .await
        .unwrap();
    let deleted = service::delete(&engine, created.store.id, "t")
        .await
        .unwrap();
    assert_eq!(deleted.store.status, StoreStatus::Deleting);
    let provision = engine.run(created.run_id).await.unwrap();
    assert_eq!(
        provision.run.status(),
        RunStatus::Cancelled,
        "a queued provisioning run no worker holds is cancelled at once"
    );
    let delete = engine.run(deleted.run_id).await.unwrap();
    assert_eq!(delete.run.definition, definitions::DELETE);
}
