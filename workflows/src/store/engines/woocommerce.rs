//! The WooCommerce engine: WordPress + WooCommerce on Apache, MariaDB, a WP-CLI setup Job
//! (`workflows/scripts/store-setup.sh`), a WP-CLI site-URL Job (`home` and `siteurl` set to
//! the store's primary domain, [`SITE_URL_SCRIPT`]), and a storefront check through the Store
//! API.
//!
//! # The storefront check
//! `GET /?rest_route=/wc/store/v1/products&per_page=1` on the `wordpress` Service must answer
//! 200 with a non-empty JSON array: WordPress is installed, WooCommerce is active, and the
//! seeded products are published — what a customer's order needs. The `rest_route` form
//! works whatever the permalink setting (the setup leaves WordPress's default, plain
//! permalinks, under which `/wp-json/…` is not routed) and REST requests are never
//! redirected to the canonical host, so the answer is the same through the API server's
//! Service proxy as through the Ingress.

mod archive;
mod objects;

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::{Value, json};

pub use objects::{
    CORE_SYNC, SITE_URL_SCRIPT, mariadb_service, mariadb_statefulset, setup_pod, site_url_pod,
    upgrade_pod, wordpress_deployment, wordpress_pvc, wordpress_service,
};

use super::{AppObject, ArchiveJob, StoreEngine, Tier, Verdict, WebTier, Workload, excerpt};
use crate::store::render::StoreSpec;
use crate::store::settings::StoreSettings;

/// The engine (a unit value; see [`super::BUILT_IN`]).
#[derive(Debug, Clone, Copy)]
pub struct WooCommerce;

/// The keys of the credentials Secret: database passwords, the WordPress admin password and
/// WordPress's eight salts (the `WORDPRESS_*` variables of the official image).
pub const CREDENTIAL_KEYS: [&str; 11] = [
    "db-root-password",
    "db-password",
    "wp-admin-password",
    "auth-key",
    "secure-auth-key",
    "logged-in-key",
    "nonce-key",
    "auth-salt",
    "secure-auth-salt",
    "logged-in-salt",
    "nonce-salt",
];

/// WordPress's pods, Service and port.
pub const WEB: WebTier = WebTier {
    app: "wordpress",
    port: 80,
};

/// The re-runnable WP-CLI setup script.
pub const SETUP_SCRIPT: &str = include_str!("../../../scripts/store-setup.sh");

/// The upgrade script: WooCommerce at its pinned version, then the WordPress and
/// WooCommerce database updates.
pub const UPGRADE_SCRIPT: &str = include_str!("../../../scripts/store-upgrade.sh");

/// See the module documentation.
pub const STOREFRONT_PATH: &str = "/?rest_route=/wc/store/v1/products&per_page=1";

impl StoreEngine for WooCommerce {
    fn name(&self) -> &'static str {
        urumi_store::engines::WOOCOMMERCE
    }

    fn credential_keys(&self) -> &'static [&'static str] {
        &CREDENTIAL_KEYS
    }

    fn web(&self) -> WebTier {
        WEB
    }

    fn data_tier(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> Tier {
        Tier {
            objects: vec![
                AppObject::Service(mariadb_service(spec)),
                AppObject::StatefulSet(mariadb_statefulset(spec, s)),
            ],
            ready: Workload::StatefulSet {
                name: "mariadb",
                title: "MariaDB",
            },
        }
    }

    fn web_tier(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> Tier {
        Tier {
            objects: vec![
                AppObject::PersistentVolumeClaim(wordpress_pvc(spec, s)),
                AppObject::Service(wordpress_service(spec)),
                AppObject::Deployment(wordpress_deployment(spec, s)),
            ],
            ready: Workload::Deployment {
                name: WEB.app,
                title: "WordPress",
            },
        }
    }

    fn setup_script(&self) -> &'static str {
        SETUP_SCRIPT
    }

    fn setup_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> PodSpec {
        setup_pod(spec, s)
    }

    fn archive_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings, job: &ArchiveJob) -> PodSpec {
        archive::archive_pod(spec, s, job)
    }

    fn site_url_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings, url: &str) -> Option<PodSpec> {
        Some(site_url_pod(spec, s, url))
    }

    fn upgrade(&self, spec: &StoreSpec<'_>) -> Option<(&'static str, PodSpec)> {
        Some((UPGRADE_SCRIPT, upgrade_pod(spec)))
    }

    fn storefront_path(&self) -> &'static str {
        STOREFRONT_PATH
    }

    fn judge_storefront(&self, status: u16, body: &str) -> Verdict {
        if status != 200 {
            let hint = if status == 404 {
                " (is WooCommerce active?)"
            } else {
                ""
            };
            return Verdict::NotYet(format!(
                "the Store API answered {status}{hint}: {}",
                excerpt(body)
            ));
        }
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(products)) => match products.first() {
                Some(first) => Verdict::Ready(json!({ "first_product": first["name"] })),
                None => Verdict::NotYet("the Store API lists no products yet".into()),
            },
            _ => Verdict::NotYet(format!(
                "the Store API answered 200 but not with a product list: {}",
                excerpt(body)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(status: u16, body: &str) -> Verdict {
        WooCommerce.judge_storefront(status, body)
    }

    #[test]
    fn a_product_list_means_the_store_takes_orders() {
        assert_eq!(
            judge(
                200,
                r#"[{"id":12,"name":"Premium Cotton T-Shirt","prices":{"price":"2500"}}]"#
            ),
            Verdict::Ready(json!({ "first_product": "Premium Cotton T-Shirt" }))
        );
    }

    #[test]
    fn an_empty_list_an_html_page_or_an_error_status_is_not_yet_ready() {
        let not_yet = |v: Verdict| match v {
            Verdict::NotYet(why) => why,
            Verdict::Ready(out) => panic!("judged ready: {out}"),
        };
        assert!(not_yet(judge(200, "[]")).contains("no products yet"));
        let html = not_yet(judge(200, "<!doctype html><title>Coming soon</title>"));
        assert!(
            html.contains("not with a product list") && html.contains("Coming soon"),
            "{html}"
        );
        let missing = not_yet(judge(404, r#"{"code":"rest_no_route"}"#));
        assert!(
            missing.contains("404 (is WooCommerce active?)") && missing.contains("rest_no_route"),
            "{missing}"
        );
        assert!(not_yet(judge(500, "")).contains("answered 500"));
    }
}
