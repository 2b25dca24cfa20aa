//! `urumi-api`: serves the control-plane API. `URUMI__DATABASE__URL` (or `DATABASE_URL`) and
//! `URUMI__API__LISTEN` (default `127.0.0.1:8080`) configure it; it applies migrations at start.

use anyhow::Context;
use poem::Server;
use poem::listener::TcpListener;
use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let url = std::env::var("URUMI__DATABASE__URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/urumi".into());
    let listen = std::env::var("URUMI__API__LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await
        .context("connecting to Postgres")?;
    urumi_migrations::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    tracing::info!(%listen, "urumi-api listening; OpenAPI at /openapi.json, docs at /docs");
    Server::new(TcpListener::bind(listen))
        .run_with_graceful_shutdown(
            urumi_api::app(pool),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            Some(std::time::Duration::from_secs(10)),
        )
        .await?;
    Ok(())
}
