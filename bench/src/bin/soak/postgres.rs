//! The soak's own throwaway Postgres cluster: `initdb` + `pg_ctl start` in a temp dir on a
//! free port (as the `postgres` user when run as root, like `scripts/with-postgres.sh`), so
//! that the soak can `pg_ctl restart -m immediate` it — a crash and recovery under load.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running cluster. Dropping it stops the server (`-m fast`).
#[derive(Debug)]
pub struct Postgres {
    bindir: PathBuf,
    data: PathBuf,
    log: PathBuf,
    as_postgres: bool,
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    stopped: bool,
}

/// The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no pg_config and no /usr/lib/postgresql: install PostgreSQL")?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|f| f.1)
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// `initdb` in `dir/pg` and starts the server on a free port. With `next_xid` above 0
    /// the cluster's next transaction id is set to it first (`pg_resetwal -x`), so that a
    /// short run can cross a boundary such as 9,999 → 10,000 that a fresh cluster reaches
    /// only after a while.
    ///
    /// # Errors
    /// When the binaries are missing or the cluster does not start.
    pub fn start(dir: &Path, next_xid: u64) -> anyhow::Result<Self> {
        let bindir = find_bindir()?;
        let pgdir = dir.join("pg");
        std::fs::create_dir_all(&pgdir)?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .arg("postgres")
                .arg(&pgdir)
                .status()?
                .success();
            anyhow::ensure!(ok, "chown postgres {} failed", pgdir.display());
        }
        let port = free_port()?;
        let mut pg = Self {
            data: pgdir.join("data"),
            log: pgdir.join("log"),
            bindir,
            as_postgres,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            stopped: true,
        };
        let data = pg.data.display().to_string();
        pg.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"],
        )?;
        if next_xid > 0 {
            pg.run("pg_resetwal", &["-x", &next_xid.to_string(), "-D", &data])?;
        }
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            pgdir.display()
        );
        let log = pg.log.display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
        )?;
        pg.stopped = false;
        Ok(pg)
    }

    fn command(&self, program: &str, args: &[&str]) -> std::process::Command {
        let bin = self.bindir.join(program);
        let mut c = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            std::process::Command::new(bin)
        };
        c.args(args).stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(program, args)
            .output()
            .with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            bail!(
                "{program} {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `pg_ctl restart -m immediate -w`: every backend is killed without a checkpoint, the
    /// server recovers from WAL and accepts connections again. Returns how long it took.
    ///
    /// # Errors
    /// When the server does not come back.
    pub async fn restart_immediate(&self) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let cmd = self.command(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &self.log.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "restart",
            ],
        );
        let out = tokio::process::Command::from(cmd).output().await?;
        if !out.status.success() {
            bail!(
                "pg_ctl restart failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(t.elapsed())
    }

    /// Stops the server (`-m fast`).
    pub fn stop(&mut self) {
        if !self.stopped {
            let data = self.data.display().to_string();
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
            self.stopped = true;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
