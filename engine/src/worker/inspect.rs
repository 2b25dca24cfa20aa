//! The apalis extension traits that fit the engine's tables, on [`RunQueue`]:
//! [`ListWorkers`] (the rows of `urumi.workers`) and [`WaitForCompletion`] (a run's end, read
//! from its row: a task id is a run id). `TaskSink` and `FetchById` do not fit and are not
//! implemented; ARCHITECTURE.md ("apalis") gives their signatures and why.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use apalis_core::backend::{ListWorkers, RunningWorker, TaskResult, WaitForCompletion};
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::queue::{QueueError, RunQueue};
use crate::db::read;
use crate::model::{Run, RunStatus};

/// How often [`WaitForCompletion::wait_for`] reads the runs it waits for.
const WAIT_POLL: Duration = Duration::from_millis(200);

// The queue holds its claim in flight, which is not `Sync`: each future below owns a clone of
// the pool instead of borrowing the queue.
impl ListWorkers for RunQueue {
    /// Workers that have not stopped.
    fn list_workers(&self) -> impl Future<Output = Result<Vec<RunningWorker>, QueueError>> + Send {
        workers(self.pool().clone(), true)
    }

    /// Every worker row still kept (stopped ones until retention prunes them).
    fn list_all_workers(
        &self,
    ) -> impl Future<Output = Result<Vec<RunningWorker>, QueueError>> + Send {
        workers(self.pool().clone(), false)
    }
}

async fn workers(pool: PgPool, live_only: bool) -> Result<Vec<RunningWorker>, QueueError> {
    let rows = sqlx::query!(
        r#"SELECT id, definitions, extract(epoch FROM started_at)::int8 AS "started!",
                  extract(epoch FROM heartbeat_at)::int8 AS "heartbeat!"
           FROM urumi.workers WHERE NOT $1 OR stopped_at IS NULL ORDER BY started_at"#,
        live_only,
    )
    .fetch_all(&pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RunningWorker {
            id: r.id,
            // The definition versions it serves are its queue.
            queue: r.definitions.join(","),
            backend: "urumi.runs".into(),
            started_at: u64::try_from(r.started).unwrap_or(0),
            last_heartbeat: u64::try_from(r.heartbeat).unwrap_or(0),
            layers: "TraceLayer, CatchPanicLayer".into(),
        })
        .collect())
}

/// A task id names a run: its UUID (`TaskId::Uuid`, or the UUID's text).
fn run_id(id: &TaskId) -> Option<Uuid> {
    id.as_uuid()
        .or_else(|| id.as_string().and_then(|s| s.parse().ok()))
}

/// What a run's row says as an apalis task result.
fn result_of(run: &Run) -> TaskResult<Value> {
    let status = match run.status() {
        RunStatus::Queued => Status::Queued,
        RunStatus::Waiting => Status::Pending,
        RunStatus::Running => Status::Running,
        RunStatus::Succeeded => Status::Done,
        RunStatus::Failed => Status::Failed,
        RunStatus::Cancelled => Status::Killed,
    };
    let result = match run.status() {
        RunStatus::Succeeded => Ok(run.output.clone().unwrap_or(Value::Null)),
        other => Err(run
            .error
            .clone()
            .unwrap_or_else(|| other.as_str().to_owned())),
    };
    TaskResult {
        task_id: TaskId::from_uuid(run.id),
        attempt: 0,
        status,
        result,
    }
}

fn ended(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
    )
}

impl WaitForCompletion<Value> for RunQueue {
    type ResultStream = BoxStream<'static, Result<TaskResult<Value>, QueueError>>;

    /// Yields each run's result once it has ended (succeeded: its output; failed or cancelled:
    /// its error), in the order they end. A task id that names no run is yielded at once as
    /// failed with "no such run".
    fn wait_for(&mut self, task_ids: impl IntoIterator<Item = TaskId>) -> Self::ResultStream {
        let pool = self.pool().clone();
        let ids: Vec<TaskId> = task_ids.into_iter().collect();
        futures::stream::unfold(
            (
                pool,
                ids.into_iter().collect::<Vec<_>>(),
                BTreeSet::<usize>::new(),
                Vec::new(),
            ),
            |(pool, ids, mut done, mut ready)| async move {
                loop {
                    if let Some(r) = ready.pop() {
                        return Some((Ok(r), (pool, ids, done, ready)));
                    }
                    if done.len() == ids.len() {
                        return None;
                    }
                    for (i, id) in ids.iter().enumerate() {
                        if done.contains(&i) {
                            continue;
                        }
                        let run = match run_id(id) {
                            Some(run) => read::run(&pool, run).await,
                            None => Ok(None),
                        };
                        match run {
                            Err(e) => return Some((Err(e.into()), (pool, ids, done, ready))),
                            Ok(None) => {
                                done.insert(i);
                                ready.push(TaskResult {
                                    task_id: id.clone(),
                                    attempt: 0,
                                    status: Status::Failed,
                                    result: Err("no such run".into()),
                                });
                            }
                            Ok(Some(run)) if ended(run.status()) => {
                                done.insert(i);
                                ready.push(result_of(&run));
                            }
                            Ok(Some(_)) => {}
                        }
                    }
                    if ready.is_empty() {
                        tokio::time::sleep(WAIT_POLL).await;
                    }
                }
            },
        )
        .boxed()
    }

    /// The runs' results as they are now (a run still active says so in `status`).
    fn check_status(
        &mut self,
        task_ids: impl IntoIterator<Item = TaskId> + Send,
    ) -> impl Future<Output = Result<Vec<TaskResult<Value>>, QueueError>> + Send {
        let pool = self.pool().clone();
        let runs: Vec<Uuid> = task_ids.into_iter().filter_map(|id| run_id(&id)).collect();
        async move {
            let mut out = Vec::new();
            for run in runs {
                if let Some(run) = read::run(&pool, run).await? {
                    out.push(result_of(&run));
                }
            }
            Ok(out)
        }
    }
}
