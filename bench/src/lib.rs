//! Shared helpers of Urumi's benchmark programs: statistics and process memory.
//! Benchmarks are programs that print figures (see `shared/design/benchmarks.md`), never tests.

use anyhow::Context;
use sqlx::Executor;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// A database of its own for one benchmark run, created on the server `DATABASE_URL` names
/// and dropped (with its connections) by [`ScratchDb::drop_now`].
#[derive(Debug)]
pub struct ScratchDb {
    admin: PgPool,
    name: String,
    /// The scratch database's URL.
    pub url: String,
}

impl ScratchDb {
    /// Creates `<prefix>_<pid>`.
    ///
    /// # Errors
    /// When `DATABASE_URL` does not answer or the database cannot be created.
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin = PgPoolOptions::new()
            .max_connections(2)
            .connect(&base)
            .await
            .context("connect DATABASE_URL")?;
        let name = format!("{prefix}_{}", std::process::id());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
        let url = format!(
            "{}/{name}",
            base.rsplit_once('/').context("DATABASE_URL ends in /db")?.0
        );
        Ok(Self { admin, name, url })
    }

    /// Drops the database.
    ///
    /// # Errors
    /// The database error.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.admin.execute(sqlx::AssertSqlSafe(sql)).await?;
        Ok(())
    }
}

/// The value at quantile `q` (0..=1) of `sorted` (nearest rank), or 0 when empty.
#[must_use]
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Median, min and max of `xs`.
#[must_use]
pub fn median_min_max(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let min = v.first().copied().unwrap_or(0.0);
    let max = v.last().copied().unwrap_or(0.0);
    (quantile(&v, 0.5), min, max)
}

/// A `/proc/<pid>/status` field in MiB (`VmRSS` for resident, `VmHWM` for peak).
#[must_use]
pub fn proc_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) process `pid` has used, from `/proc/<pid>/stat`.
#[must_use]
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // Clock ticks: USER_HZ is 100 on Linux (`getconf CLK_TCK`).
    Some(ticks / 100.0)
}

/// Resolves when standard input closes: a benchmark's worker child stops when its parent
/// (which holds the child's stdin open) exits or closes it.
pub async fn stdin_closed() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut buf = String::new();
        while std::io::stdin()
            .read_line(&mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_read_and_grows() {
        let pid = std::process::id();
        let before = proc_cpu_secs(pid).expect("own /proc stat");
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = proc_cpu_secs(pid).expect("own /proc stat");
        assert!(after - before >= 0.1, "{before} -> {after}");
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(median_min_max(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(proc_mib(std::process::id(), "VmRSS").unwrap() > 0.0);
    }
}
