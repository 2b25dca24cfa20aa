//! The object store: every object of every served resource as compact JSON bytes, one
//! global `resourceVersion` counter, a bounded history of watch events, and the verbs
//! (create, update, patch, delete, list, watch) with their metadata rules.
//!
//! ```text
//!  request ──► verb (create/update/patch/delete) ──► defaults ─► validate ─► admission
//!                                                     │
//!                        commit: rv += 1, bytes stored, WatchEvent ─► history + broadcast
//!                                                                 └─► controller queue
//! ```
//!
//! Invariant: every mutation goes through `commit` or `remove`, so watchers, the history
//! and the controllers see every change in `resourceVersion` order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::admission;
use crate::error::{ApiError, ApiResult};
use crate::patch;
use crate::policy::{self, Operation};
use crate::resources::{self, RESOURCES, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers and controllers see it.
#[derive(Debug)]
pub struct WatchEvent {
    /// Resource index.
    pub res: usize,
    /// Namespace ("" when cluster-scoped).
    pub ns: String,
    /// Object name.
    pub name: String,
    /// What happened.
    pub kind: EventType,
    /// The `resourceVersion` of this change.
    pub rv: u64,
    /// The object after the change (for `Deleted`: the last state).
    pub data: Bytes,
    /// The object before the change.
    pub prev: Option<Bytes>,
}

/// A stored object: its JSON, LZ4-compressed against a per-resource dictionary once the
/// resource has seen enough objects to build one (objects of a kind look alike).
#[derive(Debug, Clone)]
pub struct Stored {
    blob: Blob,
    /// Its `resourceVersion`.
    pub rv: u64,
}

#[derive(Debug, Clone)]
enum Blob {
    Raw(Bytes),
    Packed { bytes: Box<[u8]>, dict: Arc<[u8]> },
}

impl Stored {
    /// The object's JSON.
    pub fn data(&self) -> Bytes {
        match &self.blob {
            Blob::Raw(b) => b.clone(),
            Blob::Packed { bytes, dict } => Bytes::from(
                lz4_flex::block::decompress_size_prepended_with_dict(bytes, dict)
                    .expect("blobs we packed unpack"),
            ),
        }
    }

    /// Bytes held for the object.
    pub fn stored_len(&self) -> usize {
        match &self.blob {
            Blob::Raw(b) => b.len(),
            Blob::Packed { bytes, .. } => bytes.len(),
        }
    }

    /// Parses the object.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.data()).unwrap_or(Value::Null)
    }
}

/// Writes per resource before its compression dictionary is built from them.
const DICT_SAMPLES: usize = 24;
/// LZ4 looks back at most 64 KiB.
const DICT_MAX: usize = 60 * 1024;

type Key = (String, String);

/// A watch's backlog and its live receiver.
pub type WatchStart = (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>);

/// How many watch events are kept for `?watch=1&resourceVersion=N` resumption (older
/// versions get 410 Expired and clients re-list, as with a real API server's watch cache).
const HISTORY: usize = 4_096;

/// Everything behind the cluster lock.
#[derive(Debug)]
pub struct State {
    /// Last issued `resourceVersion`.
    pub rv: u64,
    /// Objects per resource index, keyed by (namespace, name).
    pub objects: Vec<BTreeMap<Key, Stored>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Events older than or equal to this were dropped from the history.
    pub compacted_rv: u64,
    /// Pod logs by (namespace, pod).
    pub logs: HashMap<Key, String>,
    /// Emulated store backups by (namespace, backup id): their sha256 ([`crate::lifecycle`]).
    /// In memory only (not in the snapshot); a namespace's are forgotten when it is deleted.
    pub backups: HashMap<Key, String>,
    next_ip: u32,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    dicts: Vec<Option<Arc<[u8]>>>,
    scratch: Vec<u8>,
    samples: Vec<Vec<Bytes>>,
    controller_tx: Option<mpsc::UnboundedSender<Arc<WatchEvent>>>,
    pending: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// Field manager.
    pub manager: String,
    /// `dryRun=All`: validate and admit, store nothing.
    pub dry_run: bool,
    /// `status` for status-subresource writes.
    pub subresource: Option<String>,
    /// The client, whose writes ValidatingAdmissionPolicies judge; `None` for the
    /// simulator's own controllers.
    pub requester: Option<crate::policy::Requester>,
}

/// Result of a write.
#[derive(Debug)]
pub struct Written {
    /// The object as stored (or as it would be, on a dry run).
    pub obj: Value,
    /// Whether anything changed (a new `resourceVersion`).
    pub changed: bool,
    /// `Warning` headers for the client.
    pub warnings: Vec<String>,
    /// `true` when a create happened (201).
    pub created: bool,
}

/// The patch types of `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/apply-patch+yaml`.
    Apply,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
}

/// Current time as the API server formats it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn md(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .map(String::from)
}

