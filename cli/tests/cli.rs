//! End to end: the real `urumictl` binary against the API served in-process (on port 0) over a
//! fresh database (`#[sqlx::test]`), with an admin and a viewer token. There is no worker, so
//! stores stay `provisioning` until deleted (`store.deleting` comes from a database trigger);
//! the reruns and bulk-operations tests fail provisioning runs with SQL (`failed_stores`) and
//! move operations to the states a worker would with SQL, while pause, resume, approve and
//! cancel go through the API, which changes the state itself; `stores usage` reads an
//! observation recorded with `urumi_store::usage::record`, as a worker's `store.usage` run would;
//! `stores drift` reads a `store.sweep` run started with the engine and finished with SQL.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use serde_json::Value;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;
use urumi_api::auth::{self, Role};

/// A served API and two tokens for it.
struct Api {
    url: String,
    admin: String,
    viewer: String,
}

async fn serve(pool: PgPool) -> Api {
    serve_with(pool, |_| {}).await
}

/// [`serve`] with the API's settings changed by `tune` first.
async fn serve_with(pool: PgPool, tune: impl FnOnce(&mut urumi_api::settings::Settings)) -> Api {
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let changed = urumi_api::feed::spawn(pool.clone());
    let mut settings = urumi_api::settings::Settings::defaults();
    tune(&mut settings);
    let state = urumi_api::AppState::new(pool.clone(), settings, changed).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(urumi_api::app(Arc::new(state))));
    let admin = auth::mint(&pool, "ops-admin", Role::Admin, "test")
        .await
        .unwrap();
    let viewer = auth::mint(&pool, "ops-viewer", Role::Viewer, "test")
        .await
        .unwrap();
    Api {
        url: format!("http://{addr}"),
        admin: admin.token,
        viewer: viewer.token,
    }
}

/// What a finished `urumictl` printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "urumictl failed: {self:#?}");
        self
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }
}

