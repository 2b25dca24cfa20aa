//! `urumictl audit`: the audit log, newest first, filtered by store, run, actor and kind;
//! `--limit N` entries, fetched across pages as needed.

use clap::Args;
use uuid::Uuid;

use super::{Ctx, MAX_PAGE, checked};
use crate::client::types;
use crate::output::{self, Table, cell, opt, time};
use crate::problem::{Failure, call};

/// Audit log filters.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries about this store.
    #[arg(long)]
    store: Option<Uuid>,
    /// Only entries about this run.
    #[arg(long)]
    run: Option<Uuid>,
    /// Only entries by this actor (a token's name, a worker id, `system`).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries of this kind, e.g. `store.created` or `step.failed`.
    #[arg(long)]
    kind: Option<String>,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
}

/// Prints the audit log.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(args: AuditArgs, ctx: &Ctx) -> Result<(), Failure> {
    let actor: Option<types::ListAuditActor> =
        args.actor.map(|a| checked("actor", a)).transpose()?;
    let kind: Option<types::ListAuditKind> = args.kind.map(|k| checked("kind", k)).transpose()?;
    let mut items: Vec<types::AuditEntry> = Vec::new();
    let mut cursor: Option<String> = None;
    let next_cursor = loop {
        let wanted = args.limit - items.len() as u64;
        let mut req = ctx.api.client.list_audit().limit(wanted.min(MAX_PAGE));
        if let Some(s) = args.store {
            req = req.store_id(s);
        }
        if let Some(r) = args.run {
            req = req.run_id(r);
        }
        if let Some(a) = &actor {
            req = req.actor(a.clone());
        }
        if let Some(k) = &kind {
            req = req.kind(k.clone());
        }
        if let Some(c) = cursor.take() {
            req = req.cursor(c);
        }
        let page = call(req.send()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if (items.len() as u64) < args.limit => cursor = Some(next),
            next => break next,
        }
    };
    if ctx.json {
        return output::print_json(&types::AuditPage { items, next_cursor });
    }
    let mut t = Table::new(&[
        "ID", "TIME", "KIND", "ACTOR", "STORE", "RUN", "STEP", "DETAIL",
    ]);
    for e in &items {
        let detail = match &e.detail {
            serde_json::Value::Null => None,
            serde_json::Value::Object(m) if m.is_empty() => None,
            d => Some(cell(&d.to_string(), 80)),
        };
        t.row(vec![
            e.id.to_string(),
            time(Some(&e.created_at)),
            e.kind.clone(),
            e.actor.clone(),
            opt(e.store_id),
            opt(e.run_id),
            opt(e.step.as_ref()),
            opt(detail),
        ]);
    }
    t.print();
    Ok(())
}
