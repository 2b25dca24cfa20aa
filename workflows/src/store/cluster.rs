//! The store workflows' hands on the cluster: a real `kube::Client` (the same one against
//! the simulator, k3d or production), server-side apply with one field manager, and every
//! API error mapped to its retry class.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use urumi_engine::StepError;

/// The field manager of every object Urumi applies.
pub const FIELD_MANAGER: &str = "urumi";

/// Maps a kube error to a step error: 429 → transient, after the server's hint; 408, 5xx and
/// transport errors (connection lost, timeouts) → transient (they cost no attempt); 409 →
/// retryable; other 4xx (invalid, forbidden, not found) → fatal.
#[must_use]
pub fn classify(what: &str, e: &kube::Error) -> StepError {
    match e {
        kube::Error::Api(status) => {
            let msg = format!(
                "{what}: {} {} ({})",
                status.code, status.reason, status.message
            );
            match status.code {
                429 => {
                    let secs = status
                        .details
                        .as_ref()
                        .map_or(1, |d| d.retry_after_seconds.max(1));
                    StepError::retry_after(Duration::from_secs(u64::from(secs)), msg)
                }
                408 | 500..=599 => StepError::transient(msg),
                409 => StepError::retryable(msg),
                _ => StepError::fatal(msg),
            }
        }
        other => StepError::transient(format!("{what}: {other}")),
    }
}

/// A namespaced or cluster API for `K`.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Resource<DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    }
}

/// Server-side applies `obj` (create or update) with [`FIELD_MANAGER`], forcing ownership:
/// Urumi alone manages these objects. Returns the object as stored.
///
/// # Errors
/// A classified [`StepError`].
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, StepError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let what = format!("apply {} {name}", K::kind(&()));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(obj))
        .await
        .map_err(|e| match &e {
            // An apply that would create a missing object is authorized again as `create`;
            // the API server's Forbidden for that names no verb and no reason.
            kube::Error::Api(s) if s.code == 403 && s.message.ends_with("is forbidden: ") => {
                classify(
                    &format!(
                        "{what} (the object is missing and applying creates it: the worker \
                         cannot create resource \"{}\")",
                        K::plural(&())
                    ),
                    &e,
                )
            }
            _ => classify(&what, &e),
        })
}

/// Creates `obj` unless an object of that name exists; never overwrites. Returns true when
/// it created it.
///
/// # Errors
/// A classified [`StepError`].
pub async fn create_if_absent<K>(api: &Api<K>, obj: &K) -> Result<bool, StepError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let what = format!("create {} {name}", K::kind(&()));
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(false),
        Err(e) => Err(classify(&what, &e)),
    }
}

/// Whether an object with `obj`'s name exists, found by a dry-run create (`dryRun=All`: the
/// server validates and answers 409 AlreadyExists or 201, and stores nothing). It needs only
/// the `create` verb, so the worker can tell that a store's credentials Secret is there
/// without any right to read Secrets.
///
/// # Errors
/// A classified [`StepError`].
pub async fn exists_by_dry_run<K>(api: &Api<K>, obj: &K) -> Result<bool, StepError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    match api.create(&params, obj).await {
        Ok(_) => Ok(false),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => Ok(true),
        Err(e) => Err(classify(
            &format!("check that {} {name} exists (dry-run create)", K::kind(&())),
            &e,
        )),
    }
}

/// Gets an object, `None` if it does not exist.
///
/// # Errors
/// A classified [`StepError`].
pub async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, StepError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(|e| classify(&format!("get {}", K::kind(&())), &e))
}

/// Deletes an object with background propagation; absent is fine.
///
/// # Errors
/// A classified [`StepError`].
pub async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), StepError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(classify(&format!("delete {} {name}", K::kind(&())), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{Status, StatusDetails};

    fn api_error(code: u16, reason: &str, retry_after: u32) -> kube::Error {
        let details: StatusDetails =
            serde_json::from_value(serde_json::json!({ "retryAfterSeconds": retry_after }))
                .unwrap();
        kube::Error::Api(Box::new(Status {
            code,
            reason: reason.into(),
            details: Some(details),
            ..Status::default()
        }))
    }

    #[test]
    fn api_errors_map_to_their_retry_class() {
        use urumi_engine::RetryClass;
        assert_eq!(
            classify("x", &api_error(429, "TooManyRequests", 3)).class,
            RetryClass::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            classify("x", &api_error(503, "ServiceUnavailable", 0)).class,
            RetryClass::Transient
        );
        assert_eq!(
            classify("x", &api_error(500, "InternalError", 0)).class,
            RetryClass::Transient
        );
        assert_eq!(
            classify("x", &api_error(409, "Conflict", 0)).class,
            RetryClass::Retryable
        );
        assert_eq!(
            classify("x", &api_error(422, "Invalid", 0)).class,
            RetryClass::Fatal
        );
        assert_eq!(
            classify("x", &api_error(403, "Forbidden", 0)).class,
            RetryClass::Fatal
        );
    }
}
