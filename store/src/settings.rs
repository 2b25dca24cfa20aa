//! Store settings: images, release channels, domains, ingress, storage, egress and per-plan
//! quotas. Loaded with the worker's settings (section `stores`); never hard-coded in logic.

use std::collections::BTreeMap;

use serde::Deserialize;

/// How stores are built.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// Stores live at `<slug>.<base_domain>`.
    pub base_domain: String,
    /// The platform's own namespace (refused as a slug; in no allow rule).
    pub platform_namespace: String,
    /// `ingressClassName` of store Ingresses.
    pub ingress_class: String,
    /// Namespace of the ingress controller (the only one allowed to reach WordPress).
    pub ingress_namespace: String,
    /// StorageClass for PVCs; `None` uses the cluster default.
    pub storage_class: Option<String>,
    /// cert-manager ClusterIssuer; `None` serves plain HTTP.
    pub tls_issuer: Option<String>,
    /// Whether store pods may reach the internet on 443 (plugin updates, payment APIs).
    pub internet_egress: bool,
    /// Cluster CIDRs excluded from internet egress (pods, services, nodes).
    pub cluster_cidrs: Vec<String>,
    /// Pinned images. `mariadb`, `wordpress` and `wp_cli` are the `stable` channel's pins
    /// when [`StoreSettings::channels`] is empty (see [`StoreSettings::channels`]); `curl` is
    /// the backup Jobs' image whatever the channel.
    pub images: Images,
    /// Release channels by name (`[stores.channels.<name>]`): each pins the workload images
    /// and the WooCommerce version, under a release label. Empty (the default): one channel
    /// `stable`, pinned to [`StoreSettings::images`] and [`DEFAULT_WOOCOMMERCE`] at
    /// [`DEFAULT_RELEASE`].
    pub channels: BTreeMap<String, Channel>,
    /// The channel of a new store, and of the fleet's upgrades that name none.
    pub default_channel: String,
    /// Quotas and volume sizes by plan name.
    pub plans: BTreeMap<String, Plan>,
    /// The plan of a store that names none.
    pub default_plan: String,
    /// The shared "this store is suspended" page: a Service of this name in
    /// [`StoreSettings::platform_namespace`] (the chart's `<release>-suspended`, port 80),
    /// which a suspended store's Ingress reaches through an `ExternalName` Service in the
    /// store's namespace. Empty: a suspended store's Ingress keeps pointing at its scaled-down
    /// web Service, and the ingress controller answers 503 on its own.
    pub suspended_service: String,
    /// Where backups are kept (`[stores.backups]`).
    pub backups: BackupSettings,
}

/// Where store backups are written: a per-store PVC `store-backups` (the default), or an
/// S3-compatible bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// `pvc` (default) or `s3` (then [`BackupSettings::s3`] is required).
    pub storage: BackupStorage,
    /// The bucket, when [`BackupStorage::S3`].
    pub s3: Option<S3Settings>,
}

/// Where backup archives live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStorage {
    /// A PVC `store-backups` in the store's namespace, sized by the plan's `backups.volume`.
    #[default]
    Pvc,
    /// Objects `<prefix>/<store id>/<backup id>.tar` in an S3-compatible bucket.
    S3,
}

impl BackupStorage {
    /// The stored name (`pvc`, `s3`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pvc => "pvc",
            Self::S3 => "s3",
        }
    }
}

/// An S3-compatible bucket. The credentials are copied into a Secret `backup-s3` in each
/// store's namespace, which the backup and restore Jobs read; set them from the
/// environment (`URUMI__STORES__BACKUPS__S3__SECRET_ACCESS_KEY`), not a file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio.storage:9000` (path-style
    /// addressing: `<endpoint>/<bucket>/<key>`).
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Key prefix; objects are `<prefix>/<store id>/<backup id>.tar`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_prefix() -> String {
    "stores".into()
}

