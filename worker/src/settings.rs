//! Typed settings of the worker process, loaded once at start by `urumi_process::load`
//! (defaults → `URUMI_CONFIG`/`urumi.toml` → `URUMI__SECTION__KEY` environment, e.g.
//! `URUMI__WORKER__CONCURRENCY=16`), then `validate()`.

use std::time::Duration;

use serde::Deserialize;
pub use urumi_process::{DatabaseSettings, LogSettings, TraceSettings};

/// Everything the worker process reads from its environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub worker: WorkerSettings,
    pub log: LogSettings,
    /// OpenTelemetry traces over OTLP/HTTP; off unless `traces.enabled`.
    #[serde(default)]
    pub traces: TraceSettings,
    pub cluster: ClusterSettings,
    pub retention: RetentionSettings,
    /// Runs started on a cron schedule (`[[schedules]]`), e.g. a nightly sweep. Every worker
    /// may carry the same list: each slot starts one run.
    #[serde(default)]
    pub schedules: Vec<ScheduleSettings>,
    /// How often the fleet's resource usage is read (`store.usage@1`).
    pub usage: UsageSettings,
    /// How often the fleet is swept for drift (`store.sweep@1`), and whether drifted stores
    /// are repaired.
    pub sweep: SweepSettings,
    /// How stores are built (images, domains, quotas per plan, …); see `StoreSettings`.
    #[serde(default)]
    pub stores: urumi_workflows::store::settings::StoreSettings,
    /// The API's section of a shared `urumi.toml`; the worker ignores it.
    #[serde(default, rename = "api")]
    _api: Option<serde::de::IgnoredAny>,
}

/// Which Kubernetes cluster store workflows act on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// Whether this worker serves the store workflows at all.
    pub enabled: bool,
    /// A kubeconfig file; empty means the usual inference (`KUBECONFIG`, `~/.kube/config`,
    /// in-cluster service account).
    pub kubeconfig: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    pub name: String,
    pub concurrency: usize,
    /// The share of `concurrency` (percent) bulk operations' runs may hold at once; the rest
    /// stays free for customers' runs.
    pub bulk_share_percent: u8,
    pub lease_ms: u64,
    pub poll_interval_ms: u64,
    pub sweep_interval_ms: u64,
    pub unserved_grace_ms: u64,
    pub shutdown_grace_ms: u64,
    /// How long a step may keep retrying transient cluster errors (5xx, 429, timeouts,
    /// connection loss), which cost no attempt; 0: each step's own budget (10 minutes).
    pub transient_budget_ms: u64,
    /// Where to serve `/metrics` and `/healthz` (e.g. `0.0.0.0:9090`); empty: not served.
    pub metrics_listen: String,
}

/// The fleet's resource usage: every store's ResourceQuota `status`, read with one paginated
/// LIST by a `store.usage@1` run on this schedule (schedule name [`USAGE_SCHEDULE`]), when
/// the worker serves the store workflows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSettings {
    /// A cron expression (seconds first, UTC); empty: never observed.
    pub cron: String,
}

/// The schedule name of the usage observation (taken: no `[[schedules]]` entry may use it).
pub const USAGE_SCHEDULE: &str = "store-usage";

impl UsageSettings {
    /// The schedule, `None` when off.
    ///
    /// # Errors
    /// A bad cron expression.
    pub fn schedule(&self) -> Result<Option<urumi_engine::Schedule>, String> {
        if self.cron.is_empty() {
            return Ok(None);
        }
        urumi_engine::Schedule::new(
            USAGE_SCHEDULE,
            &self.cron,
            urumi_store::usage::USAGE,
            urumi_store::usage::USAGE_SUBJECT,
            serde_json::json!({}),
        )
        .map(Some)
        .map_err(|e| format!("usage.cron: {e}"))
    }
}

/// The fleet drift sweep: a `store.sweep@1` run on this schedule (schedule name
/// [`SWEEP_SCHEDULE`]) previews a repair of every ready store (dry run) and lists the drifted
/// ones; with `repair`, it also starts a bulk-lane `store.repair` run for each. Only when the
/// worker serves the store workflows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSettings {
    /// A cron expression (seconds first, UTC); empty: never swept.
    pub cron: String,
    /// Repair drifted stores (else only list them). Goes into each run's input, so a run's
    /// record says what it was told.
    pub repair: bool,
}

