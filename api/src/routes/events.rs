//! `/api/v1/events`: a server-sent event stream of run, step and store changes, resumable
//! with `Last-Event-ID`.
//!
//! Event ids are `<txid>-<id>` cursors in **commit order**: only events of transactions
//! older than every transaction still in flight are sent (`txid < pg_snapshot_xmin`), ordered
//! by `(txid, id)`, so an event can never commit "behind" a cursor already handed out and a
//! resumed stream delivers every event after the given id exactly once.
//!
//! The price: xmin is cluster-wide, so a long transaction anywhere on the Postgres cluster
//! delays the stream (it never loses events) until it ends.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;
use uuid::Uuid;

use super::ApiTags;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::store_of;

/// The live stream.
#[derive(Debug)]
pub struct EventsApi(pub Arc<AppState>);

/// One change, as sent on the stream (the SSE `event:` is its `kind`, the SSE `id:` its
/// `cursor`).
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StreamEvent {
    /// Resume after this event by sending it as `Last-Event-ID`.
    pub cursor: String,
    /// The audit log entry's id.
    pub id: i64,
    /// e.g. `step.started`, `step.succeeded`, `run.failed`, `store.ready`.
    pub kind: String,
    pub actor: String,
    pub store_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    pub step: Option<String>,
    pub detail: Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    txid: String,
    id: i64,
}

impl Cursor {
    fn parse(s: &str) -> Option<Self> {
        let (txid, id) = s.trim().split_once('-')?;
        if txid.is_empty() || txid.len() > 20 || !txid.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        txid.parse::<u64>().ok()?;
        Some(Self {
            txid: txid.to_owned(),
            id: id.parse::<i64>().ok().filter(|i| *i >= 0)?,
        })
    }
}

type Row = (
    String,
    i64,
    Option<Uuid>,
    Option<String>,
    String,
    Option<String>,
    String,
    Value,
    DateTime<Utc>,
);

const BATCH: i64 = 500;

async fn after(state: &AppState, c: &Cursor, subject: Option<&str>) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as(
        "SELECT txid::text, id, run_id, subject, kind, step, actor, detail, created_at
         FROM urumi.events
         WHERE (txid, id) > ($1::text::xid8, $2)
           AND txid < pg_snapshot_xmin(pg_current_snapshot())
           AND ($3::text IS NULL OR subject = $3)
         ORDER BY txid, id LIMIT $4",
    )
    .bind(&c.txid)
    .bind(c.id)
    .bind(subject)
    .bind(BATCH)
    .fetch_all(&state.pool)
    .await
}

/// The present: every event of a transaction not yet ended when the stream opens (txid at
/// or above the snapshot's xmin) comes after it; everything older is before it.
async fn head(state: &AppState) -> sqlx::Result<Cursor> {
    let xmin: String = sqlx::query_scalar(
        "SELECT greatest(pg_snapshot_xmin(pg_current_snapshot())::text::numeric - 1, 0)::text",
    )
    .fetch_one(&state.pool)
    .await?;
    Ok(Cursor {
        txid: xmin,
        id: i64::MAX,
    })
}

fn to_event(r: Row) -> StreamEvent {
    let (txid, id, run_id, subject, kind, step, actor, detail, created_at) = r;
    StreamEvent {
        cursor: format!("{txid}-{id}"),
        id,
        kind,
        actor,
        store_id: subject.as_deref().and_then(store_of),
        run_id,
        step,
        detail,
        created_at,
    }
}

struct Reader {
    state: Arc<AppState>,
    cursor: Cursor,
    subject: Option<String>,
    buffered: VecDeque<StreamEvent>,
    changed: tokio::sync::watch::Receiver<u64>,
}

impl Reader {
    async fn next(mut self) -> Option<(StreamEvent, Self)> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                return Some((e, self));
            }
            // Mark the current notifications seen before reading, so none is lost.
            self.changed.borrow_and_update();
            match after(&self.state, &self.cursor, self.subject.as_deref()).await {
                Ok(rows) if !rows.is_empty() => {
                    let last = rows.last().map(|r| Cursor {
                        txid: r.0.clone(),
                        id: r.1,
                    });
                    self.buffered.extend(rows.into_iter().map(to_event));
                    if let Some(c) = last {
                        self.cursor = c;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "event stream: read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            if self.changed.changed().await.is_err() {
                return None;
            }
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl EventsApi {
    /// Server-sent events of run, step and store changes, for live dashboards.
    ///
    /// Without `Last-Event-ID` the stream starts at the present; with it, every event after
    /// that cursor is sent first, in commit order. Keep-alive comments are sent while idle.
    #[oai(path = "/events", method = "get", operation_id = "stream_events")]
    async fn stream_events(
        &self,
        _auth: Auth,
        /// Only events about this store.
        store_id: Query<Option<Uuid>>,
        /// The `cursor` (SSE id) of the last event received.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> Result<EventStream<BoxStream<'static, StreamEvent>>, ApiError> {
        let cursor = match last_event_id.0.as_deref() {
            Some(s) => Cursor::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "malformed Last-Event-ID {s:?}; send the id of an event this stream sent"
                ))
            })?,
            None => head(&self.0).await?,
        };
        let reader = Reader {
            state: self.0.clone(),
            cursor,
            subject: store_id.0.map(|s| format!("store:{s}")),
            buffered: VecDeque::new(),
            changed: self.0.events_changed.clone(),
        };
        let stream = futures::stream::unfold(reader, Reader::next).boxed();
        Ok(EventStream::new(stream)
            .keep_alive(Duration::from_millis(self.0.settings.api.sse_keep_alive_ms))
            .to_event(|e| {
                poem::web::sse::Event::message(
                    serde_json::to_string(&poem_openapi::types::ToJSON::to_json(&e))
                        .unwrap_or_default(),
                )
                .event_type(e.kind.clone())
                .id(e.cursor.clone())
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn cursors_parse_only_in_their_exact_shape() {
        assert_eq!(
            Cursor::parse("123-45"),
            Some(Cursor {
                txid: "123".into(),
                id: 45
            })
        );
        for bad in [
            "",
            "-",
            "12",
            "a-1",
            "1-a",
            "1--1",
            "99999999999999999999999-1",
            "1-1-1",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