impl S3Settings {
    /// The URL under which a store's archives live (`<endpoint>/<bucket>/<prefix>/<store>`).
    #[must_use]
    pub fn store_url(&self, store: uuid::Uuid) -> String {
        format!(
            "{}/{}/{}/{store}",
            self.endpoint.trim_end_matches('/'),
            self.bucket,
            self.prefix.trim_matches('/')
        )
    }
}

/// Pinned images (Docker official images; Bitnami's free images are frozen since Aug 2025).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub mariadb: String,
    pub wordpress: String,
    pub wp_cli: String,
    /// curl, for the backup and restore Jobs' S3 transfers.
    #[serde(default = "default_curl_image")]
    pub curl: String,
}

fn default_curl_image() -> String {
    "curlimages/curl:8.17.0".into()
}

/// The release label of the `stable` channel derived from `images` (no `channels` set).
pub const DEFAULT_RELEASE: &str = "2026.11";
/// The WooCommerce version of the derived `stable` channel.
pub const DEFAULT_WOOCOMMERCE: &str = "10.3.5";
/// The channel of the derived default (no `channels` set).
pub const DEFAULT_CHANNEL: &str = "stable";

/// A release channel: a release label and what a store on it runs. In the settings its five
/// keys are flat (`version`, `wordpress`, `mariadb`, `wp_cli`, `woocommerce`), and a key
/// outside them is refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(from = "ChannelKeys")]
pub struct Channel {
    /// The release label (e.g. `2026.11`): a store records the label it runs.
    pub version: String,
    /// What the release pins.
    #[serde(flatten)]
    pub pins: Pins,
}

/// [`Channel`] as written in the settings (serde's `flatten` cannot refuse unknown keys).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelKeys {
    version: String,
    wordpress: String,
    mariadb: String,
    wp_cli: String,
    woocommerce: String,
}

impl From<ChannelKeys> for Channel {
    fn from(k: ChannelKeys) -> Self {
        Self {
            version: k.version,
            pins: Pins {
                wordpress: k.wordpress,
                mariadb: k.mariadb,
                wp_cli: k.wp_cli,
                woocommerce: k.woocommerce,
            },
        }
    }
}

/// What a store runs: the workload images and the WooCommerce plugin version. Recorded on
/// the store (provisioning, a successful upgrade) and rendered from that record, so that a
/// change to a channel never reaches a store except through `store.upgrade`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Pins {
    pub wordpress: String,
    pub mariadb: String,
    pub wp_cli: String,
    /// The WooCommerce plugin version (`10.3.5`).
    pub woocommerce: String,
}

impl Pins {
    /// The WordPress version in the WordPress image's tag (`wordpress:6.8.3-php8.3-apache`
    /// → `6.8.3`); `None` for a tag that does not start with a version (`latest`, a digest).
    #[must_use]
    pub fn wordpress_version(&self) -> Option<&str> {
        let tag = self.wordpress.rsplit_once(':')?.1;
        let v = tag.split('-').next()?;
        (v.chars().next()?.is_ascii_digit() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
            .then_some(v)
    }

    /// `(what, from, to)` for each pin that differs between `self` and `to`.
    #[must_use]
    pub fn changes(&self, to: &Self) -> Vec<(&'static str, String, String)> {
        [
            ("wordpress", &self.wordpress, &to.wordpress),
            ("mariadb", &self.mariadb, &to.mariadb),
            ("wp_cli", &self.wp_cli, &to.wp_cli),
            ("woocommerce", &self.woocommerce, &to.woocommerce),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(w, a, b)| (w, a.clone(), b.clone()))
        .collect()
    }
}

/// One plan's limits.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub pods: String,
    pub requests_cpu: String,
    pub requests_memory: String,
    pub limits_cpu: String,
    pub limits_memory: String,
    pub pvcs: String,
    pub requests_storage: String,
    pub db_storage: String,
    pub wp_storage: String,
    /// How the plan's stores are backed up.
    #[serde(default)]
    pub backups: BackupPolicy,
}

