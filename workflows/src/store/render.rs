//! A store's desired state as typed Kubernetes objects: pure functions of (engine, store,
//! settings). This file holds the parts every engine shares — namespace with Pod Security
//! labels, quota, LimitRange, NetworkPolicies, the credentials Secret, the Ingress, the setup
//! Job around the engine's pod — and the building blocks engines render their own objects
//! with (ownership labels, restricted security contexts, resources, Services, PVCs). What a
//! store runs is the engine's: see [`super::engines`].
//!
//! Every object carries the ownership labels (`app.kubernetes.io/managed-by: urumi`,
//! `urumi.io/store-id`, `urumi.io/store`). Every pod runs under Pod Security `restricted`
//! and every container has requests and limits (checked in `tests/render.rs`).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, EnvVar, EnvVarSource, LimitRange, LimitRangeItem, LimitRangeSpec,
    Namespace, PersistentVolumeClaimSpec, PodSecurityContext, PodTemplateSpec, ResourceQuota,
    ResourceQuotaSpec, ResourceRequirements, SeccompProfile, Secret, SecretKeySelector,
    SecurityContext, Service, ServicePort, ServiceSpec, Sysctl, VolumeResourceRequirements,
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

use super::engines::{self, AppObject, StoreEngine, WebTier};
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
    /// Render the suspended state: workloads at zero replicas, the Ingress to the suspended
    /// page ([`suspended_service`]).
    pub suspended: bool,
    /// The store's custom domains, oldest first (the run input's): the Ingress answers them
    /// besides [`StoreSpec::host`], and the first is the primary ([`StoreSpec::primary_url`]).
    pub domains: &'a [String],
    /// What the store runs (its recorded pins; see `urumi_store::settings::Pins`): the
    /// workloads' images come from here, never from the settings, so a channel moving on
    /// reaches a store only through `store.upgrade`.
    pub pins: &'a urumi_store::settings::Pins,
}

/// The Pod Security Admission level store namespaces enforce.
pub const PSA_LEVEL: &str = "restricted";
/// The Secret holding the store's generated credentials (keys: the engine's
/// [`StoreEngine::credential_keys`]).
pub const CREDENTIALS: &str = "store-credentials";
/// The `ExternalName` Service a suspended store's Ingress points at ([`suspended_service`]).
pub const SUSPENDED_SERVICE: &str = "store-suspended";
/// The setup Jobs' `app.kubernetes.io/name`; each is named `store-setup-N`.
pub const SETUP_APP: &str = "store-setup";
/// The site-URL Jobs' `app.kubernetes.io/name` (`store.domains`' `site_url` step); each is
/// named `store-siteurl-N`.
pub const SITE_URL_APP: &str = "store-siteurl";
/// The annotation on a site-URL Job naming the URL it sets (so a fresh attempt adopts only a
/// Job that sets the URL it wants).
pub const SITE_URL_ANNOTATION: &str = "urumi.io/site-url";
/// The Secret holding the TLS certificate of the store's own host.
pub const OWN_TLS_SECRET: &str = "store-tls";

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

    /// Metadata of object `name` in the store's namespace, with the ownership labels.
    #[must_use]
    pub fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    /// [`StoreSpec::meta`] plus `app.kubernetes.io/name: <app>`.
    #[must_use]
    pub fn app_meta(&self, name: &str, app: &str) -> ObjectMeta {
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

    /// The replicas of each workload: 1, or 0 when suspended.
    #[must_use]
    pub fn replicas(&self) -> i32 {
        i32::from(!self.suspended)
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

    /// The URL the store's app is told it lives at: its primary host
    /// (`urumi_store::domains::primary`: the oldest custom domain, else [`StoreSpec::host`]),
    /// `https` when TLS is issued.
    #[must_use]
    pub fn primary_url(&self, s: &StoreSettings) -> String {
        let own = self.host(s);
        let host = urumi_store::domains::primary(self.domains, &own);
        let scheme = if s.tls_issuer.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{host}")
    }

    /// Pod-template metadata: [`StoreSpec::app_meta`] without name and namespace.
    #[must_use]
    pub fn template_meta(&self, app: &str) -> ObjectMeta {
        let mut meta = self.app_meta(app, app);
        meta.name = None;
        meta.namespace = None;
        meta
    }
}

/// The labels selecting an app's pods: `app.kubernetes.io/name: <app>`.
#[must_use]
pub fn selector(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_owned(), app.to_owned())])
}

/// A quantity (`"250m"`, `"1Gi"`).
#[must_use]
pub fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

