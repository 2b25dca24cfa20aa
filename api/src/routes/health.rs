//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use urumi_engine::QueueGauges;

use super::ApiTags;
use crate::state::AppState;

/// Process health, readiness and metrics (no token needed).
#[derive(Debug)]
pub struct HealthApi(pub Arc<AppState>);

/// What `/readyz` checked.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Readiness {
    /// The database answered.
    pub database: bool,
    /// Every migration this build knows has been applied.
    pub migrations_current: bool,
    /// Why the service is not ready, when it is not.
    pub detail: Option<String>,
}

#[derive(Debug, ApiResponse)]
enum ReadyResponse {
    /// Ready to serve.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: the database does not answer or migrations are missing.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

#[derive(Debug, ApiResponse)]
enum MetricsResponse {
    /// OpenMetrics text format.
    #[oai(
        status = 200,
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )]
    Ok(PlainText<String>),
    /// The gauges could not be read.
    #[oai(status = 503)]
    Unavailable(PlainText<String>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// The process is alive.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The database is reachable and its migrations are current.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self) -> ReadyResponse {
        let latest = urumi_migrations::MIGRATOR
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let applied: Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar!("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.0.pool)
                .await;
        match applied {
            Ok(Some(v)) if v >= latest => ReadyResponse::Ready(Json(Readiness {
                database: true,
                migrations_current: true,
                detail: None,
            })),
            Ok(v) => ReadyResponse::NotReady(Json(Readiness {
                database: true,
                migrations_current: false,
                detail: Some(format!(
                    "schema at migration {}, this build needs {latest}",
                    v.unwrap_or(0)
                )),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database check failed");
                ReadyResponse::NotReady(Json(Readiness {
                    database: !matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)),
                    migrations_current: false,
                    detail: Some("the database did not answer or has no migrations table".into()),
                }))
            }
        }
    }

    /// Prometheus metrics: the engine's queue gauges and the HTTP layer's counters.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self) -> MetricsResponse {
        match QueueGauges::read(&self.0.pool).await {
            Ok(g) => MetricsResponse::Ok(PlainText(self.0.http.render_with(&g))),
            Err(e) => {
                tracing::warn!(error = %e, "metrics: could not read queue gauges");
                MetricsResponse::Unavailable(PlainText("queue gauges unavailable\n".into()))
            }
        }
    }
}
