//! Workflow definitions: a name, a version and an ordered list of named steps.
//!
//! Step names are stable identities — checkpoints are keyed by name, never by position — so
//! a run can be resumed, retried or inspected long after it started. A run pins the version it
//! started with; change a definition's steps by registering a new version.
//!
//! # Idempotency contract
//! The engine runs each step **at least once** per run: a worker can die after a step's side
//! effects and before its checkpoint commits, and the step then runs again. Every step must
//! therefore be idempotent (create-if-absent, server-side apply, keyed inserts). A step whose
//! checkpoint says `succeeded` is never run again for that run.
//!
//! # Declared and implemented steps
//! A step can be *declared* (name and options, no code: [`DefinitionBuilder::declare`]) and
//! given its code later ([`Definition::implement`]). A definition with declared steps is
//! enough to start, re-run and check runs ([`crate::Engine`]), so a process that only starts
//! runs (the API) need not link the steps' code; a [`crate::Worker`] refuses to start unless
//! every step of every definition it serves has its code ([`Definition::is_executable`]).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Error;
use crate::outcome::{StepError, StepOutcome};
use crate::retry::RetryPolicy;

/// The future a step attempt returns.
pub type StepFuture = Pin<Box<dyn Future<Output = Result<StepOutcome, StepError>> + Send>>;

/// One step's code. Implemented for any `Fn(StepContext) -> impl Future<Output = Result<StepOutcome, StepError>>`.
pub trait Step: Send + Sync + 'static {
    /// Runs one attempt of the step.
    fn run(&self, ctx: StepContext) -> StepFuture;
}

impl<F, Fut> Step for F
where
    F: Fn(StepContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<StepOutcome, StepError>> + Send + 'static,
{
    fn run(&self, ctx: StepContext) -> StepFuture {
        Box::pin(self(ctx))
    }
}

/// What a step attempt knows about its run.
#[derive(Debug, Clone)]
pub struct StepContext {
    /// The run.
    pub run_id: Uuid,
    /// What the run acts on (e.g. `store:<uuid>`).
    pub subject: String,
    /// The step's name.
    pub step: String,
    /// Which attempt this is (1-based; polls of a waiting step do not count).
    pub attempt: u32,
    /// How many times this step has been polled after returning [`StepOutcome::Wait`].
    pub polls: u32,
    /// True when this call polls a step that returned [`StepOutcome::Wait`] last time;
    /// false on the first call of an attempt.
    pub poll: bool,
    /// The run's input.
    pub input: Arc<Value>,
    /// Outputs of the run's succeeded steps, by step name.
    pub outputs: Arc<BTreeMap<String, Value>>,
}

impl StepContext {
    /// The run's input as `T`.
    ///
    /// # Errors
    /// A fatal [`StepError`]: input was validated at start, so a mismatch is a bug, not a blip.
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        T::deserialize(&*self.input).map_err(|e| StepError::fatal(format!("run input: {e}")))
    }

    /// The output of an earlier, succeeded step as `T`.
    ///
    /// # Errors
    /// A fatal [`StepError`] if the step has no output or it does not match `T`.
    pub fn output_of<T: DeserializeOwned>(&self, step: &str) -> Result<T, StepError> {
        let value = self
            .outputs
            .get(step)
            .ok_or_else(|| StepError::fatal(format!("no output recorded for step {step:?}")))?;
        T::deserialize(value).map_err(|e| StepError::fatal(format!("output of {step:?}: {e}")))
    }
}

/// One named step and how the engine treats it.
#[derive(Clone)]
pub struct StepDef {
    /// Stable identity of the step within its definition.
    pub name: String,
    /// How retryable failures are retried.
    pub retry: RetryPolicy,
    /// The longest one attempt may run; a timeout is a retryable failure.
    pub timeout: Duration,
    /// The longest the step may keep returning [`StepOutcome::Wait`], from its first wait.
    pub wait_deadline: Duration,
    /// The longest a streak of transient errors ([`crate::RetryClass::Transient`]) is
    /// retried (they cost no attempt); then the run fails.
    pub transient_budget: Duration,
    /// The step's code; `None` for a step only declared ([`DefinitionBuilder::declare`]).
    pub step: Option<Arc<dyn Step>>,
}

#[cfg(test)]
impl StepDef {
    /// A step named `test` with `options` that does nothing.
    pub(crate) fn for_tests(options: StepOptions) -> Self {
        Self {
            name: "test".into(),
            retry: options.retry,
            timeout: options.timeout,
            wait_deadline: options.wait_deadline,
            transient_budget: options.transient_budget,
            step: Some(Arc::new(|_ctx: StepContext| async {
                Ok(StepOutcome::done_empty())
            })),
        }
    }
}

impl std::fmt::Debug for StepDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepDef")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("wait_deadline", &self.wait_deadline)
            .field("transient_budget", &self.transient_budget)
            .field("implemented", &self.step.is_some())
            .finish_non_exhaustive()
    }
}

