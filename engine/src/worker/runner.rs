//! Drives one claimed run: runs its unfinished steps in order. After each attempt it decides
//! what happens next and returns that as a value, a [`Transition`]; [`Runner::apply`] has it
//! written (`db::transition`, or the batcher for step successes) and records its metrics.
//!
//! ```text
//!  claim ─► [before_step_start] ─► start attempt ─► step code ─► [mid_step] ─► decide:
//!     ├─ Done, more steps      ─► Advance (batched: checkpoint + next start) ─► [after_checkpoint_commit] ─► next step
//!     ├─ Done, last step       ─► Advance (run succeeded)
//!     ├─ Done, worker stopping ─► Release (with the step's checkpoint)
//!     ├─ Wait                  ─► Wait (poll; slot freed)
//!     ├─ Err, retry allowed    ─► Wait (backoff or transient retry; slot freed)
//!     └─ Err fatal / attempts or transient budget spent / wait deadline ─► Fail
//! ```
//!
//! Consecutive steps of a claimed run run without a queue round trip; every transition is one
//! transaction that starts with the lease fence, so a worker whose lease was taken over
//! writes nothing more.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::layers::catch_panic::CatchPanicLayer;
use apalis_core::task::Task;
use futures::FutureExt;
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;
use tower::{Layer, Service};
use tracing::{Instrument, debug, info_span, warn};

use super::Shared;
use super::batcher::BatchError;
use crate::db::checkpoint::{self, Advanced, Checkpoint, Lease, LeaseLost, StartKind, Started};
use crate::db::claim::Claimed;
use crate::db::read;
use crate::db::transition::{self, ReleaseReason, Transition, WaitKind};
use crate::definition::{Step, StepContext, StepDef};
use crate::failpoint::{FailAction, FailPoint};
use crate::metrics::{AttemptEnd, RunEnd, StepLabels};
use crate::model::StepStatus;
use crate::outcome::{RetryClass, StepError, StepOutcome};
use crate::retry::TRANSIENT_BACKOFF;
use crate::text;

/// Why the runner stopped early.
enum Stop {
    LeaseLost,
    Db(sqlx::Error),
    Crashed,
    Bug(String),
}

impl From<BatchError> for Stop {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Db(e) => Stop::Db(e),
            BatchError::Gone => Stop::Crashed,
        }
    }
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

/// The lease a runner writes under.
pub(super) fn lease_of(shared: &Shared, claimed: &Claimed) -> Lease {
    Lease {
        run_id: claimed.run_id,
        token: claimed.token,
        worker: shared.id.clone(),
        subject: claimed.subject.clone(),
        duration: shared.options.lease,
    }
}

/// Takes a run out of the heartbeat's set when its runner ends, however it ends (returns,
/// panics, or is dropped with the worker): a lease nobody drives must expire, not be renewed.
struct Held<'a> {
    shared: &'a Shared,
    run_id: uuid::Uuid,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.shared.held.lock() {
            held.remove(&self.run_id);
        }
    }
}

/// Runs `claimed` until it finishes, waits, fails or is released; then frees its slot. The
/// run's span is opened by the worker's apalis `TraceLayer` ([`super::build`]).
pub(super) async fn drive(shared: Arc<Shared>, claimed: Claimed, permit: OwnedSemaphorePermit) {
    let lease = lease_of(&shared, &claimed);
    let _held = Held {
        shared: &shared,
        run_id: claimed.run_id,
    };
    let definition = claimed.definition.clone();
    let result = Runner {
        shared: &shared,
        lease: &lease,
        def: (&definition, claimed.version),
    }
    .drive(claimed)
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
            let reason = ReleaseReason::DatabaseError(e.to_string());
            release_best_effort(&shared, &lease, &reason).await;
        }
        Err(Stop::Bug(e)) => {
            warn!(run_id = %lease.run_id, error = %e, "cannot run; releasing the run");
            release_best_effort(&shared, &lease, &ReleaseReason::CannotRun(e)).await;
        }
    }
    drop(permit);
}