/// The schedule name of the drift sweep (taken: no `[[schedules]]` entry may use it).
pub const SWEEP_SCHEDULE: &str = "store-sweep";

impl SweepSettings {
    /// The schedule, `None` when off.
    ///
    /// # Errors
    /// A bad cron expression.
    pub fn schedule(&self) -> Result<Option<urumi_engine::Schedule>, String> {
        if self.cron.is_empty() {
            return Ok(None);
        }
        urumi_engine::Schedule::new(
            SWEEP_SCHEDULE,
            &self.cron,
            urumi_store::sweep::SWEEP,
            urumi_store::sweep::SWEEP_SUBJECT,
            self.input(),
        )
        .map(Some)
        .map_err(|e| format!("sweep.cron: {e}"))
    }

    /// The input of the runs the schedule starts.
    #[must_use]
    pub fn input(&self) -> serde_json::Value {
        serde_json::json!(urumi_store::sweep::SweepInput {
            repair: self.repair
        })
    }
}

/// One `[[schedules]]` entry ([`urumi_engine::Schedule`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Unique among schedules; it keys the slots (`urumi.schedule_slots`).
    pub name: String,
    /// Six or seven fields, seconds first, UTC: `0 0 2 * * *` is 02:00:00 every day.
    pub cron: String,
    /// The workflow definition to start (its latest version).
    pub definition: String,
    /// What the runs act on (one active run per subject: a slot whose subject is still busy
    /// is skipped).
    pub subject: String,
    /// The runs' input.
    #[serde(default = "empty_object")]
    pub input: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl ScheduleSettings {
    /// The engine's schedule.
    ///
    /// # Errors
    /// The schedule's name and what is wrong with it.
    pub fn schedule(&self) -> Result<urumi_engine::Schedule, String> {
        urumi_engine::Schedule::new(
            &self.name,
            &self.cron,
            &self.definition,
            &self.subject,
            self.input.clone(),
        )
        .map_err(|e| format!("schedules: {e}"))
    }
}

/// What the engine's tables keep ([`urumi_engine::Retention`]); the pruner runs in every
/// worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Whether this worker prunes at all.
    pub enabled: bool,
    /// Succeeded runs, with their steps and progress events.
    pub succeeded_days: u32,
    /// Failed and cancelled runs.
    pub failed_days: u32,
    /// Every event, operators' audit entries included (at least the two above).
    pub audit_days: u32,
    /// Rows of stopped workers.
    pub workers_days: u32,
    /// Rows deleted per transaction.
    pub batch: u32,
    /// Pause between batches.
    pub pause_ms: u64,
    /// How often to look for something to prune.
    pub interval_ms: u64,
}

impl RetentionSettings {
    /// The engine's policy, or `None` when pruning is off.
    #[must_use]
    pub fn policy(&self) -> Option<urumi_engine::Retention> {
        let day = |d: u32| Duration::from_secs(u64::from(d) * 24 * 3600);
        self.enabled.then(|| urumi_engine::Retention {
            succeeded: day(self.succeeded_days),
            failed: day(self.failed_days),
            audit: day(self.audit_days),
            workers: day(self.workers_days),
            batch: self.batch,
            pause: Duration::from_millis(self.pause_ms),
            interval: Duration::from_millis(self.interval_ms),
        })
    }
}

const DEFAULTS: &str = r#"
[database]
url = "postgres://postgres@127.0.0.1:5432/urumi"

[worker]
name = "worker"
concurrency = 128
bulk_share_percent = 75
lease_ms = 30000
poll_interval_ms = 1000
sweep_interval_ms = 5000
unserved_grace_ms = 300000
shutdown_grace_ms = 30000
transient_budget_ms = 0
metrics_listen = ""

[retention]
enabled = true
succeeded_days = 30
failed_days = 180
audit_days = 365
workers_days = 7
batch = 500
pause_ms = 20
interval_ms = 60000

[usage]
cron = "0 */5 * * * *"

[sweep]
cron = "0 0 * * * *"
repair = false

[log]
format = "pretty"
filter = "info"

[cluster]
enabled = true
kubeconfig = ""
"#;