/// CPU and memory requests and limits.
#[must_use]
pub fn resources(
    cpu_req: &str,
    mem_req: &str,
    cpu_lim: &str,
    mem_lim: &str,
) -> ResourceRequirements {
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

/// A container security context that satisfies Pod Security `restricted`.
#[must_use]
pub fn restricted_container() -> SecurityContext {
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

/// A pod security context that satisfies `restricted`: non-root as `uid`:`uid` (also the
/// volumes' group), RuntimeDefault seccomp, and only the given (safe) sysctls.
#[must_use]
pub fn restricted_pod(uid: i64, sysctls: Option<Vec<Sysctl>>) -> PodSecurityContext {
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

/// An environment variable from a key of the credentials Secret.
#[must_use]
pub fn secret_env(name: &str, key: &str) -> EnvVar {
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

/// A plain environment variable.
#[must_use]
pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        ..EnvVar::default()
    }
}

/// A `ReadWriteOnce` claim of `size` in the configured storage class.
#[must_use]
pub fn pvc_spec(size: &str, s: &StoreSettings) -> PersistentVolumeClaimSpec {
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
    let mut hard: BTreeMap<String, Quantity> = spec
        .plan
        .quota_hard()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), q(value)))
        .collect();
    hard.insert("services.loadbalancers".into(), q("0"));
    hard.insert("services.nodeports".into(), q("0"));
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

/// Default-deny both ways; same-namespace traffic (e.g. WordPress → MariaDB); ingress to the
/// web tier's pods on its port only from the ingress controller's namespace; DNS; and (if
/// enabled) HTTPS to the internet but not to cluster CIDRs or the metadata endpoint. The
/// platform's namespace is in no allow rule.
#[must_use]
pub fn network_policies(
    spec: &StoreSpec<'_>,
    s: &StoreSettings,
    web: WebTier,
) -> Vec<NetworkPolicy> {
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
                    match_labels: Some(selector(web.app)),
                    ..Default::default()
                }),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(ns_selector(&s.ingress_namespace)),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![port("TCP", web.port)]),
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

/// The credentials Secret with `values` for the engine's keys (random, made by the caller).
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

