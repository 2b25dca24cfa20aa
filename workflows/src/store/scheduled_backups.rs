//! The step of `store.scheduled_backups@1` (see `urumi_store::scheduled_backups`): a
//! backup run for every ready store of the input's plan, in the bulk lane, each in its own
//! transaction (a refused store is skipped, not fatal). A re-run skips the stores this run
//! already started a backup for (their backups' `requested_by` is the run's actor), so a
//! crash mid-step never backs a store up twice for one slot.

use std::collections::BTreeSet;
use std::sync::Arc;

use urumi_engine::{Engine, Lane, ResultExt, StepContext, StepError, StepOutcome, Who};
use urumi_store::backups::{self, BackupReason};
use urumi_store::scheduled_backups::{
    ScheduledBackupsInput, ScheduledBackupsOutput, SkippedStore, StartedBackup, actor,
};
use urumi_store::service;

use super::steps::StoreDeps;

/// `start`: see the module docs.
pub(super) async fn start(
    deps: Arc<StoreDeps>,
    engine: Engine,
    sc: StepContext,
) -> Result<StepOutcome, StepError> {
    let input: ScheduledBackupsInput = sc.input_as()?;
    deps.settings
        .plan(Some(&input.plan))
        .map_err(StepError::fatal)?;
    let actor = actor(sc.run_id);
    let who = Who::new(&actor, Lane::Bulk, &actor);
    let mut out = ScheduledBackupsOutput {
        plan: input.plan.clone(),
        ..ScheduledBackupsOutput::default()
    };
    let earlier = backups::requested_by(&deps.pool, &actor)
        .await
        .retryable()?;
    let done: BTreeSet<_> = earlier.iter().map(|(store, _, _)| *store).collect();
    out.started.extend(
        earlier
            .iter()
            .map(|&(store_id, backup_id, run_id)| StartedBackup {
                store_id,
                backup_id,
                run_id,
            }),
    );
    for store in backups::ready_on_plan(&deps.pool, &input.plan)
        .await
        .retryable()?
    {
        if done.contains(&store) {
            continue;
        }
        let mut tx = deps.pool.begin().await.retryable()?;
        match service::backup_in(&mut tx, &engine, store, BackupReason::Scheduled, &who).await {
            Ok(r) => {
                tx.commit().await.retryable()?;
                out.started.push(StartedBackup {
                    store_id: store,
                    backup_id: r.backup_id,
                    run_id: r.requested.run_id,
                });
            }
            Err(service::Error::Database(e)) => return Err(e).retryable(),
            Err(e) => out.skipped.push(SkippedStore {
                store_id: store,
                why: e.to_string(),
            }),
        }
    }
    StepOutcome::done(out)
}
