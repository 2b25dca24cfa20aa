//! Urumi's workflow definitions, built on `urumi-engine`.
//!
//! [`registry`] is the list the worker binary loads: the demo workflow and, given
//! [`StoreDeps`], the store workflows (`store.provision`, `store.delete`, `store.repair`) —
//! the declarations of `urumi_store::definitions` with their steps' code. The API, which
//! only starts runs, loads `urumi_store::registry` (the declarations) and never links this
//! crate.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_declared_store_step_gets_its_code_and_nothing_else_changes() {
        let deps = Arc::new(StoreDeps {
            settings: Default::default(),
            pool: sqlx::PgPool::connect_lazy("postgres://127.0.0.1:9/unused").unwrap(),
            client: None,
        });
        let registry = registry(Some(&deps)).unwrap();
        for declared in urumi_store::definitions::declared().unwrap() {
            let def = registry
                .get(declared.name(), Some(declared.version()))
                .unwrap();
            assert!(def.is_executable(), "{} has a step without code", def.key());
            let shape = |d: &urumi_engine::Definition| {
                d.steps()
                    .iter()
                    .map(|s| {
                        format!(
                            "{} {:?} {:?} {:?}",
                            s.name, s.retry, s.timeout, s.wait_deadline
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(shape(&def), shape(&declared), "{}", def.key());
        }
        assert!(registry.get("demo", Some(1)).unwrap().is_executable());
    }
}
