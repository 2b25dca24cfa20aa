//! ValidatingAdmissionPolicies (`admissionregistration.k8s.io/v1`), enforced like
//! kube-apiserver's `ValidatingAdmissionPolicy` plugin on every CREATE, UPDATE (PUT, PATCH,
//! server-side apply) and DELETE a client sends, dry runs included, after RBAC and after
//! the object is built, before it is stored. The simulator's own controllers are not
//! subject to policies.
//!
//! ```text
//!   bindings ─► policy (spec.policyName) ─► matchConstraints ∧ binding.matchResources
//!     ─► matchConditions (all true) ─► variables ─► validations
//!     ─► false: Deny → 422/403/401/413 Status   Warn → `Warning` header   Audit → nothing
//! ```
//!
//! CEL sees `object`, `oldObject` (null where absent: `object` on DELETE, `oldObject` on
//! CREATE), `request` (`operation`, `userInfo{username,uid,groups}`, `namespace`, `name`,
//! `kind{group,version,kind}`, `resource{group,version,resource}`, `subResource`,
//! `dryRun`), `namespaceObject` (null for cluster-scoped requests, Namespaces included),
//! `params` (null) and `variables` (evaluated in order; one whose evaluation fails is left
//! out, so an expression that uses it fails with "no such key").
//!
//! A denial is worded as `dispatcher.go` words it through `admission.NewForbidden`:
//! `<resource>[.<group>] "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with
//! binding '<binding>' denied request: <message>`, where `<message>` is the validation's
//! `messageExpression` result (if it yields a non-empty single-line string), else its
//! `message`, else `failed expression: <expression>`; the `Status` reason is the
//! validation's `reason` (default `Invalid`) and the code follows it (Invalid 422,
//! Forbidden 403, Unauthorized 401, RequestEntityTooLarge 413), with the message repeated
//! as the one cause. An evaluation error under `failurePolicy: Fail` denies with the error
//! text (`expression '<expr>' resulted in error: …`, the error part being the `cel` crate's
//! wording, not cel-go's) and reason `Invalid`; under `Ignore` it lets the request through.
//! The first denial in (policy, binding) name order wins; the real server's order among
//! several denying policies is not specified either.
//!
//! Not supported: `paramKind`/`paramRef` (such a policy counts as an evaluation error,
//! handled by its `failurePolicy`, and a warning is logged), `auditAnnotations`, `Audit`
//! (a no-op), `matchPolicy: Equivalent` (the simulator serves one version of each
//! resource), type checking at creation (a policy that does not compile fails when it is
//! evaluated, per its `failurePolicy`), the `authorizer` variable and the Kubernetes CEL
//! libraries beyond the `strings` and `lists` extensions (no `quantity`, `url`, `ip`).
//! `scale` subresource writes are evaluated with the Deployment or StatefulSet as `object`
//! (not an `autoscaling/v1` `Scale`).

use serde::Deserialize;
use serde_json::{Value, json};

use crate::cel_eval::{self, Expr, Vars};
use crate::error::{ApiError, ApiResult};
pub use crate::policy_match::Operation;
use crate::policy_match::{MatchResources, Target};
use crate::rbac::UserInfo;
use crate::resources::{self, RESOURCES};
use crate::store::State;

/// `spec.failurePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum FailurePolicy {
    /// An evaluation error denies (the default).
    #[default]
    Fail,
    /// An evaluation error admits.
    Ignore,
}

/// `reason` of a validation: the `Status` reason and HTTP code of its denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum DenyReason {
    /// 422 (the default).
    #[default]
    Invalid,
    /// 403.
    Forbidden,
    /// 401.
    Unauthorized,
    /// 413.
    RequestEntityTooLarge,
}

impl DenyReason {
    fn code(self) -> u16 {
        match self {
            Self::Invalid => 422,
            Self::Forbidden => 403,
            Self::Unauthorized => 401,
            Self::RequestEntityTooLarge => 413,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "Invalid",
            Self::Forbidden => "Forbidden",
            Self::Unauthorized => "Unauthorized",
            Self::RequestEntityTooLarge => "RequestEntityTooLarge",
        }
    }
}

/// An entry of a binding's `validationActions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ValidationAction {
    /// Refuse the request.
    Deny,
    /// Let it through with a `Warning` header.
    Warn,
    /// Record it in the audit log (a no-op here).
    Audit,
}

/// A named CEL expression (`matchConditions`, `variables`).
#[derive(Debug, Clone, Deserialize)]
pub struct NamedExpression {
    /// Name.
    pub name: String,
    /// CEL source.
    pub expression: String,
}

