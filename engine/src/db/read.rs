//! Read-only queries: a run with its steps, runs of a subject, pages of runs and events.

use std::collections::HashMap;

use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::model::{
    Event, LaneColumn, Run, RunHead, RunStatusColumn, StepRecord, StepStatusColumn,
};

/// The status and error of each of `runs` that exists.
pub(crate) async fn statuses(
    pool: &PgPool,
    runs: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, (crate::RunStatus, Option<String>)>> {
    let rows = sqlx::query!(
        r#"SELECT id, status AS "status: RunStatusColumn", error FROM urumi.runs WHERE id = ANY($1)"#,
        runs,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, (r.status.0, r.error)))
        .collect())
}

/// One run.
pub(crate) async fn run<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> sqlx::Result<Option<Run>> {
    sqlx::query_as!(
        Run,
        r#"SELECT id, definition, version, subject, input, output,
               status AS "status: RunStatusColumn", blocked_by, wake_at, lease_owner,
               lease_expires_at, cancel_requested_at, cancel_requested_by, error, rerun_of,
               carried_steps, lane AS "lane: LaneColumn", owner,
               created_by, created_at, started_at, finished_at, updated_at
           FROM urumi.runs WHERE id = $1"#,
        id,
    )
    .fetch_optional(exec)
    .await
}

/// The newest run (highest id) of each of `subjects` that has one, by subject: one step down
/// `runs_by_subject_id (subject, id DESC)` per subject, reading one row each however many
/// runs a subject has had (`DISTINCT ON (subject)` would read them all and sort).
pub(crate) async fn newest_runs<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    subjects: &[String],
) -> sqlx::Result<HashMap<String, RunHead>> {
    let rows = sqlx::query_as!(
        RunHead,
        r#"SELECT r.id, r.definition, r.version, r.subject, r.status AS "status: RunStatusColumn",
               r.error, r.rerun_of, r.created_by, r.created_at, r.started_at, r.finished_at
           FROM unnest($1::text[]) AS s(subject)
           CROSS JOIN LATERAL (
               SELECT id, definition, version, subject, status, error, rerun_of, created_by,
                      created_at, started_at, finished_at
               FROM urumi.runs WHERE subject = s.subject ORDER BY id DESC LIMIT 1
           ) r"#,
        subjects as _,
    )
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().map(|r| (r.subject.clone(), r)).collect())
}

/// A run's steps in order.
pub(crate) async fn steps<'e>(
    exec: impl sqlx::PgExecutor<'e>,
    run_id: Uuid,
) -> sqlx::Result<Vec<StepRecord>> {
    sqlx::query_as!(
        StepRecord,
        r#"SELECT run_id, name, position, status AS "status: StepStatusColumn", wait_kind,
               attempts, polls, wait_reason, transient_retries, interrupted, waited_ms, output,
               last_error, next_attempt_at, wait_started_at, started_at, finished_at, updated_at
           FROM urumi.steps WHERE run_id = $1 ORDER BY position"#,
        run_id,
    )
    .fetch_all(exec)
    .await
}

/// A run's events in order.
pub(crate) async fn events_for_run(pool: &PgPool, run_id: Uuid) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as!(
        Event,
        "SELECT id, run_id, subject, kind, step, actor, detail, created_at
         FROM urumi.events WHERE run_id = $1 ORDER BY id",
        run_id,
    )
    .fetch_all(pool)
    .await
}

