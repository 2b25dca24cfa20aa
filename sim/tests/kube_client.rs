//! kube-rs typed clients against the simulator over real HTTP: every resource Urumi uses,
//! server-side apply semantics, watches, controllers, the scale subresource, admission,
//! faults and bad input.

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, LimitRange, Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use urumi_sim::{FaultConfig, FaultRule, JobScript, SimHandle, Simulator};

const IDLE: Duration = Duration::from_secs(10);

async fn start() -> (SimHandle, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let client = client_for(&sim, true);
    (sim, client)
}

fn client_for(sim: &SimHandle, retries: bool) -> Client {
    let mut config = kube::Config::new(sim.url().parse().expect("url parses"));
    config.default_namespace = "default".into();
    config.default_retry = retries;
    Client::try_from(config).expect("client builds")
}

fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("fixture deserializes")
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn create_ns(client: &Client, name: &str, labels: Value) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name, "labels": labels}})),
    )
    .await
    .expect("namespace created");
}

/// Raw HTTP/1.1 for requests no typed client would send.
async fn raw(
    sim: &SimHandle,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String, Value) {
    let mut s = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connects");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("writes");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("reads");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json_start = rest.find('{').unwrap_or(0);
    let json_end = rest.rfind('}').map_or(rest.len(), |i| i + 1);
    let v = serde_json::from_str(&rest[json_start..json_end]).unwrap_or(Value::Null);
    (code, head.to_string(), v)
}

async fn exercise<K>(sim: &SimHandle, api: Api<K>, object: K)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let name = object.meta().name.clone().expect("fixture has a name");
    let kind = K::kind(&()).to_string();
    let created = api
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"));
    assert!(created.meta().uid.is_some(), "{kind} has a uid");
    assert!(
        created.meta().creation_timestamp.is_some(),
        "{kind} has a creationTimestamp"
    );
    let got = api
        .get(&name)
        .await
        .unwrap_or_else(|e| panic!("get {kind}: {e}"));
    assert_eq!(got.meta().uid, created.meta().uid);
    let listed = api
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"));
    assert!(
        listed
            .items
            .iter()
            .any(|o| o.meta().name.as_deref() == Some(name.as_str())),
        "{kind} is listed"
    );
    let applied = api
        .patch(
            &name,
            &PatchParams::apply("urumi-test"),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind}: {e}"));
    assert!(
        applied
            .meta()
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some("urumi-test")),
        "{kind} apply is tracked"
    );
    sim.wait_idle(IDLE).await;
    api.delete(&name, &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("delete {kind}: {e}"));
    sim.wait_idle(IDLE).await;
    let (code, reason, _) = api_error(api.get(&name).await.expect_err("deleted object is gone"));
    assert_eq!((code, reason.as_str()), (404, "NotFound"), "{kind} is gone");
}

fn pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.27"}]})
}

fn template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}}, "spec": pod_spec()})
}

#[tokio::test]
async fn every_resource_urumi_uses_supports_create_get_list_apply_and_delete() {
    let (sim, c) = start().await;
    let ns = "default";
    exercise(&sim, Api::<Namespace>::all(c.clone()), obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "store-a", "labels": {"urumi.io/store": "a"}}}))).await;
    exercise(
        &sim,
        Api::<Secret>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "db"}, "stringData": {"password": "s3cret"}})),
    )
    .await;
    exercise(
        &sim,
        Api::<ConfigMap>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}})),
    )
    .await;
    exercise(&sim, Api::<Service>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}))).await;
    exercise(
        &sim,
        Api::<ServiceAccount>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "runner", "labels": {"urumi.io/store": "a"}}})),
    )
    .await;
    exercise(&sim, Api::<PersistentVolumeClaim>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))).await;
    exercise(
        &sim,
        Api::<Pod>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "p"}, "spec": pod_spec()})),
    )
    .await;
    exercise(
        &sim,
        Api::<ResourceQuota>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10"}}})),
    )
    .await;
    exercise(&sim, Api::<LimitRange>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "lr"}, "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}))).await;
    exercise(&sim, Api::<Event>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "ev"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Test", "message": "hi"}))).await;
    exercise(&sim, Api::<Deployment>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}))).await;
    exercise(&sim, Api::<StatefulSet>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "db"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db")}}))).await;
    exercise(&sim, Api::<Job>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "setup"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "wp", "image": "wordpress:cli"}]}}}}))).await;
    exercise(&sim, Api::<NetworkPolicy>::namespaced(c.clone(), ns), obj(json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}))).await;
    exercise(
        &sim,
        Api::<Ingress>::namespaced(c.clone(), ns),
        obj(json!({"metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example.com"}]}})),
    )
    .await;
    sim.shutdown().await;
}

