//! The live stream: events arrive as server-sent events; resuming with `Last-Event-ID`
//! delivers every event after it, in commit order, even when ids committed out of order, when
//! transaction ids gain a digit, and while other databases of the server hold transactions.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::{TestApp, problem, spawn_app};
use crate::own_postgres::OwnPostgres;

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// Reads events from an open stream until `n` arrived or `wait` passed.
async fn read(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    n: usize,
    wait: Duration,
) -> Vec<Sse> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while out.len() < n {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.into();
                }
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v.into();
                }
                if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                out.push(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
        }
        if out.len() >= n {
            break;
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap()),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

async fn open(
    app: &TestApp,
    last: Option<&str>,
) -> (
    impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
    String,
) {
    let mut req = app.req(Method::GET, "/api/v1/events", &app.viewer);
    if let Some(l) = last {
        req = req.header("Last-Event-ID", l);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    (r.bytes_stream(), String::new())
}

async fn insert_event(conn: &mut sqlx::PgConnection, kind: &str) {
    sqlx::query("INSERT INTO urumi.events (kind, actor) VALUES ($1, 'test')")
        .bind(kind)
        .execute(conn)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn resuming_with_last_event_id_delivers_every_later_event_once(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.created("Before Shop").await;
    let (mut live, mut buf) = open(&app, None).await;
    for i in 0..4 {
        app.created(&format!("Stream Shop {i}")).await;
    }
    let total: i64 = app.count("events").await;
    let got = read(&mut live, &mut buf, 100, Duration::from_secs(3)).await;
    let created: Vec<&Sse> = got
        .iter()
        .filter(|e| e.event == "store.created" && e.data["detail"]["name"] != "Before Shop")
        .collect();
    assert_eq!(created.len(), 4, "{got:?}");
    assert!(got.iter().all(|e| e.data["cursor"] == e.id.as_str()));
    // In commit order, without repeats (the first store's events may be included: the
    // stream starts at the oldest transaction in flight on the cluster, never later).
    let mut seen = std::collections::HashSet::new();
    assert!(got.iter().all(|e| seen.insert(e.id.clone())));

    // Resume after the second event: every later event arrives, in the same order.
    let (mut resumed, mut buf2) = open(&app, Some(&got[1].id)).await;
    let again = read(
        &mut resumed,
        &mut buf2,
        got.len() - 2,
        Duration::from_secs(3),
    )
    .await;
    let ids = |v: &[Sse]| v.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&got[2..]));
    assert!(total >= got.len() as i64);

    // A malformed Last-Event-ID is a 400 problem.
    let r = app
        .req(Method::GET, "/api/v1/events", &app.viewer)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn an_event_that_commits_late_is_not_skipped(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let (mut live, mut buf) = open(&app, None).await;
    // T1 takes the lower id and stays open; T2 takes a higher id and commits first.
    let mut t1 = pool.begin().await.unwrap();
    insert_event(&mut t1, "test.first").await;
    let mut t2 = pool.begin().await.unwrap();
    insert_event(&mut t2, "test.second").await;
    t2.commit().await.unwrap();
    // A reader keyed on ids alone would send test.second now and later skip test.first.
    let test_events = |v: Vec<Sse>| {
        v.into_iter()
            .filter(|e| e.event.starts_with("test."))
            .collect::<Vec<_>>()
    };
    let early = test_events(read(&mut live, &mut buf, 100, Duration::from_millis(1500)).await);
    assert!(
        early.is_empty(),
        "sent before an older transaction ended: {early:?}"
    );
    t1.commit().await.unwrap();
    let got = test_events(read(&mut live, &mut buf, 100, Duration::from_secs(3)).await);
    let kinds: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["test.first", "test.second"]);
    // And a client resuming from before both gets both.
    let first_cursor = &got[0].id;
    let (mut resumed, mut buf2) = open(&app, Some(first_cursor)).await;
    let rest = test_events(read(&mut resumed, &mut buf2, 100, Duration::from_secs(2)).await);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].event, "test.second");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_stream_can_follow_one_store(pool: PgPool) {
    let app = spawn_app(pool).await;
    let a = app.created("Followed Shop").await["store"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .req(
            Method::GET,
            &format!("/api/v1/events?store_id={a}"),
            &app.viewer,
        )
        .send()
        .await
        .unwrap();
    let mut s = r.bytes_stream();
    let mut buf = String::new();
    app.created("Unfollowed Shop").await;
    let del = app
        .req(Method::DELETE, &format!("/api/v1/stores/{a}"), &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 202);
    let got = read(&mut s, &mut buf, 100, Duration::from_secs(3)).await;
    assert!(!got.is_empty());
    assert!(
        got.iter().all(|e| e.data["store_id"] == a.as_str()),
        "{got:?}"
    );
    assert!(got.iter().any(|e| e.event == "store.deleting"), "{got:?}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn open_streams_end_when_the_feed_stops_at_shutdown(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (mut s, _) = open(&app, None).await;
    // Idle: nothing arrives (keep-alives come every 15 s), the stream stays open.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), s.next())
            .await
            .is_err(),
        "an idle stream ended or sent data by itself"
    );
    app.feed.abort();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = s.next().await {
            chunk.unwrap();
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream was still open 5 s after the feed stopped"
    );
}

/// Events of kind `test.*` only.
fn test_events(v: Vec<Sse>) -> Vec<Sse> {
    v.into_iter()
        .filter(|e| e.event.starts_with("test."))
        .collect()
}

/// Reads until `n` events of kind `test.*` arrived or `wait` passed; returns those.
async fn read_tests(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    n: usize,
    wait: Duration,
) -> Vec<Sse> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < n && tokio::time::Instant::now() < deadline {
        let left = deadline - tokio::time::Instant::now();
        got.extend(test_events(
            read(stream, buf, 1, left.min(Duration::from_millis(500))).await,
        ));
    }
    got
}