/// One of `spec.validations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// A CEL boolean; `false` fails the validation.
    pub expression: String,
    /// Message on failure.
    #[serde(default)]
    pub message: Option<String>,
    /// CEL string for the message on failure.
    #[serde(default)]
    pub message_expression: Option<String>,
    /// Status reason on failure.
    #[serde(default)]
    pub reason: Option<DenyReason>,
}

/// The `spec` of a ValidatingAdmissionPolicy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicySpec {
    /// Parameters (unsupported).
    pub param_kind: Option<Value>,
    /// What the policy applies to.
    pub match_constraints: MatchResources,
    /// CEL preconditions.
    pub match_conditions: Vec<NamedExpression>,
    /// CEL variables.
    pub variables: Vec<NamedExpression>,
    /// CEL checks.
    pub validations: Vec<Validation>,
    /// What an evaluation error does.
    pub failure_policy: FailurePolicy,
}

/// The `spec` of a ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BindingSpec {
    /// The policy bound.
    pub policy_name: String,
    /// What a failed validation does.
    pub validation_actions: Vec<ValidationAction>,
    /// Narrows the policy's match.
    pub match_resources: Option<MatchResources>,
}

/// Who asks, for policies: set by the HTTP front on every client write; `None` in
/// [`crate::store::WriteOpts`] for the simulator's own controllers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The authenticated user (`system:admin` in `system:masters` for the admin).
    pub user: UserInfo,
    /// The subresource of the URL (`status`, `scale`, `finalize`), if any.
    pub subresource: Option<String>,
}

/// One admission request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// CREATE, UPDATE or DELETE.
    pub operation: Operation,
    /// Index into [`RESOURCES`].
    pub res: usize,
    /// Namespace (`""` for cluster-scoped resources).
    pub namespace: &'a str,
    /// Object name.
    pub name: &'a str,
    /// The object that would be stored (`None` on DELETE).
    pub object: Option<&'a Value>,
    /// The stored object (`None` on CREATE).
    pub old_object: Option<&'a Value>,
    /// The sender.
    pub requester: &'a Requester,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// A validation that failed (or erred under `Fail`): the binding's actions apply to it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    message: String,
    reason: DenyReason,
}

fn request_value(req: &Request<'_>) -> Value {
    let rt = &RESOURCES[req.res];
    let sub = req.requester.subresource.as_deref().unwrap_or_default();
    json!({
        "operation": req.operation.as_str(),
        "userInfo": {
            "username": req.requester.user.name,
            "uid": "",
            "groups": req.requester.user.groups,
        },
        "namespace": req.namespace,
        "name": req.name,
        "kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "resource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
        "subResource": sub,
        "requestKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "requestResource": {"group": rt.group, "version": rt.version, "resource": rt.plural},
        "requestSubResource": sub,
        "dryRun": req.dry_run,
    })
}

/// The failure message of a validation that evaluated to `false`.
fn failure_message(v: &Validation, vars: &Vars) -> String {
    let from_expression = v
        .message_expression
        .as_deref()
        .and_then(|src| Expr::compile(src).ok())
        .and_then(|e| match e.eval(vars) {
            Ok(cel::Value::String(s)) => Some(s.trim().to_string()),
            _ => None,
        })
        .filter(|m| !m.is_empty() && !m.contains('\n'));
    from_expression
        .or_else(|| {
            v.message
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
        })
        .unwrap_or_else(|| format!("failed expression: {}", v.expression.trim()))
}

/// Evaluates a policy that matched: `Ok(None)` when it does not apply (a match condition
/// is false), else the failed validations (errors as failures with reason Invalid).
fn evaluate(policy: &PolicySpec, vars: &mut Vars) -> Result<Option<Vec<Failure>>, String> {
    if policy.param_kind.is_some() {
        return Err("paramKind is not supported by the simulator".into());
    }
    // Any false condition skips the policy, even if another one errs.
    let mut condition_error = None;
    for c in &policy.match_conditions {
        match Expr::compile(&c.expression).and_then(|e| e.eval_bool(vars)) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                condition_error.get_or_insert(format!(
                    "failed to evaluate match condition '{}': {e}",
                    c.name
                ));
            }
        }
    }
    if let Some(e) = condition_error {
        return Err(e);
    }
    let mut defined = Vec::new();
    for v in &policy.variables {
        if let Ok(value) = Expr::compile(&v.expression).and_then(|e| e.eval(vars)) {
            defined.push((v.name.clone(), value));
            vars.set("variables", cel_eval::map(defined.clone()));
        }
    }
    let mut failed = Vec::new();
    for v in &policy.validations {
        let outcome = Expr::compile(&v.expression).and_then(|e| e.eval_bool(vars));
        match outcome {
            Ok(true) => {}
            Ok(false) => failed.push(Failure {
                message: failure_message(v, vars),
                reason: v.reason.unwrap_or_default(),
            }),
            Err(e) if policy.failure_policy == FailurePolicy::Fail => {
                failed.push(Failure {
                    message: e,
                    reason: DenyReason::Invalid,
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "policy validation error ignored (failurePolicy Ignore)")
            }
        }
    }
    Ok(Some(failed))
}