fn cm(data: Value) -> ConfigMap {
    let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "labels": {"app.kubernetes.io/managed-by": "urumi"}}});
    v["data"] = data;
    obj(v)
}

#[tokio::test]
async fn applying_the_same_object_twice_changes_nothing() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let pp = PatchParams::apply("urumi");
    let first = cms
        .patch("settings", &pp, &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    let second = cms
        .patch("settings", &pp, &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(first.resource_version(), second.resource_version());

    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let d: Deployment = obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
    );
    deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    sim.wait_idle(IDLE).await;
    let before = deploys.get("web").await.unwrap();
    let mark = sim.request_log().mark();
    let again = deploys.patch("web", &pp, &Patch::Apply(&d)).await.unwrap();
    assert_eq!(before.resource_version(), again.resource_version());
    assert_eq!(before.metadata.generation, Some(1));
    let log = sim.request_log().since(mark);
    assert_eq!(log.len(), 1);
    assert!(
        !log[0].changed,
        "the request log says the re-apply changed nothing"
    );
    assert_eq!(log[0].field_manager.as_deref(), Some("urumi"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_apply_answers_the_would_be_object_and_stores_nothing() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    let dry = PatchParams::apply("urumi").force().dry_run();
    let mut events = cms
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();

    // Create: the would-be object comes back, nothing is stored.
    let would = cms
        .patch("settings", &dry, &Patch::Apply(cm(json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(would.data.unwrap()["a"], "1");
    assert!(cms.get_opt("settings").await.unwrap().is_none());

    // Update: the change is answered, the stored object keeps its data and version.
    let stored = cms
        .patch(
            "settings",
            &PatchParams::apply("urumi"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .unwrap();
    let would = cms
        .patch(
            "settings",
            &dry,
            &Patch::Apply(cm(json!({"a": "2", "b": "3"}))),
        )
        .await
        .unwrap();
    assert_eq!(would.data.as_ref().unwrap()["a"], "2");
    assert_eq!(would.data.as_ref().unwrap()["b"], "3");
    let now = cms.get("settings").await.unwrap();
    assert_eq!(now.resource_version(), stored.resource_version());
    assert_eq!(now.data.unwrap().get("b"), None);

    // A dry-run delete deletes nothing either.
    cms.delete(
        "settings",
        &DeleteParams {
            dry_run: true,
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    assert!(cms.get_opt("settings").await.unwrap().is_some());

    // Watchers saw exactly one change: the real apply.
    let first = tokio::time::timeout(IDLE, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Added(_)), "{first:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "a dry run reached the watchers"
    );
    // The log says so too (kube-rs sends a delete's dryRun in its body, an apply's in the query).
    let log = sim.request_log().entries();
    let dry: Vec<_> = log
        .iter()
        .filter(|r| r.verb == "delete" || r.query.contains("dryRun=All"))
        .collect();
    assert_eq!(dry.len(), 3, "{log:#?}");
    assert!(dry.iter().all(|r| !r.changed), "{dry:#?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_field_manager_conflicts_without_force_and_takes_over_with_it() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    cms.patch(
        "settings",
        &PatchParams::apply("urumi"),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    let err = cms
        .patch(
            "settings",
            &PatchParams::apply("intruder"),
            &Patch::Apply(cm(json!({"a": "9"}))),
        )
        .await
        .unwrap_err();
    let (code, reason, message) = api_error(err);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("conflict with \"urumi\"") && message.contains(".data.a"),
        "{message}"
    );
    // Same value: shared ownership, no conflict.
    cms.patch(
        "settings",
        &PatchParams::apply("friend"),
        &Patch::Apply(cm(json!({"b": "2"}))),
    )
    .await
    .unwrap();
    let forced = cms
        .patch(
            "settings",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(cm(json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "9");
    let managers: Vec<String> = forced
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"urumi".into())
            && managers.contains(&"intruder".into())
            && managers.contains(&"friend".into()),
        "{managers:?}"
    );
    // urumi no longer owns `a`: dropping `b` from its config removes only what it alone owned.
    let after = cms
        .patch(
            "settings",
            &PatchParams::apply("urumi"),
            &Patch::Apply(cm(json!({}))),
        )
        .await
        .unwrap();
    let data = after.data.unwrap();
    assert_eq!(data.get("a").map(String::as_str), Some("9"));
    assert_eq!(
        data.get("b").map(String::as_str),
        Some("2"),
        "friend still owns b"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn watches_see_changes_in_order() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm(json!({"a": "1"})))
        .await
        .unwrap();
    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        let (kind, o) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            other => panic!("unexpected {other:?}"),
        };
        seen.push((
            kind,
            o.resource_version().unwrap().parse::<u64>().unwrap(),
            o.data.unwrap()["a"].clone(),
        ));
    }
    assert_eq!(
        seen.iter().map(|s| s.0).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );
    assert!(
        seen[0].1 < seen[1].1 && seen[1].1 < seen[2].1,
        "resourceVersions increase: {seen:?}"
    );
    assert_eq!(seen[1].2, "2");
    // A watch resumed from the first event's version replays the rest.
    let mut replay = cms
        .watch(&WatchParams::default().timeout(5), &seen[0].1.to_string())
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), replay.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Modified(_)));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_update_with_a_stale_resource_version_is_a_conflict() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    let created = cms
        .create(&PostParams::default(), &cm(json!({"a": "1"})))
        .await
        .unwrap();
    let mut fresh = created.clone();
    fresh.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("settings", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let mut stale = created;
    stale.data = Some([("a".to_string(), "3".to_string())].into());
    let (code, reason, message) = api_error(
        cms.replace("settings", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );
    let (code, reason, _) = api_error(
        cms.create(&PostParams::default(), &cm(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_page_with_limit_and_continue_and_filter_by_selectors() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    for i in 0..5 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("cm-{i}"), "labels": {"tier": tier}}})),
        )
        .await
        .unwrap();
    }
    let page1 = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().expect("a continue token");
    let page2 = cms
        .list(&ListParams::default().limit(10).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(page2.items.len(), 3);
    assert!(
        page2
            .metadata
            .continue_
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(
        cms.list(&ListParams::default().labels("tier=even"))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert_eq!(
        cms.list(&ListParams::default().labels("tier in (odd),tier!=even"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    assert_eq!(
        cms.list(&ListParams::default().fields("metadata.name=cm-3"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_terminates_it_and_removes_its_contents() {
    let sim = Simulator::builder()
        .timings(urumi_sim::Timings {
            namespace_finalize_ms: 300,
            ..Default::default()
        })
        .start()
        .await
        .unwrap();
    let c = client_for(&sim, true);
    create_ns(&c, "store-x", json!({})).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "store-x");
    cms.create(&PostParams::default(), &cm(json!({})))
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.delete("store-x", &DeleteParams::default())
        .await
        .unwrap();
    let ns = nss.get("store-x").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(ns.metadata.deletion_timestamp.is_some());
    let (code, reason, message) = api_error(
        cms.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "late"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(
        message.contains("because it is being terminated"),
        "{message}"
    );
    sim.wait_idle(IDLE).await;
    assert_eq!(api_error(nss.get("store-x").await.unwrap_err()).0, 404);
    assert_eq!(api_error(cms.get("settings").await.unwrap_err()).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_they_are_removed() {
    let (sim, c) = start().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "held", "finalizers": ["urumi.io/cleanup"]}})),
    )
    .await
    .unwrap();
    cms.delete("held", &DeleteParams::default()).await.unwrap();
    let held = cms.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_error(cms.get("held").await.unwrap_err()).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn deployments_and_statefulsets_run_pods_that_become_ready() {
    let (sim, c) = start().await;
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let d: Deployment = obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "wordpress"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "wordpress"}}, "template": template("wordpress")}}),
    );
    deploys
        .patch("wordpress", &PatchParams::apply("urumi"), &Patch::Apply(&d))
        .await
        .unwrap();
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(
            deploys.clone(),
            "wordpress",
            conditions::is_deployment_completed(),
        ),
    )
    .await;
    let d = done.expect("in time").unwrap().unwrap();
    let status = d.status.unwrap();
    assert_eq!(status.ready_replicas, Some(2));
    assert_eq!(status.observed_generation, Some(1));
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
    let pods: Api<Pod> = Api::default_namespaced(c.clone());
    let running = pods
        .list(&ListParams::default().labels("app=wordpress"))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 2);
    assert!(
        running
            .items
            .iter()
            .all(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Running"))
    );

    let sts: Api<StatefulSet> = Api::default_namespaced(c.clone());
    let s: StatefulSet = obj(
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "mariadb"},
        "spec": {"serviceName": "mariadb", "selector": {"matchLabels": {"app": "mariadb"}}, "template": template("mariadb"),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}]}}),
    );
    sts.patch("mariadb", &PatchParams::apply("urumi"), &Patch::Apply(&s))
        .await
        .unwrap();
    sim.wait_idle(IDLE).await;
    let s = sts.get("mariadb").await.unwrap();
    assert_eq!(s.status.unwrap().ready_replicas, Some(1));
    assert!(pods.get("mariadb-0").await.is_ok());
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(c);
    assert_eq!(
        pvcs.get("data-mariadb-0")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Bound")
    );

    // Scaling down and a template change replace pods; generation follows the spec.
    let scaled = deploys
        .patch(
            "wordpress",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    sim.wait_idle(IDLE).await;
    assert_eq!(
        pods.list(&ListParams::default().labels("app=wordpress"))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    sim.shutdown().await;
}

/// How many pods labelled `app=<app>` there are once the controllers have settled.
async fn settled_pods(sim: &SimHandle, pods: &Api<Pod>, app: &str) -> usize {
    sim.wait_idle(IDLE).await;
    pods.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .len()
}

/// Waits on a watch for the Deployment's first change to `replicas`.
async fn watched_replicas(
    events: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<Deployment>>> + Unpin),
    replicas: i32,
) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .expect("the watch goes on");
        if let WatchEvent::Modified(d) = ev
            && d.spec.and_then(|s| s.replicas) == Some(replicas)
        {
            return;
        }
    }
}