fn urumictl(url: &str, token: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_urumictl"));
    cmd.env_remove("URUMI_URL")
        .env("URUMI_TOKEN", token)
        .args(["--url", url])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn ctl(url: &str, token: &str, args: &[&str]) -> Out {
    let out = tokio::time::timeout(Duration::from_secs(60), urumictl(url, token, args).output())
        .await
        .expect("urumictl finished within 60s")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The id on the line of `out` that starts with `key`.
fn field(out: &Out, key: &str) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with(' ')))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key:?} line: {out:#?}"))
        .to_owned()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_created_store_shows_in_list_show_runs_and_audit(pool: PgPool) {
    let api = serve(pool).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());

    let created = ctl(
        url,
        admin,
        &["stores", "create", "Corner Shop", "--idempotency-key", "k1"],
    )
    .await
    .ok();
    let store = field(&created, "store");
    let run = field(&created, "run");
    assert!(created.stdout.contains("provisioning"), "{created:#?}");
    // The same key and body answer the first result.
    let again = ctl(
        url,
        admin,
        &["stores", "create", "Corner Shop", "--idempotency-key", "k1"],
    )
    .await
    .ok();
    assert_eq!(
        (field(&again, "store"), field(&again, "run")),
        (store.clone(), run.clone())
    );

    let list = ctl(url, admin, &["stores", "list"]).await.ok();
    let header = list.stdout.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATUS"),
        "{list:#?}"
    );
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&store))
        .expect("the store is listed");
    assert!(
        row.contains("Corner Shop") && row.contains("store.provision queued"),
        "{row}"
    );
    let all = ctl(
        url,
        admin,
        &[
            "--json",
            "stores",
            "list",
            "--all",
            "--status",
            "provisioning",
        ],
    )
    .await
    .ok()
    .json();
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    assert_eq!(all["items"][0]["id"], store.as_str());

    let show = ctl(url, admin, &["stores", "show", &store]).await.ok();
    for expected in ["corner-shop", "woocommerce", "ops-admin", run.as_str()] {
        assert!(show.stdout.contains(expected), "{expected} in {show:#?}");
    }

    let runs = ctl(url, admin, &["stores", "runs", &store]).await.ok();
    let run_row = runs
        .stdout
        .lines()
        .find(|l| l.starts_with(&run))
        .expect("the run is listed");
    assert!(
        run_row.contains("store.provision") && run_row.contains("queued"),
        "{run_row}"
    );
    let runs_json = ctl(url, admin, &["--json", "stores", "runs", &store, "--all"])
        .await
        .ok()
        .json();
    assert_eq!(
        runs_json["items"].as_array().unwrap().len(),
        1,
        "{runs_json}"
    );
    assert_eq!(runs_json["items"][0]["id"], run.as_str());
    assert_eq!(runs_json["next_cursor"], serde_json::Value::Null);
    let listed = ctl(
        url,
        admin,
        &[
            "--json",
            "runs",
            "list",
            "--store",
            &store,
            "--kind",
            "store.provision",
        ],
    )
    .await
    .ok()
    .json();
    assert_eq!(listed["items"][0]["id"], run.as_str());
    let detail = ctl(url, admin, &["runs", "show", &run]).await.ok();
    assert!(
        detail.stdout.contains("ATTEMPTS") && detail.stdout.contains("LAST ERROR"),
        "{detail:#?}"
    );
    let steps = ctl(url, admin, &["--json", "runs", "show", &run])
        .await
        .ok()
        .json();
    assert!(
        !steps["steps"].as_array().unwrap().is_empty(),
        "a provision run has steps: {steps}"
    );

    let audit = ctl(
        url,
        admin,
        &["audit", "--store", &store, "--kind", "store.created"],
    )
    .await
    .ok();
    let entry = audit.stdout.lines().nth(1).expect("one audit entry");
    assert!(
        entry.contains("store.created") && entry.contains("ops-admin"),
        "{audit:#?}"
    );
    let by_actor = ctl(
        url,
        admin,
        &["--json", "audit", "--actor", "ops-admin", "--limit", "1"],
    )
    .await
    .ok()
    .json();
    assert_eq!(by_actor["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_actor["items"][0]["actor"], "ops-admin");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn refusals_print_the_problem_and_exit_1_usage_errors_exit_2(pool: PgPool) {
    let api = serve(pool).await;
    let url = api.url.as_str();

    let denied = ctl(url, &api.viewer, &["stores", "create", "viewer-shop"]).await;
    assert_eq!(denied.code, 1, "{denied:#?}");
    assert!(
        denied
            .stderr
            .starts_with("error: 403 Forbidden: this needs the admin role"),
        "{denied:#?}"
    );
    // With --json the problem document itself is printed.
    let denied = ctl(
        url,
        &api.viewer,
        &["--json", "stores", "create", "viewer-shop"],
    )
    .await;
    assert_eq!(
        (denied.code, denied.json()["status"].as_u64()),
        (1, Some(403))
    );

    let missing = ctl(
        url,
        &api.admin,
        &["stores", "show", "0190f000-0000-7000-8000-000000000000"],
    )
    .await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .starts_with("error: 404 Not Found: store 0190f000"),
        "{missing:#?}"
    );

    let bad_cursor = ctl(
        url,
        &api.admin,
        &["events", "--last-event-id", "not-a-cursor"],
    )
    .await;
    assert_eq!(bad_cursor.code, 1);
    assert!(
        bad_cursor
            .stderr
            .starts_with("error: 400 Bad Request: malformed Last-Event-ID"),
        "{bad_cursor:#?}"
    );

    let invalid = ctl(url, &api.admin, &["stores", "create", "x"]).await;
    assert_eq!(invalid.code, 1);
    assert!(
        invalid
            .stderr
            .starts_with("error: 422 Unprocessable Entity:"),
        "{invalid:#?}"
    );
    assert!(
        invalid.stderr.contains("\n  /name: "),
        "field errors are listed: {invalid:#?}"
    );

    let anonymous = ctl(url, "", &["stores", "list"]).await;
    assert_eq!(anonymous.code, 1);
    assert!(
        anonymous.stderr.starts_with("error: 401 Unauthorized:"),
        "{anonymous:#?}"
    );

    // Ids are UUIDs in the document, so a malformed one never leaves the client.
    let bad_id = ctl(url, &api.admin, &["stores", "show", "not-a-uuid"]).await;
    assert_eq!(bad_id.code, 2, "{bad_id:#?}");
    assert!(
        bad_id.stderr.contains("invalid value 'not-a-uuid'"),
        "{bad_id:#?}"
    );
    let bad_status = ctl(url, &api.admin, &["runs", "list", "--status", "exploded"]).await;
    assert_eq!(bad_status.code, 2);
    assert!(
        bad_status
            .stderr
            .contains("possible values: queued, running"),
        "{bad_status:#?}"
    );
    let bad_name = ctl(
        url,
        &api.admin,
        &["tokens", "create", "no spaces", "--role", "viewer"],
    )
    .await;
    assert_eq!(
        bad_name.code, 2,
        "the spec's pattern is checked client-side: {bad_name:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn events_until_exits_0_when_the_deletion_is_seen(pool: PgPool) {
    let api = serve(pool).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let created = ctl(url, admin, &["stores", "create", "doomed-shop"])
        .await
        .ok();
    let store = field(&created, "store");

    let mut tail = urumictl(
        url,
        admin,
        &[
            "events",
            "--store",
            &store,
            "--until",
            "store.deleting",
            "--timeout",
            "20",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait until the stream is open: events after that point are delivered.
    let mut stderr = BufReader::new(tail.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(15), stderr.next_line())
        .await
        .expect("the stream opened within 15s")
        .unwrap()
        .unwrap_or_default();
    assert!(first.starts_with("streaming events from"), "{first}");

    let deleted = ctl(url, admin, &["stores", "delete", &store]).await.ok();
    assert!(deleted.stdout.contains("store.delete"), "{deleted:#?}");

    let status = tokio::time::timeout(Duration::from_secs(30), tail.wait())
        .await
        .expect("events exited")
        .unwrap();
    let mut stdout = String::new();
    tail.stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    assert!(status.success(), "events exited with {status}: {stdout}");
    let last = stdout.lines().last().expect("the event was printed");
    let cols: Vec<&str> = last.split(' ').collect();
    assert_eq!(cols.len(), 6, "cursor kind store run step actor: {last}");
    assert_eq!(
        (cols[1], cols[2], cols[5]),
        ("store.deleting", store.as_str(), "system")
    );

    // Replaying from the start sees the whole history; --fail-on ends it with 1.
    let replay = ctl(
        url,
        admin,
        &[
            "events",
            "--store",
            &store,
            "--last-event-id",
            "0-0",
            "--fail-on",
            "store.deleting",
            "--timeout",
            "20",
        ],
    )
    .await;
    assert_eq!(replay.code, 1, "{replay:#?}");
    let kinds: Vec<&str> = replay
        .stdout
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .collect();
    assert!(kinds.contains(&"store.created"), "{replay:#?}");
    assert_eq!(kinds.last(), Some(&"store.deleting"), "{replay:#?}");
    assert!(replay.stderr.contains("is store.deleting"), "{replay:#?}");

    let quiet = ctl(
        url,
        admin,
        &[
            "events",
            "--store",
            &store,
            "--until",
            "store.ready",
            "--timeout",
            "1",
        ],
    )
    .await;
    assert_eq!(quiet.code, 1);
    assert!(
        quiet
            .stderr
            .contains("timed out after 1s without an event of kind store.ready"),
        "{quiet:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn tokens_are_minted_once_listed_and_revoked(pool: PgPool) {
    let api = serve(pool).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());

    let minted = ctl(
        url,
        admin,
        &["tokens", "create", "dash-board", "--role", "viewer"],
    )
    .await
    .ok();
    let token = minted.stdout.trim().to_owned();
    assert!(
        token.starts_with("urumi_") && !token.contains('\n'),
        "only the token on stdout: {minted:#?}"
    );
    assert!(minted.stderr.contains("shown only now"), "{minted:#?}");
    ctl(url, &token, &["stores", "list"]).await.ok();
    let me = ctl(url, &token, &["tokens", "current"]).await.ok();
    assert!(
        me.stdout.contains("dash-board") && me.stdout.trim_end().ends_with("viewer"),
        "{me:#?}"
    );

    let list = ctl(url, admin, &["tokens", "list"]).await.ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.contains("dash-board"))
        .expect("listed");
    assert!(
        row.contains("viewer") && row.contains("ops-admin") && row.ends_with('-'),
        "{row}"
    );
    assert!(!list.stdout.contains(&token), "never the secret");
    let id = row.split_whitespace().next().unwrap();

    let revoked = ctl(url, admin, &["tokens", "revoke", id]).await.ok();
    assert!(
        revoked
            .stdout
            .starts_with(&format!("revoked {id} (dash-board")),
        "{revoked:#?}"
    );
    let json = ctl(url, admin, &["--json", "tokens", "list"])
        .await
        .ok()
        .json();
    let item = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(item["revoked_by"], "ops-admin");

    let refused = ctl(url, &token, &["stores", "list"]).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.starts_with("error: 401 Unauthorized"),
        "{refused:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn plans_are_listed_with_the_default_marked(pool: PgPool) {
    let api = serve(pool).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let text = ctl(url, admin, &["plans"]).await.ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "a header and the one default plan: {text:#?}"
    );
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DEFAULT"),
        "{text:#?}"
    );
    let starter: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&starter[..3], ["starter", "yes", "10"], "{text:#?}");
    let json = ctl(url, admin, &["--json", "plans"]).await.ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["items"][0]["name"], "starter");
    assert_eq!(v["items"][0]["default"], true);
    assert_eq!(v["items"][0]["db_storage"], "5Gi");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn stores_usage_prints_not_observed_yet_then_the_quota_table(pool: PgPool) {
    use urumi_store::usage::{ResourceUsage, record};
    let api = serve(pool.clone()).await;
    let (url, viewer) = (api.url.as_str(), api.viewer.as_str());
    let created = ctl(url, api.admin.as_str(), &["stores", "create", "Quota Shop"])
        .await
        .ok();
    let store = field(&created, "store");

    let before = ctl(url, viewer, &["stores", "usage", &store]).await.ok();
    assert_eq!(
        before.stdout,
        "not observed yet (the worker reads quotas on its `[usage] cron`)\n"
    );

    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:15:00Z")
        .unwrap()
        .to_utc();
    let id = store.parse().unwrap();
    let resources = vec![
        ResourceUsage::new("requests.cpu", "500m", "2"),
        ResourceUsage::new("requests.memory", "1900Mi", "2Gi"),
        ResourceUsage::new("pods", "6", "6"),
        ResourceUsage::new("services.nodeports", "0", "0"),
    ];
    record(&pool, &[(id, resources)], at).await.unwrap();

    let after = ctl(url, viewer, &["stores", "usage", &store]).await.ok();
    assert_eq!(
        after.stdout.lines().collect::<Vec<_>>(),
        [
            "RESOURCE            USED    HARD  %",
            "requests.cpu        500m    2     25%",
            "requests.memory     1900Mi  2Gi   93%",
            "pods                6       6     100%",
            "services.nodeports  0       0     -",
            "observed 2026-11-30 10:15:00",
        ],
        "{after:#?}"
    );

    let json = ctl(url, viewer, &["--json", "stores", "usage", &store])
        .await
        .ok()
        .json();
    assert_eq!(json["store_id"], store.as_str());
    assert_eq!(json["resources"][0]["name"], "requests.cpu");
    assert_eq!(json["resources"][0]["used"], "500m");
    assert_eq!(json["resources"][0]["fraction"], 0.25);
    assert!(
        json["observed_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-30T10:15:00")
    );

    let unknown = ctl(
        url,
        viewer,
        &["stores", "usage", "00000000-0000-4000-8000-000000000000"],
    )
    .await;
    assert_eq!(unknown.code, 1, "{unknown:#?}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn stores_drift_prints_the_newest_finished_sweeps_drifted_stores(pool: PgPool) {
    use urumi_store::sweep::{DriftedStore, SWEEP, SWEEP_SUBJECT, SweepOutput};
    let api = serve(pool.clone()).await;
    let (url, viewer) = (api.url.as_str(), api.viewer.as_str());
    let before = ctl(url, viewer, &["stores", "drift"]).await.ok();
    assert_eq!(
        before.stdout,
        "no drift sweep has finished yet (the worker sweeps on its `[sweep] cron`)\n"
    );

    let engine = urumi_engine::Engine::new(pool.clone(), urumi_store::registry().unwrap());
    let (store, repair) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let mut ran = Vec::new();
    for checked in [5, 7] {
        let run = engine
            .start_run(urumi_engine::NewRun::new(
                SWEEP,
                SWEEP_SUBJECT,
                serde_json::json!({ "repair": true }),
            ))
            .await
            .unwrap();
        let output = SweepOutput {
            repair: true,
            checked,
            drifted: vec![DriftedStore {
                store_id: store,
                slug: "drift-shop".into(),
                objects: vec!["NetworkPolicy/allow-dns".into()],
                repair_run_id: Some(repair),
                note: None,
            }],
            failed: vec![],
        };
        sqlx::query(
            "UPDATE urumi.runs SET status = 'succeeded', finished_at = '2026-12-01T10:00:00Z',
                 output = $2
             WHERE id = $1",
        )
        .bind(run.run_id)
        .bind(serde_json::to_value(&output).unwrap())
        .execute(&pool)
        .await
        .unwrap();
        ran.push(run.run_id);
    }

    let after = ctl(url, viewer, &["stores", "drift"]).await.ok();
    assert_eq!(
        after.stdout.lines().map(str::trim_end).collect::<Vec<_>>(),
        [
            format!(
                "sweep {}  (finished 2026-12-01 10:00:00, repair on)",
                ran[1]
            ),
            "7 ready stores checked: 1 drifted, 0 failed".into(),
            String::new(),
            format!(
                "STORE{}SLUG        REPAIR RUN{}OBJECTS",
                " ".repeat(33),
                " ".repeat(28)
            ),
            format!("{store}  drift-shop  {repair}  NetworkPolicy/allow-dns"),
        ],
        "the newest sweep: {after:#?}"
    );
    let json = ctl(url, viewer, &["--json", "stores", "drift"])
        .await
        .ok()
        .json();
    assert_eq!(json["checked"], 7);
    assert_eq!(json["drifted"][0]["repair_run_id"], repair.to_string());
}

/// Creates a store per name through `urumictl` and fails each one's provisioning run at its
/// first step, as a worker without a cluster would (there is no worker here). Returns the
/// (store, run) ids in creation order.
async fn failed_stores(api: &Api, pool: &PgPool, names: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let created = ctl(&api.url, &api.admin, &["stores", "create", name])
            .await
            .ok();
        let (store, run) = (field(&created, "store"), field(&created, "run"));
        sqlx::query(
            "UPDATE urumi.steps SET status = 'failed', attempts = 1, started_at = now(),
                 finished_at = now(), last_error = 'no cluster configured'
             WHERE run_id = $1::uuid AND name = 'namespace'",
        )
        .bind(&run)
        .execute(pool)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE urumi.runs SET status = 'failed', finished_at = now(),
                 error = 'step namespace: no cluster configured'
             WHERE id = $1::uuid",
        )
        .bind(&run)
        .execute(pool)
        .await
        .unwrap();
        out.push((store, run));
    }
    out
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// The rows of a table `urumictl` printed (the header line dropped).
fn rows(out: &Out) -> Vec<&str> {
    out.stdout.lines().skip(1).collect()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn runs_rerun_starts_a_new_run_and_shows_the_422_problem_for_an_unknown_step(pool: PgPool) {
    let api = serve(pool.clone()).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let failed = failed_stores(&api, &pool, &["rerun-shop"]).await;
    let run = failed[0].1.as_str();
    let runs_before = count(&pool, "SELECT count(*) FROM urumi.runs").await;

    let unknown = ctl(url, admin, &["runs", "rerun", run, "--from-step", "nope"]).await;
    assert_eq!(unknown.code, 1, "{unknown:#?}");
    assert!(
        unknown
            .stderr
            .starts_with("error: 422 Unprocessable Entity:"),
        "{unknown:#?}"
    );
    assert!(
        unknown.stderr.contains("\"nope\"") && unknown.stderr.contains("\n  /from_step: "),
        "the step and the field are named: {unknown:#?}"
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.runs").await,
        runs_before,
        "a refused rerun starts nothing"
    );

    let rerun = ctl(
        url,
        admin,
        &["runs", "rerun", run, "--from-step", "namespace"],
    )
    .await
    .ok();
    let new_run = field(&rerun, "id");
    assert_ne!(new_run, run);
    assert_eq!(field(&rerun, "rerun_of"), run, "{rerun:#?}");
    assert_eq!(field(&rerun, "status"), "queued", "{rerun:#?}");
    assert!(
        rerun.stdout.contains("LAST ERROR"),
        "the steps are listed: {rerun:#?}"
    );
    let shown = ctl(url, admin, &["--json", "runs", "show", &new_run])
        .await
        .ok()
        .json();
    assert_eq!(shown["rerun_of"], run);
    assert_eq!(shown["created_by"], "ops-admin");

    // The old run is no longer its store's newest: rerunning it again is a conflict.
    let stale = ctl(url, admin, &["runs", "rerun", run]).await;
    assert_eq!(stale.code, 1, "{stale:#?}");
    assert!(
        stale.stderr.starts_with("error: 409 Conflict:"),
        "{stale:#?}"
    );
    // Viewers may not.
    let denied = ctl(url, &api.viewer, &["runs", "rerun", &new_run]).await;
    assert!(
        denied.code == 1 && denied.stderr.starts_with("error: 403 Forbidden:"),
        "{denied:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn ops_create_dry_run_prints_the_matched_count_and_starts_nothing(pool: PgPool) {
    let api = serve(pool.clone()).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let failed = failed_stores(&api, &pool, &["dry-one", "dry-two"]).await;
    // A third store whose provisioning is still queued: not failed.
    let queued = ctl(url, admin, &["stores", "create", "dry-three"])
        .await
        .ok();
    let queued_run = field(&queued, "run");
    let runs_before = count(&pool, "SELECT count(*) FROM urumi.runs").await;

    let dry = ctl(
        url,
        admin,
        &[
            "ops",
            "create",
            "--action",
            "retry",
            "--status",
            "failed",
            "--kind",
            "store.provision",
            "--dry-run",
        ],
    )
    .await
    .ok();
    assert_eq!(field(&dry, "matched"), "2", "{dry:#?}");
    let table: Vec<&str> = dry
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("RUN"))
        .collect();
    assert!(
        table[0].contains("FAILED STEP") && table[0].contains("WOULD"),
        "{dry:#?}"
    );
    assert_eq!(table.len(), 3, "a header and the two failed runs: {dry:#?}");
    for (store, run) in &failed {
        let row = table
            .iter()
            .find(|l| l.starts_with(run.as_str()))
            .unwrap_or_else(|| panic!("{run} previewed: {dry:#?}"));
        assert!(
            row.contains(store.as_str())
                && row.contains("failed")
                && row.contains("namespace")
                && row.contains("resume store.provision@1 at step namespace"),
            "{row}"
        );
    }
    assert!(
        dry.stderr.contains("dry run: nothing was started"),
        "{dry:#?}"
    );

    // A wider selector previews the queued run too, and says it would be skipped.
    let wide = ctl(
        url,
        admin,
        &[
            "--json",
            "ops",
            "create",
            "--action",
            "retry",
            "--kind",
            "store.provision",
            "--dry-run",
        ],
    )
    .await
    .ok()
    .json();
    assert_eq!(wide["preview"]["matched"], 3, "{wide}");
    assert!(wide.get("operation").is_none(), "{wide}");
    let skipped = wide["preview"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["run_id"] == queued_run.as_str())
        .expect("the queued run is previewed");
    assert!(
        skipped["would"].as_str().unwrap().starts_with("skip:"),
        "{skipped}"
    );

    // Nothing was started: no operation, no run, the failed runs still failed.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.operations").await,
        0
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.runs").await,
        runs_before
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM urumi.runs WHERE status = 'failed'"
        )
        .await,
        2
    );
    let list = ctl(url, admin, &["ops", "list"]).await.ok();
    assert!(
        list.stdout.starts_with("ID") && rows(&list).is_empty(),
        "{list:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_repair_dry_run_without_a_worker_prints_its_cluster_plan_pending_with_the_run(
    pool: PgPool,
) {
    let api = serve_with(pool.clone(), |s| s.api.plan_preview_wait_ms = 200).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let created = ctl(url, admin, &["stores", "create", "plan-shop"])
        .await
        .ok();
    let store = field(&created, "store");
    let args = [
        "ops",
        "create",
        "--action",
        "repair",
        "--store",
        &store,
        "--dry-run",
    ];

    let dry = ctl(url, admin, &args).await.ok();
    let plan_run: String =
        sqlx::query_scalar("SELECT id::text FROM urumi.runs WHERE definition = 'store.preview'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let plan: Vec<&str> = dry
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("cluster plan:"))
        .collect();
    assert_eq!(
        plan,
        [format!(
            "cluster plan: pending: no worker finished it in time; run {plan_run} will hold it (urumictl runs show {plan_run})"
        )],
        "{dry:#?}"
    );
    assert!(
        dry.stderr.contains("dry run: nothing was started"),
        "{dry:#?}"
    );
    let shown = ctl(url, admin, &["--json", "runs", "show", &plan_run])
        .await
        .ok()
        .json();
    assert_eq!(shown["kind"], "store.preview", "{shown}");

    // --json prints the API's answer as it is.
    let json_args: Vec<&str> = std::iter::once("--json").chain(args).collect();
    let raw = ctl(url, admin, &json_args).await.ok().json();
    assert_eq!(raw["preview"]["cluster_plan"]["state"], "pending", "{raw}");
    assert!(
        raw["preview"]["cluster_plan"]["run_id"].is_string(),
        "{raw}"
    );
    assert!(raw.get("operation").is_none(), "{raw}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.operations").await,
        0
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn ops_create_refuses_an_empty_selector_without_all_with_the_apis_problem(pool: PgPool) {
    let api = serve(pool.clone()).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    failed_stores(&api, &pool, &["empty-sel"]).await;

    let refused = ctl(url, admin, &["ops", "create", "--action", "retry"]).await;
    assert_eq!(refused.code, 1, "{refused:#?}");
    assert!(
        refused
            .stderr
            .starts_with("error: 422 Unprocessable Entity: an empty selector matches every run"),
        "{refused:#?}"
    );
    assert!(
        refused.stderr.contains("\n  /selector: "),
        "the field is named: {refused:#?}"
    );
    // With --json the problem document is printed.
    let doc = ctl(
        url,
        admin,
        &["--json", "ops", "create", "--action", "retry"],
    )
    .await;
    assert_eq!(doc.code, 1);
    assert_eq!(doc.json()["status"], 422);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM urumi.operations").await,
        0
    );

    // --all means it.
    let all = ctl(
        url,
        admin,
        &["ops", "create", "--action", "retry", "--all", "--dry-run"],
    )
    .await
    .ok();
    assert_eq!(field(&all, "matched"), "1", "{all:#?}");

    // A resize names its plan (--to-plan; --plan filters); its dry run says where each store
    // would go.
    let no_plan = ctl(
        url,
        admin,
        &["ops", "create", "--action", "resize", "--all"],
    )
    .await;
    assert_eq!(no_plan.code, 1, "{no_plan:#?}");
    assert!(
        no_plan
            .stderr
            .contains("a resize names the plan to move to")
            && no_plan.stderr.contains("\n  /plan: "),
        "{no_plan:#?}"
    );
    let resize = ctl(
        url,
        admin,
        &[
            "--json",
            "ops",
            "create",
            "--action",
            "resize",
            "--to-plan",
            "starter",
            "--all",
            "--dry-run",
        ],
    )
    .await
    .ok();
    let would = resize.json()["preview"]["targets"][0]["would"].clone();
    assert!(
        would.as_str().unwrap().contains("to plan starter"),
        "{would}"
    );

    // A rerun from a step needs a kind; delete needs admin; a selector matching nothing
    // creates nothing.
    let no_kind = ctl(
        url,
        admin,
        &[
            "ops",
            "create",
            "--action",
            "rerun",
            "--status",
            "failed",
            "--from-step",
            "namespace",
        ],
    )
    .await;
    assert!(
        no_kind.code == 1
            && no_kind
                .stderr
                .starts_with("error: 422 Unprocessable Entity:"),
        "{no_kind:#?}"
    );
    let operator = auth::mint(&pool, "ops-operator", Role::Operator, "test")
        .await
        .unwrap()
        .token;
    let delete = ctl(
        url,
        &operator,
        &[
            "ops",
            "create",
            "--action",
            "delete",
            "--status",
            "failed",
            "--dry-run",
        ],
    )
    .await;
    assert!(
        delete.code == 1 && delete.stderr.starts_with("error: 403 Forbidden:"),
        "{delete:#?}"
    );
    let nothing = ctl(
        url,
        admin,
        &[
            "ops",
            "create",
            "--action",
            "retry",
            "--status",
            "succeeded",
        ],
    )
    .await;
    assert!(
        nothing.code == 1 && nothing.stderr.contains("the selector matches no run"),
        "{nothing:#?}"
    );
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn ops_create_show_targets_pause_resume_cancel_round_trip(pool: PgPool) {
    let api = serve(pool.clone()).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    let failed = failed_stores(&api, &pool, &["trip-one", "trip-two"]).await;

    let created = ctl(
        url,
        admin,
        &[
            "ops",
            "create",
            "--action",
            "retry",
            "--status",
            "failed",
            "--store",
            &failed[0].0,
            "--store",
            &failed[1].0,
            "--max-concurrency",
            "1",
            "--canary-count",
            "1",
            "--canary-then",
            "pause",
            "--failure-budget-count",
            "1",
        ],
    )
    .await
    .ok();
    let id = field(&created, "id");
    assert_eq!(field(&created, "action"), "retry");
    assert_eq!(field(&created, "state"), "running", "{created:#?}");
    assert_eq!(field(&created, "matched"), "2");
    assert!(
        created.stderr.contains(&format!("urumictl ops watch {id}")),
        "{created:#?}"
    );
    // The operation's parent run exists; the targets were not touched yet (no worker).
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM urumi.runs WHERE definition = 'operation'"
        )
        .await,
        1
    );

    let show = ctl(url, admin, &["ops", "show", &id]).await.ok();
    assert_eq!(field(&show, "state"), "running");
    assert_eq!(field(&show, "reason"), "-");
    assert_eq!(field(&show, "pending"), "2", "{show:#?}");
    assert_eq!(field(&show, "succeeded"), "0");
    assert_eq!(field(&show, "concurrency"), "1");
    assert_eq!(field(&show, "max_failures"), "1");
    assert!(show.stdout.contains("first 1 then pause"), "{show:#?}");
    assert!(
        show.stdout.contains("status=failed") && show.stdout.contains(&failed[1].0),
        "the selector is shown: {show:#?}"
    );
    let json = ctl(url, admin, &["--json", "ops", "show", &id])
        .await
        .ok()
        .json();
    assert_eq!(json["progress"]["matched"], 2);
    assert_eq!(json["canary"]["size"], 1);

    let list = ctl(url, admin, &["ops", "list"]).await.ok();
    let row = rows(&list)
        .into_iter()
        .find(|l| l.starts_with(&id))
        .expect("listed");
    assert!(
        row.contains("retry") && row.contains("running") && row.contains("0/2"),
        "{row}"
    );

    // Targets: both runs, pending, in order; a page at a time.
    let targets = ctl(url, admin, &["ops", "targets", &id]).await.ok();
    let target_rows = rows(&targets);
    assert_eq!(target_rows.len(), 2, "{targets:#?}");
    for (i, (store, run)) in failed.iter().enumerate() {
        let cols: Vec<&str> = target_rows[i].split_whitespace().collect();
        assert_eq!(
            &cols[..4],
            [
                i.to_string().as_str(),
                run.as_str(),
                store.as_str(),
                "pending"
            ],
            "{targets:#?}"
        );
    }
    let first = ctl(url, admin, &["ops", "targets", &id, "--limit", "1"])
        .await
        .ok();
    assert_eq!(rows(&first).len(), 1);
    assert!(rows(&first)[0].starts_with('0'), "{first:#?}");
    let cursor = first
        .stderr
        .split("--cursor ")
        .nth(1)
        .and_then(|rest| rest.split([',', ' ']).next())
        .unwrap_or_else(|| panic!("a next-page hint: {first:#?}"))
        .to_owned();
    let second = ctl(
        url,
        admin,
        &["--json", "ops", "targets", &id, "--cursor", &cursor],
    )
    .await
    .ok()
    .json();
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["items"][0]["run_id"], failed[1].1.as_str());
    let none = ctl(url, admin, &["ops", "targets", &id, "--state", "skipped"])
        .await
        .ok();
    assert!(rows(&none).is_empty(), "{none:#?}");

    // Pause, resume (not by a viewer), approve only when awaiting approval, cancel.
    let paused = ctl(url, admin, &["ops", "pause", &id]).await.ok();
    assert_eq!(field(&paused, "state"), "paused", "{paused:#?}");
    assert!(paused.stdout.contains("paused by ops-admin"), "{paused:#?}");
    let viewer = ctl(url, &api.viewer, &["ops", "resume", &id]).await;
    assert!(
        viewer.code == 1 && viewer.stderr.starts_with("error: 403 Forbidden:"),
        "{viewer:#?}"
    );
    let resumed = ctl(url, admin, &["ops", "resume", &id]).await.ok();
    assert_eq!(field(&resumed, "state"), "running", "{resumed:#?}");
    let approve = ctl(url, admin, &["ops", "approve", &id]).await;
    assert_eq!(approve.code, 1, "{approve:#?}");
    assert!(
        approve.stderr.starts_with("error: 409 Conflict:")
            && approve
                .stderr
                .contains("only an operation awaiting approval"),
        "{approve:#?}"
    );
    let cancelled = ctl(url, admin, &["ops", "cancel", &id]).await.ok();
    assert_eq!(field(&cancelled, "state"), "cancelled", "{cancelled:#?}");
    assert_eq!(field(&cancelled, "skipped"), "2", "{cancelled:#?}");
    assert_eq!(field(&cancelled, "pending"), "0");
    let skipped = ctl(url, admin, &["ops", "targets", &id, "--state", "skipped"])
        .await
        .ok();
    assert_eq!(rows(&skipped).len(), 2, "{skipped:#?}");
    assert!(
        rows(&skipped)
            .iter()
            .all(|r| r.contains("operation cancelled by ops-admin")),
        "{skipped:#?}"
    );
    let again = ctl(url, admin, &["ops", "pause", &id]).await;
    assert!(
        again.code == 1 && again.stderr.starts_with("error: 409 Conflict:"),
        "{again:#?}"
    );
    // Steering is audited under the operator's name.
    let audit = ctl(
        url,
        admin,
        &["--json", "audit", "--actor", "ops-admin", "--limit", "50"],
    )
    .await
    .ok()
    .json();
    let mut kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .filter(|k| k.starts_with("operation."))
        .collect();
    kinds.reverse();
    assert_eq!(
        kinds,
        [
            "operation.created",
            "operation.paused",
            "operation.resumed",
            "operation.cancelled"
        ],
        "{audit}"
    );

    // Watching an operation that was cancelled ends at once, with exit code 4.
    let watched = ctl(url, admin, &["ops", "watch", &id]).await;
    assert_eq!(watched.code, 4, "{watched:#?}");
    assert!(
        watched
            .stdout
            .contains("cancelled  2/2 done: 0 succeeded, 0 failed, 2 skipped"),
        "{watched:#?}"
    );
    assert!(
        watched
            .stderr
            .contains(&format!("error: operation {id} was cancelled")),
        "{watched:#?}"
    );
    let missing = ctl(
        url,
        admin,
        &["ops", "watch", "0190f000-0000-7000-8000-000000000000"],
    )
    .await;
    assert!(
        missing.code == 1 && missing.stderr.starts_with("error: 404 Not Found:"),
        "{missing:#?}"
    );
}

