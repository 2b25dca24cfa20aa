//! Failures and how they end the process: the API's `application/problem+json` documents
//! (decoded here, since progenitor hands non-JSON error bodies back as raw bytes), usage
//! errors, and everything else (the API unreachable, an answer this client cannot read).
//!
//! A problem prints as `error: <status> <title>: <detail>` plus one line per field error and
//! exits 1; a usage error exits 2; a watched operation that ended badly exits with its own
//! code (`ops watch`).

use std::fmt;
use std::future::Future;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::client::{ByteStream, Error, ResponseValue, types};

/// The most of an error body worth reading.
const MAX_ERROR_BODY: usize = 1 << 20;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The API refused the request and said why.
    Problem(types::Problem),
    /// The command line asked for something impossible; exit code 2.
    Usage(String),
    /// Anything else; exit code 1.
    Other(String),
    /// What a command watched ended in a way it reports with its own exit code (3 and up;
    /// `ops watch`: an operation that stopped or was cancelled).
    Outcome(u8, String),
}

impl Failure {
    /// The process exit code for this failure.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Problem(_) | Self::Other(_) => 1,
            Self::Outcome(code, _) => *code,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Problem(p) => {
                write!(f, "{} {}: {}", p.status, p.title, p.detail)?;
                for e in &p.errors {
                    write!(f, "\n  {}: {}", e.field, e.message)?;
                }
                Ok(())
            }
            Self::Usage(msg) | Self::Other(msg) | Self::Outcome(_, msg) => f.write_str(msg),
        }
    }
}

/// Awaits a generated client call and returns its body, or the failure it amounts to.
///
/// # Errors
/// See [`from_client_error`].
pub async fn call<T>(
    request: impl Future<Output = Result<ResponseValue<T>, Error<ByteStream>>>,
) -> Result<T, Failure> {
    match request.await {
        Ok(value) => Ok(value.into_inner()),
        Err(e) => Err(from_client_error(e).await),
    }
}

/// What a generated client error means to the user. Error answers are read (up to 1 MiB) and
/// decoded as problem documents.
pub async fn from_client_error(err: Error<ByteStream>) -> Failure {
    match err {
        Error::ErrorResponse(rv) => {
            let status = rv.status();
            let body = read_capped(rv.into_inner()).await;
            Failure::Problem(decode(status, &body))
        }
        Error::UnexpectedResponse(resp) => {
            let status = resp.status();
            let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            Failure::Problem(decode(status, &body))
        }
        Error::InvalidRequest(msg) => Failure::Usage(format!("invalid request: {msg}")),
        Error::CommunicationError(e) => {
            Failure::Other(format!("cannot reach the API: {}", chain(&e)))
        }
        Error::ResponseBodyError(e) => {
            Failure::Other(format!("the API's answer broke off: {}", chain(&e)))
        }
        Error::InvalidResponsePayload(_, e) => Failure::Other(format!(
            "the API answered with JSON this client does not understand ({e}); \
             is urumictl built from the same api/openapi.json as the server?"
        )),
        Error::InvalidUpgrade(e) => Failure::Other(format!("unexpected upgrade: {}", chain(&e))),
        Error::Custom(msg) => Failure::Other(msg),
    }
}

async fn read_capped(body: ByteStream) -> Vec<u8> {
    let mut stream = body.into_inner();
    let mut buf = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= MAX_ERROR_BODY {
            buf.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    buf
}

/// The problem document in `body`; when the body is not one (a proxy's HTML page, say), a
/// problem made of the status and the body's first line.
#[must_use]
pub fn decode(status: StatusCode, body: &[u8]) -> types::Problem {
    if let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) {
        // `errors` is required by the document; tolerate servers that leave out an empty one.
        doc.entry("errors")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Ok(p) = serde_json::from_value::<types::Problem>(Value::Object(doc)) {
            return p;
        }
    }
    let text = String::from_utf8_lossy(body);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let detail: String = first.chars().take(200).collect();
    types::Problem {
        type_: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        detail: if detail.is_empty() {
            "(no body)".into()
        } else {
            detail
        },
        errors: Vec::new(),
    }
}

/// An error and its causes, `: `-separated (reqwest's own message omits the cause).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_decode_with_or_without_field_errors() {
        let p = decode(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"type":"about:blank","title":"Unprocessable Entity","status":422,
                 "detail":"bad name","errors":[{"field":"/name","message":"too short"}]}"#,
        );
        assert_eq!(
            Failure::Problem(p).to_string(),
            "422 Unprocessable Entity: bad name\n  /name: too short"
        );
        let p = decode(
            StatusCode::FORBIDDEN,
            br#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"needs admin"}"#,
        );
        assert_eq!(
            Failure::Problem(p).to_string(),
            "403 Forbidden: needs admin"
        );
    }

    #[test]
    fn other_bodies_become_problems_of_their_status() {
        let p = decode(StatusCode::BAD_GATEWAY, b"\n<html>upstream down</html>\n");
        assert_eq!((p.status, p.title.as_str()), (502, "Bad Gateway"));
        assert_eq!(p.detail, "<html>upstream down</html>");
        assert_eq!(decode(StatusCode::NOT_FOUND, b"").detail, "(no body)");
    }

    #[test]
    fn usage_failures_exit_2_outcomes_their_own_code_and_the_rest_1() {
        assert_eq!(Failure::Usage(String::new()).exit_code(), 2);
        assert_eq!(Failure::Other(String::new()).exit_code(), 1);
        assert_eq!(Failure::Outcome(4, String::new()).exit_code(), 4);
    }
}
