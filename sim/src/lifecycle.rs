//! Emulated store lifecycle Jobs: what the pods of Urumi's backup, restore and upgrade Jobs
//! (`workflows/scripts/store-{backup,restore,upgrade}.sh`) would print, without running them.
//!
//! A Job labelled `urumi.io/job` gets, in place of a plain success, the last line its script
//! prints. The values come from the `env` of the pod template's containers and init
//! containers (the first container that sets a variable wins; literal `value`s only, a
//! `valueFrom` is not resolved):
//!
//! | `urumi.io/job` | reads | success log's last line | fails when |
//! |---|---|---|---|
//! | `backup` | `BACKUP_ID` | `URUMI-BACKUP {"id":…,"size":N,"sha256":"…"}` | `BACKUP_ID` unset |
//! | `restore` | `BACKUP_ID`, `EXPECT_SHA256` | `URUMI-RESTORE {"id":…,"sha256":"…"}` | `backup <id> not found in <ns>`; `checksum mismatch` |
//! | `upgrade` | `WORDPRESS_VERSION` (else `"unknown"`), `WOOCOMMERCE_VERSION` | `URUMI-UPGRADE {"wordpress":…,"woocommerce":…}` | `WOOCOMMERCE_VERSION` unset |
//!
//! A backup's sha256 is that of `"<namespace>/<id>"` (deterministic: the same backup made
//! twice reports the same archive) and its size is derived from it (4–20 MiB). The simulator
//! remembers each (namespace, id) → sha256 when the backup's pod is created; a restore
//! succeeds only for a backup made in the same namespace whose sha256 is `EXPECT_SHA256`.
//! Deleting a namespace forgets its backups, so a restore after the delete fails. Backups
//! meant for S3 (`S3_URL` set) are emulated the same way: they too live with the namespace
//! here, unlike a real bucket. The memory is not in the snapshot.
//!
//! Failure injection keeps precedence: a script registered for the Job's name
//! ([`crate::SimHandle::script_job`], `POST /_sim/jobs`) decides alone, and the
//! `sim.urumi.io/fail-times` / `outcome: fail` annotations fail the first pods (with the
//! `sim.urumi.io/log` text); only a pod that gets past them is emulated.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::State;

/// The label naming which lifecycle script a Job runs.
pub const JOB_LABEL: &str = "urumi.io/job";

/// What an emulated pod does: whether it succeeds, its log, and the backup it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The pod succeeds.
    pub ok: bool,
    /// Its log, ending with the machine-readable line on success.
    pub log: String,
    /// The backup it makes, remembered once its pod exists ([`Backup::remember`]).
    pub backup: Option<Backup>,
}

/// A backup made in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The Job's namespace.
    pub namespace: String,
    /// `BACKUP_ID`.
    pub id: String,
    /// The archive's (emulated) sha256, lowercase hex.
    pub sha256: String,
}

impl Backup {
    /// Records the backup in the simulator's memory (replacing an equal earlier one).
    pub fn remember(self, st: &mut State) {
        st.backups.insert((self.namespace, self.id), self.sha256);
    }
}

/// The emulated sha256 and size of backup `id` in `namespace`.
pub fn archive(namespace: &str, id: &str) -> (String, u64) {
    let digest = Sha256::digest(format!("{namespace}/{id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let n = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    (hex, 4 * 1024 * 1024 + n % (16 * 1024 * 1024))
}

/// The first value of env var `name` among the Job's pod template containers and init
/// containers.
fn env(job: &Value, name: &str) -> Option<String> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| job.pointer(&format!("/spec/template/spec/{k}"))?.as_array())
        .flatten()
        .filter_map(|c| c.get("env")?.as_array())
        .flatten()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|e| e.get("value")?.as_str().map(String::from))
}

fn quoted(s: &str) -> String {
    Value::from(s).to_string()
}

fn fail(log: String) -> Run {
    Run {
        ok: false,
        log,
        backup: None,
    }
}

