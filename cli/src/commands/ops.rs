//! `urumictl ops …`: bulk operations — create one over every run a selector matches (or
//! preview it with `--dry-run`), list them, show one with its progress, list its targets,
//! steer it (pause, resume, approve, cancel) and watch it to its end.
//!
//! `ops watch` (and `ops create --watch`) polls the operation about every second: a progress
//! bar on a terminal, else one plain line per change (one JSON document per change with
//! `--json`). It exits 0 when the operation succeeded, [`EXIT_STOPPED`] when it stopped by
//! itself, [`EXIT_CANCELLED`] when it was cancelled; 1 and 2 as for every command.

use std::io::IsTerminal as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use uuid::Uuid;

use super::{Ctx, checked, more_hint, one_of, pages};
use crate::client::{enums, types};
use crate::output::{self, Table, cell, opt, time};
use crate::problem::{Failure, call};

/// `ops watch`'s exit code for an operation that stopped by itself (its failure budget was
/// exceeded or its canary failed).
pub const EXIT_STOPPED: u8 = 3;
/// `ops watch`'s exit code for an operation an operator cancelled.
pub const EXIT_CANCELLED: u8 = 4;
/// How often `ops watch` asks.
const POLL: Duration = Duration::from_secs(1);
/// Consecutive polls that may fail to reach the API before `ops watch` gives up.
const MAX_POLL_FAILURES: u32 = 10;

/// Operation commands.
#[derive(Debug, Subcommand)]
pub enum OpsCmd {
    /// Act on every run a selector matches: each store's (subject's) newest run matching every
    /// selector flag given. Prints the operation (or with `--dry-run` what it would do).
    /// Needs operator (admin for `delete`).
    Create(Box<CreateArgs>),
    /// Operations, newest first.
    List {
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
    /// One operation: state, why it is in it, and how many targets are where.
    Show {
        /// The operation's id.
        id: Uuid,
    },
    /// An operation's targets in the order they start: state, the run started for each,
    /// why it was skipped or failed.
    Targets {
        /// The operation's id.
        id: Uuid,
        /// Only targets in this state.
        #[arg(long, value_parser = one_of::<types::TargetState>(enums::TARGET_STATE))]
        state: Option<types::TargetState>,
        /// Page size, 1 to 200 (the API's default when absent).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=200))]
        limit: Option<u64>,
        /// Start after this cursor (the `next_cursor` of the previous page).
        #[arg(long, conflicts_with = "all")]
        cursor: Option<String>,
        /// Follow `next_cursor` to the last page.
        #[arg(long)]
        all: bool,
    },
    /// Start no more targets until resumed; started ones run to their end. Needs operator.
    Pause {
        /// The operation's id.
        id: Uuid,
    },
    /// Go on after a pause. Needs operator.
    Resume {
        /// The operation's id.
        id: Uuid,
    },
    /// Let an operation whose canary succeeded go on to the rest of its targets. Needs
    /// operator.
    Approve {
        /// The operation's id.
        id: Uuid,
    },
    /// Start no more targets, ever: pending ones are skipped, started ones run to their end.
    /// Needs operator.
    Cancel {
        /// The operation's id.
        id: Uuid,
    },
    /// Follow an operation until it ends: a progress bar on a terminal, else one line per
    /// change. It keeps waiting while the operation is paused or awaits approval.
    ///
    /// Exit codes: 0 it succeeded, 3 it stopped by itself (failure budget exceeded or canary
    /// failed), 4 it was cancelled, 1 the API refused or could not be reached.
    Watch {
        /// The operation's id.
        id: Uuid,
    },
}

/// What `ops create` sends: the action, the selector, and how to go about it.
#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("canary").args(["canary_count", "canary_percent"])),
    group(ArgGroup::new("failure_budget").args(["failure_budget_count", "failure_budget_percent"])),
)]
pub struct CreateArgs {
    /// What to do to each target.
    #[arg(long, value_parser = one_of::<types::OperationAction>(enums::OPERATION_ACTION))]
    action: types::OperationAction,
    /// Select runs in this status, e.g. `failed`.
    #[arg(long, value_parser = one_of::<types::RunStatus>(enums::RUN_STATUS))]
    status: Option<types::RunStatus>,
    /// Select runs of this kind, e.g. `store.provision`.
    #[arg(long, value_parser = one_of::<types::RunKind>(enums::RUN_KIND))]
    kind: Option<types::RunKind>,
    /// Select runs whose step of this name failed.
    #[arg(long, value_name = "STEP")]
    failed_step: Option<String>,
    /// Select runs whose error contains this text (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    error_contains: Option<String>,
    /// Select runs of this store (repeat for several).
    #[arg(long = "store", value_name = "ID")]
    stores: Vec<Uuid>,
    /// Select runs of stores on this plan.
    #[arg(long)]
    plan: Option<String>,
    /// Select runs of stores running this engine.
    #[arg(long)]
    engine: Option<String>,
    /// Select runs created at or after this time (RFC 3339, e.g. `2026-12-01T00:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    created_after: Option<DateTime<Utc>>,
    /// Select runs created before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    created_before: Option<DateTime<Utc>>,
    /// Mean it: match every run the other selector flags allow, even when none is given.
    #[arg(long)]
    all: bool,
    /// For `--action rerun`: rerun from this step, the steps before it carried over (needs
    /// `--kind`).
    #[arg(long, value_name = "STEP")]
    from_step: Option<String>,
    /// For `--action resize`: the plan every matched store moves to (`--plan` selects by
    /// the plan stores are on now).
    #[arg(long, value_name = "PLAN")]
    to_plan: Option<String>,
    /// For `--action upgrade`: the release channel (each store's own when absent).
    #[arg(long, value_name = "CHANNEL")]
    channel: Option<String>,
    /// Targets under way at once, 1 to 10,000 (the API's default, 10, when absent).
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,
    /// Act on the first N targets first; any failure among them stops the operation.
    #[arg(long, value_name = "N")]
    canary_count: Option<u32>,
    /// Act on the first P% of the targets first (rounded up).
    #[arg(long, value_name = "P")]
    canary_percent: Option<u32>,
    /// After a canary that succeeded: wait for `ops approve` (`pause`, the default) or go on.
    #[arg(long, requires = "canary",
          value_parser = one_of::<types::CanaryThen>(enums::CANARY_THEN))]
    canary_then: Option<types::CanaryThen>,
    /// Stop by itself once more than N targets failed.
    #[arg(long, value_name = "N")]
    failure_budget_count: Option<u32>,
    /// Stop by itself once more than P% of the targets failed.
    #[arg(long, value_name = "P")]
    failure_budget_percent: Option<u32>,
    /// Print how many runs match and what would happen to the first ones; start nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then follow it as `ops watch` does (same exit codes).
    #[arg(long, conflicts_with = "dry_run")]
    watch: bool,
}