/// `txid-id` of every event the table holds whose kind matches `like`, in commit order.
async fn table_order(pool: &PgPool, like: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT txid::text || '-' || id FROM urumi.events WHERE kind LIKE $1 ORDER BY txid, id",
    )
    .bind(like)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn cursors(v: &[Sse]) -> Vec<String> {
    v.iter().map(|e| e.id.clone()).collect()
}

/// A connection to another database of the same server with a transaction open that holds
/// a transaction id: it keeps the cluster-wide xmin back until it ends.
async fn old_transaction_elsewhere(pool: &PgPool) -> PgConnection {
    let opts = pool.connect_options().as_ref().clone().database("postgres");
    let mut conn = PgConnection::connect_with(&opts).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT pg_current_xact_id();")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

async fn end(mut conn: PgConnection) {
    sqlx::raw_sql("COMMIT").execute(&mut conn).await.unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_new_stream_starts_now_even_while_another_database_holds_an_old_transaction(
    pool: PgPool,
) {
    let app = spawn_app(pool.clone()).await;
    let other = old_transaction_elsewhere(&pool).await;
    insert_event(&mut pool.acquire().await.unwrap(), "test.before").await;
    let (mut live, mut buf) = open(&app, None).await;
    insert_event(&mut pool.acquire().await.unwrap(), "test.after").await;
    // While the old transaction is open nothing may be sent: it could still commit events.
    let early = read_tests(&mut live, &mut buf, 1, Duration::from_millis(1200)).await;
    assert!(
        early.is_empty(),
        "sent while older transactions were open: {early:?}"
    );
    end(other).await;
    let got = read_tests(&mut live, &mut buf, 1, Duration::from_secs(5)).await;
    // test.before committed before the stream opened: it is not "new", though its txid is
    // above the xmin the other database held back.
    let kinds: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["test.after"], "{got:?}");
    let more = read_tests(&mut live, &mut buf, 1, Duration::from_millis(1200)).await;
    assert!(more.is_empty(), "{more:?}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn two_hundred_concurrent_writers_arrive_once_each_in_commit_order(pool: PgPool) {
    let app = spawn_app(pool.clone()).await;
    let other = old_transaction_elsewhere(&pool).await;
    for _ in 0..5 {
        insert_event(&mut pool.acquire().await.unwrap(), "test.before").await;
    }
    let (mut live, mut buf) = open(&app, None).await;
    let writers: Vec<_> = (0..200u64)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin().await.unwrap();
                insert_event(&mut tx, &format!("test.w{i}")).await;
                // Commit in an order other than the ids' and the txids'.
                tokio::time::sleep(Duration::from_millis((i * 7) % 30)).await;
                tx.commit().await.unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    end(other).await;
    let got = read_tests(&mut live, &mut buf, 200, Duration::from_secs(20)).await;
    let more = read_tests(&mut live, &mut buf, 1, Duration::from_millis(1200)).await;
    assert!(more.is_empty(), "more than the 200: {more:?}");
    assert_eq!(cursors(&got), table_order(&pool, "test.w%").await);
}

/// The API on a migrated database of a Postgres cluster of the test's own.
async fn app_on_own_postgres() -> (OwnPostgres, PgPool, TestApp) {
    let pg = OwnPostgres::start();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&pg.url)
        .await
        .unwrap();
    urumi_migrations::MIGRATOR.run(&pool).await.unwrap();
    let app = spawn_app(pool.clone()).await;
    (pg, pool, app)
}

/// Burns transaction ids until the next one assigned is about `next`.
async fn burn_xids_to(pool: &PgPool, next: u64) {
    let now: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(pool)
        .await
        .unwrap();
    let n = next as i64 - now - 2;
    assert!(n > 0, "the cluster is already at txid {now}, past {next}");
    // `n` is an integer computed here, not input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DO $$ BEGIN FOR i IN 1..{n} LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
    )))
    .execute(pool)
    .await
    .unwrap();
}

