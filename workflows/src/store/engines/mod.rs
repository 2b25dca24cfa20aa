//! Store engines: what differs between the applications a store can run (WooCommerce today),
//! behind one trait, so that a second engine is a new file and one line in [`BUILT_IN`].
//!
//! ```text
//!            generic core (render.rs, steps.rs)                 engine (StoreEngine)
//!  namespace + PSA ─ quota + LimitRange ─ NetworkPolicies ──── web(): app label + port
//!  credentials Secret ──────────────────────────────────────── credential_keys()
//!  step `mariadb` applies, `mariadb_ready` waits on ────────── data_tier(): objects + workload
//!  step `wordpress` applies (+ the Ingress), `…_ready` waits ─ web_tier():  objects + workload
//!  step `setup`: ConfigMap `store-setup` + Job store-setup-N ─ setup_script(), setup_pod()
//!  step `storefront`: GET via the Service proxy, judged by ─── storefront_path(), judge_storefront()
//!  labels, deletion, repair ─────────────────────────────────── (nothing engine-specific)
//! ```
//!
//! The step names come from the first engine and stay, because checkpoints are keyed by
//! them: for any engine `mariadb` means "the data tier" and `wordpress` "the web tier".

pub mod woocommerce;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, PodSpec, Service};
use serde_json::Value;

use super::render::StoreSpec;
use super::settings::StoreSettings;

/// The engine of runs whose input names none (started before inputs carried the engine).
pub use urumi_store::engines::DEFAULT;

/// The ConfigMap the core publishes [`StoreEngine::setup_script`] in, under [`SETUP_SCRIPT_KEY`];
/// an engine's setup pod mounts it.
pub const SETUP_CONFIGMAP: &str = "store-setup";
/// See [`SETUP_CONFIGMAP`].
pub const SETUP_SCRIPT_KEY: &str = "setup.sh";

/// The ConfigMap holding the backup and restore scripts, under [`BACKUP_SCRIPT_KEY`] and
/// [`RESTORE_SCRIPT_KEY`].
pub const ARCHIVE_CONFIGMAP: &str = "store-archive";
/// See [`ARCHIVE_CONFIGMAP`].
pub const BACKUP_SCRIPT_KEY: &str = "backup.sh";
/// See [`ARCHIVE_CONFIGMAP`].
pub const RESTORE_SCRIPT_KEY: &str = "restore.sh";
/// The PVC backups are written to when they are kept in the cluster.
pub const BACKUP_PVC: &str = "store-backups";
/// The Secret with the bucket's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`),
/// when backups go to S3.
pub const BACKUP_S3_SECRET: &str = "backup-s3";
/// The scripts (`workflows/scripts/`): `store-backup.sh dump|upload`,
/// `store-restore.sh fetch|import`.
pub const BACKUP_SCRIPT: &str = include_str!("../../../scripts/store-backup.sh");
/// See [`BACKUP_SCRIPT`].
pub const RESTORE_SCRIPT: &str = include_str!("../../../scripts/store-restore.sh");

/// The ConfigMap an engine's upgrade script ([`StoreEngine::upgrade`]) is published in, under
/// [`UPGRADE_SCRIPT_KEY`].
pub const UPGRADE_CONFIGMAP: &str = "store-upgrade";
/// See [`UPGRADE_CONFIGMAP`].
pub const UPGRADE_SCRIPT_KEY: &str = "upgrade.sh";

/// A backup or restore Job's parameters.
#[derive(Debug, Clone)]
pub struct ArchiveJob {
    pub kind: ArchiveKind,
    pub backup_id: uuid::Uuid,
    /// Restore: the checksum recorded when the backup completed.
    pub expect_sha256: Option<String>,
    /// Backup: the archives retention drops.
    pub prune: Vec<uuid::Uuid>,
    /// The bucket prefix URL and region, when backups go to S3 (credentials from
    /// [`BACKUP_S3_SECRET`]); `None`: the [`BACKUP_PVC`].
    pub s3: Option<(String, String)>,
}

/// What an [`ArchiveJob`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Backup,
    Restore,
}

impl ArchiveKind {
    /// The `urumi.io/job` label value, and the Job name's middle (`store-backup-…`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Restore => "restore",
        }
    }
}

