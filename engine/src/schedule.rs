//! Scheduled runs: [`Schedule`]s (a cron expression and the run to start) that every worker
//! may carry. Each schedule is an apalis-cron worker (`CronScheduler`) whose ticks start
//! engine runs; a slot — the schedule's name and the tick's time — starts at most one run,
//! however many workers tick it (`urumi.schedule_slots`, primary key (schedule, slot_at)).
//!
//! ```text
//!  worker A ─ apalis-cron tick 02:00 ─┐   INSERT slot ON CONFLICT DO NOTHING
//!  worker B ─ apalis-cron tick 02:00 ─┴─► first: start_run_in(same tx) → slot.run_id
//!                                         later: nothing (the slot exists)
//! ```
//!
//! # Guarantees
//! - A slot starts at most one run: the slot row and the run commit together or not at all.
//! - A slot whose subject still has an active run starts none and says so (`skipped`), so an
//!   overrunning job is never doubled.
//! - Slots that passed while no worker was running are not made up afterwards.

use std::str::FromStr;
use std::sync::Arc;

use std::task::{Context, Poll};

use apalis_core::task::Task;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, TimeZone, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tower::Service;
use tracing::{info, warn};
use uuid::Uuid;

use crate::client::{Engine, NewRun};
use crate::error::{Error, Result};

/// Runs of one definition started on a cron schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    cron: cron::Schedule,
    definition: String,
    subject: String,
    input: Value,
}

impl Schedule {
    /// A schedule named `name` (unique among schedules; it keys the slots) that starts a run
    /// of `definition` for `subject` with `input` at each time `cron` gives. `cron` has six or
    /// seven fields, seconds first (`0 0 2 * * *`: 02:00:00 UTC every day).
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] for an empty or over-long name or an expression that does
    /// not parse.
    pub fn new(
        name: impl Into<String>,
        cron: &str,
        definition: impl Into<String>,
        subject: impl Into<String>,
        input: Value,
    ) -> Result<Self> {
        let name = name.into();
        if name.trim().is_empty() || name.len() > 128 {
            return Err(Error::InvalidSchedule {
                name,
                reason: "the name must be 1 to 128 characters".into(),
            });
        }
        let parsed = cron::Schedule::from_str(cron).map_err(|e| Error::InvalidSchedule {
            name: name.clone(),
            reason: format!("cron expression {cron:?}: {e}"),
        })?;
        Ok(Self {
            name,
            cron: parsed,
            definition: definition.into(),
            subject: subject.into(),
            input,
        })
    }

    /// The schedule's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actor recorded on the runs it starts.
    fn actor(&self) -> String {
        format!("schedule:{}", self.name)
    }
}

/// What one slot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotOutcome {
    /// This call started the slot's run.
    Started(Uuid),
    /// The subject still had an active run: no run was started (recorded on the slot).
    Skipped(String),
    /// Another worker had already taken the slot.
    AlreadyTaken,
}

impl Engine {
    /// Starts the run of `schedule`'s slot at `slot_at`, unless another caller already did.
    ///
    /// # Errors
    /// What [`Engine::start_run_in`] returns other than [`Error::Conflict`] (which skips the
    /// slot), and [`Error::Database`].
    pub async fn start_slot(
        &self,
        schedule: &Schedule,
        slot_at: DateTime<Utc>,
        worker: &str,
    ) -> Result<SlotOutcome> {
        let mut tx = self.pool().begin().await?;
        let taken = sqlx::query!(
            "INSERT INTO urumi.schedule_slots (schedule, slot_at, skipped, started_by)
             VALUES ($1, $2, 'starting', $3) ON CONFLICT DO NOTHING",
            schedule.name,
            slot_at,
            worker,
        )
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            return Ok(SlotOutcome::AlreadyTaken);
        }
        let new = NewRun::new(
            &schedule.definition,
            &schedule.subject,
            schedule.input.clone(),
        )
        .actor(schedule.actor())
        .lane(crate::model::Lane::Scheduled);
        let mut attempt = sqlx::Connection::begin(&mut *tx).await?;
        let outcome = match self.start_run_in(&mut attempt, new).await {
            Ok(started) => {
                attempt.commit().await?;
                SlotOutcome::Started(started.run_id)
            }
            Err(Error::Conflict { active_run, .. }) => {
                attempt.rollback().await?;
                SlotOutcome::Skipped(format!("the subject's run {active_run} was still active"))
            }
            Err(e) => return Err(e),
        };
        let (run_id, skipped) = match &outcome {
            SlotOutcome::Started(id) => (Some(*id), None),
            SlotOutcome::Skipped(why) => (None, Some(why.as_str())),
            SlotOutcome::AlreadyTaken => unreachable!("handled above"),
        };
        sqlx::query!(
            "UPDATE urumi.schedule_slots SET run_id = $3, skipped = $4
             WHERE schedule = $1 AND slot_at = $2",
            schedule.name,
            slot_at,
            run_id,
            skipped,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Ticks `schedule` with apalis-cron until the returned future is dropped, starting each
/// slot's run through `engine` (see [`Engine::start_slot`]).
pub(crate) async fn tick(engine: Engine, schedule: Schedule, worker: String) {
    let name = format!("{worker}/schedule/{}", schedule.name);
    let cron = CronScheduler::new(schedule.cron.clone());
    let service = SlotService {
        engine,
        schedule: Arc::new(schedule),
        worker,
    };
    let ticker = WorkerBuilder::new(name.as_str())
        .backend(cron)
        .build(service);
    if let Err(e) = ticker.run().await {
        warn!(schedule = %name, error = %e, "the schedule's ticker stopped");
    }
}

/// The service each tick calls: starts the tick's slot.
#[derive(Clone)]
struct SlotService {
    engine: Engine,
    schedule: Arc<Schedule>,
    worker: String,
}

impl Service<Task<Tick<Utc>>> for SlotService {
    type Response = ();
    type Error = Error;
    type Future = BoxFuture<'static, Result<(), Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, tick: Task<Tick<Utc>>) -> Self::Future {
        let this = self.clone();
        async move {
            let schedule = &this.schedule;
            let slot_at = i64::try_from(tick.args.get_timestamp())
                .ok()
                .and_then(|secs| Utc.timestamp_opt(secs, 0).single())
                .ok_or_else(|| Error::InvalidSchedule {
                    name: schedule.name.clone(),
                    reason: format!("tick {} is outside the calendar", tick.args.get_timestamp()),
                })?;
            match this.engine.start_slot(schedule, slot_at, &this.worker).await {
                Ok(SlotOutcome::Started(run)) => {
                    info!(schedule = %schedule.name, %slot_at, %run, "scheduled run started");
                }
                Ok(SlotOutcome::Skipped(why)) => {
                    warn!(schedule = %schedule.name, %slot_at, %why, "scheduled slot skipped");
                }
                Ok(SlotOutcome::AlreadyTaken) => {}
                Err(e) => {
                    warn!(schedule = %schedule.name, %slot_at, error = %e, "scheduled run not started");
                    return Err(e);
                }
            }
            Ok(())
        }
        .boxed()
    }
}
