//! Simulated controllers: Deployments and StatefulSets run pods that become Ready, Jobs
//! run a pod that succeeds or fails as scripted (with a log; Urumi's backup, restore and
//! upgrade Jobs are emulated by [`crate::lifecycle`]), PVCs bind, LoadBalancer
//! Services and Ingresses get an address, ResourceQuotas report usage, and namespace
//! deletion removes the namespace's contents. Each reacts to committed changes; the
//! delays come from [`Timings`] (all zero by default).
//!
//! Invariant: a reconcile only writes when something differs, so status writes settle.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Cluster;
use crate::admission;
use crate::lifecycle;
use crate::resources::{self, RESOURCES};
use crate::store::{EventType, State, WatchEvent, WriteOpts, now};

/// Controller delays, in milliseconds. Zero (the default) means "at once".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Timings {
    /// From pod creation to Running and Ready.
    pub pod_ready_ms: u64,
    /// From a Job pod running to it finishing.
    pub job_run_ms: u64,
    /// From PVC creation to Bound.
    pub pvc_bind_ms: u64,
    /// From Ingress / LoadBalancer Service creation to an address.
    pub address_ms: u64,
    /// From namespace deletion to its contents being removed.
    pub namespace_finalize_ms: u64,
}

/// How a Job's pods end, and what they log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobScript {
    /// The first `fail_times` pods fail; later ones succeed (`u32::MAX`: all fail).
    pub fail_times: u32,
    /// What `pods/log` returns for the Job's pods.
    pub log: String,
}

impl JobScript {
    /// Every pod succeeds.
    pub fn succeed(log: &str) -> Self {
        Self {
            fail_times: 0,
            log: log.into(),
        }
    }

    /// Every pod fails.
    pub fn fail(log: &str) -> Self {
        Self {
            fail_times: u32::MAX,
            log: log.into(),
        }
    }

    /// The first `n` pods fail, then one succeeds.
    pub fn fail_then_succeed(n: u32, log: &str) -> Self {
        Self {
            fail_times: n,
            log: log.into(),
        }
    }
}

const MANAGER: &str = "kube-controller-manager";
const OUTCOME: &str = "sim.urumi.io/outcome";

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn short_hash(v: &Value) -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = fnv(&v.to_string());
    (0..10)
        .map(|_| {
            let c = ALPHA[(h % ALPHA.len() as u64) as usize] as char;
            h /= ALPHA.len() as u64;
            c
        })
        .collect()
}

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn owned_by(pod: &Value, uid: &str) -> bool {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|o| o.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

/// Whether a pod's `Ready` condition is `True`.
pub(crate) fn pod_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn phase(p: &Value) -> String {
    s(p, "/status/phase")
}

/// A condition, keeping its timestamps when nothing about it changed.
fn condition(
    old: &Value,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    with_update: bool,
) -> Value {
    let prev = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .cloned();
    let t = now();
    let same_status = prev.as_ref().is_some_and(|p| p["status"] == status);
    let same_all = same_status
        && prev
            .as_ref()
            .is_some_and(|p| p["reason"] == reason && p["message"] == message);
    let transition = if same_status {
        prev.as_ref()
            .map(|p| p["lastTransitionTime"].clone())
            .unwrap_or(json!(t))
    } else {
        json!(t)
    };
    let mut c = json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": transition});
    if with_update {
        c["lastUpdateTime"] = if same_all {
            prev.map(|p| p["lastUpdateTime"].clone())
                .unwrap_or(json!(t))
        } else {
            json!(t)
        };
    }
    c
}

fn insert_nonzero(m: &mut Value, key: &str, n: i64) {
    if n != 0 {
        m[key] = json!(n);
    }
}

/// Records a `Warning` Event about an object (once per reason and message).
fn warn_event(st: &mut State, obj: &Value, reason: &str, message: &str) {
    let ns = s(obj, "/metadata/namespace");
    let name = s(obj, "/metadata/name");
    let ev_name = format!("{name}.{:016x}", fnv(&format!("{reason}{message}")));
    if st.get(resources::EVENTS, &ns, &ev_name).is_some() {
        return;
    }
    let t = now();
    let ev = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": ev_name, "namespace": ns},
        "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": name, "namespace": ns, "uid": obj["metadata"]["uid"]},
        "reason": reason, "message": message, "type": "Warning", "count": 1,
        "firstTimestamp": t, "lastTimestamp": t,
        "source": {"component": "urumi-sim"}, "reportingComponent": "urumi-sim",
    });
    let _ = st.create(
        resources::EVENTS,
        &ns,
        ev,
        &WriteOpts {
            manager: MANAGER.into(),
            ..Default::default()
        },
    );
}

