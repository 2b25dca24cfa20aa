//! A small world: a workflow `job@1` whose one step fails while `healthy` is false (or for
//! subjects listed in `broken`), operations over it, and workers that run both.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use urumi_engine::{
    Definition, Engine, NewRun, Registry, RunStatus, StepContext, StepError, StepOutcome, Worker,
    WorkerHandle, WorkerOptions,
};
use urumi_ops::{Operation, OperationState, Ops, Selector, Spec};
use uuid::Uuid;

#[derive(Clone, Default)]
pub struct Health {
    pub healthy: Arc<AtomicBool>,
    pub broken: Arc<Mutex<HashSet<String>>>,
}

impl Health {
    pub fn set(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }
    fn ok(&self, subject: &str) -> bool {
        self.healthy.load(Ordering::SeqCst) && !self.broken.lock().unwrap().contains(subject)
    }
}

fn job(health: &Health) -> Definition {
    let health = health.clone();
    Definition::builder("job", 1)
        .step("prepare", |_ctx: StepContext| async {
            StepOutcome::done(json!({}))
        })
        .step("work", move |ctx: StepContext| {
            let ok = health.ok(&ctx.subject);
            async move {
                if ok {
                    StepOutcome::done(json!({ "subject": ctx.subject }))
                } else {
                    Err(StepError::fatal("boom: upstream down"))
                }
            }
        })
        .build()
        .unwrap()
}

pub struct World {
    pub pool: PgPool,
    pub engine: Engine,
    pub ops: Ops,
    pub health: Health,
    registry: Registry,
}

pub async fn own_pool(connect: sqlx::postgres::PgConnectOptions) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect)
        .await
        .unwrap()
}

pub fn world(pool: &PgPool) -> World {
    let health = Health::default();
    let base = Registry::new([job(&health)]).unwrap();
    let registry = urumi_ops::with_code(pool.clone(), &base, Default::default()).unwrap();
    let engine = Engine::new(pool.clone(), registry.clone());
    World {
        pool: pool.clone(),
        ops: Ops::new(engine.clone(), Default::default()),
        engine,
        health,
        registry,
    }
}

pub fn options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 8,
        lease: Duration::from_millis(1200),
        poll_interval: Duration::from_millis(50),
        sweep_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(10),
        name: "ops-test".into(),
        ..WorkerOptions::default()
    }
}

impl World {
    pub async fn worker(&self) -> WorkerHandle {
        Worker::new(self.pool.clone(), self.registry.clone(), options())
            .start()
            .await
            .unwrap()
    }

    /// Starts a run of `job` for each subject.
    pub async fn start(&self, subjects: &[String]) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for s in subjects {
            ids.push(
                self.engine
                    .start_run(NewRun::new("job", s, json!({})).actor("tester"))
                    .await
                    .unwrap()
                    .run_id,
            );
        }
        ids
    }

    /// `n` failed runs of `job` (subjects `s0`…), their step `work` failed.
    pub async fn failed_runs(&self, n: usize) -> Vec<Uuid> {
        self.health.set(false);
        let subjects: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let ids = self.start(&subjects).await;
        let w = self.worker().await;
        for id in &ids {
            self.wait_run(*id, RunStatus::Failed).await;
        }
        w.shutdown().await.unwrap();
        ids
    }

    /// `n` more failed runs of `job` (subjects `t0`…), with a worker already running.
    pub async fn failed_runs_after(&self, n: usize) -> Vec<Uuid> {
        self.health.set(false);
        let subjects: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let ids = self.start(&subjects).await;
        for id in &ids {
            self.wait_run(*id, RunStatus::Failed).await;
        }
        ids
    }

    pub async fn wait_run(&self, id: Uuid, status: RunStatus) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.engine.run(id).await.unwrap().run.status();
            if now == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} is {now}, never {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the operation satisfies `cond`.
    pub async fn wait_op(
        &self,
        id: Uuid,
        what: &str,
        cond: impl Fn(&Operation) -> bool,
    ) -> Operation {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let op = self.ops.get(id).await.unwrap();
            if cond(&op) {
                return op;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "operation never reached {what}: {op:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_state(&self, id: Uuid, state: OperationState) -> Operation {
        self.wait_op(id, state.as_str(), |o| o.state == state).await
    }
}

/// A spec acting on every failed run of `job`.
pub fn on_failed_jobs(action: urumi_ops::Action) -> Spec {
    Spec {
        action,
        from_step: None,
        plan: None,
        channel: None,
        selector: Selector {
            status: Some(RunStatus::Failed),
            definition: Some("job".into()),
            ..Selector::default()
        },
        max_concurrency: 10,
        canary: None,
        failure_budget: None,
    }
}
