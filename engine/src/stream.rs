//! The event stream: every event of `urumi.events` in **commit order**, resumable from a
//! cursor, each exactly once. The one place that knows the stream's cursor rule.
//!
//! ```text
//!   cursor = (txid, id)      txid: the inserting transaction's id (xid8), id: bigserial
//!
//!   sent:      txid < xmin(now)           every such transaction has ended, so nothing can
//!                                         ever commit below the cursor any more
//!   held back: txid >= xmin(now)          some transaction at or below may still commit
//!   opened without a cursor: start after the newest event the opening snapshot saw below
//!                            its xmin, and skip what that snapshot already saw above it,
//!                            so the stream begins exactly at "now"
//! ```
//!
//! Ordering is by the `xid8` value itself (never its text: `"10000" < "9999"`). A page that
//! matched fewer rows than asked still moves the cursor past what it scanned — to the newest
//! event below the horizon, never to the horizon itself — so a filtered stream never rescans
//! a growing range.
//!
//! The cursor only ever stands on an event that committed. After a crash restart Postgres
//! may hand out again transaction ids that were assigned but never made durable (a rolled
//! back or unfinished transaction's), so a position *between* events — such as xmin itself —
//! could end up above new events; a committed event's id is never reused. For the same
//! reason a reader that sees the server restarted (`pg_postmaster_start_time()` changed)
//! stops skipping by its opening snapshot: re-used ids below that snapshot's xmin would look
//! "already seen" to it.
//!
//! The price of commit order: xmin is cluster-wide, so a long transaction anywhere on the
//! Postgres cluster delays the stream (it never loses or repeats events) until it ends.

use std::fmt;
use std::str::FromStr;

use sqlx::PgPool;

use crate::model::Event;

/// A position in the stream: after the event `(txid, id)`. Written `"<txid>-<id>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamCursor {
    /// The transaction id (xid8) of the event's inserting transaction.
    pub txid: u64,
    /// The event's id.
    pub id: i64,
}

impl StreamCursor {
    /// Before every event.
    pub const START: Self = Self { txid: 0, id: 0 };
}

impl fmt::Display for StreamCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.txid, self.id)
    }
}

/// A cursor that is not `<digits>-<digits>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCursor;

impl fmt::Display for BadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stream cursor is <txid>-<id>, both non-negative integers")
    }
}

impl std::error::Error for BadCursor {}

impl FromStr for StreamCursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<Self, BadCursor> {
        let (txid, id) = s.trim().split_once('-').ok_or(BadCursor)?;
        let digits =
            |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(txid) || !digits(id) {
            return Err(BadCursor);
        }
        Ok(Self {
            txid: txid.parse().map_err(|_| BadCursor)?,
            id: id.parse().map_err(|_| BadCursor)?,
        })
    }
}

/// One event with its place in the stream.
#[derive(Debug, Clone)]
pub struct StreamEvent {
    /// Resume after this event with this cursor.
    pub cursor: StreamCursor,
    /// The event.
    pub event: Event,
}

/// A reader's position: where it is, and (until it has passed them) the transactions the
/// opening snapshot had already seen.
#[derive(Debug, Clone)]
pub struct EventStream {
    cursor: StreamCursor,
    /// `pg_snapshot` text of the moment a cursor-less stream opened; events visible in it
    /// are "before" the stream. Dropped once the cursor passes the snapshot's xmax, or when
    /// the server restarted since.
    opened: Option<(String, u64)>,
    /// When the Postgres server the stream last read from started.
    server_started: Option<chrono::DateTime<chrono::Utc>>,
    subject: Option<String>,
}

