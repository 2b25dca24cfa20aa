//! `demo@1`: a three-step workflow for the local demo and the process tests.
//!
//! `greet` → `work` (sleeps `work_ms`, standing in for a slow cluster call) → `finish`
//! (combines the earlier outputs). Every step is idempotent: it only computes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use urumi_engine::{Definition, Result, StepContext, StepError, StepOutcome};

/// The demo's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoInput {
    /// Who to greet.
    pub name: String,
    /// How long the `work` step takes, in milliseconds.
    #[serde(default)]
    pub work_ms: u64,
}

/// The definition's name.
pub const NAME: &str = "demo";

async fn greet(ctx: StepContext) -> Result<StepOutcome, StepError> {
    let input: DemoInput = ctx.input_as()?;
    StepOutcome::done(json!({ "greeting": format!("hello, {}", input.name) }))
}

async fn work(ctx: StepContext) -> Result<StepOutcome, StepError> {
    let input: DemoInput = ctx.input_as()?;
    tokio::time::sleep(Duration::from_millis(input.work_ms)).await;
    StepOutcome::done(json!({ "worked_ms": input.work_ms, "attempt": ctx.attempt }))
}

async fn finish(ctx: StepContext) -> Result<StepOutcome, StepError> {
    let greet: serde_json::Value = ctx.output_of("greet")?;
    let work: serde_json::Value = ctx.output_of("work")?;
    StepOutcome::done(json!({ "greeting": greet["greeting"], "worked_ms": work["worked_ms"] }))
}

/// `demo@1`.
///
/// # Errors
/// Never in practice; the builder's checks.
pub fn definition() -> Result<Definition> {
    Definition::builder(NAME, 1)
        .input::<DemoInput>()
        .step("greet", greet)
        .step("work", work)
        .step("finish", finish)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_input_refuses_unknown_fields() {
        let def = definition().unwrap();
        assert!(def.check_input(&json!({ "name": "x" })).is_ok());
        let err = def
            .check_input(&json!({ "name": "x", "wrok_ms": 5 }))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `wrok_ms`"), "{err}");
    }
}
