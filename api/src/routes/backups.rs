//! `/api/v1/stores/{id}/backups` and `/restore`: a store's backups listed, one made on
//! request, and a restore from one of the store's own complete backups — both through the
//! same action path as suspend and resume (`super::lifecycle::act`), so they accept
//! `dry_run=true` and answer a run already under way.

use std::sync::Arc;

use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use uuid::Uuid;

use super::ApiTags;
use super::lifecycle::{ActionAnswer, Request, act};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::views::backups::{Backup, BackupList, RestoreStore};

/// How many backups a listing shows (retention keeps far fewer complete ones; the rest is
/// history: failed and pruned rows).
const LISTED: i64 = 100;

/// A store's backups and restores.
#[derive(Debug)]
pub struct BackupsApi(pub Arc<AppState>);

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Stores")]
impl BackupsApi {
    /// A store's backups, newest first (at most 100): status, reason, where the archive is,
    /// its size and SHA-256 once complete. Pruned and failed backups stay listed as history.
    #[oai(
        path = "/stores/:id/backups",
        method = "get",
        operation_id = "list_store_backups"
    )]
    async fn list_store_backups(
        &self,
        _auth: Auth,
        id: Path<Uuid>,
    ) -> Result<JsonBody<BackupList>, ApiError> {
        let pool = &self.0.pool;
        urumi_store::db::get(pool, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("store {} not found", id.0)))?;
        let items = urumi_store::backups::of_store(pool, id.0, LISTED)
            .await?
            .into_iter()
            .map(Backup::from)
            .collect();
        Ok(JsonBody(BackupList { items }))
    }

    /// Back a ready store up: a `mariadb-dump --single-transaction` of its database and an
    /// archive of its uploads, written to its backup volume or the configured bucket; the
    /// archive's size and SHA-256 are recorded, and backups beyond the plan's retention are
    /// pruned. Refused (409) unless the store is ready (a suspended store's database is not
    /// running). With `dry_run=true`, nothing is started: the answer holds the objects the
    /// backup would write. Needs `operator`.
    #[oai(
        path = "/stores/:id/backups",
        method = "post",
        operation_id = "backup_store"
    )]
    async fn backup_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
    ) -> Result<ActionAnswer, ApiError> {
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Backup,
        )
        .await
    }

    /// Restore a ready store from one of its own complete backups: its web tier goes to zero
    /// (shoppers get the ingress controller's 503, not a half-restored shop), the archive's
    /// checksum is verified, the database and uploads are replaced, the web tier comes back
    /// and the storefront check must pass. 404 for an unknown backup, 422 for another
    /// store's, 409 for one that is not complete or a store that is not ready. With
    /// `dry_run=true`, nothing is started: the answer holds what the restore would write.
    /// Needs `operator`.
    #[oai(
        path = "/stores/:id/restore",
        method = "post",
        operation_id = "restore_store"
    )]
    async fn restore_store(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
        body: Json<RestoreStore>,
    ) -> Result<ActionAnswer, ApiError> {
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::Restore(body.0.backup_id),
        )
        .await
    }
}
