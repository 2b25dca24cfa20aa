//! `urumi-api`: serves the control-plane API, prints its OpenAPI document, and mints, lists
//! and revokes API tokens.
//!
//! ```text
//! urumi-api [serve]                                 serve (applies migrations first)
//! urumi-api openapi                                 print the OpenAPI document
//! urumi-api token create --name NAME --role ROLE    mint a token; prints it once
//! urumi-api token list                              list tokens (never their secrets)
//! urumi-api token revoke ID                         revoke a token
//! urumi-api suspended-page [--listen ADDR]          serve the "store suspended" page
//!                                                   (default 0.0.0.0:8081; no database)
//! ```
//! Settings: see `settings.rs` (`URUMI__API__LISTEN`, `DATABASE_URL`, …).

use std::sync::Arc;

/// Every request allocates many small JSON nodes; mimalloc serves them with less work than
/// glibc's allocator (whose consolidation showed in profiles of list pages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use poem::Server;
use poem::listener::TcpListener;
use sqlx::postgres::PgPoolOptions;
use urumi_api::auth::{self, Role};
use urumi_api::settings::Settings;
use urumi_api::{AppState, feed};

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

async fn token(settings: &Settings, args: &[String]) -> anyhow::Result<()> {
    let pool = urumi_api::db::connect(settings).await?;
    match args.first().map(String::as_str) {
        Some("create") => {
            let name = flag(args, "--name").context("token create needs --name NAME")?;
            let role = Role::parse(
                flag(args, "--role").context("token create needs --role viewer|operator|admin")?,
            )
            .map_err(anyhow::Error::msg)?;
            let m = auth::mint(&pool, name, role, "cli")
                .await
                .context("minting the token")?;
            eprintln!(
                "minted token {} ({name}, {}); it is shown only now:",
                m.id,
                role.as_str()
            );
            println!("{}", m.token);
        }
        Some("list") => {
            for t in auth::list(&pool).await? {
                let state = t
                    .revoked_at
                    .map_or("live".to_owned(), |at| format!("revoked {at}"));
                println!("{}  {:<8}  {:<24}  {}", t.id, t.role, t.name, state);
            }
        }
        Some("revoke") => {
            let id = args.get(1).context("token revoke needs an id")?;
            let id = uuid::Uuid::try_parse(id).context("a token id is a UUID")?;
            match auth::revoke(&pool, id, "cli").await? {
                Some(t) => println!("revoked {} ({})", t.id, t.name),
                None => bail!("no token {id}"),
            }
        }
        _ => bail!(
            "usage: urumi-api token create --name NAME --role ROLE | token list | token revoke ID"
        ),
    }
    Ok(())
}

/// `suspended-page [--listen ADDR]`: the shared page suspended stores' Ingresses reach
/// (`suspended.rs`), until SIGTERM or Ctrl-C. Reads no database.
async fn suspended_page(settings: &Settings, args: &[String]) -> anyhow::Result<()> {
    let listen = flag(args, "--listen").unwrap_or(urumi_api::suspended::DEFAULT_LISTEN);
    let _telemetry =
        urumi_process::telemetry::init(&settings.log, &settings.traces, "urumi-suspended-page")
            .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(%listen, "urumi-api suspended-page listening");
    urumi_api::suspended::run(listener, async {
        urumi_engine::shutdown::signal().await;
        tracing::info!("shutting down the suspended page");
    })
    .await
    .context("serving the suspended page")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = Settings::load().map_err(anyhow::Error::msg)?;
    match args.first().map(String::as_str) {
        None | Some("serve") => {}
        Some("openapi") => {
            let pool = PgPoolOptions::new().connect_lazy(settings.database.url.expose())?;
            let (_tx, rx) = tokio::sync::watch::channel(0);
            let state = Arc::new(AppState::new(pool, settings, rx)?);
            print!("{}", urumi_api::spec_json(&state));
            return Ok(());
        }
        Some("token") => return token(&settings, &args[1..]).await,
        Some("suspended-page") => return suspended_page(&settings, &args[1..]).await,
        Some(other) => {
            bail!("unknown command {other:?}; commands: serve, openapi, token, suspended-page")
        }
    }
    // Kept until `main` returns: dropping it flushes the spans still buffered.
    let _telemetry = urumi_process::telemetry::init(&settings.log, &settings.traces, "urumi-api")
        .map_err(anyhow::Error::msg)?;
    let pool = urumi_api::db::connect(&settings).await?;
    let listen = settings.api.listen.clone();
    let (changed, feed_task) = feed::spawn_stoppable(pool.clone());
    let state = Arc::new(AppState::new(pool.clone(), settings, changed)?);
    let ttl = state.settings.api.idempotency_ttl_hours;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let swept = sqlx::query!(
                "DELETE FROM urumi.idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
                i32::try_from(ttl).unwrap_or(i32::MAX),
            )
            .execute(&pool)
            .await;
            if let Err(e) = swept {
                tracing::warn!(error = %e, "could not expire idempotency keys");
            }
        }
    });
    let listener = TcpListener::bind(listen.clone());
    tracing::info!(%listen, "urumi-api listening; OpenAPI at /openapi.json, docs at /docs");
    Server::new(listener)
        .run_with_graceful_shutdown(
            urumi_api::app(state),
            async move {
                urumi_engine::shutdown::signal().await;
                tracing::info!("shutting down: draining requests");
                // Open event streams end now instead of holding the drain to its timeout.
                feed_task.abort();
            },
            Some(std::time::Duration::from_secs(10)),
        )
        .await?;
    Ok(())
}
