//! Declared definitions: a process that holds only a definition's shape (its steps declared,
//! no code) starts runs that a worker holding the implemented definition executes; a worker
//! given a declared-only definition refuses to start.

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Definition, Error, NewRun, Registry, RunStatus, Worker};

use crate::helpers::*;

#[derive(serde::Deserialize)]
#[allow(dead_code, reason = "deserialized only to check the input's shape")]
struct In {
    n: u32,
}

/// `shape@1`: steps `a` and `b`, declared only.
fn declared() -> Definition {
    Definition::builder("shape", 1)
        .input::<In>()
        .declare("a")
        .declare("b")
        .build()
        .unwrap()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_run_started_from_a_declaration_is_executed_by_a_worker_with_the_code(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = own_pool(connect).await;
    let starter = engine(&pool, vec![declared()]);
    let run = start(&starter, "shape", "s-1", json!({ "n": 1 })).await;
    let pending = starter.run(run).await.unwrap();
    let names: Vec<&str> = pending.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b"],
        "the run's steps come from the declaration"
    );

    let counter = Counter::default();
    let mut implemented = declared();
    for s in ["a", "b"] {
        let c = counter.clone();
        implemented = implemented
            .implement(s, move |ctx: urumi_engine::StepContext| {
                c.hit(&ctx.step);
                async { urumi_engine::StepOutcome::done(json!({})) }
            })
            .unwrap();
    }
    let runner = engine(&pool, vec![implemented]);
    let worker = start_worker(&pool, &runner, fast_options()).await;
    wait_status(&starter, run, RunStatus::Succeeded).await;
    worker.shutdown().await.unwrap();
    assert_eq!((counter.get("a"), counter.get("b")), (1, 1));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_declaration_checks_input_like_the_full_definition(pool: PgPool) {
    let starter = engine(&pool, vec![declared()]);
    let err = starter
        .start_run(NewRun::new("shape", "s-1", json!({ "n": "x" })))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    assert_eq!(count(&pool, "SELECT count(*) FROM urumi.runs").await, 0);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_refuses_a_definition_with_a_step_that_has_no_code(pool: PgPool) {
    let partly = declared().implement("a", |_| async {
        urumi_engine::StepOutcome::done(json!({}))
    });
    let registry = Registry::new([partly.unwrap()]).unwrap();
    let err = Worker::new(pool.clone(), registry, fast_options())
        .start()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidDefinition { name, .. } if name == "shape@1"),
        "{err}"
    );
    assert!(err.to_string().contains("missing: [\"b\"]"), "{err}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.workers").await,
        0,
        "a refused worker registers nothing"
    );
}