fn denial(req: &Request<'_>, message: &str, reason: DenyReason) -> ApiError {
    let rt = &RESOURCES[req.res];
    let mut e = ApiError::forbidden(rt, req.name, message);
    e.code = reason.code();
    e.reason = reason.as_str();
    if let Some(d) = e.details.as_mut() {
        d["causes"] = json!([{ "message": message }]);
    }
    e
}

fn parse<T: serde::de::DeserializeOwned + Default>(obj: &Value, what: &str) -> Option<T> {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    serde_json::from_value(spec)
        .map_err(|e| {
            let name = obj.pointer("/metadata/name").and_then(Value::as_str);
            tracing::warn!(name, error = %e, "{what} not understood by the simulator: ignored");
        })
        .ok()
}

/// Runs every bound policy on `req`.
///
/// # Errors
/// The first denial, as the real server words it.
///
/// Returns the `Warning` headers of `Warn` bindings.
pub fn admit(st: &State, req: &Request<'_>) -> ApiResult<Vec<String>> {
    let mut bindings = st.values_in(resources::VAP_BINDINGS, "");
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    let name_of = |o: &Value| {
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    bindings.sort_by_key(|b| name_of(b));
    let rt = &RESOURCES[req.res];
    let namespace_object = rt
        .namespaced
        .then(|| st.get(resources::NAMESPACES, "", req.namespace))
        .flatten();
    let target = Target {
        operation: req.operation,
        group: rt.group,
        version: rt.version,
        resource: rt.plural,
        subresource: req.requester.subresource.as_deref().unwrap_or_default(),
        name: req.name,
        namespaced: rt.namespaced,
        is_namespace: req.res == resources::NAMESPACES,
        object: req.object,
        old_object: req.old_object,
        namespace_object: namespace_object.as_ref(),
    };
    let mut base = Vars::default();
    base.set_json("object", req.object.unwrap_or(&Value::Null));
    base.set_json("oldObject", req.old_object.unwrap_or(&Value::Null));
    base.set_json("request", &request_value(req));
    base.set_json(
        "namespaceObject",
        namespace_object.as_ref().unwrap_or(&Value::Null),
    );
    base.set("params", cel::Value::Null);
    base.set("variables", cel_eval::map(Vec::new()));

    let mut bound: Vec<(String, Value, Value)> = Vec::new();
    for b in bindings {
        let Some(spec) = parse::<BindingSpec>(&b, "ValidatingAdmissionPolicyBinding") else {
            continue;
        };
        if let Some(p) = st.get(resources::VAPS, "", &spec.policy_name) {
            bound.push((spec.policy_name, p, b));
        }
    }
    bound.sort_by(|a, b| (&a.0, name_of(&a.2)).cmp(&(&b.0, name_of(&b.2))));

    let mut warnings = Vec::new();
    for (policy_name, policy_obj, binding_obj) in bound {
        let (Some(policy), Some(binding)) = (
            parse::<PolicySpec>(&policy_obj, "ValidatingAdmissionPolicy"),
            parse::<BindingSpec>(&binding_obj, "ValidatingAdmissionPolicyBinding"),
        ) else {
            continue;
        };
        let binding_name = name_of(&binding_obj);
        if !policy.match_constraints.matches(&target, true)
            || binding
                .match_resources
                .as_ref()
                .is_some_and(|m| !m.matches(&target, false))
        {
            continue;
        }
        let mut vars = base.clone();
        let failed = match evaluate(&policy, &mut vars) {
            Ok(None) => continue,
            Ok(Some(failed)) => failed,
            Err(e) => {
                if policy.param_kind.is_some() {
                    tracing::warn!(policy = %policy_name, "paramKind is not supported: failurePolicy {:?} applies", policy.failure_policy);
                }
                match policy.failure_policy {
                    FailurePolicy::Ignore => continue,
                    FailurePolicy::Fail => vec![Failure {
                        message: e,
                        reason: DenyReason::Invalid,
                    }],
                }
            }
        };
        for Failure { message, reason } in failed {
            if binding.validation_actions.contains(&ValidationAction::Warn) {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {message}"
                ));
            }
            if binding.validation_actions.contains(&ValidationAction::Deny) {
                return Err(denial(
                    req,
                    &format!(
                        "ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {message}"
                    ),
                    reason,
                ));
            }
        }
    }
    Ok(warnings)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
