//! [`RunService`]: the tower service an apalis worker calls with each [`ClaimedRun`]; it drives
//! the run's steps ([`super::runner`]) and frees the run's slot when the runner ends.
//!
//! The worker's layers wrap it (see [`super::build`]): apalis's `TraceLayer` opens the run's
//! span (run id, workflow, subject) and apalis's `CatchPanicLayer` turns a panic in the
//! runner itself into the task's error. A panic in a *step* never gets this far: it is one
//! failed attempt of that step (`runner::run_step`), caught by the same apalis layer around
//! the step call.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use apalis_core::task::Task;
use futures::FutureExt;
use futures::future::BoxFuture;
use tower::Service;

use super::Shared;
use super::queue::ClaimedRun;
use super::runner;

/// Drives one claimed run per call.
#[derive(Clone)]
pub struct RunService {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RunService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunService")
            .field("worker", &self.shared.id)
            .finish()
    }
}

impl RunService {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Service<Task<ClaimedRun>> for RunService {
    type Response = ();
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<(), Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Slots are counted by the queue: a task exists only once its slot is taken.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<ClaimedRun>) -> Self::Future {
        let shared = self.shared.clone();
        let ClaimedRun {
            claimed,
            permit,
            bulk_slot,
        } = task.args;
        async move {
            runner::drive(shared, claimed, permit).await;
            // The bulk slot is given back once the run has left this worker.
            drop(bulk_slot);
            Ok(())
        }
        .boxed()
    }
}