/// The emulated pod of a lifecycle Job in `namespace`; `None` for other Jobs.
pub fn emulate(st: &State, namespace: &str, job: &Value) -> Option<Run> {
    let kind = job
        .pointer("/metadata/labels")
        .and_then(|l| l.get(JOB_LABEL))
        .and_then(Value::as_str)?;
    let run = match kind {
        "backup" => {
            let Some(id) = env(job, "BACKUP_ID") else {
                return Some(fail("store-backup: BACKUP_ID is required\n".into()));
            };
            let (sha256, size) = archive(namespace, &id);
            Run {
                ok: true,
                log: format!(
                    "backup {id}: emulated by the simulator\nURUMI-BACKUP {{\"id\":{},\"size\":{size},\"sha256\":\"{sha256}\"}}\n",
                    quoted(&id)
                ),
                backup: Some(Backup {
                    namespace: namespace.to_string(),
                    id,
                    sha256,
                }),
            }
        }
        "restore" => {
            let id = env(job, "BACKUP_ID").unwrap_or_default();
            let expect = env(job, "EXPECT_SHA256").unwrap_or_default();
            match st.backups.get(&(namespace.to_string(), id.clone())) {
                None => fail(format!(
                    "store-restore: backup {id} not found in {namespace}\n"
                )),
                Some(sha) if *sha != expect => fail(format!(
                    "store-restore: backup {id}: checksum mismatch: the archive has sha256 {sha}, expected {expect}; nothing restored\n"
                )),
                Some(sha) => Run {
                    ok: true,
                    log: format!(
                        "restoring backup {id}: emulated by the simulator\nURUMI-RESTORE {{\"id\":{},\"sha256\":\"{sha}\"}}\n",
                        quoted(&id)
                    ),
                    backup: None,
                },
            }
        }
        "upgrade" => {
            let Some(woocommerce) = env(job, "WOOCOMMERCE_VERSION") else {
                return Some(fail(
                    "store-upgrade: WOOCOMMERCE_VERSION is required\n".into(),
                ));
            };
            let wordpress = env(job, "WORDPRESS_VERSION").unwrap_or_else(|| "unknown".into());
            Run {
                ok: true,
                log: format!(
                    "upgrade: emulated by the simulator\nURUMI-UPGRADE {{\"wordpress\":{},\"woocommerce\":{}}}\n",
                    quoted(&wordpress),
                    quoted(&woocommerce)
                ),
                backup: None,
            }
        }
        _ => return None,
    };
    Some(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(kind: &str, env: &[(&str, &str)]) -> Value {
        let env: Vec<Value> = env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({"metadata": {"name": "j", "labels": {JOB_LABEL: kind}},
               "spec": {"template": {"spec": {
                   "initContainers": [{"name": "dump", "env": [{"name": "DB_HOST", "value": "db"}]}],
                   "containers": [{"name": "upload", "env": env}]}}}})
    }

    fn state() -> State {
        State::new(tokio::sync::broadcast::channel(16).0)
    }

    fn last_json(log: &str, prefix: &str) -> Value {
        let last = log.lines().last().unwrap();
        serde_json::from_str(last.strip_prefix(prefix).unwrap().trim()).unwrap()
    }

    #[test]
    fn a_backup_reports_a_deterministic_archive_and_a_restore_needs_it_in_its_namespace() {
        let mut st = state();
        let b = emulate(&st, "store-a", &job("backup", &[("BACKUP_ID", "b1")])).unwrap();
        assert!(b.ok);
        let line = last_json(&b.log, "URUMI-BACKUP ");
        let (sha, size) = archive("store-a", "b1");
        assert_eq!(line, json!({"id": "b1", "size": size, "sha256": sha}));
        assert!((4 << 20..20 << 20).contains(&size), "{size}");
        assert_eq!(sha.len(), 64);
        assert_ne!(
            archive("store-b", "b1").0,
            sha,
            "the namespace is in the checksum"
        );
        assert_eq!(
            emulate(&st, "store-a", &job("backup", &[("BACKUP_ID", "b1")])).unwrap(),
            b,
            "deterministic"
        );

        let restore = |st: &State, ns: &str, sha: &str| {
            emulate(
                st,
                ns,
                &job("restore", &[("BACKUP_ID", "b1"), ("EXPECT_SHA256", sha)]),
            )
            .unwrap()
        };
        let before = restore(&st, "store-a", &sha);
        assert!(!before.ok && before.log.contains("backup b1 not found in store-a"));
        b.backup.unwrap().remember(&mut st);
        let ok = restore(&st, "store-a", &sha);
        assert!(ok.ok, "{}", ok.log);
        assert_eq!(
            last_json(&ok.log, "URUMI-RESTORE "),
            json!({"id": "b1", "sha256": sha})
        );
        let other = restore(&st, "store-b", &sha);
        assert!(!other.ok && other.log.contains("backup b1 not found in store-b"));
        let wrong = restore(&st, "store-a", &"0".repeat(64));
        assert!(
            !wrong.ok && wrong.log.contains("checksum mismatch"),
            "{}",
            wrong.log
        );
        assert!(st.finalize_namespace("store-a"));
        let gone = restore(&st, "store-a", &sha);
        assert!(!gone.ok && gone.log.contains("not found in store-a"));
    }

    #[test]
    fn an_upgrade_reports_its_versions_and_other_jobs_are_not_emulated() {
        let st = state();
        let up = emulate(
            &st,
            "s",
            &job(
                "upgrade",
                &[
                    ("WORDPRESS_VERSION", "6.8.1"),
                    ("WOOCOMMERCE_VERSION", "9.9.3"),
                ],
            ),
        )
        .unwrap();
        assert!(up.ok);
        assert_eq!(
            last_json(&up.log, "URUMI-UPGRADE "),
            json!({"wordpress": "6.8.1", "woocommerce": "9.9.3"})
        );
        let unknown = emulate(
            &st,
            "s",
            &job("upgrade", &[("WOOCOMMERCE_VERSION", "9.9.3")]),
        )
        .unwrap();
        assert_eq!(
            last_json(&unknown.log, "URUMI-UPGRADE ")["wordpress"],
            "unknown"
        );
        let missing = emulate(&st, "s", &job("upgrade", &[])).unwrap();
        assert!(!missing.ok && missing.log.contains("WOOCOMMERCE_VERSION"));
        let no_id = emulate(&st, "s", &job("backup", &[])).unwrap();
        assert!(!no_id.ok && no_id.log.contains("BACKUP_ID"));
        assert_eq!(emulate(&st, "s", &job("setup", &[])), None);
        assert_eq!(emulate(&st, "s", &json!({"metadata": {"name": "x"}})), None);
    }
}
