//! A Kubernetes API simulator that unmodified clients (kube-rs, `kubectl`) talk to over
//! HTTP, in the spirit of kwok: discovery, the resources Urumi uses, every verb including
//! server-side apply and watch, `Status` errors, admission (ResourceQuota, LimitRange,
//! Pod Security, ValidatingAdmissionPolicies in CEL), RBAC for bearer-token clients,
//! simulated controllers, fault injection and a request log.
//!
//! ```no_run
//! # async fn demo() -> urumi_sim::Result<()> {
//! let sim = urumi_sim::Simulator::builder().start().await?;
//! println!("KUBECONFIG={}", sim.kubeconfig_path().display());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ```text
//!  client ──HTTP──► server (routes, request log)
//!                       │  auth: no token / kubeconfig token = admin, issued token = its
//!                       │        ServiceAccount, else 401
//!                       │  rbac: token users checked against the stored bindings, else 403
//!                       │  faults
//!                       ▼
//!                  store::State (objects as JSON bytes, rv counter, watch history)
//!                       │  each client write, once its object is built: validation,
//!                       │  admission, then bound ValidatingAdmissionPolicies ([`policy`])
//!                       │ every commit
//!            ┌──────────┴───────────┐
//!            ▼                      ▼
//!     watch streams           controllers (pods Ready, Jobs, PVCs, namespaces)
//! ```
//!
//! Urumi's store backup, restore and upgrade Jobs (label `urumi.io/job`) are emulated: their
//! pods log the line the real script would print, and a restore only finds a backup made in
//! its own namespace ([`lifecycle`]).
//!
//! `services/{name}:{port}/proxy/…` reaches a simulated app when a Ready pod backs the
//! Service ([`proxy`]).
//!
//! `…/{deployments,statefulsets}/{name}/scale` reads and writes a workload's replicas as an
//! `autoscaling/v1` `Scale` ([`scale`]).
//!
//! A test can run a process as a ServiceAccount: create the account and its RoleBindings
//! or ClusterRoleBindings as admin, then
//! [`SimHandle::service_account_token`] and [`SimHandle::kubeconfig_with_token`] ([`auth`],
//! [`rbac`]).

pub mod admission;
pub mod auth;
pub mod cel_eval;
pub mod controllers;
pub mod error;
pub mod faults;
pub mod lifecycle;
pub mod patch;
pub mod policy;
pub mod policy_match;
pub mod protobuf;
pub mod proxy;
pub mod rbac;
pub mod resources;
pub mod scale;
pub mod selectors;
mod server;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use controllers::{JobScript, Timings};
pub use error::{ApiError, Error, Result};
pub use faults::{FaultConfig, FaultRule, Faults, RequestLog, RequestRecord};

/// Shared state of one simulated cluster.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) state: Mutex<store::State>,
    pub(crate) timings: Timings,
    pub(crate) faults: Faults,
    pub(crate) log: RequestLog,
    pub(crate) job_scripts: Mutex<Vec<(Option<String>, String, JobScript)>>,
    pub(crate) pending: Arc<AtomicUsize>,
    pub(crate) watchers: AtomicUsize,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) snapshot: Option<PathBuf>,
    pub(crate) tokens: auth::Tokens,
}

impl Cluster {
    /// Waits until the controllers have nothing queued or scheduled.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut quiet = 0;
        while Instant::now() < deadline {
            if self.pending.load(Ordering::SeqCst) == 0 {
                quiet += 1;
                if quiet >= 3 {
                    return true;
                }
            } else {
                quiet = 0;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// Writes every object to the snapshot file, if one is configured.
    pub(crate) fn save_snapshot(&self) -> Result<Option<PathBuf>> {
        let Some(path) = &self.snapshot else {
            return Ok(None);
        };
        let objects = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .dump();
        let doc = json!({"objects": objects});
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&doc).map_err(|source| Error::Parse {
                what: "snapshot",
                source,
            })?,
        )?;
        std::fs::rename(&tmp, path)?;
        Ok(Some(path.clone()))
    }
}

/// Entry point: `Simulator::builder()...start().await`.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// A builder with test defaults: `127.0.0.1:0`, zero controller delays, no faults.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            timings: Timings::default(),
            faults: FaultConfig::default(),
            snapshot: None,
            controllers: true,
            tls: false,
        }
    }
}

