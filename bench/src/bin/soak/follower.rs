//! The soak's event-stream client: follows `GET /api/v1/events` from the very beginning
//! (`Last-Event-ID: 0-0`) and, whenever the stream breaks — the API killed, Postgres
//! restarted, a silent connection — reconnects with the cursor of the last event it got.
//! It keeps every event in arrival order so that the soak can check, against
//! `urumi.events`, that each was seen exactly once and in cursor order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

/// One event as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The SSE `id:` (`<txid>-<id>`), parsed.
    pub cursor: (u64, i64),
    /// `urumi.events.id`.
    pub id: i64,
    /// Which connection brought it (0 the first, then one more per reconnect).
    pub connection: u64,
    /// When it arrived (epoch seconds; Postgres runs on the same host).
    pub received_at: f64,
}

/// What the follower saw (shared with the soak).
#[derive(Debug, Default)]
pub struct Seen {
    pub events: Mutex<Vec<Received>>,
    /// Connections opened after the first.
    pub reconnects: AtomicU64,
    /// Events whose `id:`/`data:` could not be read.
    pub malformed: AtomicU64,
}

/// Parses `<txid>-<id>`.
pub fn parse_cursor(s: &str) -> Option<(u64, i64)> {
    let (t, i) = s.trim().split_once('-')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

/// One SSE event being assembled from its lines.
#[derive(Default)]
struct Pending {
    id: Option<String>,
    data: String,
}

/// Splits `buf` into complete lines and feeds them to the event being assembled; returns
/// the events completed (by a blank line).
fn feed(buf: &mut Vec<u8>, pending: &mut Pending) -> Vec<(Option<String>, String)> {
    let mut done = Vec::new();
    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=nl).collect();
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.is_empty() {
            if pending.id.is_some() || !pending.data.is_empty() {
                let p = std::mem::take(pending);
                done.push((p.id, p.data));
            }
        } else if line.starts_with(':') {
            // A keep-alive comment.
        } else {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => pending.id = Some(value.to_owned()),
                "data" => {
                    if !pending.data.is_empty() {
                        pending.data.push('\n');
                    }
                    pending.data.push_str(value);
                }
                _ => {}
            }
        }
    }
    done
}

/// Follows the stream until `stop` turns true.
pub async fn follow(api: String, token: String, seen: Arc<Seen>, mut stop: watch::Receiver<bool>) {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a reqwest client");
    let mut last = "0-0".to_owned();
    let mut connection = 0;
    while !*stop.borrow() {
        if connection > 0 {
            seen.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        connection += 1;
        let req = client
            .get(format!("{api}/api/v1/events"))
            .bearer_auth(&token)
            .header("Last-Event-ID", &last)
            .send();
        let resp = tokio::select! {
            r = req => r,
            _ = stop.changed() => return,
        };
        if let Ok(mut resp) = resp
            && resp.status().is_success()
        {
            let (mut buf, mut pending) = (Vec::new(), Pending::default());
            loop {
                // Keep-alives come every second; silence this long means a dead connection.
                let chunk = tokio::select! {
                    c = tokio::time::timeout(Duration::from_secs(10), resp.chunk()) => c,
                    _ = stop.changed() => return,
                };
                let Ok(Ok(Some(bytes))) = chunk else { break };
                buf.extend_from_slice(&bytes);
                for (id, data) in feed(&mut buf, &mut pending) {
                    let cursor = id.as_deref().and_then(parse_cursor);
                    let event_id = serde_json::from_str::<Value>(&data)
                        .ok()
                        .and_then(|v| v.get("id").and_then(Value::as_i64));
                    match (cursor, event_id) {
                        (Some(cursor), Some(id_)) => {
                            last = id.unwrap_or_default();
                            seen.events.lock().expect("seen lock").push(Received {
                                cursor,
                                id: id_,
                                connection: connection - 1,
                                received_at: std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0.0, |d| d.as_secs_f64()),
                            });
                        }
                        _ => {
                            seen.malformed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_assembled_across_chunks_and_comments_are_skipped() {
        let mut pending = Pending::default();
        let mut buf = b": keep-alive\n\nevent: step.started\nid: 7".to_vec();
        assert!(feed(&mut buf, &mut pending).is_empty());
        buf.extend_from_slice(b"-3\r\ndata: {\"id\":3}\n\nid: 8-4\ndata: {\"id\":4}\n");
        let got = feed(&mut buf, &mut pending);
        assert_eq!(got, vec![(Some("7-3".to_owned()), "{\"id\":3}".to_owned())]);
        buf.extend_from_slice(b"\n");
        let got = feed(&mut buf, &mut pending);
        assert_eq!(got, vec![(Some("8-4".to_owned()), "{\"id\":4}".to_owned())]);
        assert_eq!(parse_cursor("8-4"), Some((8, 4)));
        assert_eq!(parse_cursor("x-4"), None);
    }
}