fn scale_to(mut scale: Scale, replicas: i32) -> Scale {
    scale.spec = Some(ScaleSpec {
        replicas: Some(replicas),
    });
    scale
}

#[tokio::test]
async fn the_scale_subresource_sets_a_deployments_replicas_and_its_pods_follow() {
    let (sim, c) = start().await;
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    let d: Deployment = obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")}}),
    );
    deploys.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(settled_pods(&sim, &pods, "web").await, 2);
    let d = deploys.get("web").await.unwrap();

    let first = deploys.get_scale("web").await.unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("web"));
    assert_eq!(first.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(first.metadata.uid, d.metadata.uid);
    assert_eq!(first.metadata.resource_version, d.metadata.resource_version);
    assert_eq!(
        first.metadata.creation_timestamp,
        d.metadata.creation_timestamp
    );
    assert_eq!(first.spec.as_ref().unwrap().replicas, Some(2));
    let status = first.status.clone().unwrap();
    assert_eq!(
        (status.replicas, status.selector.as_deref()),
        (2, Some("app=web"))
    );

    // A merge patch to 0: only spec.replicas moves; watchers and the controllers see it.
    let mut events = deploys
        .watch(
            &WatchParams::default()
                .fields("metadata.name=web")
                .timeout(10),
            d.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let zero = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    assert_eq!(zero.spec.unwrap().replicas, Some(0));
    assert_ne!(
        zero.metadata.resource_version,
        first.metadata.resource_version
    );
    watched_replicas(&mut events, 0).await;
    assert_eq!(settled_pods(&sim, &pods, "web").await, 0);
    let d0 = deploys.get("web").await.unwrap();
    assert_eq!(d0.spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(d0.spec.as_ref().unwrap().template, d.spec.unwrap().template);
    assert_eq!(
        d0.metadata.generation,
        Some(d.metadata.generation.unwrap() + 1)
    );
    assert!(
        d0.managed_fields()
            .iter()
            .any(|m| m.subresource.as_deref() == Some("scale")
                && m.operation.as_deref() == Some("Update")),
        "{:?}",
        d0.managed_fields()
    );

    // A replace with the first Scale's resourceVersion is stale; a fresh one goes through.
    let stale = deploys
        .replace_scale("web", &PostParams::default(), &scale_to(first, 3))
        .await
        .unwrap_err();
    let (code, reason, _) = api_error(stale);
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let fresh = scale_to(deploys.get_scale("web").await.unwrap(), 3);
    let three = deploys
        .replace_scale("web", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_eq!(three.spec.unwrap().replicas, Some(3));
    assert_eq!(settled_pods(&sim, &pods, "web").await, 3);
    assert_eq!(
        deploys.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );

    let negative = deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await
        .unwrap_err();
    let (code, reason, message) = api_error(negative);
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(message.contains("spec.replicas"), "{message}");
    let (code, _, message) = api_error(deploys.get_scale("nope").await.unwrap_err());
    assert_eq!(code, 404, "{message}");
    assert!(
        message.contains("deployments.apps \"nope\" not found"),
        "{message}"
    );
    let missing = deploys
        .patch_scale(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(missing).0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_scale_subresource_sets_a_statefulsets_replicas() {
    let (sim, c) = start().await;
    let sts: Api<StatefulSet> = Api::default_namespaced(c.clone());
    let pods: Api<Pod> = Api::default_namespaced(c);
    let s: StatefulSet = obj(
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": template("db")}}),
    );
    sts.create(&PostParams::default(), &s).await.unwrap();
    assert_eq!(settled_pods(&sim, &pods, "db").await, 1);
    let scale = sts.get_scale("db").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=db"));

    let three = sts
        .patch_scale(
            "db",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(three.spec.unwrap().replicas, Some(3));
    assert_eq!(settled_pods(&sim, &pods, "db").await, 3);
    assert!(pods.get("db-2").await.is_ok());
    assert_eq!(sts.get("db").await.unwrap().spec.unwrap().replicas, Some(3));
    assert_eq!(api_error(sts.get_scale("nope").await.unwrap_err()).0, 404);
    sim.shutdown().await;
}

fn job(name: &str, backoff: i32) -> Job {
    obj(
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": backoff, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "wp", "image": "wordpress:cli"}]}}}}),
    )
}

#[tokio::test]
async fn jobs_succeed_or_fail_as_scripted_and_keep_a_log() {
    let (sim, c) = start().await;
    sim.script_job(
        None,
        "setup-ok",
        JobScript::succeed("Success: WordPress installed.\n"),
    );
    sim.script_job(
        None,
        "setup-bad",
        JobScript::fail("Error: Error establishing a database connection.\n"),
    );
    sim.script_job(
        None,
        "setup-flaky",
        JobScript::fail_then_succeed(1, "retried\n"),
    );
    let jobs: Api<Job> = Api::default_namespaced(c.clone());
    for name in ["setup-ok", "setup-bad", "setup-flaky"] {
        jobs.create(&PostParams::default(), &job(name, 1))
            .await
            .unwrap();
    }
    sim.wait_idle(IDLE).await;
    let ok = jobs.get("setup-ok").await.unwrap().status.unwrap();
    assert_eq!(ok.succeeded, Some(1));
    assert!(
        ok.conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True")
    );
    let bad = jobs.get("setup-bad").await.unwrap().status.unwrap();
    assert_eq!(bad.failed, Some(2), "backoffLimit 1 means two attempts");
    let failed = bad
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .expect("a Failed condition");
    assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
    let flaky = jobs.get("setup-flaky").await.unwrap().status.unwrap();
    assert_eq!((flaky.failed, flaky.succeeded), (Some(1), Some(1)));

    let pods: Api<Pod> = Api::default_namespaced(c);
    let bad_pods = pods
        .list(&ListParams::default().labels("job-name=setup-bad"))
        .await
        .unwrap();
    let log = pods
        .logs(&bad_pods.items[0].name_any(), &LogParams::default())
        .await
        .unwrap();
    assert!(
        log.contains("Error establishing a database connection"),
        "{log}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn pvcs_bind_services_get_a_cluster_ip_and_ingresses_an_address() {
    let (sim, c) = start().await;
    let pvcs: Api<PersistentVolumeClaim> = Api::default_namespaced(c.clone());
    pvcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "wp"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}))).await.unwrap();
    let svcs: Api<Service> = Api::default_namespaced(c.clone());
    let svc = svcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "wp"}, "spec": {"selector": {"app": "wp"}, "ports": [{"port": 80}]}}))).await.unwrap();
    let ip = svc.spec.unwrap().cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    let ings: Api<Ingress> = Api::default_namespaced(c.clone());
    ings.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": "wp"}, "spec": {"rules": [{"host": "shop.example.com"}]}}),
        ),
    )
    .await
    .unwrap();
    let ready = tokio::time::timeout(
        Duration::from_secs(10),
        await_condition(ings.clone(), "wp", conditions::is_ingress_provisioned()),
    )
    .await;
    assert!(ready.expect("in time").unwrap().is_some());
    sim.wait_idle(IDLE).await;
    let pvc = pvcs.get("wp").await.unwrap();
    assert_eq!(pvc.status.unwrap().phase.as_deref(), Some("Bound"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restricted_namespace_rejects_pods_that_break_it_in_the_api_servers_words() {
    let (sim, c) = start().await;
    create_ns(
        &c,
        "store-r",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "store-r");
    let (code, reason, message) = api_error(
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "bare"}, "spec": pod_spec()})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(message.starts_with("pods \"bare\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false"), "{message}");
    let hardened = json!({"metadata": {"name": "ok"}, "spec": {
        "securityContext": {"runAsNonRoot": true, "runAsUser": 33, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "app", "image": "wordpress", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}});
    pods.create(&PostParams::default(), &obj(hardened))
        .await
        .unwrap();

    // A Deployment with a bad template is accepted, but its pods are refused.
    let deploys: Api<Deployment> = Api::namespaced(c.clone(), "store-r");
    deploys
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")}})))
        .await
        .unwrap();
    sim.wait_idle(IDLE).await;
    let d = deploys.get("web").await.unwrap();
    let failure = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "ReplicaFailure")
        .expect("ReplicaFailure condition");
    assert!(
        failure
            .message
            .unwrap()
            .contains("violates PodSecurity \"restricted:latest\"")
    );
    // Baseline allows the bare pod but not a privileged one.
    create_ns(
        &c,
        "store-b",
        json!({"pod-security.kubernetes.io/enforce": "baseline"}),
    )
    .await;
    let bpods: Api<Pod> = Api::namespaced(c, "store-b");
    bpods
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "bare"}, "spec": pod_spec()})),
        )
        .await
        .unwrap();
    let priv_pod = json!({"metadata": {"name": "priv"}, "spec": {"containers": [{"name": "app", "image": "x", "securityContext": {"privileged": true}}]}});
    let (_, _, message) = api_error(
        bpods
            .create(&PostParams::default(), &obj(priv_pod))
            .await
            .unwrap_err(),
    );
    assert!(message.contains("violates PodSecurity \"baseline:latest\": privileged (container \"app\" must not set securityContext.privileged=true)"), "{message}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_quota_rejects_pods_without_requests_unless_a_limit_range_supplies_defaults() {
    let (sim, c) = start().await;
    create_ns(&c, "store-q", json!({})).await;
    let quotas: Api<ResourceQuota> = Api::namespaced(c.clone(), "store-q");
    quotas
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "store"}, "spec": {"hard": {"pods": "10", "requests.cpu": "1", "requests.memory": "1536Mi", "limits.cpu": "2", "limits.memory": "3Gi"}}})))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "store-q");
    let (code, reason, message) = api_error(
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "p1"}, "spec": pod_spec()})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        "pods \"p1\" is forbidden: failed quota: store: must specify limits.cpu for: app; limits.memory for: app; requests.cpu for: app; requests.memory for: app"
    );
    let lrs: Api<LimitRange> = Api::namespaced(c.clone(), "store-q");
    lrs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "defaults"}, "spec": {"limits": [{"type": "Container",
        "default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "250m", "memory": "256Mi"}}]}})))
        .await
        .unwrap();
    let p = pods
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "p1"}, "spec": pod_spec()})),
        )
        .await
        .unwrap();
    let res = p.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(res.requests.unwrap()["cpu"].0, "250m");
    // Usage is enforced too: 4 x 250m fits in 1 CPU, the fifth does not.
    for i in 2..=4 {
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("p{i}")}, "spec": pod_spec()})),
        )
        .await
        .unwrap();
    }
    let (_, _, message) = api_error(
        pods.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "p5"}, "spec": pod_spec()})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        message.starts_with("pods \"p5\" is forbidden: exceeded quota: store, requested: "),
        "{message}"
    );
    assert!(
        message.contains("requests.cpu=250m")
            && message.contains("used: limits.cpu=2,requests.cpu=1"),
        "{message}"
    );
    sim.wait_idle(IDLE).await;
    let q = quotas.get("store").await.unwrap();
    assert_eq!(q.status.unwrap().used.unwrap()["pods"].0, "4");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_client_without_retries_sees_injected_errors_at_the_configured_rate() {
    let (sim, _) = start().await;
    let c = client_for(&sim, false);
    let cms: Api<ConfigMap> = Api::default_namespaced(c.clone());
    cms.create(&PostParams::default(), &cm(json!({})))
        .await
        .unwrap();
    sim.faults().set(FaultConfig {
        seed: 42,
        rules: vec![
            FaultRule::any()
                .verb("get")
                .resource("configmaps")
                .error(0.3, 503),
        ],
    });
    let mut failures = 0;
    for _ in 0..300 {
        match cms.get("settings").await {
            Ok(_) => {}
            Err(e) => {
                let (code, reason, _) = api_error(e);
                assert_eq!((code, reason.as_str()), (503, "ServiceUnavailable"));
                failures += 1;
            }
        }
    }
    assert!(
        (60..=120).contains(&failures),
        "about 30% of 300 GETs fail, got {failures}"
    );
    // Lists are not matched by a `get` rule.
    cms.list(&ListParams::default()).await.unwrap();
    // A client with kube's default retries rides through the same faults.
    let retrying: Api<ConfigMap> = Api::default_namespaced(client_for(&sim, true));
    for _ in 0..20 {
        retrying.get("settings").await.unwrap();
    }
    // 429 carries Retry-After; a dropped connection is a transport error, not a Status.
    sim.faults().set(FaultConfig {
        seed: 1,
        rules: vec![FaultRule::any().verb("list").error(1.0, 429)],
    });
    let (code, head, status) = raw(
        &sim,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 429);
    assert!(head.to_lowercase().contains("retry-after: 1"), "{head}");
    assert_eq!(status["reason"], "TooManyRequests");
    sim.faults().set(FaultConfig {
        seed: 1,
        rules: vec![FaultRule::any().verb("get").drop_connections(1.0)],
    });
    let err = cms.get("settings").await.unwrap_err();
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    sim.faults().set(FaultConfig {
        seed: 1,
        rules: vec![
            FaultRule::any()
                .verb("get")
                .latency(Duration::from_millis(200)),
        ],
    });
    let t = std::time::Instant::now();
    cms.get("settings").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(200));
    sim.faults().clear();
    let injected = sim
        .request_log()
        .entries()
        .iter()
        .filter(|r| r.injected)
        .count();
    assert!(
        injected >= failures,
        "the request log marks injected faults"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_the_right_status_error_never_a_panic() {
    let (sim, _) = start().await;
    let cases: Vec<(&str, &str, &str, &str, u16, &str)> = vec![
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "{not json",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/yaml",
            "metadata: [unclosed",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "[1,2]",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            "application/json",
            "",
            404,
            "NotFound",
        ),
        (
            "GET",
            "/apis/example.com/v1/things",
            "application/json",
            "",
            404,
            "NotFound",
        ),
        (
            "POST",
            "/api/v1/namespaces",
            "application/json",
            r#"{"metadata":{"name":"Bad_Name"}}"#,
            422,
            "Invalid",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/services",
            "application/json",
            r#"{"metadata":{"name":"1svc"}}"#,
            422,
            "Invalid",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            r#"{"metadata":{}}"#,
            422,
            "Invalid",
        ),
        (
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            "application/json",
            r#"{"metadata":{"name":"a"}}"#,
            404,
            "NotFound",
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"a"}}"#,
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            "application/json",
            r#"{"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"c"}},"spec":{"containers":[]}}}}"#,
            422,
            "Invalid",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/missing",
            "application/merge-patch+json",
            "{}",
            404,
            "NotFound",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            "text/plain",
            "{}",
            415,
            "UnsupportedMediaType",
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            "application/apply-patch+yaml",
            r#"{"apiVersion":"v1","kind":"ConfigMap"}"#,
            422,
            "Invalid",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods?labelSelector=a+in+(b",
            "application/json",
            "",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc",
            "application/json",
            "",
            400,
            "BadRequest",
        ),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (got, _, status) = raw(&sim, method, path, ct, body).await;
        assert_eq!(got, code, "{method} {path} {body}: {status}");
        assert_eq!(status["kind"], "Status", "{method} {path}");
        assert_eq!(status["reason"], reason, "{method} {path}: {status}");
        assert_eq!(status["code"], code);
    }
    let (_, _, status) = raw(
        &sim,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        r#"{"metadata":{"name":"Bad_Name"}}"#,
    )
    .await;
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("a lowercase RFC 1123 label must consist of")
    );
    let (code, _, _) = raw(&sim, "GET", "/version", "application/json", "").await;
    assert_eq!(code, 200, "the server still answers");
    sim.shutdown().await;
}