/// A plan's backups: how many complete ones are kept, on what schedule, and the size of the
/// backup volume (PVC storage).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupPolicy {
    /// Complete backups kept per store (at least 1); older ones are pruned when a new one
    /// completes.
    pub retention: u32,
    /// A cron expression (seconds first, as in `[[schedules]]`) on which every ready store of
    /// the plan is backed up; `None`: only on request.
    pub schedule: Option<String>,
    /// The size of the `store-backups` PVC (PVC storage only).
    pub volume: String,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            retention: 7,
            schedule: None,
            volume: "5Gi".into(),
        }
    }
}

impl Plan {
    /// The plan's ResourceQuota `hard` entries that come from the plan, by quota resource
    /// name (the quota also forbids LoadBalancer and NodePort Services).
    #[must_use]
    pub fn quota_hard(&self) -> [(&'static str, &str); 7] {
        [
            ("pods", &self.pods),
            ("requests.cpu", &self.requests_cpu),
            ("requests.memory", &self.requests_memory),
            ("limits.cpu", &self.limits_cpu),
            ("limits.memory", &self.limits_memory),
            ("persistentvolumeclaims", &self.pvcs),
            ("requests.storage", &self.requests_storage),
        ]
    }
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            pods: "10".into(),
            requests_cpu: "1".into(),
            requests_memory: "1536Mi".into(),
            limits_cpu: "2".into(),
            limits_memory: "3Gi".into(),
            pvcs: "4".into(),
            requests_storage: "20Gi".into(),
            db_storage: "5Gi".into(),
            wp_storage: "5Gi".into(),
            backups: BackupPolicy::default(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            base_domain: "stores.localhost".into(),
            platform_namespace: "urumi-system".into(),
            ingress_class: "traefik".into(),
            ingress_namespace: "kube-system".into(),
            storage_class: None,
            tls_issuer: None,
            internet_egress: true,
            cluster_cidrs: vec![
                "10.0.0.0/8".into(),
                "172.16.0.0/12".into(),
                "192.168.0.0/16".into(),
            ],
            images: Images {
                mariadb: "mariadb:11.4.8".into(),
                wordpress: "wordpress:6.8.3-php8.3-apache".into(),
                wp_cli: "wordpress:cli-2.12.0-php8.3".into(),
                curl: default_curl_image(),
            },
            plans: BTreeMap::from([("starter".to_owned(), Plan::default())]),
            default_plan: "starter".into(),
            channels: BTreeMap::new(),
            default_channel: DEFAULT_CHANNEL.into(),
            suspended_service: "urumi-suspended".into(),
            backups: BackupSettings::default(),
        }
    }
}

impl StoreSettings {
    /// The cluster DNS name of the suspended page ([`StoreSettings::suspended_service`]), or
    /// `None` when there is none.
    #[must_use]
    pub fn suspended_host(&self) -> Option<String> {
        (!self.suspended_service.is_empty()).then(|| {
            format!(
                "{}.{}.svc.cluster.local",
                self.suspended_service, self.platform_namespace
            )
        })
    }

    /// The release channels: [`StoreSettings::channels`] as configured, or, when none is,
    /// `stable` at [`DEFAULT_RELEASE`] pinned to `images` and [`DEFAULT_WOOCOMMERCE`].
    #[must_use]
    pub fn channels(&self) -> BTreeMap<String, Channel> {
        if !self.channels.is_empty() {
            return self.channels.clone();
        }
        BTreeMap::from([(
            DEFAULT_CHANNEL.to_owned(),
            Channel {
                version: DEFAULT_RELEASE.into(),
                pins: self.image_pins(),
            },
        )])
    }

    /// The pins `images` gives (with [`DEFAULT_WOOCOMMERCE`]): what a store provisioned
    /// before channels existed runs, as long as it has no recorded pins.
    #[must_use]
    pub fn image_pins(&self) -> Pins {
        Pins {
            wordpress: self.images.wordpress.clone(),
            mariadb: self.images.mariadb.clone(),
            wp_cli: self.images.wp_cli.clone(),
            woocommerce: DEFAULT_WOOCOMMERCE.into(),
        }
    }

