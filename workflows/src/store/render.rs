//! A store's desired state as typed Kubernetes objects: pure functions of (store, settings).
//!
//! Every object carries the ownership labels (`app.kubernetes.io/managed-by: urumi`,
//! `urumi.io/store-id`, `urumi.io/store`). Pods run under Pod Security `restricted`: MariaDB
//! as `mysql` (999), WordPress as `www-data` (33) with the safe sysctl
//! `net.ipv4.ip_unprivileged_port_start=80` so Apache can bind port 80 without root, and the
//! setup Job as 33:33 (the CLI image is Alpine, whose www-data is 82: running it as 33 keeps
//! file ownership compatible with the Apache image). Every container has requests and limits.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    ExecAction, HTTPGetAction, LimitRange, LimitRangeItem, LimitRangeSpec, Namespace,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceQuota, ResourceQuotaSpec,
    ResourceRequirements, SeccompProfile, Secret, SecretKeySelector, SecurityContext, Service,
    ServicePort, ServiceSpec, Sysctl, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::Slug;
use super::settings::{Plan, StoreSettings};

/// The store being rendered.
#[derive(Debug, Clone)]
pub struct StoreSpec<'a> {
    /// The store's id (a UUID).
    pub id: &'a str,
    /// What the user typed.
    pub name: &'a str,
    /// The validated slug.
    pub slug: &'a Slug,
    /// The store's plan.
    pub plan: &'a Plan,
}

/// The Pod Security Admission level store namespaces enforce.
pub const PSA_LEVEL: &str = "restricted";
/// The Secret holding the store's generated credentials.
pub const CREDENTIALS: &str = "store-credentials";
/// The keys of [`CREDENTIALS`], each a random value created once.
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

const MARIADB_UID: i64 = 999;
const WWW_DATA_UID: i64 = 33;

impl StoreSpec<'_> {
    /// The store's namespace.
    #[must_use]
    pub fn namespace(&self) -> String {
        self.slug.namespace()
    }

    /// The ownership labels every object carries.
    #[must_use]
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                "urumi".to_owned(),
            ),
            ("urumi.io/store-id".to_owned(), self.id.to_owned()),
            ("urumi.io/store".to_owned(), self.slug.as_str().to_owned()),
        ])
    }

    fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    fn app_meta(&self, name: &str, app: &str) -> ObjectMeta {
        let mut meta = self.meta(name);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert("app.kubernetes.io/name".into(), app.into());
        meta
    }

    /// The store's public host, `<slug>.<base-domain>`.
    #[must_use]
    pub fn host(&self, s: &StoreSettings) -> String {
        format!("{}.{}", self.slug, s.base_domain)
    }

    /// The store's URL.
    #[must_use]
    pub fn url(&self, s: &StoreSettings) -> String {
        let scheme = if s.tls_issuer.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host(s))
    }
}

fn selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), app.to_owned())])
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

fn resources(cpu_req: &str, mem_req: &str, cpu_lim: &str, mem_lim: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), q(cpu_req)),
            ("memory".into(), q(mem_req)),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".into(), q(cpu_lim)),
            ("memory".into(), q(mem_lim)),
        ])),
        ..ResourceRequirements::default()
    }
}

fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

fn restricted_pod(uid: i64, sysctls: Option<Vec<Sysctl>>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        sysctls,
        ..PodSecurityContext::default()
    }
}

fn secret_env(name: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: CREDENTIALS.into(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

fn pvc_spec(size: &str, s: &StoreSettings) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: s.storage_class.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".into(), q(size))])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

/// The namespace, with Pod Security Admission labels (`restricted`, enforced and warned).
#[must_use]
pub fn namespace(spec: &StoreSpec<'_>) -> Namespace {
    let mut labels = spec.labels();
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            PSA_LEVEL.into(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".into(),
        );
    }
    Namespace {
        metadata: ObjectMeta {
            name: Some(spec.namespace()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    }
}

/// The plan's ResourceQuota: compute, storage, object counts, and no LoadBalancer/NodePort.
#[must_use]
pub fn resource_quota(spec: &StoreSpec<'_>) -> ResourceQuota {
    let p = spec.plan;
    let hard = BTreeMap::from([
        ("pods".into(), q(&p.pods)),
        ("requests.cpu".into(), q(&p.requests_cpu)),
        ("requests.memory".into(), q(&p.requests_memory)),
        ("limits.cpu".into(), q(&p.limits_cpu)),
        ("limits.memory".into(), q(&p.limits_memory)),
        ("persistentvolumeclaims".into(), q(&p.pvcs)),
        ("requests.storage".into(), q(&p.requests_storage)),
        ("services.loadbalancers".into(), q("0")),
        ("services.nodeports".into(), q("0")),
    ]);
    ResourceQuota {
        metadata: spec.meta("store-quota"),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..ResourceQuotaSpec::default()
        }),
        ..ResourceQuota::default()
    }
}

/// Container defaults, so a pod without explicit resources is not rejected by the quota.
#[must_use]
pub fn limit_range(spec: &StoreSpec<'_>) -> LimitRange {
    let m = |cpu: &str, mem: &str| {
        Some(BTreeMap::from([
            ("cpu".into(), q(cpu)),
            ("memory".into(), q(mem)),
        ]))
    };
    LimitRange {
        metadata: spec.meta("store-limits"),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: m("500m", "512Mi"),
                default_request: m("100m", "128Mi"),
                max: m(&spec.plan.limits_cpu, &spec.plan.limits_memory),
                ..LimitRangeItem::default()
            }],
        }),
    }
}

