//! The resource types the simulator serves, and the discovery documents built from them.

use serde_json::{Value, json};

/// How object names of a resource are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces).
    Label,
    /// RFC 1035 label (services).
    Dns1035,
    /// Any name usable as a path segment (RBAC objects: `system:controller:foo` is valid).
    PathSegment,
}

/// One served resource (a group/version/plural).
#[derive(Debug)]
pub struct ResourceType {
    /// API group ("" for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural name used in paths.
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Has a `status` subresource (status is ignored on main-resource writes).
    pub status: bool,
    /// Tracks `metadata.generation` on spec changes.
    pub generation: bool,
    /// Name validation.
    pub name_rule: NameRule,
    /// Belongs to the `all` category.
    pub all: bool,
}

impl ResourceType {
    /// `apiVersion` of the objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for core: how error messages name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

macro_rules! rt {
    ($g:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $status:expr, $gen:expr, $rule:expr, $all:expr) => {
        rt!(
            $g, "v1", $p, $s, $k, $ns, $short, $status, $gen, $rule, $all
        )
    };
    ($g:expr, $v:expr, $p:expr, $s:expr, $k:expr, $ns:expr, $short:expr, $status:expr, $gen:expr, $rule:expr, $all:expr) => {
        ResourceType {
            group: $g,
            version: $v,
            plural: $p,
            singular: $s,
            kind: $k,
            namespaced: $ns,
            short_names: $short,
            status: $status,
            generation: $gen,
            name_rule: $rule,
            all: $all,
        }
    };
}

use NameRule::{Dns1035, Label, PathSegment, Subdomain};

/// Every served resource; the index constants below point into it.
pub static RESOURCES: &[ResourceType] = &[
    rt!(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
        false,
        Label,
        false
    ),
    rt!(
        "",
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        false,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
        false,
        Dns1035,
        true
    ),
    rt!(
        "",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        true,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        true,
        true,
        Subdomain,
        true
    ),
    rt!(
        "",
        "resourcequotas",
        "resourcequota",
        "ResourceQuota",
        true,
        &["quota"],
        true,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "limitranges",
        "limitrange",
        "LimitRange",
        true,
        &["limits"],
        false,
        false,
        Subdomain,
        false
    ),
    rt!(
        "",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        false,
        false,
        Subdomain,
        false
    ),
    rt!(
        "apps",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
        Subdomain,
        true
    ),
    rt!(
        "apps",
        "statefulsets",
        "statefulset",
        "StatefulSet",
        true,
        &["sts"],
        true,
        true,
        Subdomain,
        true
    ),
    rt!(
        "batch",
        "jobs",
        "job",
        "Job",
        true,
        &[],
        true,
        true,
        Subdomain,
        true
    ),
    rt!(
        "networking.k8s.io",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
        true,
        Subdomain,
        false
    ),
    rt!(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        true,
        true,
        Subdomain,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        false,
        false,
        PathSegment,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
        PathSegment,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        &[],
        false,
        false,
        PathSegment,
        false
    ),
    rt!(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        false,
        false,
        PathSegment,
        false
    ),
    rt!(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        "ValidatingAdmissionPolicy",
        false,
        &[],
        true,
        true,
        Subdomain,
        false
    ),
    rt!(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        "ValidatingAdmissionPolicyBinding",
        false,
        &[],
        false,
        true,
        Subdomain,
        false
    ),
    rt!(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        true,
        Subdomain,
        false
    ),
    // Served so that clients which read a Deployment's ReplicaSets (helm --wait's kstatus
    // readers) find the resource; the simulated Deployment controller creates none.
    rt!(
        "apps",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
        Subdomain,
        true
    ),
    rt!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        "HorizontalPodAutoscaler",
        true,
        &["hpa"],
        true,
        true,
        Subdomain,
        true
    ),
];