/// Options of a simulator.
#[derive(Debug, Clone)]
pub struct SimulatorBuilder {
    addr: SocketAddr,
    kubeconfig: Option<PathBuf>,
    timings: Timings,
    faults: FaultConfig,
    snapshot: Option<PathBuf>,
    controllers: bool,
    tls: bool,
}

impl SimulatorBuilder {
    /// Serve HTTPS with a CA minted at start (its PEM goes in the kubeconfig).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Where to listen (port 0 picks a free one).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Where to write the kubeconfig (default: a file in the temp directory).
    pub fn kubeconfig_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Controller delays.
    pub fn timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// Initial fault configuration.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Loads objects from, and saves them to, this snapshot file.
    pub fn snapshot(mut self, path: impl Into<PathBuf>) -> Self {
        self.snapshot = Some(path.into());
        self
    }

    /// Turns the simulated controllers off (objects just sit in the store).
    pub fn without_controllers(mut self) -> Self {
        self.controllers = false;
        self
    }

    /// Binds, loads the snapshot, writes the kubeconfig and starts serving.
    ///
    /// # Errors
    /// When the address cannot be bound or the snapshot / kubeconfig cannot be read or written.
    pub async fn start(self) -> Result<SimHandle> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let (tx, _) = broadcast::channel(8192);
        let mut state = store::State::new(tx);
        let pending = Arc::new(AtomicUsize::new(0));
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        if self.controllers {
            state.set_controller_tx(ctl_tx, pending.clone());
        }
        if let Some(path) = &self.snapshot
            && path.exists()
        {
            let raw = std::fs::read(path)?;
            let doc: Value = serde_json::from_slice(&raw).map_err(|source| Error::Parse {
                what: "snapshot",
                source,
            })?;
            let mut items = Vec::new();
            for o in doc
                .get("objects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let av = o
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
                if let Some(res) = resources::find_kind(av, kind) {
                    let ns = o
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let name = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    items.push((res, ns, name, o));
                }
            }
            items.sort_by_key(|i| i.0);
            state.restore(items);
        }
        let (shutdown, _) = watch::channel(false);
        let cluster = Arc::new(Cluster {
            state: Mutex::new(state),
            timings: self.timings,
            faults: Faults::new(self.faults),
            log: RequestLog::default(),
            job_scripts: Mutex::new(Vec::new()),
            pending,
            watchers: AtomicUsize::new(0),
            shutdown,
            snapshot: self.snapshot,
            tokens: auth::Tokens::default(),
        });
        let mut tasks = Vec::new();
        if self.controllers {
            tasks.push(tokio::spawn(controllers::run(cluster.clone(), ctl_rx)));
        }
        let tls = if self.tls { Some(tls::mint()?) } else { None };
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        tasks.push(tokio::spawn(accept_loop(
            listener,
            cluster.clone(),
            acceptor,
        )));
        if cluster.snapshot.is_some() {
            let c = cluster.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = 0;
                let mut sd = c.shutdown.subscribe();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = sd.changed() => return,
                    }
                    let rv = c
                        .state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .rv;
                    if rv != last {
                        last = rv;
                        if let Err(e) = c.save_snapshot() {
                            tracing::warn!(error = %e, "snapshot failed");
                        }
                    }
                }
            }));
        }
        let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        let ca_pem = tls.map(|t| t.ca_pem);
        let (kubeconfig, owned) = match self.kubeconfig {
            Some(p) => (p, false),
            None => (
                std::env::temp_dir().join(format!(
                    "urumi-sim-{}-{}.kubeconfig",
                    std::process::id(),
                    addr.port()
                )),
                true,
            ),
        };
        if let Some(dir) = kubeconfig.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&kubeconfig, kubeconfig_with_ca(&url, ca_pem.as_deref()))?;
        Ok(SimHandle {
            cluster,
            addr,
            ca_pem,
            url,
            kubeconfig,
            owned_kubeconfig: owned,
            tasks,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    cluster: Arc<Cluster>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut sd = cluster.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = sd.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let c = cluster.clone();
        let mut conn_sd = cluster.shutdown.subscribe();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| server::handle(c.clone(), req));
            match tls {
                None => {
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_sd.changed() => {}
                    }
                }
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = conn_sd.changed() => {}
                    }
                }
            }
        });
    }
}