fn new_pod(owner: &Value, owner_kind: &str, name: &str, extra_labels: &Value) -> Value {
    let tpl = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut labels = tpl
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    if let (Some(l), Some(e)) = (labels.as_object_mut(), extra_labels.as_object()) {
        for (k, v) in e {
            l.insert(k.clone(), v.clone());
        }
    }
    let mut md = json!({
        "name": name,
        "labels": labels,
        "ownerReferences": [{
            "apiVersion": owner["apiVersion"], "kind": owner_kind, "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
        }],
    });
    if let Some(a) = tpl.pointer("/metadata/annotations") {
        md["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": tpl.get("spec").cloned().unwrap_or(json!({}))})
}

fn owned_pods(st: &State, ns: &str, uid: &str) -> Vec<Value> {
    st.values_in(resources::PODS, ns)
        .into_iter()
        .filter(|p| owned_by(p, uid))
        .collect()
}

fn reconcile_deployment(st: &mut State, ns: &str, name: &str) {
    let Some(d) = st.get(resources::DEPLOYMENTS, ns, name) else {
        return;
    };
    if d.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let uid = s(&d, "/metadata/uid");
    let replicas = d
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let hash = short_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
    let opts = WriteOpts {
        manager: MANAGER.into(),
        ..Default::default()
    };
    let mut current = Vec::new();
    for p in owned_pods(st, ns, &uid) {
        if s(&p, "/metadata/labels/pod-template-hash") == hash
            && p.pointer("/metadata/deletionTimestamp").is_none()
        {
            current.push(p);
        } else {
            let _ = st.delete(
                resources::PODS,
                ns,
                &s(&p, "/metadata/name"),
                &Value::Null,
                false,
            );
        }
    }
    while current.len() as i64 > replicas {
        let p = current.pop().expect("len > replicas >= 0");
        let _ = st.delete(
            resources::PODS,
            ns,
            &s(&p, "/metadata/name"),
            &Value::Null,
            false,
        );
    }
    let mut failure = None;
    while (current.len() as i64) < replicas {
        let pod_name = format!("{name}-{hash}-{}", crate::store::random_suffix(5));
        let pod = new_pod(
            &d,
            "Deployment",
            &pod_name,
            &json!({"pod-template-hash": hash}),
        );
        match st.create(resources::PODS, ns, pod, &opts) {
            Ok(w) => current.push(w.obj),
            Err(e) => {
                failure = Some(e.message);
                break;
            }
        }
    }
    let ready = current.iter().filter(|p| pod_ready(p)).count() as i64;
    let n = current.len() as i64;
    let mut status = json!({"observedGeneration": d.pointer("/metadata/generation").cloned().unwrap_or(json!(1))});
    insert_nonzero(&mut status, "replicas", n);
    insert_nonzero(&mut status, "updatedReplicas", n);
    insert_nonzero(&mut status, "readyReplicas", ready);
    insert_nonzero(&mut status, "availableReplicas", ready);
    insert_nonzero(&mut status, "unavailableReplicas", replicas - ready);
    let available = ready >= replicas;
    let mut conds = vec![if available {
        condition(
            &d,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            true,
        )
    } else {
        condition(
            &d,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            true,
        )
    }];
    conds.push(if available && n == replicas {
        condition(
            &d,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."),
            true,
        )
    } else {
        condition(
            &d,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{name}-{hash}\" is progressing."),
            true,
        )
    });
    if let Some(msg) = &failure {
        conds.push(condition(
            &d,
            "ReplicaFailure",
            "True",
            "FailedCreate",
            msg,
            true,
        ));
        warn_event(st, &d, "FailedCreate", &format!("Error creating: {msg}"));
    }
    status["conditions"] = json!(conds);
    st.set_status(resources::DEPLOYMENTS, ns, name, status);
}

