//! `urumictl tokens …`: mint a token (its secret is printed once, alone on stdout, so it can
//! be captured), list tokens (never their secrets), revoke one — these need admin; and
//! show the token in use (`current`, any role).

use clap::Subcommand;
use uuid::Uuid;

use super::{Ctx, checked, one_of};
use crate::client::{enums, types};
use crate::output::{self, Table, opt, time};
use crate::problem::{Failure, call};

/// Token commands.
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Mint a token; prints it once.
    Create {
        /// Unique among live tokens; the actor recorded for everything done with it.
        name: String,
        /// What the token may do (each role includes the ones before it).
        #[arg(long, value_parser = one_of::<types::Role>(enums::ROLE))]
        role: types::Role,
        /// The token stops working this many hours after minting (1 to 87,600).
        #[arg(long)]
        expires_in_hours: Option<std::num::NonZeroU32>,
    },
    /// Every token, newest first.
    List,
    /// The token this command authenticates with: its name and role (any role).
    Current,
    /// Revoke a token.
    Revoke {
        /// The token's id.
        id: Uuid,
    },
}

/// Runs a token command.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(cmd: TokensCmd, ctx: &Ctx) -> Result<(), Failure> {
    let api = &ctx.api.client;
    match cmd {
        TokensCmd::Create {
            name,
            role,
            expires_in_hours,
        } => {
            let body = types::CreateToken {
                name: checked("token name", name)?,
                role,
                expires_in_hours,
            };
            let minted = call(api.create_token().body(body).send()).await?;
            if ctx.json {
                return output::print_json(&minted);
            }
            eprintln!(
                "minted token {} ({}, {}); it is shown only now:",
                minted.id, minted.name, minted.role
            );
            println!("{}", minted.token);
        }
        TokensCmd::List => {
            let list = call(api.list_tokens().send()).await?;
            if ctx.json {
                return output::print_json(&list);
            }
            let mut t = Table::new(&["ID", "NAME", "ROLE", "CREATED_BY", "CREATED", "REVOKED"]);
            for tok in &list.items {
                let revoked = tok
                    .revoked_at
                    .as_ref()
                    .map(|at| format!("{} by {}", time(Some(at)), opt(tok.revoked_by.as_ref())));
                t.row(vec![
                    tok.id.to_string(),
                    tok.name.clone(),
                    tok.role.to_string(),
                    tok.created_by.clone(),
                    time(Some(&tok.created_at)),
                    opt(revoked),
                ]);
            }
            t.print();
        }
        TokensCmd::Current => {
            let tok = call(api.current_token().send()).await?;
            if ctx.json {
                return output::print_json(&tok);
            }
            println!("{}  {}  {}", tok.id, tok.name, tok.role);
        }
        TokensCmd::Revoke { id } => {
            let tok = call(api.revoke_token().id(id).send()).await?;
            if ctx.json {
                return output::print_json(&tok);
            }
            println!("revoked {} ({}, {})", tok.id, tok.name, tok.role);
        }
    }
    Ok(())
}
