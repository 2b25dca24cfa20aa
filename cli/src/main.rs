//! `urumictl`: the operator CLI for Urumi's control-plane API.
//!
//! Every request goes through the client that `build.rs` generates with progenitor from the
//! committed `api/openapi.json` (see `client.rs`); nothing here builds a request by hand.
//!
//! ```text
//! urumictl [--url URL] [--token TOKEN] [--json] <command>
//!   stores list [--status S] [--all] | create NAME [--plan P] [--idempotency-key K]
//!          | show ID | delete ID | repair ID | runs ID | usage ID
//!   runs   list [--status S] [--kind K] [--store ID] [--all] | show ID | retry ID
//!          | rerun ID [--from-step STEP] | cancel ID
//!   ops    create --action A [selector flags] [--max-concurrency N] [--canary-… ] [--failure-budget-…]
//!                 [--dry-run | --watch]
//!          | list [--all] | show ID | targets ID [--state S] [--limit N] [--cursor C] [--all]
//!          | pause ID | resume ID | approve ID | cancel ID | watch ID
//!   audit  [--store ID] [--run ID] [--actor A] [--kind K] [--limit N]
//!   events [--store ID] [--last-event-id C] [--until KIND,…] [--fail-on KIND,…] [--timeout SECS]
//!   tokens create NAME --role ROLE | list | revoke ID | current
//! ```
//! Exit codes: 0 success, 1 the API refused (its problem document is printed) or could not be
//! reached, 2 a usage error; `ops watch` (and `ops create --watch`) also 3 when the operation
//! stopped by itself and 4 when it was cancelled.

mod client;
mod commands;
mod output;
mod problem;
mod sse;

use std::process::ExitCode;

use clap::Parser;

use crate::client::Api;
use crate::commands::{Command, Ctx};
use crate::problem::Failure;

/// Operate Urumi: stores, workflow runs, bulk operations, the audit log, live events and API
/// tokens.
#[derive(Debug, Parser)]
#[command(name = "urumictl", version)]
struct Cli {
    /// The API's base URL.
    #[arg(
        long,
        global = true,
        env = "URUMI_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// The bearer token (`urumi_<id>_<secret>`).
    #[arg(long, global = true, env = "URUMI_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the API's JSON instead of columns (events and ops watch: one JSON document per
    /// line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let result = match Api::new(&cli.url, cli.token.as_deref()) {
        Ok(api) => commands::run(cli.command, &Ctx { api, json }).await,
        Err(failure) => Err(failure),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let (true, Failure::Problem(problem)) = (json, &failure) {
                // Machines get the problem document itself on stdout.
                let _printed = output::print_json(problem);
            }
            eprintln!("error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