/// What is engine-specific about a store. Implementations are pure: they render objects
/// and judge answers; every cluster call is the core's.
pub trait StoreEngine: Send + Sync {
    /// The name stores are created with (`"woocommerce"`).
    fn name(&self) -> &'static str;
    /// The keys of the credentials Secret, each a random value created once.
    fn credential_keys(&self) -> &'static [&'static str];
    /// The tier public traffic reaches (the Ingress backend, the ingress-controller policy).
    fn web(&self) -> WebTier;
    /// The data tier, applied by the `mariadb` step and waited on by `mariadb_ready`.
    fn data_tier(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> Tier;
    /// The web tier, applied by the `wordpress` step; its objects include the Service
    /// [`WebTier::app`] on [`WebTier::port`]. The core adds the Ingress.
    fn web_tier(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> Tier;
    /// The re-runnable setup script (published as [`SETUP_CONFIGMAP`]).
    fn setup_script(&self) -> &'static str;
    /// The setup Job's pod; the core wraps it in Job `store-setup-N` (no retries inside the
    /// Job, `restartPolicy: Never`: each attempt of the step is a fresh Job).
    fn setup_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings) -> PodSpec;
    /// The pod of a backup or restore Job ([`ArchiveJob`]): the core wraps it in a Job
    /// labelled `urumi.io/job=backup|restore`, publishes the scripts as [`ARCHIVE_CONFIGMAP`]
    /// and reads the result line the main container prints last.
    fn archive_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings, job: &ArchiveJob) -> PodSpec;
    /// The pod that tells the app it lives at `url` (the store's primary URL, after a custom
    /// domain is added or removed), re-runnable; the core wraps it in Job `store-siteurl-N`.
    /// `None` (the default): the app does not store its own URL, so the `site_url` step has
    /// nothing to do and says so in its output.
    fn site_url_pod(&self, spec: &StoreSpec<'_>, s: &StoreSettings, url: &str) -> Option<PodSpec> {
        let _ = (spec, s, url);
        None
    }
    /// The database update of `store.upgrade`'s `update_db` step for a store rendered with
    /// its new pins (`spec.pins`): the script (published as [`UPGRADE_CONFIGMAP`]) and the
    /// pod of Job `store-upgrade-N`, whose main container prints
    /// `URUMI-UPGRADE {"wordpress":…,"woocommerce":…}` last. `None` (the default): the engine
    /// has no database update, the step is skipped.
    fn upgrade(&self, spec: &StoreSpec<'_>) -> Option<(&'static str, PodSpec)> {
        let _ = spec;
        None
    }
    /// Path and query requested from the web Service to prove the store serves customers.
    fn storefront_path(&self) -> &'static str;
    /// Judges the storefront's answer to [`StoreEngine::storefront_path`].
    fn judge_storefront(&self, status: u16, body: &str) -> Verdict;
}

impl std::fmt::Debug for dyn StoreEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreEngine({})", self.name())
    }
}

/// The web tier's pods (label `app.kubernetes.io/name`), whose Service has the same name,
/// and the port both listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebTier {
    pub app: &'static str,
    pub port: i32,
}

/// Objects applied together, and the workload that must then become ready.
#[derive(Debug, Clone)]
pub struct Tier {
    pub objects: Vec<AppObject>,
    pub ready: Workload,
}

/// An object an engine renders.
#[derive(Debug, Clone)]
pub enum AppObject {
    Service(Service),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    PersistentVolumeClaim(PersistentVolumeClaim),
    ConfigMap(ConfigMap),
}

impl AppObject {
    /// `Kind/name`, as step outputs and repair reports name objects.
    #[must_use]
    pub fn id(&self) -> String {
        use k8s_openapi::Resource;
        fn id<K: Resource + kube::Resource>(o: &K) -> String {
            format!(
                "{}/{}",
                K::KIND,
                o.meta().name.as_deref().unwrap_or_default()
            )
        }
        match self {
            Self::Service(o) => id(o),
            Self::StatefulSet(o) => id(o),
            Self::Deployment(o) => id(o),
            Self::PersistentVolumeClaim(o) => id(o),
            Self::ConfigMap(o) => id(o),
        }
    }
}