fn reconcile_statefulset(st: &mut State, ns: &str, name: &str) {
    let Some(ss) = st.get(resources::STATEFULSETS, ns, name) else {
        return;
    };
    if ss.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let uid = s(&ss, "/metadata/uid");
    let replicas = ss
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let revision = format!(
        "{name}-{}",
        short_hash(ss.pointer("/spec/template").unwrap_or(&Value::Null))
    );
    let opts = WriteOpts {
        manager: MANAGER.into(),
        ..Default::default()
    };
    let templates: Vec<Value> = ss
        .pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut failure = None;
    let mut pods = Vec::new();
    for p in owned_pods(st, ns, &uid) {
        let idx: i64 = s(&p, "/metadata/labels/apps.kubernetes.io~1pod-index")
            .parse()
            .unwrap_or(i64::MAX);
        if s(&p, "/metadata/labels/controller-revision-hash") != revision || idx >= replicas {
            let _ = st.delete(
                resources::PODS,
                ns,
                &s(&p, "/metadata/name"),
                &Value::Null,
                false,
            );
        } else {
            pods.push(p);
        }
    }
    for i in 0..replicas {
        let pod_name = format!("{name}-{i}");
        if pods.iter().any(|p| s(p, "/metadata/name") == pod_name) {
            continue;
        }
        for t in &templates {
            let claim = format!("{}-{pod_name}", s(t, "/metadata/name"));
            if st.get(resources::PVCS, ns, &claim).is_none() {
                let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim}, "spec": t.get("spec").cloned().unwrap_or(json!({}))});
                if let Some(l) = ss.pointer("/spec/selector/matchLabels") {
                    pvc["metadata"]["labels"] = l.clone();
                }
                if let Err(e) = st.create(resources::PVCS, ns, pvc, &opts) {
                    failure = Some(e.message);
                }
            }
        }
        let mut pod = new_pod(
            &ss,
            "StatefulSet",
            &pod_name,
            &json!({"controller-revision-hash": revision, "statefulset.kubernetes.io/pod-name": pod_name, "apps.kubernetes.io/pod-index": i.to_string()}),
        );
        if !templates.is_empty() {
            let vols = pod["spec"]
                .as_object_mut()
                .expect("pod spec is an object")
                .entry("volumes")
                .or_insert_with(|| json!([]));
            if let Some(vols) = vols.as_array_mut() {
                for t in &templates {
                    let vname = s(t, "/metadata/name");
                    if !vols.iter().any(|v| v["name"] == vname.as_str()) {
                        vols.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": format!("{vname}-{pod_name}")}}));
                    }
                }
            }
        }
        match st.create(resources::PODS, ns, pod, &opts) {
            Ok(w) => pods.push(w.obj),
            Err(e) => {
                failure = Some(e.message);
                break;
            }
        }
    }
    let ready = pods.iter().filter(|p| pod_ready(p)).count() as i64;
    let n = pods.len() as i64;
    let mut status = json!({
        "observedGeneration": ss.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": n, "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
    });
    insert_nonzero(&mut status, "readyReplicas", ready);
    insert_nonzero(&mut status, "availableReplicas", ready);
    insert_nonzero(&mut status, "currentReplicas", n);
    insert_nonzero(&mut status, "updatedReplicas", n);
    if let Some(msg) = failure {
        warn_event(
            st,
            &ss,
            "FailedCreate",
            &format!("create Pod {name} in StatefulSet {name} failed error: {msg}"),
        );
    }
    st.set_status(resources::STATEFULSETS, ns, name, status);
}