/// A `ClusterIP` Service `app` selecting the app's pods, on `port` (named `app`).
#[must_use]
pub fn service(spec: &StoreSpec<'_>, app: &str, port: i32) -> Service {
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

/// The Service a suspended store's Ingress points at: an `ExternalName` alias of the
/// platform's shared suspended page ([`StoreSettings::suspended_host`], port 80), which answers
/// every request 503 "this store is suspended". `None` when the store is not suspended or the
/// platform has no such page (then the Ingress keeps the scaled-down web Service).
#[must_use]
pub fn suspended_service(spec: &StoreSpec<'_>, s: &StoreSettings) -> Option<Service> {
    let host = s.suspended_host().filter(|_| spec.suspended)?;
    Some(Service {
        metadata: spec.app_meta(SUSPENDED_SERVICE, SUSPENDED_SERVICE),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(host),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}

/// The Ingress for `<slug>.<base-domain>` and each custom domain ([`StoreSpec::domains`]),
/// one rule per host, to the web tier's Service (to [`SUSPENDED_SERVICE`] while suspended,
/// when there is a suspended page), with TLS through cert-manager when an issuer is set.
///
/// TLS: the `cert-manager.io/cluster-issuer` annotation makes cert-manager's ingress-shim
/// issue a Certificate for each `tls` entry — cert-manager's supported way for Ingresses,
/// and no CRD of cert-manager's to apply (which the simulator does not serve). Each host has
/// an entry of its own, so one domain whose DNS is not pointed yet never holds up another's
/// certificate: the own host's Secret is [`OWN_TLS_SECRET`], a custom domain's is named as
/// the domain (a valid Secret name; its dot keeps it apart from the store's own Secrets).
#[must_use]
pub fn ingress(spec: &StoreSpec<'_>, s: &StoreSettings, web: WebTier) -> Ingress {
    let (backend, port) = match suspended_service(spec, s) {
        Some(_) => (SUSPENDED_SERVICE, 80),
        None => (web.app, web.port),
    };
    let own = spec.host(s);
    let mut meta = spec.app_meta(web.app, web.app);
    let tls = s.tls_issuer.as_ref().map(|issuer| {
        meta.annotations = Some(BTreeMap::from([(
            "cert-manager.io/cluster-issuer".to_owned(),
            issuer.clone(),
        )]));
        std::iter::once(IngressTLS {
            hosts: Some(vec![own.clone()]),
            secret_name: Some(OWN_TLS_SECRET.into()),
        })
        .chain(spec.domains.iter().map(|d| IngressTLS {
            hosts: Some(vec![d.clone()]),
            secret_name: Some(d.clone()),
        }))
        .collect()
    });
    let rule = |host: String| IngressRule {
        host: Some(host),
        http: Some(HTTPIngressRuleValue {
            paths: vec![HTTPIngressPath {
                path: Some("/".into()),
                path_type: "Prefix".into(),
                backend: IngressBackend {
                    service: Some(IngressServiceBackend {
                        name: backend.into(),
                        port: Some(ServiceBackendPort {
                            number: Some(port),
                            name: None,
                        }),
                    }),
                    resource: None,
                },
            }],
        }),
    };
    let rules = std::iter::once(own)
        .chain(spec.domains.iter().cloned())
        .map(rule)
        .collect();
    Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: Some(s.ingress_class.clone()),
            tls,
            rules: Some(rules),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    }
}

/// The engine's setup script as the ConfigMap its setup pod mounts
/// ([`engines::SETUP_CONFIGMAP`], key [`engines::SETUP_SCRIPT_KEY`]).
#[must_use]
pub fn setup_script(engine: &dyn StoreEngine, spec: &StoreSpec<'_>) -> ConfigMap {
    ConfigMap {
        metadata: spec.meta(engines::SETUP_CONFIGMAP),
        data: Some(BTreeMap::from([(
            engines::SETUP_SCRIPT_KEY.to_owned(),
            engine.setup_script().to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// The setup Job around the engine's pod: no retries inside the Job and `restartPolicy:
/// Never` (a failed attempt leaves its Job and log; the step starts a fresh one). Named
/// [`SETUP_APP`] here; the step numbers it `store-setup-N`.
#[must_use]
pub fn setup_job(engine: &dyn StoreEngine, spec: &StoreSpec<'_>, s: &StoreSettings) -> Job {
    let mut pod = engine.setup_pod(spec, s);
    pod.restart_policy = Some("Never".into());
    Job {
        metadata: spec.app_meta(SETUP_APP, SETUP_APP),
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: None,
            template: PodTemplateSpec {
                metadata: Some(spec.template_meta(SETUP_APP)),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// The site-URL Job around the engine's pod ([`StoreEngine::site_url_pod`], `None` for an
/// engine whose app does not store its own URL): like the setup Job, no retries inside it
/// and `restartPolicy: Never`; annotated [`SITE_URL_ANNOTATION`] with the URL it sets. Named
/// [`SITE_URL_APP`] here; the step numbers it `store-siteurl-N`.
#[must_use]
pub fn site_url_job(
    engine: &dyn StoreEngine,
    spec: &StoreSpec<'_>,
    s: &StoreSettings,
) -> Option<Job> {
    let url = spec.primary_url(s);
    let mut pod = engine.site_url_pod(spec, s, &url)?;
    pod.restart_policy = Some("Never".into());
    let mut metadata = spec.app_meta(SITE_URL_APP, SITE_URL_APP);
    metadata.annotations = Some(BTreeMap::from([(SITE_URL_ANNOTATION.to_owned(), url)]));
    Some(Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: None,
            template: PodTemplateSpec {
                metadata: Some(spec.template_meta(SITE_URL_APP)),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

/// An object as JSON with its `apiVersion` and `kind`.
#[must_use]
pub fn value<T: k8s_openapi::Resource + serde::Serialize>(obj: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(obj).expect("typed objects serialize");
    value["apiVersion"] = T::API_VERSION.into();
    value["kind"] = T::KIND.into();
    value
}

fn app_value(obj: &AppObject) -> serde_json::Value {
    match obj {
        AppObject::Service(o) => value(o),
        AppObject::StatefulSet(o) => value(o),
        AppObject::Deployment(o) => value(o),
        AppObject::PersistentVolumeClaim(o) => value(o),
        AppObject::ConfigMap(o) => value(o),
    }
}

/// The objects `store.repair` re-applies (and its preview dry-runs), in order, as JSON:
/// everything of [`all`] but the credentials Secret (never overwritten: its values cannot be
/// recovered) and the setup Job (setup runs once, at provisioning).
///
/// # Panics
/// Never: typed objects always serialize.
#[must_use]
pub fn repaired(
    engine: &dyn StoreEngine,
    spec: &StoreSpec<'_>,
    s: &StoreSettings,
) -> Vec<serde_json::Value> {
    let web = engine.web();
    let mut out = vec![
        value(&namespace(spec)),
        value(&resource_quota(spec)),
        value(&limit_range(spec)),
    ];
    out.extend(network_policies(spec, s, web).iter().map(value));
    out.extend(engine.data_tier(spec, s).objects.iter().map(app_value));
    out.extend(engine.web_tier(spec, s).objects.iter().map(app_value));
    out.extend(suspended_service(spec, s).as_ref().map(value));
    out.extend([
        value(&ingress(spec, s, web)),
        value(&setup_script(engine, spec)),
    ]);
    out
}

/// Every object of a store running `engine`, in apply order, as JSON (with `apiVersion` and
/// `kind`): the shared objects, the engine's data and web tiers, the Ingress, the setup
/// script and Job.
///
/// # Panics
/// Never: typed objects always serialize.
#[must_use]
pub fn all(
    engine: &dyn StoreEngine,
    spec: &StoreSpec<'_>,
    s: &StoreSettings,
    credentials_values: &BTreeMap<String, String>,
) -> Vec<serde_json::Value> {
    // What a repair applies, plus the Secret (before the tiers that read it) and the Job.
    let mut out = repaired(engine, spec, s);
    let before_tiers = 3 + network_policies(spec, s, engine.web()).len();
    out.insert(before_tiers, value(&credentials(spec, credentials_values)));
    out.push(value(&setup_job(engine, spec, s)));
    out
}