/// Options for one step; start from [`StepOptions::default`].
#[derive(Debug, Clone, Copy)]
pub struct StepOptions {
    /// See [`StepDef::retry`].
    pub retry: RetryPolicy,
    /// See [`StepDef::timeout`].
    pub timeout: Duration,
    /// See [`StepDef::wait_deadline`].
    pub wait_deadline: Duration,
    /// See [`StepDef::transient_budget`].
    pub transient_budget: Duration,
}

impl Default for StepOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(300),
            wait_deadline: Duration::from_secs(30 * 60),
            transient_budget: Duration::from_secs(10 * 60),
        }
    }
}

impl StepOptions {
    /// These options with another retry policy.
    #[must_use]
    pub fn retry(self, retry: RetryPolicy) -> Self {
        Self { retry, ..self }
    }
    /// These options with another attempt timeout.
    #[must_use]
    pub fn timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }
    /// These options with another transient-error budget.
    #[must_use]
    pub fn transient_budget(self, transient_budget: Duration) -> Self {
        Self {
            transient_budget,
            ..self
        }
    }
    /// These options with another wait deadline.
    #[must_use]
    pub fn wait_deadline(self, wait_deadline: Duration) -> Self {
        Self {
            wait_deadline,
            ..self
        }
    }
}

type InputCheck = Arc<dyn Fn(&Value) -> Result<(), String> + Send + Sync>;

/// A versioned, ordered list of named steps. Build one with [`Definition::builder`].
#[derive(Clone)]
pub struct Definition {
    name: String,
    version: i32,
    steps: Vec<StepDef>,
    supersedes: Vec<String>,
    input_check: Option<InputCheck>,
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definition")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("steps", &self.steps)
            .field("supersedes", &self.supersedes)
            .finish_non_exhaustive()
    }
}

impl Definition {
    /// Starts a definition called `name` at `version` (≥ 1).
    pub fn builder(name: impl Into<String>, version: i32) -> DefinitionBuilder {
        DefinitionBuilder {
            def: Definition {
                name: name.into(),
                version,
                steps: Vec::new(),
                supersedes: Vec::new(),
                input_check: None,
            },
            defaults: StepOptions::default(),
        }
    }
    /// The definition's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The definition's version.
    #[must_use]
    pub fn version(&self) -> i32 {
        self.version
    }
    /// `name@version`, the key runs are filed under.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
    /// The steps in order.
    #[must_use]
    pub fn steps(&self) -> &[StepDef] {
        &self.steps
    }
    /// A step by name.
    #[must_use]
    pub fn step(&self, name: &str) -> Option<&StepDef> {
        self.steps.iter().find(|s| s.name == name)
    }
    /// True when a run of this definition may supersede an active run of `other`.
    #[must_use]
    pub fn supersedes(&self, other: &str) -> bool {
        self.supersedes.iter().any(|s| s == other)
    }
    /// True when every step has its code: a worker can execute runs of this definition.
    #[must_use]
    pub fn is_executable(&self) -> bool {
        self.steps.iter().all(|s| s.step.is_some())
    }

