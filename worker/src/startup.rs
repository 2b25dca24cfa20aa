//! Getting a worker to its database. A worker that runs steps may start before Postgres does
//! (a pod scheduled before its database, a restart of both): it keeps trying — connect, then
//! apply the migrations — with backoff (0.5 s doubling to 10 s), logging each miss, until
//! Postgres answers or the process is told to stop. The one-shot commands (`migrate`,
//! `start`, `show`, `watch`) fail at once instead: a person is waiting for the answer.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::settings::Settings;

fn pool_options(settings: &Settings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.max_connections())
        .acquire_timeout(Duration::from_secs(10))
}

/// Connects once.
///
/// # Errors
/// Postgres does not answer or refuses.
pub async fn connect(settings: &Settings) -> anyhow::Result<PgPool> {
    pool_options(settings)
        .connect(settings.database.url.expose())
        .await
        .context("connecting to Postgres (database.url)")
}

/// Connects and migrates, trying again until both succeed; `None` when a stop signal came
/// first.
///
/// # Errors
/// Never for an unreachable database; only when the stop signal cannot be watched.
pub async fn connect_patiently(settings: &Settings) -> anyhow::Result<Option<PgPool>> {
    let stop = urumi_engine::shutdown::signal();
    tokio::pin!(stop);
    let mut delay = Duration::from_millis(500);
    loop {
        let attempt = async {
            let pool = connect(settings).await?;
            urumi_migrations::MIGRATOR
                .run(&pool)
                .await
                .context("applying migrations")?;
            anyhow::Ok(pool)
        };
        // Raced against the stop signal: a connection attempt itself may take up to the
        // acquire timeout.
        let outcome = tokio::select! {
            r = attempt => r,
            () = &mut stop => {
                tracing::info!("stopped while waiting for Postgres");
                return Ok(None);
            }
        };
        match outcome {
            Ok(pool) => return Ok(Some(pool)),
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                retry_in_ms = delay.as_millis() as u64,
                "Postgres is not ready; trying again"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut stop => {
                tracing::info!("stopped while waiting for Postgres");
                return Ok(None);
            }
        }
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
