//! Starting the platform the soak attacks, from the real binaries: its own Postgres, the
//! Kubernetes simulator (with controller delays, so that provisioning takes seconds and the
//! chaos lands mid-provisioning), the migrations, an admin token, the API and N workers with
//! short leases.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Mutex;

use crate::driver::Api;
use crate::postgres::{Postgres, free_port};
use crate::procs::{Procs, Spec};
use crate::simulator::Sim;

/// A worker's lease: a SIGKILLed worker's runs are taken over this long after its last
/// heartbeat.
pub const LEASE_MS: u64 = 3000;
/// The actor name of the soak's API token (what the audit log must show).
pub const ACTOR: &str = "soak-driver";

/// Everything running, and the handles the soak drives it with.
#[derive(Debug)]
pub struct Platform {
    pub pg: Postgres,
    pub procs: Arc<Mutex<Procs>>,
    pub api: Api,
    pub sim: Sim,
    /// The soak's own connections (reads for the invariants, the reconnect checks).
    pub pool: PgPool,
    pub api_idx: usize,
    pub workers: Vec<usize>,
}

fn bin(bins: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let p = bins.join(name);
    if !p.exists() {
        bail!(
            "{} not found: build the binaries first (cargo build -p urumi-sim -p urumi-api -p urumi-worker -p urumi-bench --bins)",
            p.display()
        );
    }
    Ok(p)
}

fn spec(
    name: &str,
    program: PathBuf,
    args: &[&str],
    env: Vec<(String, String)>,
    dir: &Path,
) -> Spec {
    Spec {
        name: name.to_owned(),
        program,
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        env,
        cwd: dir.to_path_buf(),
        log: dir.join(format!("{name}.log")),
    }
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs a short command of the platform (migrate, token create) to completion.
async fn one_shot(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    dir: &Path,
) -> anyhow::Result<String> {
    let mut c = tokio::process::Command::new(program);
    c.args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)));
    for (k, _) in std::env::vars() {
        if k.starts_with("URUMI") || k == "DATABASE_URL" {
            c.env_remove(k);
        }
    }
    let out = c
        .output()
        .await
        .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {args:?} failed ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Waits until `check` is true, up to `limit`.
async fn until<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = tokio::time::Instant::now();
    while t.elapsed() < limit {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} not ready after {limit:?}")
}

impl Platform {
    /// Starts everything in `dir` from the binaries in `bins`, Postgres at transaction id
    /// `next_xid` (0: wherever `initdb` left it).
    ///
    /// # Errors
    /// When a part does not start.
    pub async fn start(
        dir: &Path,
        bins: &Path,
        workers: usize,
        next_xid: u64,
    ) -> anyhow::Result<Self> {
        let (sim_bin, api_bin, worker_bin) = (
            bin(bins, "urumi-sim")?,
            bin(bins, "urumi-api")?,
            bin(bins, "urumi-worker")?,
        );
        let pg = Postgres::start(dir, next_xid).context("starting Postgres")?;
        let mut procs = Procs::default();

        let sim_port = free_port()?;
        let kubeconfig = dir.join("kubeconfig");
        let timings = dir.join("sim-timings.json");
        std::fs::write(
            &timings,
            r#"{"podReadyMs": 1000, "jobRunMs": 1500, "pvcBindMs": 300, "addressMs": 500, "namespaceFinalizeMs": 1000}"#,
        )?;
        procs.add(spec(
            "sim",
            sim_bin,
            &[],
            kv(&[
                ("SIM_ADDR", &format!("127.0.0.1:{sim_port}")),
                ("SIM_KUBECONFIG", &kubeconfig.display().to_string()),
                ("SIM_TIMINGS", &timings.display().to_string()),
            ]),
            dir,
        ))?;
        let sim = Sim::new(format!("http://127.0.0.1:{sim_port}"));
        until(Duration::from_secs(15), "the simulator", || async {
            kubeconfig.exists() && sim.stats().await.is_ok()
        })
        .await?;

        let db = kv(&[("URUMI__DATABASE__URL", &pg.url), ("NO_COLOR", "1")]);
        one_shot(&worker_bin, &["migrate"], &db, dir).await?;
        let token = one_shot(
            &api_bin,
            &["token", "create", "--name", ACTOR, "--role", "admin"],
            &db,
            dir,
        )
        .await?;

        let api_port = free_port()?;
        let mut api_env = db.clone();
        api_env.extend(kv(&[
            ("URUMI__API__LISTEN", &format!("127.0.0.1:{api_port}")),
            ("URUMI__API__SSE_KEEP_ALIVE_MS", "1000"),
            ("URUMI__API__CREATE_RATE_PER_SEC", "200"),
            ("URUMI__API__CREATE_BURST", "500"),
        ]));
        let api_idx = procs.add(spec("api", api_bin, &["serve"], api_env, dir))?;
        let api = Api::new(format!("http://127.0.0.1:{api_port}"), token);
        until(Duration::from_secs(30), "the API", || api.ready()).await?;

        let mut worker_idx = Vec::new();
        for n in 1..=workers {
            let mut env = db.clone();
            env.extend(kv(&[
                ("URUMI__WORKER__NAME", &format!("soak-worker-{n}")),
                ("URUMI__WORKER__LEASE_MS", &LEASE_MS.to_string()),
                ("URUMI__WORKER__SWEEP_INTERVAL_MS", "1000"),
                ("URUMI__WORKER__POLL_INTERVAL_MS", "500"),
                ("URUMI__WORKER__SHUTDOWN_GRACE_MS", "5000"),
                ("URUMI__WORKER__CONCURRENCY", "16"),
                ("URUMI__DATABASE__MAX_CONNECTIONS", "20"),
                (
                    "URUMI__CLUSTER__KUBECONFIG",
                    &kubeconfig.display().to_string(),
                ),
            ]));
            worker_idx.push(procs.add(spec(
                &format!("worker-{n}"),
                worker_bin.clone(),
                &["run"],
                env,
                dir,
            ))?);
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&pg.url)
            .await?;
        Ok(Self {
            pg,
            procs: Arc::new(Mutex::new(procs)),
            api,
            sim,
            pool,
            api_idx,
            workers: worker_idx,
        })
    }
}