/// The SQL of a page of runs: one condition per filter that is set, so that each
/// combination is planned for itself and a rare value uses the index that serves it
/// (`runs_by_status_id`, `runs_by_definition_id`, `runs_by_subject_id`; the primary key
/// otherwise) instead of walking the whole table newest first. Dynamic for that reason: one
/// statement with `($1 IS NULL OR status = $1)` has one plan for every combination.
/// Not a `query_as!` macro: the SQL depends on which filters are set.
pub(crate) fn runs_page_query(
    prefix: &str,
    f: &crate::listing::RunFilter,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(prefix);
    q.push("SELECT * FROM urumi.runs WHERE id < ");
    // No cursor: before the largest UUID, so `id <` always drives the index scan.
    q.push_bind(f.before.unwrap_or(Uuid::max()));
    if let Some(status) = f.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(definition) = f.definition.as_deref() {
        q.push(" AND definition = ")
            .push_bind(definition.to_owned());
    }
    if let Some(subject) = f.subject.as_deref() {
        q.push(" AND subject = ").push_bind(subject.to_owned());
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    q
}

/// Up to `limit` runs matching `f`, newest first.
pub(crate) async fn runs_page(
    pool: &PgPool,
    f: &crate::listing::RunFilter,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    runs_page_query("", f, limit)
        .build_query_as()
        .fetch_all(pool)
        .await
}

/// The SQL of a page of events: one condition per filter that is set (see
/// [`runs_page_query`]); `events_by_subject`, `events_by_run`, `events_by_actor`,
/// `events_by_kind`, or the primary key. Not a `query_as!` macro: the SQL depends on which
/// filters are set.
pub(crate) fn events_page_query(
    prefix: &str,
    f: &crate::listing::EventFilter,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(prefix);
    q.push(
        "SELECT id, run_id, subject, kind, step, actor, detail, created_at FROM urumi.events WHERE id < ",
    );
    // No cursor: below i64::MAX, so `id <` always drives the index scan.
    q.push_bind(f.before.unwrap_or(i64::MAX));
    if let Some(subject) = f.subject.as_deref() {
        q.push(" AND subject = ").push_bind(subject.to_owned());
    }
    if let Some(run_id) = f.run_id {
        q.push(" AND run_id = ").push_bind(run_id);
    }
    if let Some(actor) = f.actor.as_deref() {
        q.push(" AND actor = ").push_bind(actor.to_owned());
    }
    if let Some(kind) = f.kind.as_deref() {
        q.push(" AND kind = ").push_bind(kind.to_owned());
    }
    // events_by_actor and events_by_kind leave step progress out (it is never rare; see the
    // migration `fewer_writes_per_step`): an actor's entries are its actions, and a kind that
    // is not step progress is found through its index. Step progress by kind walks the
    // primary key, where it is everywhere.
    let step_kind = f.kind.as_deref().is_some_and(|k| k.starts_with("step."));
    if (f.actor.is_some() || f.kind.is_some()) && !step_kind {
        q.push(" AND kind NOT LIKE 'step.%'");
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    q
}

/// Up to `limit` events matching `f`, newest first.
pub(crate) async fn events_page(
    pool: &PgPool,
    f: &crate::listing::EventFilter,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    events_page_query("", f, limit)
        .build_query_as()
        .fetch_all(pool)
        .await
}

#[cfg(test)]
mod tests {
    use sqlx::PgPool;
    use uuid::Uuid;

    use crate::listing::{EventFilter, RunFilter};
    use crate::model::RunStatus;

    /// The plan of a page query for its actual values (a custom plan: what the API's
    /// connections run, see `api::db`).
    async fn plan(pool: &PgPool, mut q: sqlx::QueryBuilder<sqlx::Postgres>) -> String {
        let rows: Vec<(String,)> = q.build_query_as().fetch_all(pool).await.unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>().join("\n")
    }

    const RUN: &str = "01a22d00-0000-7000-8000-000000000001";

    #[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
    async fn a_rare_filter_value_is_found_through_its_index_not_a_walk_of_the_table(pool: PgPool) {
        // Many common rows, and a few with the values a viewer filters on.
        sqlx::raw_sql(
            "INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by)
             SELECT gen_random_uuid(), CASE WHEN i % 2000 = 0 THEN 'rare.def' ELSE 'common' END, 1,
                    CASE WHEN i % 2000 = 1 THEN 'rare-subject' ELSE 's' || (i % 50) END, '{}',
                    CASE WHEN i % 2000 = 2 THEN 'failed' ELSE 'succeeded' END, 't'
             FROM generate_series(1, 20000) i;
             INSERT INTO urumi.runs (id, definition, version, subject, input, status, created_by)
             VALUES ('01a22d00-0000-7000-8000-000000000001', 'common', 1, 'one', '{}', 'succeeded', 't');
             INSERT INTO urumi.events (run_id, subject, kind, actor)
             SELECT CASE WHEN i % 5000 = 3 THEN '01a22d00-0000-7000-8000-000000000001'::uuid END,
                    CASE WHEN i % 5000 = 0 THEN 'rare-subject' ELSE 's' || (i % 50) END,
                    CASE WHEN i % 5000 = 1 THEN 'rare.kind' ELSE 'common' END,
                    CASE WHEN i % 5000 = 2 THEN 'rare-actor' ELSE 'worker' END
             FROM generate_series(1, 50000) i;
             ANALYZE urumi.runs; ANALYZE urumi.events;",
        )
        .execute(&pool)
        .await
        .unwrap();
        let runs = [
            (
                RunFilter {
                    status: Some(RunStatus::Failed),
                    ..Default::default()
                },
                "runs_by_status_id",
            ),
            (
                RunFilter {
                    definition: Some("rare.def".into()),
                    ..Default::default()
                },
                "runs_by_definition_id",
            ),
            (
                RunFilter {
                    subject: Some("rare-subject".into()),
                    ..Default::default()
                },
                "runs_by_subject_id",
            ),
        ];
        for (f, index) in runs {
            let plan = plan(
                &pool,
                super::runs_page_query("EXPLAIN (COSTS OFF) ", &f, 51),
            )
            .await;
            assert!(plan.contains(index), "{f:?}: {plan}");
        }
        let events = [
            (
                EventFilter {
                    subject: Some("rare-subject".into()),
                    ..Default::default()
                },
                "events_by_subject",
            ),
            (
                EventFilter {
                    run_id: Some(RUN.parse::<Uuid>().unwrap()),
                    ..Default::default()
                },
                "events_by_run",
            ),
            (
                EventFilter {
                    actor: Some("rare-actor".into()),
                    ..Default::default()
                },
                "events_by_actor",
            ),
            (
                EventFilter {
                    kind: Some("rare.kind".into()),
                    ..Default::default()
                },
                "events_by_kind",
            ),
        ];
        for (f, index) in events {
            let plan = plan(
                &pool,
                super::events_page_query("EXPLAIN (COSTS OFF) ", &f, 51),
            )
            .await;
            assert!(plan.contains(index), "{f:?}: {plan}");
        }
    }
}
