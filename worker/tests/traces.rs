//! OpenTelemetry traces end to end: an OTLP/HTTP receiver in this test process collects what
//! is exported. With `[traces]` on, the API (its real routes, in this process) creates a
//! store and a real `urumi-worker` process provisions it on the Kubernetes simulator; the
//! request, the run, every step attempt and, under each attempt, its checkpoint and kube-rs
//! calls are one trace, joined across the two processes through the trace context stored on
//! the run. A request with a W3C `traceparent` joins the caller's trace (the request span is
//! the caller's span's child, and so the run and its steps are in the caller's trace); a
//! malformed one is ignored. With traces off (the default) a worker exports nothing and
//! needs no collector.

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

/// What this test process's telemetry (the in-process API's) exported, collected by a
/// receiver that lives as long as the process. Installed once, by whichever test comes
/// first.
static API_TELEMETRY: OnceLock<Collected> = OnceLock::new();

fn api_telemetry() -> Collected {
    API_TELEMETRY
        .get_or_init(|| {
            // Each test has a runtime of its own, which ends with it: the receiver gets one
            // that lives as long as the process.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    tx.send(receiver().await).unwrap();
                    std::future::pending::<()>().await;
                });
            });
            let (url, got) = rx.recv().unwrap();
            let log = LogSettings {
                format: LogFormat::Json,
                filter: "warn".into(),
            };
            let traces = TraceSettings {
                enabled: true,
                endpoint: url,
                ..TraceSettings::default()
            };
            let telemetry = urumi_process::telemetry::init(&log, &traces, "urumi-api").unwrap();
            assert!(telemetry.tracing());
            // Kept for the life of the test process: spans are flushed on its batch schedule.
            std::mem::forget(telemetry);
            got
        })
        .clone()
}

/// A caller's W3C trace context: its trace and the span the request is sent from.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The API, its real routes served in this process (exporting to the receiver of
/// [`api_telemetry`]), and an admin token.
struct Api {
    addr: std::net::SocketAddr,
    admin: String,
    got: Collected,
}

async fn spawn_api(pool: &PgPool) -> Api {
    let got = api_telemetry();
    let settings = urumi_api::settings::Settings::defaults();
    let (changed, _feed) = feed::spawn_stoppable(pool.clone());
    let state = Arc::new(AppState::new(pool.clone(), settings, changed).unwrap());
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(urumi_api::app(state)));
    let admin = auth::mint(pool, "trace-admin", Role::Admin, "test")
        .await
        .unwrap()
        .token;
    Api { addr, admin, got }
}

