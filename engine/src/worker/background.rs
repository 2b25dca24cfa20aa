//! A worker's background tasks: LISTEN for wake-ups, heartbeat its leases, sweep the queue,
//! prune what is past its retention.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tracing::{debug, info, warn};

use super::Shared;
use crate::db::{WAKE_CHANNEL, claim};

/// Wakes the claim loop on every NOTIFY; after a reconnect too, since notifications sent
/// while disconnected are lost. The claim loop's interval poll covers any gap.
pub(super) async fn listen(shared: Arc<Shared>) {
    loop {
        let mut listener = match PgListener::connect_with(&shared.pool).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "LISTEN connection failed; polling meanwhile");
                tokio::time::sleep(shared.options.poll_interval).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(WAKE_CHANNEL).await {
            warn!(error = %e, "LISTEN failed; polling meanwhile");
            tokio::time::sleep(shared.options.poll_interval).await;
            continue;
        }
        loop {
            match listener.try_recv().await {
                Ok(_) => shared.wake.notify_one(),
                Err(e) => {
                    warn!(error = %e, "LISTEN connection lost");
                    shared.wake.notify_one();
                    break;
                }
            }
        }
    }
}

/// Renews this worker's leases and heartbeat every third of a lease.
pub(super) async fn heartbeat(shared: Arc<Shared>) {
    let every = (shared.options.lease / 3).max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let held: Vec<_> = shared
            .held
            .lock()
            .expect("held lock")
            .iter()
            .map(|(r, t)| (*r, *t))
            .collect();
        match claim::heartbeat(&shared.pool, &shared.id, &held, shared.options.lease).await {
            Ok(taken) if !taken.is_empty() => {
                warn!(
                    ?taken,
                    "leases taken over by other workers (this worker missed its renewals)"
                );
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
    }
}

/// Requeues runs whose lease expired and fails runs no live worker can serve.
pub(super) async fn sweep(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.options.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let liveness = shared.options.lease * 2;
    loop {
        tick.tick().await;
        match claim::requeue_expired(&shared.pool, &shared.id).await {
            Ok(0) => {}
            Ok(n) => {
                info!(requeued = n, "took over runs whose lease expired");
                shared.metrics.leases_taken_over(n);
                shared.wake.notify_one();
            }
            Err(e) => warn!(error = %e, "sweep (expired leases) failed"),
        }
        match claim::fail_unserved(
            &shared.pool,
            &shared.id,
            shared.options.unserved_grace,
            liveness,
        )
        .await
        {
            Ok(failed) if !failed.is_empty() => {
                warn!(?failed, "failed runs that no live worker serves");
            }
            Ok(_) => debug!("sweep done"),
            Err(e) => warn!(error = %e, "sweep (unserved runs) failed"),
        }
    }
}

/// Prunes finished runs, old events and stopped workers every `retention.interval`
/// ([`crate::retention`]), then rolls the ended hours into the insights' rollups
/// ([`crate::rollup`]); every worker does, sharing the work through `SKIP LOCKED`.
pub(super) async fn prune(shared: Arc<Shared>, retention: crate::Retention) {
    let mut tick = tokio::time::interval(retention.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        match crate::retention::prune(&shared.pool, &retention).await {
            Ok(r) if r.rows() > 0 => {
                info!(
                    runs = r.runs,
                    steps = r.steps,
                    events = r.events,
                    workers = r.workers,
                    took_ms = started.elapsed().as_millis() as u64,
                    "pruned what is past its retention"
                );
                shared.metrics.pruned(&r);
            }
            Ok(_) => debug!("nothing to prune"),
            Err(e) => warn!(error = %e, "pruning failed; tried again next interval"),
        }
        // The step insights' hourly rollups ride the same loop: an hour is rolled once, by
        // whichever worker gets there first.
        match crate::rollup::roll(&shared.pool).await {
            Ok(r) if r.hours > 0 => debug!(hours = r.hours, rows = r.rows, "rolled insights"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "rolling insights failed; tried again next interval"),
        }
    }
}