fn md_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was made an object")
}

/// Base64 (standard, padded) as Secrets use it.
pub fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn random_suffix(n: usize) -> String {
    use rand::Rng;
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHA[rng.random_range(0..ALPHA.len())] as char)
        .collect()
}

/// What must not differ for a write to be a no-op: everything but `resourceVersion`.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
}

fn spec_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

impl State {
    /// An empty cluster with the namespaces every cluster has.
    pub fn new(tx: broadcast::Sender<Arc<WatchEvent>>) -> Self {
        let mut s = Self {
            rv: 0,
            objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
            history: VecDeque::new(),
            compacted_rv: 0,
            logs: HashMap::new(),
            backups: HashMap::new(),
            next_ip: 10,
            tx,
            dicts: RESOURCES.iter().map(|_| None).collect(),
            scratch: Vec::new(),
            samples: RESOURCES.iter().map(|_| Vec::new()).collect(),
            controller_tx: None,
            pending: None,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = WriteOpts {
                manager: "kube-apiserver".into(),
                ..Default::default()
            };
            s.create(resources::NAMESPACES, "", obj, &opts)
                .expect("built-in namespaces are valid");
        }
        s
    }

    /// Routes every committed event to the controllers too.
    pub fn set_controller_tx(
        &mut self,
        tx: mpsc::UnboundedSender<Arc<WatchEvent>>,
        pending: Arc<std::sync::atomic::AtomicUsize>,
    ) {
        self.controller_tx = Some(tx);
        self.pending = Some(pending);
    }

    /// Total size of the stored objects' JSON.
    pub fn object_bytes(&self) -> usize {
        self.objects
            .iter()
            .flat_map(|m| m.values())
            .map(Stored::stored_len)
            .sum()
    }

    /// Number of stored objects.
    pub fn object_count(&self) -> usize {
        self.objects.iter().map(BTreeMap::len).sum()
    }