    /// This definition with `code` as the code of its declared step `step`. Name, version,
    /// steps, their order and options stay as declared, so a process holding the declaration
    /// and one holding the implemented definition agree on what a run of it is.
    ///
    /// # Errors
    /// [`Error::InvalidDefinition`] if there is no step `step` or it has code already.
    pub fn implement(mut self, step: &str, code: impl Step) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidDefinition {
            name: self.key(),
            reason,
        };
        match self.steps.iter().position(|s| s.name == step) {
            None => Err(invalid(format!("no step {step:?} to implement"))),
            Some(i) if self.steps[i].step.is_some() => {
                Err(invalid(format!("step {step:?} is implemented already")))
            }
            Some(i) => {
                self.steps[i].step = Some(Arc::new(code));
                Ok(self)
            }
        }
    }

    /// Checks a run's input against the definition's declared input type.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming what is wrong.
    pub fn check_input(&self, input: &Value) -> Result<(), Error> {
        match &self.input_check {
            Some(check) => check(input).map_err(|reason| Error::InvalidInput {
                definition: self.key(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// Builds a [`Definition`]; see [`Definition::builder`].
pub struct DefinitionBuilder {
    def: Definition,
    defaults: StepOptions,
}

impl std::fmt::Debug for DefinitionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.def.fmt(f)
    }
}

impl DefinitionBuilder {
    /// Options every following step gets unless it says otherwise.
    #[must_use]
    pub fn step_defaults(mut self, defaults: StepOptions) -> Self {
        self.defaults = defaults;
        self
    }

    /// Runs must carry input that deserializes as `T` (checked when a run starts).
    #[must_use]
    pub fn input<T: DeserializeOwned + 'static>(mut self) -> Self {
        self.def.input_check = Some(Arc::new(|v: &Value| {
            T::deserialize(v).map(|_| ()).map_err(|e| e.to_string())
        }));
        self
    }

    /// Runs of this definition may supersede an active run of `definition` on the same
    /// subject: that run is cancelled at its next step boundary, then this one runs.
    #[must_use]
    pub fn supersedes(mut self, definition: impl Into<String>) -> Self {
        self.def.supersedes.push(definition.into());
        self
    }

    /// Appends a step with the current defaults.
    #[must_use]
    pub fn step(self, name: impl Into<String>, step: impl Step) -> Self {
        let options = self.defaults;
        self.step_with(name, options, step)
    }

    /// Appends a step with its own options.
    #[must_use]
    pub fn step_with(self, name: impl Into<String>, options: StepOptions, step: impl Step) -> Self {
        self.push(name.into(), options, Some(Arc::new(step)))
    }

    /// Appends a step without its code, with the current defaults; see
    /// [`Definition::implement`].
    #[must_use]
    pub fn declare(self, name: impl Into<String>) -> Self {
        let options = self.defaults;
        self.declare_with(name, options)
    }

    /// Appends a step without its code, with its own options.
    #[must_use]
    pub fn declare_with(self, name: impl Into<String>, options: StepOptions) -> Self {
        self.push(name.into(), options, None)
    }

    fn push(mut self, name: String, options: StepOptions, step: Option<Arc<dyn Step>>) -> Self {
        self.def.steps.push(StepDef {
            name,
            retry: options.retry,
            timeout: options.timeout,
            wait_deadline: options.wait_deadline,
            transient_budget: options.transient_budget,
            step,
        });
        self
    }

    /// Checks and returns the definition.
    ///
    /// # Errors
    /// [`Error::InvalidDefinition`]: empty name, version < 1, no steps, duplicate or empty
    /// step names, or a bad retry policy.
    pub fn build(self) -> Result<Definition, Error> {
        let def = self.def;
        let invalid = |reason: String| Error::InvalidDefinition {
            name: def.name.clone(),
            reason,
        };
        if def.name.trim().is_empty() || def.name.contains('@') {
            return Err(invalid(
                "name must be non-empty and must not contain '@'".into(),
            ));
        }
        if def.version < 1 {
            return Err(invalid(format!("version must be ≥ 1, got {}", def.version)));
        }
        if def.steps.is_empty() {
            return Err(invalid("a definition needs at least one step".into()));
        }
        let mut seen = HashSet::new();
        for s in &def.steps {
            if s.name.trim().is_empty() {
                return Err(invalid("step names must be non-empty".into()));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(invalid(format!("step {:?} appears twice", s.name)));
            }
            s.retry
                .validate()
                .map_err(|e| invalid(format!("step {:?}: {e}", s.name)))?;
            if s.timeout.is_zero() {
                return Err(invalid(format!("step {:?}: timeout must be > 0", s.name)));
            }
        }
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn noop(_: StepContext) -> Result<StepOutcome, StepError> {
        Ok(StepOutcome::done_empty())
    }

    #[test]
    fn a_definition_refuses_duplicate_step_names() {
        let err = Definition::builder("d", 1)
            .step("a", noop)
            .step("a", noop)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn a_definition_needs_steps_and_a_positive_version() {
        assert!(Definition::builder("d", 1).build().is_err());
        assert!(Definition::builder("d", 0).step("a", noop).build().is_err());
        assert!(
            Definition::builder("a@b", 1)
                .step("a", noop)
                .build()
                .is_err()
        );
    }

    #[test]
    fn typed_input_is_checked() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only deserialized to check the shape")]
        struct In {
            n: u32,
        }
        let def = Definition::builder("d", 1)
            .input::<In>()
            .step("a", noop)
            .build()
            .unwrap();
        assert!(def.check_input(&serde_json::json!({"n": 3})).is_ok());
        let err = def.check_input(&serde_json::json!({"n": "x"})).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    }

    #[test]
    fn a_declared_step_keeps_its_place_and_options_when_implemented() {
        let slow = StepOptions::default().timeout(Duration::from_secs(7));
        let declared = Definition::builder("d", 2)
            .step("a", noop)
            .declare_with("b", slow)
            .declare("c")
            .supersedes("other")
            .build()
            .unwrap();
        assert!(!declared.is_executable());
        let def = declared
            .clone()
            .implement("b", noop)
            .unwrap()
            .implement("c", noop)
            .unwrap();
        assert!(def.is_executable());
        let names = |d: &Definition| d.steps().iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&def), names(&declared));
        assert_eq!(def.step("b").unwrap().timeout, Duration::from_secs(7));
        assert_eq!(
            (def.key(), def.supersedes("other")),
            ("d@2".to_owned(), true)
        );
    }

    #[test]
    fn only_a_declared_step_can_be_implemented_and_only_once() {
        let def = Definition::builder("d", 1)
            .step("a", noop)
            .declare("b")
            .build()
            .unwrap();
        let err = def.clone().implement("a", noop).unwrap_err();
        assert!(err.to_string().contains("implemented already"), "{err}");
        let err = def.implement("nope", noop).unwrap_err();
        assert!(err.to_string().contains("no step \"nope\""), "{err}");
    }
}
