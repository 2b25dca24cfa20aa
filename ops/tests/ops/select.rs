//! Selector → targets: each subject's newest run matching every field; store filters through
//! the store rows; empty selectors, bad steps and bad sizes refused with nothing written.

use chrono::Utc;
use sqlx::PgPool;
use urumi_engine::RunStatus;
use urumi_ops::{Action, Budget, Canary, CanaryThen, Error, Selector};
use uuid::Uuid;

use super::helpers::*;

async fn matched(w: &World, selector: Selector) -> usize {
    let mut spec = on_failed_jobs(Action::Retry);
    spec.selector = selector;
    w.ops.preview(&spec, "alice").await.unwrap().matched
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_selector_matches_each_subjects_newest_run_by_every_field(pool: PgPool) {
    let w = world(&pool);
    let failed = w.failed_runs(3).await; // s0, s1, s2: failed at `work`
    // s2 is retried by hand and succeeds: its newest run is no longer failed.
    w.health.set(true);
    let worker = w.worker().await;
    w.engine.retry_run(failed[2], "tester").await.unwrap();
    w.wait_run(failed[2], RunStatus::Succeeded).await;
    // s3 succeeded from the start.
    let ok = w.start(&["s3".to_owned()]).await;
    w.wait_run(ok[0], RunStatus::Succeeded).await;
    worker.shutdown().await.unwrap();

    let failed_jobs = Selector {
        status: Some(RunStatus::Failed),
        ..Selector::default()
    };
    assert_eq!(matched(&w, failed_jobs.clone()).await, 2, "s0 and s1");
    assert_eq!(
        matched(
            &w,
            Selector {
                failed_step: Some("work".into()),
                ..failed_jobs.clone()
            }
        )
        .await,
        2
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                failed_step: Some("prepare".into()),
                ..failed_jobs.clone()
            }
        )
        .await,
        0
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                error_contains: Some("UPSTREAM".into()),
                ..failed_jobs.clone()
            }
        )
        .await,
        2,
        "error text matches case-insensitively"
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                error_contains: Some("disk full".into()),
                ..failed_jobs.clone()
            }
        )
        .await,
        0
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                created_before: Some(Utc::now() - chrono::Duration::hours(1)),
                ..failed_jobs.clone()
            }
        )
        .await,
        0
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                created_after: Some(Utc::now() - chrono::Duration::hours(1)),
                ..failed_jobs.clone()
            }
        )
        .await,
        2
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                status: Some(RunStatus::Succeeded),
                ..Selector::default()
            }
        )
        .await,
        2,
        "s2's retried run and s3"
    );
    assert_eq!(
        matched(
            &w,
            Selector {
                all: true,
                ..Selector::default()
            }
        )
        .await,
        4
    );

    let mut spec = on_failed_jobs(Action::Retry);
    spec.selector = failed_jobs;
    let preview = w.ops.preview(&spec, "alice").await.unwrap();
    let shown: Vec<Uuid> = preview.targets.iter().map(|t| t.run_id).collect();
    assert_eq!(shown, vec![failed[0], failed[1]], "oldest first");
    assert_eq!(preview.targets[0].would, "resume job@1 at step work");
    assert_eq!(preview.targets[0].failed_step.as_deref(), Some("work"));
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn store_filters_select_runs_of_matching_live_stores(pool: PgPool) {
    let w = world(&pool);
    let mut ids = Vec::new();
    for (slug, plan, status) in [
        ("alpha", "small", "failed"),
        ("beta", "large", "failed"),
        ("gamma", "small", "deleted"),
    ] {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO urumi.stores (id, name, slug, engine, plan, status, created_by)
             VALUES ($1, $2, $2, 'woocommerce', $3, $4, 'tester')",
        )
        .bind(id)
        .bind(slug)
        .bind(plan)
        .bind(status)
        .execute(&pool)
        .await
        .unwrap();
        ids.push(id);
    }
    w.health.set(false);
    let subjects: Vec<String> = ids.iter().map(|id| format!("store:{id}")).collect();
    let runs = w.start(&subjects).await;
    let worker = w.worker().await;
    for r in &runs {
        w.wait_run(*r, RunStatus::Failed).await;
    }
    worker.shutdown().await.unwrap();

    let on = |s: Selector| Selector {
        status: Some(RunStatus::Failed),
        ..s
    };
    assert_eq!(
        matched(
            &w,
            on(Selector {
                plan: Some("small".into()),
                ..Selector::default()
            })
        )
        .await,
        1,
        "gamma is deleted"
    );
    assert_eq!(
        matched(
            &w,
            on(Selector {
                plan: Some("large".into()),
                ..Selector::default()
            })
        )
        .await,
        1
    );
    assert_eq!(
        matched(
            &w,
            on(Selector {
                engine: Some("woocommerce".into()),
                ..Selector::default()
            })
        )
        .await,
        2
    );
    assert_eq!(
        matched(
            &w,
            on(Selector {
                engine: Some("magento".into()),
                ..Selector::default()
            })
        )
        .await,
        0
    );
    assert_eq!(
        matched(
            &w,
            on(Selector {
                store_ids: Some(vec![ids[1], ids[2]]),
                ..Selector::default()
            })
        )
        .await,
        1
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn bad_requests_are_refused_and_start_nothing(pool: PgPool) {
    let w = world(&pool);
    w.failed_runs(2).await;
    let runs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.runs")
        .fetch_one(&pool)
        .await
        .unwrap();

    let field_of = |e: Error| match e {
        Error::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let mut empty = on_failed_jobs(Action::Retry);
    empty.selector = Selector::default();
    assert_eq!(
        field_of(w.ops.create(&empty, "a", "a").await.unwrap_err()),
        "/selector"
    );
    for n in [0, urumi_ops::MAX_CONCURRENCY + 1] {
        let mut s = on_failed_jobs(Action::Retry);
        s.max_concurrency = n;
        assert_eq!(
            field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
            "/max_concurrency"
        );
    }
    let mut s = on_failed_jobs(Action::Rerun);
    s.from_step = Some("nope".into());
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/from_step"
    );
    let mut s = on_failed_jobs(Action::Retry);
    s.from_step = Some("work".into());
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/from_step"
    );
    let mut s = on_failed_jobs(Action::Retry);
    s.selector.definition = Some("nosuch".into());
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/selector/definition"
    );
    let mut s = on_failed_jobs(Action::Retry);
    s.canary = Some(Canary {
        size: Budget::Count(0),
        then: CanaryThen::Pause,
    });
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/canary/size"
    );
    let mut s = on_failed_jobs(Action::Retry);
    s.failure_budget = Some(Budget::Percent(101));
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/failure_budget"
    );
    let mut s = on_failed_jobs(Action::Retry);
    s.selector.error_contains = Some("matches nothing".into());
    assert_eq!(
        field_of(w.ops.create(&s, "a", "a").await.unwrap_err()),
        "/selector"
    );

    let runs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    let ops: i64 = sqlx::query_scalar("SELECT count(*) FROM urumi.operations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((runs_after, ops), (runs_before, 0), "nothing was started");
}
