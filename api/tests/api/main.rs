//! The API's tests, in one binary: each test gets a fresh database (`#[sqlx::test]`) and a
//! real server on port 0 (`spawn_app`), and talks HTTP to it.

mod helpers;
mod own_postgres;

mod auth;
mod backups;
mod bad_input;
mod bulk_lifecycle;
mod dashboard;
mod database_tls;
mod domains;
mod events;
mod guardrails;
mod health;
mod idempotency;
mod insights;
mod lifecycle;
mod operations;
mod pagination;
mod plans;
mod runs;
mod spec;
mod stores;
mod stream_limits;
mod upgrades;
mod usage;
