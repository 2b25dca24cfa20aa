//! What helm v4 asks of the simulator when it installs, upgrades, rolls back and uninstalls
//! helm/urumi (scripts/check-helm-install.sh drives the real helm): autoscaling/v2
//! HorizontalPodAutoscalers served and discoverable next to the group's other versions;
//! ReplicaSets listable (kstatus reads a Deployment's for `--wait`); the protobuf bodies of
//! typed client-go clients (release Secrets, their DeleteOptions, `kubectl create token`'s
//! TokenRequest) accepted as the real server accepts them; `--create-namespace` applying
//! `spec: {}` to a namespace kubectl created.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use urumi_sim::{SimHandle, Simulator};

async fn start() -> (SimHandle, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let client = Client::try_from(kube::Config::new(sim.url().parse().expect("url parses")))
        .expect("client builds");
    (sim, client)
}

async fn get_json(client: &Client, path: &str) -> Value {
    let req = http::Request::get(path)
        .body(Vec::new())
        .expect("request builds");
    client
        .request::<Value>(req)
        .await
        .expect("GET answers JSON")
}

#[tokio::test]
async fn autoscaling_v2_is_discoverable_and_horizontal_pod_autoscalers_are_served() {
    let (sim, client) = start().await;
    let groups = get_json(&client, "/apis").await;
    let autoscaling = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .expect("the autoscaling group is listed");
    assert_eq!(
        autoscaling["preferredVersion"]["groupVersion"],
        "autoscaling/v2"
    );
    let list = get_json(&client, "/apis/autoscaling/v2").await;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status"
        ]
    );
    // The groups served at v1 still say v1.
    let policy = get_json(&client, "/apis/policy").await;
    assert_eq!(policy["preferredVersion"]["groupVersion"], "policy/v1");

    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "worker"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
                 "minReplicas": 2, "maxReplicas": 6},
    });
    let made = api
        .patch(
            "worker",
            &PatchParams::apply("helm").force(),
            &Patch::Apply(&hpa),
        )
        .await
        .expect("apply creates the autoscaler");
    assert_eq!(made.metadata.generation, Some(1));
    let got = api.get("worker").await.expect("get");
    assert_eq!(got.uid(), made.uid());
    assert_eq!(got.spec.expect("spec").max_replicas, 6);
    api.delete("worker", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("worker").await.expect("get_opt").is_none());
    sim.shutdown().await;
}

/// A protobuf message field (`n`, length-delimited).
fn field(n: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![
        n << 3 | 2,
        u8::try_from(payload.len()).expect("short payload"),
    ];
    out.extend_from_slice(payload);
    out
}

/// `k8s\0` + runtime.Unknown{TypeMeta{apiVersion, kind}, raw}: how client-go frames protobuf.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

async fn send(client: &Client, method: &str, path: &str, body: Vec<u8>) -> Value {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", "application/vnd.kubernetes.protobuf")
        .header(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )
        .body(body)
        .expect("request builds");
    client.request::<Value>(req).await.expect("answered")
}

#[tokio::test]
async fn protobuf_secrets_token_requests_and_delete_options_are_accepted() {
    let (sim, client) = start().await;
    let labels = [field(1, b"owner"), field(2, b"helm")].concat();
    let meta = [field(1, b"sh.helm.release.v1.urumi.v1"), field(11, &labels)].concat();
    let data = [field(1, b"release"), field(2, b"H4sI")].concat();
    let secret = [
        field(1, &meta),
        field(2, &data),
        field(3, b"helm.sh/release.v1"),
    ]
    .concat();
    let made = send(
        &client,
        "POST",
        "/api/v1/namespaces/default/secrets",
        envelope("v1", "Secret", &secret),
    )
    .await;
    assert_eq!(made["metadata"]["labels"]["owner"], "helm");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let got = secrets
        .get("sh.helm.release.v1.urumi.v1")
        .await
        .expect("stored");
    assert_eq!(got.type_.as_deref(), Some("helm.sh/release.v1"));
    assert_eq!(got.data.expect("data")["release"].0, b"H4sI");

    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "w"}});
    let req = http::Request::post("/api/v1/namespaces/default/serviceaccounts")
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&sa).expect("serializes"))
        .expect("request builds");
    client.request::<Value>(req).await.expect("account created");
    let token = send(
        &client,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/w/token",
        envelope("authentication.k8s.io/v1", "TokenRequest", &field(2, &[])),
    )
    .await;
    assert!(
        token["status"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let options = field(4, b"Background");
    send(
        &client,
        "DELETE",
        "/api/v1/namespaces/default/secrets/sh.helm.release.v1.urumi.v1",
        envelope("v1", "DeleteOptions", &options),
    )
    .await;
    assert!(
        secrets
            .get_opt("sh.helm.release.v1.urumi.v1")
            .await
            .expect("get_opt")
            .is_none()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn replicasets_are_listable_for_a_deployments_status_readers() {
    let (sim, client) = start().await;
    let list = get_json(
        &client,
        "/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3Dweb",
    )
    .await;
    assert_eq!(list["kind"], "ReplicaSetList");
    assert_eq!(list["items"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn applying_an_empty_spec_to_a_namespace_created_by_another_manager_does_not_conflict() {
    let (sim, client) = start().await;
    let api: Api<Namespace> = Api::all(client);
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "urumi-system"}, "spec": {}, "status": {}}),
    )
    .expect("namespace");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("created");
    // What `helm install --create-namespace` applies (without force).
    let cfg = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "urumi-system"}, "spec": {}});
    let applied = api
        .patch(
            "urumi-system",
            &PatchParams::apply("helm"),
            &Patch::Apply(&cfg),
        )
        .await
        .expect("no conflict on .spec");
    assert_eq!(
        applied.spec.and_then(|s| s.finalizers),
        Some(vec!["kubernetes".to_string()])
    );
    sim.shutdown().await;
}