/// A kubeconfig pointing at `url`, with context, cluster and user named `urumi-sim`.
pub fn kubeconfig_yaml(url: &str) -> String {
    kubeconfig_with_ca(url, None)
}

/// [`kubeconfig_yaml`], trusting `ca_pem` when the simulator serves TLS.
pub fn kubeconfig_with_ca(url: &str, ca_pem: Option<&str>) -> String {
    use base64::Engine as _;
    let plain = kubeconfig_plain(url);
    match ca_pem {
        None => plain,
        Some(pem) => {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            plain.replacen(
                &format!("    server: {url}\n"),
                &format!("    server: {url}\n    certificate-authority-data: {data}\n"),
                1,
            )
        }
    }
}

fn kubeconfig_plain(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: urumi-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: urumi-sim\n  context:\n    cluster: urumi-sim\n    user: urumi-sim\n    namespace: default\ncurrent-context: urumi-sim\nusers:\n- name: urumi-sim\n  user:\n    token: urumi-sim\npreferences: {{}}\n"
    )
}

/// A running simulator (dropping it leaves it running until the runtime ends; call
/// [`SimHandle::shutdown`] to stop it).
#[derive(Debug)]
pub struct SimHandle {
    cluster: Arc<Cluster>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    url: String,
    kubeconfig: PathBuf,
    owned_kubeconfig: bool,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:<port>`, or `https://…` with TLS.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The kubeconfig file written at start.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig's text.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_with_ca(&self.url, self.ca_pem.as_deref())
    }

    /// The kubeconfig's text with `token` as the user's bearer token (same cluster and CA):
    /// a process given it acts as the token's ServiceAccount, under RBAC.
    pub fn kubeconfig_with_token(&self, token: &str) -> String {
        self.kubeconfig_yaml().replacen(
            &format!("    token: {}\n", auth::ADMIN_TOKEN),
            &format!("    token: {token}\n"),
            1,
        )
    }

    /// Issues a token for ServiceAccount `namespace/name`, as `POST
    /// /api/v1/namespaces/{namespace}/serviceaccounts/{name}/token` does (one hour).
    ///
    /// # Errors
    /// [`Error::Api`] (404 NotFound) when the ServiceAccount does not exist.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let answer = {
            let st = self
                .cluster
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.cluster
                .tokens
                .issue(&st, namespace, name, &Value::Null)?
        };
        Ok(answer["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The CA certificate (PEM) clients must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Fault rules, adjustable at runtime.
    pub fn faults(&self) -> &Faults {
        &self.cluster.faults
    }

    /// The request log.
    pub fn request_log(&self) -> &RequestLog {
        &self.cluster.log
    }

    /// Scripts the outcome and log of Jobs whose name starts with `name_prefix` (in
    /// `namespace`, or any with `None`). Earlier scripts win.
    pub fn script_job(&self, namespace: Option<&str>, name_prefix: &str, script: JobScript) {
        self.cluster
            .job_scripts
            .lock()
            .expect("scripts lock")
            .push((namespace.map(String::from), name_prefix.into(), script));
    }

    /// Waits until the controllers have caught up; `false` on timeout.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        self.cluster.wait_idle(timeout).await
    }

    /// Number of stored objects.
    pub fn object_count(&self) -> usize {
        self.cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .object_count()
    }

    /// The current `resourceVersion` of the whole store.
    pub fn resource_version(&self) -> u64 {
        self.cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .rv
    }

    /// Saves the snapshot now (when one is configured).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_snapshot(&self) -> Result<Option<PathBuf>> {
        self.cluster.save_snapshot()
    }

    /// Stops serving (open watches end), saves the snapshot, removes a default kubeconfig.
    pub async fn shutdown(self) {
        let _ = self.cluster.shutdown.send(true);
        if let Err(e) = self.cluster.save_snapshot() {
            tracing::warn!(error = %e, "final snapshot failed");
        }
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        if self.owned_kubeconfig {
            let _ = std::fs::remove_file(&self.kubeconfig);
        }
    }
}
