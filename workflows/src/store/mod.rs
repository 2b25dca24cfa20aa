//! Stores: one tenant each — WordPress + WooCommerce with its own MariaDB, in its own
//! namespace, at `https://<slug>.<base-domain>`.
//!
//! - [`names`]: what a user typed → a DNS-1123 slug, or a clear refusal.
//! - [`settings`]: images, domains, ingress, storage and per-plan quotas (never in code).
//! - [`render`]: the desired state of a store as typed Kubernetes objects — pure functions,
//!   so every object can be unit-tested and schema-validated without a cluster.
//!
//! The provisioning, deletion and repair workflows that apply these objects through kube-rs
//! are issue 4's remaining work.

pub mod names;
pub mod render;
pub mod settings;
