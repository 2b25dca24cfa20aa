//! The worker's own HTTP endpoint, served when `worker.metrics_listen` is set:
//! `GET /metrics` — this process's step and run counters and step-duration histogram
//! (labelled by definition, version and step) in the OpenMetrics text format (the queue gauges, which are the same for every worker, are on the
//! API's `/metrics`); `GET /healthz` — 200 while the process runs (a liveness probe).

use poem::listener::{Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};
use urumi_engine::Metrics;

#[handler]
fn metrics(Data(m): Data<&Metrics>) -> impl IntoResponse {
    Response::builder()
        .content_type(urumi_engine::OPENMETRICS_CONTENT_TYPE)
        .body(m.render())
}

#[handler]
fn healthz() -> &'static str {
    "ok\n"
}

/// Binds `listen` now (a taken or malformed address fails the start) and serves in the
/// background for the life of the process.
///
/// # Errors
/// The address could not be bound.
pub async fn spawn(listen: &str, m: Metrics) -> std::io::Result<()> {
    let acceptor = TcpListener::bind(listen.to_owned()).into_acceptor().await?;
    let app = Route::new()
        .at("/metrics", get(metrics))
        .at("/healthz", get(healthz))
        .data(m);
    tokio::spawn(async move {
        if let Err(e) = Server::new_with_acceptor(acceptor).run(app).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    tracing::info!(%listen, "serving /metrics and /healthz");
    Ok(())
}
