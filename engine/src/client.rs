//! [`Engine`]: the handle callers (the API, the CLI, tests) use to start and steer runs.
//!
//! # Guarantees
//! - Every mutation appends its event, with the caller's `actor`, in the same transaction.
//! - Starting a run checks the definition, version, subject and input before writing; a
//!   refused request writes nothing.
//! - `*_in` variants join the caller's transaction, so a caller can write its own rows and
//!   the run in one commit.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::db::{control, read};
use crate::error::{Error, Result};
use crate::listing::{AuditEntry, EventFilter, RunFilter};
use crate::model::{Event, Lane, Run, RunDetail, RunHead, RunStatus};
use crate::registry::Registry;

pub use crate::db::control::{Started, Who};

/// A request to start a run.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Definition name.
    pub definition: String,
    /// Definition version; `None` means the highest registered.
    pub version: Option<i32>,
    /// What the run acts on; at most one active run per subject.
    pub subject: String,
    /// The run's input, checked against the definition's input type.
    pub input: Value,
    /// Who asked (recorded in the events).
    pub actor: String,
    /// The run's priority lane (interactive unless said otherwise).
    pub lane: Lane,
    /// Whose work it is (the bulk lane's round-robin key); the actor when empty.
    pub owner: String,
}

impl NewRun {
    /// A run of the latest version of `definition` for `subject`.
    pub fn new(definition: impl Into<String>, subject: impl Into<String>, input: Value) -> Self {
        Self {
            definition: definition.into(),
            version: None,
            subject: subject.into(),
            input,
            actor: "system".into(),
            lane: Lane::Interactive,
            owner: String::new(),
        }
    }
    /// Pins a version.
    #[must_use]
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }
    /// Sets who asked.
    #[must_use]
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }
    /// Puts the run in `lane`.
    #[must_use]
    pub fn lane(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }
    /// Sets whose work it is (the bulk lane's round-robin key).
    #[must_use]
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }
    fn who(&self) -> Who<'_> {
        Who::new(&self.actor, self.lane, &self.owner)
    }
}

/// Parses a run's input from JSON text.
///
/// # Errors
/// [`Error::InvalidInput`] with the parser's message and position.
pub fn parse_input(definition: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::InvalidInput {
        definition: definition.to_owned(),
        reason: e.to_string(),
    })
}

/// Starts and steers runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    pool: PgPool,
    registry: Registry,
}

