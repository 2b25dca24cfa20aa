//! Prometheus metrics of the HTTP layer, on `prometheus-client`: requests by method and
//! status class, and a latency histogram. `/metrics` renders them with the engine's queue
//! gauges ([`HttpMetrics::render_with`]).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

const BUCKETS_SECONDS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The methods counted by name; the rest are `OTHER` (a bounded label).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Delete,
    Options,
    Other,
}

impl Method {
    fn of(m: &poem::http::Method) -> Self {
        match *m {
            poem::http::Method::GET => Self::Get,
            poem::http::Method::POST => Self::Post,
            poem::http::Method::DELETE => Self::Delete,
            poem::http::Method::OPTIONS => Self::Options,
            _ => Self::Other,
        }
    }
}

impl EncodeLabelValue for Method {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Other => "OTHER",
        })
    }
}

/// `1xx` … `5xx`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
struct StatusClass(u16);

impl EncodeLabelValue for StatusClass {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        write!(e, "{}xx", self.0)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: Method,
    status: StatusClass,
}

/// Counters shared by every request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Histogram::new(BUCKETS_SECONDS),
        }
    }
}

impl HttpMetrics {
    fn record(&self, method: &poem::http::Method, status: u16, started: Instant) {
        let labels = RequestLabels {
            method: Method::of(method),
            status: StatusClass((status / 100).clamp(1, 5)),
        };
        self.requests.get_or_create(&labels).inc();
        self.duration.observe(started.elapsed().as_secs_f64());
    }

    /// The OpenMetrics text of `gauges` and these metrics.
    #[must_use]
    pub fn render_with(&self, gauges: &urumi_engine::QueueGauges) -> String {
        let mut registry = Registry::default();
        gauges.register(&mut registry);
        registry.register(
            "urumi_http_requests",
            "HTTP requests answered, by method and status class",
            self.requests.clone(),
        );
        registry.register(
            "urumi_http_request_duration_seconds",
            "Time to answer an HTTP request",
            self.duration.clone(),
        );
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Records every request into the shared [`HttpMetrics`].
#[derive(Debug, Clone)]
pub struct Record(pub Arc<crate::state::AppState>);

impl<E: Endpoint> Middleware<E> for Record {
    type Output = RecordEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RecordEndpoint {
            inner: ep,
            state: self.0.clone(),
        }
    }
}

/// See [`Record`].
#[derive(Debug)]
pub struct RecordEndpoint<E> {
    inner: E,
    state: Arc<crate::state::AppState>,
}

impl<E: Endpoint> Endpoint for RecordEndpoint<E> {
    type Output = Response;
    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let method = req.method().clone();
        let resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => crate::problem::from_poem_error(e),
        };
        self.state
            .http
            .record(&method, resp.status().as_u16(), started);
        Ok(resp)
    }
}
