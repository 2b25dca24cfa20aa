//! A [`Selector`]: which runs an operation acts on — run filters the engine applies, store
//! filters (`store_ids`, `plan`, `engine`) resolved to subjects through the store rows — and
//! the [`Preview`] a dry run answers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use urumi_engine::{Matched, RunSelector, RunStatus};
use urumi_store::preview::StorePlan;
use uuid::Uuid;

use crate::error::Error;
use crate::model::{Action, Spec};
use crate::plan::ClusterPlan;

/// What an operation's targets must match. Every field narrows; a selector that sets none
/// is refused unless `all` says "every run" on purpose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    pub status: Option<RunStatus>,
    /// A definition name, e.g. `store.provision`.
    pub definition: Option<String>,
    pub failed_step: Option<String>,
    pub error_contains: Option<String>,
    pub store_ids: Option<Vec<Uuid>>,
    pub plan: Option<String>,
    pub engine: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Match everything the other fields allow, even when none is set.
    #[serde(default)]
    pub all: bool,
}

impl Selector {
    /// True when no field narrows the match.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        let Selector {
            status,
            definition,
            failed_step,
            error_contains,
            store_ids,
            plan,
            engine,
            created_after,
            created_before,
            all: _,
        } = self;
        status.is_none()
            && definition.is_none()
            && failed_step.is_none()
            && error_contains.is_none()
            && store_ids.is_none()
            && plan.is_none()
            && engine.is_none()
            && created_after.is_none()
            && created_before.is_none()
    }

    fn by_store(&self) -> bool {
        self.store_ids.is_some() || self.plan.is_some() || self.engine.is_some()
    }

    /// The runs it matches, each its subject's newest, oldest first; at most `limit`.
    pub(crate) async fn matching(
        &self,
        engine: &urumi_engine::Engine,
        limit: i64,
    ) -> Result<Vec<Matched>, Error> {
        let subjects = if self.by_store() {
            let ids = urumi_store::db::matching_ids(
                engine.pool(),
                self.store_ids.as_deref(),
                self.plan.as_deref(),
                self.engine.as_deref(),
            )
            .await?;
            Some(ids.into_iter().map(urumi_store::subject::subject).collect())
        } else {
            None
        };
        let selector = RunSelector {
            status: self.status,
            definition: self.definition.clone(),
            failed_step: self.failed_step.clone(),
            error_contains: self.error_contains.clone(),
            created_after: self.created_after,
            created_before: self.created_before,
            subjects,
        };
        Ok(engine.select_runs(&selector, limit).await?)
    }
}

/// What a dry run answers: how many runs match and what would happen to the first ones.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub matched: usize,
    /// The first targets, in the order they would start.
    pub targets: Vec<PreviewTarget>,
    /// For a repair or delete: the cluster plan of the shown targets (see [`crate::plan`]).
    pub cluster_plan: Option<ClusterPlan>,
}

/// One target of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewTarget {
    pub run_id: Uuid,
    pub subject: String,
    pub definition: String,
    pub version: i32,
    pub status: RunStatus,
    pub failed_step: Option<String>,
    pub error: Option<String>,
    /// What the operation would do to it, in words; starts with "skip:" when it would not act.
    pub would: String,
    /// For a repair or delete whose cluster plan is ready: what it would write.
    pub plan: Option<StorePlan>,
}

/// What `spec` would do to `m`, as the dry run shows it. The same rules decide at the
/// target's turn (the engine's refusals), so "skip" here is a forecast, not a promise.
pub(crate) fn forecast(spec: &Spec, m: &Matched) -> String {
    let key = format!("{}@{}", m.definition, m.version);
    match spec.action {
        Action::Retry if m.status != RunStatus::Failed => {
            format!(
                "skip: the run is {}, only a failed run is retried",
                m.status
            )
        }
        Action::Retry => format!(
            "resume {key} at step {}",
            m.failed_step
                .as_deref()
                .unwrap_or("(its first unfinished step)")
        ),
        Action::Cancel if !m.status.is_active() => {
            format!("skip: the run has ended ({})", m.status)
        }
        Action::Cancel => format!("cancel the {} run of {key}", m.status),
        Action::Rerun if m.status.is_active() => {
            format!("skip: the run is {}, only an ended run is re-run", m.status)
        }
        Action::Rerun => match &spec.from_step {
            Some(step) => {
                format!("start a new run of {key} at step {step}, the steps before it carried over")
            }
            None => format!("start a new run of {key} from its first step"),
        },
        Action::Repair => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!("re-apply store {id}'s desired state (store.repair)"),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Delete => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!("delete store {id} and its namespace (store.delete)"),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Suspend => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!("suspend store {id} (store.suspend; skipped if not ready)"),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Backup => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!("back store {id} up (store.backup; skipped if not ready)"),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Resume => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!("resume store {id} (store.resume; skipped if not suspended)"),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Resize => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!(
                "move store {id} to plan {} (store.resize; skipped if already on it or its usage would not fit)",
                spec.plan.as_deref().unwrap_or("?")
            ),
            None => format!("skip: {} is not a store", m.subject),
        },
        Action::Upgrade => match urumi_store::subject::store_of(&m.subject) {
            Some(id) => format!(
                "upgrade store {id} onto {} current release (store.upgrade, rolled back on failure; skipped if it already runs it)",
                spec.channel.as_deref().map_or_else(
                    || "its own channel's".to_owned(),
                    |c| format!("channel {c}'s")
                )
            ),
            None => format!("skip: {} is not a store", m.subject),
        },
    }
}

/// The dry run: the matched count and the first `shown` targets with their forecasts.
pub(crate) async fn preview(
    engine: &urumi_engine::Engine,
    spec: &Spec,
    shown: usize,
) -> Result<Preview, Error> {
    let matched = spec
        .selector
        .matching(engine, crate::service::MAX_TARGETS as i64 + 1)
        .await?;
    if matched.len() > crate::service::MAX_TARGETS {
        return Err(Error::TooManyTargets {
            max: crate::service::MAX_TARGETS,
        });
    }
    Ok(Preview {
        matched: matched.len(),
        targets: matched
            .iter()
            .take(shown)
            .map(|m| PreviewTarget {
                run_id: m.id,
                subject: m.subject.clone(),
                definition: m.definition.clone(),
                version: m.version,
                status: m.status,
                failed_step: m.failed_step.clone(),
                error: m.error.clone(),
                would: forecast(spec, m),
                plan: None,
            })
            .collect(),
        cluster_plan: None,
    })
}
