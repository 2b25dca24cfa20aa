//! API errors as Kubernetes `Status` objects: the one place where a failure gets its HTTP
//! code, its `reason` and the wording the real API server uses.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// The crate's error type for simulator start-up and configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding, reading or writing a file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A configuration or snapshot file could not be parsed.
    #[error("invalid {what}: {source}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// An API operation done through the Rust API failed (a missing ServiceAccount).
    #[error("api: {0}")]
    Api(#[from] ApiError),
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed API call, rendered as a `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
    pub reason: &'static str,
    /// Human-readable message, worded like the real API server.
    pub message: String,
    /// `Status.details`, when the real server sends them.
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429 and some 5xx).
    pub retry_after: Option<u64>,
}

/// `Result` of an API operation.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn rt_details(rt: &ResourceType, name: &str) -> Value {
        let mut d = json!({ "name": name, "kind": rt.plural });
        if !rt.group.is_empty() {
            d["group"] = json!(rt.group);
        }
        d
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified()),
        )
        .with_details(Self::rt_details(rt, name))
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource").with_details(
            json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }),
        )
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified()),
        )
        .with_details(Self::rt_details(rt, name))
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified()
            ),
        )
        .with_details(Self::rt_details(rt, name))
    }

    /// 409 server-side apply conflict with other field managers.
    pub fn apply_conflict(rt: &ResourceType, name: &str, conflicts: &[(String, String)]) -> Self {
        let n = conflicts.len();
        let mut msg = if n == 1 {
            format!(
                "Apply failed with 1 conflict: conflict with \"{}\": {}",
                conflicts[0].0, conflicts[0].1
            )
        } else {
            let mut m = format!("Apply failed with {n} conflicts: ");
            let parts: Vec<String> = conflicts
                .iter()
                .map(|(mgr, f)| format!("conflict with \"{mgr}\": {f}"))
                .collect();
            m.push_str(&parts.join("\n"));
            m
        };
        if msg.is_empty() {
            msg = "Apply failed".into();
        }
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(mgr, f)| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with \"{mgr}\""), "field": f }))
            .collect();
        let mut d = Self::rt_details(rt, name);
        d["causes"] = Value::Array(causes);
        Self::new(409, "Conflict", msg).with_details(d)
    }

    /// 422 `<Kind> "<name>" is invalid: <field>: <message>, ...`.
    pub fn invalid(
        rt: &ResourceType,
        name: &str,
        causes: &[(String, String, &'static str)],
    ) -> Self {
        Self::invalid_kind(rt.kind, rt.group, name, causes)
    }

    /// [`ApiError::invalid`] for any kind, stored or not (`Scale`): names it `Kind.group`
    /// (`Deployment.apps`, `Scale.autoscaling`), or `Kind` for core.
    pub fn invalid_kind(
        kind: &str,
        group: &str,
        name: &str,
        causes: &[(String, String, &'static str)],
    ) -> Self {
        let parts: Vec<String> = causes.iter().map(|(f, m, _)| format!("{f}: {m}")).collect();
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let message = if parts.len() == 1 {
            format!("{qualified} \"{name}\" is invalid: {}", parts[0])
        } else {
            format!("{qualified} \"{name}\" is invalid: [{}]", parts.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|(f, m, r)| json!({ "reason": r, "message": m, "field": f }))
            .collect();
        let mut d = json!({ "name": name, "kind": kind, "causes": causes });
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        Self::new(422, "Invalid", message).with_details(d)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 Invalid with a plain message (a patch that cannot be applied).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }

    /// 403 `<resource> "<name>" is forbidden: <why>`.
    pub fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} \"{name}\" is forbidden: {why}", rt.qualified()),
        )
        .with_details(Self::rt_details(rt, name))
    }

    /// 403 as the API server's `NewForbidden` words it: `<resource>.<group> "<name>" is
    /// forbidden: <err>`, without the name part when `name` is empty and as `forbidden: <err>`
    /// when `resource` is empty (a non-resource path). `details` carries the non-empty ones.
    pub fn forbidden_request(group: &str, resource: &str, name: &str, err: &str) -> Self {
        let qualified = if group.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}.{group}")
        };
        let message = if resource.is_empty() {
            format!("forbidden: {err}")
        } else if name.is_empty() {
            format!("{qualified} is forbidden: {err}")
        } else {
            format!("{qualified} \"{name}\" is forbidden: {err}")
        };
        let mut d = json!({});
        for (key, value) in [("name", name), ("group", group), ("kind", resource)] {
            if !value.is_empty() {
                d[key] = json!(value);
            }
        }
        Self::new(403, "Forbidden", message).with_details(d)
    }

    /// 401 for a bearer token the server did not issue (or no longer honours).
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(verb: &str, rt: &ResourceType) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                rt.qualified()
            ),
        )
    }

    /// 410 Expired (a watch or continue token older than the retained history).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
        )
    }

    /// 503 ServiceUnavailable (e.g. a Service proxy with no endpoints).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// An injected fault: any code, with the reason the real server pairs with it.
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (injected)",
            ),
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later (injected)",
            ),
            500 => ("InternalError", "Internal error occurred: injected fault"),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request (injected)",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted (injected)",
            ),
            _ => ("InternalError", "injected fault"),
        };
        let mut e = Self::new(code, reason, message);
        e.retry_after = retry_after;
        e
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// The `Status` object sent to the client.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        if let Some(ra) = self.retry_after {
            let d = s
                .get_mut("details")
                .map(|d| d.take())
                .unwrap_or_else(|| json!({}));
            let mut d = if d.is_object() { d } else { json!({}) };
            d["retryAfterSeconds"] = json!(ra);
            s["details"] = d;
        }
        s
    }
}
