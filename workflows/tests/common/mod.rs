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

/// A fresh pool, a simulator, a kube client to it and a started store worker.
#[allow(
    dead_code,
    reason = "shared by several test binaries; each uses a part"
)]
pub struct SimRig {
    pub pool: PgPool,
    pub sim: urumi_sim::SimHandle,
    pub client: Client,
    pub settings: StoreSettings,
    pub engine: Engine,
    pub worker: WorkerHandle,
}

/// [`SimRig`] on the test's database.
#[allow(
    dead_code,
    reason = "shared by several test binaries; each uses a part"
)]
pub async fn sim_rig(connect: sqlx::postgres::PgConnectOptions, name: &str) -> SimRig {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = urumi_sim::Simulator::builder().start().await.unwrap();
    let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    let settings = StoreSettings::default();
    let (engine, worker) = store_worker(&pool, client.clone(), &settings, name).await;
    SimRig {
        pool,
        sim,
        client,
        settings,
        engine,
        worker,
    }
}

impl SimRig {
    /// Stops the worker and the simulator.
    #[allow(
        dead_code,
        reason = "shared by several test binaries; each uses a part"
    )]
    pub async fn stop(self) {
        self.worker.shutdown().await.unwrap();
        self.sim.shutdown().await;
    }
}

/// Waits (90 s at most) for `run` to end and asserts it succeeded.
#[allow(
    dead_code,
    reason = "shared by several test binaries; each uses a part"
)]
pub async fn succeeded(engine: &Engine, run: uuid::Uuid) -> urumi_engine::RunDetail {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let d = engine.run(run).await.unwrap();
        if !d.run.status().is_active() {
            assert_eq!(d.run.status(), urumi_engine::RunStatus::Succeeded, "{d:#?}");
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run never ended: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