pub(super) async fn release_best_effort(shared: &Shared, lease: &Lease, reason: &ReleaseReason) {
    let release = Transition::Release {
        done: None,
        reason: reason.clone(),
    };
    if let Err(e) = transition::apply(&shared.pool, lease, &release).await {
        warn!(run_id = %lease.run_id, error = %e, "could not release; the lease will expire and the sweeper will requeue it");
    }
}

struct Runner<'a> {
    shared: &'a Shared,
    lease: &'a Lease,
    /// The run's definition name and version (metrics labels).
    def: (&'a str, i32),
}

impl Runner<'_> {
    fn labels(&self, step: &str) -> StepLabels {
        StepLabels::new(self.def.0, self.def.1, step)
    }

    fn run_ended(&self, end: RunEnd) {
        self.shared.metrics.run_ended(self.def.0, self.def.1, end);
    }

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
            return self.write(&Transition::Cancel, Duration::ZERO).await;
        }
        let Some(mut idx) = rows
            .iter()
            .position(|s| !matches!(s.status, StepStatus::Succeeded | StepStatus::Skipped))
        else {
            let output = rows
                .last()
                .and_then(|s| s.output.clone())
                .unwrap_or(Value::Null);
            return self
                .write(&Transition::Complete { output }, Duration::ZERO)
                .await;
        };

        let first = &rows[idx];
        let sdef = step_def(&def, &first.name)?;
        self.failpoint(FailPoint::BeforeStepStart, &first.name)?;
        let kind = match (first.status, first.wait_kind.as_deref()) {
            (StepStatus::Running, _) => StartKind::AfterInterruption,
            (StepStatus::Waiting, Some("poll")) => StartKind::Poll,
            (StepStatus::Waiting, Some("transient")) => StartKind::Transient,
            _ => StartKind::Attempt,
        };
        let mut is_poll = kind == StartKind::Poll;
        let mut started = if claimed.fresh {
            Started {
                attempt: 1,
                ..Started::default()
            }
        } else {
            let mut conn = shared.pool.acquire().await?;
            checkpoint::start(&mut conn, self.lease, &first.name, kind).await??
        };
        if let Some(ms) = started.wait_ended_ms {
            let waited = Duration::from_secs_f64(ms.max(0.0) / 1000.0);
            shared
                .metrics
                .step_waited(&self.labels(&first.name), waited);
        }
        // A poison step: its attempts were spent by workers that died running it. Without
        // this check it would be claimed, kill its worker and be taken over forever.
        if kind == StartKind::AfterInterruption && !sdef.retry.allows_another(started.attempt - 1) {
            let msg = format!(
                "the worker died {} times while running it (gave up after {} attempts)",
                started.interrupted,
                started.attempt - 1
            );
            let fail = Transition::Fail {
                step: first.name.clone(),
                error: msg,
            };
            return self.write(&fail, Duration::ZERO).await;
        }
        if let Some(waited) = started.waited_ms
            && waited >= sdef.wait_deadline.as_secs_f64() * 1000.0
        {
            let msg = format!(
                "still not ready after waiting {:.1}s (the step's wait deadline is {:.1}s)",
                waited / 1000.0,
                sdef.wait_deadline.as_secs_f64()
            );
            let fail = Transition::Fail {
                step: first.name.clone(),
                error: msg,
            };
            return self.write(&fail, Duration::ZERO).await;
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
            shared.metrics.step_started(&self.labels(&name));
            let t0 = Instant::now();
            // One span per attempt; the checkpoint that records its outcome is a child of it.
            let step_span = info_span!(
                "step",
                run_id = %claimed.run_id,
                definition = %claimed.definition,
                version = claimed.version,
                subject = %claimed.subject,
                step = %name,
                attempt = started.attempt,
            );
            let result = run_step(sdef, ctx).instrument(step_span.clone()).await;
            let took = t0.elapsed();
            self.failpoint(FailPoint::MidStep, &name)?;

            let checkpoint_span = info_span!(
                parent: &step_span,
                "checkpoint",
                run_id = %claimed.run_id,
                step = %name,
                attempt = started.attempt,
            );
            let last = idx + 1 == rows.len();
            let t = match result {
                Ok(StepOutcome::Done(output)) if !last && shared.stopping() => {
                    Transition::Release {
                        done: Some((name.clone(), output)),
                        reason: ReleaseReason::Shutdown,
                    }
                }
                Ok(StepOutcome::Done(output)) => {
                    outputs.insert(name.clone(), output.clone());
                    Transition::Advance(Checkpoint {
                        lease: self.lease.clone(),
                        done: name.clone(),
                        output,
                        next: rows.get(idx + 1).map(|s| s.name.clone()),
                    })
                }
                Ok(StepOutcome::Wait { after, reason }) => {
                    let waited =
                        Duration::from_secs_f64(started.waited_ms.unwrap_or(0.0).max(0.0) / 1000.0)
                            + took;
                    // Never sleep past the deadline: poll one last time when it is reached.
                    let after = after.min(sdef.wait_deadline.saturating_sub(waited));
                    Transition::Wait {
                        step: name.clone(),
                        kind: WaitKind::Poll { reason },
                        after,
                    }
                }
                Err(err) => {
                    let budget = shared.options.transient_budget;
                    match decide_retry(sdef, started, &err, took, budget) {
                        Retry::No(error) => Transition::Fail { step: name, error },
                        Retry::Backoff(after) => Transition::Wait {
                            step: name,
                            kind: WaitKind::Backoff {
                                error: err.message,
                                attempt: started.attempt,
                            },
                            after,
                        },
                        Retry::Transient(after) => Transition::Wait {
                            step: name,
                            kind: WaitKind::Transient {
                                error: err.message,
                                attempt: started.attempt,
                                retries: started.transient_retries + 1,
                            },
                            after,
                        },
                    }
                }
            };
            match self.apply(t, took).instrument(checkpoint_span).await? {
                Next::Step(next) => {
                    started = next;
                    is_poll = false;
                    idx += 1;
                }
                Next::Ended => return Ok(()),
            }
        }
    }

    /// Has `t` written and records what it means; says whether the run goes on here.
    async fn apply(&self, t: Transition, took: Duration) -> Result<Next, Stop> {
        let Transition::Advance(cp) = t else {
            self.write(&t, took).await?;
            return Ok(Next::Ended);
        };
        let shared = self.shared;
        let advanced = match shared.batcher.checkpoint(cp.clone()).await {
            Ok(advanced) => advanced?,
            // The database refused this step's output itself (not the connection): the same
            // output would be refused on every retry, so the run fails instead.
            Err(BatchError::Db(e)) if is_data_error(&e) => {
                let fail = Transition::Fail {
                    step: cp.done.clone(),
                    error: text::for_postgres(&format!(
                        "the step's output could not be stored: {e}"
                    )),
                };
                self.write(&fail, took).await?;
                return Ok(Next::Ended);
            }
            Err(e) => return Err(e.into()),
        };
        shared
            .metrics
            .step_ended(&self.labels(&cp.done), AttemptEnd::Succeeded, took);
        self.failpoint(FailPoint::AfterCheckpointCommit, &cp.done)?;
        Ok(match advanced {
            Advanced::Started(next) => Next::Step(next),
            Advanced::Finished => {
                self.run_ended(RunEnd::Succeeded);
                Next::Ended
            }
            Advanced::CancelRequested => {
                self.write(&Transition::Cancel, Duration::ZERO).await?;
                Next::Ended
            }
        })
    }

    /// Writes a transition that ends this worker's hold on the run, then records it.
    async fn write(&self, t: &Transition, took: Duration) -> Result<(), Stop> {
        let shared = self.shared;
        transition::apply(&shared.pool, self.lease, t).await??;
        match t {
            Transition::Advance(_) => {}
            Transition::Wait { step, kind, after } => {
                match kind {
                    WaitKind::Poll { reason } => {
                        debug!(%step, ?after, %reason, "waiting");
                        shared
                            .metrics
                            .step_ended(&self.labels(step), AttemptEnd::Waiting, took);
                    }
                    // Expected weather on a busy cluster; the step's events record each one.
                    WaitKind::Transient { error, attempt, .. } => {
                        debug!(%step, attempt, ?after, %error, "transient error; retrying after backoff");
                        shared
                            .metrics
                            .step_ended(&self.labels(step), AttemptEnd::Retrying, took);
                    }
                    WaitKind::Backoff { error, attempt } => {
                        warn!(%step, attempt, ?after, %error, "step failed; retrying after backoff");
                        shared
                            .metrics
                            .step_ended(&self.labels(step), AttemptEnd::Retrying, took);
                    }
                }
                shared.wake.notify_one();
            }
            Transition::Fail { step, error } => {
                warn!(%step, %error, "step failed; run failed");
                shared
                    .metrics
                    .step_ended(&self.labels(step), AttemptEnd::Failed, took);
                self.run_ended(RunEnd::Failed);
            }
            Transition::Cancel => self.run_ended(RunEnd::Cancelled),
            Transition::Complete { .. } => self.run_ended(RunEnd::Succeeded),
            Transition::Release { done, .. } => {
                if let Some((step, _)) = done {
                    shared
                        .metrics
                        .step_ended(&self.labels(step), AttemptEnd::Succeeded, took);
                    self.failpoint(FailPoint::AfterCheckpointCommit, step)?;
                }
            }
        }
        Ok(())
    }
}

