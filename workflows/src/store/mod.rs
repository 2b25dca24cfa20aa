//! Stores: one tenant each — an engine's application (WordPress + WooCommerce with its own
//! MariaDB today), in its own namespace, at `https://<slug>.<base-domain>`.
//!
//! - [`names`]: what a user typed → a DNS-1123 slug, or a clear refusal.
//! - [`settings`]: images, domains, ingress, storage and per-plan quotas (never in code).
//! - [`engines`]: what a store runs (WooCommerce today) behind the `StoreEngine` trait, and
//!   the registry of engines by name.
//! - [`render`]: the desired state of a store as typed Kubernetes objects — pure functions,
//!   so every object can be unit-tested and schema-validated without a cluster: the parts
//!   every engine shares, and the building blocks engines use.
//!
//! - [`cluster`]: kube-rs calls (server-side apply, create-if-absent) and error classes.
//! - [`proxy`]: HTTP to a store's app through the API server's Service proxy.
//! - [`steps`]: the `store.provision`, `store.delete` and `store.repair` workflows.
//! - [`service`]: create / delete / repair requests (store row + run in one transaction).
//! - [`status`]: a store's status and the moves between statuses (the state machine).
//! - [`subject`]: the run subject of a store, `store:<id>`.
//! - [`db`]: the `urumi.stores` rows.

pub mod cluster;
pub mod db;
pub mod engines;
pub mod names;
pub mod proxy;
pub mod render;
pub mod service;
pub mod settings;
pub mod status;
pub mod steps;
pub mod subject;
