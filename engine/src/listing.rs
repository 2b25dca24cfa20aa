//! Pages of runs and of the audit log for people (the API, the CLI): filters and keyset
//! cursors over the engine's tables, newest first. The engine owns these reads, so callers
//! never write SQL against `urumi.runs` or `urumi.events`.

use uuid::Uuid;

use crate::model::RunStatus;

/// Which runs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs of this definition (name).
    pub definition: Option<String>,
    /// Only runs of this subject.
    pub subject: Option<String>,
    /// Only runs older than this one (the previous page's last id).
    pub before: Option<Uuid>,
}

/// Which audit-log entries (events) to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only entries about this subject.
    pub subject: Option<String>,
    /// Only entries about this run.
    pub run_id: Option<Uuid>,
    /// Only entries by this actor.
    pub actor: Option<String>,
    /// Only entries of this kind.
    pub kind: Option<String>,
    /// Only entries older than this id (the previous page's last id).
    pub before: Option<i64>,
}

/// An audit entry a caller appends in its own transaction (an operator action).
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// e.g. `store.created`, `token.revoked`.
    pub kind: &'a str,
    /// Who did it.
    pub actor: &'a str,
    /// What it is about, e.g. `store:<id>`.
    pub subject: Option<String>,
    /// The run it concerns.
    pub run_id: Option<Uuid>,
    /// Anything else worth keeping.
    pub detail: serde_json::Value,
}
