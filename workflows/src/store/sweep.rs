//! `store.sweep@1`'s one step, `sweep`: the fleet drift sweep (see `urumi_store::sweep`).
//! It pages through the ready stores (`urumi.stores`, status `ready` only: a store being
//! provisioned, deleted or suspended is not judged against its desired state), previews a
//! repair of each — the very plan of `store.preview@1` ([`super::preview::plan`]), every write
//! a `dryRun=All` apply, [`CONCURRENCY`] stores at a time — and lists each store whose plan
//! would create or update an object. When the run's input says `repair`, it starts a
//! `store.repair` run per drifted store in the bulk lane (actor and owner
//! [`SWEEP_ACTOR`]), so customers' runs keep their share of the workers.
//!
//! # Guarantees
//! - Without `repair` the sweep writes nothing to the cluster (every apply is a dry run) and
//!   nothing to the stores; with it, it only starts repair runs — the repairs write.
//! - One store's failure (its namespace gone, a refused apply, a timeout) is listed in
//!   `failed` and the sweep goes on; only a database error while paging fails the step.
//!
//! # Idempotency
//! The step may run again after a crash or a retry: it re-reads the fleet and previews anew.
//! A repair it started before is still active (or done, and the store no longer drifts): a
//! second start for that store is refused by the engine (`Conflict`: one active run per
//! store), which the sweep records — the active run's id when it is a repair — and skips,
//! so no store is repaired twice by one sweep.

use std::sync::Arc;

use futures::{StreamExt, stream};
use urumi_engine::{Engine, Lane, ResultExt, StepContext, StepError, StepOutcome, Who};
use urumi_store::db::{self, Store};
use urumi_store::definitions::{REPAIR, StoreInput};
use urumi_store::preview::{Change, PlannedAction};
use urumi_store::service;
use urumi_store::status::StoreStatus;
use urumi_store::sweep::{DriftedStore, FailedStore, SWEEP_ACTOR, SweepInput, SweepOutput};
use uuid::Uuid;

use super::engines::Engines;
use super::steps::{Ctx, StoreDeps};

/// Ready stores read per page.
const PAGE: i64 = 200;
/// Stores previewed at once.
pub const CONCURRENCY: usize = 8;

/// What one store's preview found.
enum Found {
    Clean,
    Drifted(DriftedStore),
    Failed(FailedStore),
}

/// The `sweep` step.
///
/// # Errors
/// Fatal without a cluster or with a bad input; database errors while paging or starting a
/// repair are retryable.
pub(super) async fn sweep(
    deps: Arc<StoreDeps>,
    engines: Engines,
    starter: Engine,
    sc: StepContext,
) -> Result<StepOutcome, StepError> {
    let input: SweepInput = sc.input_as()?;
    if deps.client.is_none() {
        return Err(StepError::fatal("this process has no cluster configured"));
    }
    let mut out = SweepOutput {
        repair: input.repair,
        ..SweepOutput::default()
    };
    let mut before: Option<Uuid> = None;
    loop {
        let page = db::page(&deps.pool, Some(StoreStatus::Ready), before, PAGE)
            .await
            .retryable()?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        out.checked += page.len();
        let found: Vec<Found> = stream::iter(page)
            .map(|store| check(&deps, engines, store))
            .buffered(CONCURRENCY)
            .collect()
            .await;
        for f in found {
            match f {
                Found::Clean => {}
                Found::Drifted(mut d) => {
                    if input.repair {
                        start_repair(&starter, &mut d).await?;
                    }
                    out.drifted.push(d);
                }
                Found::Failed(f) => out.failed.push(f),
            }
        }
        if !full {
            break;
        }
    }
    tracing::info!(
        checked = out.checked,
        drifted = out.drifted.len(),
        failed = out.failed.len(),
        repair = input.repair,
        "fleet drift sweep"
    );
    StepOutcome::done(out)
}

/// One store's repair preview, judged: drifted (the objects a repair would create or
/// update), clean, or failed (why).
async fn check(deps: &Arc<StoreDeps>, engines: Engines, store: Store) -> Found {
    let (id, slug) = (store.id, store.slug.clone());
    let domains = match super::db::domains(&deps.pool, id).await {
        Ok(d) => d,
        Err(e) => {
            return Found::Failed(FailedStore {
                store_id: id,
                error: format!("its domains could not be read: {e}"),
            });
        }
    };
    let make = || {
        Ctx::from_input(
            deps.clone(),
            engines,
            StoreInput::of(&store, domains.clone()),
        )
    };
    let plan = match super::preview::plan(make, id, PlannedAction::Repair).await {
        Ok(p) => p,
        Err(e) => {
            return Found::Failed(FailedStore {
                store_id: id,
                error: e.message,
            });
        }
    };
    if let Some(error) = plan.error {
        return Found::Failed(FailedStore {
            store_id: id,
            error,
        });
    }
    let objects: Vec<String> = plan
        .objects
        .iter()
        .filter(|o| matches!(o.change, Change::Create | Change::Update))
        .map(|o| format!("{}/{}", o.kind, o.name))
        .collect();
    if objects.is_empty() {
        return Found::Clean;
    }
    Found::Drifted(DriftedStore {
        store_id: id,
        slug,
        objects,
        repair_run_id: None,
        note: None,
    })
}

/// Starts a `store.repair` run for the drifted store `d` in the bulk lane and records it;
/// a store with an active run already gets a note instead (and the run's id when that run
/// is a repair).
///
/// # Errors
/// Database errors, retryable.
async fn start_repair(starter: &Engine, d: &mut DriftedStore) -> Result<(), StepError> {
    let who = Who::new(SWEEP_ACTOR, Lane::Bulk, SWEEP_ACTOR);
    let mut tx = starter.pool().begin().await.retryable()?;
    match service::repair_in(&mut tx, starter, d.store_id, &who).await {
        Ok(requested) => {
            tx.commit().await.retryable()?;
            d.repair_run_id = Some(requested.run_id);
        }
        Err(service::Error::Engine(urumi_engine::Error::Conflict { active_run, .. })) => {
            drop(tx);
            let definition = starter
                .run(active_run)
                .await
                .map(|r| r.run.definition)
                .unwrap_or_default();
            if definition == REPAIR {
                d.repair_run_id = Some(active_run);
                d.note = Some(format!("already being repaired by run {active_run}"));
            } else {
                d.note = Some(format!(
                    "not repaired: the store has an active run {active_run} ({definition})"
                ));
            }
        }
        Err(
            service::Error::Database(e) | service::Error::Engine(urumi_engine::Error::Database(e)),
        ) => return Err(StepError::retryable(e.to_string())),
        Err(e) => d.note = Some(format!("not repaired: {e}")),
    }
    Ok(())
}
