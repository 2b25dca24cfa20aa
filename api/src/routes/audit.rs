//! `/api/v1/audit`: the audit log — operators' actions with their actor, and every run, step
//! and store transition — newest first, filtered and keyset-paginated.

use std::sync::Arc;

use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use urumi_engine::{Event, EventFilter};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::{AuditEntry, AuditPage};

/// The audit log.
#[derive(Debug)]
pub struct AuditApi(pub Arc<AppState>);

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl AuditApi {
    /// The audit log, newest first.
    #[oai(path = "/audit", method = "get", operation_id = "list_audit")]
    #[allow(clippy::too_many_arguments)] // reason: one argument per documented filter
    async fn list_audit(
        &self,
        _auth: Auth,
        /// Only entries about this store.
        store_id: Query<Option<Uuid>>,
        /// Only entries about this run.
        run_id: Query<Option<Uuid>>,
        /// Only entries by this actor (a token's name, a worker id, `system`): its actions; step
        /// progress (`step.*`) is listed per run or by kind, not by actor.
        #[oai(validator(max_length = 200))]
        actor: Query<Option<String>>,
        /// Only entries of this kind, e.g. `store.created` or `step.failed`.
        #[oai(validator(max_length = 100))]
        kind: Query<Option<String>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<AuditPage>, ApiError> {
        let before = match cursor.0.as_deref() {
            None => None,
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "malformed cursor {c:?}; pass a next_cursor this API returned"
                ))
            })?),
        };
        let limit = limit.0;
        let filter = EventFilter {
            subject: store_id.0.map(urumi_store::subject::subject),
            run_id: run_id.0,
            actor: actor.0,
            kind: kind.0,
            before,
        };
        let rows: Vec<Event> = self.0.engine.list_events(&filter, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        let rows = &rows[..rows.len().min(limit as usize)];
        Ok(JsonBody(AuditPage {
            items: rows.iter().map(AuditEntry::from).collect(),
            next_cursor: more
                .then(|| rows.last().map(|e| e.id.to_string()))
                .flatten(),
        }))
    }
}
