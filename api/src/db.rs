//! The API's Postgres pool: migrations first, on a connection of their own (they may
//! legitimately run long), then a pool on which every statement is cut off after
//! `api.statement_timeout_ms`, so no request — a viewer's list with odd filters included —
//! can hold a connection and a backend for long.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::settings::Settings;

/// `opts` with the API's statement timeout on every connection.
#[must_use]
pub fn with_statement_timeout(opts: PgConnectOptions, timeout: Duration) -> PgConnectOptions {
    opts.options([("statement_timeout", timeout.as_millis().to_string())])
}

/// Applies the migrations, then opens the API's pool.
///
/// # Errors
/// When Postgres cannot be reached or a migration fails.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = settings
        .database
        .url
        .expose()
        .parse()
        .context("parsing database.url")?;
    let mut conn = opts.connect().await.context("connecting to Postgres")?;
    urumi_migrations::MIGRATOR
        .run(&mut conn)
        .await
        .context("applying migrations")?;
    drop(conn);
    PgPoolOptions::new()
        .max_connections(settings.database.max_connections.unwrap_or(16))
        .connect_with(with_statement_timeout(opts, settings.statement_timeout()))
        .await
        .context("connecting to Postgres")
}
