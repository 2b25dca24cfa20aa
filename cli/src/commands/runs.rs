//! `urumictl runs …`: list runs (by status, kind, store; `--all` follows `next_cursor`), show
//! a run with every step, retry a failed run from its failed step, rerun a run (from a named
//! step), cancel a run.

use clap::Subcommand;
use uuid::Uuid;

use super::{Ctx, checked, more_hint, one_of, pages};
use crate::client::{enums, types};
use crate::output::{self, Table, cell, millis, opt, time};
use crate::problem::{Failure, call};

/// Run commands.
#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// List runs, newest first.
    List {
        /// Only runs in this status, e.g. `failed`.
        #[arg(long, value_parser = one_of::<types::RunStatus>(enums::RUN_STATUS))]
        status: Option<types::RunStatus>,
        /// Only runs of this kind, e.g. `store.provision`.
        #[arg(long, value_parser = one_of::<types::RunKind>(enums::RUN_KIND))]
        kind: Option<types::RunKind>,
        /// Only runs working on this store.
        #[arg(long)]
        store: Option<Uuid>,
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
    /// A run and every step: status, attempts, duration, last error.
    Show {
        /// The run's id.
        id: Uuid,
    },
    /// Resume a failed run at its failed step. Needs operator.
    Retry {
        /// The run's id.
        id: Uuid,
    },
    /// Start a new run of the same workflow version, store and input; prints the new run.
    /// With `--from-step`, the steps before it carry over this run's results (they must have
    /// succeeded) and are not run again. Only a subject's newest run, with no run active.
    /// Needs operator.
    Rerun {
        /// The run's id.
        id: Uuid,
        /// Rerun from this step (a step name, e.g. `namespace`); from the first step when
        /// absent.
        #[arg(long, value_name = "STEP")]
        from_step: Option<String>,
    },
    /// Cancel a run: at once if queued or waiting, else at its next step boundary. Needs
    /// operator.
    Cancel {
        /// The run's id.
        id: Uuid,
    },
}

/// Runs a run command.
///
/// # Errors
/// The API's problem, or why it could not be asked.
pub async fn run(cmd: RunsCmd, ctx: &Ctx) -> Result<(), Failure> {
    let api = &ctx.api.client;
    let detail = match cmd {
        RunsCmd::List {
            status,
            kind,
            store,
            all,
        } => {
            let (items, next_cursor) = pages(all, |cursor, limit| async move {
                let mut req = api.list_runs();
                if let Some(s) = status {
                    req = req.status(s);
                }
                if let Some(k) = kind {
                    req = req.kind(k);
                }
                if let Some(s) = store {
                    req = req.store_id(s);
                }
                if let Some(c) = cursor {
                    req = req.cursor(c);
                }
                if let Some(l) = limit {
                    req = req.limit(l);
                }
                let page = call(req.send()).await?;
                Ok((page.items, page.next_cursor))
            })
            .await?;
            if ctx.json {
                return output::print_json(&types::RunPage { items, next_cursor });
            }
            run_table(&items).print();
            more_hint(ctx, next_cursor.as_ref());
            return Ok(());
        }
        RunsCmd::Show { id } => call(api.get_run().id(id).send()).await?,
        RunsCmd::Retry { id } => call(api.retry_run().id(id).send()).await?,
        RunsCmd::Rerun { id, from_step } => {
            let body = types::RerunRequest {
                from_step: from_step.map(|s| checked("step name", s)).transpose()?,
            };
            call(api.rerun_run().id(id).body(body).send()).await?
        }
        RunsCmd::Cancel { id } => call(api.cancel_run().id(id).send()).await?,
    };
    if ctx.json {
        return output::print_json(&detail);
    }
    print_detail(&detail);
    Ok(())
}

/// Runs as a table.
#[must_use]
pub fn run_table(runs: &[types::RunSummary]) -> Table {
    let mut t = Table::new(&[
        "ID", "KIND", "STATUS", "STORE", "BY", "CREATED", "FINISHED", "ERROR",
    ]);
    for r in runs {
        t.row(vec![
            r.id.to_string(),
            r.kind.to_string(),
            r.status.to_string(),
            opt(r.store_id),
            r.created_by.clone(),
            time(Some(&r.created_at)),
            time(r.finished_at.as_ref()),
            opt(r.error.as_deref().map(|e| cell(e, 80))),
        ]);
    }
    t
}

fn print_detail(d: &types::RunDetail) {
    let mut fields = vec![
        ("id", d.id.to_string()),
        ("kind", d.kind.to_string()),
        ("status", d.status.to_string()),
        ("store", opt(d.store_id)),
        ("created_by", d.created_by.clone()),
        ("created", time(Some(&d.created_at))),
        ("started", time(d.started_at.as_ref())),
        ("finished", time(d.finished_at.as_ref())),
    ];
    if let Some(of) = d.rerun_of {
        fields.push(("rerun_of", of.to_string()));
    }
    if d.carried_steps > 0 {
        fields.push((
            "carried",
            format!("its first {} steps, from rerun_of", d.carried_steps),
        ));
    }
    if let Some(at) = &d.cancel_requested_at {
        fields.push(("cancel_asked", time(Some(at))));
    }
    if let Some(e) = &d.error {
        fields.push(("error", cell(e, 200)));
    }
    if let Some(out) = d.output.as_ref().filter(|v| !v.is_null()) {
        fields.push(("output", cell(&out.to_string(), 200)));
    }
    output::print_fields(&fields);
    println!();
    let mut t = Table::new(&[
        "#",
        "STEP",
        "STATUS",
        "ATTEMPTS",
        "POLLS",
        "STARTED",
        "DURATION",
        "LAST ERROR",
    ]);
    for s in &d.steps {
        let status = match &s.next_attempt_at {
            Some(next) if matches!(s.status, types::StepStatus::Waiting) => {
                format!("{} (next {})", s.status, next.format("%H:%M:%S"))
            }
            _ => s.status.to_string(),
        };
        t.row(vec![
            s.position.to_string(),
            s.name.clone(),
            status,
            s.attempts.to_string(),
            s.polls.to_string(),
            time(s.started_at.as_ref()),
            millis(s.duration_ms),
            opt(s.last_error.as_deref().map(|e| cell(e, 120))),
        ]);
    }
    t.print();
}