/// The row the page query answers: the newest event below the horizon (where a short page
/// leaves the cursor), the server's start time, and an event when one matched.
struct PageRow {
    scanned_txid: Option<i64>,
    scanned_id: Option<i64>,
    server_started: chrono::DateTime<chrono::Utc>,
    txid: Option<i64>,
    id: Option<i64>,
    run_id: Option<uuid::Uuid>,
    subject: Option<String>,
    kind: Option<String>,
    step: Option<String>,
    actor: Option<String>,
    detail: Option<serde_json::Value>,
    created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl EventStream {
    /// A stream that delivers exactly the events committed after this call returns.
    ///
    /// # Errors
    /// The database's.
    pub async fn at_present(pool: &PgPool) -> sqlx::Result<Self> {
        let row = sqlx::query!(
            r#"SELECT s::text AS "snapshot!", pg_snapshot_xmax(s)::text::bigint AS "xmax!",
                    last.txid AS "txid?", last.id AS "id?",
                    pg_postmaster_start_time() AS "started!"
             FROM pg_current_snapshot() AS s
             LEFT JOIN LATERAL (
                 SELECT ev.txid::text::bigint AS txid, ev.id FROM urumi.events ev
                 WHERE ev.txid < pg_snapshot_xmin(s) ORDER BY ev.txid DESC, ev.id DESC LIMIT 1
             ) last ON true"#,
        )
        .fetch_one(pool)
        .await?;
        let (snapshot, xmax, txid, id, started) =
            (row.snapshot, row.xmax, row.txid, row.id, row.started);
        Ok(Self {
            // Everything below xmin is visible in the snapshot: start after its newest event.
            cursor: StreamCursor {
                txid: txid.unwrap_or(0) as u64,
                id: id.unwrap_or(0),
            },
            opened: Some((snapshot, xmax as u64)),
            server_started: Some(started),
            subject: None,
        })
    }

    /// A stream that delivers every event after `cursor`.
    #[must_use]
    pub fn after(cursor: StreamCursor) -> Self {
        Self {
            cursor,
            opened: None,
            server_started: None,
            subject: None,
        }
    }

    /// Only events about `subject` (e.g. `store:<id>`).
    #[must_use]
    pub fn subject(mut self, subject: Option<String>) -> Self {
        self.subject = subject;
        self
    }

    /// Where the stream stands: every event at or before it was delivered or skipped.
    #[must_use]
    pub fn cursor(&self) -> StreamCursor {
        self.cursor
    }

    /// The next up to `limit` events in commit order; empty when none has committed yet.
    /// Advances the stream past what it returns, and past what it scanned without a match.
    ///
    /// # Errors
    /// The database's; the stream's position is then unchanged.
    pub async fn next_page(&mut self, pool: &PgPool, limit: i64) -> sqlx::Result<Vec<StreamEvent>> {
        // Every column of a LEFT JOIN may be NULL (`?`): one row comes back even when no
        // event matched.
        let rows: Vec<PageRow> = sqlx::query_as!(
            PageRow,
            r#"WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
             SELECT last.txid AS "scanned_txid?", last.id AS "scanned_id?",
                    pg_postmaster_start_time() AS "server_started!",
                    e.txid AS "txid?", e.id AS "id?", e.run_id AS "run_id?", e.subject AS "subject?",
                    e.kind AS "kind?", e.step AS "step?", e.actor AS "actor?", e.detail AS "detail?",
                    e.created_at AS "created_at?"
             FROM h LEFT JOIN LATERAL (
                 SELECT ev.txid::text::bigint AS txid, ev.id FROM urumi.events ev
                 WHERE ev.txid < h.xmin ORDER BY ev.txid DESC, ev.id DESC LIMIT 1
             ) last ON true
             LEFT JOIN LATERAL (
                 SELECT ev.txid::text::bigint AS txid, ev.id, ev.run_id, ev.subject, ev.kind,
                        ev.step, ev.actor, ev.detail, ev.created_at
                 FROM urumi.events ev
                 WHERE (ev.txid, ev.id) > ($1::bigint::text::xid8, $2)
                   AND ev.txid < h.xmin
                   AND ($3::text IS NULL OR NOT pg_visible_in_snapshot(ev.txid, $3::text::pg_snapshot))
                   AND ($4::text IS NULL OR ev.subject = $4)
                 ORDER BY ev.txid, ev.id
                 LIMIT $5
             ) e ON true"#,
            self.cursor.txid as i64,
            self.cursor.id,
            self.opened.as_ref().map(|(s, _)| s.as_str()),
            self.subject.as_deref(),
            limit,
        )
        .fetch_all(pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        if self.server_started != Some(first.server_started) {
            // The server restarted (or this is the first page): transaction ids may have been
            // handed out again, so the opening snapshot can no longer tell old from new.
            if self.server_started.is_some() {
                self.opened = None;
            }
            self.server_started = Some(first.server_started);
        }
        let scanned = match (first.scanned_txid, first.scanned_id) {
            (Some(txid), Some(id)) => Some(StreamCursor {
                txid: txid as u64,
                id,
            }),
            _ => None,
        };
        let mut page = Vec::with_capacity(rows.len());
        for r in rows {
            let (Some(txid), Some(event)) = (r.txid, r.into_event()) else {
                continue;
            };
            page.push(StreamEvent {
                cursor: StreamCursor {
                    txid: txid as u64,
                    id: event.id,
                },
                event,
            });
        }
        if let Some(last) = page.last() {
            self.cursor = last.cursor;
        }
        // A short page saw every event below the horizon: move past the newest of them (a
        // committed event, so no later event can ever sort below it).
        if (page.len() as i64) < limit
            && let Some(scanned) = scanned
            && scanned > self.cursor
        {
            self.cursor = scanned;
        }
        if self
            .opened
            .as_ref()
            .is_some_and(|(_, xmax)| self.cursor.txid >= *xmax)
        {
            self.opened = None;
        }
        Ok(page)
    }
}

impl PageRow {
    fn into_event(self) -> Option<Event> {
        Some(Event {
            id: self.id?,
            run_id: self.run_id,
            subject: self.subject,
            kind: self.kind?,
            step: self.step,
            actor: self.actor?,
            detail: self.detail.unwrap_or(serde_json::Value::Null),
            created_at: self.created_at?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::StreamCursor;

    #[test]
    fn cursors_parse_only_in_their_exact_shape_and_order_numerically() {
        assert_eq!(
            "123-45".parse::<StreamCursor>(),
            Ok(StreamCursor { txid: 123, id: 45 })
        );
        assert_eq!(StreamCursor { txid: 10000, id: 1 }.to_string(), "10000-1");
        for bad in [
            "",
            "-",
            "12",
            "a-1",
            "1-a",
            "1--1",
            "1-+1",
            "+1-1",
            "99999999999999999999999-1",
            "1-1-1",
        ] {
            assert!(bad.parse::<StreamCursor>().is_err(), "{bad}");
        }
        let a: StreamCursor = "9999-5".parse().unwrap();
        let b: StreamCursor = "10000-4".parse().unwrap();
        assert!(a < b, "txids compare as numbers, not text");
    }
}
