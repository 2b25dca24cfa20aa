//! Helpers of the crash tests that run store workflows in `urumi-worker` processes against
//! the Kubernetes API simulator: a worker serving the store workflows, every object of the
//! cluster by namespace, and a namespace's objects as the comparison with an uncrashed
//! reference sees them.

use std::collections::BTreeMap;
use std::path::Path;

use kube::api::{DynamicObject, ListParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Api, Client};
use serde_json::{Value, json};
use uuid::Uuid;

use super::WorkerProcess;

/// A worker process serving the store workflows on the simulator (no usage schedule, so
/// only the runs a test starts are claimed).
pub fn store_worker(
    url: &str,
    kubeconfig: &Path,
    failpoint: Option<&str>,
    lease_ms: u64,
) -> WorkerProcess {
    store_worker_with(url, kubeconfig, failpoint, lease_ms, None)
}

/// [`store_worker`] reading `config` (a `urumi.toml`, as `URUMI_CONFIG`) too.
pub fn store_worker_with(
    url: &str,
    kubeconfig: &Path,
    failpoint: Option<&str>,
    lease_ms: u64,
    config: Option<&Path>,
) -> WorkerProcess {
    let mut cmd = WorkerProcess::command(url, failpoint, lease_ms);
    if let Some(config) = config {
        cmd.env("URUMI_CONFIG", config);
    }
    cmd.env("URUMI__CLUSTER__ENABLED", "true")
        .env("URUMI__CLUSTER__KUBECONFIG", kubeconfig)
        // No scheduled runs: a drift sweep starting at the top of the hour would be one more
        // running run than the cases left (seen at 15:00).
        .env("URUMI__USAGE__CRON", "")
        .env("URUMI__SWEEP__CRON", "")
        .env("URUMI__WORKER__CONCURRENCY", "12");
    WorkerProcess::start(cmd)
}

/// Every object of the cluster, as `(kind, object)`, grouped by namespace (a Namespace
/// counts as an object of itself). Every listable resource the simulator serves is listed,
/// so a stray object of any kind shows up.
pub async fn objects_by_namespace(
    client: &Client,
) -> BTreeMap<String, Vec<(String, DynamicObject)>> {
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut by_ns: BTreeMap<String, Vec<(String, DynamicObject)>> = BTreeMap::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            for obj in api.list(&ListParams::default()).await.unwrap() {
                let ns = match caps.scope {
                    Scope::Namespaced => obj.metadata.namespace.clone(),
                    Scope::Cluster if ar.kind == "Namespace" => obj.metadata.name.clone(),
                    Scope::Cluster => None,
                };
                if let Some(ns) = ns {
                    by_ns.entry(ns).or_default().push((ar.kind.clone(), obj));
                }
            }
        }
    }
    by_ns
}

/// The objects of one store's namespace, [`normalized`] and sorted: equal for two stores
/// whose workflows and controllers decided the same.
pub fn namespace_state(
    objects: &BTreeMap<String, Vec<(String, DynamicObject)>>,
    ns: &str,
    store: Uuid,
    slug: &str,
) -> Vec<String> {
    namespace_state_with(objects, ns, store, slug, &[])
}

/// [`namespace_state`] with more `(value, placeholder)` pairs abstracted (e.g. a backup's
/// id and checksum, which differ between two stores' otherwise equal backups).
#[allow(
    dead_code,
    reason = "shared by several test binaries; each uses a part"
)]
pub fn namespace_state_with(
    objects: &BTreeMap<String, Vec<(String, DynamicObject)>>,
    ns: &str,
    store: Uuid,
    slug: &str,
    more: &[(String, &'static str)],
) -> Vec<String> {
    let in_ns = objects.get(ns).map(Vec::as_slice).unwrap_or_default();
    // The objects' uids appear in their dependents (a Job's in its selector and pods).
    let mut replace: Vec<(String, &str)> = in_ns
        .iter()
        .filter_map(|(_, o)| o.metadata.uid.clone())
        .map(|uid| (uid, "<uid>"))
        .collect();
    replace.push((store.to_string(), "<store-id>"));
    replace.push((slug.to_owned(), "<slug>"));
    replace.extend(more.iter().cloned());
    let mut v: Vec<String> = in_ns
        .iter()
        .map(|(kind, o)| normalized(kind, o, &replace))
        .collect();
    v.sort();
    v
}

/// An object as the comparison sees it: what the store's workflow and the controllers
/// decided, without what differs between any two stores or clusters: uid, resourceVersion,
/// timestamps and status; generated pod name suffixes and template hashes; random Secret
/// values, allocated cluster IPs and bound volume names; and the `replace` pairs (uids, the
/// store's id and slug) wherever they appear.
pub fn normalized(kind: &str, obj: &DynamicObject, replace: &[(String, &str)]) -> String {
    let md = &obj.metadata;
    let owners: Vec<String> = md
        .owner_references
        .iter()
        .flatten()
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    let mut name = md.name.clone().unwrap_or_default();
    if kind == "Pod" {
        let generated = match md.owner_references.iter().flatten().next() {
            Some(o) if o.kind == "Deployment" => 2, // <name>-<template hash>-<random>
            Some(o) if o.kind == "Job" => 1,        // <job>-<random>
            _ => 0,
        };
        for _ in 0..generated {
            name.truncate(name.rfind('-').unwrap_or(name.len()));
        }
        name.push_str(&"-<generated>".repeat(generated));
    }
    let mut labels = md.labels.clone().unwrap_or_default();
    for key in ["pod-template-hash", "controller-revision-hash"] {
        if let Some(hash) = labels.get_mut(key) {
            *hash = "<hash>".into();
        }
    }
    let mut body = obj.data.clone();
    if let Some(b) = body.as_object_mut() {
        b.remove("status");
        if kind == "Secret"
            && let Some(data) = b.get_mut("data").and_then(Value::as_object_mut)
        {
            for v in data.values_mut() {
                *v = json!("<random>");
            }
        }
        if kind == "Service"
            && let Some(spec) = b.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if kind == "PersistentVolumeClaim"
            && let Some(spec) = b.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("volumeName"); // pvc-<uid> of the bound volume
        }
    }
    let v = json!({
        "kind": kind,
        "name": name,
        "labels": labels,
        "annotations": md.annotations,
        "finalizers": md.finalizers,
        "owners": owners,
        "generation": md.generation,
        "body": body,
    });
    replace
        .iter()
        .fold(v.to_string(), |text, (from, to)| text.replace(from, to))
}
