//! `/api/v1/events`: a server-sent event stream of run, step and store changes, resumable
//! with `Last-Event-ID`.
//!
//! Event ids are `<txid>-<id>` cursors in **commit order**; the rule that makes delivery
//! exactly-once and in order lives in the engine (`urumi_engine::EventStream`): a resumed
//! stream delivers every event after the given id once, a stream opened without one exactly
//! the events committed after it opened.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;
use urumi_engine::{EventStream as EngineStream, StreamCursor};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::{Auth, TokenCache};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::streams::{Full, StreamSlot};
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

const BATCH: i64 = 500;

fn to_view(e: urumi_engine::StreamEvent) -> StreamEvent {
    let ev = e.event;
    StreamEvent {
        cursor: e.cursor.to_string(),
        id: ev.id,
        kind: ev.kind,
        actor: ev.actor,
        store_id: ev.subject.as_deref().and_then(store_of),
        run_id: ev.run_id,
        step: ev.step,
        detail: ev.detail,
        created_at: ev.created_at,
    }
}

struct Reader {
    state: Arc<AppState>,
    stream: EngineStream,
    buffered: VecDeque<StreamEvent>,
    changed: tokio::sync::watch::Receiver<u64>,
    /// This stream's place among the open ones (given back when the stream is dropped).
    slot: StreamSlot,
    /// When the token was last found still valid.
    checked_at: Instant,
}

impl Reader {
    async fn next(mut self) -> Option<(StreamEvent, Self)> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                return Some((e, self));
            }
            // A long-lived stream ends once its token is revoked.
            if self.checked_at.elapsed() >= self.state.settings.stream_recheck() {
                match TokenCache::still_valid(&self.state.pool, self.slot.token()).await {
                    Ok(false) => return None,
                    Ok(true) => self.checked_at = Instant::now(),
                    Err(e) => tracing::warn!(error = %e, "event stream: token re-check failed"),
                }
            }
            // Mark the current notifications seen before reading, so none is lost.
            self.changed.borrow_and_update();
            match self.stream.next_page(&self.state.pool, BATCH).await {
                Ok(page) if !page.is_empty() => {
                    self.buffered.extend(page.into_iter().map(to_view));
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
    /// At most `api.max_streams_per_token` streams per token and `api.max_streams` per
    /// process (429 beyond); a stream ends once its token is revoked.
    #[oai(path = "/events", method = "get", operation_id = "stream_events")]
    async fn stream_events(
        &self,
        auth: Auth,
        /// Only events about this store.
        store_id: Query<Option<Uuid>>,
        /// The `cursor` (SSE id) of the last event received.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> Result<EventStream<BoxStream<'static, StreamEvent>>, ApiError> {
        let slot = self.0.streams.acquire(auth.0.token_id).map_err(|full| {
            let detail = match full {
                Full::Token(n) => format!(
                    "token {:?} already has {n} event streams open (api.max_streams_per_token); close one",
                    auth.0.name
                ),
                Full::Process(n) => format!(
                    "this API process already serves {n} event streams (api.max_streams); retry later"
                ),
            };
            ApiError::too_many(detail, 5)
        })?;
        let stream = match last_event_id.0.as_deref() {
            Some(s) => EngineStream::after(s.parse::<StreamCursor>().map_err(|_| {
                ApiError::bad_request(format!(
                    "malformed Last-Event-ID {s:?}; send the id of an event this stream sent"
                ))
            })?),
            None => EngineStream::at_present(&self.0.pool).await?,
        };
        let reader = Reader {
            state: self.0.clone(),
            stream: stream.subject(store_id.0.map(urumi_store::subject::subject)),
            buffered: VecDeque::new(),
            changed: self.0.events_changed.clone(),
            slot,
            checked_at: Instant::now(),
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