    /// The channel called `name` (the default channel for `None`), with its name.
    ///
    /// # Errors
    /// A message listing the known channels.
    pub fn channel(&self, name: Option<&str>) -> Result<(String, Channel), String> {
        let name = name.unwrap_or(&self.default_channel);
        let all = self.channels();
        all.get(name)
            .cloned()
            .map(|c| (name.to_owned(), c))
            .ok_or_else(|| {
                let known: Vec<&str> = all.keys().map(String::as_str).collect();
                format!(
                    "unknown channel {name:?}; known channels: {}",
                    known.join(", ")
                )
            })
    }

    /// The plan called `name`, or the default plan for `None`.
    ///
    /// # Errors
    /// A message listing the known plans.
    pub fn plan(&self, name: Option<&str>) -> Result<&Plan, String> {
        let name = name.unwrap_or(&self.default_plan);
        self.plans.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.plans.keys().map(String::as_str).collect();
            format!("unknown plan {name:?}; known plans: {}", known.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_channels_stable_is_pinned_to_the_images() {
        let s = StoreSettings::default();
        let (name, stable) = s.channel(None).unwrap();
        assert_eq!(
            (name.as_str(), stable.version.as_str()),
            ("stable", DEFAULT_RELEASE)
        );
        assert_eq!(stable.pins, s.image_pins());
        assert_eq!(stable.pins.wordpress, s.images.wordpress);
        assert_eq!(stable.pins.woocommerce, DEFAULT_WOOCOMMERCE);
    }

    #[test]
    fn configured_channels_replace_the_derived_one_and_an_unknown_one_names_the_known() {
        let channel: Channel = serde_json::from_value(serde_json::json!({
            "version": "2026.12", "wordpress": "wordpress:6.9.0-php8.3-apache",
            "mariadb": "mariadb:11.4.8", "wp_cli": "wordpress:cli-2.12.0-php8.3",
            "woocommerce": "10.4.0"
        }))
        .unwrap();
        let s = StoreSettings {
            channels: BTreeMap::from([("edge".to_owned(), channel.clone())]),
            default_channel: "edge".into(),
            ..StoreSettings::default()
        };
        assert_eq!(s.channel(None).unwrap(), ("edge".to_owned(), channel));
        let e = s.channel(Some("stable")).unwrap_err();
        assert_eq!(e, r#"unknown channel "stable"; known channels: edge"#);
        let typo = serde_json::from_value::<Channel>(serde_json::json!({
            "version": "2026.12", "wordpress": "w", "mariadb": "m", "wp_cli": "c",
            "woocommerce": "10.4.0", "woocomerce": "10.4.1"
        }));
        assert!(typo.unwrap_err().to_string().contains("woocomerce"));
    }

    #[test]
    fn a_wordpress_version_is_read_from_a_versioned_tag_only() {
        let pins = |wordpress: &str| Pins {
            wordpress: wordpress.into(),
            mariadb: String::new(),
            wp_cli: String::new(),
            woocommerce: String::new(),
        };
        assert_eq!(
            pins("wordpress:6.8.3-php8.3-apache").wordpress_version(),
            Some("6.8.3")
        );
        assert_eq!(
            pins("registry:5000/wordpress:6.9").wordpress_version(),
            Some("6.9")
        );
        assert_eq!(pins("wordpress:latest").wordpress_version(), None);
        assert_eq!(pins("wordpress").wordpress_version(), None);
    }

    #[test]
    fn pin_changes_name_each_pin_that_differs() {
        let a = StoreSettings::default().image_pins();
        let mut b = a.clone();
        b.woocommerce = "10.4.0".into();
        assert_eq!(
            a.changes(&b),
            [(
                "woocommerce",
                DEFAULT_WOOCOMMERCE.to_owned(),
                "10.4.0".to_owned()
            )]
        );
        assert!(a.changes(&a).is_empty());
    }
}
