//! Prometheus metrics of the HTTP layer: requests by method and status class, and a latency
//! histogram. `/metrics` renders them after the engine's queue gauges.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 20, 50, 100, 250, 1000, 5000];
const METHODS: [&str; 5] = ["GET", "POST", "DELETE", "OPTIONS", "OTHER"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters shared by every request.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: [[AtomicU64; 5]; 5],
    buckets: [AtomicU64; 10],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl HttpMetrics {
    fn record(&self, method: &str, status: u16, started: Instant) {
        let m = METHODS.iter().position(|x| *x == method).unwrap_or(4);
        let c = usize::from((status / 100).clamp(1, 5) - 1);
        self.requests[m][c].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if us <= b * 1000 {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The Prometheus text of these metrics.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP urumi_http_requests_total HTTP requests answered, by method and status class.\n");
        out.push_str("# TYPE urumi_http_requests_total counter\n");
        for (m, method) in METHODS.iter().enumerate() {
            for (c, class) in CLASSES.iter().enumerate() {
                let n = self.requests[m][c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "urumi_http_requests_total{{method=\"{method}\",status=\"{class}\"}} {n}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP urumi_http_request_duration_seconds Time to answer an HTTP request.\n",
        );
        out.push_str("# TYPE urumi_http_request_duration_seconds histogram\n");
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let _ = writeln!(
                out,
                "urumi_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
                *b as f64 / 1000.0,
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "urumi_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "urumi_http_request_duration_seconds_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "urumi_http_request_duration_seconds_count {count}");
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
        let method = req.method().as_str().to_owned();
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
