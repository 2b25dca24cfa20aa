//! `/api/v1/stores/{id}/domains`: a store's custom domains, added and removed through the
//! shared store-action path ([`super::lifecycle::act`]: checks, the row change and the
//! `store.domains` run, the audit entry, in one transaction; `dry_run=true`: the same checks
//! rolled back, and a worker's cluster plan of the domain list the change would leave).

use std::sync::Arc;

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use super::lifecycle::{ActionAnswer, Request, act};
use crate::auth::{Auth, Role};
use crate::problem::ApiError;
use crate::state::AppState;
use crate::text::Text;

/// A store's custom domains.
#[derive(Debug)]
pub struct DomainsApi(pub Arc<AppState>);

/// A custom domain to add.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields)]
pub struct AddDomain {
    /// A DNS name (e.g. `shop.example.com`), lowercased when stored: RFC 1123 labels of
    /// a-z, 0-9 and inner dashes (internationalised names in punycode), at least two labels,
    /// at most 253 characters, no trailing dot, no wildcard, not an IP address, not under the
    /// platform's base domain (except the store's own host).
    #[oai(validator(min_length = 1, max_length = 253))]
    pub domain: Text,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Stores")]
impl DomainsApi {
    /// Add a custom domain to a ready store: its Ingress answers the domain too (with a TLS
    /// certificate from cert-manager when the platform issues them), and the store's app is
    /// told its primary URL — the oldest custom domain — by a Job (`store.domains` run, 202).
    /// Point the domain's DNS (a CNAME, or an A record) at the platform's ingress first.
    /// A domain the store already has, or its own host, starts nothing (200, `not_started:
    /// already`). 422 for a name that breaks a rule (the problem names it) or for a store at
    /// its limit of 10 domains; 409 when another store has the domain, when the store is not
    /// ready, or while another run of the store is active; 404 for an unknown store. With
    /// `dry_run=true` the request is checked and nothing is written: the answer holds the
    /// objects the change would write (the Ingress; the site-URL Job is not previewed).
    /// Needs `operator`.
    #[oai(
        path = "/stores/:id/domains",
        method = "post",
        operation_id = "add_store_domain"
    )]
    async fn add_store_domain(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// Check and plan only; write and start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
        body: Json<AddDomain>,
    ) -> Result<ActionAnswer, ApiError> {
        let domain: &str = &body.0.domain;
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::AddDomain(domain),
        )
        .await
    }

    /// Remove a custom domain from a ready store: its Ingress stops answering it (and its
    /// certificate is no longer requested), and the store's app is told its primary URL
    /// again (the oldest domain left, else the platform's own host) by a Job
    /// (`store.domains` run, 202). 404 when the store has no such domain (or does not exist);
    /// 409 when the store is not ready or another run of it is active. With `dry_run=true`
    /// the request is checked and nothing is written: the answer holds the objects the
    /// change would write. Needs `operator`.
    #[oai(
        path = "/stores/:id/domains/:domain",
        method = "delete",
        operation_id = "remove_store_domain"
    )]
    async fn remove_store_domain(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        /// The domain to remove (case does not matter).
        domain: Path<String>,
        /// Check and plan only; write and start nothing.
        #[oai(default)]
        dry_run: Query<bool>,
    ) -> Result<ActionAnswer, ApiError> {
        act(
            &self.0,
            &auth,
            Role::Operator,
            id.0,
            dry_run.0,
            Request::RemoveDomain(&domain.0),
        )
        .await
    }
}
