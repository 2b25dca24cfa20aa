//! The `urumi.stores` rows the store workflows and the API read and write.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::status::StoreStatus;

/// A store as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub engine: String,
    pub plan: String,
    #[sqlx(try_from = "String")]
    pub status: StoreStatus,
    pub url: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The UID of the store's namespace, recorded when a run of this store created it.
    pub namespace_uid: Option<String>,
}

/// Inserts a new store in `provisioning` and returns it; `None` when a live store already
/// has the slug (`stores_live_slug`), in which case nothing is written.
pub(crate) async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    name: &str,
    slug: &str,
    engine: &str,
    plan: &str,
    actor: &str,
) -> sqlx::Result<Option<Store>> {
    sqlx::query_as::<_, Store>(
        "INSERT INTO urumi.stores (id, name, slug, engine, plan, created_by) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (slug) WHERE status <> 'deleted' DO NOTHING RETURNING *",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(engine)
    .bind(plan)
    .bind(actor)
    .fetch_optional(conn)
    .await
}

/// One store.
///
/// # Errors
/// The database error.
pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Store>> {
    sqlx::query_as::<_, Store>("SELECT * FROM urumi.stores WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Deletes the rows of stores deleted more than `kept` ago, `batch` at a time, until none is
/// left; returns how many went. A deleted store's row is kept as long as its audit entries
/// are (the worker passes `retention.audit_days`); then it goes too, so the table holds the
/// live stores and a window of deleted ones.
///
/// # Errors
/// The database error; what was deleted before it stays deleted.
pub async fn prune_deleted(
    pool: &PgPool,
    kept: std::time::Duration,
    batch: u32,
) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM urumi.stores WHERE id IN (
                 SELECT id FROM urumi.stores
                 WHERE status = 'deleted' AND deleted_at < now() - $1 * interval '1 second'
                 ORDER BY id LIMIT $2)",
        )
        .bind(kept.as_secs_f64())
        .bind(i64::from(batch))
        .execute(pool)
        .await?
        .rows_affected();
        total += n;
        if n < u64::from(batch) {
            return Ok(total);
        }
    }
}

/// Moves a store to `to` (and sets `ready_at`/`url` or `deleted_at` as the status implies),
/// only from a status that may precede it ([`StoreStatus::entered_from`]). Returns the status
/// the store had when the move was refused, or `None` when it was made.
///
/// # Errors
/// The database error.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: StoreStatus,
    url: Option<&str>,
) -> sqlx::Result<Option<StoreStatus>> {
    let from: Vec<&str> = to.entered_from().iter().map(|s| s.as_str()).collect();
    let moved = sqlx::query(
        "UPDATE urumi.stores SET status = $2, url = coalesce($3, url), updated_at = now(),
             ready_at = CASE WHEN $2 = 'ready' THEN coalesce(ready_at, now()) ELSE ready_at END,
             deleted_at = CASE WHEN $2 = 'deleted' THEN coalesce(deleted_at, now()) ELSE deleted_at END
         WHERE id = $1 AND status = ANY($4)",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(url)
    .bind(&from)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 1 {
        return Ok(None);
    }
    let now: Option<String> = sqlx::query_scalar("SELECT status FROM urumi.stores WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(Some(
        now.and_then(|s| StoreStatus::try_from(s).ok())
            .unwrap_or(StoreStatus::Deleted),
    ))
}

/// Records the UID of the store's namespace, which a run of this store has just created.
///
/// # Errors
/// The database error.
pub async fn record_namespace_uid(pool: &PgPool, id: Uuid, uid: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE urumi.stores SET namespace_uid = $2 WHERE id = $1")
        .bind(id)
        .bind(uid)
        .execute(pool)
        .await?;
    Ok(())
}
