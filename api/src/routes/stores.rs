//! `/api/v1/stores`: create (idempotent, capped, rate-limited), list, show, delete, repair
//! (both with `dry_run`), and a store's runs. Suspend and resume: [`super::lifecycle`].

use std::sync::Arc;

use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, Object, OpenApi};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use urumi_store::db::Store as StoreRow;
use urumi_store::service;
use uuid::Uuid;

use super::lifecycle::{ActionAnswer, Request, act};
use super::{ApiTags, audit_in, parse_uuid_cursor};
use crate::auth::{Auth, Role};
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::text::Text;
use crate::views::store_actions::StoreAction;
use crate::views::{
    RunKind, RunPage, RunSummary, Store, StoreAccepted, StoreEngine, StorePage, StoreStatus,
    usage::StoreUsage,
};

/// Stores: what users create and delete.
#[derive(Debug)]
pub struct StoresApi(pub Arc<AppState>);

/// What a new store should be.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct CreateStore {
    /// The store's name; its address is derived from it (lowercase letters, digits and
    /// dashes; 3 to 40 characters after conversion).
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Text,
    pub engine: StoreEngine,
    /// A plan from the platform's settings; the default plan when absent.
    #[oai(validator(min_length = 1, max_length = 50))]
    pub plan: Option<Text>,
}

#[derive(Debug, ApiResponse)]
enum Accepted {
    /// Accepted: the store exists and its run is queued.
    #[oai(status = 202)]
    Accepted(JsonBody<StoreAccepted>),
}