impl Engine {
    /// An engine over `pool` that knows the definitions in `registry`.
    #[must_use]
    pub fn new(pool: PgPool, registry: Registry) -> Self {
        Self { pool, registry }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The definitions.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn check(&self, new: &NewRun) -> Result<std::sync::Arc<crate::Definition>> {
        let def = self.registry.get(&new.definition, new.version)?;
        if new.subject.trim().is_empty() || new.subject.len() > 512 {
            return Err(Error::InvalidInput {
                definition: def.key(),
                reason: "subject must be 1 to 512 characters".into(),
            });
        }
        def.check_input(&new.input)?;
        Ok(def)
    }

    /// Starts a run in its own transaction.
    ///
    /// # Errors
    /// [`Error::UnknownDefinition`], [`Error::InvalidInput`], [`Error::Conflict`] (with the
    /// active run's id), [`Error::Database`].
    pub async fn start_run(&self, new: NewRun) -> Result<Started> {
        let mut tx = self.pool.begin().await?;
        let started = self.start_run_in(&mut tx, new).await?;
        tx.commit().await?;
        Ok(started)
    }

    /// Starts a run inside the caller's transaction (nothing is visible until it commits).
    ///
    /// If the subject has an active run of a definition this one supersedes, that run is
    /// cancelled (now if no worker holds it, else at its next step boundary) and the new run
    /// starts once it has stopped.
    ///
    /// # Errors
    /// As [`Engine::start_run`].
    pub async fn start_run_in(&self, conn: &mut PgConnection, new: NewRun) -> Result<Started> {
        let def = self.check(&new)?;
        control::start_run(conn, &def, &new.subject, &new.input, &new.who(), None).await
    }

    /// Cancels a run: at once if it is queued or waiting, else at its next step boundary.
    /// Returns the run's status after the request.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidState`] for a run that has ended.
    pub async fn cancel_run(&self, run_id: Uuid, actor: &str) -> Result<RunStatus> {
        let mut tx = self.pool.begin().await?;
        let status = control::cancel_run(&mut tx, run_id, actor).await?;
        tx.commit().await?;
        Ok(status)
    }

    /// Resumes a failed run at its failed step; succeeded steps are not run again. Returns
    /// the name of the step it resumes at.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::InvalidState`] unless failed, [`Error::Conflict`] if the
    /// subject has another active run.
    pub async fn retry_run(&self, run_id: Uuid, actor: &str) -> Result<String> {
        let mut tx = self.pool.begin().await?;
        let step = self
            .retry_run_in(&mut tx, run_id, &Who::interactive(actor))
            .await?;
        tx.commit().await?;
        Ok(step)
    }

    /// [`Engine::retry_run`] inside the caller's transaction, the run moved to `who`'s lane
    /// and owner (a bulk operation retries its targets in the bulk lane).
    ///
    /// # Errors
    /// As [`Engine::retry_run`].
    pub async fn retry_run_in(
        &self,
        conn: &mut PgConnection,
        run_id: Uuid,
        who: &Who<'_>,
    ) -> Result<String> {
        control::retry_run(conn, run_id, who).await
    }

    /// [`Engine::cancel_run`] inside the caller's transaction.
    ///
    /// # Errors
    /// As [`Engine::cancel_run`].
    pub async fn cancel_run_in(
        &self,
        conn: &mut PgConnection,
        run_id: Uuid,
        actor: &str,
    ) -> Result<RunStatus> {
        control::cancel_run(conn, run_id, actor).await
    }

    /// Starts a new run from scratch with the same definition version, subject and input.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::UnknownDefinition`] if this process no longer has that
    /// version, [`Error::Conflict`] if the subject has an active run.
    pub async fn rerun(&self, run_id: Uuid, actor: &str) -> Result<Started> {
        let mut tx = self.pool.begin().await?;
        let started = self
            .rerun_in(&mut tx, run_id, None, &Who::interactive(actor))
            .await?;
        tx.commit().await?;
        Ok(started)
    }

    /// Starts a new run of `run_id`'s definition version, subject and input, inside the
    /// caller's transaction. With `from_step`, the steps before it carry over `run_id`'s
    /// checkpoints (they must have succeeded there) and are not run again; the new run starts
    /// at `from_step` (Temporal's reset). Without, it starts from scratch.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Superseded`] unless `run_id` is its subject's newest run;
    /// [`Error::UnknownStep`] for a step the definition does not have;
    /// [`Error::NotCarried`] when a step before `from_step` did not succeed in `run_id`;
    /// [`Error::UnknownDefinition`] if this process no longer has that version;
    /// [`Error::Conflict`] if the subject has an active run.
    pub async fn rerun_in(
        &self,
        conn: &mut PgConnection,
        run_id: Uuid,
        from_step: Option<&str>,
        who: &Who<'_>,
    ) -> Result<Started> {
        let (definition, version, subject, input) = control::run_origin(conn, run_id).await?;
        let def = self.registry.get(&definition, Some(version))?;
        let carried = match from_step {
            None => 0,
            Some(name) => def
                .steps()
                .iter()
                .position(|s| s.name == name)
                .ok_or_else(|| Error::UnknownStep {
                    definition: def.key(),
                    step: name.to_owned(),
                    steps: def.steps().iter().map(|s| s.name.clone()).collect(),
                })?,
        };
        let started = control::start_run(conn, &def, &subject, &input, who, Some(run_id)).await?;
        if carried > 0 {
            control::carry_over(conn, run_id, started.run_id, carried as i32).await?;
        }
        Ok(started)
    }

    /// Up to `limit` runs matching `selector`, each its subject's newest, oldest first: the
    /// targets of a bulk operation.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn select_runs(
        &self,
        selector: &crate::RunSelector,
        limit: i64,
    ) -> Result<Vec<crate::Matched>> {
        Ok(crate::select::select(&self.pool, selector, limit).await?)
    }