#[tokio::test]
async fn strategic_merge_json_patch_and_the_status_subresource_work_through_kube() {
    let (sim, c) = start().await;
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    deploys
        .create(&PostParams::default(), &obj(json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template("web")}})))
        .await
        .unwrap();
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}]}]}}}});
    let d = deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(smp))
        .await
        .unwrap();
    let containers = d.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1, "merged by name, not replaced");
    assert_eq!(containers[0].image.as_deref(), Some("nginx:1.27"));
    assert_eq!(containers[0].env.as_ref().unwrap()[0].name, "A");
    let jp = r#"[{"op": "replace", "path": "/spec/replicas", "value": 3}]"#;
    let (code, _, _) = raw(
        &sim,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/json-patch+json",
        jp,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        deploys.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    // Status is ignored on the main resource and written through /status.
    let d = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"collisionCount": 7}})),
        )
        .await
        .unwrap();
    assert_ne!(d.status.unwrap().collision_count, Some(7));
    let d = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"collisionCount": 7}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().collision_count, Some(7));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_kubeconfig_file_works_for_kube_and_snapshots_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("urumi-sim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let snap = dir.join("store.json");
    let _ = std::fs::remove_file(&snap);
    let sim = Simulator::builder()
        .kubeconfig_path(dir.join("kubeconfig"))
        .snapshot(&snap)
        .start()
        .await
        .unwrap();
    let kc = kube::config::Kubeconfig::read_from(sim.kubeconfig_path()).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    let c = Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(c);
    cms.create(&PostParams::default(), &cm(json!({"kept": "yes"})))
        .await
        .unwrap();
    sim.shutdown().await;

    let sim = Simulator::builder().snapshot(&snap).start().await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client_for(&sim, true));
    assert_eq!(
        cms.get("settings").await.unwrap().data.unwrap()["kept"],
        "yes"
    );
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `GET` through the Service proxy subresource: (status, body).
async fn via_proxy(c: &Client, target: &str, path: &str) -> (u16, String) {
    let uri = format!("/api/v1/namespaces/default/services/{target}/proxy{path}");
    let req = http::Request::get(uri).body(Vec::new()).unwrap();
    match c.request_text(req).await {
        Ok(text) => (200, text),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(other) => panic!("transport error: {other}"),
    }
}

