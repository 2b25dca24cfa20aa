//! Drives one claimed run: runs its unfinished steps in order, checkpointing each.
//!
//! ```text
//!  claim ─► [before_step_start] ─► tx{fence, start attempt} ─► step code ─► [mid_step]
//!     ┌──────────────────────────────────────────────────────────────────────┘
//!     ├─ Done   ─► tx{fence, checkpoint, start next | finish run | cancel | release} ─► [after_checkpoint_commit] ─► next step
//!     ├─ Wait   ─► tx{fence, step+run waiting, lease released}                       (slot freed)
//!     ├─ Err retryable, attempts left ─► tx{fence, backoff persisted, lease released} (slot freed)
//!     └─ Err fatal / exhausted / wait deadline ─► tx{fence, step+run failed}
//! ```
//!
//! Consecutive steps of a claimed run run without a queue round trip; every transition is one
//! transaction. Every transaction starts with the lease fence, so a worker whose lease was
//! taken over writes nothing more.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, info_span, warn};

use super::Shared;
use crate::db::checkpoint::{self, Advanced, Checkpoint, Lease, LeaseLost, Started, WaitKind};
use crate::db::claim::Claimed;
use crate::db::read;
use crate::definition::{StepContext, StepDef};
use crate::failpoint::{FailAction, FailPoint};
use crate::metrics::AttemptEnd;
use crate::model::{RunStatus, StepStatus};
use crate::outcome::{RetryClass, StepError, StepOutcome};

/// Why the runner stopped early.
enum Stop {
    LeaseLost,
    Db(sqlx::Error),
    Batch(String),
    Crashed,
    Bug(String),
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Stop::Db(e)
    }
}

impl From<LeaseLost> for Stop {
    fn from(_: LeaseLost) -> Self {
        Stop::LeaseLost
    }
}

/// Runs `claimed` until it finishes, waits, fails or is released; then frees its slot.
pub(super) async fn drive(shared: Arc<Shared>, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let span = info_span!("run", run_id = %claimed.run_id, workflow = %claimed.definition, subject = %claimed.subject);
    let lease = Lease {
        run_id: claimed.run_id,
        token: claimed.token,
        worker: shared.id.clone(),
        subject: claimed.subject.clone(),
        duration: shared.options.lease,
    };
    let result = Runner {
        shared: &shared,
        lease: &lease,
    }
    .drive(claimed)
    .instrument(span)
    .await;
    match result {
        Ok(()) => {}
        Err(Stop::Crashed) => {
            // The worker is being torn down as if its process died: write nothing, hold on.
            std::future::pending::<()>().await;
        }
        Err(Stop::LeaseLost) => {
            warn!(run_id = %lease.run_id, "lease taken over by another worker; stopped");
        }
        Err(Stop::Db(e)) => {
            warn!(run_id = %lease.run_id, error = %e, "database error; releasing the run");
            release_best_effort(&shared, &lease).await;
        }
        Err(Stop::Batch(e)) => {
            warn!(run_id = %lease.run_id, error = %e, "checkpoint batch failed; releasing the run");
            release_best_effort(&shared, &lease).await;
        }
        Err(Stop::Bug(e)) => {
            warn!(run_id = %lease.run_id, error = %e, "cannot run; releasing the run");
            release_best_effort(&shared, &lease).await;
        }
    }
    shared.held.lock().expect("held lock").remove(&lease.run_id);
    drop(permit);
}

async fn release_best_effort(shared: &Shared, lease: &Lease) {
    let attempt = async {
        let mut tx = shared.pool.begin().await?;
        if checkpoint::fence(&mut tx, lease).await?.is_ok() {
            checkpoint::release_run(&mut tx, lease).await?;
        }
        tx.commit().await
    };
    if let Err(e) = attempt.await {
        warn!(run_id = %lease.run_id, error = %e, "could not release; the lease will expire and the sweeper will requeue it");
    }
}

struct Runner<'a> {
    shared: &'a Shared,
    lease: &'a Lease,
}