/// An RFC 3339 time, for `--created-after` and `--created-before`.
fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z): {e}"))
}

impl CreateArgs {
    /// The request body, the selector's and step's text checked against the document.
    fn body(self) -> Result<types::CreateOperation, Failure> {
        let selector = types::OperationSelector {
            all: self.all,
            created_after: self.created_after,
            created_before: self.created_before,
            engine: self.engine.map(|e| checked("engine", e)).transpose()?,
            error_contains: self
                .error_contains
                .map(|e| checked("error text", e))
                .transpose()?,
            failed_step: self
                .failed_step
                .map(|s| checked("step name", s))
                .transpose()?,
            kind: self.kind,
            plan: self.plan.map(|p| checked("plan", p)).transpose()?,
            status: self.status,
            store_ids: self.stores,
        };
        let canary = (self.canary_count.is_some() || self.canary_percent.is_some()).then_some(
            types::CanarySpec {
                count: self.canary_count,
                percent: self.canary_percent,
                then: self.canary_then,
            },
        );
        let failure_budget = (self.failure_budget_count.is_some()
            || self.failure_budget_percent.is_some())
        .then_some(types::TargetCount {
            count: self.failure_budget_count,
            percent: self.failure_budget_percent,
        });
        Ok(types::CreateOperation {
            action: self.action,
            canary,
            dry_run: self.dry_run,
            failure_budget,
            from_step: self
                .from_step
                .map(|s| checked("step name", s))
                .transpose()?,
            max_concurrency: self.max_concurrency.map(i64::from),
            plan: self.to_plan.map(|p| checked("plan", p)).transpose()?,
            channel: self.channel.map(|c| checked("channel", c)).transpose()?,
            selector,
        })
    }
}