impl Api {
    /// Creates the store `name` with these extra request headers; the request succeeds.
    /// Returns the store and its provisioning run, with the run's stored trace context split
    /// into its trace id and span id.
    async fn create_store(
        &self,
        pool: &PgPool,
        name: &str,
        headers: &[(&str, &str)],
    ) -> (Uuid, Uuid, String, String) {
        let mut req = reqwest::Client::new()
            .post(format!("http://{}/api/v1/stores", self.addr))
            .bearer_auth(&self.admin)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .body(json!({ "name": name, "engine": "woocommerce" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let (store, run, trace_context): (Uuid, Uuid, Option<String>) = sqlx::query_as(
            "SELECT s.id, r.id, r.trace_context FROM urumi.stores s
             JOIN urumi.runs r ON r.subject = 'store:' || s.id::text WHERE s.name = $1",
        )
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap();
        let trace_context = trace_context.expect("the run stores the request's trace context");
        let parts: Vec<&str> = trace_context.split('-').collect();
        assert_eq!(parts.len(), 4, "{trace_context}");
        assert_eq!(parts[0], "00", "{trace_context}");
        assert_eq!(parts[3], "01", "sampled: {trace_context}");
        (store, run, parts[1].to_owned(), parts[2].to_owned())
    }

    /// The exported `request` span with this id (exported on the batch schedule, within
    /// seconds): a `POST /api/v1/stores` of the `urumi-api` service.
    async fn request_span(&self, id: &str) -> Got {
        let find = || {
            self.got
                .lock()
                .unwrap()
                .iter()
                .find(|s| s.id == id)
                .cloned()
        };
        wait_until(
            "the request span to be exported",
            Duration::from_secs(30),
            async || find().is_some(),
        )
        .await;
        let request = find().unwrap();
        assert_eq!(request.name, "request");
        assert_eq!(request.service, "urumi-api");
        assert_eq!(request.attrs["method"], "POST");
        assert_eq!(request.attrs["uri"], "/api/v1/stores");
        request
    }
}

/// Creates a store through the API (with these extra request headers) and has a real
/// `urumi-worker` process provision it on the simulator; checks that the request, the run,
/// every step attempt and, under each, its checkpoint and kube calls are one trace. Returns
/// the request span.
async fn provisioned_as_one_trace(connect: PgConnectOptions, headers: &[(&str, &str)]) -> Got {
    let url = url_for(&connect);
    let pool = pool_for(connect).await;
    // The worker process exports to one receiver, this process (the API) to another: the
    // trace can only be one through the context stored on the run.
    let api = spawn_api(&pool).await;
    let (worker_url, worker_got) = receiver().await;

    let sim = Simulator::builder().start().await.unwrap();
    let mut cmd = WorkerProcess::command(&url, None, 15_000);
    cmd.env("URUMI__CLUSTER__ENABLED", "true")
        .env("URUMI__CLUSTER__KUBECONFIG", sim.kubeconfig_path())
        .env("URUMI__TRACES__ENABLED", "true")
        .env("URUMI__TRACES__ENDPOINT", &worker_url);
    let mut worker = WorkerProcess::start(cmd);

    let (store, run, stored_trace, stored_span) = api.create_store(&pool, "traced", headers).await;
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
    // SIGTERM: the worker exits cleanly, which flushes its buffered spans to the receiver
    // on this test's runtime (so the wait for its exit must not block that runtime).
    worker.signal_term();
    let status = worker.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "the worker's exit: {status}");

    // The run row carries the request span's context.
    let request = api.request_span(&stored_span).await;
    let trace = request.trace.clone();
    assert_eq!(stored_trace, trace, "the stored trace context's trace");

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
    request
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_store_created_through_the_api_is_one_trace_from_the_request_to_the_kube_calls(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let request = provisioned_as_one_trace(connect, &[]).await;
    // No traceparent: the request starts the trace.
    assert_eq!(request.parent, "", "the request span is a root");
    assert_ne!(request.trace, CALLER_TRACE);
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_callers_traceparent_is_joined_by_the_request_the_run_and_its_steps(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let request = provisioned_as_one_trace(
        connect,
        &[
            ("traceparent", traceparent.as_str()),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    // The request span is the caller's span's child, in the caller's trace; the helper
    // checked that the worker's run and step spans are in that trace, under the request.
    assert_eq!(request.trace, CALLER_TRACE);
    assert_eq!(request.parent, CALLER_SPAN, "the request span's parent");
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn a_malformed_traceparent_is_ignored_and_the_request_starts_a_fresh_trace(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let pool = pool_for(connect).await;
    let api = spawn_api(&pool).await;
    let malformed = [
        // The caller's trace id with an all-zero (invalid) span id.
        format!("00-{CALLER_TRACE}-0000000000000000-01"),
        // Uppercase hex is not W3C.
        format!("00-{}-{CALLER_SPAN}-01", CALLER_TRACE.to_uppercase()),
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}"),
        "garbage".to_owned(),
    ];
    let mut traces = BTreeSet::new();
    for (i, bad) in malformed.iter().enumerate() {
        let name = format!("untraced-{i}");
        let (_, _, trace, span) = api
            .create_store(&pool, &name, &[("traceparent", bad.as_str())])
            .await;
        assert_ne!(trace, CALLER_TRACE, "{bad}");
        let request = api.request_span(&span).await;
        assert_eq!(request.trace, trace, "{bad}");
        assert_eq!(request.parent, "", "{bad}: the request span is a root");
        traces.insert(trace);
    }
    assert_eq!(
        traces.len(),
        malformed.len(),
        "each request a trace of its own"
    );
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
    let mut worker = WorkerProcess::start(cmd);
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
    // A clean exit would have flushed any buffered span (to the receiver on this test's
    // runtime, which the wait leaves free to answer); give a stray export time to land.
    worker.signal_term();
    let status = worker.exit_status(Duration::from_secs(30)).await;
    assert!(status.success(), "the worker's exit: {status}");
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
