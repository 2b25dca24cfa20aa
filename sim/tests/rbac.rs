//! RBAC for bearer-token clients through real kube-rs clients: a ServiceAccount's token from
//! the TokenRequest API (or `SimHandle::service_account_token`) in a kubeconfig from
//! `kubeconfig_with_token`; ClusterRoleBindings and RoleBindings decide what it may do, a
//! refusal is the API server's 403 Forbidden word for word, an unknown token is 401, a
//! server-side apply that creates needs `create`, the scale subresource is checked as
//! `deployments/scale`, and deleting a binding revokes at once.
//! Also: the policy and disruption-budget resources are served and discovered.

mod common;

use common::{admin_client, obj, token_client};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use urumi_sim::{SimHandle, Simulator};

const WORKER: &str = "system:serviceaccount:urumi:urumi-worker";

async fn create<K>(api: &Api<K>, v: Value) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &obj(v))
        .await
        .expect("admin creates")
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Namespaces `urumi`, `store-a`, `store-b` and ServiceAccount `urumi/urumi-worker`.
async fn cluster_with_worker() -> (SimHandle, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let admin = admin_client(&sim);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in ["urumi", "store-a", "store-b"] {
        create(&namespaces, json!({"metadata": {"name": ns}})).await;
    }
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "urumi");
    create(&sas, json!({"metadata": {"name": "urumi-worker"}})).await;
    (sim, admin)
}

async fn cluster_role(admin: &Client, name: &str, rules: Value) {
    let api: Api<ClusterRole> = Api::all(admin.clone());
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules});
    api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&role))
        .await
        .expect("admin applies the ClusterRole");
}

fn worker_subject() -> Value {
    json!([{"kind": "ServiceAccount", "name": "urumi-worker", "namespace": "urumi"}])
}

fn role_ref(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name})
}

