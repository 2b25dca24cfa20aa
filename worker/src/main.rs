//! `urumi-worker`: the worker process, plus small commands for operators and the local demo.
//!
//! ```text
//! urumi-worker [run]                          run workflow steps until SIGINT/SIGTERM
//! urumi-worker migrate                        apply the schema migrations and exit
//! urumi-worker start <workflow> <subject> [input-json]   start a run, print its id
//! urumi-worker show <run-id>                  print a run with its steps as JSON
//! urumi-worker watch <run-id>                 print the run's events until it ends
//! ```
//! Stores are created, deleted and repaired through the API (`urumictl`), which checks the
//! caller's role, caps and rate limits and records the action in the audit log.
//! Settings: see `settings.rs` (`URUMI__SECTION__KEY`, `DATABASE_URL`, `URUMI_CONFIG`).
//! `URUMI_FAILPOINT=point:step` makes the process abort at a named failure point (tests).

mod observe;
mod settings;
mod startup;

use std::time::Duration;

use std::sync::Arc;

use anyhow::{Context, bail};
use urumi_engine::{Engine, FailPoints, NewRun, Worker, parse_input};
use urumi_workflows::StoreDeps;
use uuid::Uuid;

use crate::settings::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load().map_err(anyhow::Error::msg)?;
    // Kept until `main` returns: dropping it flushes the spans still buffered.
    let _telemetry =
        urumi_process::telemetry::init(&settings.log, &settings.traces, "urumi-worker")
            .map_err(anyhow::Error::msg)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let running_worker = matches!(args.first().map(String::as_str), None | Some("run"));
    // A running worker waits for Postgres (and has migrated once it has it); the one-shot
    // commands fail at once.
    let pool = if running_worker {
        match startup::connect_patiently(&settings).await? {
            Some(pool) => pool,
            None => return Ok(()),
        }
    } else {
        startup::connect(&settings).await?
    };
    let client = if settings.cluster.enabled && running_worker {
        match kube_client(&settings.cluster.kubeconfig).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "no Kubernetes cluster: this worker does not serve the store workflows");
                None
            }
        }
    } else {
        None
    };
    // Processes that only start runs still know the store definitions (without a cluster).
    let deps = Arc::new(StoreDeps {
        settings: settings.stores.clone(),
        pool: pool.clone(),
        client: client.clone(),
    });
    let registry =
        urumi_workflows::registry((client.is_some() || !running_worker).then_some(&deps))
            .context("loading workflow definitions")?;
    // Bulk operations' parent runs act on runs of every definition above.
    let registry = urumi_ops::with_code(pool.clone(), &registry, Arc::new(settings.stores.clone()))
        .context("loading the operation workflow")?;
    let engine = Engine::new(pool.clone(), registry.clone());

    match args.first().map(String::as_str) {
        None | Some("run") => {
            let mut options = settings.worker_options();
            for s in &settings.schedules {
                registry.get(&s.definition, None).with_context(|| {
                    format!(
                        "schedules: {:?} starts a workflow this worker does not know",
                        s.name
                    )
                })?;
            }
            if let Ok(spec) = std::env::var("URUMI_FAILPOINT") {
                options.failpoints =
                    FailPoints::parse_for_process(&spec).map_err(anyhow::Error::msg)?;
            }
            if let Some(r) = settings.retention.policy() {
                tokio::spawn(prune_deleted_stores(pool.clone(), r));
            }
            let mut worker = Worker::new(pool, registry, options);
            let listen = &settings.worker.metrics_listen;
            if !listen.is_empty() {
                let m = urumi_engine::Metrics::default();
                observe::spawn(listen, m.clone())
                    .await
                    .with_context(|| format!("serving metrics on {listen}"))?;
                worker = worker.with_metrics(m);
            }
            // The worker's apalis worker under an apalis Monitor: SIGTERM/SIGINT stops it
            // gracefully (runners release their runs at the next step boundary) within the
            // worker's shutdown grace.
            let registered = worker.register().await?;
            let monitor = apalis_core::monitor::Monitor::new()
                .register(registered.factory())
                .shutdown_timeout(registered.shutdown_grace());
            let stopped = monitor
                .run_with_signal(async {
                    urumi_engine::shutdown::signal().await;
                    Ok(())
                })
                .await;
            if let Err(e) = stopped {
                tracing::warn!(error = %e, "the worker did not stop cleanly");
            }
            registered.finish().await?;
        }
        Some("migrate") => {
            urumi_migrations::MIGRATOR
                .run(&pool)
                .await
                .context("applying migrations")?;
            println!("migrations applied");
        }
        Some("start") => {
            let (Some(workflow), Some(subject)) = (args.get(1), args.get(2)) else {
                bail!("usage: urumi-worker start <workflow> <subject> [input-json]");
            };
            let input = parse_input(workflow, args.get(3).map_or("{}", String::as_str))?;
            let started = engine
                .start_run(NewRun::new(workflow, subject, input).actor("cli"))
                .await?;
            println!("{}", started.run_id);
        }
        Some("show") => {
            let id = run_id(args.get(1))?;
            println!("{}", serde_json::to_string_pretty(&engine.run(id).await?)?);
        }
        Some("watch") => watch(&engine, run_id(args.get(1))?).await?,
        Some("store") => bail!(
            "`urumi-worker store …` is gone: stores are created, deleted and repaired through the API (`urumictl stores …`), which audits every action and applies the caps"
        ),
        Some(other) => {
            bail!("unknown command {other:?}; see the top of worker/src/main.rs or the README")
        }
    }
    Ok(())
}

/// Builds the Kubernetes client from `kubeconfig`, or by the usual inference when empty.
async fn kube_client(kubeconfig: &str) -> anyhow::Result<kube::Client> {
    let config = if kubeconfig.is_empty() {
        kube::Config::infer()
            .await
            .context("inferring a kubeconfig")?
    } else {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig)
            .with_context(|| format!("reading {kubeconfig}"))?;
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading {kubeconfig}"))?
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

fn run_id(arg: Option<&String>) -> anyhow::Result<Uuid> {
    let arg = arg.context("a run id is required")?;
    Uuid::parse_str(arg).with_context(|| format!("{arg:?} is not a run id (a UUID)"))
}

/// Prints a run's events as they happen until the run has ended.
async fn watch(engine: &Engine, run: Uuid) -> anyhow::Result<()> {
    let mut seen = 0;
    loop {
        let events = engine.events_for_run(run).await?;
        for e in events.iter().skip(seen) {
            let step = e
                .step
                .as_deref()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            println!(
                "{} {}{step} by {} {}",
                e.created_at.format("%H:%M:%S%.3f"),
                e.kind,
                e.actor,
                e.detail
            );
        }
        seen = events.len();
        let detail = engine.run(run).await?;
        if !detail.run.status().is_active() {
            println!("run {run} {}", detail.run.status());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every `retention.interval`, the rows of stores deleted before the audit window go
/// (`urumi_workflows::store::db::prune_deleted`); the engine's pruner handles runs and events.
async fn prune_deleted_stores(pool: sqlx::PgPool, r: urumi_engine::Retention) {
    let mut tick = tokio::time::interval(r.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match urumi_workflows::store::db::prune_deleted(&pool, r.audit, r.batch).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                stores = n,
                "pruned the rows of stores deleted before the audit window"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "pruning deleted stores failed; tried again next interval")
            }
        }
    }
}