/// A workload a step waits on: a StatefulSet until a replica is ready, a Deployment until
/// one is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    StatefulSet {
        name: &'static str,
        title: &'static str,
    },
    Deployment {
        name: &'static str,
        title: &'static str,
    },
}

/// The engine's reading of a storefront answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The store serves customers; the value goes into the step's output.
    Ready(Value),
    /// Not yet (the step polls again until its deadline); says why.
    NotYet(String),
}

/// The start of an answer's body on one line (at most 200 characters), for messages.
#[must_use]
pub fn excerpt(body: &str) -> String {
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None if line.is_empty() => "(empty body)".into(),
        None => line,
    }
}

/// The engines this build provides: one for each of `urumi_store::engines::NAMES`, the names
/// the API accepts (a test checks the two agree).
pub const BUILT_IN: Engines = Engines::new(&[&woocommerce::WooCommerce]);

/// A set of engines by name (cheap to copy). [`BUILT_IN`] is what the API accepts and the
/// workers serve; tests may serve more.
#[derive(Debug, Clone, Copy)]
pub struct Engines(&'static [&'static dyn StoreEngine]);

impl Engines {
    /// The engines in `list` (names must be distinct; the first wins otherwise).
    #[must_use]
    pub const fn new(list: &'static [&'static dyn StoreEngine]) -> Self {
        Self(list)
    }

    /// The engine called `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'static dyn StoreEngine> {
        self.0.iter().copied().find(|e| e.name() == name)
    }

    /// Every engine's name, in order.
    #[must_use]
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_registry_knows_woocommerce_and_nothing_else() {
        assert_eq!(BUILT_IN.names(), ["woocommerce"]);
        assert_eq!(BUILT_IN.get("woocommerce").unwrap().name(), "woocommerce");
        assert!(BUILT_IN.get("magento").is_none());
        assert!(BUILT_IN.get("WooCommerce").is_none(), "names are exact");
        assert!(BUILT_IN.get(DEFAULT).is_some(), "the default engine exists");
    }

    #[test]
    fn the_built_in_engines_are_the_ones_the_store_domain_names() {
        assert_eq!(BUILT_IN.names(), urumi_store::engines::NAMES);
    }

    struct Other;
    impl StoreEngine for Other {
        fn name(&self) -> &'static str {
            "other"
        }
        fn credential_keys(&self) -> &'static [&'static str] {
            &[]
        }
        fn web(&self) -> WebTier {
            WebTier {
                app: "web",
                port: 8080,
            }
        }
        fn data_tier(&self, _: &StoreSpec<'_>, _: &StoreSettings) -> Tier {
            unreachable!("not rendered here")
        }
        fn web_tier(&self, _: &StoreSpec<'_>, _: &StoreSettings) -> Tier {
            unreachable!("not rendered here")
        }
        fn setup_script(&self) -> &'static str {
            ""
        }
        fn setup_pod(&self, _: &StoreSpec<'_>, _: &StoreSettings) -> PodSpec {
            PodSpec::default()
        }
        fn archive_pod(&self, _: &StoreSpec<'_>, _: &StoreSettings, _: &ArchiveJob) -> PodSpec {
            PodSpec::default()
        }
        fn storefront_path(&self) -> &'static str {
            "/"
        }
        fn judge_storefront(&self, _: u16, _: &str) -> Verdict {
            Verdict::NotYet(String::new())
        }
    }

    #[test]
    fn an_excerpt_is_one_short_line() {
        assert_eq!(excerpt("<h1>\n  Shop </h1>\n"), "<h1> Shop </h1>");
        assert_eq!(excerpt(""), "(empty body)");
        let long = excerpt(&"é".repeat(500));
        assert_eq!(long.chars().count(), 201);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_registry_with_a_second_engine_finds_both_by_name() {
        const TWO: Engines = Engines::new(&[&woocommerce::WooCommerce, &Other]);
        assert_eq!(TWO.names(), ["woocommerce", "other"]);
        assert_eq!(TWO.get("other").unwrap().web().port, 8080);
        assert_eq!(TWO.get("woocommerce").unwrap().web().app, "wordpress");
        assert!(
            BUILT_IN.get("other").is_none(),
            "the built-in set is unchanged"
        );
    }
}
