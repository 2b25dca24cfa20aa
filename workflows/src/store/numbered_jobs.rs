//! Numbered Jobs: how a step runs a Job so that a crash never runs it twice and a failure
//! is never hidden. A step's Jobs form a family (a label selector and a name prefix):
//! `<prefix>1`, `<prefix>2`, … A step follows the family's newest Job it may adopt — the one
//! it started on an earlier poll, or one a crashed attempt started — and starts the next
//! number only when there is none, or a fresh attempt finds the newest failed (a failed Job
//! stays, with its log, for inspection). Used by the setup Job (`store.provision`), the
//! site-URL Job (`store.domains`), the backup and restore Jobs and the upgrade's update Job.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use urumi_engine::{StepError, StepOutcome};

use super::cluster::{self, create_if_absent};
use super::steps::POLL;

/// A step's Jobs: those `selector` lists whose names are `<prefix>N`.
pub struct Family<'a> {
    /// A label selector, e.g. `app.kubernetes.io/name=store-setup`.
    pub selector: &'a str,
    /// The name before the number, e.g. `store-setup-`.
    pub prefix: &'a str,
    /// What the Job does, in words (`setup`, `site-URL`, …), for messages.
    pub what: &'a str,
}

/// Where the followed Job stands.
pub enum Followed {
    /// Just started, or still running: poll again.
    Waiting(StepOutcome),
    /// It succeeded (its name).
    Succeeded(String),
    /// It failed (its name): the caller reads its log and says why.
    Failed(String),
}

/// N of a Job named `<prefix>N` (0 for any other name).
#[must_use]
pub fn number(prefix: &str, job: &Job) -> u32 {
    job.metadata
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix(prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn failed(j: &Job) -> bool {
    j.status.as_ref().and_then(|s| s.failed).unwrap_or(0) >= 1
}

/// The usual `adopt` of [`follow`]: a Job that has not failed (a fresh attempt after a failed
/// Job runs another).
#[must_use]
pub fn not_failed(j: &Job) -> bool {
    !failed(j)
}

fn succeeded(j: &Job) -> bool {
    j.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) >= 1
}

/// Follows the newest of `family`'s Jobs that `candidate` accepts: on a poll (`poll`: the
/// step started it on an earlier call) always; on a fresh attempt when `adopt` accepts it
/// (usually [`not_failed`]; a step whose failed Job is a verdict, not a reason to run
/// another, adopts it whatever its state). Otherwise starts `make(name)` as the family's next number (after
/// every Job of the family, candidate or not).
///
/// # Errors
/// The cluster's errors by their class.
pub async fn follow(
    jobs: &Api<Job>,
    family: &Family<'_>,
    poll: bool,
    candidate: impl Fn(&Job) -> bool,
    adopt: impl Fn(&Job) -> bool,
    make: impl FnOnce(&str) -> Job,
) -> Result<Followed, StepError> {
    let what = family.what;
    let listed = jobs
        .list(&ListParams::default().labels(family.selector))
        .await
        .map_err(|e| cluster::classify(&format!("list {what} Jobs"), &e))?
        .items;
    let newest = listed
        .iter()
        .filter(|j| candidate(j))
        .max_by_key(|j| number(family.prefix, j));
    let job = match newest {
        Some(j) if poll || adopt(j) => j,
        _ => {
            let next = listed
                .iter()
                .map(|j| number(family.prefix, j))
                .max()
                .unwrap_or(0)
                + 1;
            let name = format!("{}{next}", family.prefix);
            let mut job = make(&name);
            job.metadata.name = Some(name.clone());
            create_if_absent(jobs, &job).await?;
            return Ok(Followed::Waiting(StepOutcome::wait(
                POLL,
                format!("{what} Job {name} started"),
            )));
        }
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    Ok(if succeeded(job) {
        Followed::Succeeded(name)
    } else if failed(job) {
        Followed::Failed(name)
    } else {
        Followed::Waiting(StepOutcome::wait(
            POLL,
            running(what, job, Timestamp::now()),
        ))
    })
}

/// How long (seconds) a Job may have no pod before the wait says so.
const PODLESS_S: i64 = 60;

/// The wait message of a Job that has not ended: "running", or — when it has had no pod for
/// [`PODLESS_S`] — why that usually is, since the Job's own status does not say (the pod
/// creation's refusal is only an event of the Job).
fn running(what: &str, job: &Job, now: Timestamp) -> String {
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let active = job.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    let age = job
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| now.duration_since(t.0).as_secs());
    if active == 0 && age >= PODLESS_S {
        format!(
            "{what} Job {name} has had no pod for {age}s: the namespace's ResourceQuota may have no room for it (the store's own pods use it), or its LimitRange refuses it; the Job's events say which"
        )
    } else {
        format!("{what} Job {name} running")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(age_s: i64, active: Option<i32>, now: Timestamp) -> Job {
        let mut j = Job::default();
        j.metadata.name = Some("store-backup-x-1".into());
        let created = now - k8s_openapi::jiff::SignedDuration::from_secs(age_s);
        j.metadata.creation_timestamp = Some(Time(created));
        j.status = Some(JobStatus {
            active,
            ..JobStatus::default()
        });
        j
    }

    #[test]
    fn a_job_without_a_pod_for_a_minute_says_why_that_usually_is() {
        let now = Timestamp::now();
        let says = |age, active| running("backup", &job(age, active, now), now);
        assert_eq!(says(5, None), "backup Job store-backup-x-1 running");
        assert_eq!(says(600, Some(1)), "backup Job store-backup-x-1 running");
        let podless = says(61, None);
        assert!(
            podless.starts_with("backup Job store-backup-x-1 has had no pod for 61s")
                && podless.contains("ResourceQuota"),
            "{podless}"
        );
    }

    #[test]
    fn numbers_are_read_after_the_prefix() {
        let named = |n: &str| {
            let mut j = Job::default();
            j.metadata.name = Some(n.into());
            j
        };
        assert_eq!(number("store-setup-", &named("store-setup-12")), 12);
        assert_eq!(number("store-setup-", &named("store-siteurl-3")), 0);
        assert_eq!(number("store-setup-", &named("store-setup-x")), 0);
    }
}
