//! The shared "this store is suspended" page, served by `urumi-api suspended-page` (the
//! chart's `<release>-suspended` Deployment and Service). A suspended store's Ingress reaches
//! it through an `ExternalName` Service in the store's namespace
//! (`StoreSettings::suspended_host`), so it answers whatever Host and path the shopper asked
//! for:
//!
//! ```text
//! GET|HEAD /healthz              200 "ok"                       (the pod's probes)
//! anything else, any method      503, Retry-After: 3600, Cache-Control: no-store
//!   Accept names JSON, not HTML    application/problem+json {type, title, status, detail}
//!   otherwise                      text/html: suspended.html (self-contained, no assets)
//!   HEAD                           the same status and headers, no body
//! ```
//!
//! Invariant: the page needs no database, no settings and no store; it reads only the
//! request's method, path and `Accept`, and never echoes anything the request sent.

use std::future::Future;
use std::time::Duration;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::listener::TcpAcceptor;
use poem::{Endpoint, Request, Response, Server, handler};

/// Where `urumi-api suspended-page` listens without `--listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8081";

/// `Retry-After` of every suspended answer, in seconds: an hour, not a promise.
pub const RETRY_AFTER_SECS: u32 = 3600;

/// The problem document's `type` (RFC 9457) for JSON clients.
pub const PROBLEM_TYPE: &str = "urn:urumi:problem:store-suspended";

/// The page a browser shows: one file, inline styles, no scripts or external assets.
pub const PAGE: &str = include_str!("suspended.html");

/// What a probe, or anyone, may read about the server itself.
const HEALTHZ: &str = "/healthz";

/// Whether the caller asked for JSON rather than HTML: its `Accept` names a JSON type
/// (`application/json`, `application/problem+json`, any `+json`) and not `text/html`. A
/// browser (`text/html, …, */*`) and `curl` (`*/*`) get the page.
#[must_use]
pub fn wants_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    let mut json = false;
    for media in accept.split(',') {
        let essence = media
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence == "text/html" {
            return false;
        }
        json |= essence == "application/json" || essence.ends_with("+json");
    }
    json
}

/// The RFC 9457 problem document JSON clients get.
#[must_use]
pub fn problem() -> serde_json::Value {
    serde_json::json!({
        "type": PROBLEM_TYPE,
        "title": "Store suspended",
        "status": StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        "detail": "This store is suspended; its owner can resume it.",
    })
}

/// The one endpoint: every method, host and path (see the module's table).
#[handler]
fn endpoint(req: &Request) -> Response {
    answer(req)
}

/// What `req` gets.
#[tracing::instrument(level = "debug", skip_all, fields(method = %req.method(), path = req.uri().path()))]
fn answer(req: &Request) -> Response {
    let head = req.method() == Method::HEAD;
    if (head || req.method() == Method::GET) && req.uri().path() == HEALTHZ {
        let ok = Response::builder().content_type("text/plain; charset=utf-8");
        return if head { ok.finish() } else { ok.body("ok") };
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (content_type, body) = if wants_json(accept) {
        ("application/problem+json", problem().to_string())
    } else {
        ("text/html; charset=utf-8", PAGE.to_owned())
    };
    let builder = Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::VARY, "Accept")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // Inline styles only: nothing may be fetched, framed, scripted or posted.
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        )
        .content_type(content_type);
    if head {
        builder.finish()
    } else {
        builder.body(body)
    }
}

/// The page's HTTP app (what [`run`] serves; tests call it through poem's `TestClient`).
#[must_use]
pub fn app() -> impl Endpoint {
    endpoint
}

/// Serves [`app`] on `listener` until `shutdown` completes, then lets open requests finish
/// (5 s at most).
///
/// # Errors
/// The listener cannot be used, or the server fails.
pub async fn run(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app(), shutdown, Some(Duration::from_secs(5)))
        .await
}

#[cfg(test)]
mod tests {
    use poem::test::TestClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The headers every suspended answer carries, whatever its body.
    fn assert_suspended_headers(resp: &poem::test::TestResponse, content_type: &str) {
        resp.assert_status(StatusCode::SERVICE_UNAVAILABLE);
        resp.assert_header(header::RETRY_AFTER, "3600");
        resp.assert_header(header::CACHE_CONTROL, "no-store");
        resp.assert_content_type(content_type);
    }

