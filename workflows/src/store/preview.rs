//! Applying a store's desired state object by object and saying what changed — for real
//! (`store.repair`'s `reapply`) or under `dryRun=All` (`store.preview`'s `preview`, the plan
//! an operation's dry run shows; see `urumi_store::preview`). The two walk the same list
//! ([`render::repaired`]) through the same [`reconcile`], so a preview says what the repair
//! would do.
//!
//! An object's change is found by comparing it as it is (GET) with what the apply answers:
//! the stored object after a real apply, the would-be object after a dry run. Fields that
//! every write touches (`resourceVersion`, `managedFields`, `generation`) and `status` are
//! not compared.

use std::str::FromStr;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::GroupVersion;
use kube::{Api, Client};
use serde_json::Value;
use urumi_engine::{ResultExt, RetryClass, StepError};
use urumi_store::preview::{Change, MAX_FIELDS, ObjectChange, PlannedAction, StorePlan};
use uuid::Uuid;

use super::cluster::{FIELD_MANAGER, classify, exists_by_dry_run, get_opt};
use super::engines::ArchiveKind;
use super::render::{self, CREDENTIALS, SUSPENDED_SERVICE};
use super::steps::Ctx;

/// Server-side applies `obj` (JSON with `apiVersion`, `kind` and `metadata.name`, and
/// `metadata.namespace` unless it is cluster-scoped) with [`FIELD_MANAGER`], forcing
/// ownership — under `dryRun=All` when `dry_run` — and says what the apply changes.
///
/// # Errors
/// A classified [`StepError`]; a malformed `obj` is fatal (a bug in rendering).
pub async fn reconcile(
    client: &Client,
    obj: &Value,
    dry_run: bool,
) -> Result<ObjectChange, StepError> {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) =
        (text("/apiVersion"), text("/kind"), text("/metadata/name"))
    else {
        return Err(StepError::fatal(
            "a rendered object lacks apiVersion, kind or metadata.name",
        ));
    };
    let gvk = GroupVersion::from_str(api_version).fatal()?.with_kind(kind);
    let resource = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = match text("/metadata/namespace") {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let before = api
        .get_opt(name)
        .await
        .map_err(|e| classify(&format!("get {kind} {name}"), &e))?;
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    if dry_run {
        params = params.dry_run();
    }
    let after = api
        .patch(name, &params, &Patch::Apply(obj))
        .await
        .map_err(|e| classify(&format!("apply {kind} {name}"), &e))?;
    let (change, fields) = match before {
        None => (Change::Create, Vec::new()),
        Some(before) => {
            let fields = changed_fields(
                &serde_json::to_value(before).fatal()?,
                &serde_json::to_value(after).fatal()?,
            );
            if fields.is_empty() {
                (Change::Unchanged, fields)
            } else {
                (Change::Update, fields)
            }
        }
    };
    Ok(ObjectChange {
        kind: kind.to_owned(),
        name: name.to_owned(),
        change,
        fields,
        note: None,
    })
}

/// JSON pointers of the fields that differ between `before` and `after`, leaves first found
/// (a key present on one side only, an array whose length changed, a different scalar), at
/// most [`MAX_FIELDS`]; fields every write touches and `status` are left out.
#[must_use]
pub fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    fn volatile(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("status");
        }
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in ["resourceVersion", "managedFields", "generation"] {
                m.remove(k);
            }
        }
        v
    }
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        if out.len() >= MAX_FIELDS || a == b {
            return;
        }
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(
                        &format!("{path}/{key}"),
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(&format!("{path}/{i}"), p, q, out);
                }
            }
            _ => out.push(if path.is_empty() {
                "/".into()
            } else {
                path.into()
            }),
        }
    }
    let mut out = Vec::new();
    walk("", &volatile(before), &volatile(after), &mut out);
    out
}

/// What `store.repair` does (`dry_run` false) or would do (`dry_run` true) to the store of
/// `c`, whose namespace the caller has proven is the store's: the credentials Secret must
/// exist (it cannot be re-made), then every object of [`render::repaired`] is reconciled.
///
/// # Errors
/// Fatal when the credentials Secret is missing; otherwise as [`reconcile`].
pub(super) async fn repair(c: &Ctx, dry_run: bool) -> Result<Vec<ObjectChange>, StepError> {
    let (engine, spec, s) = (c.engine()?, c.spec()?, &c.deps.settings);
    // Found by a dry-run create: the worker has no right to read Secrets. The values of the
    // would-be Secret are placeholders; nothing is stored.
    let probe = engine
        .credential_keys()
        .iter()
        .map(|k| ((*k).to_owned(), String::new()))
        .collect();
    let secrets: Api<Secret> = c.api()?;
    if !exists_by_dry_run(&secrets, &render::credentials(&spec, &probe)).await? {
        return Err(StepError::fatal(
            "the credentials Secret is missing: the database password cannot be recovered; restore the Secret, then retry",
        ));
    }
    let mut changes = vec![ObjectChange {
        kind: "Secret".into(),
        name: CREDENTIALS.into(),
        change: Change::Unchanged,
        fields: Vec::new(),
        note: Some(
            "kept as it is: a repair never rewrites it, and its values are never read".into(),
        ),
    }];
    for obj in render::repaired(engine, &spec, s) {
        changes.push(reconcile(c.client()?, &obj, dry_run).await?);
    }
    Ok(changes)
}

