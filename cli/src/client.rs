//! The API client. Everything under [`generated`] is progenitor's output for the committed
//! `api/openapi.json` (see `build.rs`); this file only includes it and builds the HTTP clients
//! it runs on: the bearer token as a default header, timeouts, and TLS for `https://` URLs.
//!
//! Two instances share one base URL: [`Api::client`] for ordinary requests (bounded by a total
//! timeout) and [`Api::stream`] for the server-sent event stream, which stays open as long as
//! the caller reads it.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::problem::Failure;

/// progenitor's client, types and builders for the Urumi API.
#[allow(
    unused_imports,
    dead_code,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    clippy::restriction,
    reason = "generated code: linted by its generator, not here"
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/urumi_client.rs"));
}

/// The values of the API's string enums, generated from the same document.
#[allow(dead_code, reason = "generated: not every enum has a flag")]
pub mod enums {
    include!(concat!(env!("OUT_DIR"), "/urumi_enums.rs"));
}

pub use generated::types;
pub use generated::{ByteStream, Client, ClientInfo, Error, ResponseValue};

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an ordinary request may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The generated client, set up for one API and one token.
#[derive(Debug)]
pub struct Api {
    /// For requests that answer a document.
    pub client: Client,
    /// For `/api/v1/events`: no total timeout.
    pub stream: Client,
}

impl Api {
    /// Clients for the API at `url`, sending `token` as `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// [`Failure::Usage`] for a URL that is not `http(s)://…` or a token that cannot be a
    /// header value.
    pub fn new(url: &str, token: Option<&str>) -> Result<Self, Failure> {
        let base = base_url(url)?;
        // reqwest is built without a default TLS provider; ring is the workspace's.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        if let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Failure::Usage("the token contains characters a header cannot carry".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("urumictl/", env!("CARGO_PKG_VERSION")))
                .default_headers(headers.clone())
                .connect_timeout(CONNECT_TIMEOUT)
        };
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| Failure::Other(format!("cannot set up the HTTP client: {e}")))
        };
        Ok(Self {
            client: Client::new_with_client(&base, build(builder().timeout(REQUEST_TIMEOUT))?),
            stream: Client::new_with_client(&base, build(builder())?),
        })
    }
}

/// `url` without a trailing slash, once it is known to be an absolute http(s) URL.
fn base_url(url: &str) -> Result<String, Failure> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| Failure::Usage(format!("--url {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Failure::Usage(format!(
            "--url {url:?} must be an http:// or https:// URL with a host"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn base_urls_are_absolute_http_without_a_trailing_slash() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            base_url("https://api.example/urumi").unwrap(),
            "https://api.example/urumi"
        );
        for bad in ["127.0.0.1:8080", "ftp://host", "not a url", "http://"] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }
}
