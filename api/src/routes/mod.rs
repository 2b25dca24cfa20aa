//! The `/api/v1` operations, one file per resource, and what they share: tags, page sizes,
//! cursors and the audit-entry writer.

pub mod audit;
pub mod backups;
pub mod domains;
pub mod events;
pub mod health;
pub mod insights;
pub mod lifecycle;
pub mod operations;
pub mod plans;
pub mod runs;
pub mod stores;
pub mod tokens;

use poem_openapi::Tags;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::problem::ApiError;

/// Groups of operations in the OpenAPI document.
#[derive(Debug, Tags)]
pub enum ApiTags {
    /// Stores: create, list, show, delete, repair, suspend, resume, resize, back up, restore,
    /// upgrade, custom domains.
    Stores,
    /// Workflow runs: inspect, retry, cancel, rerun.
    Runs,
    /// Bulk operations: one request over every run a selector matches.
    Operations,
    /// Who did what, and every run, step and store transition.
    Audit,
    /// API tokens and their roles.
    Tokens,
    /// The plans a store can be created on, the release channels and the version spread.
    Plans,
    /// Where time goes: step and run durations, failures, retries, waits.
    Insights,
    /// Liveness, readiness and metrics.
    Health,
}

/// The page size when none is given.
#[must_use]
pub fn default_limit() -> i64 {
    50
}

/// A UUID cursor (the last id of the previous page).
///
/// # Errors
/// 400 for anything that is not such a cursor.
pub fn parse_uuid_cursor(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    cursor
        .map(|c| {
            Uuid::try_parse(c).map_err(|_| {
                ApiError::bad_request(format!(
                    "malformed cursor {c:?}; pass a next_cursor this API returned"
                ))
            })
        })
        .transpose()
}

/// Appends an audit entry inside the caller's transaction.
///
/// # Errors
/// The database error.
pub async fn audit_in(
    tx: &mut PgConnection,
    kind: &str,
    actor: &str,
    store: Option<Uuid>,
    run: Option<Uuid>,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    urumi_engine::audit_in(
        tx,
        urumi_engine::AuditEntry {
            kind,
            actor,
            subject: store.map(urumi_store::subject::subject),
            run_id: run,
            detail,
        },
    )
    .await?;
    Ok(())
}