/// Runs an operation command.
///
/// # Errors
/// The API's problem, or why it could not be asked; for `watch`, an operation that did not
/// succeed ([`Failure::Outcome`]).
pub async fn run(cmd: OpsCmd, ctx: &Ctx) -> Result<(), Failure> {
    let api = &ctx.api.client;
    let op = match cmd {
        OpsCmd::Create(args) => return create(*args, ctx).await,
        OpsCmd::List { all } => {
            let (items, next_cursor) = pages(all, |cursor, limit| async move {
                let mut req = api.list_operations();
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
                return output::print_json(&types::OperationPage { items, next_cursor });
            }
            operation_table(&items).print();
            more_hint(ctx, next_cursor.as_ref());
            return Ok(());
        }
        OpsCmd::Targets {
            id,
            state,
            limit,
            cursor,
            all,
        } => return targets(ctx, id, state, limit, cursor, all).await,
        OpsCmd::Watch { id } => return watch(ctx, id).await,
        OpsCmd::Show { id } => call(api.get_operation().id(id).send()).await?,
        OpsCmd::Pause { id } => call(api.pause_operation().id(id).send()).await?,
        OpsCmd::Resume { id } => call(api.resume_operation().id(id).send()).await?,
        OpsCmd::Approve { id } => call(api.approve_operation().id(id).send()).await?,
        OpsCmd::Cancel { id } => call(api.cancel_operation().id(id).send()).await?,
    };
    if ctx.json {
        return output::print_json(&op);
    }
    output::print_fields(&operation_fields(&op));
    Ok(())
}

async fn create(args: CreateArgs, ctx: &Ctx) -> Result<(), Failure> {
    let watch_after = args.watch;
    let body = args.body()?;
    let action = body.action.to_string();
    let created = call(ctx.api.client.create_operation().body(body).send()).await?;
    match (created.operation, created.preview) {
        (Some(op), _) if watch_after => {
            if !ctx.json {
                eprintln!(
                    "created operation {} ({} {} targets); watching it",
                    op.id, op.action, op.progress.matched
                );
            }
            watch(ctx, op.id).await
        }
        (op, preview) if ctx.json => output::print_json(&types::OperationCreated {
            operation: op,
            preview,
        }),
        (Some(op), _) => {
            output::print_fields(&operation_fields(&op));
            eprintln!("follow it with: urumictl ops watch {}", op.id);
            Ok(())
        }
        (None, Some(preview)) => {
            print_preview(&preview, &action);
            Ok(())
        }
        (None, None) => Err(Failure::Other(
            "the API answered neither an operation nor a preview".into(),
        )),
    }
}

/// A dry run's answer: the matched count, then what would happen to each previewed target,
/// then (repair and delete) the cluster plan.
fn print_preview(p: &types::OperationPreview, action: &str) {
    output::print_fields(&[("matched", p.matched.to_string())]);
    if !p.targets.is_empty() {
        println!();
        let mut t = Table::new(&["RUN", "KIND", "STATUS", "STORE", "FAILED STEP", "WOULD"]);
        for target in &p.targets {
            t.row(vec![
                target.run_id.to_string(),
                target.kind.to_string(),
                target.status.to_string(),
                target
                    .store_id
                    .map_or_else(|| target.subject.clone(), |s| s.to_string()),
                opt(target.failed_step.as_ref()),
                cell(&target.would, 120),
            ]);
        }
        t.print();
    }
    if usize::try_from(p.matched).is_ok_and(|n| n > p.targets.len()) {
        eprintln!(
            "(showing the first {} of {} targets)",
            p.targets.len(),
            p.matched
        );
    }
    let plan = plan_lines(p, action);
    if !plan.is_empty() {
        println!();
        for line in plan {
            println!("{line}");
        }
    }
    eprintln!("dry run: nothing was started");
}

/// The cluster plan of a repair or delete dry run, as the lines printed: its state (pending:
/// the run that will hold it; failed: why), then per target with a plan its store, the
/// action's failure if it would fail, one line per object created (`+`), updated (`~`, with
/// the changed fields) or deleted (`-`), and the unchanged ones as a count. None for the
/// actions without a plan.
fn plan_lines(p: &types::OperationPreview, action: &str) -> Vec<String> {
    let Some(plan) = &p.cluster_plan else {
        return Vec::new();
    };
    let mut lines = vec![plan_state_line(plan)];
    for t in &p.targets {
        let Some(sp) = &t.plan else { continue };
        let store = t
            .store_id
            .map_or_else(|| t.subject.clone(), |s| s.to_string());
        lines.extend(store_plan_lines(&store, sp, action));
    }
    lines
}

/// The first line of a cluster plan: its state (pending: the run that will hold it; failed:
/// why).
pub(super) fn plan_state_line(plan: &types::ClusterPlan) -> String {
    let run = plan.run_id;
    match plan.state {
        types::PlanState::Ready => {
            format!("cluster plan: ready (run {run}; a server-side dry run, nothing was written)")
        }
        types::PlanState::Pending => format!(
            "cluster plan: pending: no worker finished it in time; run {run} will hold it (urumictl runs show {run})"
        ),
        types::PlanState::Failed => format!(
            "cluster plan: failed (run {run}): {}",
            plan.error.as_deref().unwrap_or("the preview run failed")
        ),
    }
}

/// One store's plan: the store, the action's failure if it would fail, one line per object
/// created (`+`), updated (`~`, with the changed fields) or deleted (`-`), and the unchanged
/// ones as a count.
pub(super) fn store_plan_lines(store: &str, sp: &types::StorePlan, action: &str) -> Vec<String> {
    let mut lines = vec![format!("store {store}:")];
    if let Some(e) = &sp.error {
        lines.push(format!("  the {action} would fail: {e}"));
    }
    let mut unchanged = 0;
    for o in &sp.objects {
        let mark = match o.change {
            types::ObjectChange::Create => "+",
            types::ObjectChange::Update => "~",
            types::ObjectChange::Delete => "-",
            types::ObjectChange::Unchanged => {
                unchanged += 1;
                continue;
            }
        };
        let mut line = format!("  {mark} {}/{}", o.kind, o.name);
        if !o.fields.is_empty() {
            line.push_str("  ");
            line.push_str(&o.fields.join(" "));
        }
        if let Some(note) = &o.note {
            line.push_str(&format!(" ({note})"));
        }
        lines.push(line);
    }
    if unchanged > 0 {
        lines.push(format!("  {unchanged} unchanged"));
    } else if sp.objects.is_empty() && sp.error.is_none() {
        lines.push("  nothing to write".into());
    }
    lines
}

async fn targets(
    ctx: &Ctx,
    id: Uuid,
    state: Option<types::TargetState>,
    limit: Option<u64>,
    cursor: Option<String>,
    all: bool,
) -> Result<(), Failure> {
    let api = &ctx.api.client;
    let mut first_cursor = cursor;
    let (items, next_cursor) = pages(all, |cursor, page_limit| {
        let cursor = cursor.or_else(|| first_cursor.take());
        async move {
            let mut req = api.list_operation_targets().id(id);
            if let Some(s) = state {
                req = req.state(s);
            }
            if let Some(c) = cursor {
                req = req.cursor(c);
            }
            if let Some(l) = page_limit.or(limit) {
                req = req.limit(l);
            }
            let page = call(req.send()).await?;
            Ok((page.items, page.next_cursor))
        }
    })
    .await?;
    if ctx.json {
        return output::print_json(&types::OperationTargetPage { items, next_cursor });
    }
    let mut t = Table::new(&[
        "#",
        "RUN",
        "STORE",
        "STATE",
        "STARTED RUN",
        "UPDATED",
        "REASON",
    ]);
    for target in &items {
        t.row(vec![
            target.position.to_string(),
            target.run_id.to_string(),
            target
                .store_id
                .map_or_else(|| target.subject.clone(), |s| s.to_string()),
            target.state.to_string(),
            opt(target.child_run_id),
            time(Some(&target.updated_at)),
            opt(target.reason.as_deref().map(|r| cell(r, 120))),
        ]);
    }
    t.print();
    if let Some(next) = &next_cursor {
        eprintln!("(more on the next page: pass --cursor {next}, or --all to list everything)");
    }
    Ok(())
}

/// Operations as a table.
fn operation_table(ops: &[types::Operation]) -> Table {
    let mut t = Table::new(&[
        "ID", "ACTION", "STATE", "DONE", "FAILED", "BY", "CREATED", "REASON",
    ]);
    for op in ops {
        let p = &op.progress;
        t.row(vec![
            op.id.to_string(),
            op.action.to_string(),
            op.state.to_string(),
            format!("{}/{}", done(p), p.matched),
            p.failed.to_string(),
            op.created_by.clone(),
            time(Some(&op.created_at)),
            opt(op.reason.as_deref().map(|r| cell(r, 80))),
        ]);
    }
    t
}

/// Targets that need nothing more: succeeded, failed or skipped.
fn done(p: &types::OperationProgress) -> i64 {
    p.succeeded + p.failed + p.skipped
}

/// The selector as `field=value` words, or `all` when it matches every run.
fn selector_words(s: &types::OperationSelector) -> String {
    let mut words = Vec::new();
    if let Some(v) = &s.status {
        words.push(format!("status={v}"));
    }
    if let Some(v) = &s.kind {
        words.push(format!("kind={v}"));
    }
    if let Some(v) = &s.failed_step {
        words.push(format!("failed_step={}", v.as_str()));
    }
    if let Some(v) = &s.error_contains {
        words.push(format!("error_contains={:?}", v.as_str()));
    }
    if !s.store_ids.is_empty() {
        let ids: Vec<String> = s.store_ids.iter().map(Uuid::to_string).collect();
        words.push(format!("stores={}", ids.join(",")));
    }
    if let Some(v) = &s.plan {
        words.push(format!("plan={}", v.as_str()));
    }
    if let Some(v) = &s.engine {
        words.push(format!("engine={}", v.as_str()));
    }
    if let Some(v) = &s.created_after {
        words.push(format!("created_after={}", v.to_rfc3339()));
    }
    if let Some(v) = &s.created_before {
        words.push(format!("created_before={}", v.to_rfc3339()));
    }
    if s.all {
        words.push("all".into());
    }
    words.join(" ")
}

/// An operation as `key  value` lines: what it does, where it is, how many targets are where.
fn operation_fields(op: &types::Operation) -> Vec<(&'static str, String)> {
    let p = &op.progress;
    let mut fields = vec![("id", op.id.to_string()), ("action", op.action.to_string())];
    if let Some(step) = &op.from_step {
        fields.push(("from_step", step.clone()));
    }
    if let Some(plan) = &op.plan {
        fields.push(("to_plan", plan.clone()));
    }
    if let Some(channel) = &op.channel {
        fields.push(("channel", channel.clone()));
    }
    fields.extend([
        ("selector", selector_words(&op.selector)),
        ("state", op.state.to_string()),
        ("reason", opt(op.reason.as_deref().map(|r| cell(r, 200)))),
        ("progress", format!("{}/{} done", done(p), p.matched)),
        ("matched", p.matched.to_string()),
        ("pending", p.pending.to_string()),
        ("running", p.running.to_string()),
        ("succeeded", p.succeeded.to_string()),
        ("failed", p.failed.to_string()),
        ("skipped", p.skipped.to_string()),
        ("concurrency", op.max_concurrency.to_string()),
    ]);
    if let Some(c) = &op.canary {
        fields.push((
            "canary",
            format!(
                "first {} then {}{}",
                c.size,
                c.then,
                if c.passed { " (passed)" } else { "" }
            ),
        ));
    }
    if let Some(n) = op.max_failures {
        fields.push(("max_failures", n.to_string()));
    }
    fields.extend([
        ("run", op.run_id.to_string()),
        ("owner", op.owner.clone()),
        ("created_by", op.created_by.clone()),
        ("created", time(Some(&op.created_at))),
        ("updated", time(Some(&op.updated_at))),
        ("finished", time(op.finished_at.as_ref())),
    ]);
    if op.state == types::OperationState::AwaitingApproval {
        fields.push(("next", approve_hint(op.id)));
    }
    fields
}

fn approve_hint(id: Uuid) -> String {
    format!("its canary succeeded: approve the rest with `urumictl ops approve {id}`")
}

/// One line for where an operation is: its state, the counts, why.
fn progress_line(op: &types::Operation) -> String {
    let p = &op.progress;
    let mut line = format!(
        "{}  {}/{} done: {} succeeded, {} failed, {} skipped, {} running, {} pending",
        op.state,
        done(p),
        p.matched,
        p.succeeded,
        p.failed,
        p.skipped,
        p.running,
        p.pending,
    );
    if let Some(reason) = &op.reason {
        line.push_str(&format!(" ({})", cell(reason, 120)));
    }
    if op.state == types::OperationState::AwaitingApproval {
        line.push_str(" AWAITING APPROVAL: ");
        line.push_str(&approve_hint(op.id));
    }
    line
}

/// How an operation in `state` ends `ops watch`: `None` while it may still change.
fn outcome(op: &types::Operation) -> Option<Result<(), Failure>> {
    use types::OperationState as S;
    let why = || {
        op.reason
            .as_deref()
            .map_or_else(String::new, |r| format!(": {r}"))
    };
    match op.state {
        S::Running | S::Paused | S::AwaitingApproval => None,
        S::Succeeded => Some(Ok(())),
        S::Stopped => Some(Err(Failure::Outcome(
            EXIT_STOPPED,
            format!("operation {} stopped{}", op.id, why()),
        ))),
        S::Cancelled => Some(Err(Failure::Outcome(
            EXIT_CANCELLED,
            format!("operation {} was cancelled{}", op.id, why()),
        ))),
    }
}

/// How `ops watch` shows progress.
enum View {
    /// A progress bar (stdout is a terminal).
    Bar(ProgressBar),
    /// One plain line per change.
    Lines,
    /// One JSON document per change (`--json`).
    Json,
}

impl View {
    fn new(ctx: &Ctx) -> Result<Self, Failure> {
        if ctx.json {
            return Ok(Self::Json);
        }
        if !std::io::stdout().is_terminal() {
            return Ok(Self::Lines);
        }
        let style = ProgressStyle::with_template(
            "{spinner} {elapsed:>4} [{bar:30.cyan/blue}] {pos}/{len} {wide_msg}",
        )
        .map_err(|e| Failure::Other(format!("cannot draw a progress bar: {e}")))?
        .progress_chars("=> ");
        let bar =
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout()).with_style(style);
        bar.set_message("asking the API…");
        bar.enable_steady_tick(Duration::from_millis(120));
        Ok(Self::Bar(bar))
    }

    /// Shows `op` (whose line is `line`), changed since it was last shown.
    fn show(&self, op: &types::Operation, line: &str) -> Result<(), Failure> {
        match self {
            Self::Bar(bar) => {
                bar.set_length(u64::try_from(op.progress.matched).unwrap_or(0));
                bar.set_position(u64::try_from(done(&op.progress)).unwrap_or(0));
                let p = &op.progress;
                let mut msg = format!(
                    "{}  {} ok, {} failed, {} skipped, {} running",
                    op.state, p.succeeded, p.failed, p.skipped, p.running
                );
                if op.state == types::OperationState::AwaitingApproval {
                    msg.push_str(" | AWAITING APPROVAL: urumictl ops approve ");
                    msg.push_str(&op.id.to_string());
                } else if let Some(reason) = &op.reason {
                    msg.push_str(&format!(" ({})", cell(reason, 60)));
                }
                bar.set_message(msg);
                Ok(())
            }
            Self::Lines => {
                println!("{}  {line}", Utc::now().format("%H:%M:%S"));
                Ok(())
            }
            Self::Json => {
                let text = serde_json::to_string(op)
                    .map_err(|e| Failure::Other(format!("cannot print the answer as JSON: {e}")))?;
                println!("{text}");
                Ok(())
            }
        }
    }

    /// A warning, printed without tearing the bar.
    fn warn(&self, text: &str) {
        match self {
            Self::Bar(bar) => bar.suspend(|| eprintln!("warning: {text}")),
            Self::Lines | Self::Json => eprintln!("warning: {text}"),
        }
    }

    /// The operation ended as `op`.
    fn end(&self, op: &types::Operation, line: &str) {
        if let Self::Bar(bar) = self {
            if op.state == types::OperationState::Succeeded {
                bar.finish();
            } else {
                bar.abandon();
            }
            println!("{line}");
        }
    }
}

