//! What the crash tests of the lifecycle workflows share (`lifecycle_crashes.rs`,
//! `backup_crashes.rs`, `upgrade_crashes.rs`): the failure points, the leases, where a killed run
//! must stand, the attempts it must show after recovery, and waiting for every run to end.

use std::time::Duration;

use sqlx::PgPool;
use urumi_engine::{Engine, RunDetail, RunStatus, StepStatus};
use uuid::Uuid;

use super::wait_until;

/// The failure points exercised, with the short form used in store names.
pub const POINTS: [(&str, &str); 2] = [("after_checkpoint_commit", "cp"), ("mid_step", "mid")];

/// A doomed worker's lease: longer than the whole crash phase.
pub const DOOMED_LEASE_MS: u64 = 600_000;

/// The clean workers' lease: production-like, so a heartbeat delayed by a loaded machine
/// does not hand their own live runs back to the queue (which would rerun a step).
pub const CLEAN_LEASE_MS: u64 = 15_000;

/// The attempts every step of `steps` must show after recovery from `crash` (`(point, step
/// index)`): 1, except the step the crash interrupted (`mid_step`: it ran again) or the step
/// the dead process had already marked started after its checkpoint
/// (`after_checkpoint_commit`: started again).
pub fn expected_attempts(steps: &[&str], crash: Option<(&str, usize)>) -> Vec<(String, i32)> {
    let again = match crash {
        Some(("mid_step", i)) => Some(i),
        Some((_, i)) if i + 1 < steps.len() => Some(i + 1),
        _ => None,
    };
    steps
        .iter()
        .enumerate()
        .map(|(j, s)| ((*s).to_owned(), if Some(j) == again { 2 } else { 1 }))
        .collect()
}

/// Checks that the dead process left the run `d` exactly at its failure point `(point, i)`.
pub fn assert_crashed_where_armed(
    label: &str,
    steps: &[&str],
    (point, i): (&str, usize),
    d: &RunDetail,
) {
    let got: Vec<(String, StepStatus, i32)> = d
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.status(), s.attempts))
        .collect();
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, steps, "{label}: the run's steps");
    let done = if point == "mid_step" { i } else { i + 1 };
    for (j, (name, status, attempts)) in got.iter().enumerate() {
        let want = if j < done {
            (StepStatus::Succeeded, 1)
        } else if j == done && done < steps.len() {
            (StepStatus::Running, 1)
        } else {
            (StepStatus::Pending, 0)
        };
        assert_eq!(
            (*status, *attempts),
            want,
            "{label}: step {name} after the crash; all: {got:?}"
        );
    }
    let run_status = if done == steps.len() {
        RunStatus::Succeeded
    } else {
        RunStatus::Running
    };
    assert_eq!(d.run.status(), run_status, "{label}");
}

/// Waits until no run is queued, running or waiting.
pub async fn all_runs_ended(pool: &PgPool, what: &str, within: Duration) {
    wait_until(what, within, async || {
        let active: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM urumi.runs WHERE status IN ('queued', 'running', 'waiting')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        active == 0
    })
    .await;
}

/// Asserts that `run` succeeded.
pub async fn assert_succeeded(engine: &Engine, run: Uuid, what: &str) {
    let d = engine.run(run).await.unwrap();
    assert_eq!(
        d.run.status(),
        RunStatus::Succeeded,
        "{what}: {:?}",
        d.run.error
    );
}
