//! What a step returns: an outcome as a value, or an error that carries its retry class.
//!
//! ```text
//!   step attempt ──► Ok(Done(output))          checkpoint, go on to the next step
//!               ├──► Ok(Wait { after, .. })    not ready yet: poll again after `after`
//!               │                              (holds no worker, costs no attempt)
//!               ├──► Err(Retryable)            a real failure: back off per the step's
//!               │                              policy, try again while attempts are left
//!               ├──► Err(Transient)            the cluster/network hiccuped (5xx, timeout,
//!               │                              connection lost): back off and try again,
//!               │                              costing no attempt, within the step's
//!               │                              transient budget (time)
//!               ├──► Err(RetryAfter(d))        transient, with the server's hint (HTTP 429)
//!               └──► Err(Fatal)                fail the run now
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// The value a step attempt ends with when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The step is done; `output` is checkpointed and visible to later steps.
    Done(Value),
    /// Not done yet and not an error: run the step again after `after`. The run goes to
    /// `waiting`, no worker slot is held and no attempt is consumed; the step's wait deadline
    /// bounds the total time spent waiting.
    Wait {
        /// How long to wait before polling again.
        after: Duration,
        /// What is being waited for, shown in the run's steps.
        reason: String,
    },
}

impl StepOutcome {
    /// Done with a serializable output.
    ///
    /// # Errors
    /// A fatal [`StepError`] if `output` cannot be serialized to JSON.
    pub fn done(output: impl Serialize) -> Result<Self, StepError> {
        serde_json::to_value(output)
            .map(StepOutcome::Done)
            .map_err(|e| StepError::fatal(format!("step output is not JSON: {e}")))
    }

    /// Done with no output (`null`).
    #[must_use]
    pub fn done_empty() -> Self {
        StepOutcome::Done(Value::Null)
    }

    /// Poll again after `after`.
    #[must_use]
    pub fn wait(after: Duration, reason: impl Into<String>) -> Self {
        StepOutcome::Wait {
            after,
            reason: reason.into(),
        }
    }
}

/// How the engine treats a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// A real failure: try again after the step's backoff, until its attempts are exhausted.
    Retryable,
    /// Something between the step and what it talks to failed (5xx, timeout, connection
    /// lost): try again with backoff without consuming an attempt, until the step's
    /// transient budget (a time) is spent.
    Transient,
    /// Transient, with a known delay (e.g. a 429's `Retry-After`).
    RetryAfter(Duration),
    /// Do not try again: fail the run with this error.
    Fatal,
}

/// A failed step attempt: a message for people and a retry class for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct StepError {
    /// How the engine should react.
    pub class: RetryClass,
    /// What went wrong; recorded as the step's `last_error`. Never put secrets here.
    pub message: String,
}

impl StepError {
    /// A failure worth retrying (network blip, 5xx, conflict).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::Retryable,
            message: message.into(),
        }
    }
    /// A transient failure (5xx, timeout, connection lost): retried without spending an
    /// attempt, within the step's transient budget.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::Transient,
            message: message.into(),
        }
    }
    /// A failure that retrying cannot fix (invalid input, forbidden).
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::Fatal,
            message: message.into(),
        }
    }
    /// A transient failure to retry after a known delay (e.g. a 429's `Retry-After`).
    pub fn retry_after(after: Duration, message: impl Into<String>) -> Self {
        Self {
            class: RetryClass::RetryAfter(after),
            message: message.into(),
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {}

/// Helpers so call sites in steps read `thing().await.retryable()?` or `.fatal()?`.
pub trait ResultExt<T> {
    /// Any error becomes a retryable [`StepError`].
    ///
    /// # Errors
    /// The original error, classed retryable.
    fn retryable(self) -> Result<T, StepError>;
    /// Any error becomes a transient [`StepError`] (costs no attempt).
    ///
    /// # Errors
    /// The original error, classed transient.
    fn transient(self) -> Result<T, StepError>;
    /// Any error becomes a fatal [`StepError`].
    ///
    /// # Errors
    /// The original error, classed fatal.
    fn fatal(self) -> Result<T, StepError>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn retryable(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::retryable(e.to_string()))
    }
    fn transient(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::transient(e.to_string()))
    }
    fn fatal(self) -> Result<T, StepError> {
        self.map_err(|e| StepError::fatal(e.to_string()))
    }
}
