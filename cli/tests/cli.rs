//! End to end: the real `urumictl` binary against the API served in-process (on port 0) over a
//! fresh database (`#[sqlx::test]`), with an admin and a viewer token. There is no worker, so
//! stores stay `provisioning` until deleted (`store.deleting` comes from a database trigger).

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
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let changed = urumi_api::feed::spawn(pool.clone());
    let settings = urumi_api::settings::Settings::defaults();
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
