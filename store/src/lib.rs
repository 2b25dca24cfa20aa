//! Urumi's store domain, without Kubernetes: what the API, the workers and the store steps
//! share about a store.
//!
//! - [`names`]: what a user typed → a DNS-1123 slug, or a clear refusal.
//! - [`settings`]: images, domains, ingress, storage and per-plan quotas (never in code).
//! - [`domains`]: a store's custom domains — the rules a name must meet (a pure check) and
//!   which one is primary.
//! - [`engines`]: the names of the store engines this build knows (their code is in
//!   `urumi-workflows`).
//! - [`definitions`]: the store workflows' names, versions, input and steps as engine
//!   definitions whose steps are declared, not implemented; [`registry`] holds them.
//! - [`preview`]: the input and output of `store.preview@1`, the cluster plan preview of a
//!   repair or a delete that an operation's dry run shows.
//! - [`service`]: create / delete / repair / suspend / resume / resize / domain requests
//!   (store row + run in one transaction).
//! - [`status`]: a store's status and the moves between statuses (the state machine).
//! - [`subject`]: the run subject of a store, `store:<id>`.
//! - [`sweep`]: the input and output of `store.sweep@1`, the fleet drift sweep (each ready
//!   store's repair preview; drifted stores listed, and repaired when told).
//! - [`usage`]: each store's resource usage against its quota (`urumi.store_usage`), what
//!   `store.usage@1` observes and the API shows.
//! - [`upgrades`]: upgrade requests (`store.upgrade@1` with its pre-upgrade backup row) and
//!   the release a store is on.
//! - [`db`]: the `urumi.stores` rows (with each store's channel, release and pins, and the
//!   fleet's version spread) and their `urumi.store_domains`.
//!
//! This crate must not depend on `kube` or `k8s-openapi` (the API links it;
//! `api/tests/dependencies.rs` fails if the API's tree gains either). The steps' code, which
//! talks to the cluster, is `urumi-workflows`: it gives the declared steps their code.

pub mod backups;
pub mod db;
pub mod definitions;
pub mod domains;
pub mod engines;
pub mod names;
pub mod preview;
pub mod scheduled_backups;
pub mod service;
pub mod settings;
pub mod status;
pub mod subject;
pub mod sweep;
pub mod upgrades;
pub mod usage;

pub use definitions::registry;
