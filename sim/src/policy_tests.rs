//! Unit tests of [`crate::policy`], through the store's writes: match rules, selectors,
//! matchConditions, variables, failurePolicy, Deny/Warn, denial wording and codes.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::*;
use crate::store::{WatchEvent, WriteOpts};

const WORKER: &str = "system:serviceaccount:urumi-system:urumi-worker";

fn state() -> State {
    let (tx, _) = broadcast::channel::<Arc<WatchEvent>>(16);
    let mut st = State::new(tx);
    for (name, labels) in [
        ("store-a", json!({"urumi.io/store-id": "a"})),
        ("plain", json!({})),
    ] {
        st.create(
            resources::NAMESPACES,
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
            &WriteOpts::default(),
        )
        .unwrap();
    }
    st
}

fn install(st: &mut State, name: &str, spec: Value, actions: &[&str]) {
    let mut policy = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                            "metadata": {"name": name}});
    policy["spec"] = spec;
    st.create(resources::VAPS, "", policy, &WriteOpts::default())
        .unwrap();
    st.create(
        resources::VAP_BINDINGS,
        "",
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": format!("{name}-binding")},
               "spec": {"policyName": name, "validationActions": actions}}),
        &WriteOpts::default(),
    )
    .unwrap();
}

fn all_rules() -> Value {
    json!({"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["*"], "resources": ["*", "*/*"]}]})
}

fn as_user(user: &str) -> WriteOpts {
    WriteOpts {
        requester: Some(Requester {
            user: UserInfo {
                name: user.into(),
                groups: vec!["system:authenticated".into()],
            },
            subresource: None,
        }),
        ..WriteOpts::default()
    }
}

fn cm(name: &str, labels: Value) -> Value {
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    obj["metadata"]["labels"] = labels;
    obj
}

fn create_cm(st: &mut State, ns: &str, name: &str, opts: &WriteOpts) -> ApiResult<Vec<String>> {
    st.create(resources::CONFIGMAPS, ns, cm(name, json!({})), opts)
        .map(|w| w.warnings)
}

#[test]
fn resource_indices_name_the_policy_resources() {
    assert_eq!(
        RESOURCES[resources::VAPS].plural,
        "validatingadmissionpolicies"
    );
    assert_eq!(
        RESOURCES[resources::VAP_BINDINGS].plural,
        "validatingadmissionpolicybindings"
    );
}

#[test]
fn a_false_validation_denies_with_the_real_wording_and_422() {
    let mut st = state();
    install(
        &mut st,
        "no-cms",
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
               "validations": [{"expression": "false"}]}),
        &["Deny"],
    );
    let e = create_cm(&mut st, "plain", "x", &as_user(WORKER)).unwrap_err();
    assert_eq!(e.code, 422);
    assert_eq!(e.reason, "Invalid");
    assert_eq!(
        e.message,
        "configmaps \"x\" is forbidden: ValidatingAdmissionPolicy 'no-cms' with binding 'no-cms-binding' denied request: failed expression: false"
    );
    assert_eq!(
        e.details.as_ref().unwrap()["causes"][0]["message"],
        json!(
            "ValidatingAdmissionPolicy 'no-cms' with binding 'no-cms-binding' denied request: failed expression: false"
        )
    );
    // Not matched: another resource, another operation, the controllers' own writes.
    st.create(
        resources::SECRETS,
        "plain",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        &as_user(WORKER),
    )
    .unwrap();
    create_cm(&mut st, "plain", "by-controller", &WriteOpts::default()).unwrap();
    st.update(
        resources::CONFIGMAPS,
        "plain",
        "by-controller",
        cm("by-controller", json!({"a": "b"})),
        &as_user(WORKER),
    )
    .unwrap();
}

#[test]
fn reasons_set_the_code_and_message_expression_the_message() {
    let mut st = state();
    install(
        &mut st,
        "names",
        json!({"matchConstraints": all_rules(),
               "validations": [{"expression": "object.metadata.name.startsWith('ok')",
                                "message": "static", "messageExpression": "'name ' + object.metadata.name + ' refused'",
                                "reason": "Forbidden"}]}),
        &["Deny"],
    );
    create_cm(&mut st, "plain", "ok-1", &as_user(WORKER)).unwrap();
    let e = create_cm(&mut st, "plain", "bad", &as_user(WORKER)).unwrap_err();
    assert_eq!((e.code, e.reason), (403, "Forbidden"));
    assert!(
        e.message.ends_with("denied request: name bad refused"),
        "{}",
        e.message
    );
}

#[test]
fn selectors_of_policy_and_binding_narrow_the_match() {
    let mut st = state();
    let mut rules = all_rules();
    rules["objectSelector"] =
        json!({"matchExpressions": [{"key": "guarded", "operator": "Exists"}]});
    install(
        &mut st,
        "guard",
        json!({"matchConstraints": rules, "validations": [{"expression": "false", "message": "guarded"}]}),
        &["Deny"],
    );
    // The binding only covers store namespaces.
    let mut b = st
        .get(resources::VAP_BINDINGS, "", "guard-binding")
        .unwrap();
    b["spec"]["matchResources"] = json!({"namespaceSelector": {"matchExpressions": [{"key": "urumi.io/store-id", "operator": "In", "values": ["a"]}]}});
    st.update(
        resources::VAP_BINDINGS,
        "",
        "guard-binding",
        b,
        &WriteOpts::default(),
    )
    .unwrap();
    let guarded = cm("g", json!({"guarded": "yes"}));
    assert!(
        st.create(
            resources::CONFIGMAPS,
            "store-a",
            guarded.clone(),
            &as_user(WORKER)
        )
        .is_err()
    );
    st.create(resources::CONFIGMAPS, "plain", guarded, &as_user(WORKER))
        .expect("binding's namespaceSelector leaves plain out");
    create_cm(&mut st, "store-a", "unlabelled", &as_user(WORKER))
        .expect("objectSelector leaves it out");
}

#[test]
fn match_conditions_decide_whether_the_policy_applies() {
    let mut st = state();
    install(
        &mut st,
        "worker-only",
        json!({"matchConstraints": all_rules(),
               "matchConditions": [{"name": "worker", "expression": format!("request.userInfo.username == '{WORKER}'")}],
               "validations": [{"expression": "request.namespace != 'plain'"}]}),
        &["Deny"],
    );
    assert!(create_cm(&mut st, "plain", "w", &as_user(WORKER)).is_err());
    create_cm(&mut st, "plain", "someone", &as_user("someone-else")).unwrap();
    create_cm(&mut st, "store-a", "w", &as_user(WORKER)).unwrap();
}

#[test]
fn variables_see_earlier_variables_and_the_namespace_object() {
    let mut st = state();
    install(
        &mut st,
        "vars",
        json!({"matchConstraints": all_rules(),
               "variables": [
                   {"name": "labels", "expression": "namespaceObject == null ? {} : namespaceObject.metadata.labels"},
                   {"name": "store", "expression": "'urumi.io/store-id' in variables.labels"}],
               "validations": [{"expression": "variables.store", "message": "stores only"}]}),
        &["Deny"],
    );
    create_cm(&mut st, "store-a", "x", &as_user(WORKER)).unwrap();
    let e = create_cm(&mut st, "plain", "x", &as_user(WORKER)).unwrap_err();
    assert!(
        e.message.ends_with("denied request: stores only"),
        "{}",
        e.message
    );
}

#[test]
fn runtime_errors_deny_under_fail_and_pass_under_ignore() {
    for (policy, denied) in [(FailurePolicy::Fail, true), (FailurePolicy::Ignore, false)] {
        let mut st = state();
        let fp = format!("{policy:?}");
        install(
            &mut st,
            "errs",
            json!({"matchConstraints": all_rules(), "failurePolicy": fp,
                   "validations": [{"expression": "object.spec.missing == 1"}]}),
            &["Deny"],
        );
        let r = create_cm(&mut st, "plain", "x", &as_user(WORKER));
        assert_eq!(r.is_err(), denied, "{fp}");
        if let Err(e) = r {
            assert_eq!(e.code, 422);
            assert!(
                e.message.contains(
                    "denied request: expression 'object.spec.missing == 1' resulted in error: "
                ),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn param_kind_is_unsupported_and_follows_the_failure_policy() {
    for (policy, denied) in [("Fail", true), ("Ignore", false)] {
        let mut st = state();
        install(
            &mut st,
            "params",
            json!({"matchConstraints": all_rules(), "failurePolicy": policy,
                   "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                   "validations": [{"expression": "true"}]}),
            &["Deny"],
        );
        assert_eq!(
            create_cm(&mut st, "plain", "x", &as_user(WORKER)).is_err(),
            denied,
            "{policy}"
        );
    }
}

#[test]
fn warn_adds_a_warning_and_lets_the_request_through() {
    let mut st = state();
    install(
        &mut st,
        "soft",
        json!({"matchConstraints": all_rules(), "validations": [{"expression": "false", "message": "careful"}]}),
        &["Warn", "Audit"],
    );
    let warnings = create_cm(&mut st, "plain", "x", &as_user(WORKER)).unwrap();
    assert_eq!(
        warnings,
        vec![
            "Validation failed for ValidatingAdmissionPolicy 'soft' with binding 'soft-binding': careful"
        ]
    );
    assert!(st.get(resources::CONFIGMAPS, "plain", "x").is_some());
}

#[test]
fn delete_sees_old_object_only_and_dry_runs_are_judged() {
    let mut st = state();
    create_cm(&mut st, "plain", "keep", &WriteOpts::default()).unwrap();
    install(
        &mut st,
        "no-deletes",
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["DELETE", "UPDATE"], "resources": ["configmaps"]}]},
               "validations": [{"expression": "object == null && oldObject.metadata.name != 'keep' && !request.dryRun",
                                "message": "kept"}]}),
        &["Deny"],
    );
    let e = st
        .delete_as(
            resources::CONFIGMAPS,
            "plain",
            "keep",
            &json!({}),
            &as_user(WORKER),
        )
        .unwrap_err();
    assert!(e.message.ends_with("denied request: kept"));
    let mut dry = as_user(WORKER);
    dry.dry_run = true;
    create_cm(&mut st, "plain", "other", &WriteOpts::default()).unwrap();
    assert!(
        st.delete_as(resources::CONFIGMAPS, "plain", "other", &json!({}), &dry)
            .is_err(),
        "request.dryRun is true"
    );
    st.delete_as(
        resources::CONFIGMAPS,
        "plain",
        "other",
        &json!({}),
        &as_user(WORKER),
    )
    .unwrap();
    // An update has an object: the same policy refuses it.
    assert!(
        st.update(
            resources::CONFIGMAPS,
            "plain",
            "keep",
            cm("keep", json!({"x": "y"})),
            &as_user(WORKER)
        )
        .is_err()
    );
}
