//! Stores: one tenant each — an engine's application (WordPress + WooCommerce with its own
//! MariaDB today), in its own namespace, at `https://<slug>.<base-domain>`.
//!
//! The store domain that needs no cluster is the `urumi-store` crate, re-exported here
//! ([`names`], [`settings`], [`service`], [`status`], [`subject`], [`db`], and the
//! workflows' declarations in [`definitions`]); this module adds what talks to Kubernetes:
//!
//! - [`engines`]: what a store runs (WooCommerce today) behind the `StoreEngine` trait, and
//!   the registry of engines by name.
//! - [`render`]: the desired state of a store as typed Kubernetes objects — pure functions,
//!   so every object can be unit-tested and schema-validated without a cluster: the parts
//!   every engine shares, and the building blocks engines use.
//! - [`cluster`]: kube-rs calls (server-side apply, create-if-absent) and error classes.
//! - [`numbered_jobs`]: how a step runs a Job (numbered per attempt, adopted after a crash).
//! - [`proxy`]: HTTP to a store's app through the API server's Service proxy.
//! - [`preview`]: applying a store's desired state and saying what changed — for real
//!   (`store.repair`) or under `dryRun=All` (`store.preview`, an operation's plan preview).
//! - [`lifecycle`]: the code of the `store.suspend` and `store.resume` steps.
//! - [`backup`]: the code of the `store.backup` and `store.restore` steps (archive Jobs).
//! - [`domains`]: the code of the `store.domains` steps (the Ingress with every custom
//!   domain, WordPress's site URL by a Job).
//! - [`steps`]: the code of the `store.provision`, `store.delete`, `store.repair` and
//!   `store.preview` steps.
//! - [`upgrade`]: the code of the `store.upgrade` steps (pre-upgrade backup, new pins,
//!   update Job, storefront check, and the rollback steps).
//! - [`usage`]: `store.usage`'s step — every store's quota usage, one paginated LIST.
//! - [`scheduled_backups`]: `store.scheduled_backups`'s step — a backup run for every ready
//!   store of a plan, on the plan's `backups.schedule`.
//! - [`sweep`]: `store.sweep`'s step — the fleet drift sweep: every ready store's repair
//!   preview, drifted stores listed (and repaired in the bulk lane when told).

pub mod backup;
pub mod cluster;
pub mod domains;
pub mod engines;
pub mod lifecycle;
pub mod numbered_jobs;
pub mod preview;
pub mod proxy;
pub mod render;
pub mod scheduled_backups;
pub mod steps;
pub mod sweep;
pub mod upgrade;
pub mod usage;

pub use urumi_store::{db, definitions, names, service, settings, status, subject};
