//! WooCommerce's objects: MariaDB (StatefulSet + Service), WordPress (PVC, Service,
//! Deployment, with its core-sync init container) and the WP-CLI setup and upgrade pods.
//!
//! MariaDB runs as `mysql` (999); WordPress as `www-data` (33) with the safe sysctl
//! `net.ipv4.ip_unprivileged_port_start=80` so Apache binds port 80 without root — which is
//! what lets the namespace enforce `restricted` rather than `baseline`; the setup pod as
//! 33:33 (the CLI image is Alpine, whose www-data is 82: running it as 33 keeps file
//! ownership compatible with the Apache image).

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EnvVar, ExecAction, HTTPGetAction,
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe,
    Service, Sysctl, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::super::{SETUP_CONFIGMAP, SETUP_SCRIPT_KEY, UPGRADE_CONFIGMAP, UPGRADE_SCRIPT_KEY};
use super::{CREDENTIAL_KEYS, WEB};
use crate::store::render::{
    StoreSpec, env, pvc_spec, resources, restricted_container, restricted_pod, secret_env,
    selector, service,
};
use crate::store::settings::StoreSettings;

const MARIADB_UID: i64 = 999;
pub(super) const WWW_DATA_UID: i64 = 33;
/// WordPress's content volume, shared by the Apache pod and the setup pod.
pub(super) const CONTENT_PVC: &str = "wordpress-content";