/// How the next pod of a Job ends (`true`: it succeeds) and what it logs, given how many of
/// its pods failed so far. A registered script ([`crate::SimHandle::script_job`]) decides
/// alone; then the `sim.urumi.io/fail-times` / `outcome: fail` annotations fail the first
/// pods; a pod that gets past them logs the `sim.urumi.io/log` annotation, followed, for a
/// Job labelled `urumi.io/job` = `backup` | `restore` | `upgrade`, by that script's emulated
/// result (which can itself fail: a restore of an unknown backup).
fn next_attempt(cluster: &Cluster, st: &State, job: &Value, failed: i64) -> Attempt {
    let ns = s(job, "/metadata/namespace");
    let name = s(job, "/metadata/name");
    let attempt = |script: &JobScript| Attempt {
        ok: (failed as u64) >= u64::from(script.fail_times),
        log: script.log.clone(),
        backup: None,
    };
    for (sns, prefix, script) in cluster.job_scripts.lock().expect("scripts lock").iter() {
        if sns.as_deref().is_none_or(|n| n == ns) && name.starts_with(prefix.as_str()) {
            return attempt(script);
        }
    }
    let ann = |k: &str| {
        job.pointer("/metadata/annotations")
            .and_then(|a| a.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let log = ann("sim.urumi.io/log").unwrap_or_default();
    let fail_times = match (ann("sim.urumi.io/fail-times"), ann(OUTCOME).as_deref()) {
        (Some(n), _) => n.parse().unwrap_or(u32::MAX),
        (None, Some("fail")) => u32::MAX,
        _ => 0,
    };
    let mut next = attempt(&JobScript { fail_times, log });
    if next.ok
        && let Some(run) = lifecycle::emulate(st, &ns, job)
    {
        next.ok = run.ok;
        next.log.push_str(&run.log);
        next.backup = run.backup;
    }
    next
}

/// The next pod of a Job: whether it succeeds, its log, and the backup it makes.
struct Attempt {
    ok: bool,
    log: String,
    backup: Option<lifecycle::Backup>,
}

fn reconcile_job(cluster: &Cluster, st: &mut State, ns: &str, name: &str) {
    let Some(job) = st.get(resources::JOBS, ns, name) else {
        return;
    };
    if job.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let finished = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        });
    let uid = s(&job, "/metadata/uid");
    let pods = owned_pods(st, ns, &uid);
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
    let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
    let mut active = pods.len() as i64 - succeeded - failed;
    let completions = job
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let backoff = job
        .pointer("/spec/backoffLimit")
        .and_then(Value::as_i64)
        .unwrap_or(6);
    let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let t = now();
    let mut status = json!({
        "startTime": job.pointer("/status/startTime").cloned().unwrap_or(json!(t)),
        "terminating": 0,
        "uncountedTerminatedPods": {},
    });
    let mut conds: Vec<Value> = Vec::new();
    if finished {
        return;
    }
    if succeeded >= completions {
        conds.push(condition(
            &job,
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            false,
        ));
        conds.push(condition(
            &job,
            "Complete",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            false,
        ));
        status["completionTime"] = json!(t);
    } else if failed > backoff {
        conds.push(condition(
            &job,
            "FailureTarget",
            "True",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            false,
        ));
        conds.push(condition(
            &job,
            "Failed",
            "True",
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            false,
        ));
    } else if active == 0 && !suspended {
        let Attempt {
            ok,
            mut log,
            backup,
        } = next_attempt(cluster, st, &job, failed);
        let outcome = if ok { "succeed" } else { "fail" };
        let pod_name = format!(
            "{name}-{}",
            &short_hash(&json!([uid, failed, succeeded, t]))[..5]
        );
        let mut pod = new_pod(&job, "Job", &pod_name, &json!({}));
        pod["metadata"]["annotations"] = json!({OUTCOME: outcome});
        let opts = WriteOpts {
            manager: MANAGER.into(),
            ..Default::default()
        };
        match st.create(resources::PODS, ns, pod, &opts) {
            Ok(_) => {
                if outcome == "fail" && log.is_empty() {
                    log = "simulated failure\n".into();
                }
                st.logs.insert((ns.to_string(), pod_name), log);
                if let Some(b) = backup {
                    b.remember(st);
                }
                active += 1;
            }
            Err(e) => warn_event(
                st,
                &job,
                "FailedCreate",
                &format!("Error creating: {}", e.message),
            ),
        }
    }
    insert_nonzero(&mut status, "active", active);
    insert_nonzero(&mut status, "succeeded", succeeded);
    insert_nonzero(&mut status, "failed", failed);
    status["ready"] = json!(pods.iter().filter(|p| pod_ready(p)).count());
    if !conds.is_empty() {
        status["conditions"] = json!(conds);
    }
    st.set_status(resources::JOBS, ns, name, status);
}