    fn pack(&mut self, res: usize, data: &Bytes) -> Blob {
        if let Some(dict) = &self.dicts[res] {
            // Compress into a reused buffer, then allocate exactly what is kept: shrinking
            // a worst-case-sized buffer per object would fragment the heap.
            let scratch = &mut self.scratch;
            scratch.clear();
            scratch.resize(4 + lz4_flex::block::get_maximum_output_size(data.len()), 0);
            scratch[..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
            if let Ok(n) = lz4_flex::block::compress_into_with_dict(data, &mut scratch[4..], dict)
                && n + 4 < data.len()
            {
                return Blob::Packed {
                    bytes: Box::from(&scratch[..n + 4]),
                    dict: dict.clone(),
                };
            }
            return Blob::Raw(data.clone());
        }
        let samples = &mut self.samples[res];
        samples.push(data.clone());
        if samples.len() >= DICT_SAMPLES {
            let mut dict: Vec<u8> = samples.drain(..).flat_map(|b| b.to_vec()).collect();
            if dict.len() > DICT_MAX {
                dict.drain(..dict.len() - DICT_MAX);
            }
            self.dicts[res] = Some(dict.into());
        }
        Blob::Raw(data.clone())
    }

    /// What controllers need of an object: owner, deletion mark, service type, LB status.
    fn controller_view(obj: &Value) -> Bytes {
        let mut m = json!({"metadata": {}});
        for f in ["ownerReferences", "deletionTimestamp"] {
            if let Some(v) = obj.pointer(&format!("/metadata/{f}")) {
                m["metadata"][f] = v.clone();
            }
        }
        if let Some(t) = obj.pointer("/spec/type") {
            m["spec"] = json!({"type": t});
        }
        if let Some(lb) = obj.pointer("/status/loadBalancer") {
            m["status"] = json!({"loadBalancer": lb});
        }
        Bytes::from(m.to_string())
    }

    fn emit(&mut self, ev: WatchEvent, obj: &Value) {
        // The history (for resumed watches) does not keep previous versions alive.
        let kept = WatchEvent {
            res: ev.res,
            ns: ev.ns.clone(),
            name: ev.name.clone(),
            kind: ev.kind,
            rv: ev.rv,
            data: ev.data.clone(),
            prev: None,
        };
        let ev = Arc::new(ev);
        self.history.push_back(Arc::new(kept));
        while self.history.len() > HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(ev.clone());
        }
        if let Some(c) = &self.controller_tx {
            if let Some(p) = &self.pending {
                p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            // Controllers get a small view, so a backlog never holds whole objects.
            let light = WatchEvent {
                res: ev.res,
                ns: ev.ns.clone(),
                name: ev.name.clone(),
                kind: ev.kind,
                rv: ev.rv,
                data: Self::controller_view(obj),
                prev: None,
            };
            if c.send(Arc::new(light)).is_err()
                && let Some(p) = &self.pending
            {
                p.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    fn commit(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        mut obj: Value,
        kind: EventType,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        md_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let mut raw = serde_json::to_vec(&obj).expect("JSON values serialize");
        raw.shrink_to_fit();
        let data = Bytes::from(raw);
        let key = (ns.to_string(), name.to_string());
        let blob = self.pack(res, &data);
        let watched = self.tx.receiver_count() > 0;
        let prev = self.objects[res]
            .insert(key, Stored { blob, rv })
            .filter(|_| watched)
            .map(|s| s.data());
        self.emit(
            WatchEvent {
                res,
                ns: ns.into(),
                name: name.into(),
                kind,
                rv,
                data,
                prev,
            },
            &obj,
        );
        obj
    }

    fn remove(&mut self, res: usize, ns: &str, name: &str) -> Option<Value> {
        let old = self.objects[res].remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let rv = self.rv;
        let mut obj = old.value();
        md_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        let mut raw = serde_json::to_vec(&obj).expect("JSON values serialize");
        raw.shrink_to_fit();
        let data = Bytes::from(raw);
        self.logs.remove(&(ns.to_string(), name.to_string()));
        self.emit(
            WatchEvent {
                res,
                ns: ns.into(),
                name: name.into(),
                kind: EventType::Deleted,
                rv,
                data,
                prev: Some(old.data()),
            },
            &obj,
        );
        Some(obj)
    }

    /// The stored object.
    pub fn get(&self, res: usize, ns: &str, name: &str) -> Option<Value> {
        self.objects[res]
            .get(&(ns.to_string(), name.to_string()))
            .map(Stored::value)
    }

    /// The stored bytes.
    pub fn get_raw(&self, res: usize, ns: &str, name: &str) -> Option<Bytes> {
        self.objects[res]
            .get(&(ns.to_string(), name.to_string()))
            .map(Stored::data)
    }

    /// Objects of a resource in one namespace (or all, with `None`).
    pub fn iter_ns<'a>(
        &'a self,
        res: usize,
        ns: Option<&'a str>,
    ) -> Box<dyn Iterator<Item = (&'a Key, &'a Stored)> + 'a> {
        match ns {
            Some(ns) => Box::new(
                self.objects[res]
                    .range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns),
            ),
            None => Box::new(self.objects[res].iter()),
        }
    }

    /// Parsed objects of a resource in one namespace.
    pub fn values_in(&self, res: usize, ns: &str) -> Vec<Value> {
        self.iter_ns(res, Some(ns))
            .map(|(_, s)| s.value())
            .collect()
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
        if !rt.namespaced {
            return Ok(());
        }
        match self.get(resources::NAMESPACES, "", ns) {
            None => Err(ApiError::not_found(&RESOURCES[resources::NAMESPACES], ns)),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::forbidden(
                    rt,
                    name,
                    &format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ),
                ))
            }
            Some(_) => Ok(()),
        }
    }

    fn alloc_ip(&mut self) -> String {
        self.next_ip += 1;
        format!("10.96.{}.{}", (self.next_ip >> 8) & 255, self.next_ip & 255)
    }

    /// Server defaults, applied on every write (idempotent).
    fn defaults(&mut self, res: usize, obj: &mut Value, old: Option<&Value>) {
        let rt = &RESOURCES[res];
        let name = md(obj, "name").unwrap_or_default();
        fn spec(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
            if !obj.get("spec").is_some_and(Value::is_object) {
                obj["spec"] = json!({});
            }
            obj["spec"]
                .as_object_mut()
                .expect("spec was made an object")
        }
        match rt.plural {
            "namespaces" => {
                let labels = md_mut(obj).entry("labels").or_insert_with(|| json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
                spec(obj).insert("finalizers".into(), json!(["kubernetes"]));
                if obj.pointer("/status/phase").is_none() {
                    obj["status"] = json!({"phase": "Active"});
                }
            }
            "secrets" => {
                if let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
                    && let Some(sd) = sd.as_object()
                {
                    if !obj.get("data").is_some_and(Value::is_object) {
                        obj["data"] = json!({});
                    }
                    for (k, v) in sd {
                        obj["data"][k] =
                            json!(base64_encode(v.as_str().unwrap_or_default().as_bytes()));
                    }
                }
                if obj.get("type").is_none() {
                    obj["type"] = json!("Opaque");
                }
            }
            "services" => {
                let old_ip = old.and_then(|o| o.pointer("/spec/clusterIP")).cloned();
                let s = spec(obj);
                s.entry("type").or_insert_with(|| json!("ClusterIP"));
                s.entry("sessionAffinity").or_insert_with(|| json!("None"));
                let ip = match s.get("clusterIP").and_then(Value::as_str) {
                    Some(ip) if !ip.is_empty() => json!(ip),
                    _ => old_ip.unwrap_or(Value::Null),
                };
                let ip = if ip.is_null() {
                    json!(self.alloc_ip())
                } else {
                    ip
                };
                let s = spec(obj);
                s.insert("clusterIP".into(), ip.clone());
                s.insert("clusterIPs".into(), json!([ip]));
                s.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
                s.entry("ipFamilyPolicy")
                    .or_insert_with(|| json!("SingleStack"));
                s.entry("internalTrafficPolicy")
                    .or_insert_with(|| json!("Cluster"));
                if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        if let Some(pm) = p.as_object_mut() {
                            pm.entry("protocol").or_insert_with(|| json!("TCP"));
                            if let Some(port) = pm.get("port").cloned() {
                                pm.entry("targetPort").or_insert(port);
                            }
                        }
                    }
                }
                if obj.get("status").is_none() {
                    obj["status"] = json!({"loadBalancer": {}});
                }
            }
            "persistentvolumeclaims" => {
                spec(obj)
                    .entry("volumeMode")
                    .or_insert_with(|| json!("Filesystem"));
                if obj.pointer("/status/phase").is_none() {
                    obj["status"] = json!({"phase": "Pending"});
                }
            }
            "pods" => {
                let s = spec(obj);
                s.entry("restartPolicy").or_insert_with(|| json!("Always"));
                s.entry("serviceAccountName")
                    .or_insert_with(|| json!("default"));
                s.entry("dnsPolicy")
                    .or_insert_with(|| json!("ClusterFirst"));
                if obj.pointer("/status/phase").is_none() {
                    obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
                }
            }
            "deployments" => {
                let s = spec(obj);
                s.entry("replicas").or_insert_with(|| json!(1));
                s.entry("revisionHistoryLimit").or_insert_with(|| json!(10));
                s.entry("progressDeadlineSeconds")
                    .or_insert_with(|| json!(600));
                s.entry("strategy").or_insert_with(|| json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}));
            }
            "statefulsets" => {
                let s = spec(obj);
                s.entry("replicas").or_insert_with(|| json!(1));
                s.entry("podManagementPolicy")
                    .or_insert_with(|| json!("OrderedReady"));
                s.entry("revisionHistoryLimit").or_insert_with(|| json!(10));
                s.entry("updateStrategy").or_insert_with(
                    || json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
            "jobs" => {
                let uid = md(obj, "uid").unwrap_or_default();
                let s = spec(obj);
                s.entry("parallelism").or_insert_with(|| json!(1));
                s.entry("completions").or_insert_with(|| json!(1));
                s.entry("backoffLimit").or_insert_with(|| json!(6));
                s.entry("completionMode")
                    .or_insert_with(|| json!("NonIndexed"));
                s.entry("suspend").or_insert_with(|| json!(false));
                if !s.contains_key("selector") {
                    s.insert(
                        "selector".into(),
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                    );
                    s.insert("manualSelector".into(), json!(false));
                }
                let labels = json!({
                    "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                    "controller-uid": uid, "job-name": name,
                });
                if let Some(tpl) = s.get_mut("template").and_then(Value::as_object_mut) {
                    let tmd = tpl.entry("metadata").or_insert_with(|| json!({}));
                    if let Some(tmd) = tmd.as_object_mut() {
                        let l = tmd.entry("labels").or_insert_with(|| json!({}));
                        if let (Some(l), Some(add)) = (l.as_object_mut(), labels.as_object()) {
                            for (k, v) in add {
                                l.entry(k.clone()).or_insert_with(|| v.clone());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Pod admission: LimitRange defaults, Pod Security, ResourceQuota.
    fn admit_pod(&self, ns: &str, name: &str, pod: &mut Value) -> ApiResult<()> {
        let rt = &RESOURCES[resources::PODS];
        let lrs = self.values_in(resources::LIMITRANGES, ns);
        admission::apply_limit_ranges(pod, &lrs);
        let nsobj = self.get(resources::NAMESPACES, "", ns);
        let level = admission::psa_level(nsobj.as_ref(), "enforce");
        let violations = admission::psa_violations(&level, pod.get("spec").unwrap_or(&Value::Null));
        if !violations.is_empty() {
            let version = admission::psa_level(nsobj.as_ref(), "enforce-version");
            let version = if version == "privileged" {
                "latest".to_string()
            } else {
                version
            };
            return Err(ApiError::forbidden(
                rt,
                name,
                &admission::psa_message(&level, &version, &violations),
            ));
        }
        self.admit_quota(resources::PODS, ns, name, pod)
    }

    fn admit_quota(&self, res: usize, ns: &str, name: &str, obj: &Value) -> ApiResult<()> {
        let quotas = self.values_in(resources::QUOTAS, ns);
        if quotas.is_empty() {
            return Ok(());
        }
        let existing: Vec<Value> = self
            .values_in(res, ns)
            .into_iter()
            .filter(|o| md(o, "name").as_deref() != Some(name))
            .collect();
        admission::check_quota(RESOURCES[res].plural, obj, &quotas, &existing)
            .map_err(|why| ApiError::forbidden(&RESOURCES[res], name, &why))
    }

    fn workload_warnings(&self, res: usize, ns: &str, obj: &Value) -> Vec<String> {
        if ![
            resources::DEPLOYMENTS,
            resources::STATEFULSETS,
            resources::JOBS,
        ]
        .contains(&res)
        {
            return Vec::new();
        }
        let nsobj = self.get(resources::NAMESPACES, "", ns);
        let mut out = Vec::new();
        for mode in ["enforce", "warn"] {
            let level = admission::psa_level(nsobj.as_ref(), mode);
            let v = admission::psa_violations(
                &level,
                obj.pointer("/spec/template/spec").unwrap_or(&Value::Null),
            );
            if !v.is_empty() {
                out.push(format!(
                    "would {}",
                    admission::psa_message(&level, "latest", &v)
                ));
                break;
            }
        }
        out
    }

    /// ValidatingAdmissionPolicies on a client's write ([`policy::admit`]); controllers'
    /// writes (no requester) pass.
    #[allow(clippy::too_many_arguments)] // reason: the parts of one admission request
    fn admit_policies(
        &self,
        opts: &WriteOpts,
        operation: Operation,
        res: usize,
        ns: &str,
        name: &str,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> ApiResult<Vec<String>> {
        let Some(requester) = &opts.requester else {
            return Ok(Vec::new());
        };
        policy::admit(
            self,
            &policy::Request {
                operation,
                res,
                namespace: ns,
                name,
                object,
                old_object,
                requester,
                dry_run: opts.dry_run,
            },
        )
    }

    /// `POST`: creates an object. With `ssa_applied`, the object is the result of a
    /// server-side apply and already carries its `managedFields`.
    ///
    /// # Errors
    /// BadRequest, Invalid, NotFound (namespace), AlreadyExists, Forbidden (admission).
    pub fn create(
        &mut self,
        res: usize,
        ns: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Written> {
        self.create_inner(res, ns, body, opts, false)
    }

    fn create_inner(
        &mut self,
        res: usize,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
        ssa: bool,
    ) -> ApiResult<Written> {
        let rt = &RESOURCES[res];
        check_type(rt, &mut obj)?;
        let m = md_mut(&mut obj);
        let mut name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty() {
            match m.get("generateName").and_then(Value::as_str) {
                Some(g) if !g.is_empty() => name = format!("{g}{}", random_suffix(5)),
                _ => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                            "FieldValueRequired",
                        )],
                    ));
                }
            }
        }
        if rt.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        if let Some(why) = admission::name_error(rt.name_rule, &name) {
            return Err(ApiError::invalid(
                rt,
                &name,
                &[(
                    "metadata.name".into(),
                    format!("Invalid value: \"{name}\": {why}"),
                    "FieldValueInvalid",
                )],
            ));
        }
        self.check_namespace(rt, ns, &name)?;
        if self.objects[res].contains_key(&(ns.to_string(), name.clone())) {
            return Err(ApiError::already_exists(rt, &name));
        }
        let m = md_mut(&mut obj);
        m.insert("name".into(), json!(name));
        for f in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(f);
        }
        if !ssa {
            m.remove("managedFields");
        }
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(now()));
        if rt.generation {
            m.insert("generation".into(), json!(1));
        }
        if rt.status
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        if !ssa {
            patch::track_update(
                None,
                &mut obj,
                &opts.manager,
                None,
                &rt.api_version(),
                &now(),
            );
        }
        self.defaults(res, &mut obj, None);
        let causes = admission::validate(rt, &obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, &name, &causes));
        }
        match res {
            resources::PODS => self.admit_pod(ns, &name, &mut obj)?,
            resources::PVCS | resources::SERVICES => self.admit_quota(res, ns, &name, &obj)?,
            _ => {}
        }
        let mut warnings = self.workload_warnings(res, ns, &obj);
        warnings.extend(self.admit_policies(
            opts,
            Operation::Create,
            res,
            ns,
            &name,
            Some(&obj),
            None,
        )?);
        let obj = if opts.dry_run {
            obj
        } else {
            self.commit(res, ns, &name, obj, EventType::Added)
        };
        Ok(Written {
            obj,
            changed: !opts.dry_run,
            warnings,
            created: true,
        })
    }

    /// `PUT`: replaces an object (or its status), with optimistic concurrency.
    ///
    /// # Errors
    /// NotFound, Conflict (stale `resourceVersion`), BadRequest, Invalid.
    pub fn update(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> ApiResult<Written> {
        let rt = &RESOURCES[res];
        let old = self
            .get(res, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut body = body;
        check_type(rt, &mut body)?;
        match md(&body, "name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        if let Some(rv) = md(&body, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != md(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(rt, name));
        }
        self.write_over(res, ns, name, old, body, opts, false)
    }

    /// Shared tail of update and patch: keeps system metadata, honours the status
    /// subresource, tracks fields, bumps generation, skips no-op writes.
    #[allow(clippy::too_many_arguments)] // reason: internal helper with one caller shape
    fn write_over(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        old: Value,
        body: Value,
        opts: &WriteOpts,
        ssa: bool,
    ) -> ApiResult<Written> {
        let rt = &RESOURCES[res];
        let status_write = opts.subresource.as_deref() == Some("status");
        let mut new = if status_write {
            let mut n = old.clone();
            match body.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            if ssa && let Some(mf) = body.pointer("/metadata/managedFields") {
                md_mut(&mut n).insert("managedFields".into(), mf.clone());
            }
            n
        } else {
            let mut n = body;
            if rt.status {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(o) = n.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            n
        };
        let keep_mf = ssa;
        {
            let om = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let m = md_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "name",
            ] {
                match om.get(f) {
                    Some(v) => {
                        m.insert(f.into(), v.clone());
                    }
                    None => {
                        m.remove(f);
                    }
                }
            }
            if rt.namespaced {
                m.insert("namespace".into(), json!(ns));
            }
            m.insert(
                "resourceVersion".into(),
                om.get("resourceVersion").cloned().unwrap_or(Value::Null),
            );
            if !keep_mf {
                match om.get("managedFields") {
                    Some(v) => m.insert("managedFields".into(), v.clone()),
                    None => m.remove("managedFields"),
                };
            }
            // Finalizers cannot be added to an object that is being deleted.
            if om.get("deletionTimestamp").is_some() {
                let old_f: Vec<Value> = om
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let new_f: Vec<Value> = m
                    .get("finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if new_f.iter().any(|f| !old_f.contains(f)) {
                    return Err(ApiError::forbidden(
                        rt,
                        name,
                        "no new finalizers can be added if the object is being deleted",
                    ));
                }
            }
        }
        if !ssa {
            patch::track_update(
                Some(&old),
                &mut new,
                &opts.manager,
                opts.subresource.as_deref(),
                &rt.api_version(),
                &now(),
            );
        }
        self.defaults(res, &mut new, Some(&old));
        if !status_write {
            let causes = admission::validate(rt, &new);
            if !causes.is_empty() {
                return Err(ApiError::invalid(rt, name, &causes));
            }
        }
        if rt.generation && spec_part(&old) != spec_part(&new) {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            md_mut(&mut new).insert("generation".into(), json!(g));
        }
        let warnings = if status_write {
            Vec::new()
        } else {
            self.workload_warnings(res, ns, &new)
        };
        let warnings = [
            warnings,
            self.admit_policies(
                opts,
                Operation::Update,
                res,
                ns,
                name,
                Some(&new),
                Some(&old),
            )?,
        ]
        .concat();
        if same_object(&old, &new) {
            return Ok(Written {
                obj: old,
                changed: false,
                warnings,
                created: false,
            });
        }
        if opts.dry_run {
            return Ok(Written {
                obj: new,
                changed: false,
                warnings,
                created: false,
            });
        }
        let finalized = new.pointer("/metadata/deletionTimestamp").is_some()
            && new
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        let obj = self.commit(res, ns, name, new, EventType::Modified);
        if finalized && res != resources::NAMESPACES {
            self.remove(res, ns, name);
            self.collect_dependents(&obj, ns);
        }
        Ok(Written {
            obj,
            changed: true,
            warnings,
            created: false,
        })
    }

    /// `PATCH`: apply, merge, strategic merge or JSON patch.
    ///
    /// # Errors
    /// As [`State::update`], plus apply conflicts and patch errors.
    #[allow(clippy::too_many_arguments)] // reason: mirrors the PATCH request's parameters
    pub fn patch(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: Value,
        force: bool,
        opts: &WriteOpts,
    ) -> ApiResult<Written> {
        let rt = &RESOURCES[res];
        let old = self.get(res, ns, name);
        if ptype == PatchType::Apply {
            if opts.manager.is_empty() {
                return Err(ApiError::unprocessable(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            let mut body = body;
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: the body is not an object",
                ));
            }
            if body
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request("invalid object type: /, Kind="));
            }
            check_type(rt, &mut body)?;
            match md(&body, "name") {
                Some(n) if n != name => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
                None => {
                    md_mut(&mut body).insert("name".into(), json!(name));
                }
                _ => {}
            }
            if let (Some(rv), Some(o)) = (md(&body, "resourceVersion"), &old)
                && Some(rv) != md(o, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name));
            }
            let status_write = opts.subresource.as_deref() == Some("status");
            if rt.status
                && !status_write
                && let Some(o) = body.as_object_mut()
            {
                o.remove("status");
            }
            let av = rt.api_version();
            let t = now();
            return match old {
                None => {
                    if status_write {
                        return Err(ApiError::not_found(rt, name));
                    }
                    let merged =
                        patch::server_side_apply(None, &body, &opts.manager, force, &av, &t)
                            .map_err(|c| ApiError::apply_conflict(rt, name, &c))?;
                    self.create_inner(res, ns, merged, opts, true)
                }
                Some(old) => {
                    let merged =
                        patch::server_side_apply(Some(&old), &body, &opts.manager, force, &av, &t)
                            .map_err(|c| ApiError::apply_conflict(rt, name, &c))?;
                    self.write_over(res, ns, name, old, merged, opts, true)
                }
            };
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut new = old.clone();
        match ptype {
            PatchType::Merge => patch::merge_patch(&mut new, &body),
            PatchType::Strategic => patch::strategic_merge_patch(&mut new, &body, &mut Vec::new()),
            PatchType::Json => patch::json_patch(&mut new, &body)?,
            PatchType::Apply => unreachable!("handled above"),
        }
        if md(&new, "resourceVersion") != md(&old, "resourceVersion")
            && md(&new, "resourceVersion").is_some()
        {
            return Err(ApiError::conflict(rt, name));
        }
        self.write_over(res, ns, name, old, new, opts, false)
    }

    /// `DELETE`: removes an object, or marks it (finalizers, namespaces) for deletion.
    /// Dependents (by `ownerReferences`) go too unless `propagation` is `Orphan`.
    ///
    /// # Errors
    /// NotFound, Conflict on failed preconditions.
    pub fn delete(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> ApiResult<Value> {
        let opts = WriteOpts {
            dry_run,
            ..WriteOpts::default()
        };
        self.delete_as(res, ns, name, options, &opts)
            .map(|(gone, _)| gone)
    }

    /// [`State::delete`] on behalf of `opts.requester` (judged by ValidatingAdmissionPolicies
    /// with the stored object as `oldObject`), with the `Warning` headers of `Warn` bindings.
    ///
    /// # Errors
    /// NotFound, Conflict on failed preconditions, a policy's denial.
    pub fn delete_as(
        &mut self,
        res: usize,
        ns: &str,
        name: &str,
        options: &Value,
        opts: &WriteOpts,
    ) -> ApiResult<(Value, Vec<String>)> {
        let dry_run = opts.dry_run;
        let rt = &RESOURCES[res];
        let old = self
            .get(res, ns, name)
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            && Some(uid.to_string()) != md(&old, "uid")
        {
            return Err(ApiError::conflict(rt, name));
        }
        if let Some(rv) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            && Some(rv.to_string()) != md(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(rt, name));
        }
        let warnings =
            self.admit_policies(opts, Operation::Delete, res, ns, name, None, Some(&old))?;
        if dry_run {
            return Ok((old, warnings));
        }
        let orphan = options.get("propagationPolicy").and_then(Value::as_str) == Some("Orphan")
            || options.get("orphanDependents").and_then(Value::as_bool) == Some(true);
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if res == resources::NAMESPACES || has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok((old, warnings));
            }
            let mut new = old;
            let m = md_mut(&mut new);
            m.insert("deletionTimestamp".into(), json!(now()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
            if res == resources::NAMESPACES {
                new["status"] = json!({"phase": "Terminating"});
            }
            return Ok((
                self.commit(res, ns, name, new, EventType::Modified),
                warnings,
            ));
        }
        let gone = self.remove(res, ns, name).unwrap_or(old);
        if !orphan {
            self.collect_dependents(&gone, ns);
        }
        Ok((gone, warnings))
    }

    /// Garbage collection: deletes the objects whose `ownerReferences` name `owner`.
    pub fn collect_dependents(&mut self, owner: &Value, ns: &str) {
        let Some(uid) = md(owner, "uid") else { return };
        let mut doomed = Vec::new();
        for (res, rt) in RESOURCES.iter().enumerate() {
            if !rt.namespaced {
                continue;
            }
            let scope = if ns.is_empty() { None } else { Some(ns) };
            for ((n, name), s) in self.iter_ns(res, scope) {
                let v = s.value();
                let owned = v
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                    });
                if owned {
                    doomed.push((res, n.clone(), name.clone()));
                }
            }
        }
        for (res, n, name) in doomed {
            let _ = self.delete(res, &n, &name, &Value::Null, false);
        }
    }

    /// Removes a namespace's contents; `true` when nothing is left and the namespace is gone.
    pub fn finalize_namespace(&mut self, ns: &str) -> bool {
        self.backups.retain(|(n, _), _| n != ns);
        let mut left = 0;
        for (res, rt) in RESOURCES.iter().enumerate() {
            if !rt.namespaced {
                continue;
            }
            let names: Vec<String> = self
                .iter_ns(res, Some(ns))
                .map(|((_, n), _)| n.clone())
                .collect();
            for name in names {
                match self.delete(
                    res,
                    ns,
                    &name,
                    &json!({"propagationPolicy": "Orphan"}),
                    false,
                ) {
                    Ok(v)
                        if v.pointer("/metadata/deletionTimestamp").is_some()
                            && self.objects[res].contains_key(&(ns.to_string(), name.clone())) =>
                    {
                        left += 1;
                    }
                    _ => {}
                }
            }
        }
        if left > 0 {
            return false;
        }
        self.remove(resources::NAMESPACES, "", ns);
        true
    }

    /// `GET` on a collection.
    ///
    /// # Errors
    /// Expired (410) for a stale `continue` token.
    pub fn list(
        &self,
        res: usize,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        limit: Option<usize>,
        cont: Option<&str>,
    ) -> ApiResult<(Vec<Bytes>, u64, Option<String>)> {
        let start = match cont {
            Some(c) if !c.is_empty() => Some(decode_continue(c)?),
            _ => None,
        };
        let mut items: Vec<(Key, Bytes)> = Vec::new();
        let mut more = false;
        let iter = self
            .iter_ns(res, ns)
            .filter(|(k, _)| start.as_ref().is_none_or(|s| *k > s));
        for (key, s) in iter {
            if !labels.is_empty() || !fields.is_empty() {
                let v = s.value();
                if !labels.matches(&v) || !fields.matches(&v) {
                    continue;
                }
            }
            if limit.is_some_and(|l| l > 0 && items.len() == l) {
                more = true;
                break;
            }
            items.push((key.clone(), s.data()));
        }
        let cont = if more {
            items.last().map(|(k, _)| encode_continue(k))
        } else {
            None
        };
        Ok((items.into_iter().map(|(_, d)| d).collect(), self.rv, cont))
    }

    /// Starts a watch: the backlog to send first, and the live receiver.
    ///
    /// With `since` the backlog is every retained event after it (410 when the history no
    /// longer reaches back that far); without, it is an `ADDED` per existing object.
    ///
    /// # Errors
    /// Expired (410) for a `resourceVersion` older than the retained history.
    pub fn watch(&self, res: usize, ns: Option<&str>, since: Option<u64>) -> ApiResult<WatchStart> {
        let rx = self.tx.subscribe();
        let in_scope = |e: &WatchEvent| e.res == res && ns.is_none_or(|n| e.ns == n);
        let backlog = match since {
            Some(rv) => {
                if rv < self.compacted_rv {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        self.compacted_rv + 1
                    )));
                }
                self.history
                    .iter()
                    .filter(|e| e.rv > rv && in_scope(e))
                    .cloned()
                    .collect()
            }
            None => self
                .iter_ns(res, ns)
                .map(|((n, name), s)| {
                    Arc::new(WatchEvent {
                        res,
                        ns: n.clone(),
                        name: name.clone(),
                        kind: EventType::Added,
                        rv: s.rv,
                        data: s.data(),
                        prev: None,
                    })
                })
                .collect(),
        };
        Ok((backlog, rx))
    }

    /// Writes `status` of an object as a controller does (no field tracking, no-op skipped).
    pub fn set_status(&mut self, res: usize, ns: &str, name: &str, status: Value) -> Option<Value> {
        let old = self.get(res, ns, name)?;
        if old.get("status") == Some(&status) {
            return Some(old);
        }
        let mut new = old;
        new["status"] = status;
        Some(self.commit(res, ns, name, new, EventType::Modified))
    }

    /// Replaces an object as a controller does (no admission, no field tracking).
    pub fn put_raw(&mut self, res: usize, ns: &str, name: &str, obj: Value) -> Value {
        let kind = if self.objects[res].contains_key(&(ns.to_string(), name.to_string())) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.commit(res, ns, name, obj, kind)
    }

    /// Restores objects from a snapshot (their `resourceVersion`s are reissued).
    pub fn restore(&mut self, items: Vec<(usize, String, String, Value)>) {
        for (res, ns, name, obj) in items {
            self.put_raw(res, &ns, &name, obj);
        }
    }

    /// Every object, for a snapshot.
    pub fn dump(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for m in &self.objects {
            for s in m.values() {
                out.push(s.value());
            }
        }
        out
    }
}

fn encode_continue(k: &Key) -> String {
    let raw = format!("{}\u{1}{}", k.0, k.1);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(c: &str) -> ApiResult<Key> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {c}"));
    if !c.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes: Result<Vec<u8>, _> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16))
        .collect();
    let s = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('\u{1}').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

/// Checks and fills `apiVersion` and `kind`.
fn check_type(rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    let Some(m) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    };
    let av = rt.api_version();
    match m.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != av => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({av})"
            )));
        }
        _ => {}
    }
    match m.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        _ => {}
    }
    m.insert("apiVersion".into(), json!(av));
    m.insert("kind".into(), json!(rt.kind));
    Ok(())
}
