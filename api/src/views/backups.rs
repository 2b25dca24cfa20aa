//! The JSON shapes of a store's backups (`GET /api/v1/stores/{id}/backups`) and of a
//! restore request.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use super::rfc3339;

/// Where a backup is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// Its dump is under way.
    Pending,
    /// Archived, with size and checksum: restorable.
    Complete,
    /// Its run failed or was cancelled: no archive.
    Failed,
    /// Retention removed its archive.
    Pruned,
}

impl From<urumi_store::backups::BackupStatus> for BackupStatus {
    fn from(s: urumi_store::backups::BackupStatus) -> Self {
        use urumi_store::backups::BackupStatus as S;
        match s {
            S::Pending => Self::Pending,
            S::Complete => Self::Complete,
            S::Failed => Self::Failed,
            S::Pruned => Self::Pruned,
        }
    }
}

/// Why a backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum BackupReason {
    /// Someone asked (API, CLI, dashboard, a bulk operation).
    Manual,
    /// The plan's backup schedule.
    Scheduled,
    /// Before an upgrade.
    PreUpgrade,
}

impl From<urumi_store::backups::BackupReason> for BackupReason {
    fn from(r: urumi_store::backups::BackupReason) -> Self {
        use urumi_store::backups::BackupReason as R;
        match r {
            R::Manual => Self::Manual,
            R::Scheduled => Self::Scheduled,
            R::PreUpgrade => Self::PreUpgrade,
        }
    }
}

/// One backup of a store.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Backup {
    pub id: Uuid,
    pub store_id: Uuid,
    /// The `store.backup` run that makes it.
    pub run_id: Uuid,
    pub status: BackupStatus,
    pub reason: BackupReason,
    /// `pvc` (the store's backup volume) or `s3`; absent until its run starts working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// The archive's size in bytes, once complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// The archive's SHA-256 (hex), once complete; a restore verifies it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub requested_by: String,
    #[serde(serialize_with = "rfc3339::one")]
    pub created_at: DateTime<Utc>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub pruned_at: Option<DateTime<Utc>>,
}

impl From<urumi_store::backups::Backup> for Backup {
    fn from(b: urumi_store::backups::Backup) -> Self {
        Self {
            id: b.id,
            store_id: b.store_id,
            run_id: b.run_id,
            status: b.status.into(),
            reason: b.reason.into(),
            storage: b.storage,
            size_bytes: b.size_bytes,
            sha256: b.sha256,
            requested_by: b.requested_by,
            created_at: b.created_at,
            completed_at: b.completed_at,
            pruned_at: b.pruned_at,
        }
    }
}

/// A store's backups, newest first.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct BackupList {
    pub items: Vec<Backup>,
}

/// The backup to restore a store from.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct RestoreStore {
    /// One of the store's own complete backups (`GET /api/v1/stores/{id}/backups`).
    pub backup_id: Uuid,
}
