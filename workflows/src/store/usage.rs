//! `store.usage@1`'s one step, `observe`: every store's ResourceQuota `status.used` against
//! `status.hard`, read fleet-wide with one paginated LIST (label
//! `app.kubernetes.io/managed-by=urumi`, 500 a page) and written a page at a time to
//! `urumi.store_usage` (see `urumi_store::usage`).
//!
//! # Idempotency
//! An observation overwrites the last one: running it twice, or again after a crash midway,
//! leaves each store's newest observation.

use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde_json::json;
use urumi_engine::{ResultExt, StepContext, StepError, StepOutcome};
use urumi_store::usage::{self, ResourceUsage};
use uuid::Uuid;

use super::cluster::classify;
use super::steps::StoreDeps;

/// Quotas read per LIST page.
const PAGE: u32 = 500;

/// What one quota says, or `None` before the quota controller has filled its status (or for
/// a quota without a store id).
fn observed(q: &ResourceQuota) -> Option<(Uuid, Vec<ResourceUsage>)> {
    let id = q.labels().get("urumi.io/store-id")?.parse().ok()?;
    let status = q.status.as_ref()?;
    let hard = status.hard.as_ref()?;
    let used = status.used.clone().unwrap_or_default();
    let resources = hard
        .iter()
        .map(|(name, h)| {
            let u = used.get(name).map_or("0", |q| q.0.as_str());
            ResourceUsage::new(name, u, &h.0)
        })
        .collect();
    Some((id, resources))
}

/// The `observe` step.
///
/// # Errors
/// Fatal without a cluster; LIST errors classified; database errors retryable.
pub(super) async fn observe(
    deps: Arc<StoreDeps>,
    _: StepContext,
) -> Result<StepOutcome, StepError> {
    let client = deps
        .client
        .as_ref()
        .ok_or_else(|| StepError::fatal("this process has no cluster configured"))?;
    let api: Api<ResourceQuota> = Api::all(client.clone());
    let mut params = ListParams::default()
        .labels("app.kubernetes.io/managed-by=urumi")
        .limit(PAGE);
    let (mut quotas, mut stores) = (0_usize, 0_u64);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|e| classify("list ResourceQuotas", &e))?;
        let at = Utc::now();
        quotas += page.items.len();
        let seen: Vec<_> = page.items.iter().filter_map(observed).collect();
        stores += usage::record(&deps.pool, &seen, at).await.retryable()?;
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    StepOutcome::done(json!({ "quotas": quotas, "stores": stores }))
}