impl Runner<'_> {
    fn failpoint(&self, point: FailPoint, step: &str) -> Result<(), Stop> {
        match self.shared.options.failpoints.hit(point, step) {
            None => Ok(()),
            Some(FailAction::AbortProcess) => {
                eprintln!("urumi: failure point {point:?} for step {step:?} reached; aborting");
                std::process::abort();
            }
            Some(FailAction::CrashWorker) => {
                self.shared.crash();
                Err(Stop::Crashed)
            }
        }
    }

    async fn drive(&self, claimed: Claimed) -> Result<(), Stop> {
        let shared = self.shared;
        let def = shared
            .registry
            .get(&claimed.definition, Some(claimed.version))
            .map_err(|e| Stop::Bug(e.to_string()))?;
        // A run claimed for the first time has only pending steps: no need to read them.
        let rows: Vec<StepState> = if claimed.fresh {
            def.steps()
                .iter()
                .map(|s| StepState::pending(&s.name))
                .collect()
        } else {
            read::steps(&shared.pool, claimed.run_id)
                .await?
                .into_iter()
                .map(StepState::from)
                .collect()
        };
        let mut outputs: BTreeMap<String, Value> = rows
            .iter()
            .filter(|s| s.status == StepStatus::Succeeded)
            .map(|s| (s.name.clone(), s.output.clone().unwrap_or(Value::Null)))
            .collect();
        let input = Arc::new(claimed.input);

        if claimed.cancel_requested {
            let mut tx = shared.pool.begin().await?;
            checkpoint::fence(&mut tx, self.lease).await??;
            checkpoint::cancel_run(&mut tx, self.lease).await?;
            tx.commit().await?;
            shared.metrics.run_ended(RunStatus::Cancelled);
            return Ok(());
        }
        let Some(mut idx) = rows
            .iter()
            .position(|s| !matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
        else {
            let last = rows
                .last()
                .and_then(|s| s.output.clone())
                .unwrap_or(Value::Null);
            let mut tx = shared.pool.begin().await?;
            checkpoint::fence(&mut tx, self.lease).await??;
            checkpoint::complete_run(&mut tx, self.lease, &last).await?;
            tx.commit().await?;
            shared.metrics.run_ended(RunStatus::Succeeded);
            return Ok(());
        };

        let first = &rows[idx];
        let sdef = step_def(&def, &first.name)?;
        self.failpoint(FailPoint::BeforeStepStart, &first.name)?;
        let mut is_poll =
            first.status == StepStatus::Waiting && first.wait_kind.as_deref() == Some("poll");
        let mut started = if claimed.fresh {
            Started {
                attempt: 1,
                polls: 0,
                waited_ms: None,
            }
        } else {
            let mut conn = shared.pool.acquire().await?;
            checkpoint::start(&mut conn, self.lease, &first.name, is_poll).await??
        };
        if let Some(waited) = started.waited_ms
            && waited >= sdef.wait_deadline.as_secs_f64() * 1000.0
        {
            let msg = format!(
                "still not ready after waiting {:.1}s (the step's wait deadline is {:.1}s)",
                waited / 1000.0,
                sdef.wait_deadline.as_secs_f64()
            );
            let mut tx = shared.pool.begin().await?;
            checkpoint::fence(&mut tx, self.lease).await??;
            checkpoint::fail_run(&mut tx, self.lease, &first.name, &msg).await?;
            tx.commit().await?;
            shared
                .metrics
                .step_ended(AttemptEnd::Failed, Duration::ZERO);
            shared.metrics.run_ended(RunStatus::Failed);
            return Ok(());
        }

        loop {
            let name = rows[idx].name.clone();
            let sdef = step_def(&def, &name)?;
            let ctx = StepContext {
                run_id: claimed.run_id,
                subject: claimed.subject.clone(),
                step: name.clone(),
                attempt: started.attempt,
                polls: started.polls,
                poll: is_poll,
                input: input.clone(),
                outputs: Arc::new(outputs.clone()),
            };
            shared.metrics.step_started();
            let t0 = Instant::now();
            let result = run_step(sdef, ctx)
                .instrument(info_span!("step", step = %name, attempt = started.attempt))
                .await;
            let took = t0.elapsed();
            self.failpoint(FailPoint::MidStep, &name)?;

            let output = match result {
                Ok(StepOutcome::Done(output)) => output,
                Ok(StepOutcome::Wait { after, reason }) => {
                    let waited =
                        Duration::from_secs_f64(started.waited_ms.unwrap_or(0.0).max(0.0) / 1000.0)
                            + took;
                    // Never sleep past the deadline: poll one last time when it is reached.
                    let after = after.min(sdef.wait_deadline.saturating_sub(waited));
                    let mut tx = shared.pool.begin().await?;
                    checkpoint::fence(&mut tx, self.lease).await??;
                    let kind = WaitKind::Poll { reason: &reason };
                    checkpoint::schedule_wait(&mut tx, self.lease, &name, &kind, after).await?;
                    tx.commit().await?;
                    debug!(step = %name, ?after, %reason, "waiting");
                    shared.metrics.step_ended(AttemptEnd::Waiting, took);
                    shared.wake.notify_one();
                    return Ok(());
                }
                Err(err) => return self.failed(&name, sdef, started.attempt, &err, took).await,
            };
            shared.metrics.step_ended(AttemptEnd::Succeeded, took);

            let last = idx + 1 == rows.len();
            if !last && shared.stopping() {
                let mut tx = shared.pool.begin().await?;
                checkpoint::fence(&mut tx, self.lease).await??;
                checkpoint::complete_step(&mut tx, self.lease, &name, &output).await?;
                checkpoint::release_run(&mut tx, self.lease).await?;
                tx.commit().await?;
                self.failpoint(FailPoint::AfterCheckpointCommit, &name)?;
                return Ok(());
            }
            let cp = Checkpoint {
                lease: self.lease.clone(),
                done: name.clone(),
                output: output.clone(),
                next: rows.get(idx + 1).map(|s| s.name.clone()),
            };
            let advanced = shared.batcher.checkpoint(cp).await.map_err(Stop::Batch)??;
            self.failpoint(FailPoint::AfterCheckpointCommit, &name)?;
            match advanced {
                Advanced::Finished => {
                    shared.metrics.run_ended(RunStatus::Succeeded);
                    return Ok(());
                }
                Advanced::CancelRequested => {
                    let mut tx = shared.pool.begin().await?;
                    checkpoint::fence(&mut tx, self.lease).await??;
                    checkpoint::cancel_run(&mut tx, self.lease).await?;
                    tx.commit().await?;
                    shared.metrics.run_ended(RunStatus::Cancelled);
                    return Ok(());
                }
                Advanced::Started(next) => {
                    outputs.insert(name, output);
                    started = next;
                    is_poll = false;
                }
            }
            idx += 1;
        }
    }

    /// A failed attempt: back off and retry if the class and the budget allow, else fail.
    async fn failed(
        &self,
        name: &str,
        sdef: &StepDef,
        attempt: u32,
        err: &StepError,
        took: Duration,
    ) -> Result<(), Stop> {
        let shared = self.shared;
        let retry_in = match err.class {
            RetryClass::Fatal => None,
            _ if !sdef.retry.allows_another(attempt) => None,
            RetryClass::RetryAfter(d) => Some(d),
            RetryClass::Retryable => Some(sdef.retry.backoff(attempt, &mut rand::rng())),
        };
        let mut tx = shared.pool.begin().await?;
        checkpoint::fence(&mut tx, self.lease).await??;
        if let Some(delay) = retry_in {
            let kind = WaitKind::Backoff {
                error: &err.message,
                attempt,
            };
            checkpoint::schedule_wait(&mut tx, self.lease, name, &kind, delay).await?;
            tx.commit().await?;
            warn!(step = %name, attempt, ?delay, error = %err, "step failed; retrying after backoff");
            shared.metrics.step_ended(AttemptEnd::Retrying, took);
            shared.wake.notify_one();
        } else {
            let msg = if err.class == RetryClass::Fatal {
                err.message.clone()
            } else {
                format!("{} (gave up after {attempt} attempts)", err.message)
            };
            checkpoint::fail_run(&mut tx, self.lease, name, &msg).await?;
            tx.commit().await?;
            warn!(step = %name, attempt, error = %msg, "step failed; run failed");
            shared.metrics.step_ended(AttemptEnd::Failed, took);
            shared.metrics.run_ended(RunStatus::Failed);
        }
        Ok(())
    }
}

