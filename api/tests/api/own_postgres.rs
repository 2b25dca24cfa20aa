//! A Postgres cluster of the test's own (initdb + pg_ctl in a temp dir, on a free port), for
//! tests that need what a shared server cannot give: transaction ids at a known place.
//!
//! The binaries are found like `scripts/with-postgres.sh` finds them; a missing binary is a
//! test failure, never a skip.

use std::path::PathBuf;
use std::process::Command;

/// A running throwaway cluster; stopped and removed on drop.
pub struct OwnPostgres {
    bindir: PathBuf,
    dir: tempdir::Dir,
    /// The server options it was started with (`pg_ctl -o`).
    opts: String,
    pub url: String,
}

mod tempdir {
    //! The smallest temp dir: created under /tmp, removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(prefix: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "{prefix}{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
    });
    found.pop().expect(
        "no Postgres binaries (initdb): install PostgreSQL, e.g. apt-get install postgresql",
    )
}

/// Runs a Postgres binary, as the `postgres` user when the test runs as root (initdb refuses
/// root).
fn run(bindir: &std::path::Path, tool: &str, args: &[&str]) {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bindir.join(tool));
        c
    } else {
        Command::new(bindir.join(tool))
    };
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl OwnPostgres {
    /// initdb and start a cluster; answers once it accepts connections.
    pub fn start() -> Self {
        Self::start_with(|_| Vec::new())
    }

    /// [`OwnPostgres::start`], with `prepare` run on the data directory between initdb and
    /// the start; it answers extra server settings (`-c name=value` pairs' `name=value`).
    pub fn start_with(prepare: impl FnOnce(&std::path::Path) -> Vec<String>) -> Self {
        let bindir = bindir();
        let dir = tempdir::Dir::new("urumi-own-pg-");
        let _ = Command::new("chown")
            .args(["postgres"])
            .arg(&dir.0)
            .status();
        let data = dir.0.join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (data_s, dir_s) = (data.to_str().unwrap(), dir.0.to_str().unwrap());
        run(
            &bindir,
            "initdb",
            &["-D", data_s, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        let extra: String = prepare(&data)
            .iter()
            .map(|kv| format!(" -c {kv}"))
            .collect();
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&data)
            .status();
        let opts = format!(
            "-p {port} -k {dir_s} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100{extra}"
        );
        let pg = Self {
            bindir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            opts,
            dir,
        };
        pg.pg_ctl_start();
        pg
    }

    fn pg_ctl_start(&self) {
        let (data, log) = (self.dir.0.join("data"), self.dir.0.join("log"));
        let (data, log) = (data.to_str().unwrap(), log.to_str().unwrap());
        run(
            &self.bindir,
            "pg_ctl",
            &["-D", data, "-l", log, "-w", "-o", &self.opts, "start"],
        );
    }

    /// Stops the server, makes it hand out transaction ids from `next_xid` again
    /// (`pg_resetwal -x`), and starts it on the same port: what a crash restart does to ids
    /// that were assigned but never made durable.
    pub fn restart_handing_out_ids_from(&self, next_xid: u64) {
        let data = self.dir.0.join("data");
        let data_s = data.to_str().unwrap();
        run(
            &self.bindir,
            "pg_ctl",
            &["-D", data_s, "-m", "fast", "-w", "stop"],
        );
        run(
            &self.bindir,
            "pg_resetwal",
            &["-x", &next_xid.to_string(), "-D", data_s],
        );
        self.pg_ctl_start();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.0.join("data");
        let _ = std::panic::catch_unwind(|| {
            run(
                &self.bindir,
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        });
    }
}
