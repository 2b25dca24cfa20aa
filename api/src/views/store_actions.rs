//! The JSON shape of a store action's answer (repair, delete, suspend, resume): the run it
//! started (202) — or, when it started nothing (200), why: the store already is where the
//! action would take it (suspending a suspended store), or the request was a dry run, then
//! with the cluster plan a worker computed under `dryRun=All`. One shape for both answers,
//! so generated clients get one type.

use poem_openapi::{Enum, Object};

use super::cluster_plan::{ClusterPlan, StorePlan};
use super::{RunSummary, Store};

/// Why a store action started no run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum NotStartedReason {
    /// The store already is where the action would take it.
    Already,
    /// `dry_run=true`: the action was checked and planned, nothing was written.
    DryRun,
}

/// What a store action did.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct StoreAction {
    /// The store as it is.
    pub store: Store,
    /// The run started for the request (or already under way for the same action); absent
    /// when nothing was started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummary>,
    /// Why nothing was started; absent when a run was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_started: Option<NotStartedReason>,
    /// For a dry run: the `store.preview` run computing the plan, and where it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_plan: Option<ClusterPlan>,
    /// For a dry run whose plan is ready: the objects the action would create, change or
    /// delete, or why it would fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<StorePlan>,
}