/// What the runner needs to know of a step's checkpoint.
struct StepState {
    name: String,
    status: StepStatus,
    wait_kind: Option<String>,
    output: Option<Value>,
}

impl StepState {
    fn pending(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: StepStatus::Pending,
            wait_kind: None,
            output: None,
        }
    }
}

impl From<crate::model::StepRecord> for StepState {
    fn from(r: crate::model::StepRecord) -> Self {
        Self {
            status: r.status(),
            name: r.name,
            wait_kind: r.wait_kind,
            output: r.output,
        }
    }
}

fn step_def<'d>(def: &'d crate::Definition, name: &str) -> Result<&'d StepDef, Stop> {
    def.step(name)
        .ok_or_else(|| Stop::Bug(format!("definition {} has no step {name:?}", def.key())))
}

/// One attempt with the step's timeout; a panic or a timeout is a retryable failure.
async fn run_step(sdef: &StepDef, ctx: StepContext) -> Result<StepOutcome, StepError> {
    let fut = AssertUnwindSafe(sdef.step.run(ctx)).catch_unwind();
    match tokio::time::timeout(sdef.timeout, fut).await {
        Err(_) => Err(StepError::retryable(format!(
            "step timed out after {:.1}s",
            sdef.timeout.as_secs_f64()
        ))),
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(StepError::retryable(format!("step panicked: {msg}")))
        }
        Ok(Ok(result)) => result,
    }
}
