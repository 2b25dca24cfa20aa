//! Which runs a bulk operation acts on: a [`RunSelector`] → the matching runs, each its
//! subject's newest (only the newest run of a subject is ever retried, re-run or steered).
//! The engine owns this read like every read of its tables; callers that filter by their own
//! rows (a store's plan) pass the subjects those rows name.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::model::{RunStatus, RunStatusColumn};

/// What a bulk operation's targets must match; every field narrows, none set matches all.
#[derive(Debug, Clone, Default)]
pub struct RunSelector {
    /// Runs in this status.
    pub status: Option<RunStatus>,
    /// Runs of this definition (name).
    pub definition: Option<String>,
    /// Runs whose step of this name failed.
    pub failed_step: Option<String>,
    /// Runs whose error contains this text (case-insensitive).
    pub error_contains: Option<String>,
    /// Runs created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Runs created before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// Runs of these subjects only.
    pub subjects: Option<Vec<String>>,
}

/// A run a selector matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub id: Uuid,
    pub definition: String,
    pub version: i32,
    pub subject: String,
    pub status: RunStatus,
    pub error: Option<String>,
    /// The step that failed, if one did.
    pub failed_step: Option<String>,
}

/// Up to `limit` runs matching `selector`, each the newest run of its subject, oldest first.
pub(crate) async fn select(
    pool: &PgPool,
    s: &RunSelector,
    limit: i64,
) -> sqlx::Result<Vec<Matched>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.definition, r.version, r.subject, r.status AS "status: RunStatusColumn", r.error,
                  (SELECT f.name FROM urumi.steps f WHERE f.run_id = r.id AND f.status = 'failed'
                   ORDER BY f.position LIMIT 1) AS failed_step
           FROM urumi.runs r
           WHERE ($1::text IS NULL OR r.status = $1)
             AND ($2::text IS NULL OR r.definition = $2)
             AND ($3::text IS NULL OR EXISTS (
                     SELECT 1 FROM urumi.steps f WHERE f.run_id = r.id AND f.name = $3 AND f.status = 'failed'))
             AND ($4::text IS NULL OR strpos(lower(r.error), lower($4)) > 0)
             AND ($5::timestamptz IS NULL OR r.created_at >= $5)
             AND ($6::timestamptz IS NULL OR r.created_at < $6)
             AND ($7::text[] IS NULL OR r.subject = ANY($7))
             AND NOT EXISTS (SELECT 1 FROM urumi.runs n WHERE n.subject = r.subject AND n.id > r.id)
           ORDER BY r.id
           LIMIT $8"#,
        s.status.map(RunStatus::as_str),
        s.definition.as_deref(),
        s.failed_step.as_deref(),
        s.error_contains.as_deref(),
        s.created_after,
        s.created_before,
        s.subjects.as_deref(),
        limit,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Matched {
            id: r.id,
            definition: r.definition,
            version: r.version,
            subject: r.subject,
            status: r.status.0,
            error: r.error,
            failed_step: r.failed_step,
        })
        .collect())
}
