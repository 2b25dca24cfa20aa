//! One `init()` for structured logs: pretty for people, JSON for machines.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// kube-rs logs every 5xx and transport error at ERROR from its HTTP layer, also those a step
/// then retries successfully; the step itself records each one (its events, and a WARN line
/// when it costs an attempt or fails the run). So that ERROR means "act on this", the
/// layer's lines are off unless a filter names `kube_client`.
const QUIET_KUBE_HTTP: &str = "kube_client::client::builder=off";

/// `filter` with kube-rs's HTTP-layer lines off unless it names `kube_client` itself.
fn effective(filter: EnvFilter) -> EnvFilter {
    if filter.to_string().contains("kube_client") {
        filter
    } else {
        filter.add_directive(QUIET_KUBE_HTTP.parse().expect("a valid directive"))
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the settings' filter.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(effective(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_http_errors_are_off_unless_a_filter_asks_for_them() {
        let quiet = effective(EnvFilter::new("info")).to_string();
        assert!(
            quiet.contains("kube_client::client::builder=off"),
            "{quiet}"
        );
        let asked = effective(EnvFilter::new("info,kube_client=debug")).to_string();
        assert!(!asked.contains("=off"), "{asked}");
    }
}
