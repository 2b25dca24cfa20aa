//! The code of `store.domains@1` (declared, with its step order, in
//! `urumi_store::definitions`): a store's custom domains made real. The run input carries the
//! whole desired list (`StoreInput::domains`, oldest first), written with the request's row
//! change in one transaction (`urumi_store::service::domains_in`), so a re-run applies the
//! same list whatever was asked since.
//!
//! ```text
//! route ─► the Ingress: one rule per host (own host + each custom domain); with a TLS
//!          issuer, one tls entry per host (cert-manager's ingress-shim issues each one)
//! site_url ─► Job store-siteurl-N (the engine's pod, e.g. WP-CLI `wp option update home/
//!          siteurl <primary URL>`); a failed Job is a retryable failure with its log tail
//! storefront ─► the store still answers (the provisioning check)
//! ```
//!
//! # Idempotency
//! `route` is a server-side apply of the desired Ingress. `site_url` numbers its Jobs like
//! the setup step: a poll follows the newest Job; a fresh attempt adopts the newest when it
//! sets this URL and has not failed (the Job a crashed attempt started), else starts the next
//! number (so a run whose primary URL the newest Job already set starts none); the pod's
//! commands leave an option that already holds the URL unchanged.
//! `storefront` only reads.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::json;
use urumi_engine::{StepContext, StepError, StepOutcome};

use super::cluster::apply;
use super::numbered_jobs::{self, Family, Followed};
use super::render::{self, SITE_URL_APP};
use super::steps::{Ctx, log_tail};

/// `route`: the Ingress with the store's own host and every custom domain of the run input.
pub(super) async fn route(c: Ctx, _: StepContext) -> Result<StepOutcome, StepError> {
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    let ingress = render::ingress(&spec, s, engine.web());
    apply(&c.api::<Ingress>()?, &ingress).await?;
    let hosts: Vec<String> = ingress
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .map(|rules| rules.iter().filter_map(|r| r.host.clone()).collect())
        .unwrap_or_default();
    StepOutcome::done(json!({ "hosts": hosts, "tls": s.tls_issuer.is_some() }))
}

/// `site_url`: the app told its primary URL by Job `store-siteurl-N`, waited for.
///
/// # Errors
/// Retryable when the Job failed (its log tail in the message; the next attempt starts a
/// fresh Job); the cluster's errors by their class.
pub(super) async fn site_url(c: Ctx, sc: StepContext) -> Result<StepOutcome, StepError> {
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    let url = spec.primary_url(s);
    let Some(template) = render::site_url_job(engine, &spec, s) else {
        return StepOutcome::done(
            json!({ "url": url, "skipped": "the engine stores no site URL" }),
        );
    };
    // Polling our Job, or adopting the one a crashed attempt of this step started (the
    // newest, setting this URL, not failed): follow it. A Job setting another URL (an
    // earlier run's) or a failed one is not adopted: a fresh attempt starts the next.
    let family = Family {
        selector: &format!("app.kubernetes.io/name={SITE_URL_APP}"),
        prefix: &format!("{SITE_URL_APP}-"),
        what: "site-URL",
    };
    let jobs = c.api::<Job>()?;
    match numbered_jobs::follow(
        &jobs,
        &family,
        sc.poll,
        |_| true,
        |j| sets(j, &url) && numbered_jobs::not_failed(j),
        |_| template,
    )
    .await?
    {
        Followed::Waiting(outcome) => Ok(outcome),
        Followed::Succeeded(name) => StepOutcome::done(json!({ "job": name, "url": url })),
        Followed::Failed(name) => {
            let tail = log_tail(&c, SITE_URL_APP, &name).await;
            Err(StepError::retryable(format!(
                "site-URL Job {name} failed; log tail:\n{tail}"
            )))
        }
    }
}

/// Whether Job `j` sets `url` (its [`render::SITE_URL_ANNOTATION`]).
fn sets(j: &Job, url: &str) -> bool {
    j.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(render::SITE_URL_ANNOTATION))
        .is_some_and(|u| u == url)
}