/// MariaDB: a one-replica StatefulSet with its PVC template, non-root, no capabilities.
#[must_use]
pub fn mariadb_statefulset(spec: &StoreSpec<'_>, s: &StoreSettings) -> StatefulSet {
    let health = |args: &[&str]| Probe {
        exec: Some(ExecAction {
            command: Some(args.iter().map(|a| (*a).to_owned()).collect()),
        }),
        period_seconds: Some(5),
        ..Probe::default()
    };
    let container = Container {
        name: "mariadb".into(),
        image: Some(spec.pins.mariadb.clone()),
        env: Some(vec![
            secret_env("MARIADB_ROOT_PASSWORD", "db-root-password"),
            secret_env("MARIADB_PASSWORD", "db-password"),
            env("MARIADB_DATABASE", "wordpress"),
            env("MARIADB_USER", "wordpress"),
        ]),
        ports: Some(vec![ContainerPort {
            container_port: 3306,
            name: Some("mysql".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(health(&[
            "healthcheck.sh",
            "--connect",
            "--innodb_initialized",
        ])),
        liveness_probe: Some(Probe {
            initial_delay_seconds: Some(30),
            ..health(&["healthcheck.sh", "--connect"])
        }),
        resources: Some(resources("250m", "512Mi", "750m", "1Gi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: "/var/lib/mysql".into(),
            ..Default::default()
        }]),
        ..Container::default()
    };
    StatefulSet {
        metadata: spec.app_meta("mariadb", "mariadb"),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas()),
            service_name: Some("mariadb".into()),
            selector: LabelSelector {
                match_labels: Some(selector("mariadb")),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(spec.template_meta("mariadb")),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(restricted_pod(MARIADB_UID, None)),
                    automount_service_account_token: Some(false),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".into()),
                    labels: Some(spec.labels()),
                    ..Default::default()
                },
                spec: Some(pvc_spec(&spec.plan.db_storage, s)),
                ..PersistentVolumeClaim::default()
            }]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The MariaDB Service (port 3306).
#[must_use]
pub fn mariadb_service(spec: &StoreSpec<'_>) -> Service {
    service(spec, "mariadb", 3306)
}

/// WordPress's content volume.
#[must_use]
pub fn wordpress_pvc(spec: &StoreSpec<'_>, s: &StoreSettings) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: spec.app_meta(CONTENT_PVC, WEB.app),
        spec: Some(pvc_spec(&spec.plan.wp_storage, s)),
        ..PersistentVolumeClaim::default()
    }
}

/// The database connection and the salts, for Apache and for WP-CLI alike.
fn wordpress_env() -> Vec<EnvVar> {
    let mut env_vars = vec![
        env("WORDPRESS_DB_HOST", "mariadb:3306"),
        env("WORDPRESS_DB_USER", "wordpress"),
        env("WORDPRESS_DB_NAME", "wordpress"),
        secret_env("WORDPRESS_DB_PASSWORD", "db-password"),
    ];
    for key in &CREDENTIAL_KEYS[3..] {
        env_vars.push(secret_env(
            &format!("WORDPRESS_{}", key.replace('-', "_").to_uppercase()),
            key,
        ));
    }
    env_vars
}

fn content_volume() -> Volume {
    Volume {
        name: "content".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: CONTENT_PVC.into(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

/// What the `core` init container runs: WordPress's core files from the image
/// (`/usr/src/wordpress`, `wp-content` excluded) copied over an existing install. The
/// official image copies core only into an empty volume, so without this a new image would
/// keep serving the old core; with it, the image pin decides the core version — an upgrade
/// brings the new core with the new image, and a rollback the old one with the old image.
/// A fresh volume is left to the image's own entrypoint (which also copies `wp-content`).
pub const CORE_SYNC: &str = "if [ -e /var/www/html/wp-includes/version.php ]; then \
tar -C /usr/src/wordpress --exclude=./wp-content -cf - . | tar -C /var/www/html -xf -; \
echo \"core synced from $(grep -o \"wp_version = '[^']*'\" /usr/src/wordpress/wp-includes/version.php)\"; \
else echo 'fresh volume: the entrypoint installs core'; fi";

/// WordPress (Apache) as `www-data`, on port 80 via the safe unprivileged-port sysctl, after
/// the `core` init container ([`CORE_SYNC`]).
#[must_use]
pub fn wordpress_deployment(spec: &StoreSpec<'_>, _s: &StoreSettings) -> Deployment {
    let core = Container {
        name: "core".into(),
        image: Some(spec.pins.wordpress.clone()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), CORE_SYNC.into()]),
        resources: Some(resources("50m", "64Mi", "250m", "256Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![VolumeMount {
            name: "content".into(),
            mount_path: "/var/www/html".into(),
            ..Default::default()
        }]),
        ..Container::default()
    };
    let container = Container {
        name: "wordpress".into(),
        image: Some(spec.pins.wordpress.clone()),
        env: Some(wordpress_env()),
        ports: Some(vec![ContainerPort {
            container_port: WEB.port,
            name: Some("http".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/wp-includes/images/blank.gif".into()),
                port: IntOrString::Int(WEB.port),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            ..Probe::default()
        }),
        resources: Some(resources("250m", "256Mi", "750m", "1Gi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![VolumeMount {
            name: "content".into(),
            mount_path: "/var/www/html".into(),
            ..Default::default()
        }]),
        ..Container::default()
    };
    let sysctl = Sysctl {
        name: "net.ipv4.ip_unprivileged_port_start".into(),
        value: WEB.port.to_string(),
    };
    Deployment {
        metadata: spec.app_meta(WEB.app, WEB.app),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.replicas()),
            selector: LabelSelector {
                match_labels: Some(selector(WEB.app)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(spec.template_meta(WEB.app)),
                spec: Some(PodSpec {
                    init_containers: Some(vec![core]),
                    containers: vec![container],
                    security_context: Some(restricted_pod(WWW_DATA_UID, Some(vec![sysctl]))),
                    automount_service_account_token: Some(false),
                    volumes: Some(vec![content_volume()]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The WordPress Service (port 80).
#[must_use]
pub fn wordpress_service(spec: &StoreSpec<'_>) -> Service {
    service(spec, WEB.app, WEB.port)
}

/// The setup pod: WP-CLI as 33:33 with `HOME=/tmp`, running the mounted script once.
#[must_use]
pub fn setup_pod(spec: &StoreSpec<'_>, s: &StoreSettings) -> PodSpec {
    let mut env_vars = wordpress_env();
    env_vars.extend([
        env("HOME", "/tmp"),
        env("STORE_URL", &spec.url(s)),
        env("STORE_TITLE", spec.name),
        env("STORE_ADMIN_USER", "urumi-admin"),
        env("STORE_ADMIN_EMAIL", &format!("admin@{}", spec.host(s))),
        secret_env("STORE_ADMIN_PASSWORD", "wp-admin-password"),
    ]);
    let container = Container {
        name: "setup".into(),
        image: Some(spec.pins.wp_cli.clone()),
        command: Some(vec!["/bin/sh".into(), format!("/setup/{SETUP_SCRIPT_KEY}")]),
        env: Some(env_vars),
        resources: Some(resources("100m", "256Mi", "500m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "content".into(),
                mount_path: "/var/www/html".into(),
                ..Default::default()
            },
            VolumeMount {
                name: "setup".into(),
                mount_path: "/setup".into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Container::default()
    };
    PodSpec {
        containers: vec![container],
        security_context: Some(restricted_pod(WWW_DATA_UID, None)),
        automount_service_account_token: Some(false),
        volumes: Some(vec![
            content_volume(),
            Volume {
                name: "setup".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: SETUP_CONFIGMAP.into(),
                    ..Default::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}

/// The site-URL pod (`store.domains`' `site_url` step): WP-CLI as `www-data` sets WordPress's
/// `home` and `siteurl` to `url` (the store's primary URL). Re-runnable: an option updated to
/// the value it has is left as it is, and WP-CLI exits 0. The URL travels as an environment
/// variable, never spliced into the script.
#[must_use]
pub fn site_url_pod(spec: &StoreSpec<'_>, _s: &StoreSettings, url: &str) -> PodSpec {
    let mut env_vars = wordpress_env();
    env_vars.extend([env("HOME", "/tmp"), env("STORE_URL", url)]);
    let container = Container {
        name: "site-url".into(),
        image: Some(spec.pins.wp_cli.clone()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), SITE_URL_SCRIPT.into()]),
        env: Some(env_vars),
        resources: Some(resources("100m", "128Mi", "500m", "256Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![VolumeMount {
            name: "content".into(),
            mount_path: "/var/www/html".into(),
            ..Default::default()
        }]),
        ..Container::default()
    };
    PodSpec {
        containers: vec![container],
        security_context: Some(restricted_pod(WWW_DATA_UID, None)),
        automount_service_account_token: Some(false),
        volumes: Some(vec![content_volume()]),
        ..PodSpec::default()
    }
}

/// What the site-URL pod runs.
pub const SITE_URL_SCRIPT: &str = "set -eu; wp --path=/var/www/html option update home \"$STORE_URL\" && wp --path=/var/www/html option update siteurl \"$STORE_URL\"";

/// The pod of an upgrade Job (`store-upgrade-N`): `store-upgrade.sh` (from ConfigMap
/// [`UPGRADE_CONFIGMAP`]) in the WP-CLI image of the store's *new* pins, with the versions
/// it must reach as literal env values (`WORDPRESS_VERSION` from the WordPress image's tag,
/// when it has one; `WOOCOMMERCE_VERSION`).
#[must_use]
pub fn upgrade_pod(spec: &StoreSpec<'_>) -> PodSpec {
    let mut env_vars = wordpress_env();
    env_vars.extend([
        env("HOME", "/tmp"),
        env("WP_PATH", "/var/www/html"),
        env("WOOCOMMERCE_VERSION", &spec.pins.woocommerce),
    ]);
    if let Some(v) = spec.pins.wordpress_version() {
        env_vars.push(env("WORDPRESS_VERSION", v));
    }
    let container = Container {
        name: "upgrade".into(),
        image: Some(spec.pins.wp_cli.clone()),
        command: Some(vec![
            "/bin/sh".into(),
            format!("/upgrade/{UPGRADE_SCRIPT_KEY}"),
        ]),
        env: Some(env_vars),
        resources: Some(resources("100m", "256Mi", "500m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "content".into(),
                mount_path: "/var/www/html".into(),
                ..Default::default()
            },
            VolumeMount {
                name: "upgrade".into(),
                mount_path: "/upgrade".into(),
                read_only: Some(true),
                ..Default::default()
            },
        ]),
        ..Container::default()
    };
    PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        security_context: Some(restricted_pod(WWW_DATA_UID, None)),
        automount_service_account_token: Some(false),
        volumes: Some(vec![
            content_volume(),
            Volume {
                name: "upgrade".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: UPGRADE_CONFIGMAP.into(),
                    ..Default::default()
                }),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}
