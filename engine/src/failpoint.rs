//! Named failure points, so crash recovery is tested deterministically.
//!
//! A worker can be told to die at one point for one step, once:
//!
//! | point                     | where the worker dies                                                   |
//! |---------------------------|-------------------------------------------------------------------------|
//! | `before_step_start`       | it has claimed the run (a fresh run's first step is marked started by the claim) and not yet run the step's code |
//! | `mid_step`                | the step's code has run (its side effects happened) but its result is not yet checkpointed |
//! | `after_checkpoint_commit` | the step's checkpoint (and the next step's start) has committed, before anything else |
//!
//! The third is the engine's equivalent of "after the checkpoint commit, before the queue
//! ack": the run row is the queue entry, so the checkpoint commit *is* the ack, and the only
//! window left is between that commit and the worker's next move.
//!
//! In tests the action is [`FailAction::CrashWorker`] (the in-process worker stops dead: no
//! lease release, no further SQL). A worker process takes `URUMI_FAILPOINT=point:step` and
//! aborts the whole process there ([`FailAction::AbortProcess`]).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a worker can be told to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// About to start a claimed step.
    BeforeStepStart,
    /// After the step's code ran, before its result is recorded.
    MidStep,
    /// Right after a step's checkpoint committed.
    AfterCheckpointCommit,
}

impl FromStr for FailPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "before_step_start" => Ok(FailPoint::BeforeStepStart),
            "mid_step" => Ok(FailPoint::MidStep),
            "after_checkpoint_commit" => Ok(FailPoint::AfterCheckpointCommit),
            other => Err(format!(
                "unknown failure point {other:?} (before_step_start, mid_step, after_checkpoint_commit)"
            )),
        }
    }
}

/// What happens at a failure point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailAction {
    /// Stop the in-process worker dead, as if its process had died.
    CrashWorker,
    /// `std::process::abort()`.
    AbortProcess,
}

#[derive(Debug)]
struct Spec {
    point: FailPoint,
    step: String,
    action: FailAction,
    fired: AtomicBool,
}

/// At most one armed failure point; fires once. Empty by default.
#[derive(Debug, Clone, Default)]
pub struct FailPoints(Option<Arc<Spec>>);

impl FailPoints {
    /// Fail at `point` when the worker reaches it for `step`.
    pub fn at(point: FailPoint, step: impl Into<String>, action: FailAction) -> Self {
        Self(Some(Arc::new(Spec {
            point,
            step: step.into(),
            action,
            fired: AtomicBool::new(false),
        })))
    }

    /// Parses `point:step` (as in `URUMI_FAILPOINT`) with [`FailAction::AbortProcess`].
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse_for_process(spec: &str) -> Result<Self, String> {
        let (point, step) = spec
            .split_once(':')
            .ok_or_else(|| format!("failure point {spec:?} is not point:step"))?;
        Ok(Self::at(point.parse()?, step, FailAction::AbortProcess))
    }

    /// Returns the action if this is the armed point for `step` and it has not fired yet.
    pub(crate) fn hit(&self, point: FailPoint, step: &str) -> Option<FailAction> {
        let spec = self.0.as_ref()?;
        if spec.point == point && spec.step == step && !spec.fired.swap(true, Ordering::SeqCst) {
            Some(spec.action)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_point_fires_once_and_only_for_its_step() {
        let fp = FailPoints::at(FailPoint::MidStep, "b", FailAction::CrashWorker);
        assert_eq!(fp.hit(FailPoint::MidStep, "a"), None);
        assert_eq!(fp.hit(FailPoint::BeforeStepStart, "b"), None);
        assert_eq!(
            fp.hit(FailPoint::MidStep, "b"),
            Some(FailAction::CrashWorker)
        );
        assert_eq!(fp.hit(FailPoint::MidStep, "b"), None);
    }

    #[test]
    fn process_specs_parse_and_bad_ones_are_refused() {
        let fp = FailPoints::parse_for_process("after_checkpoint_commit:greet").unwrap();
        assert_eq!(
            fp.hit(FailPoint::AfterCheckpointCommit, "greet"),
            Some(FailAction::AbortProcess)
        );
        assert!(FailPoints::parse_for_process("mid_step").is_err());
        assert!(FailPoints::parse_for_process("sideways:greet").is_err());
    }
}
