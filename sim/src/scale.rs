//! The `scale` subresource of Deployments and StatefulSets,
//! `…/namespaces/{ns}/{deployments,statefulsets}/{name}/scale`, as the real API server
//! serves it.
//!
//! `GET` answers an `autoscaling/v1` `Scale`: the parent's name, namespace, uid,
//! resourceVersion and creationTimestamp, `spec.replicas`, `status.replicas` and
//! `status.selector` (the parent's label selector as a string, `app=web`). `PUT` of a
//! `Scale` and `PATCH` of one (merge; strategic merge, the same on a `Scale`; JSON patch;
//! apply, taken as a merge of the applied fields) write only the parent's `spec.replicas`,
//! as an update of the parent with subresource `scale`. So, as for any update: a stale
//! `metadata.resourceVersion` is a 409 Conflict, the parent's resourceVersion and
//! generation move, watchers and the controllers see the change, ValidatingAdmissionPolicies
//! judge the parent (see [`crate::policy`]), and its managedFields gain the manager's
//! `Update` entry for subresource `scale`. Negative replicas are 422 Invalid, as a
//! `Scale.autoscaling`. RBAC checks the request as `deployments/scale` (or
//! `statefulsets/scale`) with verb get, update or patch, in the server's routing.
//!
//! Not supported: apply ownership of `spec.replicas` through the `Scale` (the managed
//! fields record an `Update`, not an `Apply`), `autoscaling/v2` Scales.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::patch;
use crate::resources::RESOURCES;
use crate::selectors::LabelSelector;
use crate::store::{PatchType, State, WriteOpts, Written};

const API_VERSION: &str = "autoscaling/v1";
const KIND: &str = "Scale";

/// A write to the `scale` subresource.
#[derive(Debug, Clone)]
pub enum Change {
    /// `PUT`: the whole `Scale`.
    Replace(Value),
    /// `PATCH`: a patch of the current `Scale`.
    Patch(PatchType, Value),
}

/// The `Scale` of a Deployment or StatefulSet.
pub fn of(parent: &Value) -> Value {
    let md = &parent["metadata"];
    let selector = parent
        .pointer("/spec/selector")
        .map(|s| LabelSelector::from_object(s).to_string())
        .unwrap_or_default();
    json!({
        "kind": KIND, "apiVersion": API_VERSION,
        "metadata": {"name": md["name"], "namespace": md["namespace"], "uid": md["uid"],
            "resourceVersion": md["resourceVersion"], "creationTimestamp": md["creationTimestamp"]},
        "spec": {"replicas": parent.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": parent.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector},
    })
}

fn parent(st: &State, res: usize, ns: &str, name: &str) -> ApiResult<Value> {
    st.get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(&RESOURCES[res], name))
}

/// `GET …/scale`.
///
/// # Errors
/// 404 NotFound when the parent does not exist.
pub fn get(st: &State, res: usize, ns: &str, name: &str) -> ApiResult<Value> {
    parent(st, res, ns, name).map(|p| of(&p))
}

/// `PUT` or `PATCH …/scale`: sets the parent's `spec.replicas`; answers the new `Scale`
/// (the would-be one on a dry run).
///
/// # Errors
/// 404 NotFound, 409 Conflict (stale `resourceVersion`), 400 BadRequest (a body that is
/// no `Scale`, a bad patch), 422 Invalid (negative replicas), and what an update of the
/// parent can answer (admission policies).
pub fn write(
    st: &mut State,
    res: usize,
    ns: &str,
    name: &str,
    change: &Change,
    opts: &WriteOpts,
) -> ApiResult<Written> {
    let mut obj = parent(st, res, ns, name)?;
    let wanted = wanted(of(&obj), change)?;
    obj["spec"]["replicas"] = json!(replicas(&wanted, name)?);
    carry_metadata(&mut obj, &wanted);
    let opts = WriteOpts {
        subresource: Some("scale".into()),
        ..opts.clone()
    };
    let w = st.update(res, ns, name, obj, &opts)?;
    Ok(Written {
        obj: of(&w.obj),
        ..w
    })
}