/// Where a run goes after a transition was applied.
enum Next {
    /// The next step was started here (a batched checkpoint): run it.
    Step(Started),
    /// This worker is done with the run (it ended, waits, or was released).
    Ended,
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

/// One attempt with the step's timeout; a panic or a timeout is a retryable failure. What it
/// returns is made storable (no NUL, errors of bounded size) before anything is written.
async fn run_step(sdef: &StepDef, ctx: StepContext) -> Result<StepOutcome, StepError> {
    match run_step_raw(sdef, ctx).await {
        Ok(StepOutcome::Done(v)) => Ok(StepOutcome::Done(text::json_for_postgres(v))),
        Ok(StepOutcome::Wait { after, reason }) => Ok(StepOutcome::Wait {
            after,
            reason: text::for_postgres(&reason),
        }),
        Err(e) => Err(StepError {
            class: e.class,
            message: text::for_postgres(&e.message),
        }),
    }
}

async fn run_step_raw(sdef: &StepDef, ctx: StepContext) -> Result<StepOutcome, StepError> {
    // `Worker::register` refuses definitions with a step that has no code; this answers a
    // bug with a failed run rather than a panic.
    let Some(code) = sdef.step.as_ref() else {
        return Err(StepError::fatal(format!(
            "step {:?} has no code in this worker",
            sdef.name
        )));
    };
    // apalis's catch-panic layer around the step call: a step that panics — in its future or
    // in synchronous code before returning one — is a failed attempt with the panic's message.
    let mut call = CatchPanicLayer::with_panic_handler(step_panicked).layer(StepCall(code));
    let attempt = call.call(Task::new(ctx));
    match tokio::time::timeout(sdef.timeout, attempt).await {
        Err(_) => Err(StepError::retryable(format!(
            "step timed out after {:.1}s",
            sdef.timeout.as_secs_f64()
        ))),
        Ok(Ok(result)) => result,
        Ok(Err(caught)) => Err(match caught.downcast::<StepError>() {
            Ok(e) => *e,
            Err(other) => StepError::retryable(other.to_string()),
        }),
    }
}

fn step_panicked(panic: &Box<dyn std::any::Any + Send>) -> StepError {
    StepError::retryable(format!(
        "step panicked: {}",
        super::panic_message(panic.as_ref())
    ))
}

/// One step attempt as a tower service, so apalis layers can wrap it.
struct StepCall<'a>(&'a Arc<dyn Step>);

