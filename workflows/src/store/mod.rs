//! Stores: one tenant each — WordPress + WooCommerce with its own MariaDB, in its own
//! namespace, at `https://<slug>.<base-domain>`.
//!
//! - [`names`]: what a user typed → a DNS-1123 slug, or a clear refusal.
//! - [`settings`]: images, domains, ingress, storage and per-plan quotas (never in code).
//! - [`render`]: the desired state of a store as typed Kubernetes objects — pure functions,
//!   so every object can be unit-tested and schema-validated without a cluster.
//!
//! - [`cluster`]: kube-rs calls (server-side apply, create-if-absent) and error classes.
//! - [`steps`]: the `store.provision`, `store.delete` and `store.repair` workflows.
//! - [`service`]: create / delete / repair requests (store row + run in one transaction).
//! - [`db`]: the `urumi.stores` rows.

pub mod cluster;
pub mod db;
pub mod names;
pub mod render;
pub mod service;
pub mod settings;
pub mod steps;