    /// The statuses of `runs` (those that still exist), with each run's error.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn run_statuses(
        &self,
        runs: &[Uuid],
    ) -> Result<HashMap<Uuid, (RunStatus, Option<String>)>> {
        Ok(read::statuses(&self.pool, runs).await?)
    }

    /// A run with its steps.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn run(&self, run_id: Uuid) -> Result<RunDetail> {
        let run = read::run(&self.pool, run_id)
            .await?
            .ok_or(Error::NotFound(run_id))?;
        let steps = read::steps(&self.pool, run_id).await?;
        Ok(RunDetail { run, steps })
    }

    /// Prunes everything past `retention` now, batch after batch (workers do this on their
    /// own every `retention.interval` when their options carry a [`crate::Retention`]).
    ///
    /// # Errors
    /// [`Error::Database`]; what was deleted before the error stays deleted.
    pub async fn prune(&self, retention: &crate::Retention) -> Result<crate::PruneReport> {
        Ok(crate::retention::prune(&self.pool, retention).await?)
    }

    /// Up to `limit` runs matching `filter`, newest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_runs(&self, filter: &RunFilter, limit: i64) -> Result<Vec<Run>> {
        Ok(read::runs_page(&self.pool, filter, limit).await?)
    }

    /// The newest run of each of `subjects`, by subject; a subject without runs is absent.
    /// What a page of subjects (a page of stores) shows beside each one.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn newest_runs(&self, subjects: &[String]) -> Result<HashMap<String, RunHead>> {
        Ok(read::newest_runs(&self.pool, subjects).await?)
    }

    /// Up to `limit` audit-log entries matching `filter`, newest first.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn list_events(&self, filter: &EventFilter, limit: i64) -> Result<Vec<Event>> {
        Ok(read::events_page(&self.pool, filter, limit).await?)
    }

    /// A run's events in order.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn events_for_run(&self, run_id: Uuid) -> Result<Vec<Event>> {
        Ok(read::events_for_run(&self.pool, run_id).await?)
    }

    /// Per definition, version and step: the figures of the steps of runs (of `definition`,
    /// or of every definition) that finished since `since` ([`crate::insights`]).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn step_insights(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        definition: Option<&str>,
    ) -> Result<Vec<crate::StepInsight>> {
        Ok(crate::insights::steps(&self.pool, since, definition).await?)
    }

    /// Rolls the ended hours not rolled yet into the step insights' hourly rollups
    /// ([`crate::rollup`]); the workers' pruner loop does this on its own.
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn roll_insights(&self) -> Result<crate::Rolled> {
        Ok(crate::rollup::roll(&self.pool).await?)
    }

    /// Runs that ended since `since`, per hour and definition ([`crate::insights`]).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn run_hours(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::RunHour>> {
        Ok(crate::insights::run_hours(&self.pool, since).await?)
    }

    /// The runs of `definition` that finished since `since`: counts, duration percentiles
    /// and histogram ([`crate::insights`]).
    ///
    /// # Errors
    /// [`Error::Database`].
    pub async fn run_insights(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        definition: &str,
    ) -> Result<crate::RunInsight> {
        Ok(crate::insights::runs(&self.pool, since, definition).await?)
    }
}

/// Appends an operator action (an audit entry) to the event log inside the caller's
/// transaction, so the action and its record commit together.
///
/// # Errors
/// The database's.
pub async fn audit_in(conn: &mut PgConnection, entry: AuditEntry<'_>) -> sqlx::Result<()> {
    control::append_audit(conn, &entry).await
}

/// [`Engine::newest_runs`] inside the caller's transaction (so they are read from the same
/// snapshot as the caller's own rows).
///
/// # Errors
/// [`Error::Database`].
pub async fn newest_runs_in(
    conn: &mut PgConnection,
    subjects: &[String],
) -> Result<HashMap<String, RunHead>> {
    Ok(read::newest_runs(conn, subjects).await?)
}

/// One run, read inside the caller's transaction.
///
/// # Errors
/// [`Error::NotFound`], [`Error::Database`].
pub async fn run_in(conn: &mut PgConnection, run_id: Uuid) -> Result<Run> {
    read::run(conn, run_id)
        .await?
        .ok_or(Error::NotFound(run_id))
}
