//! Group commit for step checkpoints: runners of one worker hand their "step done" writes to
//! the batcher, which writes whatever has queued up in one transaction
//! ([`checkpoint_batch`]) and answers each runner. With many runners this turns N commits
//! into one; with one runner it is a plain single write. A batch that fails is written
//! again one checkpoint at a time, so one bad row fails only its own run's checkpoint.
//!
//! ```text
//!  runner ─┐                         ┌─► tx { advance runs that go on; finish runs that end } ─► replies
//!  runner ─┼─► queue ─► drain ≤ max ─┤   (up to `IN_FLIGHT` batches at once)
//!  runner ─┘                         └─► …
//! ```

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;

use crate::db::checkpoint::{Advanced, Checkpoint, LeaseLost, checkpoint_batch};

/// The most checkpoints written in one transaction.
const MAX_BATCH: usize = 128;
/// Batches being written at once (overlaps one batch's commit with the next one's build).
const IN_FLIGHT: usize = 3;

/// Why a checkpoint was not written.
#[derive(Debug)]
pub(crate) enum BatchError {
    /// The database refused or failed it.
    Db(sqlx::Error),
    /// The batcher is gone (the worker is stopping or was torn down).
    Gone,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Db(e) => write!(f, "{e}"),
            BatchError::Gone => f.write_str("the worker's checkpoint batcher is gone"),
        }
    }
}

/// A runner's answer: the checkpoint's result, or why it was not written.
pub(crate) type Reply = Result<Result<Advanced, LeaseLost>, BatchError>;
type Request = (Checkpoint, oneshot::Sender<Reply>);

/// The runners' side of the batcher.
#[derive(Debug, Clone)]
pub(crate) struct Batcher(mpsc::UnboundedSender<Request>);

/// The batcher's side, consumed by [`run`].
pub(crate) struct Queue(mpsc::UnboundedReceiver<Request>);

pub(crate) fn channel() -> (Batcher, Queue) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Batcher(tx), Queue(rx))
}

impl Batcher {
    /// Queues `cp` and waits for its batch to commit.
    pub(crate) async fn checkpoint(&self, cp: Checkpoint) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.0.send((cp, tx)).map_err(|_| BatchError::Gone)?;
        rx.await.map_err(|_| BatchError::Gone)?
    }
}

/// Writes queued checkpoints in batches until the queue closes. Batches in flight are owned
/// here, so aborting this task (a simulated crash) aborts them too.
pub(crate) async fn run(pool: PgPool, mut queue: Queue) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut writing: JoinSet<()> = JoinSet::new();
    loop {
        let first = tokio::select! {
            req = queue.0.recv() => match req { Some(r) => r, None => break },
            Some(_) = writing.join_next(), if !writing.is_empty() => continue,
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.0.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        writing.spawn(async move {
            let (cps, replies): (Vec<Checkpoint>, Vec<oneshot::Sender<Reply>>) =
                batch.into_iter().unzip();
            match checkpoint_batch(&pool, &cps).await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Err(e) if cps.len() == 1 => {
                    let _ = replies.into_iter().next().map(|r| r.send(Err(BatchError::Db(e))));
                }
                Err(e) => {
                    // One bad checkpoint must not fail the others: write each on its own.
                    tracing::warn!(error = %e, checkpoints = cps.len(), "checkpoint batch failed; writing its checkpoints one by one");
                    for (cp, reply) in cps.iter().zip(replies) {
                        let one = checkpoint_batch(&pool, std::slice::from_ref(cp)).await;
                        let _ = reply.send(match one {
                            Ok(mut r) => Ok(r.pop().unwrap_or(Err(LeaseLost))),
                            Err(e) => Err(BatchError::Db(e)),
                        });
                    }
                }
            }
            drop(slot);
        });
    }
    while writing.join_next().await.is_some() {}
}