impl Settings {
    /// Loads and validates the settings.
    ///
    /// # Errors
    /// A message naming the bad source or value.
    pub fn load() -> Result<Self, String> {
        let settings: Settings = urumi_process::load(DEFAULTS, &[])?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        self.stores
            .channel(None)
            .map_err(|e| format!("stores.default_channel: {e}"))?;
        let w = &self.worker;
        if w.concurrency == 0 {
            return Err("worker.concurrency must be at least 1".into());
        }
        if w.bulk_share_percent == 0 || w.bulk_share_percent > 100 {
            return Err("worker.bulk_share_percent must be 1 to 100".into());
        }
        if w.lease_ms < 500 {
            return Err("worker.lease_ms must be at least 500".into());
        }
        if w.poll_interval_ms == 0 || w.sweep_interval_ms == 0 {
            return Err("worker.poll_interval_ms and worker.sweep_interval_ms must be > 0".into());
        }
        if let Some(r) = self.retention.policy() {
            r.validate()?;
        }
        self.usage.schedule()?;
        self.sweep.schedule()?;
        let backups = self.backup_schedules()?;
        let mut names = std::collections::HashSet::from([USAGE_SCHEDULE, SWEEP_SCHEDULE]);
        names.extend(backups.iter().map(urumi_engine::Schedule::name));
        for s in &self.schedules {
            s.schedule()?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("schedules: the name {:?} is used twice", s.name));
            }
        }
        if self.stores.backups.storage == urumi_workflows::store::settings::BackupStorage::S3
            && self.stores.backups.s3.is_none()
        {
            return Err("stores.backups.storage is s3: stores.backups.s3 (endpoint, bucket, access_key_id, secret_access_key) is required".into());
        }
        if let Some(s3) = &self.stores.backups.s3
            && self.stores.backups.storage == urumi_workflows::store::settings::BackupStorage::S3
            && (s3.access_key_id.is_empty() || s3.secret_access_key.is_empty())
        {
            return Err("stores.backups.s3: access_key_id and secret_access_key are empty; set URUMI__STORES__BACKUPS__S3__ACCESS_KEY_ID and URUMI__STORES__BACKUPS__S3__SECRET_ACCESS_KEY".into());
        }
        for (name, plan) in &self.stores.plans {
            if plan.backups.retention == 0 {
                return Err(format!(
                    "stores.plans.{name}.backups.retention must be at least 1"
                ));
            }
        }
        self.traces.validate()?;
        self.database.validate()
    }

    /// One schedule per plan with a `backups.schedule`: `store-backups-<plan>`, starting a
    /// `store.scheduled_backups@1` run that backs up the plan's ready stores.
    ///
    /// # Errors
    /// A bad cron expression, naming the plan.
    pub fn backup_schedules(&self) -> Result<Vec<urumi_engine::Schedule>, String> {
        use urumi_store::scheduled_backups as sb;
        self.stores
            .plans
            .iter()
            .filter_map(|(name, plan)| plan.backups.schedule.as_ref().map(|cron| (name, cron)))
            .map(|(name, cron)| {
                urumi_engine::Schedule::new(
                    sb::schedule_name(name),
                    cron,
                    sb::SCHEDULED_BACKUPS,
                    sb::subject(name),
                    serde_json::json!(sb::ScheduledBackupsInput { plan: name.clone() }),
                )
                .map_err(|e| format!("stores.plans.{name}.backups.schedule: {e}"))
            })
            .collect()
    }

    /// The engine's worker options.
    #[must_use]
    pub fn worker_options(&self) -> urumi_engine::WorkerOptions {
        let w = &self.worker;
        urumi_engine::WorkerOptions {
            concurrency: w.concurrency,
            bulk_share_percent: w.bulk_share_percent,
            lease: Duration::from_millis(w.lease_ms),
            poll_interval: Duration::from_millis(w.poll_interval_ms),
            sweep_interval: Duration::from_millis(w.sweep_interval_ms),
            unserved_grace: Duration::from_millis(w.unserved_grace_ms),
            shutdown_grace: Duration::from_millis(w.shutdown_grace_ms),
            name: w.name.clone(),
            transient_budget: (w.transient_budget_ms > 0)
                .then(|| Duration::from_millis(w.transient_budget_ms)),
            retention: self.retention.policy(),
            schedules: self
                .schedules
                .iter()
                .filter_map(|s| s.schedule().ok()) // validated at load
                .chain(
                    [self.usage.schedule(), self.sweep.schedule()]
                        .into_iter()
                        .filter_map(|s| s.ok().flatten()) // validated at load
                        .chain(self.backup_schedules().unwrap_or_default())
                        .filter(|_| self.cluster.enabled),
                )
                .collect(),
            ..urumi_engine::WorkerOptions::default()
        }
    }

    /// The pool size to use.
    #[must_use]
    pub fn max_connections(&self) -> u32 {
        self.database
            .max_connections
            .unwrap_or(urumi_engine::WorkerOptions::POOL_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_the_url_never_prints() {
        let s: Settings = urumi_process::settings::from_toml(DEFAULTS).unwrap();
        s.validate().unwrap();
        assert_eq!(s.max_connections(), 16);
        let r = s
            .worker_options()
            .retention
            .expect("pruning is on by default");
        assert_eq!(r.succeeded, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(r, urumi_engine::Retention::default(), "one set of defaults");
        assert!(!format!("{s:?}").contains("postgres://"));
    }

    #[test]
    fn nonsense_values_are_refused() {
        let mut s: Settings = urumi_process::settings::from_toml(DEFAULTS).unwrap();
        s.worker.concurrency = 0;
        assert!(s.validate().unwrap_err().contains("concurrency"));
        s.worker.concurrency = 1;
        for bad in [0, 101] {
            s.worker.bulk_share_percent = bad;
            assert!(s.validate().unwrap_err().contains("bulk_share_percent"));
        }
        s.worker.bulk_share_percent = 75;
        s.worker.lease_ms = 10;
        assert!(s.validate().unwrap_err().contains("lease_ms"));
        s.worker.lease_ms = 30_000;
        s.retention.audit_days = 7;
        assert!(s.validate().unwrap_err().contains("retention.audit_days"));
        s.retention.enabled = false;
        s.validate().unwrap();
        // An unknown log format does not even parse (a closed set): see urumi_process.
        let bad = DEFAULTS.replace("format = \"pretty\"", "format = \"xml\"");
        assert!(
            urumi_process::settings::from_toml::<Settings>(&bad)
                .unwrap_err()
                .contains("xml")
        );
    }

    #[test]
    fn a_plan_with_a_backup_schedule_gets_a_schedule_and_bad_backup_settings_are_refused() {
        let mut s: Settings = urumi_process::settings::from_toml(DEFAULTS).unwrap();
        let backups = |s: &Settings| {
            s.worker_options()
                .schedules
                .into_iter()
                .filter(|x| x.name().starts_with("store-backups-"))
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>()
        };
        assert!(backups(&s).is_empty(), "no plan has a schedule by default");
        let starter = s.stores.plans.get_mut("starter").unwrap();
        starter.backups.schedule = Some("0 30 2 * * *".into());
        s.validate().unwrap();
        let got = backups(&s);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].contains("definition: \"store.scheduled_backups\"")
                && got[0].contains("subject: \"fleet:backups:starter\"")
                && got[0].contains("\"plan\": String(\"starter\")"),
            "{got:?}"
        );
        let mut bad = s.clone();
        bad.stores
            .plans
            .get_mut("starter")
            .unwrap()
            .backups
            .schedule = Some("nightly".into());
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("stores.plans.starter.backups.schedule")
        );
        let mut bad = s.clone();
        bad.stores
            .plans
            .get_mut("starter")
            .unwrap()
            .backups
            .retention = 0;
        assert!(bad.validate().unwrap_err().contains("retention"));
        let mut bad = s;
        bad.stores.backups.storage = urumi_workflows::store::settings::BackupStorage::S3;
        assert!(bad.validate().unwrap_err().contains("stores.backups.s3"));
    }

    #[test]
    fn the_drift_sweep_is_hourly_and_dry_by_default_and_its_repair_setting_is_the_runs_input() {
        let s: Settings = urumi_process::settings::from_toml(DEFAULTS).unwrap();
        let sweep = |s: &Settings| {
            s.worker_options()
                .schedules
                .into_iter()
                .find(|x| x.name() == SWEEP_SCHEDULE)
        };
        let dry = format!("{:?}", sweep(&s).expect("on by default with a cluster"));
        assert!(
            dry.contains("definition: \"store.sweep\"") && dry.contains("subject: \"fleet:sweep\""),
            "{dry}"
        );
        assert_eq!(s.sweep.input(), serde_json::json!({ "repair": false }));
        assert_eq!(s.sweep.cron, "0 0 * * * *");
        // `[sweep] repair = true` (URUMI__SWEEP__REPAIR) is what the runs are told.
        let wet: Settings = urumi_process::settings::from_toml(
            &DEFAULTS.replace("repair = false", "repair = true"),
        )
        .unwrap();
        wet.validate().unwrap();
        assert_eq!(wet.sweep.input(), serde_json::json!({ "repair": true }));
        assert!(format!("{:?}", sweep(&wet).unwrap()).contains("\"repair\": Bool(true)"));
        // Off: an empty cron, or no cluster.
        let mut off = s.clone();
        off.sweep.cron = String::new();
        off.validate().unwrap();
        assert!(sweep(&off).is_none());
        let mut off = s.clone();
        off.cluster.enabled = false;
        assert!(sweep(&off).is_none());
        // A bad cron is refused by name, and the schedule's name is taken.
        let mut bad = s;
        bad.sweep.cron = "hourly".into();
        assert!(bad.validate().unwrap_err().contains("sweep.cron"));
        let taken = format!(
            "{DEFAULTS}\n[[schedules]]\nname = \"store-sweep\"\ncron = \"0 0 2 * * *\"\n\
             definition = \"demo\"\nsubject = \"s\"\n"
        );
        let s: Settings = urumi_process::settings::from_toml(&taken).unwrap();
        assert!(s.validate().unwrap_err().contains("store-sweep"));
    }

    #[test]
    fn schedules_parse_from_the_file_and_bad_ones_are_refused_by_name() {
        let with = |extra: &str| format!("{DEFAULTS}\n{extra}");
        let good = with(
            "[[schedules]]\nname = \"nightly-sweep\"\ncron = \"0 0 2 * * *\"\n\
             definition = \"demo\"\nsubject = \"fleet\"\ninput = { fail_on = \"\" }\n",
        );
        let s: Settings = urumi_process::settings::from_toml(&good).unwrap();
        s.validate().unwrap();
        let options = s.worker_options();
        let names: Vec<&str> = options.schedules.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            ["nightly-sweep", USAGE_SCHEDULE, SWEEP_SCHEDULE],
            "the usage observation and the drift sweep too"
        );
        assert_eq!(s.schedules[0].input, serde_json::json!({ "fail_on": "" }));
        // Without a cluster, or with an empty cron, no usage observation.
        let mut off = s.clone();
        off.cluster.enabled = false;
        assert_eq!(off.worker_options().schedules.len(), 1);
        let mut off = s.clone();
        off.usage.cron = String::new();
        off.validate().unwrap();
        assert_eq!(off.worker_options().schedules.len(), 2);
        // Its name is taken, and a bad cron is refused by name.
        let taken = with(
            "[[schedules]]\nname = \"store-usage\"\ncron = \"0 0 2 * * *\"\ndefinition = \"demo\"\nsubject = \"s\"\n",
        );
        let s2: Settings = urumi_process::settings::from_toml(&taken).unwrap();
        assert!(s2.validate().unwrap_err().contains("store-usage"));
        let mut bad = s;
        bad.usage.cron = "every minute".into();
        assert!(bad.validate().unwrap_err().contains("usage.cron"));

        let bad_cron = with(
            "[[schedules]]\nname = \"n\"\ncron = \"at two\"\ndefinition = \"demo\"\nsubject = \"s\"\n",
        );
        let s: Settings = urumi_process::settings::from_toml(&bad_cron).unwrap();
        let err = s.validate().unwrap_err();
        assert!(err.contains("\"n\"") && err.contains("at two"), "{err}");

        let twice = with(
            "[[schedules]]\nname = \"n\"\ncron = \"0 0 2 * * *\"\ndefinition = \"demo\"\nsubject = \"s\"\n\
             [[schedules]]\nname = \"n\"\ncron = \"0 0 3 * * *\"\ndefinition = \"demo\"\nsubject = \"t\"\n",
        );
        let s: Settings = urumi_process::settings::from_toml(&twice).unwrap();
        assert!(s.validate().unwrap_err().contains("used twice"));
    }
}