/// What `store.delete` would do to the store of `c`: delete its namespace (a dry-run
/// delete, so admission judges it), or nothing when the namespace is gone.
///
/// # Errors
/// Fatal when the namespace is not the store's (the delete would refuse it); API errors
/// classified.
async fn delete(c: &Ctx) -> Result<Vec<ObjectChange>, StepError> {
    let api: Api<Namespace> = Api::all(c.client()?.clone());
    let ns = c.ns();
    let Some(found) = get_opt(&api, &ns).await? else {
        return Ok(vec![ObjectChange {
            kind: "Namespace".into(),
            name: ns,
            change: Change::Unchanged,
            fields: Vec::new(),
            note: Some("already gone: the delete only marks the store deleted".into()),
        }]);
    };
    super::steps::ensure_owned(&found, c)?;
    let params = DeleteParams {
        dry_run: true,
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    api.delete(&ns, &params)
        .await
        .map_err(|e| classify(&format!("delete Namespace {ns} (dry run)"), &e))?;
    Ok(vec![ObjectChange {
        kind: "Namespace".into(),
        name: ns,
        change: Change::Delete,
        fields: Vec::new(),
        note: Some("with every object in it".into()),
    }])
}

/// What a resume deletes besides what it applies: the suspended page's alias Service, when
/// it is there (a dry-run delete, so admission judges it).
async fn suspended_page_removal(c: &Ctx) -> Result<Option<ObjectChange>, StepError> {
    let api: Api<Service> = c.api()?;
    if get_opt(&api, SUSPENDED_SERVICE).await?.is_none() {
        return Ok(None);
    }
    let params = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    api.delete(SUSPENDED_SERVICE, &params)
        .await
        .map_err(|e| classify(&format!("delete Service {SUSPENDED_SERVICE} (dry run)"), &e))?;
    Ok(Some(ObjectChange {
        kind: "Service".into(),
        name: SUSPENDED_SERVICE.into(),
        change: Change::Delete,
        fields: Vec::new(),
        note: Some("the suspended page's alias, no longer routed to".into()),
    }))
}

/// One store's plan for `action`. A failure the action itself would meet (fatal: the store
/// is gone, its namespace is not its own, its Secret is missing, the API server refuses)
/// becomes the plan's `error`; a passing failure (transient, retryable) is the step's, so
/// the engine retries it.
///
/// # Errors
/// Non-fatal [`StepError`]s.
pub(super) async fn plan(
    make: impl FnOnce() -> Result<Ctx, StepError>,
    store_id: Uuid,
    action: PlannedAction,
) -> Result<StorePlan, StepError> {
    let result = async {
        let c = make()?;
        match action {
            PlannedAction::Repair
            | PlannedAction::Suspend
            | PlannedAction::Resize
            | PlannedAction::Domains => {
                c.own_namespace().await?;
                repair(&c, true).await
            }
            PlannedAction::Resume => {
                c.own_namespace().await?;
                let mut objects = repair(&c, true).await?;
                objects.extend(suspended_page_removal(&c).await?);
                Ok(objects)
            }
            PlannedAction::Delete => delete(&c).await,
            PlannedAction::Upgrade => {
                c.own_namespace().await?;
                let new = super::upgrade::target_view(&c)?;
                let mut changes: Vec<_> = repair(&new, true)
                    .await?
                    .into_iter()
                    .filter(|o| o.change != Change::Unchanged)
                    .collect();
                for obj in super::upgrade::planned(&c)? {
                    changes.push(reconcile(c.client()?, &obj, true).await?);
                }
                Ok(changes)
            }
            PlannedAction::Backup | PlannedAction::Restore => {
                c.own_namespace().await?;
                let kind = if action == PlannedAction::Backup {
                    ArchiveKind::Backup
                } else {
                    ArchiveKind::Restore
                };
                let mut changes = Vec::new();
                for obj in super::backup::planned(&c, kind).await? {
                    changes.push(reconcile(c.client()?, &obj, true).await?);
                }
                Ok(changes)
            }
        }
    }
    .await;
    match result {
        Ok(objects) => Ok(StorePlan {
            store_id,
            objects,
            error: None,
        }),
        Err(e) if e.class == RetryClass::Fatal => Ok(StorePlan {
            store_id,
            objects: Vec::new(),
            error: Some(e.message),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn changed_fields_name_the_leaves_that_differ_and_skip_what_every_write_touches() {
        let before = json!({
            "metadata": {"name": "web", "resourceVersion": "1", "generation": 1,
                         "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 1, "template": {"containers": [{"image": "a:1"}, {"image": "b"}]}},
            "status": {"ready": 0}
        });
        let mut after = before.clone();
        after["metadata"]["resourceVersion"] = json!("2");
        after["metadata"]["generation"] = json!(2);
        after["status"]["ready"] = json!(1);
        assert!(changed_fields(&before, &after).is_empty());

        after["spec"]["replicas"] = json!(2);
        after["spec"]["template"]["containers"][0]["image"] = json!("a:2");
        after["metadata"]["labels"]["app.kubernetes.io/name"] = json!("shop");
        after["spec"]["paused"] = json!(true);
        assert_eq!(
            changed_fields(&before, &after),
            [
                "/metadata/labels/app.kubernetes.io~1name",
                "/spec/paused",
                "/spec/replicas",
                "/spec/template/containers/0/image",
            ]
        );
        after["spec"]["template"]["containers"] = json!([{"image": "a:1"}]);
        assert!(
            changed_fields(&before, &after).contains(&"/spec/template/containers".to_owned()),
            "an array of another length is one change"
        );
    }

    #[test]
    fn changed_fields_stop_at_their_cap() {
        let before = json!({ "data": {} });
        let after = json!({ "data": (0..50).map(|i| (format!("k{i:02}"), json!(i))).collect::<serde_json::Map<_, _>>() });
        assert_eq!(changed_fields(&before, &after).len(), MAX_FIELDS);
    }
}
