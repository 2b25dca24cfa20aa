//! Urumi's control-plane HTTP API, served with poem-openapi.
//!
//! Thin for now (the full contract of `shared/design/api.md` is issue 5): `/healthz`,
//! `/readyz` (database reachable and migrations current), `/metrics` (Prometheus text: the
//! engine's queue gauges), the OpenAPI document at `/openapi.json` and interactive docs at
//! `/docs`.

mod health;

use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;
use sqlx::PgPool;

pub use health::HealthApi;

/// The OpenAPI service (also used to render the committed spec).
#[must_use]
pub fn service(pool: PgPool) -> OpenApiService<HealthApi, ()> {
    OpenApiService::new(HealthApi::new(pool), "Urumi API", env!("CARGO_PKG_VERSION")).server("/")
}

/// The whole HTTP app: the API, `/openapi.json` and `/docs`.
pub fn app(pool: PgPool) -> impl poem::Endpoint {
    let api = service(pool);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .with(poem::middleware::Tracing)
}
