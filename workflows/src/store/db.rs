//! The `urumi.stores` rows the store workflows and the API read and write.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A store as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub engine: String,
    pub plan: String,
    pub status: String,
    pub url: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
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

/// Sets a store's status (and `ready_at`/`url` or `deleted_at` as the status implies).
pub(crate) async fn set_status<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    status: &str,
    url: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE urumi.stores SET status = $2, url = coalesce($3, url), updated_at = now(),
             ready_at = CASE WHEN $2 = 'ready' THEN coalesce(ready_at, now()) ELSE ready_at END,
             deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(url)
    .execute(exec)
    .await?;
    Ok(())
}
