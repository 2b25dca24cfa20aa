//! One `init()` for structured logs (pretty for people, JSON for machines) and, when
//! `[traces]` is enabled, OpenTelemetry spans exported over OTLP/HTTP (protobuf).

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
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

/// Where the subscriber's own `Dispatch` is kept, for the JSON formatter: inside an event's
/// dispatch `tracing::Span::current()` sees no subscriber (no re-entry), so the trace id of
/// the event's span is asked of the dispatch directly.
type DispatchSlot = Arc<OnceLock<WeakDispatch>>;

/// Captures the subscriber's `Dispatch` when it is registered.
struct CaptureDispatch(DispatchSlot);

impl<S: Subscriber> Layer<S> for CaptureDispatch {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// The JSON line of the wrapped format with a leading `"trace_id"` when the event happens
/// inside a span that is in a trace.
struct WithTraceId<F> {
    inner: F,
    dispatch: DispatchSlot,
}

impl<F> WithTraceId<F> {
    fn trace_id(&self, span: &tracing::span::Id) -> Option<String> {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let cx = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
        let otel = cx.span();
        let sc = otel.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }
}

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
        let trace_id = ctx.parent_span().and_then(|span| self.trace_id(&span.id()));
        let Some(trace_id) = trace_id else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
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
    let dispatch = DispatchSlot::default();
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match log.format {
        LogFormat::Json => {
            let json = WithTraceId {
                inner: tracing_subscriber::fmt::format().json(),
                dispatch: dispatch.clone(),
            };
            Box::new(fmt.json().event_format(json).with_filter(effective(filter)))
        }
        LogFormat::Pretty => Box::new(fmt.with_filter(effective(filter))),
    };
    let mut telemetry = Telemetry::default();
    let spans = if traces.enabled {
        // The exporter's HTTP client is reqwest 0.13, whose rustls feature (another crate of
        // the workspace, urumi-cli, turns on `rustls-no-provider`) needs a process-wide crypto
        // provider before a client is built, even for plain http://. ring, as kube and sqlx use.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
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
        .with(CaptureDispatch(dispatch))
        .try_init()
        .map_err(|e| format!("logging: {e}"))?;
    Ok(telemetry)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::*;

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[test]
    fn json_lines_inside_a_trace_carry_its_trace_id() {
        let buf = Buf::default();
        // A provider without an exporter: real ids, nothing sent.
        let provider = SdkTracerProvider::builder().build();
        let dispatch = DispatchSlot::default();
        let json = WithTraceId {
            inner: tracing_subscriber::fmt::format().json(),
            dispatch: dispatch.clone(),
        };
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .event_format(json)
                    .with_writer(buf.clone()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(CaptureDispatch(dispatch));
        let trace_id = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("request");
            let _in = span.enter();
            tracing::info!("inside");
            span.context().span().span_context().trace_id().to_string()
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["fields"]["message"], "outside");
        assert!(lines[0].get("trace_id").is_none(), "{text}");
        assert_eq!(lines[1]["fields"]["message"], "inside");
        assert_eq!(lines[1]["trace_id"], trace_id.as_str(), "{text}");
        assert_ne!(trace_id, "00000000000000000000000000000000");
    }

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
