//! What every request handler shares: the pool, the engine (to start and steer runs), the
//! settings, the token cache, the create-rate limiter, the event feed and HTTP metrics.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use urumi_engine::Engine;

use crate::auth::TokenCache;
use crate::guard::{Caps, RateLimiter};
use crate::metrics::HttpMetrics;
use crate::settings::Settings;

/// Shared by all handlers; built once at start.
#[derive(Debug)]
pub struct AppState {
    pub pool: PgPool,
    pub engine: Engine,
    /// Bulk operations, over the same engine.
    pub ops: urumi_ops::Ops,
    pub settings: Settings,
    pub tokens: TokenCache,
    pub limiter: RateLimiter,
    pub caps: Caps,
    pub http: HttpMetrics,
    /// Bumped whenever events may have been committed (a `NOTIFY` or the periodic tick).
    pub events_changed: watch::Receiver<u64>,
    /// Open event streams, capped per token and per process.
    pub streams: Arc<crate::streams::StreamSlots>,
}

impl AppState {
    /// Builds the state; `events_changed` comes from [`crate::feed::spawn`].
    ///
    /// # Errors
    /// A malformed workflow definition (a bug).
    pub fn new(
        pool: PgPool,
        settings: Settings,
        events_changed: watch::Receiver<u64>,
    ) -> Result<Self, urumi_engine::Error> {
        // The API starts store runs but never executes their steps: it knows the store
        // workflows as declarations (no step code, so no cluster client linked).
        // Bulk operations' parent runs (`operation@1`) are declared beside them.
        let registry = urumi_ops::with_declared(&urumi_store::registry()?)?;
        let engine = Engine::new(pool.clone(), registry);
        let ops = urumi_ops::Ops::new(engine.clone(), Arc::new(settings.stores.clone()))
            .plan_wait(Duration::from_millis(settings.api.plan_preview_wait_ms));
        Ok(Self {
            tokens: TokenCache::new(settings.token_cache()),
            limiter: RateLimiter::new(settings.api.create_rate_per_sec, settings.api.create_burst),
            caps: Caps::new(
                settings.api.max_active_stores,
                settings.api.max_active_stores_per_actor,
                settings.api.caps_exact_within,
            ),
            http: HttpMetrics::default(),
            streams: crate::streams::StreamSlots::new(
                settings.api.max_streams_per_token,
                settings.api.max_streams,
            ),
            pool,
            engine,
            ops,
            settings,
            events_changed,
        })
    }
}
