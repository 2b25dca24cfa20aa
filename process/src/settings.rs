//! Loading typed settings, and the sections every process has.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A value that never prints (database URLs carry passwords).
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }
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

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…`; never printed.
    pub url: Secret<String>,
    /// Pool size; each process has its own default.
    pub max_connections: Option<u32>,
}

impl DatabaseSettings {
    /// Checks the URL's scheme.
    ///
    /// # Errors
    /// A message saying what is wrong (never the URL itself).
    pub fn validate(&self) -> Result<(), String> {
        if self.url.expose().starts_with("postgres://")
            || self.url.expose().starts_with("postgresql://")
        {
            Ok(())
        } else {
            Err("database.url must be a postgres:// URL".into())
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people: coloured on a terminal.
    Pretty,
    /// One JSON object a line, for machines.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,urumi_engine=debug`; `RUST_LOG` overrides it.
    pub filter: String,
}

/// `[traces]`: OpenTelemetry traces exported over OTLP/HTTP (protobuf). Off by default: no
/// exporter, no collector needed, nothing sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSettings {
    /// Export spans. `false` (the default) installs no exporter at all.
    pub enabled: bool,
    /// The collector's OTLP/HTTP traces URL, e.g. `http://otel-collector:4318/v1/traces`.
    pub endpoint: String,
    /// `service.name` of the exported spans; empty uses the process's own (`urumi-api`,
    /// `urumi-worker`).
    pub service_name: String,
    /// Which spans are exported (a `tracing` filter, independent of `log.filter`). The
    /// default also takes kube-rs's per-request `HTTP` spans (DEBUG level).
    pub filter: String,
    /// Fraction of new traces sampled (0.0–1.0); a run's spans follow the decision of the
    /// request that started it.
    pub sample_ratio: f64,
}

impl Default for TraceSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            service_name: String::new(),
            filter: "info,kube_client::client::builder=debug".into(),
            sample_ratio: 1.0,
        }
    }
}

impl TraceSettings {
    /// Checks the endpoint's scheme and the ratio.
    ///
    /// # Errors
    /// A message naming the bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if !self.endpoint.starts_with("http://") {
            return Err("traces.endpoint must be an http:// URL (OTLP/HTTP)".into());
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err("traces.sample_ratio must be between 0.0 and 1.0".into());
        }
        Ok(())
    }
}

/// Loads `T` from `defaults` (TOML) → the settings file → the environment. `list_keys` are
/// keys whose environment value is a comma-separated list (e.g. `api.cors_origins`).
///
/// # Errors
/// A message naming the bad source or value.
pub fn load<T: DeserializeOwned>(defaults: &str, list_keys: &[&str]) -> Result<T, String> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
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
    let mut env = config::Environment::with_prefix("URUMI")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true);
    if !list_keys.is_empty() {
        env = env.list_separator(",");
        for key in list_keys {
            env = env.with_list_parse_key(key);
        }
    }
    builder
        .add_source(env)
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| format!("settings: {e}"))
}

/// Parses `text` (TOML) alone: for a process's defaults in tests.
///
/// # Errors
/// The parser's message.
pub fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| format!("settings: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct S {
        database: DatabaseSettings,
        log: LogSettings,
    }

    const DEFAULTS: &str = r#"
[database]
url = "postgres://u:hunter2@h/db"
[log]
format = "json"
filter = "info"
"#;

    #[test]
    fn traces_are_off_by_default_and_a_bad_endpoint_is_refused() {
        let t: TraceSettings = from_toml("").unwrap();
        assert!(!t.enabled);
        assert!(t.validate().is_ok());
        let on: TraceSettings = from_toml("enabled = true\nendpoint = \"grpc://x:4317\"").unwrap();
        assert!(on.validate().unwrap_err().contains("endpoint"));
        let ratio: TraceSettings = from_toml("enabled = true\nsample_ratio = 2.0").unwrap();
        assert!(ratio.validate().unwrap_err().contains("sample_ratio"));
    }

    #[test]
    fn sections_parse_secrets_stay_hidden_and_closed_sets_refuse_strangers() {
        let s: S = from_toml(DEFAULTS).unwrap();
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(s.database.validate().is_ok());
        assert!(!format!("{s:?}").contains("hunter2"));
        let bad = DEFAULTS.replace("\"json\"", "\"xml\"");
        let err = from_toml::<S>(&bad).unwrap_err();
        assert!(err.contains("xml"), "{err}");
        let not_pg = DatabaseSettings {
            url: Secret::new("mysql://x".into()),
            max_connections: None,
        };
        assert!(not_pg.validate().is_err());
    }
}
