//! Typed settings of the API process, loaded once at start by `urumi_process::load`
//! (defaults → `URUMI_CONFIG`/`urumi.toml` → `URUMI__SECTION__KEY` environment), then
//! `validate()`. The file is the one the worker reads; each process ignores the other's
//! sections. E.g. `URUMI__API__LISTEN=0.0.0.0:8080`.

use std::time::Duration;

use serde::Deserialize;
pub use urumi_process::{DatabaseSettings, LogSettings, Secret, TraceSettings};
use urumi_store::settings::StoreSettings;

/// Everything the API process reads from its environment.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub api: ApiSettings,
    pub log: LogSettings,
    /// OpenTelemetry traces over OTLP/HTTP; off unless `traces.enabled`.
    #[serde(default)]
    pub traces: TraceSettings,
    /// Plans, reserved names and the platform namespace: create-store validates against them.
    #[serde(default)]
    pub stores: StoreSettings,
}

/// The HTTP service, its guardrails and its caches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// `host:port` to listen on.
    pub listen: String,
    /// The largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; empty allows none (same-origin only), `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// How long a verified token is trusted without asking the database again (a revoked
    /// token stops working within this time).
    pub token_cache_ms: u64,
    /// Store creations allowed per actor per second (token bucket, per API process).
    pub create_rate_per_sec: f64,
    /// The bucket's size: creations allowed in a burst.
    pub create_burst: u32,
    /// Stores not yet deleted, across all actors.
    pub max_active_stores: i64,
    /// Stores not yet deleted, per actor.
    pub max_active_stores_per_actor: i64,
    /// Within this many stores of a cap, creates are counted exactly (serialised); further
    /// away a count cached for one second is trusted.
    pub caps_exact_within: i64,
    /// Interval of keep-alive comments on the event stream.
    pub sse_keep_alive_ms: u64,
    /// Event streams one token may hold open at once (429 beyond).
    pub max_streams_per_token: usize,
    /// Event streams this API process holds open at once (429 beyond).
    pub max_streams: usize,
    /// How often an open event stream re-checks that its token is still valid (it ends once
    /// the token is revoked).
    pub stream_recheck_ms: u64,
    /// Every API statement is cut off after this long (the SQL `statement_timeout`).
    pub statement_timeout_ms: u64,
    /// How long idempotency keys are kept.
    pub idempotency_ttl_hours: u32,
    /// How long a dry run of a repair or delete operation waits for a worker's cluster plan
    /// (`store.preview@1`) before answering with the plan `pending`; at most 60,000.
    pub plan_preview_wait_ms: u64,
    /// A built dashboard (`frontend/dist`) to serve at `/dashboard/`; empty serves none.
    pub dashboard_dir: String,
}

/// The defaults every other source overrides.
pub const DEFAULTS: &str = r#"
[database]
url = "postgres://postgres@127.0.0.1:5432/urumi"

[api]
listen = "127.0.0.1:8080"
max_body_bytes = 65536
cors_origins = []
token_cache_ms = 5000
create_rate_per_sec = 20.0
create_burst = 100
max_active_stores = 500000
max_active_stores_per_actor = 100000
caps_exact_within = 1000
sse_keep_alive_ms = 15000
max_streams_per_token = 8
max_streams = 1000
stream_recheck_ms = 30000
statement_timeout_ms = 5000
idempotency_ttl_hours = 24
plan_preview_wait_ms = 10000
dashboard_dir = ""

[log]
format = "pretty"
filter = "info"
"#;

impl Settings {
    /// Loads and validates the settings.
    ///
    /// # Errors
    /// A message naming the bad source or value.
    pub fn load() -> Result<Self, String> {
        let settings: Settings = urumi_process::load(DEFAULTS, &["api.cors_origins"])?;
        settings.validate()?;
        Ok(settings)
    }

    /// The defaults alone (tests start from these).
    ///
    /// # Panics
    /// Never: the defaults are checked by a test.
    #[must_use]
    pub fn defaults() -> Self {
        urumi_process::settings::from_toml(DEFAULTS).expect("the built-in defaults parse")
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        self.stores
            .channel(None)
            .map_err(|e| format!("stores.default_channel: {e}"))?;
        let a = &self.api;
        if a.max_body_bytes < 1024 {
            return Err("api.max_body_bytes must be at least 1024".into());
        }
        if a.create_rate_per_sec.is_nan() || a.create_rate_per_sec <= 0.0 || a.create_burst == 0 {
            return Err("api.create_rate_per_sec and api.create_burst must be > 0".into());
        }
        if a.max_active_stores < 1 || a.max_active_stores_per_actor < 1 || a.caps_exact_within < 0 {
            return Err(
                "api.max_active_stores and _per_actor must be >= 1, api.caps_exact_within >= 0"
                    .into(),
            );
        }
        if a.max_streams_per_token == 0 || a.max_streams == 0 || a.stream_recheck_ms < 100 {
            return Err(
                "api.max_streams_per_token and api.max_streams must be >= 1, api.stream_recheck_ms >= 100"
                    .into(),
            );
        }
        if a.statement_timeout_ms < 100 {
            return Err("api.statement_timeout_ms must be at least 100".into());
        }
        if a.plan_preview_wait_ms > 60_000 {
            return Err("api.plan_preview_wait_ms must be at most 60000".into());
        }
        if a.sse_keep_alive_ms < 100 {
            return Err("api.sse_keep_alive_ms must be at least 100".into());
        }
        if !a.dashboard_dir.is_empty()
            && !std::path::Path::new(&a.dashboard_dir)
                .join("index.html")
                .is_file()
        {
            return Err(format!(
                "api.dashboard_dir {:?} has no index.html; build the dashboard first \
                 (npm ci && npm run build in frontend/)",
                a.dashboard_dir
            ));
        }
        self.traces.validate()?;
        self.database.validate()
    }

    /// How often an open event stream re-checks its token.
    #[must_use]
    pub fn stream_recheck(&self) -> Duration {
        Duration::from_millis(self.api.stream_recheck_ms)
    }

    /// How long one API statement may run.
    #[must_use]
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.api.statement_timeout_ms)
    }

    /// How long a verified token is trusted.
    #[must_use]
    pub fn token_cache(&self) -> Duration {
        Duration::from_millis(self.api.token_cache_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_url_never_prints() {
        let s = Settings::defaults();
        s.validate().unwrap();
        assert!(!format!("{s:?}").contains("postgres://"));
    }

    #[test]
    fn nonsense_values_are_refused_with_the_key_named() {
        let mut s = Settings::defaults();
        s.api.create_burst = 0;
        assert!(s.validate().unwrap_err().contains("create_burst"));
        let mut s = Settings::defaults();
        s.api.dashboard_dir = "/nonexistent-urumi-dashboard".into();
        assert!(s.validate().unwrap_err().contains("api.dashboard_dir"));
    }
}
