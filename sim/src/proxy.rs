//! The Service proxy subresource, `…/namespaces/{ns}/services/[{scheme}:]{name}[:{port}]/proxy[/{path}]`:
//! what the API server answers when a client reaches an app through it.
//!
//! Like the real server: a missing Service is a 404 `Status`; a port the Service does not
//! have, or no Ready pod behind its selector, is a 503 `Status` ("no endpoints available for
//! service …"). With a Ready pod the simulated app answers instead (the sim runs no
//! containers):
//!
//! - the WooCommerce Store API product list (`/wp-json/wc/store/v1/products`, or any path
//!   with `rest_route=/wc/store/v1/products`): `200`, a JSON array with one product;
//! - any other `GET`/`HEAD`: `200`, a small HTML page naming the namespace and Service;
//! - other methods: `405`.
//!
//! Fault rules see these requests as verb `get` (`create`, … for other methods) on resource
//! `services/proxy`, so a rule can make a namespace's storefront answer 503 for a while.

use serde_json::{Value, json};

use crate::controllers::pod_ready;
use crate::error::{ApiError, ApiResult};
use crate::resources::{self, RESOURCES};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::State;

/// What the simulated app answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

/// Splits a proxy target, `name`, `name:port` or `scheme:name:port`, into (name, port).
///
/// # Errors
/// 400 for an unknown scheme or too many parts.
pub fn parse_target(target: &str) -> ApiResult<(&str, &str)> {
    match target.split(':').collect::<Vec<_>>().as_slice() {
        [name] => Ok((name, "")),
        [name, port] => Ok((name, port)),
        ["http" | "https" | "", name, port] => Ok((name, port)),
        _ => Err(ApiError::bad_request(format!(
            "invalid service proxy target {target:?}: want [scheme:]name[:port]"
        ))),
    }
}

/// Answers `method path?query` sent to `target`'s proxy in `ns`.
///
/// # Errors
/// The API server's own refusals: 404 (no such Service), 503 (no such port, no Ready
/// endpoint), 400 (a malformed target).
pub fn answer(
    st: &State,
    method: &http::Method,
    ns: &str,
    target: &str,
    path: &str,
    query: &str,
) -> ApiResult<AppAnswer> {
    let (name, port) = parse_target(target)?;
    let svc = st
        .get(resources::SERVICES, ns, name)
        .ok_or_else(|| ApiError::not_found(&RESOURCES[resources::SERVICES], name))?;
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_port = |p: &Value| {
        port.is_empty()
            || p["name"].as_str() == Some(port)
            || p["port"].as_i64().is_some_and(|n| n.to_string() == port)
    };
    if !ports.iter().any(has_port) {
        return Err(ApiError::service_unavailable(format!(
            "no service port {port:?} found for service \"{name}\""
        )));
    }
    let selector = svc.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    let no_endpoints =
        || ApiError::service_unavailable(format!("no endpoints available for service \"{name}\""));
    if selector.as_object().is_none_or(serde_json::Map::is_empty) {
        return Err(no_endpoints());
    }
    let labels = LabelSelector::from_object(&json!({ "matchLabels": selector }));
    let (pods, _, _) = st.list(
        resources::PODS,
        Some(ns),
        &labels,
        &FieldSelector::default(),
        None,
        None,
    )?;
    let backend = pods
        .iter()
        .filter_map(|raw| serde_json::from_slice::<Value>(raw).ok())
        .find(|p| pod_ready(p) && p.pointer("/metadata/deletionTimestamp").is_none())
        .ok_or_else(no_endpoints)?;
    let pod = backend
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Ok(app(method, ns, name, pod, path, query))
}

fn is_product_list(path: &str, query: &str) -> bool {
    const ROUTE: &str = "/wc/store/v1/products";
    path.trim_end_matches('/')
        .ends_with(&format!("/wp-json{ROUTE}"))
        || query.split('&').any(|kv| {
            kv.split_once('=').is_some_and(|(k, v)| {
                k == "rest_route" && v.replace("%2F", "/").replace("%2f", "/") == ROUTE
            })
        })
}

/// The simulated app behind a Ready pod.
fn app(
    method: &http::Method,
    ns: &str,
    service: &str,
    pod: &str,
    path: &str,
    query: &str,
) -> AppAnswer {
    if method != http::Method::GET && method != http::Method::HEAD {
        return AppAnswer {
            status: 405,
            content_type: "text/plain; charset=utf-8",
            body: format!("{method} is not served by the simulated app\n"),
        };
    }
    if is_product_list(path, query) {
        let products = json!([{
            "id": 1, "name": "Premium Cotton T-Shirt", "sku": "URUMI-TSHIRT", "type": "simple",
            "is_purchasable": true, "is_in_stock": true,
            "prices": { "price": "2500", "regular_price": "2500", "currency_code": "USD", "currency_minor_unit": 2 },
        }]);
        return AppAnswer {
            status: 200,
            content_type: "application/json; charset=UTF-8",
            body: products.to_string(),
        };
    }
    AppAnswer {
        status: 200,
        content_type: "text/html; charset=UTF-8",
        body: format!(
            "<!doctype html>\n<html><head><title>{ns}</title></head>\n<body><h1>{ns}</h1><p>{path} from pod {pod} of service {service} (simulated)</p></body></html>\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_a_service_with_an_optional_port_and_scheme() {
        assert_eq!(parse_target("wordpress").unwrap(), ("wordpress", ""));
        assert_eq!(parse_target("wordpress:80").unwrap(), ("wordpress", "80"));
        assert_eq!(parse_target("https:web:443").unwrap(), ("web", "443"));
        assert_eq!(parse_target("ftp:web:21").unwrap_err().code, 400);
    }

    #[test]
    fn the_store_api_product_list_is_recognised_in_both_forms() {
        assert!(is_product_list(
            "/wp-json/wc/store/v1/products",
            "per_page=1"
        ));
        assert!(is_product_list(
            "/",
            "rest_route=%2Fwc%2Fstore%2Fv1%2Fproducts&per_page=1"
        ));
        assert!(is_product_list("/", "rest_route=/wc/store/v1/products"));
        assert!(!is_product_list("/shop/", ""));
        assert!(!is_product_list("/", "rest_route=/wc/store/v1/cart"));
    }
}
