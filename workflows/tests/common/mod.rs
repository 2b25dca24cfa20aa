//! What the store-workflow tests share: the store workflows on a real engine `Worker` whose
//! kube client is the one given (the simulator's admin, or a ServiceAccount's token).

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use sqlx::PgPool;
use urumi_engine::{Engine, Worker, WorkerHandle, WorkerOptions};
use urumi_workflows::store::settings::StoreSettings;
use urumi_workflows::{StoreDeps, registry};

/// The engine and a started worker serving the store workflows with `client`, quick to poll
/// and sweep.
pub async fn store_worker(
    pool: &PgPool,
    client: Client,
    settings: &StoreSettings,
    name: &str,
) -> (Engine, WorkerHandle) {
    let deps = Arc::new(StoreDeps {
        settings: settings.clone(),
        pool: pool.clone(),
        client: Some(client),
    });
    let registry = registry(Some(&deps)).unwrap();
    let engine = Engine::new(pool.clone(), registry.clone());
    let options = WorkerOptions {
        concurrency: 8,
        lease: Duration::from_secs(5),
        poll_interval: Duration::from_millis(50),
        sweep_interval: Duration::from_millis(500),
        name: name.into(),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(pool.clone(), registry, options)
        .start()
        .await
        .unwrap();
    (engine, worker)
}
