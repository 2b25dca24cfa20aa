//! The API's one error type: every failure is an `application/problem+json` document
//! (RFC 9457: `type`, `title`, `status`, `detail`, and `errors[]` with field paths).
//!
//! [`ApiError`] is what operations return; [`from_poem_error`] turns errors raised outside
//! the operations (unknown routes, body limits, parse errors) into the same shape.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use urumi_store::service;

/// A problem document.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` when the status says it all).
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Field-level problems, when the request body or parameters were invalid (else empty).
    pub errors: Vec<FieldError>,
}

/// One invalid field.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct FieldError {
    /// JSON-pointer-like path of the field, e.g. `/name`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

const PROBLEM: &str = "application/problem+json";

/// Every error an operation can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed: bad JSON, unknown fields, a malformed id or parameter.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No or an unknown bearer token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's role does not allow this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (a taken name, an active run).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than the configured limit.
    #[oai(status = 413, content_type = "application/problem+json")]
    TooLarge(Json<Problem>),
    /// The body is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The request is well-formed but cannot be carried out (invalid name, unknown plan, an
    /// idempotency key reused with another body).
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// A rate limit or a cap on active stores; retry after the given number of seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(
        Json<Problem>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A bug or an outage; details are in the server's log, never in the answer.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database is unavailable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>),
}

fn problem(status: StatusCode, detail: impl Into<String>) -> Json<Problem> {
    Json(Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: detail.into(),
        errors: Vec::new(),
    })
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(problem(StatusCode::BAD_REQUEST, detail))
    }
    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized(problem(StatusCode::UNAUTHORIZED, detail))
    }
    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(problem(StatusCode::FORBIDDEN, detail))
    }
    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(problem(StatusCode::NOT_FOUND, detail))
    }
    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(problem(StatusCode::CONFLICT, detail))
    }
    /// 422, optionally naming the field.
    pub fn unprocessable(field: Option<&str>, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut p = problem(StatusCode::UNPROCESSABLE_ENTITY, detail.clone());
        if let Some(field) = field {
            p.0.errors.push(FieldError {
                field: field.into(),
                message: detail,
            });
        }
        Self::Unprocessable(p)
    }
    /// 429 with `Retry-After`.
    pub fn too_many(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::TooManyRequests(
            problem(StatusCode::TOO_MANY_REQUESTS, detail),
            retry_after_secs.max(1),
        )
    }
    /// 500; the cause is logged here and not shown to the caller.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal(problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; see the server log",
        ))
    }
}

/// Any error that escaped the operations (unknown route, wrong method, body too large, a
/// parameter or body that does not parse, a missing token, …) as a problem document with the
/// same status. poem-openapi hands parse errors of `Result`-returning operations here.
pub fn from_poem_error(err: poem::Error) -> Response {
    // An operation's own ApiError travels as an error built from its response: keep it.
    if err.is_from_response() {
        return err.into_response();
    }
    // The framework says 422 for a body of the wrong shape; to clients that is a malformed
    // request like any other parse error (422 is kept for requests we understood and refused).
    let status = match err.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    let detail = if status == StatusCode::UNAUTHORIZED {
        "missing or invalid bearer token (Authorization: Bearer <token>)".to_owned()
    } else if status.is_server_error() {
        tracing::error!(error = %err, "internal error outside an operation");
        "internal error; see the server log".to_owned()
    } else {
        err.to_string()
    };
    let body = serde_json::to_vec(&problem(status, detail).0).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type(PROBLEM)
        .body(body)
        .into_response()
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry later",
                ))
            }
            e => Self::internal(&e),
        }
    }
}

impl From<urumi_engine::Error> for ApiError {
    fn from(e: urumi_engine::Error) -> Self {
        use urumi_engine::Error as E;
        match e {
            E::Conflict { .. } => Self::conflict(e.to_string()),
            E::NotFound(_) => Self::not_found(e.to_string()),
            E::InvalidState { .. } => Self::conflict(e.to_string()),
            E::Superseded { .. } => Self::conflict(e.to_string()),
            E::InvalidInput { .. } | E::UnknownDefinition { .. } => {
                Self::unprocessable(None, e.to_string())
            }
            E::UnknownStep { .. } | E::NotCarried { .. } => {
                Self::unprocessable(Some("/from_step"), e.to_string())
            }
            E::Database(db) => db.into(),
            E::InvalidDefinition { .. } | E::InvalidSchedule { .. } => Self::internal(&e),
        }
    }
}

impl From<urumi_ops::Error> for ApiError {
    fn from(e: urumi_ops::Error) -> Self {
        use urumi_ops::Error as E;
        match e {
            E::Invalid { field, .. } => {
                // The API names a selector's workflow `kind`.
                let field = match field {
                    "/selector/definition" => "/selector/kind",
                    f => f,
                };
                Self::unprocessable(Some(field), e.to_string())
            }
            E::TooManyTargets { .. } => Self::unprocessable(Some("/selector"), e.to_string()),
            E::NotFound(_) => Self::not_found(e.to_string()),
            E::InvalidState { .. } => Self::conflict(e.to_string()),
            E::Engine(inner) => inner.into(),
            E::Database(db) => db.into(),
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        match e {
            E::InvalidName(_) => Self::unprocessable(Some("/name"), e.to_string()),
            E::UnknownPlan(_) => Self::unprocessable(Some("/plan"), e.to_string()),
            E::UnknownChannel(_) => Self::unprocessable(Some("/channel"), e.to_string()),
            E::UnknownEngine(_) => Self::unprocessable(Some("/engine"), e.to_string()),
            E::SlugTaken(_) | E::DomainTaken(_) => Self::conflict(e.to_string()),
            E::InvalidDomain(_) | E::TooManyDomains { .. } => {
                Self::unprocessable(Some("/domain"), e.to_string())
            }
            E::NotFound(_) | E::DomainNotAttached { .. } => Self::not_found(e.to_string()),
            E::Deleted(_)
            | E::WrongStatus { .. }
            | E::DoesNotFit { .. }
            | E::BackupNotRestorable { .. } => Self::conflict(e.to_string()),
            E::BackupNotFound { .. } => Self::not_found(e.to_string()),
            E::BackupOfAnotherStore { .. } => {
                Self::unprocessable(Some("/backup_id"), e.to_string())
            }
            E::Engine(inner) => inner.into(),
            E::Database(db) => db.into(),
        }
    }
}

impl From<crate::views::UnknownEngine> for ApiError {
    fn from(e: crate::views::UnknownEngine) -> Self {
        Self::internal(&e)
    }
}
