//! Which requests an admission policy or binding applies to: `matchConstraints` /
//! `matchResources` with `resourceRules` (apiGroups, apiVersions, operations, resources
//! with `*`, `pods/log`, `*/*`, `x/*` — which, as in the real matcher, also covers `x`
//! itself —, `*/status`; resourceNames; scope),
//! `excludeResourceRules`, `namespaceSelector` and `objectSelector`, as kube-apiserver's
//! matcher applies them.

use serde::Deserialize;
use serde_json::Value;

use crate::selectors::LabelSelector;

/// An admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// A create (POST, or an apply that creates).
    Create,
    /// An update (PUT, PATCH, or an apply of an existing object).
    Update,
    /// A delete.
    Delete,
    /// A connect (exec, proxy); the simulator never sends one to policies.
    Connect,
}

impl Operation {
    /// The name CEL sees in `request.operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// An entry of a rule's `operations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RuleOperation {
    /// `*`: every operation.
    #[serde(rename = "*")]
    All,
    /// One operation.
    #[serde(untagged)]
    One(Operation),
}

/// A rule's `scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Scope {
    /// `*` (the default): both.
    #[default]
    #[serde(rename = "*")]
    All,
    /// Cluster-scoped resources only.
    Cluster,
    /// Namespaced resources only.
    Namespaced,
}

/// One of `resourceRules` / `excludeResourceRules`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceRule {
    /// API groups, `*` for all.
    pub api_groups: Vec<String>,
    /// API versions, `*` for all.
    pub api_versions: Vec<String>,
    /// Operations.
    pub operations: Vec<RuleOperation>,
    /// Resources: `*`, `pods`, `pods/log`, `*/*`, `pods/*`, `*/status`.
    pub resources: Vec<String>,
    /// Names the rule is confined to (empty: any).
    pub resource_names: Vec<String>,
    /// Cluster, Namespaced or both.
    pub scope: Scope,
}

/// `spec.matchConstraints` of a policy or `spec.matchResources` of a binding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MatchResources {
    /// Labels of the namespace (or of the Namespace object itself).
    pub namespace_selector: Option<Value>,
    /// Labels of the object or of the old object.
    pub object_selector: Option<Value>,
    /// What is matched.
    pub resource_rules: Vec<ResourceRule>,
    /// What is then left out.
    pub exclude_resource_rules: Vec<ResourceRule>,
}

/// The request as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The operation.
    pub operation: Operation,
    /// API group.
    pub group: &'a str,
    /// API version.
    pub version: &'a str,
    /// Resource (plural).
    pub resource: &'a str,
    /// Subresource, `""` for none.
    pub subresource: &'a str,
    /// Object name.
    pub name: &'a str,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Whether the resource is `namespaces` (its own labels are the namespace's).
    pub is_namespace: bool,
    /// The new object (`None` on delete).
    pub object: Option<&'a Value>,
    /// The stored object (`None` on create).
    pub old_object: Option<&'a Value>,
    /// The namespace the object is in (`None` for cluster-scoped resources).
    pub namespace_object: Option<&'a Value>,
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter().any(|x| x == "*" || x == value)
}

fn resource_listed(list: &[String], resource: &str, sub: &str) -> bool {
    list.iter().any(|entry| {
        let (r, s) = entry.split_once('/').unwrap_or((entry, ""));
        // As the real rule matcher: `x/*` also covers `x` itself, `*` no subresource.
        (r == "*" || r == resource) && (s == "*" || s == sub)
    })
}

impl ResourceRule {
    /// Whether this rule covers the request.
    pub fn matches(&self, t: &Target<'_>) -> bool {
        let scope_ok = match self.scope {
            Scope::All => true,
            Scope::Cluster => !t.namespaced,
            Scope::Namespaced => t.namespaced,
        };
        scope_ok
            && listed(&self.api_groups, t.group)
            && listed(&self.api_versions, t.version)
            && self
                .operations
                .iter()
                .any(|o| matches!(o, RuleOperation::All) || *o == RuleOperation::One(t.operation))
            && resource_listed(&self.resources, t.resource, t.subresource)
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == t.name))
    }
}

fn labels_match(selector: Option<&Value>, obj: &Value) -> bool {
    selector.is_none_or(|s| LabelSelector::from_object(s).matches(obj))
}