fn netpol(spec: &StoreSpec<'_>, name: &str, np: NetworkPolicySpec) -> NetworkPolicy {
    NetworkPolicy {
        metadata: spec.meta(name),
        spec: Some(np),
    }
}

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(number)),
        ..NetworkPolicyPort::default()
    }
}

fn ns_selector(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_owned(),
            name.to_owned(),
        )])),
        ..LabelSelector::default()
    }
}

/// Default-deny both ways; same-namespace traffic; ingress to WordPress only from the
/// ingress controller's namespace; DNS; and (if enabled) HTTPS to the internet but not to
/// cluster CIDRs or the metadata endpoint. The platform's namespace is in no allow rule.
#[must_use]
pub fn network_policies(spec: &StoreSpec<'_>, s: &StoreSettings) -> Vec<NetworkPolicy> {
    let all_pods = LabelSelector::default();
    let same_ns = NetworkPolicyPeer {
        pod_selector: Some(all_pods.clone()),
        ..NetworkPolicyPeer::default()
    };
    let mut policies = vec![
        netpol(
            spec,
            "default-deny",
            NetworkPolicySpec {
                pod_selector: Some(all_pods.clone()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ..NetworkPolicySpec::default()
            },
        ),
        netpol(
            spec,
            "allow-same-namespace",
            NetworkPolicySpec {
                pod_selector: Some(all_pods.clone()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![same_ns.clone()]),
                    ..Default::default()
                }]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![same_ns]),
                    ..Default::default()
                }]),
            },
        ),
        netpol(
            spec,
            "allow-ingress-controller",
            NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector("wordpress")),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(ns_selector(&s.ingress_namespace)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![port("TCP", 80)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
        netpol(
            spec,
            "allow-dns",
            NetworkPolicySpec {
                pod_selector: Some(all_pods.clone()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(ns_selector("kube-system")),
                        pod_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "k8s-app".to_owned(),
                                "kube-dns".to_owned(),
                            )])),
                            ..Default::default()
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ),
    ];
    if s.internet_egress {
        let mut except = s.cluster_cidrs.clone();
        except.push("169.254.169.254/32".into());
        policies.push(netpol(
            spec,
            "allow-https-egress",
            NetworkPolicySpec {
                pod_selector: Some(all_pods),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: "0.0.0.0/0".into(),
                            except: Some(except),
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![port("TCP", 443)]),
                }]),
                ..NetworkPolicySpec::default()
            },
        ));
    }
    policies
}

