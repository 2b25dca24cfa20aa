//! The RBAC authorizer, evaluated on every request of a token user from the objects stored
//! right now: ClusterRoleBindings grant their ClusterRole's rules everywhere, RoleBindings
//! grant their Role's or ClusterRole's rules in their own namespace only. Rules match like
//! the real authorizer's (`*` wildcards, `pods/log` and `*/scale` subresources,
//! `resourceNames` only for requests that carry a name), and a refusal is worded like the
//! real server's `Forbidden`.
//!
//! ```text
//!   request ─► Attributes ─► ClusterRoleBindings ─┬─ subject matches ─► ClusterRole rules ─► Allow
//!                           RoleBindings (in ns) ─┘                     Role rules (same ns)
//!                                                  nothing allowed ──────────────────────► Deny
//! ```

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::{self, RESOURCES};
use crate::store::State;

/// An authenticated user: the name and groups RBAC subjects are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `system:serviceaccount:<ns>:<name>` for ServiceAccount tokens.
    pub name: String,
    /// Groups (`system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`).
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user a ServiceAccount's token authenticates as.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// The verbs of resource requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Stream changes.
    Watch,
    /// Make an object.
    Create,
    /// Replace an object (PUT).
    Update,
    /// Patch an object (including server-side apply).
    Patch,
    /// Delete one object.
    Delete,
    /// Delete a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb the server computed for a request (`None` for `unknown`, `admin`, …).
    pub fn parse(verb: &str) -> Option<Self> {
        Some(match verb {
            "get" => Self::Get,
            "list" => Self::List,
            "watch" => Self::Watch,
            "create" => Self::Create,
            "update" => Self::Update,
            "patch" => Self::Patch,
            "delete" => Self::Delete,
            "deletecollection" => Self::DeleteCollection,
            _ => return None,
        })
    }

    /// The verb as RBAC rules and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::Update => "update",
            Self::Patch => "patch",
            Self::Delete => "delete",
            Self::DeleteCollection => "deletecollection",
        }
    }
}

/// What a resource request asks to do, as the authorizer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// The verb.
    pub verb: Verb,
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource (`pods`).
    pub resource: String,
    /// Subresource (`log`, `status`, `scale`, `proxy`, `token`).
    pub subresource: Option<String>,
    /// Namespace; `None` at the cluster scope.
    pub namespace: Option<String>,
    /// Object name, when the request carries one.
    pub name: Option<String>,
}

impl ResourceAttributes {
    /// Attributes of a request on `RESOURCES[res]`. A namespace's own name is its
    /// namespace (as in the real server's request info), so a RoleBinding in `x` can grant
    /// `get` on namespace `x`.
    pub fn of(
        verb: Verb,
        res: usize,
        namespace: Option<&str>,
        name: Option<&str>,
        subresource: Option<&str>,
    ) -> Self {
        let rt = &RESOURCES[res];
        let namespace = if res == resources::NAMESPACES {
            name
        } else if rt.namespaced {
            namespace
        } else {
            None
        };
        Self {
            verb,
            group: rt.group.to_string(),
            resource: rt.plural.to_string(),
            subresource: subresource.map(String::from),
            namespace: namespace.map(String::from),
            name: name.map(String::from),
        }
    }

    /// The same request with another verb (create-on-update is authorized as `create`).
    pub fn with_verb(&self, verb: Verb) -> Self {
        Self {
            verb,
            ..self.clone()
        }
    }

    /// `pods`, or `pods/log` for a subresource.
    fn combined(&self) -> String {
        match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        }
    }
}

/// What a request asks, resource or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request on a resource.
    Resource(ResourceAttributes),
    /// A request on any other path; `verb` is the lowercase HTTP method.
    NonResource {
        /// `get`, `post`, `put`, `patch`, `delete`, …
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// The authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule allows the request.
    Allow,
    /// No rule allows it; `reason` lists the bindings' resolution errors (`RBAC: …`), or is
    /// empty, as in the real authorizer.
    Deny {
        /// Appended to the Forbidden message after `: ` when not empty.
        reason: String,
    },
}

fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn verb_matches(rule: &Value, verb: &str) -> bool {
    strings(rule, "verbs")
        .iter()
        .any(|v| *v == "*" || *v == verb)
}

/// Whether one policy rule allows the request.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    match attrs {
        Attributes::Resource(a) => {
            let combined = a.combined();
            let group_ok = strings(rule, "apiGroups")
                .iter()
                .any(|g| *g == "*" || *g == a.group);
            let resource_ok = strings(rule, "resources").iter().any(|r| {
                *r == "*"
                    || *r == combined
                    || a.subresource
                        .as_deref()
                        .is_some_and(|s| r.strip_prefix("*/") == Some(s))
            });
            let names = strings(rule, "resourceNames");
            let name_ok = names.is_empty()
                || names
                    .iter()
                    .any(|n| *n == a.name.as_deref().unwrap_or_default());
            verb_matches(rule, a.verb.as_str()) && group_ok && resource_ok && name_ok
        }
        Attributes::NonResource { verb, path } => {
            verb_matches(rule, verb)
                && strings(rule, "nonResourceURLs").iter().any(|u| {
                    *u == "*"
                        || *u == path
                        || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
                })
        }
    }
}

/// Whether a binding's subject is the user (a ServiceAccount subject without a namespace
/// means one in the binding's own namespace).
fn subject_matches(subject: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    let name = subject
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match subject.get("kind").and_then(Value::as_str) {
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// The rules a binding's `roleRef` points at, or the resolution error the real authorizer
/// reports.
fn role_rules(st: &State, binding: &Value, binding_ns: &str) -> Result<Value, String> {
    let role_ref = binding.get("roleRef").cloned().unwrap_or(Value::Null);
    let name = role_ref
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (res, ns, what) = match role_ref.get("kind").and_then(Value::as_str) {
        Some("ClusterRole") => (resources::CLUSTERROLES, "", "clusterrole"),
        Some("Role") if !binding_ns.is_empty() => (resources::ROLES, binding_ns, "role"),
        other => {
            return Err(format!(
                "unsupported role reference kind: \"{}\"",
                other.unwrap_or_default()
            ));
        }
    };
    st.get(res, ns, name)
        .map(|role| role.get("rules").cloned().unwrap_or(Value::Null))
        .ok_or_else(|| format!("{what}.rbac.authorization.k8s.io \"{name}\" not found"))
}

/// Decides a request of `user` from the bindings and roles stored in `st`.
pub fn authorize(st: &State, user: &UserInfo, attrs: &Attributes) -> Decision {
    let mut errors: Vec<String> = Vec::new();
    let mut bindings: Vec<(Value, String)> = st
        .iter_ns(resources::CLUSTERROLEBINDINGS, None)
        .map(|(_, s)| (s.value(), String::new()))
        .collect();
    if let Attributes::Resource(ResourceAttributes {
        namespace: Some(ns),
        ..
    }) = attrs
    {
        bindings.extend(
            st.values_in(resources::ROLEBINDINGS, ns)
                .into_iter()
                .map(|b| (b, ns.clone())),
        );
    }
    for (binding, ns) in &bindings {
        let applies = binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|subs| subs.iter().any(|s| subject_matches(s, user, ns)));
        if !applies {
            continue;
        }
        match role_rules(st, binding, ns) {
            Ok(rules) => {
                if rules
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| rule_allows(r, attrs)))
                {
                    return Decision::Allow;
                }
            }
            Err(e) => {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Decision::Deny { reason }
}

/// The real server's `forbiddenMessage`: `User "<user>" cannot <verb> resource "<res>[/<sub>]"
/// in API group "<group>" in the namespace "<ns>"` (or `at the cluster scope`), or
/// `User "<user>" cannot <verb> path "<path>"`.
pub fn forbidden_message(user: &str, attrs: &Attributes) -> String {
    match attrs {
        Attributes::NonResource { verb, path } => {
            format!("User \"{user}\" cannot {verb} path \"{path}\"")
        }
        Attributes::Resource(a) => {
            let scope = match &a.namespace {
                Some(ns) if !ns.is_empty() => format!("in the namespace \"{ns}\""),
                _ => "at the cluster scope".to_string(),
            };
            format!(
                "User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
                a.verb.as_str(),
                a.combined(),
                a.group
            )
        }
    }
}

/// The 403 for a refused request: `deployments.apps "web" is forbidden: User … cannot patch
/// resource "deployments" in API group "apps" in the namespace "store-a"` (the prefix names
/// the resource without its subresource, as the real server's does), plus `: <reason>`
/// when the authorizer gave one.
pub fn forbidden(user: &str, attrs: &Attributes, reason: &str) -> ApiError {
    let mut err = forbidden_message(user, attrs);
    if !reason.is_empty() {
        err = format!("{err}: {reason}");
    }
    match attrs {
        Attributes::NonResource { .. } => ApiError::forbidden_request("", "", "", &err),
        Attributes::Resource(a) => ApiError::forbidden_request(
            &a.group,
            &a.resource,
            a.name.as_deref().unwrap_or_default(),
            &err,
        ),
    }
}

/// The 403 for a PATCH (apply) that would create its object without `create` permission:
/// the real server words it `<resource> "<name>" is forbidden: <reason>` (the reason is
/// usually empty).
pub fn forbidden_create_on_update(attrs: &ResourceAttributes, reason: &str) -> ApiError {
    ApiError::forbidden_request(
        &attrs.group,
        &attrs.resource,
        attrs.name.as_deref().unwrap_or_default(),
        reason,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tokio::sync::broadcast;

    use super::*;
    use crate::store::WriteOpts;

    fn state() -> State {
        let (tx, _) = broadcast::channel::<Arc<crate::store::WatchEvent>>(16);
        State::new(tx)
    }

    fn put(st: &mut State, res: usize, ns: &str, obj: Value) {
        if !ns.is_empty() && st.get(resources::NAMESPACES, "", ns).is_none() {
            st.create(
                resources::NAMESPACES,
                "",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                &WriteOpts::default(),
            )
            .expect("namespace created");
        }
        st.create(res, ns, obj, &WriteOpts::default())
            .expect("object created");
    }

    fn cluster_role(st: &mut State, name: &str, rules: Value) {
        let mut obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}});
        obj["rules"] = rules;
        put(st, resources::CLUSTERROLES, "", obj);
    }

    fn role(st: &mut State, ns: &str, name: &str, rules: Value) {
        let mut obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}});
        obj["rules"] = rules;
        put(st, resources::ROLES, ns, obj);
    }

    fn binding(
        st: &mut State,
        ns: Option<&str>,
        name: &str,
        role_kind: &str,
        role: &str,
        subjects: Value,
    ) {
        let (res, kind) = match ns {
            Some(_) => (resources::ROLEBINDINGS, "RoleBinding"),
            None => (resources::CLUSTERROLEBINDINGS, "ClusterRoleBinding"),
        };
        let mut md = json!({"name": name});
        if let Some(ns) = ns {
            md["namespace"] = json!(ns);
        }
        let mut obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": md,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}});
        obj["subjects"] = subjects;
        put(st, res, ns.unwrap_or_default(), obj);
    }

    fn worker() -> UserInfo {
        UserInfo::service_account("urumi", "worker")
    }

    fn sa_subject() -> Value {
        json!([{"kind": "ServiceAccount", "name": "worker", "namespace": "urumi"}])
    }

    fn req(
        verb: Verb,
        res: usize,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
    ) -> Attributes {
        Attributes::Resource(ResourceAttributes::of(verb, res, ns, name, sub))
    }

    fn allowed(st: &State, user: &UserInfo, attrs: &Attributes) -> bool {
        authorize(st, user, attrs) == Decision::Allow
    }

    #[test]
    fn wildcards_match_any_group_resource_and_verb() {
        let rule = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        for attrs in [
            req(
                Verb::Delete,
                resources::DEPLOYMENTS,
                Some("a"),
                Some("web"),
                None,
            ),
            req(
                Verb::Get,
                resources::PODS,
                Some("a"),
                Some("p"),
                Some("log"),
            ),
            req(Verb::List, resources::NAMESPACES, None, None, None),
        ] {
            assert!(rule_allows(&rule, &attrs), "{attrs:?}");
        }
        let pods_only = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]});
        assert!(rule_allows(
            &pods_only,
            &req(Verb::List, resources::PODS, Some("a"), None, None)
        ));
        assert!(!rule_allows(
            &pods_only,
            &req(Verb::Delete, resources::PODS, Some("a"), Some("p"), None)
        ));
        assert!(!rule_allows(
            &pods_only,
            &req(
                Verb::Get,
                resources::PODS,
                Some("a"),
                Some("p"),
                Some("log")
            )
        ));
        assert!(!rule_allows(
            &pods_only,
            &req(
                Verb::Get,
                resources::DEPLOYMENTS,
                Some("a"),
                Some("d"),
                None
            )
        ));
    }

    #[test]
    fn subresources_match_by_their_combined_name_or_star_slash() {
        let log = json!({"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]});
        assert!(rule_allows(
            &log,
            &req(
                Verb::Get,
                resources::PODS,
                Some("a"),
                Some("p"),
                Some("log")
            )
        ));
        assert!(!rule_allows(
            &log,
            &req(Verb::Get, resources::PODS, Some("a"), Some("p"), None)
        ));
        let scale = json!({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]});
        assert!(rule_allows(
            &scale,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("a"),
                Some("d"),
                Some("scale")
            )
        ));
        assert!(rule_allows(
            &scale,
            &req(
                Verb::Patch,
                resources::STATEFULSETS,
                Some("a"),
                Some("s"),
                Some("scale")
            )
        ));
        assert!(!rule_allows(
            &scale,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("a"),
                Some("d"),
                None
            )
        ));
        assert!(!rule_allows(
            &scale,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("a"),
                Some("d"),
                Some("status")
            )
        ));
    }

    #[test]
    fn resource_names_restrict_only_requests_that_carry_a_name() {
        let rule = json!({"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"], "verbs": ["get", "list", "watch", "create"]});
        assert!(rule_allows(
            &rule,
            &req(Verb::Get, resources::SECRETS, Some("a"), Some("db"), None)
        ));
        assert!(!rule_allows(
            &rule,
            &req(
                Verb::Get,
                resources::SECRETS,
                Some("a"),
                Some("other"),
                None
            )
        ));
        assert!(!rule_allows(
            &rule,
            &req(Verb::List, resources::SECRETS, Some("a"), None, None)
        ));
        assert!(!rule_allows(
            &rule,
            &req(Verb::Watch, resources::SECRETS, Some("a"), None, None)
        ));
        assert!(!rule_allows(
            &rule,
            &req(Verb::Create, resources::SECRETS, Some("a"), None, None)
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_trailing_star() {
        let rule = json!({"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]});
        let get = |path: &str| Attributes::NonResource {
            verb: "get".into(),
            path: path.into(),
        };
        assert!(rule_allows(&rule, &get("/metrics")));
        assert!(rule_allows(&rule, &get("/debug/pprof")));
        assert!(!rule_allows(&rule, &get("/metricsx")));
        assert!(!rule_allows(
            &rule,
            &Attributes::NonResource {
                verb: "post".into(),
                path: "/metrics".into()
            }
        ));
        let resource_rule = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(!rule_allows(&resource_rule, &get("/metrics")));
    }

    #[test]
    fn a_cluster_role_binding_grants_everywhere_and_at_the_cluster_scope() {
        let mut st = state();
        cluster_role(
            &mut st,
            "reader",
            json!([{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list"]}]),
        );
        binding(
            &mut st,
            None,
            "reader",
            "ClusterRole",
            "reader",
            sa_subject(),
        );
        let u = worker();
        assert!(allowed(
            &st,
            &u,
            &req(Verb::List, resources::PODS, Some("a"), None, None)
        ));
        assert!(allowed(
            &st,
            &u,
            &req(Verb::List, resources::PODS, None, None, None)
        ));
        assert!(allowed(
            &st,
            &u,
            &req(Verb::List, resources::NAMESPACES, None, None, None)
        ));
        assert!(!allowed(
            &st,
            &u,
            &req(Verb::Delete, resources::PODS, Some("a"), Some("p"), None)
        ));
        assert!(!allowed(
            &st,
            &UserInfo::service_account("other", "worker"),
            &req(Verb::List, resources::PODS, Some("a"), None, None)
        ));
    }

    #[test]
    fn a_role_binding_to_a_cluster_role_grants_only_in_its_namespace() {
        let mut st = state();
        cluster_role(
            &mut st,
            "editor",
            json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]),
        );
        binding(
            &mut st,
            Some("store-a"),
            "edit",
            "ClusterRole",
            "editor",
            sa_subject(),
        );
        let u = worker();
        assert!(allowed(
            &st,
            &u,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("store-a"),
                Some("web"),
                None
            )
        ));
        assert!(!allowed(
            &st,
            &u,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("store-b"),
                Some("web"),
                None
            )
        ));
        assert!(!allowed(
            &st,
            &u,
            &req(Verb::List, resources::DEPLOYMENTS, None, None, None)
        ));
    }

    #[test]
    fn a_role_binding_uses_the_role_of_its_own_namespace() {
        let mut st = state();
        role(
            &mut st,
            "store-a",
            "cm",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
        );
        role(
            &mut st,
            "store-b",
            "cm",
            json!([{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]),
        );
        // No namespace on the subject: the binding's own namespace is meant.
        binding(
            &mut st,
            Some("store-a"),
            "cm",
            "Role",
            "cm",
            json!([{"kind": "ServiceAccount", "name": "worker"}]),
        );
        let u = UserInfo::service_account("store-a", "worker");
        assert!(allowed(
            &st,
            &u,
            &req(
                Verb::Get,
                resources::CONFIGMAPS,
                Some("store-a"),
                Some("x"),
                None
            )
        ));
        assert!(!allowed(
            &st,
            &u,
            &req(
                Verb::Delete,
                resources::CONFIGMAPS,
                Some("store-a"),
                Some("x"),
                None
            )
        ));
        assert!(!allowed(
            &st,
            &u,
            &req(
                Verb::Get,
                resources::SECRETS,
                Some("store-b"),
                Some("x"),
                None
            )
        ));
    }

    #[test]
    fn group_and_user_subjects_match_by_name() {
        let mut st = state();
        cluster_role(
            &mut st,
            "view",
            json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]),
        );
        cluster_role(
            &mut st,
            "jobs",
            json!([{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]}]),
        );
        binding(
            &mut st,
            None,
            "all-sas",
            "ClusterRole",
            "view",
            json!([{"kind": "Group", "name": "system:serviceaccounts:urumi"}]),
        );
        binding(
            &mut st,
            Some("x"),
            "by-user",
            "ClusterRole",
            "jobs",
            json!([{"kind": "User", "name": "system:serviceaccount:urumi:worker"}]),
        );
        let u = worker();
        assert!(allowed(
            &st,
            &u,
            &req(Verb::List, resources::SERVICES, Some("x"), None, None)
        ));
        assert!(allowed(
            &st,
            &u,
            &req(Verb::Create, resources::JOBS, Some("x"), None, None)
        ));
        let stranger = UserInfo::service_account("elsewhere", "worker");
        assert!(!allowed(
            &st,
            &stranger,
            &req(Verb::List, resources::SERVICES, Some("x"), None, None)
        ));
        assert!(!allowed(
            &st,
            &stranger,
            &req(Verb::Create, resources::JOBS, Some("x"), None, None)
        ));
    }

    #[test]
    fn a_binding_to_a_missing_role_is_reported_in_the_reason() {
        let mut st = state();
        binding(
            &mut st,
            None,
            "dangling",
            "ClusterRole",
            "gone",
            sa_subject(),
        );
        let d = authorize(
            &st,
            &worker(),
            &req(Verb::Get, resources::PODS, Some("a"), Some("p"), None),
        );
        assert_eq!(
            d,
            Decision::Deny {
                reason: "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found".into()
            }
        );
        let none = authorize(
            &state(),
            &worker(),
            &req(Verb::Get, resources::PODS, Some("a"), Some("p"), None),
        );
        assert_eq!(
            none,
            Decision::Deny {
                reason: String::new()
            }
        );
    }

    #[test]
    fn forbidden_is_worded_like_the_api_server() {
        let u = "system:serviceaccount:urumi:urumi-worker";
        let e = forbidden(
            u,
            &req(
                Verb::Get,
                resources::SECRETS,
                Some("store-a"),
                Some("db"),
                None,
            ),
            "",
        );
        assert_eq!(
            e.to_status(),
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"secrets \"db\" is forbidden: User \"system:serviceaccount:urumi:urumi-worker\" cannot get resource \"secrets\" in API group \"\" in the namespace \"store-a\"","reason":"Forbidden","details":{"name":"db","kind":"secrets"},"code":403})
        );
        let e = forbidden(
            u,
            &req(
                Verb::Patch,
                resources::DEPLOYMENTS,
                Some("store-a"),
                Some("web"),
                None,
            ),
            "",
        );
        assert_eq!(
            e.message,
            format!(
                "deployments.apps \"web\" is forbidden: User \"{u}\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"store-a\""
            )
        );
        assert_eq!(
            e.details,
            Some(json!({"name": "web", "group": "apps", "kind": "deployments"}))
        );
        let e = forbidden(
            u,
            &req(Verb::List, resources::PODS, Some("x"), None, None),
            "",
        );
        assert_eq!(
            e.message,
            format!(
                "pods is forbidden: User \"{u}\" cannot list resource \"pods\" in API group \"\" in the namespace \"x\""
            )
        );
        let e = forbidden(
            u,
            &req(
                Verb::Get,
                resources::PODS,
                Some("x"),
                Some("p"),
                Some("log"),
            ),
            "",
        );
        assert_eq!(
            e.message,
            format!(
                "pods \"p\" is forbidden: User \"{u}\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"x\""
            )
        );
        let e = forbidden(
            u,
            &req(Verb::List, resources::CLUSTERROLES, None, None, None),
            "",
        );
        assert_eq!(
            e.message,
            format!(
                "clusterroles.rbac.authorization.k8s.io is forbidden: User \"{u}\" cannot list resource \"clusterroles\" in API group \"rbac.authorization.k8s.io\" at the cluster scope"
            )
        );
        let e = forbidden(
            u,
            &req(
                Verb::Get,
                resources::NAMESPACES,
                None,
                Some("kube-system"),
                None,
            ),
            "",
        );
        assert_eq!(
            e.message,
            format!(
                "namespaces \"kube-system\" is forbidden: User \"{u}\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"kube-system\""
            )
        );
        let e = forbidden(
            u,
            &Attributes::NonResource {
                verb: "get".into(),
                path: "/_sim/faults".into(),
            },
            "",
        );
        assert_eq!(
            e.message,
            format!("forbidden: User \"{u}\" cannot get path \"/_sim/faults\"")
        );
        assert_eq!(e.details, Some(json!({})));
        let e = forbidden(
            u,
            &req(Verb::Get, resources::PODS, Some("x"), Some("p"), None),
            "RBAC: role.rbac.authorization.k8s.io \"r\" not found",
        );
        assert!(
            e.message.ends_with(
                "in the namespace \"x\": RBAC: role.rbac.authorization.k8s.io \"r\" not found"
            ),
            "{}",
            e.message
        );
        let create = ResourceAttributes::of(
            Verb::Create,
            resources::DEPLOYMENTS,
            Some("a"),
            Some("web"),
            None,
        );
        assert_eq!(
            forbidden_create_on_update(&create, "").message,
            "deployments.apps \"web\" is forbidden: "
        );
    }
}
