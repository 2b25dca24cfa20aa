//! ValidatingAdmissionPolicies through real kube-rs clients: the policy the Urumi chart
//! ships (read from its YAML text) confines the worker's ServiceAccount to store namespaces
//! and what is in them, whatever its RBAC allows; refusals are the API server's 403 word
//! for word; the admin is not affected.

mod common;

use common::{admin_client, obj, token_client};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use urumi_sim::{SimHandle, Simulator};

/// The policy and binding exactly as the Urumi chart ships them.
const POLICY_YAML: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: urumi-system-urumi-worker-stores-only}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["*"]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE, DELETE]
        resources: ["*", "*/*"]
  matchConditions:
    - name: urumi-worker
      expression: request.userInfo.username == "system:serviceaccount:urumi-system:urumi-worker"
  variables:
    - name: target
      expression: >-
        request.resource.resource == "namespaces"
          ? (request.operation == "DELETE" ? oldObject : object)
          : namespaceObject
    - name: before
      expression: >-
        request.resource.resource == "namespaces" && request.operation == "UPDATE"
          ? oldObject
          : null
  validations:
    - expression: >-
        variables.target != null
          && has(variables.target.metadata.labels)
          && "urumi.io/store-id" in variables.target.metadata.labels
          && "app.kubernetes.io/managed-by" in variables.target.metadata.labels
          && variables.target.metadata.labels["app.kubernetes.io/managed-by"] == "urumi"
      message: the Urumi worker may only change store namespaces (labelled app.kubernetes.io/managed-by=urumi and urumi.io/store-id) and what is in them
      reason: Forbidden
    - expression: >-
        variables.before == null
          || (has(variables.before.metadata.labels)
              && "urumi.io/store-id" in variables.before.metadata.labels
              && "app.kubernetes.io/managed-by" in variables.before.metadata.labels
              && variables.before.metadata.labels["app.kubernetes.io/managed-by"] == "urumi")
      message: the Urumi worker may not make an existing namespace a store namespace
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: urumi-system-urumi-worker-stores-only}
spec:
  policyName: urumi-system-urumi-worker-stores-only
  validationActions: [Deny]
"#;

const DENIED: &str = "is forbidden: ValidatingAdmissionPolicy 'urumi-system-urumi-worker-stores-only' with binding 'urumi-system-urumi-worker-stores-only' denied request: the Urumi worker may only change store namespaces (labelled app.kubernetes.io/managed-by=urumi and urumi.io/store-id) and what is in them";

async fn create<K>(api: &Api<K>, v: Value) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &obj(v)).await
}

/// The 403 of the policy for `<resource> "<name>"`.
#[track_caller]
fn assert_denied<T: std::fmt::Debug>(r: Result<T, kube::Error>, what: &str) {
    match r {
        Err(kube::Error::Api(s)) => {
            assert_eq!(
                (s.code, s.reason.as_str()),
                (403, "Forbidden"),
                "{}",
                s.message
            );
            assert_eq!(s.message, format!("{what} {DENIED}"));
        }
        other => panic!("expected the policy's 403 for {what}, got {other:?}"),
    }
}

fn store_namespace(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "urumi", "urumi.io/store-id": name}}})
}

fn config_map(name: &str) -> Value {
    json!({"metadata": {"name": name}, "data": {"k": "v"}})
}