/// The credentials Secret with `values` for [`CREDENTIAL_KEYS`] (random, made by the caller).
/// Created once and never overwritten: the provisioning step creates it only if absent.
#[must_use]
pub fn credentials(spec: &StoreSpec<'_>, values: &BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: spec.meta(CREDENTIALS),
        type_: Some("Opaque".into()),
        string_data: Some(values.clone()),
        ..Secret::default()
    }
}

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
        image: Some(s.images.mariadb.clone()),
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
            replicas: Some(1),
            service_name: Some("mariadb".into()),
            selector: LabelSelector {
                match_labels: Some(selector("mariadb")),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(spec.app_meta("mariadb", "mariadb")).map(|mut m| {
                    m.name = None;
                    m.namespace = None;
                    m
                }),
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

fn service(spec: &StoreSpec<'_>, app: &str, port: i32) -> Service {
    Service {
        metadata: spec.app_meta(app, app),
        spec: Some(ServiceSpec {
            selector: Some(selector(app)),
            ports: Some(vec![ServicePort {
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                name: Some(app.to_owned()),
                ..ServicePort::default()
            }]),
            type_: Some("ClusterIP".into()),
            ..ServiceSpec::default()
        }),
        ..Service::default()
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
        metadata: spec.app_meta("wordpress-content", "wordpress"),
        spec: Some(pvc_spec(&spec.plan.wp_storage, s)),
        ..PersistentVolumeClaim::default()
    }
}

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

/// WordPress (Apache) as `www-data`, on port 80 via the safe unprivileged-port sysctl.
#[must_use]
pub fn wordpress_deployment(spec: &StoreSpec<'_>, s: &StoreSettings) -> Deployment {
    let container = Container {
        name: "wordpress".into(),
        image: Some(s.images.wordpress.clone()),
        env: Some(wordpress_env()),
        ports: Some(vec![ContainerPort {
            container_port: 80,
            name: Some("http".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/wp-includes/images/blank.gif".into()),
                port: IntOrString::Int(80),
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
        value: "80".into(),
    };
    let mut template_meta = spec.app_meta("wordpress", "wordpress");
    template_meta.name = None;
    template_meta.namespace = None;
    Deployment {
        metadata: spec.app_meta("wordpress", "wordpress"),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector("wordpress")),
                ..Default::default()
            },
            strategy: Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(restricted_pod(WWW_DATA_UID, Some(vec![sysctl]))),
                    automount_service_account_token: Some(false),
                    volumes: Some(vec![Volume {
                        name: "content".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: "wordpress-content".into(),
                            read_only: None,
                        }),
                        ..Volume::default()
                    }]),
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
    service(spec, "wordpress", 80)
}

/// The Ingress for `<slug>.<base-domain>`, with TLS through cert-manager when an issuer is set.
#[must_use]
pub fn ingress(spec: &StoreSpec<'_>, s: &StoreSettings) -> Ingress {
    let host = spec.host(s);
    let mut meta = spec.app_meta("wordpress", "wordpress");
    let tls = s.tls_issuer.as_ref().map(|issuer| {
        meta.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_owned(),
            issuer.clone(),
        )]));
        vec![IngressTLS {
            hosts: Some(vec![host.clone()]),
            secret_name: Some("store-tls".into()),
        }]
    });
    Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: Some(s.ingress_class.clone()),
            tls,
            rules: Some(vec![IngressRule {
                host: Some(host),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: "wordpress".into(),
                                port: Some(ServiceBackendPort {
                                    number: Some(80),
                                    name: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

/// The setup script, as a ConfigMap the Job mounts (see `workflows/scripts/store-setup.sh`).
#[must_use]
pub fn setup_script(spec: &StoreSpec<'_>) -> ConfigMap {
    ConfigMap {
        metadata: spec.meta("store-setup"),
        data: Some(BTreeMap::from([(
            "setup.sh".to_owned(),
            SETUP_SCRIPT.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// The re-runnable WP-CLI setup script.
pub const SETUP_SCRIPT: &str = include_str!("../../scripts/store-setup.sh");

/// The setup Job: WP-CLI as 33:33 with `HOME=/tmp`, running the mounted script once.
#[must_use]
pub fn setup_job(spec: &StoreSpec<'_>, s: &StoreSettings) -> Job {
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
        image: Some(s.images.wp_cli.clone()),
        command: Some(vec!["/bin/sh".into(), "/setup/setup.sh".into()]),
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
    let mut template_meta = spec.app_meta("store-setup", "store-setup");
    template_meta.name = None;
    template_meta.namespace = None;
    Job {
        metadata: spec.app_meta("store-setup", "store-setup"),
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: None,
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".into()),
                    security_context: Some(restricted_pod(WWW_DATA_UID, None)),
                    automount_service_account_token: Some(false),
                    volumes: Some(vec![
                        Volume {
                            name: "content".into(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: "wordpress-content".into(),
                                read_only: None,
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "setup".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: "store-setup".into(),
                                ..Default::default()
                            }),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// Every object of a store, in apply order, as JSON (with `apiVersion` and `kind`).
///
/// # Panics
/// Never: typed objects always serialize.
#[must_use]
pub fn all(
    spec: &StoreSpec<'_>,
    s: &StoreSettings,
    credentials_values: &BTreeMap<String, String>,
) -> Vec<serde_json::Value> {
    fn v<T: k8s_openapi::Resource + serde::Serialize>(obj: &T) -> serde_json::Value {
        let mut value = serde_json::to_value(obj).expect("typed objects serialize");
        value["apiVersion"] = T::API_VERSION.into();
        value["kind"] = T::KIND.into();
        value
    }
    let mut out = vec![
        v(&namespace(spec)),
        v(&resource_quota(spec)),
        v(&limit_range(spec)),
    ];
    out.extend(network_policies(spec, s).iter().map(v));
    out.extend([
        v(&credentials(spec, credentials_values)),
        v(&mariadb_service(spec)),
        v(&mariadb_statefulset(spec, s)),
        v(&wordpress_pvc(spec, s)),
        v(&wordpress_service(spec)),
        v(&wordpress_deployment(spec, s)),
        v(&ingress(spec, s)),
        v(&setup_script(spec)),
        v(&setup_job(spec, s)),
    ]);
    out
}
