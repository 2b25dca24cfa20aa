//! OpenTelemetry traces end to end: an OTLP/HTTP receiver in this test process collects what
//! is exported. With `[traces]` on, the API (its real routes, in this process) creates a
//! store and a real `urumi-worker` process provisions it on the Kubernetes simulator; the
//! request, the run, every step attempt and, under each attempt, its checkpoint and kube-rs
//! calls are one trace, joined across the two processes through the trace context stored on
//! the run. With traces off (the default) a worker exports nothing and needs no collector.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, handler, post};
use prost::Message;
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_api::auth::{self, Role};
use urumi_api::{AppState, feed};
use urumi_engine::{Engine, NewRun, RunStatus};
use urumi_process::settings::{LogFormat, LogSettings, TraceSettings};
use urumi_sim::Simulator;
use uuid::Uuid;

use common::{WorkerProcess, url_for, wait_until};

/// One exported span, flattened: its process's `service.name` and what the tests look at.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
    attrs: HashMap<String, String>,
}

type Collected = Arc<Mutex<Vec<Got>>>;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// The OTLP/HTTP traces endpoint: decodes each protobuf export and keeps its spans.
#[handler]
async fn collect(Data(got): Data<&Collected>, body: poem::Body) -> poem::Response {
    let body = body.into_vec().await.expect("a request body");
    let req = ExportTraceServiceRequest::decode(&body[..]).expect("an OTLP protobuf export");
    let mut got = got.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.push(Got {
                    service: service.clone(),
                    name: s.name,
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    attrs: s
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(a.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    poem::Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::<u8>::new())
}

/// Starts a receiver on a free port; returns its traces URL and what it has collected.
async fn receiver() -> (String, Collected) {
    let got = Collected::default();
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    let app = poem::Route::new()
        .at("/v1/traces", post(collect))
        .data(got.clone());
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    (format!("http://{addr}/v1/traces"), got)
}

async fn pool_for(connect: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await
        .unwrap()
}

/// This test process's telemetry (the in-process API's), installed once, exporting to the
/// receiver it starts.
static API_TELEMETRY: OnceLock<(String, Collected)> = OnceLock::new();

async fn api_telemetry() -> (String, Collected) {
    if let Some(t) = API_TELEMETRY.get() {
        return t.clone();
    }
    let (url, got) = receiver().await;
    let log = LogSettings {
        format: LogFormat::Json,
        filter: "warn".into(),
    };
    let traces = TraceSettings {
        enabled: true,
        endpoint: url.clone(),
        ..TraceSettings::default()
    };
    let telemetry = urumi_process::telemetry::init(&log, &traces, "urumi-api").unwrap();
    assert!(telemetry.tracing());
    // Kept for the life of the test process: spans are flushed on its batch schedule.
    std::mem::forget(telemetry);
    API_TELEMETRY.get_or_init(|| (url, got)).clone()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_created_through_the_api_is_one_trace_from_the_request_to_the_kube_calls(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let url = url_for(&connect);
    let pool = pool_for(connect).await;
    // The worker process exports to one receiver, this process (the API) to another: the
    // trace can only be one through the context stored on the run.
    let (_, api_got) = api_telemetry().await;
    let (worker_url, worker_got) = receiver().await;

    let settings = urumi_api::settings::Settings::defaults();
    let (changed, _feed) = feed::spawn_stoppable(pool.clone());
    let state = Arc::new(AppState::new(pool.clone(), settings, changed).unwrap());
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let api = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(urumi_api::app(state)));
    let admin = auth::mint(&pool, "trace-admin", Role::Admin, "test")
        .await
        .unwrap()
        .token;

    let sim = Simulator::builder().start().await.unwrap();
    let mut cmd = WorkerProcess::command(&url, None, 15_000);
    cmd.env("URUMI__CLUSTER__ENABLED", "true")
        .env("URUMI__CLUSTER__KUBECONFIG", sim.kubeconfig_path())
        .env("URUMI__TRACES__ENABLED", "true")
        .env("URUMI__TRACES__ENDPOINT", &worker_url);
    let worker = WorkerProcess::start(cmd);

    let r = reqwest::Client::new()
        .post(format!("http://{api}/api/v1/stores"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(json!({ "name": "traced", "engine": "woocommerce" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let (store, run, trace_context): (Uuid, Uuid, Option<String>) = sqlx::query_as(
        "SELECT s.id, r.id, r.trace_context FROM urumi.stores s
         JOIN urumi.runs r ON r.subject = 'store:' || s.id::text",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    wait_until(
        "the store to be ready",
        Duration::from_secs(90),
        async || {
            let status: String =
                sqlx::query_scalar("SELECT status FROM urumi.stores WHERE id = $1")
                    .bind(store)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            status == "ready"
        },
    )
    .await;
    // SIGTERM: the worker exits cleanly, which flushes its buffered spans.
    worker.terminate();

    // The API's request span (exported on the batch schedule, within seconds).
    let is_create = |s: &Got| {
        s.name == "request"
            && s.attrs.get("method").map(String::as_str) == Some("POST")
            && s.attrs.get("uri").map(String::as_str) == Some("/api/v1/stores")
    };
    wait_until(
        "the request span to be exported",
        Duration::from_secs(30),
        async || api_got.lock().unwrap().iter().any(is_create),
    )
    .await;
    let request = api_got
        .lock()
        .unwrap()
        .iter()
        .find(|s| is_create(s))
        .cloned()
        .unwrap();
    assert_eq!(request.service, "urumi-api");
    let trace = request.trace.clone();
    // The run row carries the request span's context.
    assert_eq!(
        trace_context.as_deref(),
        Some(format!("00-{trace}-{}-01", request.id).as_str()),
        "the stored trace context"
    );

    let spans: Vec<Got> = worker_got.lock().unwrap().clone();
    assert!(!spans.is_empty(), "the worker exported nothing");
    let mine: Vec<&Got> = spans.iter().filter(|s| s.trace == trace).collect();
    let runs: Vec<&Got> = mine.iter().copied().filter(|s| s.name == "run").collect();
    assert!(!runs.is_empty(), "no run span in the request's trace");
    let subject = format!("store:{store}");
    for r in &runs {
        assert_eq!(r.service, "urumi-worker");
        assert_eq!(
            r.parent, request.id,
            "a run span's parent is the request span"
        );
        assert_eq!(r.attrs["run_id"], run.to_string());
        assert_eq!(r.attrs["definition"], "store.provision");
        assert_eq!(r.attrs["version"], "1");
        assert_eq!(r.attrs["subject"], subject);
    }
    let run_ids: BTreeSet<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    let steps: Vec<&Got> = mine.iter().copied().filter(|s| s.name == "step").collect();
    for s in &steps {
        assert!(
            run_ids.contains(s.parent.as_str()),
            "a step span's parent is a run span: {s:?}"
        );
        assert_eq!(s.attrs["run_id"], run.to_string());
        assert_eq!(s.attrs["definition"], "store.provision");
        assert_eq!(s.attrs["version"], "1");
        assert_eq!(s.attrs["subject"], subject);
        assert!(s.attrs["attempt"].parse::<i64>().unwrap() >= 1, "{s:?}");
    }
    // Every step of the run has at least one attempt span, and each attempt's highest
    // number is the attempts the database counted.
    let counted: Vec<(String, i32)> = sqlx::query_as(
        "SELECT name, attempts FROM urumi.steps WHERE run_id = $1 ORDER BY position",
    )
    .bind(run)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(counted.len(), 11);
    for (name, attempts) in &counted {
        let max = steps
            .iter()
            .filter(|s| &s.attrs["step"] == name)
            .map(|s| s.attrs["attempt"].parse::<i32>().unwrap())
            .max();
        assert_eq!(max, Some(*attempts), "step {name}'s attempt spans");
    }
    // Under every attempt: one checkpoint span (its outcome written); under the attempts
    // that touch the cluster: kube-rs's HTTP spans.
    let children = |step: &Got, pred: &dyn Fn(&Got) -> bool| {
        mine.iter()
            .filter(|c| c.parent == step.id && pred(c))
            .count()
    };
    for s in &steps {
        assert_eq!(
            children(s, &|c| c.name == "checkpoint"),
            1,
            "the checkpoint under {s:?}"
        );
    }
    let is_kube = |c: &Got| c.attrs.contains_key("http.method") && c.attrs.contains_key("http.url");
    let namespace = steps
        .iter()
        .find(|s| s.attrs["step"] == "namespace")
        .unwrap();
    assert!(
        children(namespace, &is_kube) >= 1,
        "a kube call under the namespace step; its children: {:?}",
        mine.iter()
            .filter(|c| c.parent == namespace.id)
            .collect::<Vec<_>>()
    );
    let without: Vec<&str> = counted
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| {
            !steps
                .iter()
                .any(|s| &s.attrs["step"] == name && children(s, &is_kube) > 0)
        })
        .collect();
    // Every store.provision step calls the cluster: each first checks that the store's
    // namespace is its own (`guarded`).
    assert!(
        without.is_empty(),
        "steps without a kube call span: {without:?}"
    );
    // Nothing the worker exported for this run is outside the request's trace.
    let strays: Vec<&Got> = spans
        .iter()
        .filter(|s| s.name == "run" && s.trace != trace)
        .collect();
    assert!(strays.is_empty(), "run spans in another trace: {strays:?}");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn with_traces_off_by_default_a_worker_exports_nothing_and_needs_no_collector(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let url = url_for(&connect);
    let pool = pool_for(connect).await;
    let engine = Engine::new(pool.clone(), urumi_workflows::registry(None).unwrap());
    let (endpoint, got) = receiver().await;
    // The endpoint is set, `enabled` is not: the default must win.
    let mut cmd = WorkerProcess::command(&url, None, 15_000);
    cmd.env("URUMI__TRACES__ENDPOINT", &endpoint);
    let worker = WorkerProcess::start(cmd);
    let run = engine
        .start_run(
            NewRun::new("demo", "untraced", json!({ "name": "x", "work_ms": 0 })).actor("test"),
        )
        .await
        .unwrap()
        .run_id;
    wait_until("the run to succeed", Duration::from_secs(30), async || {
        engine.run(run).await.unwrap().run.status() == RunStatus::Succeeded
    })
    .await;
    worker.terminate();
    // A clean exit would have flushed any buffered span; give a stray export time to land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(got.lock().unwrap().len(), 0, "spans were exported");
    let stored: Option<String> =
        sqlx::query_scalar("SELECT trace_context FROM urumi.runs WHERE id = $1")
            .bind(run)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        stored, None,
        "a run started outside a trace stores no context"
    );
}
