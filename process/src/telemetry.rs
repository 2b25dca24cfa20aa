//! One `init()` for structured logs (pretty for people, JSON for machines) and, when
//! `[traces]` is enabled, OpenTelemetry spans exported over OTLP/HTTP (protobuf).

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::settings::{LogFormat, LogSettings, TraceSettings};

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

/// What `init` installed that needs stopping: the span exporter, if traces are on. Dropping
/// it flushes the spans still buffered and stops the exporter's thread.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    #[must_use]
    pub fn tracing(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Best effort: a collector that is down must not stop the process from exiting.
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
    }
}

/// The current span's OpenTelemetry trace id, if it is in a (sampled or not) trace.
fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// The JSON line of the wrapped format with a leading `"trace_id"` when the event happens
/// inside a trace.
struct WithTraceId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace_id) = current_trace_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// Installs the global subscriber: log lines on stderr (`RUST_LOG` overrides the settings'
/// filter) and, if `traces.enabled`, an OTLP/HTTP span exporter named `service` (unless
/// `traces.service_name` says otherwise). Keep the returned value alive until exit.
///
/// # Errors
/// The exporter could not be built (a message saying why).
pub fn init(log: &LogSettings, traces: &TraceSettings, service: &str) -> Result<Telemetry, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match log.format {
        LogFormat::Json => {
            let json = tracing_subscriber::fmt::format().json();
            Box::new(
                fmt.json()
                    .event_format(WithTraceId(json))
                    .with_filter(effective(filter)),
            )
        }
        LogFormat::Pretty => Box::new(fmt.with_filter(effective(filter))),
    };
    let mut telemetry = Telemetry::default();
    let spans = if traces.enabled {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&traces.endpoint)
            .build()
            .map_err(|e| format!("traces: the OTLP exporter: {e}"))?;
        let name = if traces.service_name.is_empty() {
            service.to_owned()
        } else {
            traces.service_name.clone()
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                traces.sample_ratio,
            ))))
            .with_resource(Resource::builder().with_service_name(name).build())
            .build();
        let tracer = provider.tracer("urumi");
        telemetry.provider = Some(provider);
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(EnvFilter::new(&traces.filter)),
        )
    } else {
        None
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| format!("logging: {e}"))?;
    Ok(telemetry)
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