/// Index of namespaces in [`RESOURCES`].
pub const NAMESPACES: usize = 0;
/// Index of secrets.
pub const SECRETS: usize = 1;
/// Index of configmaps.
pub const CONFIGMAPS: usize = 2;
/// Index of services.
pub const SERVICES: usize = 3;
/// Index of serviceaccounts.
pub const SERVICEACCOUNTS: usize = 4;
/// Index of persistentvolumeclaims.
pub const PVCS: usize = 5;
/// Index of pods.
pub const PODS: usize = 6;
/// Index of resourcequotas.
pub const QUOTAS: usize = 7;
/// Index of limitranges.
pub const LIMITRANGES: usize = 8;
/// Index of events.
pub const EVENTS: usize = 9;
/// Index of deployments.
pub const DEPLOYMENTS: usize = 10;
/// Index of statefulsets.
pub const STATEFULSETS: usize = 11;
/// Index of jobs.
pub const JOBS: usize = 12;
/// Index of ingresses.
pub const INGRESSES: usize = 14;
/// Index of clusterroles.
pub const CLUSTERROLES: usize = 15;
/// Index of clusterrolebindings.
pub const CLUSTERROLEBINDINGS: usize = 16;
/// Index of roles.
pub const ROLES: usize = 17;
/// Index of rolebindings.
pub const ROLEBINDINGS: usize = 18;
/// Index of validatingadmissionpolicies.
pub const VAPS: usize = 19;
/// Index of validatingadmissionpolicybindings.
pub const VAP_BINDINGS: usize = 20;
/// Index of poddisruptionbudgets.
pub const PDBS: usize = 21;
/// Index of replicasets.
pub const REPLICASETS: usize = 22;
/// Index of horizontalpodautoscalers (autoscaling/v2).
pub const HPAS: usize = 23;

/// Finds a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by `apiVersion` and `kind` (used for owner references and snapshots).
pub fn find_kind(api_version: &str, kind: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.api_version() == api_version && r.kind == kind)
}

/// Served API groups (non-core) in discovery order.
fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !gs.contains(&r.group) {
            gs.push(r.group);
        }
    }
    gs
}

/// `true` when the group/version is served.
pub fn has_group_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }]
    })
}

/// A group's discovery entry: the versions its resources are served at (the first one
/// listed in [`RESOURCES`] preferred).
fn group_doc(g: &str) -> Value {
    let mut versions: Vec<&str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == g) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    let gvs: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{g}/{v}"), "version": v }))
        .collect();
    json!({ "name": g, "versions": gvs, "preferredVersion": gvs[0] })
}

/// `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(group_doc).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/<group>`.
pub fn api_group(group: &str) -> Option<Value> {
    if !groups().contains(&group) {
        return None;
    }
    let mut d = group_doc(group);
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn api_resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut verbs = vec![
            "create", "delete", "get", "list", "patch", "update", "watch",
        ];
        if r.plural != "namespaces" {
            verbs.insert(1, "deletecollection");
        }
        let mut doc = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        });
        if !r.short_names.is_empty() {
            doc["shortNames"] = json!(r.short_names);
        }
        if r.all {
            doc["categories"] = json!(["all"]);
        }
        resources.push(doc);
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "deployments" || r.plural == "statefulsets" {
            resources.push(json!({
                "name": format!("{}/scale", r.plural), "singularName": "", "namespaced": true, "kind": "Scale",
                "group": "autoscaling", "version": "v1", "verbs": ["get", "patch", "update"],
            }));
        }
        if r.plural == "services" {
            resources.push(json!({
                "name": "services/proxy", "singularName": "", "namespaced": true, "kind": "ServiceProxyOptions",
                "verbs": ["create", "delete", "get", "patch", "update"],
            }));
        }
        if r.plural == "serviceaccounts" {
            resources.push(json!({
                "name": "serviceaccounts/token", "singularName": "", "namespaced": true, "kind": "TokenRequest",
                "group": "authentication.k8s.io", "version": "v1", "verbs": ["create"],
            }));
        }
        if r.plural == "pods" {
            resources.push(json!({
                "name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"],
            }));
        }
        if r.plural == "namespaces" {
            resources.push(json!({
                "name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"],
            }));
        }
    }
    json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources })
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "gitVersion": "v1.34.0-urumi-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    let mut seen = Vec::new();
    for r in RESOURCES {
        let p = gv_path(r.group, r.version);
        if !seen.contains(&p) {
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=urumi-sim-1")}),
            );
            seen.push(p);
        }
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<gv path>`: just enough OpenAPI for kubectl to see that every resource's
/// PATCH takes `fieldValidation` (so it validates server-side and needs no schemas).
pub fn openapi_v3_gv(path: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| gv_path(r.group, r.version) == path)
    {
        let base = if r.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("/{path}/{}/{{name}}", r.plural)
        };
        let q = |n: &str| json!({"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let op = json!({
            "operationId": format!("patch{}", r.kind),
            "parameters": [q("dryRun"), q("fieldManager"), q("fieldValidation"), {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}],
            "responses": {"200": {"description": "OK"}},
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        });
        paths.insert(base, json!({"patch": op}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.34.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
