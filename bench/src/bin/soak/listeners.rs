//! Which of the soak's processes hold a `LISTEN` session on Postgres right now: the
//! backends whose last statement was `LISTEN "<channel>"` (`pg_stat_activity`), matched to
//! processes by TCP port — a backend's `client_port` is the local port of a socket that one
//! of our children has open (`/proc/<pid>/fd` → socket inode → `/proc/net/tcp`).

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::PgPool;

/// Socket inodes process `pid` has open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Local TCP port of every socket inode (IPv4 and IPv6).
fn ports_by_inode() -> HashMap<u64, u16> {
    let mut out = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (f.get(1), f.get(9)) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, inode.parse::<u64>()) {
                out.insert(inode, port);
            }
        }
    }
    out
}

/// The channel of `LISTEN "name"` (sqlx re-LISTENs after a reconnect with a `;` at the end).
fn channel(query: &str) -> String {
    query
        .trim_start_matches("LISTEN ")
        .trim_matches(|c: char| c == '"' || c == ';' || c.is_whitespace())
        .to_owned()
}

/// For each pid, the channels it LISTENs on (by `pg_stat_activity`).
///
/// # Errors
/// When Postgres does not answer.
pub async fn listening(pool: &PgPool, pids: &[u32]) -> sqlx::Result<BTreeMap<u32, Vec<String>>> {
    let rows: Vec<(Option<i32>, String)> = sqlx::query!(
        r#"SELECT client_port, query AS "query!" FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND state = 'idle' AND query ILIKE 'LISTEN %'"#,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.client_port, r.query))
    .collect();
    let ports = ports_by_inode();
    let mut out = BTreeMap::new();
    for &pid in pids {
        let mine: HashSet<u16> = socket_inodes(pid)
            .iter()
            .filter_map(|i| ports.get(i).copied())
            .collect();
        let channels = rows
            .iter()
            .filter(|(port, _)| {
                port.is_some_and(|p| u16::try_from(p).is_ok_and(|p| mine.contains(&p)))
            })
            .map(|(_, q)| channel(q))
            .collect();
        out.insert(pid, channels);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn channels_are_read_from_first_and_repeated_listens() {
        assert_eq!(super::channel("LISTEN \"urumi_runs\""), "urumi_runs");
        assert_eq!(super::channel("LISTEN \"urumi_events\";"), "urumi_events");
    }

    #[test]
    fn this_process_sockets_are_found_with_their_ports() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let ports = super::ports_by_inode();
        let mine: Vec<u16> = super::socket_inodes(std::process::id())
            .iter()
            .filter_map(|i| ports.get(i).copied())
            .collect();
        assert!(mine.contains(&port), "{port} not in {mine:?}");
    }
}
