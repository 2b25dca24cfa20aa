//! The `urumi.stores` rows the store workflows and the API read and write.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::settings::Pins;
use super::status::StoreStatus;

/// A store as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Store {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub engine: String,
    pub plan: String,
    pub status: StoreStatus,
    pub url: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// The UID of the store's namespace, recorded when a run of this store created it.
    pub namespace_uid: Option<String>,
    /// The release channel the store follows.
    pub channel: String,
    /// The channel release it runs; `None` for a store from before channels, until its
    /// first upgrade.
    pub version: Option<String>,
    /// What it runs (see [`Pins`]); `None` with `version`.
    pub pins: Option<Json<Pins>>,
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
    release: (&str, &str, &Pins),
) -> sqlx::Result<Option<Store>> {
    let (channel, version, pins) = release;
    sqlx::query_as!(
        Store,
        r#"INSERT INTO urumi.stores (id, name, slug, engine, plan, created_by, channel, version, pins)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (slug) WHERE status <> 'deleted' DO NOTHING
         RETURNING id, name, slug, engine, plan, status AS "status: StoreStatus", url, created_by,
             created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>""#,
        id,
        name,
        slug,
        engine,
        plan,
        actor,
        channel,
        version,
        Json(pins) as _,
    )
    .fetch_optional(conn)
    .await
}

/// The ids of the stores that are not deleted and match every given filter (a bulk
/// operation's store selector): among `ids`, on `plan`, running `engine`.
///
/// # Errors
/// The database error.
pub async fn matching_ids(
    pool: &PgPool,
    ids: Option<&[Uuid]>,
    plan: Option<&str>,
    engine: Option<&str>,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM urumi.stores
         WHERE status <> 'deleted' AND ($1::uuid[] IS NULL OR id = ANY($1))
           AND ($2::text IS NULL OR plan = $2) AND ($3::text IS NULL OR engine = $3)
         ORDER BY id",
        ids,
        plan,
        engine,
    )
    .fetch_all(pool)
    .await
}

/// One store.
///
/// # Errors
/// The database error.
pub async fn get<'e>(exec: impl sqlx::PgExecutor<'e>, id: Uuid) -> sqlx::Result<Option<Store>> {
    sqlx::query_as!(
        Store,
        r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url, created_by,
               created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
           FROM urumi.stores WHERE id = $1"#,
        id,
    )
    .fetch_optional(exec)
    .await
}

