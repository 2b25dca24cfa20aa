//! Urumi's control-plane HTTP API, served with poem-openapi; the contract is
//! `shared/design/api.md`, the committed document `api/openapi.json`.
//!
//! - [`settings`]: typed settings, loaded once.
//! - [`auth`]: bearer tokens (hashed, constant-time checked, cached briefly) and roles.
//! - [`problem`]: the one error type; every failure is `application/problem+json`.
//! - [`guard`]: create-rate limiter, active-store caps, body size limit.
//! - [`routes`]: the operations, one file per resource; [`views`]: what they answer,
//!   sent by [`body::JsonBody`] (serde straight to bytes).
//! - [`feed`]: wakes event-stream readers on `NOTIFY urumi_events`.
//! - [`metrics`]: HTTP counters for `/metrics`.
//! - [`trace`]: the `request` span, a child of the caller's W3C `traceparent` when it sent one.
//! - [`suspended`]: the shared "this store is suspended" page (`urumi-api suspended-page`), a
//!   separate little server that suspended stores' Ingresses reach.
//!
//! With `api.dashboard_dir` set, the built React dashboard (`frontend/dist`) is served at
//! `/dashboard/` from the same origin (unknown paths below it answer its `index.html`, so the
//! dashboard's own routes reload); it calls the API like any other client.

pub mod auth;
pub mod body;
pub mod db;
pub mod feed;
pub mod guard;
pub mod metrics;
pub mod problem;
pub mod routes;
pub mod settings;
pub mod state;
pub mod streams;
pub mod suspended;
pub mod text;
pub mod trace;
pub mod views;

use std::sync::Arc;

use poem::endpoint::StaticFilesEndpoint;
use poem::middleware::Cors;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

use routes::audit::AuditApi;
use routes::backups::BackupsApi;
use routes::domains::DomainsApi;
use routes::events::EventsApi;
use routes::health::HealthApi;
use routes::insights::InsightsApi;
use routes::lifecycle::{LifecycleApi, UpgradeApi};
use routes::operations::OperationsApi;
use routes::plans::PlansApi;
use routes::runs::RunsApi;
use routes::stores::StoresApi;
use routes::tokens::TokensApi;
pub use state::AppState;

type Apis = (
    HealthApi,
    StoresApi,
    LifecycleApi,
    UpgradeApi,
    BackupsApi,
    DomainsApi,
    RunsApi,
    OperationsApi,
    AuditApi,
    EventsApi,
    TokensApi,
    PlansApi,
    InsightsApi,
);

/// The OpenAPI service over `state`.
#[must_use]
pub fn service(state: &Arc<AppState>) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            HealthApi(state.clone()),
            StoresApi(state.clone()),
            LifecycleApi(state.clone()),
            UpgradeApi(state.clone()),
            BackupsApi(state.clone()),
            DomainsApi(state.clone()),
            RunsApi(state.clone()),
            OperationsApi(state.clone()),
            AuditApi(state.clone()),
            EventsApi(state.clone()),
            TokensApi(state.clone()),
            PlansApi(state.clone()),
            InsightsApi(state.clone()),
        ),
        "Urumi API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Urumi's control plane: create and delete WooCommerce stores, watch their workflow \
         runs live, retry, cancel or rerun runs one at a time or in bulk (operations), read the audit log, the plans a store can be created on, the release channels and the fleet's version spread, upgrade stores, and where time goes (insights). Errors are \
         application/problem+json. Authenticate with `Authorization: Bearer <token>`.",
    )
}

/// The OpenAPI document as committed in `api/openapi.json`.
#[must_use]
pub fn spec_json(state: &Arc<AppState>) -> String {
    service(state).spec() + "\n"
}

/// The whole HTTP app: the API, `/openapi.json`, `/docs`, the dashboard when
/// `api.dashboard_dir` is set, CORS, the body limit, HTTP metrics, problem documents for
/// every error and the request span (joined to the caller's `traceparent`).
pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let api = service(&state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let origins = &state.settings.api.cors_origins;
    // No origins configured: no CORS headers at all (same-origin only).
    let any_origin = origins.iter().any(|o| o == "*");
    let mut cors = Cors::new()
        .allow_methods(["GET", "POST", "DELETE"])
        .allow_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "last-event-id",
        ])
        .expose_headers(["retry-after"]);
    if !any_origin {
        cors = cors.allow_origins(origins.iter().map(String::as_str));
    }
    let max_body = state.settings.api.max_body_bytes;
    let mut routes = Route::new()
        .nest("/", api)
        .at("/openapi.json", spec)
        .nest("/docs", docs);
    let dashboard = &state.settings.api.dashboard_dir;
    if !dashboard.is_empty() {
        routes = routes.nest(
            "/dashboard",
            StaticFilesEndpoint::new(dashboard)
                .index_file("index.html")
                .fallback_to_index()
                .no_cache_index(),
        );
    }
    routes
        .with(guard::BodyLimit(max_body))
        .with_if(!origins.is_empty(), cors)
        .with(metrics::Record(state.clone()))
        .data(state)
        .with(trace::RequestSpan)
}
