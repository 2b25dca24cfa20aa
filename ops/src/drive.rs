//! One poll of an operation's parent run (step `drive` of `operation@1`): watch the running
//! targets, apply the failure budget and the canary, start what the concurrency allows, and
//! finish when nothing is left. Every decision is recomputed from the tables, so a poll
//! that dies halfway is simply run again.

use std::time::Duration;

use serde_json::json;
use sqlx::{PgConnection, PgPool};
use urumi_engine::{
    AuditEntry, Engine, Lane, ResultExt, RunStatus, StepContext, StepError, StepOutcome, Who,
};
use urumi_store::service::Lifecycle;
use urumi_store::settings::StoreSettings;
use urumi_store::upgrades::Upgrade;
use uuid::Uuid;

use crate::db::{self, Open};
use crate::definition::{OperationInput, subject};
use crate::model::{Action, CanaryThen, Operation, OperationState as S, TargetState as T};

/// How often a parent run polls while targets run or it is paused.
pub(crate) const POLL: Duration = Duration::from_millis(500);
/// At most this many targets start in one poll (the next poll follows at once).
pub(crate) const STARTS_PER_POLL: usize = 1000;
/// Targets started per transaction (each in its own savepoint).
const CHUNK: usize = 100;

/// The actor of what an operation does by itself (its own state changes); what its targets'
/// runs record is the operator who created it.
const SELF: &str = "system";

async fn event(
    conn: &mut PgConnection,
    op: &Operation,
    kind: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    urumi_engine::audit_in(
        conn,
        AuditEntry {
            kind,
            actor: SELF,
            subject: Some(subject(op.id)),
            run_id: Some(op.run_id),
            detail,
        },
    )
    .await
}

async fn load(pool: &PgPool, id: Uuid) -> Result<Operation, StepError> {
    let mut conn = pool.acquire().await.retryable()?;
    db::get(&mut conn, id, false)
        .await
        .retryable()?
        .ok_or_else(|| StepError::fatal(format!("operation {id} not found")))
}

/// Moves the operation (if it is still in one of `from`) and records the move as an event.
async fn transition(
    pool: &PgPool,
    op: &Operation,
    from: &[S],
    to: S,
    reason: Option<&str>,
) -> Result<(), StepError> {
    let mut tx = pool.begin().await.retryable()?;
    if db::move_state(&mut tx, op.id, from, to, reason)
        .await
        .retryable()?
    {
        if matches!(to, S::Stopped) {
            let why = reason.unwrap_or("stopped");
            db::skip_pending(&mut tx, op.id, &format!("operation stopped: {why}"))
                .await
                .retryable()?;
        }
        let kind = format!("operation.{to}");
        event(&mut tx, op, &kind, json!({ "reason": reason }))
            .await
            .retryable()?;
    }
    tx.commit().await.retryable()
}

/// The step: one poll.
pub(crate) async fn poll(
    engine: &Engine,
    stores: &StoreSettings,
    ctx: &StepContext,
) -> Result<StepOutcome, StepError> {
    let input: OperationInput = ctx.input_as()?;
    let pool = engine.pool();
    let id = input.operation_id;
    let op = load(pool, id).await?;
    refresh(engine, &op).await?;
    let op = load(pool, id).await?;

    if !op.state.is_final() {
        if let Some(max) = op.max_failures
            && op.progress.failed > i64::from(max)
        {
            let why = format!(
                "failure budget exceeded: {} targets failed, {max} allowed",
                op.progress.failed
            );
            transition(
                pool,
                &op,
                &[S::Running, S::Paused, S::AwaitingApproval],
                S::Stopped,
                Some(&why),
            )
            .await?;
        } else if op.canary_size > 0 && !op.canary_passed {
            canary(pool, &op).await?;
        }
    }
    let op = load(pool, id).await?;
    let tried = if op.state == S::Running {
        start_targets(engine, stores, &op).await?
    } else {
        0
    };

    let op = load(pool, id).await?;
    let p = op.progress;
    if p.pending == 0 && p.running == 0 {
        if op.state == S::Running {
            transition(pool, &op, &[S::Running], S::Succeeded, None).await?;
        }
        let op = load(pool, id).await?;
        return StepOutcome::done(json!({ "state": op.state, "progress": op.progress }));
    }
    // A poll that hit its start cap is followed at once by the next.
    let wait = if tried == STARTS_PER_POLL {
        Duration::ZERO
    } else {
        POLL
    };
    Ok(StepOutcome::wait(
        wait,
        format!(
            "{}: {} running, {} pending, {} succeeded, {} failed, {} skipped",
            op.state, p.running, p.pending, p.succeeded, p.failed, p.skipped
        ),
    ))
}