fn start_pod(st: &mut State, ns: &str, name: &str) -> bool {
    let Some(p) = st.get(resources::PODS, ns, name) else {
        return false;
    };
    if phase(&p) != "Pending" || p.pointer("/metadata/deletionTimestamp").is_some() {
        return false;
    }
    let t = now();
    let containers: Vec<Value> = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": t}}}))
                .collect()
        })
        .unwrap_or_default();
    let ip = format!("10.244.{}.{}", fnv(name) % 250, fnv(ns) % 250 + 2);
    let cond = |k: &str| json!({"type": k, "status": "True", "lastTransitionTime": t, "lastProbeTime": null});
    let status = json!({
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": "10.0.0.1", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": t,
        "containerStatuses": containers, "qosClass": p.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort")),
    });
    st.set_status(resources::PODS, ns, name, status);
    p.pointer(&format!(
        "/metadata/annotations/{}",
        OUTCOME.replace('/', "~1")
    ))
    .is_some()
}

fn finish_pod(st: &mut State, ns: &str, name: &str) {
    let Some(p) = st.get(resources::PODS, ns, name) else {
        return;
    };
    if phase(&p) != "Running" {
        return;
    }
    let ok = s(
        &p,
        &format!("/metadata/annotations/{}", OUTCOME.replace('/', "~1")),
    ) != "fail";
    let t = now();
    let code = if ok { 0 } else { 1 };
    let reason = if ok { "Completed" } else { "Error" };
    let containers: Vec<Value> = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": p["status"]["startTime"], "finishedAt": t}}}))
                .collect()
        })
        .unwrap_or_default();
    let mut status = p["status"].clone();
    status["phase"] = json!(if ok { "Succeeded" } else { "Failed" });
    status["containerStatuses"] = json!(containers);
    if let Some(cs) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in cs
            .iter_mut()
            .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
        {
            c["status"] = json!("False");
            c["reason"] = json!("PodCompleted");
        }
    }
    st.set_status(resources::PODS, ns, name, status);
}

fn reconcile_quotas(st: &mut State, ns: &str) {
    let quotas = st.values_in(resources::QUOTAS, ns);
    if quotas.is_empty() {
        return;
    }
    let kinds = [
        resources::PODS,
        resources::PVCS,
        resources::SERVICES,
        resources::SECRETS,
        2,
    ];
    let objs: Vec<(usize, Vec<Value>)> = kinds.iter().map(|k| (*k, st.values_in(*k, ns))).collect();
    for q in quotas {
        let Some(hard) = q.pointer("/spec/hard").and_then(Value::as_object) else {
            continue;
        };
        let mut used = serde_json::Map::new();
        for res in hard.keys() {
            let total: f64 = objs
                .iter()
                .flat_map(|(k, os)| {
                    os.iter()
                        .map(move |o| admission::usage_of(RESOURCES[*k].plural, o, res))
                })
                .sum();
            used.insert(res.clone(), json!(admission::format_quantity(res, total)));
        }
        let status = json!({"hard": hard, "used": used});
        st.set_status(resources::QUOTAS, ns, &s(&q, "/metadata/name"), status);
    }
}

/// Runs `f` after `delay` on a task, counted as pending work until it finishes.
fn later(cluster: &Arc<Cluster>, delay_ms: u64, f: impl FnOnce(&Arc<Cluster>) + Send + 'static) {
    if delay_ms == 0 {
        f(cluster);
        return;
    }
    cluster.pending.fetch_add(1, Ordering::SeqCst);
    let c = cluster.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        f(&c);
        c.pending.fetch_sub(1, Ordering::SeqCst);
    });
}

