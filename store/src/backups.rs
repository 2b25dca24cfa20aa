//! A store's backups: the `urumi.store_backups` rows. A row is written with the run that
//! makes it (`store.backup`), in the same transaction, so one request is one row and one
//! archive — a re-run of the same run finds its row, never makes a second.
//!
//! ```text
//!   pending ──► complete ──► pruned     (retention: the plan's `backups.retention` newest
//!      │                                 complete ones are kept)
//!    ▲ └──────► failed                   (its run failed or was cancelled, by trigger:
//!    └───────────┘                         and back when an operator retries the run)
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::settings::BackupStorage;

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// Its dump is under way.
    Pending,
    /// Archived, with size and checksum: restorable.
    Complete,
    /// Its run failed or was cancelled: there is no archive.
    Failed,
    /// Retention removed its archive.
    Pruned,
}

impl BackupStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Pruned => "pruned",
        }
    }
}

/// Why a backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BackupReason {
    /// Someone asked for it (API, CLI, dashboard, a bulk operation).
    Manual,
    /// The plan's backup schedule.
    Scheduled,
    /// Taken by an upgrade before it changes anything.
    PreUpgrade,
}

impl BackupReason {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
            Self::PreUpgrade => "pre_upgrade",
        }
    }
}

/// A backup as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub id: Uuid,
    pub store_id: Uuid,
    pub run_id: Uuid,
    pub reason: BackupReason,
    /// `pvc` or `s3`: where its archive is written (set when its run starts working).
    pub storage: Option<String>,
    pub status: BackupStatus,
    pub size_bytes: Option<i64>,
    /// Hex SHA-256 of the archive.
    pub sha256: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub pruned_at: Option<DateTime<Utc>>,
}

/// Records a new `pending` backup of `store_id`, made by run `run_id`.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    store_id: Uuid,
    run_id: Uuid,
    reason: BackupReason,
    actor: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.store_backups (id, store_id, run_id, reason, requested_by)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        store_id,
        run_id,
        reason.as_str(),
        actor,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records where backup `id`'s archive goes.
///
/// # Errors
/// The database error.
pub async fn set_storage<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    storage: BackupStorage,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.store_backups SET storage = $2 WHERE id = $1",
        id,
        storage.as_str()
    )
    .execute(exec)
    .await?;
    Ok(())
}

/// One backup.
///
/// # Errors
/// The database error.
pub async fn get<'e>(exec: impl sqlx::PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Backup>> {
    sqlx::query_as!(
        Backup,
        r#"SELECT id, store_id, run_id, reason AS "reason: BackupReason", storage,
               status AS "status: BackupStatus", size_bytes, sha256, requested_by, created_at,
               completed_at, pruned_at
           FROM urumi.store_backups WHERE id = $1"#,
        id
    )
    .fetch_optional(exec)
    .await
}

/// A store's backups, newest first (at most `limit`).
///
/// # Errors
/// The database error.
pub async fn of_store<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    store_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Backup>> {
    sqlx::query_as!(
        Backup,
        r#"SELECT id, store_id, run_id, reason AS "reason: BackupReason", storage,
               status AS "status: BackupStatus", size_bytes, sha256, requested_by, created_at,
               completed_at, pruned_at
           FROM urumi.store_backups WHERE store_id = $1
           ORDER BY created_at DESC, id DESC LIMIT $2"#,
        store_id,
        limit
    )
    .fetch_all(exec)
    .await
}

/// The complete backups of `store_id` that retention drops once `id` completes: all but the
/// `keep - 1` newest other complete ones (`keep` counts `id` itself).
///
/// # Errors
/// The database error.
pub async fn to_prune<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    store_id: Uuid,
    id: Uuid,
    keep: u32,
) -> sqlx::Result<Vec<Uuid>> {
    let others = i64::from(keep.max(1) - 1);
    sqlx::query_scalar!(
        "SELECT id FROM urumi.store_backups
         WHERE store_id = $1 AND id <> $2 AND status = 'complete'
         ORDER BY created_at DESC, id DESC OFFSET $3",
        store_id,
        id,
        others
    )
    .fetch_all(exec)
    .await
}

/// Marks `id` complete with its archive's size and checksum, and `pruned` as pruned, in one
/// transaction. Idempotent: a backup already complete keeps its first figures.
///
/// # Errors
/// The database error.
pub async fn complete(
    conn: &mut PgConnection,
    id: Uuid,
    size: i64,
    sha256: &str,
    pruned: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.store_backups
         SET status = 'complete', size_bytes = $2, sha256 = $3, completed_at = now()
         WHERE id = $1 AND status = 'pending'",
        id,
        size,
        sha256
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE urumi.store_backups SET status = 'pruned', pruned_at = now()
         WHERE id = ANY($1) AND status = 'complete'",
        pruned
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records, once per run, that run `run_id` restored `store_id` from backup `id`: an event
/// `store.restored` on the store's subject (the live stream and the audit log show it).
///
/// # Errors
/// The database error.
pub async fn record_restored<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    store_id: Uuid,
    id: Uuid,
    run_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO urumi.events (run_id, subject, kind, actor, detail)
         SELECT $1, $2, 'store.restored', 'system', jsonb_build_object('backup', $3::uuid)
         WHERE NOT EXISTS (SELECT 1 FROM urumi.events WHERE run_id = $1 AND kind = 'store.restored')",
        run_id,
        super::subject::subject(store_id),
        id
    )
    .execute(exec)
    .await?;
    Ok(())
}

/// The ready stores on `plan`, oldest first.
///
/// # Errors
/// The database error.
pub async fn ready_on_plan<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    plan: &str,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM urumi.stores WHERE status = 'ready' AND plan = $1 ORDER BY id",
        plan
    )
    .fetch_all(exec)
    .await
}

/// The backups requested by `actor`, as `(store, backup, run)`.
///
/// # Errors
/// The database error.
pub async fn requested_by<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    actor: &str,
) -> sqlx::Result<Vec<(Uuid, Uuid, Uuid)>> {
    Ok(sqlx::query!(
        "SELECT store_id, id, run_id FROM urumi.store_backups WHERE requested_by = $1 ORDER BY id",
        actor
    )
    .fetch_all(exec)
    .await?
    .into_iter()
    .map(|r| (r.store_id, r.id, r.run_id))
    .collect())
}

/// How many complete backups the stores `ids` have (a bulk backup's progress).
///
/// # Errors
/// The database error.
pub async fn count_complete<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<i64> {
    Ok(sqlx::query_scalar!(
        "SELECT count(*) FROM urumi.store_backups WHERE status = 'complete' AND store_id = ANY($1)",
        ids
    )
    .fetch_one(exec)
    .await?
    .unwrap_or(0))
}
