//! End-to-end tests of real `urumi-worker` processes on a fresh database: SIGKILL takeover,
//! a failure point that aborts the process, and two processes sharing 1,000 runs.

mod common;

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun, RunStatus, StepStatus};
use uuid::Uuid;

use common::{WorkerProcess, free_port, url_for, wait_until};

async fn setup(connect: PgConnectOptions) -> (PgPool, Engine, String) {
    let url = url_for(&connect);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap();
    let engine = Engine::new(pool.clone(), urumi_workflows::registry(None).unwrap());
    (pool, engine, url)
}

async fn demo_run(engine: &Engine, subject: &str, work_ms: u64) -> Uuid {
    let input = json!({ "name": subject, "work_ms": work_ms });
    engine
        .start_run(NewRun::new("demo", subject, input).actor("test"))
        .await
        .unwrap()
        .run_id
}

/// Waits until the demo run's `work` step is running.
async fn work_started(engine: &Engine, run: Uuid) {
    wait_until(
        "the work step to start",
        Duration::from_secs(20),
        async || {
            let d = engine.run(run).await.unwrap();
            d.steps
                .iter()
                .any(|s| s.name == "work" && s.status() == StepStatus::Running)
        },
    )
    .await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_process_killed_mid_step_is_taken_over_by_another_after_the_lease(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (_pool, engine, url) = setup(connect).await;
    let victim = WorkerProcess::spawn(&url, None);
    let run = demo_run(&engine, "kill-me", 4000).await;
    work_started(&engine, run).await;
    let owner = engine.run(run).await.unwrap().run.lease_owner.unwrap();
    victim.kill();

    let rescuer = WorkerProcess::spawn(&url, None);
    wait_until("the run to succeed", Duration::from_secs(30), async || {
        engine.run(run).await.unwrap().run.status() == RunStatus::Succeeded
    })
    .await;
    let d = engine.run(run).await.unwrap();
    let attempts: Vec<(String, i32)> = d
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.attempts))
        .collect();
    assert_eq!(
        attempts,
        [
            ("greet".to_owned(), 1),
            ("work".to_owned(), 2),
            ("finish".to_owned(), 1)
        ],
        "only the interrupted step ran again"
    );
    let events = engine.events_for_run(run).await.unwrap();
    let expired = events
        .iter()
        .find(|e| e.kind == "run.lease_expired")
        .expect("a takeover event");
    assert_eq!(expired.detail["previous_owner"], json!(owner));
    let finisher = &events
        .iter()
        .rev()
        .find(|e| e.kind == "run.succeeded")
        .unwrap()
        .actor;
    assert_ne!(
        finisher, &owner,
        "another process (a new identity) finished the run"
    );
    rescuer.terminate();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_process_aborted_at_a_failure_point_is_recovered_without_rerunning_checkpointed_steps(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (_pool, engine, url) = setup(connect).await;
    let mut doomed = WorkerProcess::spawn(&url, Some("after_checkpoint_commit:greet"));
    let run = demo_run(&engine, "abort-me", 0).await;
    let status = doomed.exit_status(Duration::from_secs(20)).await;
    assert!(
        !status.success(),
        "the process aborted at the failure point"
    );
    let d = engine.run(run).await.unwrap();
    assert_eq!(
        d.run.status(),
        RunStatus::Running,
        "left leased by the dead process"
    );
    assert_eq!(
        d.steps[0].status(),
        StepStatus::Succeeded,
        "greet was checkpointed before the abort"
    );

    let rescuer = WorkerProcess::spawn(&url, None);
    wait_until("the run to succeed", Duration::from_secs(30), async || {
        engine.run(run).await.unwrap().run.status() == RunStatus::Succeeded
    })
    .await;
    let d = engine.run(run).await.unwrap();
    assert_eq!(d.steps[0].attempts, 1, "greet never ran again");
    assert_eq!(
        d.run.output.as_ref().unwrap()["greeting"],
        json!("hello, abort-me")
    );
    rescuer.terminate();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn two_worker_processes_share_1000_runs_and_without_faults_no_step_runs_twice(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (pool, engine, url) = setup(connect).await;
    // A production-like lease: with the 1.5 s lease of the takeover tests, a heartbeat
    // delayed by a loaded machine can (correctly) hand a live run to the other worker, and
    // then a step does run twice — at-least-once, not a fault of this test's subject.
    let a = WorkerProcess::spawn_with_lease(&url, None, 15_000);
    let b = WorkerProcess::spawn_with_lease(&url, None, 15_000);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..8 {
        let engine = engine.clone();
        tasks.spawn(async move {
            for i in 0..125 {
                demo_run(&engine, &format!("store-{chunk}-{i}"), 0).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    wait_until(
        "1,000 runs to succeed",
        Duration::from_secs(120),
        async || {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE status = 'succeeded'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            done == 1000
        },
    )
    .await;
    let (steps, not_once): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE attempts <> 1 OR status <> 'succeeded') FROM urumi.steps",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(steps, 3000);
    if not_once != 0 {
        let odd: Vec<(String, i32, String, Option<String>)> = sqlx::query_as(
            "SELECT name, attempts, status, last_error FROM urumi.steps
             WHERE attempts <> 1 OR status <> 'succeeded' LIMIT 5",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let kinds: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, count(*) FROM urumi.events WHERE kind NOT IN
             ('run.created', 'run.claimed', 'step.started', 'step.succeeded', 'run.succeeded')
             GROUP BY kind",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        panic!(
            "every step ran exactly once: {not_once} did not; e.g. {odd:?}; other events {kinds:?}"
        );
    }
    let workers: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT actor) FROM urumi.events WHERE kind = 'run.claimed'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(workers, 2, "both processes took a share");
    let takeovers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM urumi.events WHERE kind = 'run.lease_expired'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(takeovers, 0);
    a.terminate();
    b.terminate();
}

/// The value of metric `name` (no labels) in Prometheus text.
/// The sum of `name`'s samples whose labels include every one of `with` (`key="value"`).
fn metric(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let labels: Vec<&str> = labels.split(',').collect();
            with.iter()
                .all(|w| labels.contains(w))
                .then(|| value.trim().parse::<f64>().unwrap())
        })
        .sum()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_with_metrics_listen_serves_its_step_counters_and_health(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (pool, engine, url) = setup(connect).await;
    let port = free_port();
    let mut cmd = WorkerProcess::command(&url, None, 15_000);
    cmd.env("URUMI__WORKER__METRICS_LISTEN", format!("127.0.0.1:{port}"));
    let worker = WorkerProcess::start(cmd);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until("/healthz to answer", Duration::from_secs(20), async || {
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let scrape = async || {
        let r = http.get(format!("{base}/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    };
    let before = scrape().await;
    assert!(before.ends_with("# EOF\n"), "OpenMetrics text: {before}");
    assert_eq!(metric(&before, "urumi_step_attempts_ended_total", &[]), 0.0);
    for i in 0..5 {
        demo_run(&engine, &format!("metrics-{i}"), 0).await;
    }
    wait_until("5 runs to succeed", Duration::from_secs(60), async || {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM urumi.runs WHERE status = 'succeeded'")
                .fetch_one(&pool)
                .await
                .unwrap();
        done == 5
    })
    .await;
    let after = scrape().await;
    // The demo workflow has 3 steps; each step's attempts are counted under its own labels.
    let demo = ["definition=\"demo\"", "version=\"1\""];
    let succeeded = [&demo[..], &["outcome=\"succeeded\""]].concat();
    assert_eq!(
        metric(&after, "urumi_step_attempts_ended_total", &succeeded),
        15.0,
        "{after}"
    );
    for step in ["step=\"greet\"", "step=\"work\"", "step=\"finish\""] {
        let one = [&succeeded[..], &[step]].concat();
        assert_eq!(
            metric(&after, "urumi_step_attempts_ended_total", &one),
            5.0,
            "{step}: {after}"
        );
    }
    assert_eq!(
        metric(
            &after,
            "urumi_runs_ended_total",
            &[&demo[..], &["status=\"succeeded\""]].concat()
        ),
        5.0,
        "{after}"
    );
    assert_eq!(
        metric(&after, "urumi_step_duration_seconds_count", &demo),
        15.0,
        "{after}"
    );
    worker.terminate();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_worker_started_before_postgres_waits_for_it_then_serves(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (_pool, engine, url) = setup(connect.clone()).await;
    let real = format!("{}:{}", connect.get_host(), connect.get_port());
    assert!(url.contains(&real), "{url} names {real}");
    // The worker's database address answers nothing yet.
    let port = free_port();
    let late = url.replace(&real, &format!("127.0.0.1:{port}"));
    let mut worker = WorkerProcess::spawn(&late, None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        worker.running(),
        "the worker gave up on a database that is not up yet"
    );

    // Postgres "comes up" at that address: a TCP relay to the real server.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let target = real.clone();
    let relay = tokio::spawn(async move {
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            let real = target.clone();
            tokio::spawn(async move {
                let mut outbound = tokio::net::TcpStream::connect(real).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    let run = demo_run(&engine, "late-database", 0).await;
    wait_until("the run to succeed", Duration::from_secs(30), async || {
        engine.run(run).await.unwrap().run.status() == RunStatus::Succeeded
    })
    .await;
    // Stopped without blocking this (single-threaded) runtime: its shutdown talks to Postgres
    // through the relay, which runs here.
    worker.signal_term();
    let status = worker.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    relay.abort();

    // Told to stop while it waits, a worker exits cleanly and at once.
    let mut waiting = WorkerProcess::spawn(
        &url.replace(&real, &format!("127.0.0.1:{}", free_port())),
        None,
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(waiting.running());
    waiting.signal_term();
    let status = waiting.exit_status(Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn sigterm_mid_step_lets_the_step_finish_releases_the_run_and_exits_cleanly(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (pool, engine, url) = setup(connect).await;
    let mut worker = WorkerProcess::spawn(&url, None);
    let run = demo_run(&engine, "stop-me", 2500).await;
    work_started(&engine, run).await;
    // The apalis Monitor stops the worker: the step in flight finishes, the run is released
    // at that boundary (not left to its lease), the worker's row is marked stopped.
    worker.signal_term();
    let status = worker.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let d = engine.run(run).await.unwrap();
    let work = d.steps.iter().find(|s| s.name == "work").unwrap();
    assert_eq!(work.status(), StepStatus::Succeeded, "{d:#?}");
    assert!(
        matches!(d.run.status(), RunStatus::Queued | RunStatus::Waiting),
        "released, not running under a dead lease: {d:#?}"
    );
    assert!(d.run.lease_owner.is_none(), "{d:#?}");
    let events = engine.events_for_run(run).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "run.released"),
        "{events:#?}"
    );
    let stopped: i64 =
        sqlx::query_scalar("SELECT count(*) FROM urumi.workers WHERE stopped_at IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stopped, 1);

    // Another worker finishes it without running the finished step again.
    let mut rescuer = WorkerProcess::spawn(&url, None);
    wait_until("the run to succeed", Duration::from_secs(30), async || {
        engine.run(run).await.unwrap().run.status() == RunStatus::Succeeded
    })
    .await;
    let d = engine.run(run).await.unwrap();
    let work = d.steps.iter().find(|s| s.name == "work").unwrap();
    assert_eq!(work.attempts, 1, "the finished step never ran twice");
    rescuer.signal_term();
    assert!(rescuer.exit_status(Duration::from_secs(30)).await.success());
}
