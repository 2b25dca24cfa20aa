//! The API's `request` span, one per HTTP request, joined to the caller's trace.
//!
//! A request carrying a valid W3C `traceparent` (and its `tracestate`) gets a span that is a
//! child of the caller's span, in the caller's trace; the run it starts stores that span's
//! context (`urumi.runs.trace_context`), so the caller's trace goes on through the workers'
//! run and step spans. A missing or malformed `traceparent` is ignored (a fresh trace, as
//! without the header), never an error. The headers are read by the OpenTelemetry
//! propagator ([`TraceContextPropagator`]); the sampled flag of a joined trace is the
//! caller's (the sampler is parent-based).
//!
//! The span has the fields poem's `Tracing` middleware gives it (`remote_addr`, `version`,
//! `method`, `uri`) and logs the same `response` / `error` line at its end.

use std::time::Instant;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use poem::http::HeaderMap;
use poem::web::RealIp;
use poem::{Endpoint, FromRequest, IntoResponse, Middleware, Request, Response};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The caller's trace context from `traceparent` / `tracestate`, if `traceparent` is present
/// and valid.
#[must_use]
pub fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let cx = TraceContextPropagator::new()
        .extract_with_context(&opentelemetry::Context::new(), &HeaderExtractor(headers));
    let valid = cx.span().span_context().is_valid();
    valid.then_some(cx)
}

/// Opens the `request` span around every request (the outermost middleware).
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestSpan;

impl<E: Endpoint> Middleware<E> for RequestSpan {
    type Output = RequestSpanEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        RequestSpanEndpoint { inner: ep }
    }
}

/// See [`RequestSpan`].
#[derive(Debug)]
pub struct RequestSpanEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestSpanEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let remote_addr = RealIp::from_request_without_body(&req)
            .await
            .ok()
            .and_then(|ip| ip.0)
            .map_or_else(|| req.remote_addr().to_string(), |ip| ip.to_string());
        let span = tracing::info_span!(
            "request",
            remote_addr = %remote_addr,
            version = ?req.version(),
            method = %req.method(),
            uri = %req.original_uri(),
        );
        if let Some(parent) = remote_parent(req.headers()) {
            // Refused only when traces are off (no OpenTelemetry layer): nothing to join.
            let _ = span.set_parent(parent);
        }
        async move {
            let started = Instant::now();
            let res = self.inner.call(req).await;
            let duration = started.elapsed();
            match res {
                Ok(resp) => {
                    let resp = resp.into_response();
                    tracing::info!(status = %resp.status(), ?duration, "response");
                    Ok(resp)
                }
                Err(err) => {
                    tracing::info!(status = %err.status(), error = %err, ?duration, "error");
                    Err(err)
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_valid_traceparent_is_the_parent_with_its_tracestate_and_garbage_is_ignored() {
        let cx = remote_parent(&headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]))
        .expect("a valid traceparent");
        let span = cx.span();
        let sc = span.span_context();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(
                remote_parent(&headers(&[("traceparent", bad)])).is_none(),
                "{bad:?}"
            );
        }
        assert!(remote_parent(&HeaderMap::new()).is_none());
    }
}