/// One store, locked (`FOR UPDATE`) in the caller's transaction.
///
/// # Errors
/// The database error.
pub(crate) async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<Store>> {
    sqlx::query_as!(
        Store,
        r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url, created_by,
               created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
           FROM urumi.stores WHERE id = $1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Up to `limit` stores, newest first, optionally only those in `status` and only those
/// older than `before` (the previous page's last id).
///
/// Each filter combination is its own statement: a generic plan of `($2 IS NULL OR id < $2)`
/// cannot use the index and would scan from the newest store on every page.
///
/// # Errors
/// The database error.
pub async fn page<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    status: Option<StoreStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<Store>> {
    match (status.map(StoreStatus::as_str), before) {
        (None, None) => {
            sqlx::query_as!(
                Store,
                r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url,
                       created_by, created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
                   FROM urumi.stores ORDER BY id DESC LIMIT $1"#,
                limit,
            )
            .fetch_all(exec)
            .await
        }
        (None, Some(before)) => {
            sqlx::query_as!(
                Store,
                r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url,
                       created_by, created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
                   FROM urumi.stores WHERE id < $2 ORDER BY id DESC LIMIT $1"#,
                limit,
                before,
            )
            .fetch_all(exec)
            .await
        }
        (Some(status), None) => {
            sqlx::query_as!(
                Store,
                r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url,
                       created_by, created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
                   FROM urumi.stores WHERE status = $2 ORDER BY id DESC LIMIT $1"#,
                limit,
                status,
            )
            .fetch_all(exec)
            .await
        }
        (Some(status), Some(before)) => {
            sqlx::query_as!(
                Store,
                r#"SELECT id, name, slug, engine, plan, status AS "status: StoreStatus", url,
                       created_by, created_at, ready_at, deleted_at, updated_at, namespace_uid, channel, version,
               pins AS "pins: Json<Pins>"
                   FROM urumi.stores WHERE id < $2 AND status = $3 ORDER BY id DESC LIMIT $1"#,
                limit,
                before,
                status,
            )
            .fetch_all(exec)
            .await
        }
    }
}

/// How many stores are in each status (statuses without stores absent).
///
/// # Errors
/// The database error.
pub async fn count_by_status<'e>(
    exec: impl sqlx::PgExecutor<'e>,
) -> sqlx::Result<Vec<(StoreStatus, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT status AS "status: StoreStatus", count(*) AS "n!"
           FROM urumi.stores GROUP BY status"#
    )
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().map(|r| (r.status, r.n)).collect())
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
        let n = sqlx::query!(
            "DELETE FROM urumi.stores WHERE id IN (
                 SELECT id FROM urumi.stores
                 WHERE status = 'deleted' AND deleted_at < now() - $1 * interval '1 second'
                 ORDER BY id LIMIT $2)",
            kept.as_secs_f64(),
            i64::from(batch),
        )
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
    let moved = sqlx::query!(
        "UPDATE urumi.stores SET status = $2, url = coalesce($3, url), updated_at = now(),
             ready_at = CASE WHEN $2 = 'ready' THEN coalesce(ready_at, now()) ELSE ready_at END,
             deleted_at = CASE WHEN $2 = 'deleted' THEN coalesce(deleted_at, now()) ELSE deleted_at END
         WHERE id = $1 AND status = ANY($4)",
        id,
        to.as_str(),
        url,
        &from as _,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if moved == 1 {
        return Ok(None);
    }
    let now: Option<String> =
        sqlx::query_scalar!("SELECT status FROM urumi.stores WHERE id = $1", id)
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
    sqlx::query!(
        "UPDATE urumi.stores SET namespace_uid = $2 WHERE id = $1",
        id,
        uid,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records the store's plan (a resize request, in its transaction).
///
/// # Errors
/// The database error.
pub async fn set_plan(conn: &mut PgConnection, id: Uuid, plan: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.stores SET plan = $2, updated_at = now() WHERE id = $1",
        id,
        plan
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The custom domains of store `id` (`urumi.store_domains`), oldest first: the first is its
/// primary domain (`crate::domains::primary`).
///
/// # Errors
/// The database error.
pub async fn domains<'e>(exec: impl sqlx::PgExecutor<'e>, id: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT domain FROM urumi.store_domains WHERE store_id = $1 ORDER BY created_at, domain",
        id,
    )
    .fetch_all(exec)
    .await
}

/// The custom domains of each of the stores `ids` (a page of stores) in one statement, each
/// store's oldest first; stores without any are absent.
///
/// # Errors
/// The database error.
pub async fn domains_of<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<std::collections::HashMap<Uuid, Vec<String>>> {
    let rows = sqlx::query!(
        "SELECT store_id, domain FROM urumi.store_domains WHERE store_id = ANY($1)
         ORDER BY store_id, created_at, domain",
        ids,
    )
    .fetch_all(exec)
    .await?;
    let mut by_store = std::collections::HashMap::<Uuid, Vec<String>>::new();
    for r in rows {
        by_store.entry(r.store_id).or_default().push(r.domain);
    }
    Ok(by_store)
}

/// The store holding `domain`, if any (deleted stores hold none: their rows go when they are
/// marked deleted, by trigger).
pub(crate) async fn domain_holder(
    conn: &mut PgConnection,
    domain: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT store_id FROM urumi.store_domains WHERE domain = $1",
        domain
    )
    .fetch_optional(conn)
    .await
}

/// Attaches `domain` to store `id`; false when a store already holds it (the unique index
/// decides between two requests racing for it), in which case nothing is written.
pub(crate) async fn attach_domain(
    conn: &mut PgConnection,
    id: Uuid,
    domain: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "INSERT INTO urumi.store_domains (store_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        id,
        domain,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Detaches `domain` from store `id`; false when the store did not hold it.
pub(crate) async fn detach_domain(
    conn: &mut PgConnection,
    id: Uuid,
    domain: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "DELETE FROM urumi.store_domains WHERE store_id = $1 AND domain = $2",
        id,
        domain,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records what a store runs after a successful upgrade: its channel, release and pins.
///
/// # Errors
/// The database error.
pub async fn set_release<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    channel: &str,
    version: &str,
    pins: &Pins,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE urumi.stores SET channel = $2, version = $3, pins = $4, updated_at = now()
         WHERE id = $1",
        id,
        channel,
        version,
        Json(pins) as _,
    )
    .execute(exec)
    .await?;
    Ok(())
}

/// One line of the fleet's version spread: how many live stores run `version` of `channel`
/// (`None`: unrecorded, a store from before channels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    pub channel: String,
    pub version: Option<String>,
    pub stores: i64,
}

/// The fleet's version spread: live (not deleted) stores by channel and release, channel
/// then release order, unrecorded last within a channel.
///
/// # Errors
/// The database error.
pub async fn version_spread<'e>(
    exec: impl sqlx::PgExecutor<'e>,
) -> sqlx::Result<Vec<VersionCount>> {
    sqlx::query_as!(
        VersionCount,
        r#"SELECT channel, version, count(*) AS "stores!"
           FROM urumi.stores WHERE status <> 'deleted'
           GROUP BY channel, version ORDER BY channel, version NULLS LAST"#
    )
    .fetch_all(exec)
    .await
}
