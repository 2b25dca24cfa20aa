//! What every Urumi process (`urumi-api`, `urumi-worker`) shares, so it is written once:
//!
//! - [`settings`]: typed settings loaded once at start — built-in defaults, then a TOML file
//!   (`URUMI_CONFIG`, else `./urumi.toml` if present), then `URUMI__SECTION__KEY`
//!   environment variables (`DATABASE_URL` when `URUMI__DATABASE__URL` is unset); the
//!   sections every process has ([`DatabaseSettings`], [`LogSettings`]); [`Secret`].
//! - [`telemetry`]: the one `tracing` subscriber set-up, with OpenTelemetry traces when
//!   `[traces]` is enabled ([`TraceSettings`]).

pub mod settings;
pub mod telemetry;

pub use settings::{DatabaseSettings, LogFormat, LogSettings, Secret, TraceSettings, load};