#[tokio::test]
async fn the_service_proxy_reaches_a_ready_pod_and_refuses_like_the_api_server_without_one() {
    let (sim, _) = start().await;
    let c = client_for(&sim, false); // see each 503 instead of the client's retries
    let svcs: Api<Service> = Api::default_namespaced(c.clone());
    svcs.create(&PostParams::default(), &obj(json!({"metadata": {"name": "wp"}, "spec": {"selector": {"app": "wp"}, "ports": [{"name": "http", "port": 80}]}}))).await.unwrap();

    // No pod behind the selector yet: 503, in the API server's words.
    let products = "/?rest_route=/wc/store/v1/products&per_page=1";
    assert_eq!(
        via_proxy(&c, "wp:80", products).await,
        (503, "no endpoints available for service \"wp\"".into())
    );

    // A Ready pod: the simulated app answers, by port number or name.
    let deploys: Api<Deployment> = Api::default_namespaced(c.clone());
    let d: Deployment = obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "wp"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "wp"}}, "template": template("wp")}}),
    );
    deploys
        .patch("wp", &PatchParams::apply("urumi"), &Patch::Apply(&d))
        .await
        .unwrap();
    sim.wait_idle(IDLE).await;
    let (code, body) = via_proxy(&c, "wp:80", products).await;
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["sku"], "URUMI-TSHIRT");
    let (code, page) = via_proxy(&c, "http:wp:http", "/shop/").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("<h1>default</h1>") && page.contains("/shop/"),
        "{page}"
    );
    let (code, message) = via_proxy(&c, "wp:81", "/").await;
    assert_eq!(
        (code, message.as_str()),
        (503, "no service port \"81\" found for service \"wp\"")
    );
    assert_eq!(
        via_proxy(&c, "nope:80", "/").await,
        (404, "services \"nope\" not found".into())
    );

    // A fault rule on services/proxy scripts the storefront: 503 until it is removed.
    sim.faults().add(
        FaultRule::any()
            .verb("get")
            .resource("services/proxy")
            .namespace("default")
            .error(1.0, 503),
    );
    assert_eq!(via_proxy(&c, "wp:80", products).await.0, 503);
    let logged = sim.request_log().entries();
    let last = logged.last().unwrap();
    assert_eq!(
        (last.verb.as_str(), last.resource.as_str(), last.injected),
        ("get", "services/proxy", true)
    );
    assert_eq!(last.name.as_deref(), Some("wp:80"));
    sim.faults().clear();
    assert_eq!(via_proxy(&c, "wp:80", products).await.0, 200);

    // Scaled to zero: no endpoints again.
    deploys
        .patch(
            "wp",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    sim.wait_idle(IDLE).await;
    assert_eq!(via_proxy(&c, "wp:80", "/").await.0, 503);
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_lists_the_service_proxy_subresource() {
    let (sim, c) = start().await;
    let core = c.list_core_api_resources("v1").await.unwrap();
    let proxy = core
        .resources
        .iter()
        .find(|r| r.name == "services/proxy")
        .expect("services/proxy is listed");
    assert!(proxy.verbs.iter().any(|v| v == "get"));
    sim.shutdown().await;
}