/// Writes events whose txids cross `boundary`, one of them (the lowest txid) committed last.
async fn cross(pool: &PgPool, boundary: u64) {
    let mut old = pool.begin().await.unwrap();
    insert_event(&mut old, "test.old").await;
    for i in 0..10 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("test.x{i}")).await;
    }
    old.commit().await.unwrap();
    let (lo, hi): (i64, i64) = sqlx::query_as(
        "SELECT min(txid::text::bigint), max(txid::text::bigint) FROM urumi.events
         WHERE kind LIKE 'test.%' AND txid::text::bigint > $1 - 100",
    )
    .bind(boundary as i64)
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(
        lo < boundary as i64 && hi >= boundary as i64,
        "test set-up: the events' txids {lo}..={hi} do not cross {boundary}"
    );
}

#[tokio::test]
async fn the_stream_keeps_commit_order_when_txids_gain_a_digit() {
    // A cluster of our own: the test must put transaction ids just below 10,000 and 100,000.
    let (_pg, pool, app) = app_on_own_postgres().await;
    let (mut live, mut buf) = open(&app, None).await;
    for boundary in [10_000, 100_000] {
        burn_xids_to(&pool, boundary - 5).await;
        cross(&pool, boundary).await;
    }
    let expected = table_order(&pool, "test.%").await;
    assert_eq!(expected.len(), 22);
    // A live follower whose batches span 9,999 → 10,000 and 99,999 → 100,000.
    let got = read_tests(&mut live, &mut buf, 22, Duration::from_secs(10)).await;
    assert_eq!(cursors(&got), expected, "live follower");
    // A client resuming from an old cursor: everything after it, once, in order.
    let (mut resumed, mut buf2) = open(&app, Some(&expected[0])).await;
    let got = read_tests(&mut resumed, &mut buf2, 21, Duration::from_secs(10)).await;
    assert_eq!(cursors(&got), expected[1..], "resumed from {}", expected[0]);
    // A client resuming from the very start: the whole table, once, in order.
    let all = table_order(&pool, "%").await;
    let (mut from_zero, mut buf3) = open(&app, Some("0-0")).await;
    let got = read(
        &mut from_zero,
        &mut buf3,
        all.len(),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(cursors(&got), all, "resumed from 0-0");
}

#[tokio::test]
async fn a_live_stream_loses_nothing_when_the_server_hands_out_transaction_ids_again() {
    let (pg, pool, app) = app_on_own_postgres().await;
    let (mut live, mut buf) = open(&app, None).await;
    insert_event(&mut pool.acquire().await.unwrap(), "test.a").await;
    let a: i64 =
        sqlx::query_scalar("SELECT txid::text::bigint FROM urumi.events WHERE kind = 'test.a'")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Ids handed out to transactions that roll back: after a crash, Postgres may hand them out
    // again, since nothing made them durable.
    for _ in 0..5 {
        let mut tx = pool.begin().await.unwrap();
        insert_event(&mut tx, "test.rolled_back").await;
        tx.rollback().await.unwrap();
    }
    let got = read_tests(&mut live, &mut buf, 1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    // Let the reader page again with nothing new: a reader that moved its cursor to the
    // horizon (xmin) would now stand above the rolled-back ids.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    pg.restart_handing_out_ids_from(a as u64 + 1);
    insert_event(&mut pool.acquire().await.unwrap(), "test.b").await;
    let b: i64 =
        sqlx::query_scalar("SELECT txid::text::bigint FROM urumi.events WHERE kind = 'test.b'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        b <= a + 5,
        "test set-up: test.b got txid {b}, not a re-used one (a = {a})"
    );
    let got = read_tests(&mut live, &mut buf, 1, Duration::from_secs(15)).await;
    let kinds: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        ["test.b"],
        "the event after the restart reached the live reader"
    );
}
