//! `/api/v1/insights/steps` and `/api/v1/insights/runs`: real provisioning runs (finished
//! here by hand: the API runs no workers) read back per step and as a distribution, to any
//! role; bad windows and unknown definitions are refused.

use reqwest::Method;
use sqlx::PgPool;

use crate::helpers::{problem, spawn_app};

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn insights_read_finished_runs_per_step_and_as_a_distribution(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let empty = app.get("/api/v1/insights/steps").await;
    assert_eq!(empty.status(), 200);
    let empty: serde_json::Value = empty.json().await.unwrap();
    assert_eq!(empty["hours"], 24);
    assert_eq!(empty["items"], serde_json::json!([]));

    // Three stores; their provisioning runs end after 20, 40 and 90 seconds with every step
    // succeeded in 2 s, except the third run's first step: it took three attempts.
    for (i, secs) in [20, 40, 90].into_iter().enumerate() {
        let body = app.created(&format!("Insight Shop {i}")).await;
        let run: uuid::Uuid = body["run"]["id"].as_str().unwrap().parse().unwrap();
        sqlx::query(
            "UPDATE urumi.steps SET status = 'succeeded', started_at = now() - interval '2 seconds',
                 finished_at = now(), attempts = CASE WHEN $2 = 2 AND position = 0 THEN 3 ELSE 1 END,
                 last_error = CASE WHEN $2 = 2 AND position = 0 THEN 'the API server timed out' END
             WHERE run_id = $1",
        )
        .bind(run)
        .bind(i as i32)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE urumi.runs SET status = 'succeeded', started_at = created_at,
                 finished_at = created_at + $2 * interval '1 second' WHERE id = $1",
        )
        .bind(run)
        .bind(f64::from(secs))
        .execute(&pool)
        .await
        .unwrap();
    }

    for token in [&app.viewer, &app.operator, &app.admin] {
        let r = app
            .req(
                Method::GET,
                "/api/v1/insights/steps?definition=store.provision&hours=48",
                token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let steps: serde_json::Value = app
        .get("/api/v1/insights/steps?definition=store.provision&hours=48")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(steps["hours"], 48);
    let items = steps["items"].as_array().unwrap();
    let declared = sqlx::query_scalar::<_, i64>("SELECT count(DISTINCT name) FROM urumi.steps")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(items.len() as i64, declared, "one entry per step: {steps}");
    let first = &items[0];
    assert_eq!(first["definition"], "store.provision");
    assert_eq!(first["count"], 3);
    assert_eq!(first["failed"], 0);
    assert_eq!(first["failure_rate"], 0.0);
    assert_eq!(first["retries"], 2);
    assert_eq!(first["p50_ms"], 2000.0);
    assert_eq!(first["errors"][0]["error"], "the API server timed out");
    assert_eq!(first["errors"][0]["steps"], 1);
    assert_eq!(items[1]["retries"], 0);
    assert_eq!(items[1]["errors"], serde_json::json!([]));

    let runs: serde_json::Value = app
        .get("/api/v1/insights/runs?definition=store.provision")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["succeeded"], 3);
    assert_eq!(runs["failed"], 0);
    assert_eq!(runs["p50_ms"], 40_000.0);
    assert_eq!(runs["p99_ms"], 90_000.0);
    let buckets = runs["histogram"].as_array().unwrap();
    let nonzero: Vec<(f64, Option<f64>, i64)> = buckets
        .iter()
        .filter(|b| b["runs"].as_i64().unwrap() > 0)
        .map(|b| {
            (
                b["from_seconds"].as_f64().unwrap(),
                b["to_seconds"].as_f64(),
                b["runs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nonzero,
        [
            (15.0, Some(30.0), 1),
            (30.0, Some(60.0), 1),
            (60.0, Some(120.0), 1)
        ]
    );
    assert_eq!(
        buckets.last().unwrap()["to_seconds"],
        serde_json::Value::Null
    );

    // The fleet: every status counted (the stores stay `provisioning`: only their runs were
    // finished here), and the three runs in the hours they ended.
    let fleet: serde_json::Value = app
        .get("/api/v1/insights/fleet")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        fleet["stores"],
        serde_json::json!([
            { "status": "provisioning", "count": 3 }, { "status": "ready", "count": 0 },
            { "status": "failed", "count": 0 }, { "status": "suspended", "count": 0 },
            { "status": "deleting", "count": 0 },
            { "status": "deleted", "count": 0 },
        ])
    );
    let hours = fleet["runs_per_hour"].as_array().unwrap();
    assert!(!hours.is_empty() && hours.len() <= 2, "{fleet}");
    let ended: i64 = hours
        .iter()
        .inspect(|h| assert_eq!(h["definition"], "store.provision"))
        .map(|h| h["succeeded"].as_i64().unwrap())
        .sum();
    assert_eq!(ended, 3);

    // Another workflow that finished nothing: zero counts, no percentiles.
    let none: serde_json::Value = app
        .get("/api/v1/insights/runs?definition=store.delete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["succeeded"], 0);
    assert!(none.get("p50_ms").is_none(), "{none}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn insights_refuse_bad_windows_unknown_definitions_and_strangers(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in [
        "/api/v1/insights/steps?hours=0",
        "/api/v1/insights/steps?hours=721",
        "/api/v1/insights/steps?hours=a-week",
        "/api/v1/insights/runs?definition=store.provision&hours=100000",
        "/api/v1/insights/runs",
        "/api/v1/insights/fleet?hours=721",
    ] {
        problem(app.get(path).await, 400).await;
    }
    for path in [
        "/api/v1/insights/steps?definition=store.nope",
        "/api/v1/insights/runs?definition=store.nope",
    ] {
        let p = problem(app.get(path).await, 422).await;
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("store.nope") && detail.contains("store.provision"),
            "{p}"
        );
    }
    let r = app
        .req(Method::GET, "/api/v1/insights/steps", "")
        .send()
        .await
        .unwrap();
    problem(r, 401).await;
}
