//! The command tree (clap) and what the commands share: the client, `--json`, and parsers
//! that take enum values straight from the OpenAPI document.

pub mod audit;
pub mod channels;
mod drift;
pub mod events;
pub mod ops;
pub mod plans;
pub mod runs;
pub mod stores;
pub mod tokens;

use std::str::FromStr;

use clap::Subcommand;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::client::Api;
use crate::problem::Failure;

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stores: list, create, show, delete, repair, a store's runs and usage, the fleet's drift.
    #[command(subcommand)]
    Stores(stores::StoresCmd),
    /// Workflow runs: list, show every step, retry a failed run, rerun (from a step), cancel.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Bulk operations over the runs a selector matches: create (or preview), list, show,
    /// targets, pause, resume, approve, cancel, watch.
    #[command(subcommand)]
    Ops(ops::OpsCmd),
    /// The audit log, newest first: who did what, and every run, step and store transition.
    Audit(audit::AuditArgs),
    /// Tail the live event stream, one line per event; optionally wait for a kind of event.
    Events(events::EventsArgs),
    /// API tokens: mint (shown once), list, revoke (admin); the one in use (any role).
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// The plans a store can be created on, with their quota; the default one is marked.
    Plans,
    /// The release channels (current release and pins; the default one is marked) and the
    /// fleet's version spread: how many stores run each release.
    Channels,
}

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// The generated client, set up for `--url` and `--token`.
    pub api: Api,
    /// Print the API's JSON instead of text for people.
    pub json: bool,
}

/// Runs `command`.
///
/// # Errors
/// The [`Failure`] that ends the process.
pub async fn run(command: Command, ctx: &Ctx) -> Result<(), Failure> {
    match command {
        Command::Stores(cmd) => stores::run(cmd, ctx).await,
        Command::Runs(cmd) => runs::run(cmd, ctx).await,
        Command::Ops(cmd) => ops::run(cmd, ctx).await,
        Command::Audit(args) => audit::run(args, ctx).await,
        Command::Events(args) => events::run(args, ctx).await,
        Command::Tokens(cmd) => tokens::run(cmd, ctx).await,
        Command::Plans => plans::run(ctx).await,
        Command::Channels => channels::run(ctx).await,
    }
}

/// A clap parser accepting exactly `values` (an enum of the OpenAPI document, see
/// `client::enums`) and producing the generated type.
pub fn one_of<T>(values: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr + Clone + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    PossibleValuesParser::new(values.iter().copied()).try_map(|s| s.parse::<T>())
}

/// `value` as the generated newtype `T` (which checks the document's length and pattern
/// rules), or a usage error naming `what`.
pub fn checked<T>(what: &str, value: String) -> Result<T, Failure>
where
    T: TryFrom<String>,
    T::Error: std::fmt::Display,
{
    T::try_from(value).map_err(|e| Failure::Usage(format!("invalid {what}: {e}")))
}

/// The largest page the API serves.
pub const MAX_PAGE: u64 = 200;

/// A list read a page at a time: the first page, or with `all` every page (each of
/// [`MAX_PAGE`]) following `next_cursor`. `page(cursor, limit)` asks for one page and answers
/// its items and `next_cursor`. Returns the items and the cursor after the last page read.
///
/// # Errors
/// The first page's failure.
pub async fn pages<T, F, Fut>(all: bool, mut page: F) -> Result<(Vec<T>, Option<String>), Failure>
where
    F: FnMut(Option<String>, Option<u64>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), Failure>>,
{
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let (got, next) = page(cursor.take(), all.then_some(MAX_PAGE)).await?;
        items.extend(got);
        match next {
            Some(next) if all => cursor = Some(next),
            next => return Ok((items, next)),
        }
    }
}

/// Tells people that a list goes on (machines read `next_cursor` from the JSON).
pub fn more_hint(ctx: &Ctx, next_cursor: Option<&String>) {
    if !ctx.json && next_cursor.is_some() {
        eprintln!("(more on the next page: pass --all to list everything)");
    }
}
