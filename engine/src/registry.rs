//! The set of workflow definitions a process knows, keyed by `(name, version)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::definition::Definition;
use crate::error::{Error, Result};

/// Definitions by name and version. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    defs: Arc<BTreeMap<(String, i32), Arc<Definition>>>,
}

impl Registry {
    /// A registry holding `defs`.
    ///
    /// # Errors
    /// [`Error::InvalidDefinition`] if two definitions share a name and version.
    pub fn new(defs: impl IntoIterator<Item = Definition>) -> Result<Self> {
        let mut map = BTreeMap::new();
        for def in defs {
            let key = (def.name().to_owned(), def.version());
            if map.insert(key, Arc::new(def.clone())).is_some() {
                return Err(Error::InvalidDefinition {
                    name: def.name().to_owned(),
                    reason: format!("version {} registered twice", def.version()),
                });
            }
        }
        Ok(Self {
            defs: Arc::new(map),
        })
    }

    /// The definition `name` at `version`, or at its highest registered version.
    ///
    /// # Errors
    /// [`Error::UnknownDefinition`].
    pub fn get(&self, name: &str, version: Option<i32>) -> Result<Arc<Definition>> {
        let found = match version {
            Some(v) => self.defs.get(&(name.to_owned(), v)).cloned(),
            None => self
                .defs
                .range((name.to_owned(), i32::MIN)..=(name.to_owned(), i32::MAX))
                .next_back()
                .map(|(_, d)| d.clone()),
        };
        found.ok_or_else(|| Error::UnknownDefinition {
            name: name.to_owned(),
            version,
        })
    }

    /// Every `name@version` key, as stored in `runs.def_key`.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.defs.values().map(|d| d.key()).collect()
    }

    /// All definitions.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Definition>> {
        self.defs.values()
    }
}