/// Polls operation `id` about every second until it ends.
async fn watch(ctx: &Ctx, id: Uuid) -> Result<(), Failure> {
    let api = &ctx.api.client;
    let view = View::new(ctx)?;
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<String> = None;
    let mut failures = 0u32;
    loop {
        ticks.tick().await;
        let op = match call(api.get_operation().id(id).send()).await {
            Ok(op) => op,
            // The API refused (no such operation, a revoked token): asking again won't help.
            Err(failure @ (Failure::Problem(_) | Failure::Usage(_) | Failure::Outcome(..))) => {
                return Err(failure);
            }
            Err(failure) => {
                failures += 1;
                if failures >= MAX_POLL_FAILURES {
                    return Err(failure);
                }
                view.warn(&format!("{failure}; asking again"));
                continue;
            }
        };
        failures = 0;
        let line = progress_line(&op);
        if last.as_deref() != Some(line.as_str()) {
            view.show(&op, &line)?;
            last = Some(line.clone());
        }
        if let Some(result) = outcome(&op) {
            view.end(&op, &line);
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(v: serde_json::Value) -> types::OperationPreview {
        serde_json::from_value(v).expect("an OperationPreview")
    }

    fn target(store: &str, plan: &serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "run_id": "0190a000-0000-7000-8000-00000000000a",
            "store_id": store,
            "subject": format!("store:{store}"),
            "kind": "store.provision",
            "version": 1,
            "status": "succeeded",
            "would": "start store.repair@1",
            "plan": plan,
        })
    }

    const PLAN_RUN: &str = "0190a000-0000-7000-8000-0000000000ff";
    const STORE_A: &str = "0190a000-0000-7000-8000-000000000001";
    const STORE_B: &str = "0190a000-0000-7000-8000-000000000002";

    #[test]
    fn a_ready_plan_prints_each_change_the_unchanged_count_and_a_targets_failure() {
        let mut unchanged: Vec<serde_json::Value> = (0..12)
            .map(|i| serde_json::json!({"kind": "Service", "name": format!("s{i}"), "change": "unchanged", "fields": []}))
            .collect();
        let mut objects = vec![
            serde_json::json!({"kind": "NetworkPolicy", "name": "allow-dns", "change": "create", "fields": []}),
            serde_json::json!({"kind": "ResourceQuota", "name": "store-quota", "change": "update",
                               "fields": ["/spec/hard/pods", "/spec/hard/requests.cpu"]}),
        ];
        objects.append(&mut unchanged);
        let p = preview(serde_json::json!({
            "matched": 2,
            "targets": [
                target(STORE_A, &serde_json::json!({"objects": objects})),
                target(STORE_B, &serde_json::json!({"objects": [],
                    "error": "the credentials Secret is missing"})),
            ],
            "cluster_plan": {"run_id": PLAN_RUN, "state": "ready"},
        }));
        assert_eq!(
            plan_lines(&p, "repair"),
            [
                format!(
                    "cluster plan: ready (run {PLAN_RUN}; a server-side dry run, nothing was written)"
                ),
                format!("store {STORE_A}:"),
                "  + NetworkPolicy/allow-dns".into(),
                "  ~ ResourceQuota/store-quota  /spec/hard/pods /spec/hard/requests.cpu".into(),
                "  12 unchanged".into(),
                format!("store {STORE_B}:"),
                "  the repair would fail: the credentials Secret is missing".into(),
            ]
        );
    }

    #[test]
    fn a_delete_plan_prints_the_namespace_with_its_note() {
        let p = preview(serde_json::json!({
            "matched": 1,
            "targets": [target(STORE_A, &serde_json::json!({"objects": [
                {"kind": "Namespace", "name": "store-x", "change": "delete", "fields": [],
                 "note": "with every object in it"}
            ]}))],
            "cluster_plan": {"run_id": PLAN_RUN, "state": "ready"},
        }));
        assert_eq!(
            plan_lines(&p, "delete")[1..],
            [
                format!("store {STORE_A}:"),
                "  - Namespace/store-x (with every object in it)".into(),
            ]
        );
    }

    #[test]
    fn a_pending_plan_names_its_run_and_a_failed_one_its_error() {
        let pending = preview(serde_json::json!({
            "matched": 1,
            "targets": [],
            "cluster_plan": {"run_id": PLAN_RUN, "state": "pending"},
        }));
        assert_eq!(
            plan_lines(&pending, "repair"),
            [format!(
                "cluster plan: pending: no worker finished it in time; run {PLAN_RUN} will hold it (urumictl runs show {PLAN_RUN})"
            )]
        );
        let failed = preview(serde_json::json!({
            "matched": 1,
            "targets": [],
            "cluster_plan": {"run_id": PLAN_RUN, "state": "failed", "error": "step preview: forbidden"},
        }));
        assert_eq!(
            plan_lines(&failed, "repair"),
            [format!(
                "cluster plan: failed (run {PLAN_RUN}): step preview: forbidden"
            )]
        );
        let retry = preview(serde_json::json!({"matched": 0, "targets": []}));
        assert!(plan_lines(&retry, "retry").is_empty());
    }
}
