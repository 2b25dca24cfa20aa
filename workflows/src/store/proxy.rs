//! HTTP to a store's app from the worker, through the Kubernetes API server's Service proxy
//! (`GET /api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}`): the same request
//! on a real cluster and on the simulator, over the worker's `kube::Client`, with no route
//! from the worker's network to the store's needed. RBAC: `get` on `services/proxy`.
//!
//! The answer is sorted into the app's own answer, which the engine judges, and "nothing
//! usable yet" (no ready endpoints, a gateway error, a transport error), after which the
//! step polls again. The API server's own refusals (`Status` bodies) map to retry classes
//! like every other API call: a missing Service is retryable, a forbidden request fatal.
//!
//! ```text
//!   API server Status 429/5xx, app 502/503/504, transport error, timeout → Unavailable (poll)
//!   API server Status 404 → retryable error     401/403 → fatal (RBAC)     other → classify()
//!   anything else from the app (200, 404, 500, …) → App { status, body } → the engine judges
//! ```
//!
//! # Assumptions
//! `kube::Client`'s default retry layer re-sends 429/503/504 answers with growing backoff
//! (up to 15 times), so a Service without ready endpoints is not seen as a 503 at once: the
//! request is bounded by [`TIMEOUT`] and a timeout counts as "no answer yet".

use std::time::Duration;

use serde_json::Value;
use urumi_engine::StepError;

use super::cluster::classify;
use super::engines::excerpt;

/// How long one proxied request may take, the client's retries of 503/504 included.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What a proxied request gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The app behind the Service answered (any status but a gateway error).
    App { status: u16, body: String },
    /// Nothing usable yet; says why.
    Unavailable(String),
}

/// The API path of `path_and_query` (starting with `/`) on port `port` of Service `service`.
#[must_use]
pub fn service_proxy_path(ns: &str, service: &str, port: i32, path_and_query: &str) -> String {
    format!("/api/v1/namespaces/{ns}/services/{service}:{port}/proxy{path_and_query}")
}