/// The `Scale` the client asks for.
fn wanted(current: Value, change: &Change) -> ApiResult<Value> {
    let mut scale = current;
    match change {
        Change::Replace(body) => {
            check_type(body)?;
            scale.clone_from(body);
        }
        Change::Patch(PatchType::Json, p) => patch::json_patch(&mut scale, p)?,
        Change::Patch(_, p) => patch::merge_patch(&mut scale, p),
    }
    Ok(scale)
}

/// A `PUT` body must be an `autoscaling/v1` `Scale` (either may be left out).
fn check_type(body: &Value) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request is not a JSON object",
        ));
    }
    let field = |f: &str| {
        body.get(f)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(v) = field("apiVersion").filter(|v| *v != API_VERSION) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({API_VERSION})"
        )));
    }
    if let Some(k) = field("kind").filter(|k| *k != KIND) {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({KIND})"
        )));
    }
    Ok(())
}

/// `spec.replicas` of the wanted `Scale`: an int32, 0 when left out, never negative.
fn replicas(scale: &Value, name: &str) -> ApiResult<i32> {
    let n = match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "json: cannot unmarshal {v} into Go struct field ScaleSpec.spec.replicas of type int32"
                ))
            })?,
    };
    if n < 0 {
        return Err(ApiError::invalid_kind(
            KIND,
            "autoscaling",
            name,
            &[(
                "spec.replicas".into(),
                format!("Invalid value: {n}: must be greater than or equal to 0"),
                "FieldValueInvalid",
            )],
        ));
    }
    Ok(n)
}

/// The `Scale`'s name and resourceVersion go onto the parent, so the update checks them
/// (a name other than the URL's is 400, a stale resourceVersion 409); none, none checked.
fn carry_metadata(parent: &mut Value, scale: &Value) {
    for f in ["name", "resourceVersion"] {
        match scale.pointer(&format!("/metadata/{f}")) {
            Some(v) if !v.is_null() => parent["metadata"][f] = v.clone(),
            _ => {
                if let Some(m) = parent["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}})
    }

    #[test]
    fn the_scale_carries_the_parents_identity_replicas_and_selector() {
        let s = of(&deployment());
        assert_eq!(s["apiVersion"], "autoscaling/v1");
        assert_eq!(s["kind"], "Scale");
        assert_eq!(s["metadata"]["uid"], "u1");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
    }

    #[test]
    fn patches_apply_to_the_scale_and_replicas_are_checked() {
        let current = of(&deployment());
        let merged = wanted(
            current.clone(),
            &Change::Patch(PatchType::Merge, json!({"spec": {"replicas": 0}})),
        )
        .unwrap();
        assert_eq!(replicas(&merged, "web").unwrap(), 0);
        let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]);
        let patched = wanted(current.clone(), &Change::Patch(PatchType::Json, jp)).unwrap();
        assert_eq!(replicas(&patched, "web").unwrap(), 5);
        let negative = replicas(&json!({"spec": {"replicas": -1}}), "web").unwrap_err();
        assert_eq!(negative.code, 422);
        assert_eq!(
            negative.message,
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            replicas(&json!({"spec": {"replicas": 1.5}}), "web")
                .unwrap_err()
                .code,
            400
        );
        let wrong = Change::Replace(json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
        assert_eq!(wanted(current, &wrong).unwrap_err().code, 400);
    }

    #[test]
    fn the_scales_name_and_resource_version_become_the_updates_preconditions() {
        let mut p = deployment();
        carry_metadata(
            &mut p,
            &json!({"metadata": {"name": "web", "resourceVersion": "3"}}),
        );
        assert_eq!(p["metadata"]["resourceVersion"], "3");
        carry_metadata(&mut p, &json!({"spec": {"replicas": 1}}));
        assert!(p["metadata"].get("resourceVersion").is_none());
        assert!(p["metadata"].get("name").is_none());
        assert_eq!(p["metadata"]["uid"], "u1");
    }
}
