//! The platform's processes as the soak runs them: the simulator, the API and the workers,
//! each a real binary with its log appended to a file. The soak kills them (SIGKILL) and
//! restarts them on purpose; any other exit is a process that *died by itself*, which the
//! soak notices (`reap`), records and counts against the run.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, Command};

/// How to start one process.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `sim`, `api`, `worker-1`, …
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub log: PathBuf,
}

/// One managed process.
#[derive(Debug)]
pub struct Proc {
    pub spec: Spec,
    child: Option<Child>,
    /// The pid of the current incarnation.
    pub pid: Option<u32>,
}

/// Every managed process, and the exits nobody asked for.
#[derive(Debug, Default)]
pub struct Procs {
    pub list: Vec<Proc>,
    /// "worker-2 (pid 123) exited by itself: exit status: 1", …
    pub unexpected: Vec<String>,
}

fn spawn(spec: &Spec) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .with_context(|| format!("opening {}", spec.log.display()))?;
    let mut c = Command::new(&spec.program);
    c.args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    // Only the settings the soak gives: nothing from the caller's environment that the
    // binaries read (a developer's URUMI__*, DATABASE_URL, SIM_* or KUBECONFIG).
    for (k, _) in std::env::vars() {
        if k.starts_with("URUMI")
            || k.starts_with("SIM_")
            || k == "DATABASE_URL"
            || k == "KUBECONFIG"
        {
            c.env_remove(k);
        }
    }
    c.envs(spec.env.iter().map(|(k, v)| (k, v)));
    c.spawn()
        .with_context(|| format!("starting {}", spec.program.display()))
}

impl Procs {
    /// Starts a new process; returns its index.
    ///
    /// # Errors
    /// When it cannot be spawned.
    pub fn add(&mut self, spec: Spec) -> anyhow::Result<usize> {
        let child = spawn(&spec)?;
        self.list.push(Proc {
            pid: child.id(),
            spec,
            child: Some(child),
        });
        Ok(self.list.len() - 1)
    }

    /// SIGKILLs process `i` and waits for it to be gone.
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.list[i].child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
        self.list[i].pid = None;
    }

    /// Starts process `i` again (a new incarnation).
    ///
    /// # Errors
    /// When it cannot be spawned.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let p = &mut self.list[i];
        let child = spawn(&p.spec)?;
        p.pid = child.id();
        p.child = Some(child);
        Ok(())
    }

    /// Notices processes that exited without being killed, records them and starts them
    /// again (so the soak goes on; the record fails it). Returns how many it found.
    pub fn reap(&mut self) -> usize {
        let mut found = Vec::new();
        for (i, p) in self.list.iter_mut().enumerate() {
            if let Some(c) = p.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.unexpected.push(format!(
                    "{} (pid {}) exited by itself: {status}",
                    p.spec.name,
                    p.pid.unwrap_or(0)
                ));
                p.child = None;
                p.pid = None;
                found.push(i);
            }
        }
        for &i in &found {
            if let Err(e) = self.restart(i) {
                self.unexpected.push(format!(
                    "{} could not be restarted: {e:#}",
                    self.list[i].spec.name
                ));
            }
        }
        found.len()
    }

    /// SIGTERMs every process (graceful shutdown) and waits up to `grace` for each; returns
    /// the processes that had to be SIGKILLed or exited with a failure.
    pub async fn stop_all(&mut self, grace: Duration) -> Vec<String> {
        let mut bad = Vec::new();
        for p in &self.list {
            if let Some(pid) = p.pid {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for p in &mut self.list {
            let Some(mut c) = p.child.take() else {
                continue;
            };
            match tokio::time::timeout(grace, c.wait()).await {
                Ok(Ok(s)) if s.success() => {}
                Ok(Ok(s)) => bad.push(format!("{} stopped with {s}", p.spec.name)),
                Ok(Err(e)) => bad.push(format!("{}: {e}", p.spec.name)),
                Err(_) => {
                    let _ = c.start_kill();
                    let _ = c.wait().await;
                    bad.push(format!(
                        "{} did not stop within {grace:?} of SIGTERM (killed)",
                        p.spec.name
                    ));
                }
            }
            p.pid = None;
        }
        bad
    }
}