/// A simulator with the chart's policy, namespace `plain` (unlabelled), the worker's
/// ServiceAccount allowed everything by RBAC, and the admin's and the worker's clients.
async fn cluster() -> (SimHandle, Client, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let admin = admin_client(&sim);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in ["urumi-system", "plain"] {
        create(&namespaces, json!({"metadata": {"name": ns}}))
            .await
            .unwrap();
    }
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "urumi-system");
    create(&sas, json!({"metadata": {"name": "urumi-worker"}}))
        .await
        .unwrap();
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    create(
        &roles,
        json!({"metadata": {"name": "everything"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    )
    .await
    .unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    create(
        &crbs,
        json!({"metadata": {"name": "worker-everything"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "everything"},
               "subjects": [{"kind": "ServiceAccount", "name": "urumi-worker", "namespace": "urumi-system"}]}),
    )
    .await
    .unwrap();

    let docs: Vec<Value> = serde_saphyr::from_multiple(POLICY_YAML).expect("policy YAML parses");
    assert_eq!(docs.len(), 2);
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(admin.clone());
    create(&policies, docs[0].clone()).await.unwrap();
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(admin.clone());
    create(&bindings, docs[1].clone()).await.unwrap();

    let token = sim
        .service_account_token("urumi-system", "urumi-worker")
        .await
        .expect("token issued");
    let worker = token_client(&sim, &token).await;
    (sim, admin, worker)
}

#[tokio::test]
async fn the_worker_may_create_store_namespaces_only() {
    let (_sim, _admin, worker) = cluster().await;
    let namespaces: Api<Namespace> = Api::all(worker.clone());
    create(&namespaces, store_namespace("store-a"))
        .await
        .expect("a labelled store namespace is allowed");
    assert_denied(
        create(&namespaces, json!({"metadata": {"name": "rogue"}})).await,
        "namespaces \"rogue\"",
    );
    // Half the labels is not a store namespace (the policy checks that each key is there,
    // so the answer is its own 403, not a CEL "no such key" error).
    let half = json!({"metadata": {"name": "half", "labels": {"urumi.io/store-id": "half"}}});
    assert_denied(create(&namespaces, half).await, "namespaces \"half\"");
}

#[tokio::test]
async fn the_worker_may_not_make_an_existing_namespace_a_store_namespace() {
    let (_sim, _admin, worker) = cluster().await;
    let namespaces: Api<Namespace> = Api::all(worker.clone());
    // `plain` exists without labels: labelling it as a store's is refused by the second
    // validation, so the worker cannot adopt a namespace and then act inside it.
    let applied = |name: &str| {
        let mut v = store_namespace(name);
        v["apiVersion"] = json!("v1");
        v["kind"] = json!("Namespace");
        v
    };
    let r = namespaces
        .patch(
            "plain",
            &kube::api::PatchParams::apply("urumi").force(),
            &kube::api::Patch::Apply(&applied("plain")),
        )
        .await;
    match r {
        Err(kube::Error::Api(s)) => {
            assert_eq!(
                (s.code, s.reason.as_str()),
                (403, "Forbidden"),
                "{}",
                s.message
            );
            assert_eq!(
                s.message,
                "namespaces \"plain\" is forbidden: ValidatingAdmissionPolicy 'urumi-system-urumi-worker-stores-only' with binding 'urumi-system-urumi-worker-stores-only' denied request: the Urumi worker may not make an existing namespace a store namespace"
            );
        }
        other => panic!("expected the policy's 403, got {other:?}"),
    }
    // A store namespace it made can be applied again (a repair).
    create(&namespaces, store_namespace("store-b"))
        .await
        .unwrap();
    namespaces
        .patch(
            "store-b",
            &kube::api::PatchParams::apply("urumi").force(),
            &kube::api::Patch::Apply(&applied("store-b")),
        )
        .await
        .expect("re-applying a store namespace is allowed");
}

#[tokio::test]
async fn the_worker_may_write_inside_store_namespaces_only() {
    let (_sim, _admin, worker) = cluster().await;
    let namespaces: Api<Namespace> = Api::all(worker.clone());
    create(&namespaces, store_namespace("store-a"))
        .await
        .unwrap();

    let in_store: Api<ConfigMap> = Api::namespaced(worker.clone(), "store-a");
    create(&in_store, config_map("settings"))
        .await
        .expect("a ConfigMap in a store namespace is allowed");
    let mut cm: ConfigMap = in_store.get("settings").await.unwrap();
    cm.data = Some([("k".to_string(), "w".to_string())].into());
    in_store
        .replace("settings", &PostParams::default(), &cm)
        .await
        .expect("an update in a store namespace is allowed");

    let in_default: Api<ConfigMap> = Api::namespaced(worker.clone(), "default");
    assert_denied(
        create(&in_default, config_map("settings")).await,
        "configmaps \"settings\"",
    );
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    assert_denied(
        in_default.create(&dry, &obj(config_map("dry"))).await,
        "configmaps \"dry\"",
    );

    // Server-side apply: refused where it would create in an unlabelled namespace,
    // allowed (creating, then updating) in a store namespace.
    let apply = PatchParams::apply("urumi-worker");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}});
    let in_plain: Api<ConfigMap> = Api::namespaced(worker.clone(), "plain");
    assert_denied(
        in_plain
            .patch("applied", &apply, &Patch::Apply(&applied))
            .await,
        "configmaps \"applied\"",
    );
    for _ in 0..2 {
        in_store
            .patch("applied", &apply, &Patch::Apply(&applied))
            .await
            .expect("apply in a store namespace is allowed");
    }
}

#[tokio::test]
async fn the_worker_may_delete_store_namespaces_only() {
    let (_sim, _admin, worker) = cluster().await;
    let namespaces: Api<Namespace> = Api::all(worker.clone());
    create(&namespaces, store_namespace("store-a"))
        .await
        .unwrap();
    namespaces
        .delete("store-a", &DeleteParams::default())
        .await
        .expect("deleting a store namespace is allowed");
    assert_denied(
        namespaces.delete("default", &DeleteParams::default()).await,
        "namespaces \"default\"",
    );
    assert_denied(
        namespaces.delete("plain", &DeleteParams::default()).await,
        "namespaces \"plain\"",
    );
}

#[tokio::test]
async fn the_worker_may_not_create_cluster_scoped_objects() {
    let (_sim, _admin, worker) = cluster().await;
    let roles: Api<ClusterRole> = Api::all(worker.clone());
    assert_denied(
        create(&roles, json!({"metadata": {"name": "mine"}, "rules": []})).await,
        "clusterroles.rbac.authorization.k8s.io \"mine\"",
    );
}

#[tokio::test]
async fn the_admin_is_not_affected() {
    let (_sim, admin, _worker) = cluster().await;
    let in_default: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    create(&in_default, config_map("admin-settings"))
        .await
        .expect("the admin writes anywhere");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    create(&namespaces, json!({"metadata": {"name": "admin-made"}}))
        .await
        .expect("the admin creates unlabelled namespaces");
    namespaces
        .delete("plain", &DeleteParams::default())
        .await
        .expect("the admin deletes unlabelled namespaces");
    let roles: Api<ClusterRole> = Api::all(admin);
    create(
        &roles,
        json!({"metadata": {"name": "admin-role"}, "rules": []}),
    )
    .await
    .expect("the admin creates cluster-scoped objects");
}