/// A read-only snapshot for a read of stores and their runs: a store's status follows its
/// provisioning run by trigger, in the run's transaction, so both are read as of one moment.
async fn snapshot(
    state: &AppState,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, ApiError> {
    Ok(state
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?)
}

/// The views of `rows`, each with its store's newest run, read through the engine (which owns
/// `urumi.runs`) in one statement for the whole page, and its custom domains (one more).
async fn with_newest_runs(
    conn: &mut PgConnection,
    rows: Vec<StoreRow>,
) -> Result<Vec<Store>, ApiError> {
    let subjects: Vec<String> = rows
        .iter()
        .map(|s| urumi_store::subject::subject(s.id))
        .collect();
    let mut runs = urumi_engine::newest_runs_in(&mut *conn, &subjects).await?;
    let ids: Vec<Uuid> = rows.iter().map(|s| s.id).collect();
    let mut domains = urumi_store::db::domains_of(&mut *conn, &ids).await?;
    rows.into_iter()
        .zip(&subjects)
        .map(|(store, subject)| {
            let run = runs.remove(subject).map(|r| RunSummary::from(&r));
            let domains = domains.remove(&store.id).unwrap_or_default();
            Ok(Store::from_owned(store, run, domains)?)
        })
        .collect()
}

/// One page of stores, newest first, optionally of one status, before an id.
async fn list_page(
    state: &AppState,
    status: Option<StoreStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Store>, ApiError> {
    let mut tx = snapshot(state).await?;
    let rows = urumi_store::db::page(&mut *tx, status.map(Into::into), before, limit).await?;
    let stores = with_newest_runs(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(stores)
}

/// One store with its newest run.
pub(super) async fn one(state: &AppState, id: Uuid) -> Result<Option<Store>, ApiError> {
    let mut tx = snapshot(state).await?;
    let rows: Vec<StoreRow> = urumi_store::db::get(&mut *tx, id)
        .await?
        .into_iter()
        .collect();
    let mut stores = with_newest_runs(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(stores.pop())
}

pub(super) async fn run_summary(conn: &mut PgConnection, id: Uuid) -> Result<RunSummary, ApiError> {
    Ok(RunSummary::from(&urumi_engine::run_in(conn, id).await?))
}

fn request_hash(body: &CreateStore) -> Vec<u8> {
    let canonical = serde_json::json!({
        "name": &*body.name,
        "engine": body.engine.as_str(),
        "plan": body.plan.as_deref(),
    });
    Sha256::digest(canonical.to_string().as_bytes()).to_vec()
}

/// Records the key, or finds the answer of its first use. `Ok(None)`: first use.
async fn claim_key(
    tx: &mut PgConnection,
    actor: &str,
    key: &str,
    hash: &[u8],
) -> Result<Option<StoreAccepted>, ApiError> {
    let inserted = sqlx::query!(
        "INSERT INTO urumi.idempotency_keys (actor, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        actor,
        key,
        hash,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let stored = sqlx::query!(
        "SELECT request_hash, response FROM urumi.idempotency_keys WHERE actor = $1 AND key = $2",
        actor,
        key,
    )
    .fetch_one(&mut *tx)
    .await?;
    let (stored_hash, response) = (stored.request_hash, stored.response);
    if stored_hash != hash {
        return Err(ApiError::unprocessable(
            None,
            format!("Idempotency-Key {key:?} was used with a different request body"),
        ));
    }
    let response = response.ok_or_else(|| {
        ApiError::conflict(format!(
            "a request with Idempotency-Key {key:?} is in progress"
        ))
    })?;
    StoreAccepted::parse_from_json(Some(response))
        .map(Some)
        .map_err(|e| ApiError::internal(&e.into_message()))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Stores")]
impl StoresApi {
    /// Create a store and start provisioning it.
    ///
    /// The store row, its provisioning run, the audit entry and the idempotency record are
    /// written in one transaction. Needs `admin`.
    #[oai(path = "/stores", method = "post", operation_id = "create_store")]
    async fn create_store(
        &self,
        auth: Auth,
        body: Json<CreateStore>,
        /// Repeat a create safely: the same key and body answer the first result; the same
        /// key with another body is 422. Keys are kept for `api.idempotency_ttl_hours`.
        #[oai(name = "Idempotency-Key", validator(min_length = 1, max_length = 200))]
        idempotency_key: Header<Option<String>>,
    ) -> Result<Accepted, ApiError> {
        auth.0.require(Role::Admin)?;
        let state = &self.0;
        let actor = auth.0.actor().to_owned();
        let body = body.0;
        let mut tx = state.pool.begin().await?;
        if let Some(key) = &idempotency_key.0
            && let Some(earlier) = claim_key(&mut tx, &actor, key, &request_hash(&body)).await?
        {
            return Ok(Accepted::Accepted(JsonBody(earlier)));
        }
        if let Err(wait) = state.limiter.take(&actor) {
            return Err(ApiError::too_many(
                format!(
                    "{actor:?} may create {} stores per second",
                    state.settings.api.create_rate_per_sec
                ),
                wait.as_secs_f64().ceil() as u64,
            ));
        }
        state.caps.check(&mut tx, &actor).await?;
        let requested = service::create_in(
            &mut tx,
            &state.engine,
            &state.settings.stores,
            &body.name,
            body.engine.as_str(),
            body.plan.as_deref(),
            &actor,
        )
        .await?;
        let store_id = requested.store.id;
        audit_in(
            &mut tx,
            "store.created",
            &actor,
            Some(store_id),
            Some(requested.run_id),
            serde_json::json!({ "name": requested.store.name, "slug": requested.store.slug,
                                "plan": requested.store.plan, "engine": requested.store.engine }),
        )
        .await?;
        let run = run_summary(&mut tx, requested.run_id).await?;
        let accepted = StoreAccepted {
            // A new store has no custom domains.
            store: Store::from_row(&requested.store, Some(run.clone()), Vec::new())?,
            run,
        };
        if let Some(key) = &idempotency_key.0 {
            sqlx::query!(
                "UPDATE urumi.idempotency_keys SET response = $3 WHERE actor = $1 AND key = $2",
                actor,
                key,
                accepted.to_json(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(store = %store_id, run = %accepted.run.id, %actor, "store created");
        Ok(Accepted::Accepted(JsonBody(accepted)))
    }

    /// List stores, newest first, optionally by status.
    #[oai(path = "/stores", method = "get", operation_id = "list_stores")]
    async fn list_stores(
        &self,
        _auth: Auth,
        /// Only stores in this status.
        status: Query<Option<StoreStatus>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<StorePage>, ApiError> {
        let before = parse_uuid_cursor(cursor.0.as_deref())?;
        let limit = limit.0;
        let mut items = list_page(&self.0, status.0, before, limit + 1).await?;
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next_cursor = more
            .then(|| items.last().map(|s| s.id.to_string()))
            .flatten();
        Ok(JsonBody(StorePage { items, next_cursor }))
    }

    /// One store: status, URL, engine, timings and its current run.
    #[oai(path = "/stores/:id", method = "get", operation_id = "get_store")]
    async fn get_store(&self, _auth: Auth, id: Path<Uuid>) -> Result<JsonBody<Store>, ApiError> {
        let store = one(&self.0, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("store {} not found", id.0)))?;
        Ok(JsonBody(store))
    }

    /// A store's resource usage against its quota (CPU, memory, storage, pods, …), as a
    /// worker last read its ResourceQuota's `status` (`observed_at`; empty until the first
    /// observation, see the worker's `[usage] cron`).
    #[oai(
        path = "/stores/:id/usage",
        method = "get",
        operation_id = "get_store_usage"
    )]
    async fn get_store_usage(
        &self,
        _auth: Auth,
        id: Path<Uuid>,
    ) -> Result<JsonBody<StoreUsage>, ApiError> {
        let pool = &self.0.pool;
        urumi_store::db::get(pool, id.0)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("store {} not found", id.0)))?;
        let usage = urumi_store::usage::of_store(pool, id.0).await?;
        Ok(JsonBody(StoreUsage::new(id.0, usage.as_ref())))
    }

    /// Start deleting a store (its namespace and everything in it). A provisioning, repair,
    /// suspend or resume run is cancelled at its next step boundary. Asking again while the
    /// deletion runs answers the same run. With `dry_run=true`, nothing is started: the answer
    /// holds what the deletion would delete. Needs `admin`.
    #[oai(path = "/stores/:id", method = "delete", operation_id = "delete_store")]
    async fn delete_store(
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
            Role::Admin,
            id.0,
            dry_run.0,
            Request::Delete,
        )
        .await
    }

    /// Start a repair: re-apply the store's desired state (a suspended store stays
    /// suspended); the run's output lists objects that had drifted or were missing. With
    /// `dry_run=true`, nothing is started: the answer holds what the repair would change.
    /// Needs `operator`.
    #[oai(
        path = "/stores/:id/repair",
        method = "post",
        operation_id = "repair_store"
    )]
    async fn repair_store(
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
            Request::Repair,
        )
        .await
    }

    /// A store's runs, newest first, a page at a time.
    #[oai(
        path = "/stores/:id/runs",
        method = "get",
        operation_id = "list_store_runs"
    )]
    async fn list_store_runs(
        &self,
        _auth: Auth,
        id: Path<Uuid>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 200.
        #[oai(
            default = "super::default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<i64>,
    ) -> Result<JsonBody<RunPage>, ApiError> {
        let before = parse_uuid_cursor(cursor.0.as_deref())?;
        if urumi_store::db::get(&self.0.pool, id.0).await?.is_none() {
            return Err(ApiError::not_found(format!("store {} not found", id.0)));
        }
        let filter = urumi_engine::RunFilter {
            subject: Some(urumi_store::subject::subject(id.0)),
            before,
            ..Default::default()
        };
        super::runs::run_page(&self.0, &filter, limit.0).await
    }
}

/// The answer to a request for an action whose run is already under way: that run when it
/// is one of `kind` (asking twice is answered the same), else 409.
pub(super) async fn existing_run(
    state: &AppState,
    store: Uuid,
    active: Uuid,
    kind: RunKind,
) -> Result<ActionAnswer, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let run = run_summary(&mut conn, active).await?;
    if run.kind != kind {
        return Err(ApiError::conflict(format!(
            "store {store} has an active {} run {active}",
            run.kind.definition()
        )));
    }
    let row = urumi_store::db::get(&state.pool, store)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("store {store} not found")))?;
    Ok(ActionAnswer::Accepted(JsonBody(StoreAction {
        store: Store::from_row(
            &row,
            Some(run.clone()),
            urumi_store::db::domains(&state.pool, store).await?,
        )?,
        run: Some(run),
        not_started: None,
        cluster_plan: None,
        plan: None,
    })))
}
