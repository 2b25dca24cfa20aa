//! The JSON shapes of resource usage: a store's quota (`GET /api/v1/stores/{id}/usage`) and
//! the fleet's totals (`fleet_insights.usage`), as a worker's `store.usage` run last observed
//! them (see `urumi_store::usage`).

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use uuid::Uuid;

use super::rfc3339;

/// One quota resource of a store.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct ResourceUsage {
    /// The quota's resource (`requests.cpu`, `limits.memory`, `requests.storage`, `pods`, …).
    pub name: String,
    /// As the quota says it (`250m`, `1Gi`).
    pub used: String,
    pub hard: String,
    /// `used / hard` (0 to 1, above 1 when over), when both parse and `hard` is above zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
}

impl From<&urumi_store::usage::ResourceUsage> for ResourceUsage {
    fn from(r: &urumi_store::usage::ResourceUsage) -> Self {
        Self {
            name: r.name.clone(),
            used: r.used.clone(),
            hard: r.hard.clone(),
            fraction: match (r.used_value, r.hard_value) {
                (Some(u), Some(h)) if h > 0.0 => Some(u / h),
                _ => None,
            },
        }
    }
}

/// A store's resource usage against its quota.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreUsage {
    pub store_id: Uuid,
    /// When a worker last read the store's quota; absent (and `resources` empty) until the
    /// first observation (the worker's `[usage] cron`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339::opt"
    )]
    pub observed_at: Option<DateTime<Utc>>,
    /// The quota's resources, in its order.
    pub resources: Vec<ResourceUsage>,
}

impl StoreUsage {
    /// From the last observation, if any.
    #[must_use]
    pub fn new(store_id: Uuid, u: Option<&urumi_store::usage::StoreUsage>) -> Self {
        Self {
            store_id,
            observed_at: u.map(|u| u.observed_at),
            resources: u
                .map(|u| u.resources.iter().map(ResourceUsage::from).collect())
                .unwrap_or_default(),
        }
    }
}

/// The fleet's total of one quota resource over its live stores' last observations.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct FleetResource {
    pub name: String,
    /// In base units: cores for CPU, bytes for memory and storage, a count otherwise.
    pub used: f64,
    pub hard: f64,
    /// Stores counted.
    pub stores: i64,
}

impl From<&urumi_store::usage::FleetResource> for FleetResource {
    fn from(r: &urumi_store::usage::FleetResource) -> Self {
        Self {
            name: r.name.clone(),
            used: r.used,
            hard: r.hard,
            stores: r.stores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::tests::{at, same};

    #[test]
    fn usage_serialises_as_its_schema_says() {
        for full in [true, false] {
            let r = urumi_store::usage::ResourceUsage::new(
                "requests.cpu",
                "500m",
                if full { "2" } else { "x" },
            );
            same(&StoreUsage {
                store_id: Uuid::now_v7(),
                observed_at: full.then(|| at(1)),
                resources: vec![ResourceUsage::from(&r)],
            });
        }
        same(&FleetResource {
            name: "pods".into(),
            used: 3.0,
            hard: 10.0,
            stores: 2,
        });
    }
}
