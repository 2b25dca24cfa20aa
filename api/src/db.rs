//! The API's Postgres pool: migrations first, on a connection of their own (they may
//! legitimately run long), then a pool whose connections
//! - cut every statement off after `api.statement_timeout_ms`, so no request — a viewer's
//!   list with odd filters included — can hold a connection and a backend for long;
//! - plan every statement for its actual parameters (`plan_cache_mode = force_custom_plan`):
//!   a list filtered on a rare actor, kind or store then walks its index, a common one the
//!   primary key, where a cached generic plan would pick one path for all values (a
//!   primary-key walk that reads the whole table for a rare value). Planning costs tens of
//!   microseconds a statement.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::settings::Settings;

/// `opts` with the API's session settings: the statement timeout and custom plans.
#[must_use]
pub fn api_session(opts: PgConnectOptions, statement_timeout: Duration) -> PgConnectOptions {
    opts.options([
        (
            "statement_timeout",
            statement_timeout.as_millis().to_string(),
        ),
        ("plan_cache_mode", "force_custom_plan".to_owned()),
    ])
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
        .connect_with(api_session(opts, settings.statement_timeout()))
        .await
        .context("connecting to Postgres")
}
