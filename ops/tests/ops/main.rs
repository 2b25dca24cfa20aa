//! `urumi-ops` against a real Postgres and real workers: selectors, the parent run's canary,
//! failure budget, skips, and steering across a killed worker. One binary, a file per concern.

mod helpers;
mod lifecycle;
mod select;