    #[tokio::test]
    async fn every_host_path_and_method_gets_the_503_page() {
        let client = TestClient::new(app());
        for (method, host, path) in [
            (Method::GET, "shop-one.stores.example.com", "/"),
            (Method::GET, "other.example.org", "/product/mug?ref=home"),
            (Method::POST, "shop-one.stores.example.com", "/checkout"),
            (Method::DELETE, "x", "/wp-admin/admin-ajax.php"),
            (Method::POST, "shop-one.stores.example.com", "/healthz"),
        ] {
            let resp = client
                .request(method.clone(), path)
                .header(header::HOST, host)
                .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
                .send()
                .await;
            assert_suspended_headers(&resp, "text/html; charset=utf-8");
            let body = resp.0.into_body().into_string().await.unwrap();
            assert!(
                body.contains("<h1>This store is suspended</h1>"),
                "{method} {path}: {body}"
            );
            assert!(body.contains("owner can resume it"), "{method} {path}");
        }
    }

    #[tokio::test]
    async fn the_page_is_self_contained_and_accessible() {
        assert!(PAGE.starts_with("<!doctype html>"));
        assert!(PAGE.contains(r#"<html lang="en">"#));
        assert!(PAGE.contains("<title>This store is suspended</title>"));
        assert!(PAGE.contains(r#"name="viewport""#));
        assert!(PAGE.contains("<main>"));
        for external in ["http:", "https:", "//", "<script", "<link", "<img", "url("] {
            assert!(
                !PAGE.contains(external),
                "the page loads something: {external}"
            );
        }
        // And the browser is told to fetch nothing else either.
        let resp = TestClient::new(app()).get("/").send().await;
        let csp = resp.0.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
    }

    #[tokio::test]
    async fn healthz_answers_ok_for_probes() {
        let client = TestClient::new(app());
        let resp = client.get("/healthz").send().await;
        resp.assert_status_is_ok();
        resp.assert_text("ok").await;
        let resp = client.head("/healthz").send().await;
        resp.assert_status_is_ok();
        resp.assert_text("").await;
    }

    #[tokio::test]
    async fn head_answers_the_same_status_and_headers_without_a_body() {
        let resp = TestClient::new(app()).head("/cart").send().await;
        assert_suspended_headers(&resp, "text/html; charset=utf-8");
        resp.assert_text("").await;
    }

    #[tokio::test]
    async fn json_clients_get_a_problem_document() {
        let client = TestClient::new(app());
        for accept in [
            "application/json",
            "application/problem+json; q=0.9, */*;q=0.1",
        ] {
            let resp = client
                .get("/wp-json/wc/v3/products")
                .header(header::ACCEPT, accept)
                .send()
                .await;
            assert_suspended_headers(&resp, "application/problem+json");
            resp.assert_json(serde_json::json!({
                "type": PROBLEM_TYPE,
                "title": "Store suspended",
                "status": 503,
                "detail": "This store is suspended; its owner can resume it.",
            }))
            .await;
        }
    }

    #[test]
    fn browsers_and_curl_are_not_taken_for_json_clients() {
        for (accept, json) in [
            (None, false),
            (Some("*/*"), false),
            (Some("text/html,application/xhtml+xml,*/*;q=0.8"), false),
            (Some("application/json, text/html"), false),
            (Some("Application/JSON"), true),
            (Some("application/problem+json"), true),
            (Some("text/plain, application/ld+json;q=0.5"), true),
        ] {
            assert_eq!(wants_json(accept), json, "{accept:?}");
        }
    }

    /// One raw request to the real server; what came back, headers and body as sent.
    async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_served_page_answers_over_http_and_stops_on_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, async {
            let _ = stopped.await;
        }));

        let get = raw(
            addr,
            "GET /any/path HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(get.starts_with("HTTP/1.1 503 "), "{get}");
        assert!(
            get.to_ascii_lowercase()
                .contains("\r\nretry-after: 3600\r\n"),
            "{get}"
        );
        assert!(get.ends_with("</html>\n"), "{get}");

        let head = raw(
            addr,
            "HEAD /any/path HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "a body after HEAD: {head}");

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops on shutdown")
            .unwrap()
            .unwrap();
    }
}
