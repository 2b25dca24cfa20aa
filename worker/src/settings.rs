//! Typed settings, loaded once at start: defaults → file → environment → `validate()`.
//!
//! The file is `URUMI_CONFIG` if set, else `urumi.toml` in the working directory if present.
//! Environment variables are `URUMI__SECTION__KEY` (e.g. `URUMI__WORKER__CONCURRENCY=16`);
//! `DATABASE_URL` is honoured when `URUMI__DATABASE__URL` is not set.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A value that never prints (database URLs carry passwords).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// The wrapped value; call only where it is used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the worker process reads from its environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub worker: WorkerSettings,
    pub log: LogSettings,
    pub cluster: ClusterSettings,
    /// How stores are built (images, domains, quotas per plan, …); see `StoreSettings`.
    #[serde(default)]
    pub stores: urumi_workflows::store::settings::StoreSettings,
    /// The API's section of a shared `urumi.toml`; the worker ignores it.
    #[serde(default, rename = "api")]
    _api: Option<serde::de::IgnoredAny>,
}

/// Which Kubernetes cluster store workflows act on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// Whether this worker serves the store workflows at all.
    pub enabled: bool,
    /// A kubeconfig file; empty means the usual inference (`KUBECONFIG`, `~/.kube/config`,
    /// in-cluster service account).
    pub kubeconfig: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…`
    pub url: Secret<String>,
    /// Pool size; defaults to the worker's concurrency plus 4 (LISTEN, heartbeat, sweeper, claim).
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub name: String,
    pub concurrency: usize,
    pub lease_ms: u64,
    pub poll_interval_ms: u64,
    pub sweep_interval_ms: u64,
    pub unserved_grace_ms: u64,
    pub shutdown_grace_ms: u64,
    /// How long a step may keep retrying transient cluster errors (5xx, 429, timeouts,
    /// connection loss), which cost no attempt; 0: each step's own budget (10 minutes).
    pub transient_budget_ms: u64,
    /// Where to serve `/metrics` and `/healthz` (e.g. `0.0.0.0:9090`); empty: not served.
    pub metrics_listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info,urumi_engine=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

const DEFAULTS: &str = r#"
[database]
url = "postgres://postgres@127.0.0.1:5432/urumi"

[worker]
name = "worker"
concurrency = 32
lease_ms = 30000
poll_interval_ms = 1000
sweep_interval_ms = 5000
unserved_grace_ms = 300000
shutdown_grace_ms = 30000
transient_budget_ms = 0
metrics_listen = ""

[log]
format = "pretty"
filter = "info"

[cluster]
enabled = true
kubeconfig = ""
"#;

impl Settings {
    /// Loads and validates the settings.
    ///
    /// # Errors
    /// A message naming the bad source or value.
    pub fn load() -> Result<Self, String> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        builder = match std::env::var("URUMI_CONFIG") {
            Ok(path) => builder.add_source(config::File::with_name(&path).required(true)),
            Err(_) => builder.add_source(config::File::with_name("urumi.toml").required(false)),
        };
        if std::env::var_os("URUMI__DATABASE__URL").is_none()
            && let Ok(url) = std::env::var("DATABASE_URL")
        {
            builder = builder
                .set_override("database.url", url)
                .map_err(|e| e.to_string())?;
        }
        builder = builder.add_source(
            config::Environment::with_prefix("URUMI")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
        let settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| format!("settings: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.worker;
        if w.concurrency == 0 {
            return Err("worker.concurrency must be at least 1".into());
        }
        if w.lease_ms < 500 {
            return Err("worker.lease_ms must be at least 500".into());
        }
        if w.poll_interval_ms == 0 || w.sweep_interval_ms == 0 {
            return Err("worker.poll_interval_ms and worker.sweep_interval_ms must be > 0".into());
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(format!(
                "log.format must be pretty or json, not {:?}",
                self.log.format
            ));
        }
        if !self.database.url.expose().starts_with("postgres") {
            return Err("database.url must be a postgres:// URL".into());
        }
        Ok(())
    }

    /// The engine's worker options.
    #[must_use]
    pub fn worker_options(&self) -> urumi_engine::WorkerOptions {
        let w = &self.worker;
        urumi_engine::WorkerOptions {
            concurrency: w.concurrency,
            lease: Duration::from_millis(w.lease_ms),
            poll_interval: Duration::from_millis(w.poll_interval_ms),
            sweep_interval: Duration::from_millis(w.sweep_interval_ms),
            unserved_grace: Duration::from_millis(w.unserved_grace_ms),
            shutdown_grace: Duration::from_millis(w.shutdown_grace_ms),
            name: w.name.clone(),
            transient_budget: (w.transient_budget_ms > 0)
                .then(|| Duration::from_millis(w.transient_budget_ms)),
            ..urumi_engine::WorkerOptions::default()
        }
    }

    /// The pool size to use.
    #[must_use]
    pub fn max_connections(&self) -> u32 {
        self.database
            .max_connections
            .unwrap_or(self.worker.concurrency as u32 + 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_url_never_prints() {
        let s: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        s.validate().unwrap();
        assert_eq!(s.max_connections(), 36);
        assert!(!format!("{s:?}").contains("postgres://"));
    }

    #[test]
    fn nonsense_values_are_refused() {
        let mut s: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        s.worker.concurrency = 0;
        assert!(s.validate().unwrap_err().contains("concurrency"));
        s.worker.concurrency = 1;
        s.log.format = "xml".into();
        assert!(s.validate().unwrap_err().contains("log.format"));
    }
}
