//! The schema of Urumi, as sqlx migrations, and the one [`MIGRATOR`] that applies them.
//!
//! Every binary runs [`MIGRATOR`] at start and every SQL test uses it through
//! `#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]`, so there is exactly one
//! definition of the schema: the files in `migrations/sql/`.

/// Applies `migrations/sql/*.sql` in order; safe to run from many processes at once
/// (sqlx takes an advisory lock).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sql");