/// `GET` `path_and_query` from Service `service` in `ns` through the API server.
///
/// # Errors
/// The API server refused the request itself (see the module documentation), classified.
pub async fn get(
    client: &kube::Client,
    ns: &str,
    service: &str,
    port: i32,
    path_and_query: &str,
) -> Result<Answer, StepError> {
    let path = service_proxy_path(ns, service, port, path_and_query);
    let request = http::Request::get(&path)
        .header(http::header::ACCEPT, "application/json, */*;q=0.5")
        .body(Vec::new())
        .map_err(|e| StepError::fatal(format!("GET {path}: {e}")))?;
    let send = async {
        let response = client.send(request.map(kube::client::Body::from)).await?;
        let status = response.status().as_u16();
        let body = read_capped(response.into_body()).await?;
        Ok::<_, kube::Error>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    match tokio::time::timeout(TIMEOUT, send).await {
        Err(_) => Ok(Answer::Unavailable(format!(
            "no answer within {} s (the client retries 503 and 504 answers, such as \"no endpoints available\", until then)",
            TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Ok(Answer::Unavailable(format!("GET {path}: {e}"))),
        Ok(Ok((status, body))) => sort(&path, status, body),
    }
}

/// The most of a response body read: a verdict needs the head of the answer, and a store's
/// app must not be able to make a worker buffer without bound.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Reads at most [`MAX_BODY_BYTES`] of `body`; the rest is not read.
async fn read_capped(mut body: kube::client::Body) -> Result<Vec<u8>, kube::Error> {
    use http_body_util::BodyExt;
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            let room = MAX_BODY_BYTES - out.len();
            out.extend_from_slice(&data[..data.len().min(room)]);
            if out.len() == MAX_BODY_BYTES {
                break;
            }
        }
    }
    Ok(out)
}

/// Tells the API server's own answers (a `v1` `Status` object) from the app's.
fn sort(path: &str, status: u16, body: String) -> Result<Answer, StepError> {
    let from_api_server = serde_json::from_str::<Value>(&body)
        .is_ok_and(|v| v["kind"] == "Status" && v["apiVersion"] == "v1");
    if from_api_server {
        let parsed: kube::core::Status = serde_json::from_str(&body).unwrap_or_default();
        let what = format!("GET {path}");
        return match status {
            429 | 500..=599 => Ok(Answer::Unavailable(format!(
                "{what}: {status} {}",
                parsed.message
            ))),
            // The Service is gone (it was applied by an earlier step): as for any missing
            // object, retry; a repair run restores it.
            404 => Err(StepError::retryable(format!("{what}: {}", parsed.message))),
            401 | 403 => Err(StepError::fatal(format!(
                "{what}: {status} {} ({}); the worker's identity needs `get` on `services/proxy` in store namespaces",
                parsed.reason, parsed.message
            ))),
            _ => {
                let error = kube::core::Status {
                    code: status,
                    ..parsed
                };
                Err(classify(&what, &kube::Error::Api(Box::new(error))))
            }
        };
    }
    if matches!(status, 502..=504) {
        return Ok(Answer::Unavailable(format!(
            "the app answered {status}: {}",
            excerpt(&body)
        )));
    }
    Ok(Answer::App { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use urumi_engine::RetryClass;

    #[tokio::test]
    async fn bodies_are_read_up_to_the_cap_and_no_further() {
        let big = kube::client::Body::from(vec![b'x'; 3 * MAX_BODY_BYTES]);
        assert_eq!(read_capped(big).await.unwrap().len(), MAX_BODY_BYTES);
        let small = kube::client::Body::from(b"[{\"id\":1}]".to_vec());
        assert_eq!(read_capped(small).await.unwrap(), b"[{\"id\":1}]");
    }

    fn status_body(code: u16, reason: &str, message: &str) -> String {
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code
        })
        .to_string()
    }

    #[test]
    fn the_path_names_service_port_and_the_app_path() {
        assert_eq!(
            service_proxy_path("store-a", "wordpress", 80, "/?x=1"),
            "/api/v1/namespaces/store-a/services/wordpress:80/proxy/?x=1"
        );
    }

    #[test]
    fn the_apps_answers_go_to_the_engine_and_gateway_errors_mean_not_yet() {
        assert_eq!(
            sort("p", 200, "[]".into()).unwrap(),
            Answer::App {
                status: 200,
                body: "[]".into()
            }
        );
        assert!(matches!(
            sort("p", 404, "<h1>Not Found</h1>".into()).unwrap(),
            Answer::App { status: 404, .. }
        ));
        assert_eq!(
            sort("p", 502, "<h1>Bad Gateway</h1>".into()).unwrap(),
            Answer::Unavailable("the app answered 502: <h1>Bad Gateway</h1>".into())
        );
    }

    #[test]
    fn the_api_servers_refusals_wait_retry_or_fail() {
        let no_endpoints = status_body(
            503,
            "ServiceUnavailable",
            "no endpoints available for service \"wordpress\"",
        );
        assert_eq!(
            sort("p", 503, no_endpoints).unwrap(),
            Answer::Unavailable(
                "GET p: 503 no endpoints available for service \"wordpress\"".into()
            )
        );
        let missing = sort(
            "p",
            404,
            status_body(404, "NotFound", "services \"wordpress\" not found"),
        )
        .unwrap_err();
        assert_eq!(missing.class, RetryClass::Retryable, "{missing:?}");
        assert!(missing.message.contains("not found"), "{missing:?}");
        let forbidden = sort("p", 403, status_body(403, "Forbidden", "no")).unwrap_err();
        assert_eq!(forbidden.class, RetryClass::Fatal);
        assert!(
            forbidden.message.contains("services/proxy"),
            "{forbidden:?}"
        );
    }
}