fn lock(c: &Cluster) -> std::sync::MutexGuard<'_, State> {
    c.state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn handle(cluster: &Arc<Cluster>, ev: &WatchEvent) {
    let t = cluster.timings.clone();
    let (ns, name) = (ev.ns.clone(), ev.name.clone());
    let obj: Value = serde_json::from_slice(&ev.data).unwrap_or(Value::Null);
    let deleted = ev.kind == EventType::Deleted;
    match ev.res {
        resources::DEPLOYMENTS if !deleted => reconcile_deployment(&mut lock(cluster), &ns, &name),
        resources::STATEFULSETS if !deleted => {
            reconcile_statefulset(&mut lock(cluster), &ns, &name);
        }
        resources::JOBS if !deleted => reconcile_job(cluster, &mut lock(cluster), &ns, &name),
        resources::PODS => {
            if ev.kind == EventType::Added {
                later(cluster, t.pod_ready_ms, move |c| {
                    let job_pod = start_pod(&mut lock(c), &ns, &name);
                    if job_pod {
                        later(c, c.timings.job_run_ms, move |c| {
                            finish_pod(&mut lock(c), &ns, &name);
                        });
                    }
                });
            }
            let refs = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut st = lock(cluster);
            for r in refs {
                let owner = s(&r, "/name");
                match r["kind"].as_str() {
                    Some("Deployment") => reconcile_deployment(&mut st, &ev.ns, &owner),
                    Some("StatefulSet") => reconcile_statefulset(&mut st, &ev.ns, &owner),
                    Some("Job") => reconcile_job(cluster, &mut st, &ev.ns, &owner),
                    _ => {}
                }
            }
            reconcile_quotas(&mut st, &ev.ns);
        }
        resources::PVCS => {
            if ev.kind == EventType::Added {
                later(cluster, t.pvc_bind_ms, move |c| {
                    let mut st = lock(c);
                    if let Some(p) = st.get(resources::PVCS, &ns, &name)
                        && phase(&p) == "Pending"
                    {
                        let mut p2 = p.clone();
                        let vol = format!("pvc-{}", s(&p, "/metadata/uid"));
                        p2["spec"]["volumeName"] = json!(vol);
                        if p2.pointer("/spec/storageClassName").is_none() {
                            p2["spec"]["storageClassName"] = json!("standard");
                        }
                        p2["status"] = json!({
                            "phase": "Bound",
                            "accessModes": p.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                            "capacity": {"storage": p.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))},
                        });
                        let md = p2["metadata"].as_object_mut().expect("metadata");
                        let ann = md.entry("annotations").or_insert_with(|| json!({}));
                        ann["pv.kubernetes.io/bind-completed"] = json!("yes");
                        st.put_raw(resources::PVCS, &ns, &name, p2);
                    }
                });
            }
            reconcile_quotas(&mut lock(cluster), &ev.ns);
        }
        resources::SERVICES => {
            if !deleted
                && obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                && obj.pointer("/status/loadBalancer/ingress").is_none()
            {
                later(cluster, t.address_ms, move |c| {
                    lock(c).set_status(resources::SERVICES, &ns, &name, json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}}));
                });
            }
            reconcile_quotas(&mut lock(cluster), &ev.ns);
        }
        resources::INGRESSES
            if !deleted && obj.pointer("/status/loadBalancer/ingress").is_none() =>
        {
            later(cluster, t.address_ms, move |c| {
                lock(c).set_status(
                    resources::INGRESSES,
                    &ns,
                    &name,
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}),
                );
            });
        }
        resources::QUOTAS if !deleted => reconcile_quotas(&mut lock(cluster), &ev.ns),
        resources::NAMESPACES
            if !deleted && obj.pointer("/metadata/deletionTimestamp").is_some() =>
        {
            cluster.pending.fetch_add(1, Ordering::SeqCst);
            let c = cluster.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(t.namespace_finalize_ms)).await;
                loop {
                    if lock(&c).finalize_namespace(&name) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                c.pending.fetch_sub(1, Ordering::SeqCst);
            });
        }
        _ => {}
    }
}

/// The controller loop: one event at a time, in commit order.
pub(crate) async fn run(cluster: Arc<Cluster>, mut rx: mpsc::UnboundedReceiver<Arc<WatchEvent>>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        // Several changes to one object in a batch need one reconcile: keep the last.
        let mut seen = std::collections::HashSet::new();
        let mut keep = vec![false; batch.len()];
        for (i, ev) in batch.iter().enumerate().rev() {
            keep[i] = seen.insert((ev.res, ev.ns.clone(), ev.name.clone(), ev.kind as u8));
        }
        for (ev, k) in batch.iter().zip(keep) {
            if k {
                handle(&cluster, ev);
            }
        }
        cluster.pending.fetch_sub(batch.len(), Ordering::SeqCst);
        batch.clear();
    }
}