/// Reads `lines` until one contains `want`; panics after 20s or at the end of the output.
async fn line_with(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    want: &str,
) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("the output ended without {want:?}"));
            if line.contains(want) {
                return line;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no line with {want:?} within 20s"))
}

async fn set_state(pool: &PgPool, id: &str, state: &str, reason: &str) {
    sqlx::query(
        "UPDATE urumi.operations SET state = $2, reason = $3, updated_at = now(),
             finished_at = CASE WHEN $2 IN ('succeeded', 'stopped', 'cancelled') THEN now() END
         WHERE id = $1::uuid",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn ops_watch_waits_through_approval_and_exits_by_the_final_state(pool: PgPool) {
    let api = serve(pool.clone()).await;
    let (url, admin) = (api.url.as_str(), api.admin.as_str());
    failed_stores(&api, &pool, &["watch-one", "watch-two"]).await;
    let created = ctl(
        url,
        admin,
        &[
            "--json", "ops", "create", "--action", "retry", "--status", "failed",
        ],
    )
    .await
    .ok()
    .json();
    let id = created["operation"]["id"].as_str().unwrap().to_owned();

    // Not a terminal: one plain line per change.
    let mut watch = urumictl(url, admin, &["ops", "watch", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = line_with(&mut lines, "running").await;
    assert!(
        first.contains("running  0/2 done: 0 succeeded, 0 failed, 0 skipped, 0 running, 2 pending"),
        "{first}"
    );
    // Awaiting approval is shown, with what to do, and the watch goes on.
    set_state(&pool, &id, "awaiting_approval", "the canary succeeded").await;
    let waiting = line_with(&mut lines, "awaiting_approval").await;
    assert!(
        waiting.contains("AWAITING APPROVAL")
            && waiting.contains(&format!("urumictl ops approve {id}")),
        "{waiting}"
    );
    let shown = ctl(url, admin, &["ops", "show", &id]).await.ok();
    assert!(shown.stdout.contains("approve the rest"), "{shown:#?}");
    let approved = ctl(url, admin, &["ops", "approve", &id]).await.ok();
    assert_eq!(field(&approved, "state"), "running");
    // Running again; the API's reason names who approved it.
    let again = line_with(&mut lines, "running").await;
    assert!(
        again.contains("0/2 done") && again.contains("approved by ops-admin"),
        "{again}"
    );
    // The work is done (a worker would have done it): exit 0.
    sqlx::query(
        "UPDATE urumi.operation_targets SET state = 'succeeded' WHERE operation_id = $1::uuid",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    set_state(&pool, &id, "succeeded", "every target was acted on").await;
    let done = line_with(&mut lines, "succeeded").await;
    assert!(done.contains("2/2 done: 2 succeeded"), "{done}");
    let status = tokio::time::timeout(Duration::from_secs(20), watch.wait())
        .await
        .expect("watch exited")
        .unwrap();
    assert_eq!(status.code(), Some(0), "succeeded exits 0");

    // `create --watch` (JSON: one document per change) exits 3 when the operation stops.
    let mut create = urumictl(
        url,
        admin,
        &[
            "--json", "ops", "create", "--action", "retry", "--status", "failed", "--watch",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(create.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&line_with(&mut lines, "\"running\"").await).unwrap();
    let second = first["id"].as_str().unwrap().to_owned();
    assert_ne!(second, id);
    assert_eq!(first["progress"]["matched"], 2);
    set_state(&pool, &second, "stopped", "the failure budget was exceeded").await;
    let stopped: Value = serde_json::from_str(&line_with(&mut lines, "\"stopped\"").await).unwrap();
    assert_eq!(stopped["reason"], "the failure budget was exceeded");
    let status = tokio::time::timeout(Duration::from_secs(20), create.wait())
        .await
        .expect("create --watch exited")
        .unwrap();
    let mut stderr = String::new();
    create
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert_eq!(status.code(), Some(3), "stopped exits 3: {stderr}");
    assert!(
        stderr.contains(&format!(
            "operation {second} stopped: the failure budget was exceeded"
        )),
        "{stderr}"
    );
}
