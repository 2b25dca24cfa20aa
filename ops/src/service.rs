//! [`Ops`]: what the API asks of operations — preview (dry run), create, steer
//! (pause / resume / approve / cancel) and read. Each write is one transaction with its audit
//! entry, under the operator's name.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::PgConnection;
use urumi_engine::{AuditEntry, Engine, NewRun};
use urumi_store::settings::StoreSettings;
use uuid::Uuid;

use crate::db;
use crate::definition::{NAME, OperationInput, VERSION, subject};
use crate::error::Error;
use crate::model::{Action, Budget, Operation, OperationState as S, Spec, Target, TargetState};
use crate::select::{Preview, preview};

/// The most targets an operation may start at once.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// The most targets one operation may have.
pub const MAX_TARGETS: usize = 100_000;
/// Targets a dry run shows.
const PREVIEWED: usize = 20;

/// An operator's move on a running operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Start no more targets until resumed.
    Pause,
    /// Go on after a pause.
    Resume,
    /// Go on after a canary that waits for approval.
    Approve,
    /// Start no more targets, ever (started ones run to their end).
    Cancel,
}

impl Control {
    /// What it did, in the past tense (the operation's reason afterwards).
    fn verb(self) -> &'static str {
        match self {
            Control::Pause => "paused",
            Control::Resume => "resumed",
            Control::Approve => "approved",
            Control::Cancel => "cancelled",
        }
    }
    fn kind(self) -> &'static str {
        match self {
            Control::Pause => "operation.paused",
            Control::Resume => "operation.resumed",
            Control::Approve => "operation.approved",
            Control::Cancel => "operation.cancelled",
        }
    }
    /// The states it applies to, and the state it leads to.
    fn moves(self) -> (&'static [S], S) {
        match self {
            Control::Pause => (&[S::Running, S::AwaitingApproval], S::Paused),
            Control::Resume => (&[S::Paused], S::Running),
            Control::Approve => (&[S::AwaitingApproval], S::Running),
            Control::Cancel => (&[S::Running, S::Paused, S::AwaitingApproval], S::Cancelled),
        }
    }
}

/// Operations over an engine whose registry declares `operation@1` (and `store.preview@1`
/// for the cluster plans of dry runs).
#[derive(Debug, Clone)]
pub struct Ops {
    engine: Engine,
    /// The plans and channels a resize or upgrade may name.
    stores: Arc<StoreSettings>,
    plan_wait: Duration,
}

