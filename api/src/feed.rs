//! Wakes the event stream's readers: one `LISTEN urumi_events` connection per API process
//! bumps a counter on every notification, and a one-second tick bumps it too (events of a
//! transaction become readable only when older transactions have ended, which notifies
//! nobody). Readers re-query the log after each bump; see `routes::events`.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

/// Starts the listener task; the receiver changes whenever events may be new.
#[must_use]
pub fn spawn(pool: PgPool) -> watch::Receiver<u64> {
    spawn_stoppable(pool).0
}

/// [`spawn`], plus a handle that stops the task: aborting it closes the channel, which ends
/// every open event stream (so a graceful shutdown does not wait out idle SSE clients).
#[must_use]
pub fn spawn_stoppable(pool: PgPool) -> (watch::Receiver<u64>, tokio::task::AbortHandle) {
    let (tx, rx) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let mut listener = match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen("urumi_events").await {
                    Ok(()) => Some(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "event feed: LISTEN failed; polling");
                        None
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "event feed: no listener connection; polling");
                    None
                }
            };
            loop {
                if tx.is_closed() {
                    return;
                }
                match listener.as_mut() {
                    Some(l) => tokio::select! {
                        n = l.recv() => {
                            if let Err(e) = n {
                                tracing::warn!(error = %e, "event feed: listener lost; reconnecting");
                                break;
                            }
                        }
                        _ = tick.tick() => {}
                    },
                    None => {
                        tick.tick().await;
                        // Try to get a listener back every tick.
                        tx.send_modify(|n| *n = n.wrapping_add(1));
                        break;
                    }
                }
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    });
    (rx, task.abort_handle())
}
