//! The cluster plan preview of a repair, a delete or another store action (suspend, resume,
//! resize, a domain change, backup, restore, upgrade): per store, the objects the action would
//! create, change or delete — computed by a worker (`store.preview@1`, which holds the
//! cluster credentials) with server-side apply `dryRun=All`, and shown by an operation's dry
//! run. These are the run's input and output, shared by the worker that writes them and the
//! API that reads them.
//!
//! ```text
//!  API: dry run of a repair/delete operation ─► start store.preview@1 {action, store_ids}
//!       ─► wait for it (a bounded time) ─► each previewed target gets its store's plan
//!  worker: per store — prove the namespace is the store's (as the action would), then for
//!       each object the action applies: GET it, apply it with dryRun=All ─► create /
//!       update (the fields that would change) / unchanged; a delete: dry-run delete
//! ```
//!
//! # Guarantees
//! - A preview writes nothing to the cluster: every write it sends carries `dryRun=All`.
//! - A repair's preview walks the very list of objects `store.repair` applies, with the same
//!   field manager and forced ownership, so what it says is what the repair would do.
//! - A store whose action would fail (its namespace gone or not its own, its credentials
//!   Secret missing) gets the failure as its `error`, not a plan.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The definition name.
pub const PREVIEW: &str = "store.preview";
/// The version this build declares.
pub const PREVIEW_VERSION: i32 = 1;
/// At most this many stores are previewed by one run (a dry run shows 20 targets).
pub const MAX_PREVIEWED: usize = 20;

/// The action being previewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    /// `store.repair`: re-apply the desired state.
    Repair,
    /// `store.delete`: delete the namespace and everything in it.
    Delete,
    /// `store.suspend`: the suspended state applied (replicas 0, the Ingress to the
    /// suspended page).
    Suspend,
    /// `store.resume`: the running state applied, the suspended page's alias deleted.
    Resume,
    /// `store.resize`: the desired state applied with [`PreviewInput::plan`].
    Resize,
    /// `store.backup`: the archive's target and the dump Job ([`PreviewInput::backup_id`]).
    Backup,
    /// `store.restore`: the web tier at zero and the import Job of
    /// [`PreviewInput::backup_id`].
    Restore,
    /// `store.domains`: the desired state applied with [`PreviewInput::domains`] (the
    /// Ingress's hosts and TLS entries; the site-URL Job it would run is not previewed).
    Domains,
    /// `store.upgrade`: the workloads whose images change on [`PreviewInput::channel`]'s
    /// release, and the update Job (the pre-upgrade backup's Job is a backup's).
    Upgrade,
}

/// The input of `store.preview@1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    pub action: PlannedAction,
    /// At most [`MAX_PREVIEWED`].
    pub store_ids: Vec<Uuid>,
    /// The plan a resize moves the stores to (`None`: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The backup a backup makes or a restore restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<Uuid>,
    /// The custom domains a domain change gives the stores (`None`: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
    /// The channel an upgrade takes the stores to (`None`: their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The output of `store.preview@1`: one plan per store, in the input's order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PreviewOutput {
    pub stores: Vec<StorePlan>,
}

/// What the action would do to one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorePlan {
    pub store_id: Uuid,
    /// The objects in the order the action would write them.
    pub objects: Vec<ObjectChange>,
    /// Why the action would fail for this store (then `objects` holds what was checked
    /// before the failure), or why no plan could be computed.
    pub error: Option<String>,
}

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It does not exist; the action creates it.
    Create,
    /// It exists and differs from the desired state; the action changes `fields`.
    Update,
    /// It exists as desired; the action's write changes nothing.
    Unchanged,
    /// The action deletes it.
    Delete,
}

/// One object of a plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectChange {
    pub kind: String,
    pub name: String,
    pub change: Change,
    /// For an update: JSON pointers of the fields that would change (at most
    /// [`MAX_FIELDS`]; `metadata.resourceVersion`, `managedFields`, `generation` and
    /// `status` are not compared).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Something the operator should know about this object (e.g. a Secret's values are
    /// never read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The most field paths one [`ObjectChange`] lists.
pub const MAX_FIELDS: usize = 20;
