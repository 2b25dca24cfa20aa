//! `operation@1`: the parent run that carries an operation out, one step `drive` that polls
//! ([`crate::drive`]) until every target has been acted on.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use urumi_engine::{Definition, Engine, Registry, RetryPolicy, StepContext, StepOptions};
use urumi_store::settings::StoreSettings;
use uuid::Uuid;

/// The operation workflow's name.
pub const NAME: &str = "operation";
/// Its version.
pub const VERSION: i32 = 1;

/// The parent run's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperationInput {
    pub operation_id: Uuid,
}

/// The subject of operation `id`'s parent run.
#[must_use]
pub fn subject(id: Uuid) -> String {
    format!("operation:{id}")
}

fn options() -> StepOptions {
    StepOptions::default()
        // A poll starts at most `drive::STARTS_PER_POLL` targets: well inside this.
        .timeout(Duration::from_secs(300))
        // Paused or awaiting approval for up to a month.
        .wait_deadline(Duration::from_secs(30 * 24 * 3600))
        .retry(RetryPolicy::default())
}

/// `operation@1` declared (no code): what an engine that only starts operations needs.
///
/// # Errors
/// Never in practice; the builder's checks.
pub fn declared() -> urumi_engine::Result<Definition> {
    Definition::builder(NAME, VERSION)
        .input::<OperationInput>()
        .declare_with("drive", options())
        .build()
}

/// `operation@1` with its code. Its targets are acted on through an engine over `registry`
/// (the definitions a target's run may be of); a resize or upgrade reads `stores`' plans and
/// channels.
///
/// # Errors
/// As [`declared`].
pub fn definition(
    pool: PgPool,
    registry: Registry,
    stores: Arc<StoreSettings>,
) -> urumi_engine::Result<Definition> {
    let engine = Engine::new(pool, registry);
    declared()?.implement("drive", move |ctx: StepContext| {
        let engine = engine.clone();
        let stores = stores.clone();
        async move { crate::drive::poll(&engine, &stores, &ctx).await }
    })
}

/// `registry` with `operation@1` declared beside its definitions (an API's engine).
///
/// # Errors
/// When `registry` already has `operation@1`.
pub fn with_declared(registry: &Registry) -> urumi_engine::Result<Registry> {
    Registry::new(registry.iter().map(|d| (**d).clone()).chain([declared()?]))
}

/// `registry` with `operation@1` and its code (a worker's).
///
/// # Errors
/// As [`with_declared`].
pub fn with_code(
    pool: PgPool,
    registry: &Registry,
    stores: Arc<StoreSettings>,
) -> urumi_engine::Result<Registry> {
    Registry::new(registry.iter().map(|d| (**d).clone()).chain([definition(
        pool,
        registry.clone(),
        stores,
    )?]))
}