impl MatchResources {
    /// Whether the request is matched. `rules_required`: a policy's `matchConstraints`
    /// matches nothing without `resourceRules`, a binding's `matchResources` then
    /// narrows by selectors only.
    pub fn matches(&self, t: &Target<'_>, rules_required: bool) -> bool {
        let ruled = if self.resource_rules.is_empty() {
            !rules_required
        } else {
            self.resource_rules.iter().any(|r| r.matches(t))
        };
        if !ruled || self.exclude_resource_rules.iter().any(|r| r.matches(t)) {
            return false;
        }
        let ns_labels = if t.is_namespace {
            t.object.or(t.old_object)
        } else if t.namespaced {
            t.namespace_object
        } else {
            // Other cluster-scoped objects are never filtered by the namespace selector.
            None
        };
        let ns_ok = match (t.is_namespace || t.namespaced, ns_labels) {
            (false, _) => true,
            (true, Some(ns)) => labels_match(self.namespace_selector.as_ref(), ns),
            (true, None) => labels_match(self.namespace_selector.as_ref(), &Value::Null),
        };
        let obj_ok = [t.object, t.old_object]
            .into_iter()
            .flatten()
            .any(|o| labels_match(self.object_selector.as_ref(), o))
            || (t.object.is_none() && t.old_object.is_none());
        ns_ok && obj_ok
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn target<'a>(op: Operation, resource: &'a str, sub: &'a str) -> Target<'a> {
        Target {
            operation: op,
            group: "",
            version: "v1",
            resource,
            subresource: sub,
            name: "x",
            namespaced: true,
            is_namespace: false,
            object: None,
            old_object: None,
            namespace_object: None,
        }
    }

    fn rule(v: Value) -> ResourceRule {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resources_wildcards_and_subresources() {
        let star = rule(
            json!({"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}),
        );
        assert!(star.matches(&target(Operation::Create, "configmaps", "")));
        assert!(!star.matches(&target(Operation::Update, "pods", "status")));
        let subs = rule(
            json!({"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["*/*"]}),
        );
        assert!(subs.matches(&target(Operation::Update, "pods", "status")));
        assert!(subs.matches(&target(Operation::Update, "pods", "")));
        let log = rule(
            json!({"apiGroups": [""], "apiVersions": ["*"], "operations": ["CREATE"], "resources": ["pods/log", "deployments/*"]}),
        );
        assert!(log.matches(&target(Operation::Create, "pods", "log")));
        assert!(log.matches(&target(Operation::Create, "deployments", "scale")));
        assert!(log.matches(&target(Operation::Create, "deployments", "")));
        assert!(!log.matches(&target(Operation::Create, "pods", "")));
        assert!(!log.matches(&target(Operation::Delete, "pods", "log")));
    }

    #[test]
    fn groups_versions_names_and_scope() {
        let r = rule(
            json!({"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["*"], "resources": ["deployments"], "resourceNames": ["web"], "scope": "Namespaced"}),
        );
        let mut t = target(Operation::Update, "deployments", "");
        assert!(!r.matches(&t), "core group is not apps");
        t.group = "apps";
        assert!(!r.matches(&t), "name x is not web");
        t.name = "web";
        assert!(r.matches(&t));
        t.namespaced = false;
        assert!(!r.matches(&t), "scope Namespaced");
    }

    #[test]
    fn unknown_operations_do_not_parse() {
        let bad = serde_json::from_value::<ResourceRule>(json!({"operations": ["DESTROY"]}));
        assert!(bad.is_err());
    }

    #[test]
    fn namespace_and_object_selectors() {
        let m: MatchResources = serde_json::from_value(json!({
            "namespaceSelector": {"matchExpressions": [{"key": "urumi.io/store-id", "operator": "Exists"}]},
            "objectSelector": {"matchLabels": {"app": "web"}},
            "resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*"]}],
            "excludeResourceRules": [{"apiGroups": [""], "apiVersions": ["*"], "operations": ["*"], "resources": ["secrets"]}],
        }))
        .unwrap();
        let store = json!({"metadata": {"labels": {"urumi.io/store-id": "a"}}});
        let plain = json!({"metadata": {"labels": {}}});
        let web = json!({"metadata": {"labels": {"app": "web"}}});
        let other = json!({"metadata": {"labels": {"app": "db"}}});
        let mut t = target(Operation::Create, "configmaps", "");
        t.object = Some(&web);
        t.namespace_object = Some(&store);
        assert!(m.matches(&t, true));
        t.namespace_object = Some(&plain);
        assert!(!m.matches(&t, true), "namespace selector");
        t.namespace_object = Some(&store);
        t.object = Some(&other);
        assert!(!m.matches(&t, true), "object selector");
        t.old_object = Some(&web);
        assert!(m.matches(&t, true), "the old object's labels count too");
        t.resource = "secrets";
        assert!(!m.matches(&t, true), "excluded");
    }

    #[test]
    fn namespaces_are_selected_by_their_own_labels_and_cluster_objects_ignore_it() {
        let m: MatchResources = serde_json::from_value(json!({
            "namespaceSelector": {"matchLabels": {"team": "a"}},
        }))
        .unwrap();
        let mut t = target(Operation::Delete, "namespaces", "");
        t.namespaced = false;
        t.is_namespace = true;
        let labelled = json!({"metadata": {"labels": {"team": "a"}}});
        t.old_object = Some(&labelled);
        assert!(m.matches(&t, false), "binding without rules narrows only");
        assert!(!m.matches(&t, true), "policy without rules matches nothing");
        let mut cr = target(Operation::Create, "clusterroles", "");
        cr.namespaced = false;
        assert!(m.matches(&cr, false));
    }
}
