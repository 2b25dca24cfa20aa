//! Urumi's workflow definitions, built on `urumi-engine`.
//!
//! [`registry`] is the one list every process (API, workers, CLI) loads, so they agree on
//! which definitions and versions exist: the demo workflow and, given [`StoreDeps`], the
//! store workflows (`store.provision`, `store.delete`, `store.repair`).

pub mod demo;
pub mod store;

use std::sync::Arc;

pub use store::steps::StoreDeps;
use urumi_engine::{Registry, Result};

/// Every definition this build knows: the demo, plus the store workflows when `stores` is
/// given (a process without a cluster passes `None` and leaves store runs to one that has).
///
/// # Errors
/// [`urumi_engine::Error::InvalidDefinition`] if a definition is malformed (a bug).
pub fn registry(stores: Option<&Arc<StoreDeps>>) -> Result<Registry> {
    registry_for(stores, store::engines::BUILT_IN)
}

/// [`registry`] with store workflows serving `engines` instead of the built-in ones (tests
/// that add an engine of their own).
///
/// # Errors
/// See [`registry`].
pub fn registry_for(
    stores: Option<&Arc<StoreDeps>>,
    engines: store::engines::Engines,
) -> Result<Registry> {
    let mut defs = vec![demo::definition()?];
    if let Some(deps) = stores {
        defs.extend(store::steps::definitions_for(deps, engines)?);
    }
    Registry::new(defs)
}