/// Once the canary's targets have all ended: stop if any failed, else pause for approval or
/// go on.
async fn canary(pool: &PgPool, op: &Operation) -> Result<(), StepError> {
    let (open, failed) = db::canary_counts(pool, op.id, op.canary_size)
        .await
        .retryable()?;
    if failed > 0 {
        let why = format!(
            "canary failed: {failed} of the first {} targets failed",
            op.canary_size
        );
        return transition(pool, op, &[S::Running, S::Paused], S::Stopped, Some(&why)).await;
    }
    if open > 0 || op.state != S::Running {
        return Ok(());
    }
    match op.canary_then {
        Some(CanaryThen::Continue) | None => {
            let mut tx = pool.begin().await.retryable()?;
            db::pass_canary(&mut tx, op.id).await.retryable()?;
            event(
                &mut tx,
                op,
                "operation.canary_passed",
                json!({ "size": op.canary_size }),
            )
            .await
            .retryable()?;
            tx.commit().await.retryable()
        }
        Some(CanaryThen::Pause) => {
            let why = format!(
                "the canary's {} targets succeeded: approve to go on",
                op.canary_size
            );
            transition(pool, op, &[S::Running], S::AwaitingApproval, Some(&why)).await
        }
    }
}

/// Running targets whose child run ended become succeeded or failed.
async fn refresh(engine: &Engine, op: &Operation) -> Result<(), StepError> {
    let pool = engine.pool();
    let running = db::running(pool, op.id).await.retryable()?;
    if running.is_empty() {
        return Ok(());
    }
    let children: Vec<Uuid> = running.iter().filter_map(|t| t.child_run_id).collect();
    let statuses = engine.run_statuses(&children).await.retryable()?;
    let mut tx = pool.begin().await.retryable()?;
    for t in &running {
        let child = t.child_run_id.unwrap_or(t.run_id);
        let (to, reason) = match statuses.get(&child) {
            Some((RunStatus::Succeeded, _)) => (T::Succeeded, None),
            Some((RunStatus::Failed, error)) => (
                T::Failed,
                Some(error.clone().unwrap_or_else(|| "the run failed".into())),
            ),
            Some((RunStatus::Cancelled, _)) => (T::Failed, Some("the run was cancelled".into())),
            Some(_) => continue,
            None => (T::Failed, Some(format!("run {child} no longer exists"))),
        };
        if db::move_target(
            &mut tx,
            op.id,
            t.position,
            T::Running,
            to,
            None,
            reason.as_deref(),
        )
        .await
        .retryable()?
        {
            let kind = format!("operation.target_{to}");
            event(
                &mut tx,
                op,
                &kind,
                json!({ "position": t.position, "run_id": child, "reason": reason }),
            )
            .await
            .retryable()?;
        }
    }
    tx.commit().await.retryable()
}

/// Starts pending targets, up to the free concurrency (and only the canary's until it
/// passed). Returns how many it tried.
async fn start_targets(
    engine: &Engine,
    stores: &StoreSettings,
    op: &Operation,
) -> Result<usize, StepError> {
    let free = (i64::from(op.max_concurrency) - op.progress.running).max(0);
    let n = free.min(STARTS_PER_POLL as i64);
    if n == 0 {
        return Ok(0);
    }
    let below = if op.canary_size > 0 && !op.canary_passed {
        op.canary_size
    } else {
        i32::MAX
    };
    let pending = db::pending(engine.pool(), op.id, below, n)
        .await
        .retryable()?;
    for chunk in pending.chunks(CHUNK) {
        let mut tx = engine.pool().begin().await.retryable()?;
        for t in chunk {
            start_one(engine, stores, &mut tx, op, t).await?;
        }
        tx.commit().await.retryable()?;
    }
    Ok(pending.len())
}

/// What acting on a target did.
enum Acted {
    /// A child run is under way.
    Started(Uuid),
    /// Done at once (a cancel the engine accepted).
    Done,
}

/// Acts on one target inside a savepoint: started, done, or skipped with the reason.
async fn start_one(
    engine: &Engine,
    stores: &StoreSettings,
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    op: &Operation,
    t: &Open,
) -> Result<(), StepError> {
    let mut sp = sqlx::Connection::begin(&mut **tx).await.retryable()?;
    let acted = act(engine, stores, &mut sp, op, t).await;
    let (to, child, reason) = match acted {
        Ok(Acted::Started(child)) => (T::Running, Some(child), None),
        Ok(Acted::Done) => (T::Succeeded, Some(t.run_id), None),
        Err(Skip::Because(why)) => {
            sp.rollback().await.retryable()?;
            sp = sqlx::Connection::begin(&mut **tx).await.retryable()?;
            (T::Skipped, None, Some(why))
        }
        Err(Skip::Database(e)) => return Err(StepError::retryable(e.to_string())),
    };
    if db::move_target(
        &mut sp,
        op.id,
        t.position,
        T::Pending,
        to,
        child,
        reason.as_deref(),
    )
    .await
    .retryable()?
    {
        let kind = if to == T::Running {
            "operation.target_started".to_owned()
        } else {
            format!("operation.target_{to}")
        };
        event(
            &mut sp,
            op,
            &kind,
            json!({ "position": t.position, "run_id": t.run_id, "child_run_id": child, "reason": reason }),
        )
        .await
        .retryable()?;
        sp.commit().await.retryable()
    } else {
        // Another poll moved it first: undo what this one did.
        sp.rollback().await.retryable()
    }
}