/// How long a dry run waits for its cluster plan unless told otherwise.
pub const DEFAULT_PLAN_WAIT: Duration = Duration::from_secs(10);

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Ops {
    /// Operations started through `engine`, resizes and upgrades checked against `stores`'
    /// plans and channels.
    #[must_use]
    pub fn new(engine: Engine, stores: Arc<StoreSettings>) -> Self {
        Self {
            engine,
            stores,
            plan_wait: DEFAULT_PLAN_WAIT,
        }
    }

    /// How long a dry run of a repair or delete waits for its cluster plan (then answers
    /// with the plan `pending`).
    #[must_use]
    pub fn plan_wait(mut self, wait: Duration) -> Self {
        self.plan_wait = wait;
        self
    }

    /// Refuses a spec that cannot be carried out, before anything is read or written.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn check(&self, spec: &Spec) -> Result<(), Error> {
        if spec.selector.is_empty() && !spec.selector.all {
            return Err(invalid(
                "/selector",
                "an empty selector matches every run: narrow it, or set all: true to mean it",
            ));
        }
        if spec.max_concurrency == 0 || spec.max_concurrency > MAX_CONCURRENCY {
            return Err(invalid(
                "/max_concurrency",
                format!("max_concurrency must be 1 to {MAX_CONCURRENCY}"),
            ));
        }
        for (field, b) in [
            ("/canary/size", spec.canary.map(|c| c.size)),
            ("/failure_budget", spec.failure_budget),
        ] {
            if let Some(Budget::Percent(p)) = b
                && p > 100
            {
                return Err(invalid(field, "a percentage must be 0 to 100"));
            }
        }
        if let Some(c) = spec.canary
            && matches!(c.size, Budget::Count(0) | Budget::Percent(0))
        {
            return Err(invalid("/canary/size", "a canary has at least one target"));
        }
        if let Some(def) = &spec.selector.definition
            && !self.engine.registry().iter().any(|d| d.name() == def)
        {
            return Err(invalid(
                "/selector/definition",
                format!("unknown workflow definition {def:?}"),
            ));
        }
        self.check_parameters(spec)?;
        match (&spec.from_step, spec.action) {
            (Some(_), a) if a != Action::Rerun => Err(invalid(
                "/from_step",
                "from_step applies to the rerun action only",
            )),
            (Some(step), _) => {
                let Some(def) = &spec.selector.definition else {
                    return Err(invalid(
                        "/selector/definition",
                        "a rerun from a step needs the selector's workflow (kind): step names belong to a workflow",
                    ));
                };
                let steps: Vec<String> = self
                    .engine
                    .registry()
                    .iter()
                    .filter(|d| d.name() == def)
                    .flat_map(|d| d.steps().iter().map(|s| s.name.clone()))
                    .collect();
                if steps.iter().any(|s| s == step) {
                    Ok(())
                } else {
                    Err(invalid(
                        "/from_step",
                        format!(
                            "{def} has no step {step:?}; its steps are {}",
                            steps.join(", ")
                        ),
                    ))
                }
            }
            (None, _) => Ok(()),
        }
    }

    /// A resize names a plan that exists, an upgrade a channel that exists (or none), and no
    /// other action names either.
    fn check_parameters(&self, spec: &Spec) -> Result<(), Error> {
        match (&spec.plan, spec.action) {
            (Some(_), a) if a != Action::Resize => {
                return Err(invalid("/plan", "plan applies to the resize action only"));
            }
            (None, Action::Resize) => {
                return Err(invalid("/plan", "a resize names the plan to move to"));
            }
            (Some(plan), _) => {
                self.stores
                    .plan(Some(plan))
                    .map_err(|e| invalid("/plan", e))?;
            }
            (None, _) => {}
        }
        match (&spec.channel, spec.action) {
            (Some(_), a) if a != Action::Upgrade => Err(invalid(
                "/channel",
                "channel applies to the upgrade action only",
            )),
            (Some(channel), _) => self
                .stores
                .channel(Some(channel))
                .map(|_| ())
                .map_err(|e| invalid("/channel", e)),
            (None, _) => Ok(()),
        }
    }

    /// The dry run: how many runs match and what would happen to the first ones — for a
    /// repair or delete with the cluster plan of each, computed by a worker for `actor`
    /// (see [`crate::plan`]).
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::TooManyTargets`], [`Error::Database`], [`Error::Engine`]
    /// when the preview run cannot be started.
    pub async fn preview(&self, spec: &Spec, actor: &str) -> Result<Preview, Error> {
        self.check(spec)?;
        let mut p = preview(&self.engine, spec, PREVIEWED).await?;
        crate::plan::attach(&self.engine, spec, &mut p, actor, self.plan_wait).await?;
        Ok(p)
    }

    /// The cluster plan of `planned` on one store (a single store's dry run; `new_plan`: a
    /// resize's; `domains`: the domain list a domain change would leave; `channel`: an
    /// upgrade's), waiting as long as an operation's dry run does.
    ///
    /// # Errors
    /// [`Error::Engine`] / [`Error::Database`] when the preview run cannot be started or read.
    pub async fn plan_store(
        &self,
        planned: urumi_store::preview::PlannedAction,
        store: Uuid,
        new_plan: Option<&str>,
        backup_id: Option<Uuid>,
        domains: Option<Vec<String>>,
        channel: Option<&str>,
        actor: &str,
    ) -> Result<(crate::ClusterPlan, Option<urumi_store::preview::StorePlan>), Error> {
        let (plan, plans) = crate::plan::compute(
            &self.engine,
            planned,
            vec![store],
            new_plan.map(str::to_owned),
            backup_id,
            domains,
            channel.map(str::to_owned),
            actor,
            self.plan_wait,
        )
        .await?;
        Ok((plan, plans.into_iter().find(|p| p.store_id == store)))
    }

    /// Creates the operation: its targets (frozen now), its parent run and its audit entry,
    /// in one transaction. `owner` is whose work its children are.
    ///
    /// # Errors
    /// As [`Ops::preview`]; [`Error::Invalid`] when nothing matches.
    pub async fn create(&self, spec: &Spec, actor: &str, owner: &str) -> Result<Operation, Error> {
        self.check(spec)?;
        let matched = spec
            .selector
            .matching(&self.engine, MAX_TARGETS as i64 + 1)
            .await?;
        if matched.len() > MAX_TARGETS {
            return Err(Error::TooManyTargets { max: MAX_TARGETS });
        }
        if matched.is_empty() {
            return Err(invalid("/selector", "the selector matches no run"));
        }
        let id = Uuid::now_v7();
        let mut tx = self.engine.pool().begin().await?;
        let parent = self
            .engine
            .start_run_in(
                &mut tx,
                NewRun::new(
                    NAME,
                    subject(id),
                    json!(OperationInput { operation_id: id }),
                )
                .version(VERSION)
                .actor(actor)
                .owner(owner),
            )
            .await?;
        let selector = serde_json::to_value(&spec.selector)
            .map_err(|e| invalid("/selector", e.to_string()))?;
        let n = matched.len();
        db::insert(
            &mut tx,
            &db::NewOperation {
                id,
                run_id: parent.run_id,
                action: spec.action,
                from_step: spec.from_step.as_deref(),
                plan: spec.plan.as_deref(),
                channel: spec.channel.as_deref(),
                selector: &selector,
                max_concurrency: spec.max_concurrency as i32,
                canary_size: spec.canary.map_or(0, |c| c.size.of(n).min(n)) as i32,
                canary_then: spec.canary.map(|c| c.then),
                max_failures: spec.failure_budget.map(|b| b.of(n) as i32),
                matched: n as i32,
                owner,
                actor,
            },
        )
        .await?;
        let runs: Vec<Uuid> = matched.iter().map(|m| m.id).collect();
        let subjects: Vec<String> = matched.iter().map(|m| m.subject.clone()).collect();
        db::insert_targets(&mut tx, id, &runs, &subjects).await?;
        audit(
            &mut tx,
            "operation.created",
            actor,
            id,
            parent.run_id,
            json!({ "action": spec.action, "matched": n, "selector": selector,
                    "max_concurrency": spec.max_concurrency, "from_step": spec.from_step,
                    "plan": spec.plan, "channel": spec.channel }),
        )
        .await?;
        let op = db::get(&mut tx, id, false)
            .await?
            .ok_or(Error::NotFound(id))?;
        tx.commit().await?;
        Ok(op)
    }

    /// Pauses, resumes, approves or cancels an operation (audited with `actor`).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidState`] when it does not apply now.
    pub async fn control(
        &self,
        id: Uuid,
        control: Control,
        actor: &str,
    ) -> Result<Operation, Error> {
        let mut tx = self.engine.pool().begin().await?;
        let op = db::get(&mut tx, id, true)
            .await?
            .ok_or(Error::NotFound(id))?;
        let (from, to) = control.moves();
        if !from.contains(&op.state) {
            return Err(Error::InvalidState {
                id,
                state: op.state.to_string(),
                reason: match control {
                    Control::Approve => {
                        "only an operation awaiting approval can be approved".into()
                    }
                    Control::Resume => "only a paused operation can be resumed".into(),
                    _ => "it has ended".into(),
                },
            });
        }
        let reason = format!("{} by {actor}", control.verb());
        db::move_state(&mut tx, id, from, to, Some(&reason)).await?;
        if control == Control::Approve {
            db::pass_canary(&mut tx, id).await?;
        }
        if control == Control::Cancel {
            db::skip_pending(&mut tx, id, &format!("operation cancelled by {actor}")).await?;
        }
        audit(
            &mut tx,
            control.kind(),
            actor,
            id,
            op.run_id,
            json!({ "from": op.state }),
        )
        .await?;
        let op = db::get(&mut tx, id, false)
            .await?
            .ok_or(Error::NotFound(id))?;
        tx.commit().await?;
        Ok(op)
    }

    /// One operation with its progress.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Database`].
    pub async fn get(&self, id: Uuid) -> Result<Operation, Error> {
        let mut conn = self.engine.pool().acquire().await?;
        db::get(&mut conn, id, false)
            .await?
            .ok_or(Error::NotFound(id))
    }

    /// Up to `limit` operations, newest first, older than operation `before`.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list(&self, before: Option<Uuid>, limit: i64) -> Result<Vec<Operation>, Error> {
        Ok(db::page(self.engine.pool(), before, limit).await?)
    }

    /// Up to `limit` of an operation's targets after position `after`, in order.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Database`].
    pub async fn targets(
        &self,
        id: Uuid,
        state: Option<TargetState>,
        after: Option<i32>,
        limit: i64,
    ) -> Result<Vec<Target>, Error> {
        self.get(id).await?;
        Ok(db::targets(self.engine.pool(), id, state, after, limit).await?)
    }
}

async fn audit(
    conn: &mut PgConnection,
    kind: &str,
    actor: &str,
    id: Uuid,
    run: Uuid,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    urumi_engine::audit_in(
        conn,
        AuditEntry {
            kind,
            actor,
            subject: Some(subject(id)),
            run_id: Some(run),
            detail,
        },
    )
    .await
}