impl Service<Task<StepContext>> for StepCall<'_> {
    type Response = Result<StepOutcome, StepError>;
    type Error = std::convert::Infallible;
    type Future = futures::future::Map<
        crate::definition::StepFuture,
        fn(Result<StepOutcome, StepError>) -> Result<Self::Response, Self::Error>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<StepContext>) -> Self::Future {
        self.0.run(task.args).map(Ok as fn(_) -> _)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq)]
enum Retry {
    /// Fail the run with this message.
    No(String),
    /// A real failure with attempts left: the next attempt after this delay.
    Backoff(Duration),
    /// A transient error within the budget: the same attempt again after this delay.
    Transient(Duration),
}

/// The retry rule, as a value: real failures spend attempts, transient ones spend time.
fn decide_retry(
    sdef: &StepDef,
    started: Started,
    err: &StepError,
    took: Duration,
    budget_override: Option<Duration>,
) -> Retry {
    let attempt = started.attempt;
    match err.class {
        RetryClass::Fatal => Retry::No(err.message.clone()),
        RetryClass::Retryable if sdef.retry.allows_another(attempt) => {
            Retry::Backoff(sdef.retry.backoff(attempt, &mut rand::rng()))
        }
        RetryClass::Retryable => Retry::No(format!(
            "{} (gave up after {attempt} attempts)",
            err.message
        )),
        RetryClass::Transient | RetryClass::RetryAfter(_) => {
            let budget = budget_override.unwrap_or(sdef.transient_budget);
            let retries = started.transient_retries + 1;
            let delay = match err.class {
                RetryClass::RetryAfter(d) => d,
                _ => TRANSIENT_BACKOFF.backoff(retries, &mut rand::rng()),
            };
            let spent =
                Duration::from_secs_f64(started.transient_ms.unwrap_or(0.0).max(0.0) / 1000.0)
                    + took;
            if spent + delay <= budget {
                Retry::Transient(delay)
            } else {
                Retry::No(format!(
                    "{} (gave up after {} transient errors over {:.0}s; the step's transient budget is {:.0}s)",
                    err.message,
                    retries,
                    spent.as_secs_f64(),
                    budget.as_secs_f64()
                ))
            }
        }
    }
}