#[tokio::test]
async fn a_token_gets_what_its_cluster_role_binding_grants_and_a_403_for_the_rest() {
    let (sim, admin) = cluster_with_worker().await;
    cluster_role(
        &admin,
        "pod-reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
    )
    .await;
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    create(
        &crbs,
        json!({"metadata": {"name": "worker-reads-pods"}, "roleRef": role_ref("pod-reader"), "subjects": worker_subject()}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "store-a");
    create(
        &pods,
        json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "store-a");
    create(
        &secrets,
        json!({"metadata": {"name": "db"}, "stringData": {"password": "x"}}),
    )
    .await;

    // The token comes from the TokenRequest API, asked by the admin over HTTP.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "urumi");
    let tr = sas
        .create_token_request(
            "urumi-worker",
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("token issued");
    let status = tr.status.expect("TokenRequest status");
    assert!(
        status.token.len() >= 32,
        "an opaque random token: {}",
        status.token
    );
    let expires = serde_json::to_value(&status.expiration_timestamp).expect("time serializes");
    let expires = chrono::DateTime::parse_from_rfc3339(expires.as_str().expect("RFC 3339"))
        .expect("RFC 3339 parses");
    assert!(
        expires > chrono::Utc::now() + chrono::Duration::minutes(59),
        "expires in an hour: {expires}"
    );
    let mark = sim.request_log().mark();

    let worker = token_client(&sim, &status.token).await;
    let wpods: Api<Pod> = Api::namespaced(worker.clone(), "store-a");
    let listed = wpods
        .list(&ListParams::default())
        .await
        .expect("worker lists pods");
    assert_eq!(listed.items.len(), 1);
    wpods.get("web").await.expect("worker gets a pod");
    let all_pods: Api<Pod> = Api::all(worker.clone());
    all_pods
        .list(&ListParams::default())
        .await
        .expect("a ClusterRoleBinding grants at the cluster scope too");

    let (code, reason, message) = api_error(
        wpods
            .delete("web", &DeleteParams::default())
            .await
            .expect_err("delete is refused"),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        format!(
            "pods \"web\" is forbidden: User \"{WORKER}\" cannot delete resource \"pods\" in API group \"\" in the namespace \"store-a\""
        )
    );
    let wsecrets: Api<Secret> = Api::namespaced(worker.clone(), "store-a");
    let (code, _, message) = api_error(wsecrets.get("db").await.expect_err("secrets are refused"));
    assert_eq!(code, 403);
    assert_eq!(
        message,
        format!(
            "secrets \"db\" is forbidden: User \"{WORKER}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"store-a\""
        )
    );
    let roles: Api<ClusterRole> = Api::all(worker.clone());
    let (code, _, message) = api_error(
        roles
            .list(&ListParams::default())
            .await
            .expect_err("clusterroles are refused"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        format!(
            "clusterroles.rbac.authorization.k8s.io is forbidden: User \"{WORKER}\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
        )
    );

    // Discovery is open to every authenticated user; the simulator's admin routes are not.
    worker
        .apiserver_version()
        .await
        .expect("worker reads /version");
    worker.list_api_groups().await.expect("worker reads /apis");
    let admin_route = http::Request::get("/_sim/faults")
        .body(Vec::new())
        .expect("request builds");
    let (code, _, message) = api_error(
        worker
            .request_text(admin_route)
            .await
            .expect_err("admin routes are refused"),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            format!("forbidden: User \"{WORKER}\" cannot get path \"/_sim/faults\"").as_str()
        )
    );

    // The log says who did what; a refusal is logged with its 403, never as injected.
    let log = sim.request_log().since(mark);
    let refused = log
        .iter()
        .find(|r| r.verb == "delete" && r.resource == "pods")
        .expect("the refused delete is logged");
    assert_eq!(
        (refused.status, refused.injected, refused.user.as_deref()),
        (403, false, Some(WORKER))
    );
    assert!(
        log.iter()
            .any(|r| r.verb == "list" && r.status == 200 && r.user.as_deref() == Some(WORKER))
    );
    let before = sim.request_log().mark();
    admin
        .apiserver_version()
        .await
        .expect("admin reads /version");
    assert_eq!(
        sim.request_log().since(before)[0].user.as_deref(),
        Some("system:admin")
    );

    // Deleting the binding revokes at once; deleting the account makes the token unknown.
    crbs.delete("worker-reads-pods", &DeleteParams::default())
        .await
        .expect("admin deletes the binding");
    let (code, _, message) = api_error(
        wpods
            .list(&ListParams::default())
            .await
            .expect_err("access revoked"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        format!(
            "pods is forbidden: User \"{WORKER}\" cannot list resource \"pods\" in API group \"\" in the namespace \"store-a\""
        )
    );
    sas.delete("urumi-worker", &DeleteParams::default())
        .await
        .expect("admin deletes the account");
    let (code, reason, message) = api_error(
        wpods
            .list(&ListParams::default())
            .await
            .expect_err("token dead"),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_tokens_are_401_and_a_token_for_a_missing_account_is_404() {
    let (sim, admin) = cluster_with_worker().await;
    let stranger = token_client(&sim, "not-a-token-the-simulator-issued").await;
    let pods: Api<Pod> = Api::namespaced(stranger, "store-a");
    let (code, reason, message) = api_error(
        pods.list(&ListParams::default())
            .await
            .expect_err("unknown token"),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    let logged = sim.request_log().entries();
    let last = logged.last().expect("the 401 is logged");
    assert_eq!((last.status, last.user.as_deref()), (401, None));

    let sas: Api<ServiceAccount> = Api::namespaced(admin, "urumi");
    let (code, reason, message) = api_error(
        sas.create_token_request("ghost", &PostParams::default(), &TokenRequest::default())
            .await
            .expect_err("no such account"),
    );
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "serviceaccounts \"ghost\" not found")
    );
    let e = sim
        .service_account_token("urumi", "ghost")
        .await
        .expect_err("no such account");
    assert!(
        e.to_string()
            .contains("serviceaccounts \"ghost\" not found"),
        "{e}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_role_binding_to_a_cluster_role_grants_only_in_its_own_namespace() {
    let (sim, admin) = cluster_with_worker().await;
    cluster_role(
        &admin,
        "configmap-editor",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]),
    )
    .await;
    let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), "store-a");
    create(
        &rbs,
        json!({"metadata": {"name": "worker-edits-config"}, "roleRef": role_ref("configmap-editor"), "subjects": worker_subject()}),
    )
    .await;
    let token = sim
        .service_account_token("urumi", "urumi-worker")
        .await
        .expect("token issued");
    let worker = token_client(&sim, &token).await;
    let in_a: Api<ConfigMap> = Api::namespaced(worker.clone(), "store-a");
    create(
        &in_a,
        json!({"metadata": {"name": "settings"}, "data": {"k": "v"}}),
    )
    .await;
    in_a.delete("settings", &DeleteParams::default())
        .await
        .expect("worker deletes in store-a");
    let in_b: Api<ConfigMap> = Api::namespaced(worker.clone(), "store-b");
    let (code, _, message) = api_error(
        in_b.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "settings"}})),
        )
        .await
        .expect_err("refused in store-b"),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        format!(
            "configmaps is forbidden: User \"{WORKER}\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"store-b\""
        )
    );
    let everywhere: Api<ConfigMap> = Api::all(worker);
    let (code, _, _) = api_error(
        everywhere
            .list(&ListParams::default())
            .await
            .expect_err("not at the cluster scope"),
    );
    assert_eq!(code, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_that_creates_needs_create_besides_patch() {
    let (sim, admin) = cluster_with_worker().await;
    cluster_role(
        &admin,
        "configmap-patcher",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]),
    )
    .await;
    let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), "store-a");
    create(
        &rbs,
        json!({"metadata": {"name": "worker-patches-config"}, "roleRef": role_ref("configmap-patcher"), "subjects": worker_subject()}),
    )
    .await;
    let token = sim
        .service_account_token("urumi", "urumi-worker")
        .await
        .expect("token issued");
    let worker = token_client(&sim, &token).await;
    let cms: Api<ConfigMap> = Api::namespaced(worker, "store-a");
    let apply = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"k": v}});
    let pp = PatchParams::apply("urumi-worker");
    let (code, reason, message) = api_error(
        cms.patch("settings", &pp, &Patch::Apply(apply("1")))
            .await
            .expect_err("creating by apply needs create"),
    );
    // The real server's create-on-update refusal: NewForbidden with the authorizer's (empty) reason.
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (403, "Forbidden", "configmaps \"settings\" is forbidden: ")
    );
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "store-a");
    assert!(
        admin_cms
            .get_opt("settings")
            .await
            .expect("admin reads")
            .is_none(),
        "nothing was created"
    );

    cluster_role(
        &admin,
        "configmap-patcher",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch", "create"]}]),
    )
    .await;
    let made = cms
        .patch("settings", &pp, &Patch::Apply(apply("1")))
        .await
        .expect("apply creates with create");
    assert_eq!(made.data.expect("data")["k"], "1");

    // Once it exists, patch alone is enough again.
    cluster_role(
        &admin,
        "configmap-patcher",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]),
    )
    .await;
    let changed = cms
        .patch("settings", &pp, &Patch::Apply(apply("2")))
        .await
        .expect("apply updates with patch");
    assert_eq!(changed.data.expect("data")["k"], "2");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_scale_subresource_is_authorized_as_deployments_scale() {
    use k8s_openapi::api::apps::v1::Deployment;
    let (sim, admin) = cluster_with_worker().await;
    let scaler = |verbs: Value| json!([{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": verbs}]);
    cluster_role(&admin, "scaler", scaler(json!(["get", "patch"]))).await;
    let rbs: Api<RoleBinding> = Api::namespaced(admin.clone(), "store-a");
    create(
        &rbs,
        json!({"metadata": {"name": "worker-scales"}, "roleRef": role_ref("scaler"), "subjects": worker_subject()}),
    )
    .await;
    let admin_deploys: Api<Deployment> = Api::namespaced(admin.clone(), "store-a");
    create(
        &admin_deploys,
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}),
    )
    .await;
    let token = sim
        .service_account_token("urumi", "urumi-worker")
        .await
        .expect("token issued");
    let deploys: Api<Deployment> = Api::namespaced(token_client(&sim, &token).await, "store-a");
    let zero = Patch::Merge(json!({"spec": {"replicas": 0}}));

    let scale = deploys
        .get_scale("web")
        .await
        .expect("get deployments/scale");
    assert_eq!(scale.spec.expect("spec").replicas, Some(1));
    deploys
        .patch_scale("web", &PatchParams::default(), &zero)
        .await
        .expect("patch deployments/scale");
    let (code, _, message) = api_error(
        deploys
            .replace_scale("web", &PostParams::default(), &scale_of(0))
            .await
            .expect_err("no update on deployments/scale"),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:urumi:urumi-worker\" cannot update resource \"deployments/scale\" in API group \"apps\" in the namespace \"store-a\""
        )
    );
    let (code, _, _) = api_error(deploys.get("web").await.expect_err("no get on deployments"));
    assert_eq!(code, 403);

    // `deployments` alone does not grant its scale subresource.
    cluster_role(
        &admin,
        "scaler",
        json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}]),
    )
    .await;
    let (code, _, message) = api_error(
        deploys
            .patch_scale("web", &PatchParams::default(), &zero)
            .await
            .expect_err("deployments does not cover deployments/scale"),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains("cannot patch resource \"deployments/scale\""),
        "{message}"
    );
    sim.shutdown().await;
}

