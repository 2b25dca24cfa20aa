//! Priority lanes and owners: interactive runs are claimed before due bulk runs, bulk runs
//! take turns across owners, and bulk runs never hold every slot of a worker.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::Semaphore;
use urumi_engine::{
    Definition, Engine, Lane, NewRun, RunStatus, StepContext, StepOutcome, WorkerOptions,
};
use uuid::Uuid;

use super::helpers::*;

async fn start_in(engine: &Engine, def: &str, subject: &str, lane: Lane, owner: &str) -> Uuid {
    engine
        .start_run(
            NewRun::new(def, subject, json!({}))
                .actor("tester")
                .lane(lane)
                .owner(owner),
        )
        .await
        .unwrap()
        .run_id
}

/// The runs in the order a worker claimed them (their `run.claimed` events).
async fn claim_order(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT run_id FROM urumi.events WHERE kind = 'run.claimed' ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn wait_all_succeeded(engine: &Engine, runs: &[Uuid]) {
    for r in runs {
        wait_status(engine, *r, RunStatus::Succeeded).await;
    }
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_interactive_run_is_claimed_before_older_due_bulk_runs(
    _p: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("d", &counter)]);
    let mut bulk = Vec::new();
    for i in 0..20 {
        bulk.push(start_in(&engine, "d", &format!("b{i}"), Lane::Bulk, "ops").await);
    }
    let scheduled = start_in(&engine, "d", "s", Lane::Scheduled, "cron").await;
    let customer = start_in(&engine, "d", "c", Lane::Interactive, "alice").await;
    // One slot: each claim takes the single most urgent due run.
    let handle = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 1,
            ..fast_options()
        },
    )
    .await;
    wait_all_succeeded(&engine, &bulk).await;
    let order = claim_order(&pool).await;
    assert_eq!(order[0], customer, "the interactive run is claimed first");
    assert_eq!(
        order[1], scheduled,
        "then the scheduled one, before any bulk run"
    );
    assert_eq!(
        &order[2..],
        &bulk[..],
        "bulk runs of one owner in wake order"
    );
    handle.shutdown().await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bulk_runs_take_turns_across_owners(_p: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let counter = Counter::default();
    let engine = engine(&pool, vec![three_steps("d", &counter)]);
    // Alice's ten runs are all due before Bob's: a single wake order would run all of hers
    // first.
    let mut alice = Vec::new();
    for i in 0..10 {
        alice.push(start_in(&engine, "d", &format!("a{i}"), Lane::Bulk, "alice").await);
    }
    let mut bob = Vec::new();
    for i in 0..10 {
        bob.push(start_in(&engine, "d", &format!("b{i}"), Lane::Bulk, "bob").await);
    }
    let handle = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 1,
            ..fast_options()
        },
    )
    .await;
    wait_all_succeeded(&engine, &alice).await;
    wait_all_succeeded(&engine, &bob).await;
    let order = claim_order(&pool).await;
    let expected: Vec<Uuid> = alice.iter().zip(&bob).flat_map(|(a, b)| [*a, *b]).collect();
    assert_eq!(order, expected, "one run of each owner in turn");
    handle.shutdown().await.unwrap();
}

/// A definition whose one step holds until `gate` gives it a permit.
fn gated(name: &str, gate: &Arc<Semaphore>) -> Definition {
    let gate = gate.clone();
    Definition::builder(name, 1)
        .step("hold", move |_ctx: StepContext| {
            let gate = gate.clone();
            async move {
                gate.acquire().await.expect("gate open").forget();
                StepOutcome::done(json!({}))
            }
        })
        .build()
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bulk_runs_never_hold_every_slot(_p: PgPoolOptions, connect: PgConnectOptions) {
    let pool = own_pool(connect).await;
    let gate = Arc::new(Semaphore::new(0));
    let counter = Counter::default();
    let engine = engine(
        &pool,
        vec![gated("slow", &gate), three_steps("quick", &counter)],
    );
    let mut bulk = Vec::new();
    for i in 0..10 {
        bulk.push(start_in(&engine, "slow", &format!("b{i}"), Lane::Bulk, "ops").await);
    }
    // 4 slots, half of them for bulk runs.
    let handle = start_worker(
        &pool,
        &engine,
        WorkerOptions {
            concurrency: 4,
            bulk_share_percent: 50,
            ..fast_options()
        },
    )
    .await;
    let running = || async {
        count(
            &pool,
            "SELECT count(*) FROM urumi.runs WHERE definition = 'slow' AND status = 'running'",
        )
        .await
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while running().await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two bulk runs never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every bulk slot is held and eight bulk runs are due; a customer's run still starts and
    // finishes on the slots kept free.
    let customer = start_in(&engine, "quick", "c", Lane::Interactive, "alice").await;
    wait_status(&engine, customer, RunStatus::Succeeded).await;
    assert_eq!(running().await, 2, "bulk runs held at most their two slots");
    gate.add_permits(10);
    wait_all_succeeded(&engine, &bulk).await;
    handle.shutdown().await.unwrap();
}
