//! The engine's tests against a real Postgres: one binary, one file per concern.
//! Each `#[sqlx::test]` gets a fresh database with the migrations applied.

mod apalis;
mod bad_input;
mod crash;
mod declared;
mod gauges;
mod helpers;
mod insights;
mod lanes;
mod poison;
mod reruns;
mod retention;
mod retries;
mod runs;
mod schedule;
mod subjects;
mod waiting;