fn scale_of(replicas: i32) -> k8s_openapi::api::autoscaling::v1::Scale {
    obj(json!({"metadata": {"name": "web"}, "spec": {"replicas": replicas}}))
}

#[tokio::test]
async fn policies_and_disruption_budgets_are_stored_and_discovered() {
    use k8s_openapi::api::admissionregistration::v1::{
        ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    };
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let (sim, admin) = cluster_with_worker().await;
    let groups = admin.list_api_groups().await.expect("admin reads /apis");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    for g in [
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
        "policy",
    ] {
        assert!(names.contains(&g), "{g} in {names:?}");
    }
    let core = admin
        .list_core_api_resources("v1")
        .await
        .expect("admin reads /api/v1");
    assert!(
        core.resources
            .iter()
            .any(|r| r.name == "serviceaccounts/token")
    );

    let vaps: Api<ValidatingAdmissionPolicy> = Api::all(admin.clone());
    create(
        &vaps,
        json!({"metadata": {"name": "no-host-network"}, "spec": {"validations": [{"expression": "!object.spec.hostNetwork"}]}}),
    )
    .await;
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(admin.clone());
    create(
        &bindings,
        json!({"metadata": {"name": "no-host-network"}, "spec": {"policyName": "no-host-network", "validationActions": ["Deny"]}}),
    )
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), "store-a");
    create(
        &pdbs,
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    assert_eq!(
        vaps.list(&ListParams::default())
            .await
            .expect("listed")
            .items
            .len(),
        1
    );
    assert_eq!(
        bindings
            .get("no-host-network")
            .await
            .expect("got")
            .spec
            .expect("spec")
            .policy_name
            .as_deref(),
        Some("no-host-network")
    );
    pdbs.delete("web", &DeleteParams::default())
        .await
        .expect("deleted");
    assert!(pdbs.get_opt("web").await.expect("read").is_none());
    sim.shutdown().await;
}