/// A database error about the data written (SQLSTATE class 22 "data exception" or 54
/// "program limit exceeded"), which writing the same data again cannot fix.
fn is_data_error(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("22") || c.starts_with("54"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{StepDef, StepOptions};
    use crate::retry::RetryPolicy;

    fn sdef(max_attempts: u32, budget: Duration) -> StepDef {
        StepDef::for_tests(
            StepOptions::default()
                .retry(RetryPolicy::default().with_max_attempts(max_attempts))
                .transient_budget(budget),
        )
    }

    #[test]
    fn transient_errors_spend_time_not_attempts() {
        let def = sdef(2, Duration::from_secs(60));
        let at = |attempt, transient_ms, retries| Started {
            attempt,
            transient_ms,
            transient_retries: retries,
            ..Started::default()
        };
        // On the last attempt, a transient error is still retried.
        let e = StepError::transient("503");
        assert!(matches!(
            decide_retry(&def, at(2, None, 0), &e, Duration::ZERO, None),
            Retry::Transient(_)
        ));
        // …until the budget is spent.
        let r = decide_retry(&def, at(2, Some(60_000.0), 40), &e, Duration::ZERO, None);
        assert!(
            matches!(&r, Retry::No(m) if m.contains("41 transient errors")),
            "{r:?}"
        );
        // A 429 waits what the server said.
        let e = StepError::retry_after(Duration::from_secs(3), "429");
        assert_eq!(
            decide_retry(&def, at(1, None, 0), &e, Duration::ZERO, None),
            Retry::Transient(Duration::from_secs(3))
        );
        // The worker's setting overrides the step's budget.
        let r = decide_retry(
            &def,
            at(1, Some(2_000.0), 3),
            &StepError::transient("x"),
            Duration::ZERO,
            Some(Duration::from_secs(1)),
        );
        assert!(matches!(r, Retry::No(_)), "{r:?}");
        // Real failures spend attempts.
        let e = StepError::retryable("job failed");
        assert!(matches!(
            decide_retry(&def, at(1, None, 0), &e, Duration::ZERO, None),
            Retry::Backoff(_)
        ));
        let r = decide_retry(&def, at(2, None, 0), &e, Duration::ZERO, None);
        assert_eq!(r, Retry::No("job failed (gave up after 2 attempts)".into()));
        assert_eq!(
            decide_retry(
                &def,
                at(1, None, 0),
                &StepError::fatal("no"),
                Duration::ZERO,
                None
            ),
            Retry::No("no".into())
        );
    }
}
