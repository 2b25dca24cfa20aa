//! Fixtures: counting steps, fast worker options, and waiting on conditions (never clocks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use urumi_engine::{
    Definition, DefinitionBuilder, Engine, NewRun, Registry, RunDetail, RunStatus, StepContext,
    StepError, StepOutcome, Worker, WorkerHandle, WorkerOptions,
};
use uuid::Uuid;

/// Counts how many times each step's code ran.
#[derive(Clone, Default)]
pub struct Counter(Arc<Mutex<HashMap<String, usize>>>);

impl Counter {
    pub fn hit(&self, step: &str) -> usize {
        let mut m = self.0.lock().unwrap();
        let n = m.entry(step.to_owned()).or_default();
        *n += 1;
        *n
    }
    pub fn get(&self, step: &str) -> usize {
        self.0.lock().unwrap().get(step).copied().unwrap_or(0)
    }
}

/// A step behaviour: given the context and how often this step ran in this process, decide.
pub type Behaviour =
    Arc<dyn Fn(&StepContext, usize) -> Result<StepOutcome, StepError> + Send + Sync>;

pub fn done() -> Behaviour {
    Arc::new(|ctx, _| StepOutcome::done(json!({ "step": ctx.step })))
}

/// Adds a step that counts its executions in `counter` and then behaves as `b`.
pub fn counted(
    builder: DefinitionBuilder,
    name: &str,
    counter: &Counter,
    b: Behaviour,
) -> DefinitionBuilder {
    let counter = counter.clone();
    builder.step(name, move |ctx: StepContext| {
        let n = counter.hit(&ctx.step);
        let out = b(&ctx, n);
        async move { out }
    })
}

/// A definition `name@1` whose steps `a`, `b`, `c` just count and succeed.
pub fn three_steps(name: &str, counter: &Counter) -> Definition {
    let mut b = Definition::builder(name, 1);
    for s in ["a", "b", "c"] {
        b = counted(b, s, counter, done());
    }
    b.build().unwrap()
}

pub fn fast_options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 4,
        lease: Duration::from_millis(1200),
        poll_interval: Duration::from_millis(50),
        sweep_interval: Duration::from_millis(200),
        unserved_grace: Duration::from_secs(300),
        shutdown_grace: Duration::from_secs(10),
        name: "test".into(),
        ..WorkerOptions::default()
    }
}

pub fn engine(pool: &PgPool, defs: Vec<Definition>) -> Engine {
    Engine::new(pool.clone(), Registry::new(defs).unwrap())
}

pub async fn start_worker(pool: &PgPool, engine: &Engine, options: WorkerOptions) -> WorkerHandle {
    Worker::new(pool.clone(), engine.registry().clone(), options)
        .start()
        .await
        .unwrap()
}

pub async fn start(engine: &Engine, def: &str, subject: &str, input: Value) -> Uuid {
    engine
        .start_run(NewRun::new(def, subject, input).actor("tester"))
        .await
        .unwrap()
        .run_id
}

/// Polls until `cond` holds for the run, or panics after `within`.
pub async fn wait_for(
    engine: &Engine,
    run: Uuid,
    within: Duration,
    what: &str,
    cond: impl Fn(&RunDetail) -> bool,
) -> RunDetail {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let d = engine.run(run).await.unwrap();
        if cond(&d) {
            return d;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "run {run} never reached {what} within {within:?}; it is {:#?}",
                d
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_status(engine: &Engine, run: Uuid, status: RunStatus) -> RunDetail {
    wait_for(engine, run, Duration::from_secs(20), status.as_str(), |d| {
        d.run.status() == status
    })
    .await
}

pub fn step<'a>(d: &'a RunDetail, name: &str) -> &'a urumi_engine::StepRecord {
    d.steps.iter().find(|s| s.name == name).unwrap()
}

pub async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// A pool of its own for the test's fresh database. `#[sqlx::test]`'s own pools share a
/// 20-connection parent and cap each test at 5, too few for workers that keep a LISTEN
/// connection and a transaction per slot.
pub async fn own_pool(connect: sqlx::postgres::PgConnectOptions) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect)
        .await
        .unwrap()
}

/// The events that started `step` (an attempt, not a poll): its own `step.started`, or the
/// event of the commit that started it with another change — `run.claimed` (a fresh run's
/// first step) or the previous step's `step.succeeded` (`next`).
pub fn starts_of<'a>(
    events: &'a [urumi_engine::Event],
    step: &str,
) -> Vec<&'a urumi_engine::Event> {
    events
        .iter()
        .filter(|e| match e.kind.as_str() {
            "step.started" | "run.claimed" => e.step.as_deref() == Some(step),
            "step.succeeded" => e.detail.get("next").and_then(Value::as_str) == Some(step),
            _ => false,
        })
        .collect()
}
