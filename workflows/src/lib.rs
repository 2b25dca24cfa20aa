//! Urumi's workflow definitions, built on `urumi-engine`.
//!
//! [`registry`] is the one list every process (API, workers, CLI) loads, so they agree on
//! which definitions and versions exist. Store workflows (provision, delete, repair) arrive
//! with the store issue; today it holds the demo workflow.

pub mod demo;
pub mod store;

use urumi_engine::{Registry, Result};

/// Every definition this build knows.
///
/// # Errors
/// [`urumi_engine::Error::InvalidDefinition`] if a definition is malformed (a bug).
pub fn registry() -> Result<Registry> {
    Registry::new([demo::definition()?])
}