/// Why a target was not acted on.
enum Skip {
    /// It no longer qualifies: the engine's (or the store's) refusal, in words.
    Because(String),
    /// The database failed: the poll is retried.
    Database(sqlx::Error),
}

impl From<urumi_engine::Error> for Skip {
    fn from(e: urumi_engine::Error) -> Self {
        match e {
            urumi_engine::Error::Database(db) => Skip::Database(db),
            other => Skip::Because(other.to_string()),
        }
    }
}

impl From<urumi_store::service::Error> for Skip {
    fn from(e: urumi_store::service::Error) -> Self {
        use urumi_store::service::Error as E;
        match e {
            E::Database(db) => Skip::Database(db),
            E::Engine(inner) => inner.into(),
            other => Skip::Because(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for Skip {
    fn from(e: sqlx::Error) -> Self {
        Skip::Database(e)
    }
}

async fn act(
    engine: &Engine,
    stores: &StoreSettings,
    conn: &mut PgConnection,
    op: &Operation,
    t: &Open,
) -> Result<Acted, Skip> {
    let who = Who::new(&op.created_by, Lane::Bulk, &op.owner);
    let store = urumi_store::subject::store_of(&t.subject);
    if let Some(store) = store {
        match urumi_store::db::get(&mut *conn, store).await? {
            None => return Err(Skip::Because(format!("store {store} no longer exists"))),
            Some(s) if s.status == urumi_store::status::StoreStatus::Deleted => {
                return Err(Skip::Because(format!("store {store} is deleted")));
            }
            Some(_) => {}
        }
    }
    match (op.action, store) {
        (Action::Retry, _) => {
            engine.retry_run_in(conn, t.run_id, &who).await?;
            Ok(Acted::Started(t.run_id))
        }
        (Action::Cancel, _) => {
            engine.cancel_run_in(conn, t.run_id, &op.created_by).await?;
            Ok(Acted::Done)
        }
        (Action::Rerun, _) => {
            let started = engine
                .rerun_in(conn, t.run_id, op.from_step.as_deref(), &who)
                .await?;
            Ok(Acted::Started(started.run_id))
        }
        (_, None) => Err(Skip::Because(format!("{} is not a store", t.subject))),
        (action, Some(store)) => act_on_store(engine, stores, conn, op, action, store, &who).await,
    }
}

/// A store action on `store` (the run actions were handled by [`act`]).
async fn act_on_store(
    engine: &Engine,
    stores: &StoreSettings,
    conn: &mut PgConnection,
    op: &Operation,
    action: Action,
    store: Uuid,
    who: &Who<'_>,
) -> Result<Acted, Skip> {
    use urumi_store::service as svc;
    let lifecycle = match action {
        Action::Repair => {
            return Ok(Acted::Started(
                svc::repair_in(conn, engine, store, who).await?.run_id,
            ));
        }
        Action::Delete => {
            return Ok(Acted::Started(
                svc::delete_in(conn, engine, store, who).await?.run_id,
            ));
        }
        Action::Backup => {
            let reason = urumi_store::backups::BackupReason::Manual;
            let b = svc::backup_in(conn, engine, store, reason, who).await?;
            return Ok(Acted::Started(b.requested.run_id));
        }
        Action::Upgrade => {
            let channel = op.channel.as_deref();
            return match urumi_store::upgrades::upgrade_in(
                conn, engine, stores, store, channel, who,
            )
            .await?
            {
                Upgrade::Started { requested, .. } => Ok(Acted::Started(requested.run_id)),
                Upgrade::Already(s) => Err(Skip::Because(format!(
                    "store {store} already runs channel {}'s release {}",
                    s.channel,
                    s.version.as_deref().unwrap_or("?")
                ))),
            };
        }
        Action::Suspend => svc::suspend_in(conn, engine, store, who).await?,
        Action::Resume => svc::resume_in(conn, engine, store, who).await?,
        Action::Resize => {
            let Some(plan) = op.plan.as_deref() else {
                return Err(Skip::Because("the operation names no plan".into()));
            };
            match svc::resize_in(conn, engine, stores, store, plan, who).await? {
                Lifecycle::Unchanged(_) => {
                    return Err(Skip::Because(format!(
                        "store {store} is already on plan {plan}"
                    )));
                }
                started => started,
            }
        }
        Action::Retry | Action::Cancel | Action::Rerun => {
            return Err(Skip::Because(format!("{action} is not a store action")));
        }
    };
    match lifecycle {
        Lifecycle::Started(r) => Ok(Acted::Started(r.run_id)),
        Lifecycle::Unchanged(s) => Err(Skip::Because(format!(
            "store {store} is already {}",
            s.status
        ))),
    }
}
