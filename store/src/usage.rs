//! A store's resource usage against its quota: what its ResourceQuota's `status.used` and
//! `status.hard` say (the cluster's quota controller computes them from the pods' requests
//! and the volumes' sizes), observed fleet-wide by a worker's `store.usage@1` run — one
//! paginated LIST of the platform's quotas — and kept in `urumi.store_usage`, one row per
//! store, for the API's store view and fleet totals.
//!
//! ```text
//!  schedule (worker `[usage] cron`) ─► store.usage@1 ─ observe: LIST resourcequotas
//!      (label managed-by=urumi, pages of 500) ─► per page: upsert urumi.store_usage
//!  API: GET /stores/{id} ─► usage (bars)     GET /insights/fleet ─► totals per resource
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

/// The definition name.
pub const USAGE: &str = "store.usage";
/// The version this build declares.
pub const USAGE_VERSION: i32 = 1;
/// The one subject of usage runs (one observation at a time).
pub const USAGE_SUBJECT: &str = "fleet:usage";

/// One quota resource of one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// The quota's resource name (`requests.cpu`, `limits.memory`, `pods`, …).
    pub name: String,
    /// As the quota says it (`250m`, `1Gi`).
    pub used: String,
    pub hard: String,
    /// In base units (cores, bytes, counts); `None` when the quantity does not parse.
    pub used_value: Option<f64>,
    pub hard_value: Option<f64>,
}

impl ResourceUsage {
    /// A resource from the quota's `used` and `hard` quantities.
    #[must_use]
    pub fn new(name: &str, used: &str, hard: &str) -> Self {
        Self {
            name: name.to_owned(),
            used: used.to_owned(),
            hard: hard.to_owned(),
            used_value: parse_quantity(used),
            hard_value: parse_quantity(hard),
        }
    }
}

/// A store's usage as last observed.
#[derive(Debug, Clone, Serialize)]
pub struct StoreUsage {
    pub resources: Vec<ResourceUsage>,
    pub observed_at: DateTime<Utc>,
}

/// The fleet's total of one resource over the stores observed.
#[derive(Debug, Clone, Serialize)]
pub struct FleetResource {
    pub name: String,
    /// Sums in base units over the stores whose quantities parse.
    pub used: f64,
    pub hard: f64,
    /// Stores with this resource in their quota.
    pub stores: i64,
}

/// A Kubernetes quantity (`250m`, `1.5Gi`, `2`, `1e3`) in base units, or `None` when it is
/// not one.
#[must_use]
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    // `1e3` is a number with an exponent; `1E` alone would be exa — only after digits.
    let (number, suffix) = match number.rfind(['e', 'E']) {
        Some(i) if i + 1 == number.len() => q.split_at(i),
        _ => (number, suffix),
    };
    if number.is_empty()
        || !number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '-' || c == '+')
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        _ => return None,
    };
    value.is_finite().then_some(value * factor)
}

/// Records one observation of these stores' usage (stores that no longer exist are left
/// out); returns how many rows were written.
///
/// # Errors
/// Postgres errors.
pub async fn record(
    pool: &PgPool,
    observed: &[(Uuid, Vec<ResourceUsage>)],
    at: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = observed.iter().map(|(id, _)| *id).collect();
    let resources: Vec<serde_json::Value> = observed
        .iter()
        .map(|(_, r)| serde_json::to_value(r).expect("usage serializes"))
        .collect();
    let done = sqlx::query!(
        "INSERT INTO urumi.store_usage (store_id, resources, observed_at)
         SELECT o.id, o.resources, $3
           FROM unnest($1::uuid[], $2::jsonb[]) AS o (id, resources)
           JOIN urumi.stores s ON s.id = o.id
         ON CONFLICT (store_id) DO UPDATE
            SET resources = EXCLUDED.resources, observed_at = EXCLUDED.observed_at",
        &ids,
        &resources,
        at,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A store's usage as last observed, `None` before the first observation.
///
/// # Errors
/// Postgres errors.
pub async fn of_store<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    store: Uuid,
) -> sqlx::Result<Option<StoreUsage>> {
    let row = sqlx::query!(
        "SELECT resources, observed_at FROM urumi.store_usage WHERE store_id = $1",
        store
    )
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| StoreUsage {
        resources: serde_json::from_value(r.resources).unwrap_or_default(),
        observed_at: r.observed_at,
    }))
}

/// The fleet's totals per resource over the live stores' last observations, by name.
///
/// # Errors
/// Postgres errors.
pub async fn fleet<'e>(exec: impl sqlx::PgExecutor<'e>) -> sqlx::Result<Vec<FleetResource>> {
    let rows = sqlx::query!(
        r#"SELECT r.name AS "name!",
                  coalesce(sum((r.used_value)::float8), 0) AS "used!",
                  coalesce(sum((r.hard_value)::float8), 0) AS "hard!",
                  count(*) AS "stores!"
             FROM urumi.store_usage u
             JOIN urumi.stores s ON s.id = u.store_id AND s.status <> 'deleted'
             CROSS JOIN LATERAL jsonb_to_recordset(u.resources)
                  AS r (name text, used_value float8, hard_value float8)
            GROUP BY r.name
            ORDER BY r.name"#
    )
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| FleetResource {
            name: r.name,
            used: r.used,
            hard: r.hard,
            stores: r.stores,
        })
        .collect())
}

/// Why a store using `usage` would not fit `plan`: one line per quota resource whose observed
/// use is above the plan's hard value ("requests.memory: uses 2Gi, plan pro allows 1Gi").
/// Empty when it fits. Resources the observation lacks, or whose quantities do not parse,
/// are not judged.
#[must_use]
pub fn misfits(plan_name: &str, plan: &crate::settings::Plan, usage: &StoreUsage) -> Vec<String> {
    let mut out = Vec::new();
    for (name, hard) in plan.quota_hard() {
        let Some(used) = usage.resources.iter().find(|r| r.name == name) else {
            continue;
        };
        if let (Some(u), Some(h)) = (used.used_value, parse_quantity(hard))
            && u > h
        {
            out.push(format!(
                "{name}: uses {}, plan {plan_name} allows {hard}",
                used.used
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_base_units() {
        for (q, want) in [
            ("2", 2.0),
            ("250m", 0.25),
            ("1.5", 1.5),
            ("1Ki", 1024.0),
            ("512Mi", 512.0 * 1024.0 * 1024.0),
            ("2Gi", 2.0 * 1024.0 * 1024.0 * 1024.0),
            ("1G", 1e9),
            ("5k", 5000.0),
            ("1e3", 1000.0),
            ("100n", 100e-9),
            ("0", 0.0),
            ("1Ei", 1024.0_f64.powi(6)),
            ("2E", 2e18),
        ] {
            let got = parse_quantity(q).unwrap_or_else(|| panic!("{q} parses"));
            assert!(
                (got - want).abs() <= want.abs() * 1e-12,
                "{q}: {got} != {want}"
            );
        }
        for bad in ["", "m", "2Xi", "abc", "1.2.3", "Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_resource_keeps_the_quota_text_and_its_values() {
        let r = ResourceUsage::new("requests.memory", "256Mi", "1Gi");
        assert_eq!(r.used_value, Some(256.0 * 1024.0 * 1024.0));
        assert_eq!(r.hard_value, Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!((r.used.as_str(), r.hard.as_str()), ("256Mi", "1Gi"));
    }
}
