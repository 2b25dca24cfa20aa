//! Helpers shared by the tests that run real `urumi-worker` processes: the fresh test
//! database's URL, a child process that is killed when dropped, and polling with a deadline.

#![allow(dead_code, reason = "each test crate uses a subset of these helpers")]

pub mod cluster;
pub mod crash;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

/// The fresh test database's URL, built from `DATABASE_URL` and the test's database name.
pub fn url_for(connect: &PgConnectOptions) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("DATABASE_URL ends with /database");
    format!(
        "{prefix}/{}",
        connect.get_database().expect("a test database")
    )
}

/// A `urumi-worker` child process.
pub struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    /// A failed assertion must not leave worker processes behind.
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl WorkerProcess {
    /// A worker with a 1.5 s lease, so takeover tests are quick.
    pub fn spawn(url: &str, failpoint: Option<&str>) -> Self {
        Self::spawn_with_lease(url, failpoint, 1500)
    }

    /// A worker without a cluster (it serves the demo workflows only).
    pub fn spawn_with_lease(url: &str, failpoint: Option<&str>, lease_ms: u64) -> Self {
        Self::start(Self::command(url, failpoint, lease_ms))
    }

    /// The worker's command: no cluster, quick polls and sweeps, `failpoint` as
    /// `URUMI_FAILPOINT` (`point:step`), logs discarded. Add settings, then [`Self::start`].
    pub fn command(url: &str, failpoint: Option<&str>, lease_ms: u64) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_urumi-worker"));
        cmd.env("URUMI__DATABASE__URL", url)
            .env("URUMI__CLUSTER__ENABLED", "false")
            .env("URUMI__WORKER__LEASE_MS", lease_ms.to_string())
            .env("URUMI__WORKER__POLL_INTERVAL_MS", "100")
            .env("URUMI__WORKER__SWEEP_INTERVAL_MS", "250")
            .env("URUMI__WORKER__CONCURRENCY", "16")
            .env("URUMI__LOG__FILTER", "warn")
            .env_remove("URUMI_FAILPOINT")
            .env_remove("URUMI_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(fp) = failpoint {
            cmd.env("URUMI_FAILPOINT", fp);
        }
        cmd
    }

    /// Spawns `cmd` (from [`Self::command`]).
    pub fn start(mut cmd: Command) -> Self {
        Self(cmd.spawn().expect("spawn urumi-worker"))
    }

    /// SIGKILL: the process gets no chance to release anything.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }

    /// SIGTERM, then waits for the process to end.
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// SIGTERM without waiting (see [`Self::exit_status`]).
    pub fn signal_term(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
    }

    /// Waits for the process to exit by itself; panics after `within`.
    pub async fn exit_status(&mut self, within: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker process did not exit"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A local port nothing listens on (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 50 ms; panics naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
