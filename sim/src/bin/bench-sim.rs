//! `bench-sim`: throughput and memory of the simulator binary, measured from outside.
//!
//! Per repetition it starts `urumi-sim` (the sibling binary) as a child process, applies
//! the objects of N stores (default 10,000, ~17 applied objects each, plus the pods and
//! claims the controllers create) and reads the child's RSS. Then, over HTTP/1.1
//! keep-alive from one sequential client (hyper-util's pooled client, as kube-rs uses):
//! GETs/s of objects picked at random from those stores, and server-side applies/s.
//! Prints medians of `REPS` (default 3) with min/max; the last line is `RESULT {json}`.
//!
//! The client runs on a current-thread runtime, so a request, its connection task and
//! the response stay on one thread. `BENCH_RT=multi` instead drives the loop from
//! `block_on` on a multi-thread runtime (what `#[tokio::main]` does): every request then
//! hops between the main thread and the worker that owns the connection, ~6 context
//! switches per GET instead of ~1, and on 2 busy cores the GET rate halves or worse.
//! `BENCH_RT=multi-spawn` runs the loop as a task on a multi-thread runtime.
//!
//! Environment: `STORES` (10000), `REPS` (3), `SECONDS` (3 per throughput run),
//! `BENCH_RT`, and `SIM_URL` to only run the GETs against a running simulator (which
//! gets the stores applied first if it lacks them).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

type Http = Client<HttpConnector, Full<Bytes>>;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Child {
    child: tokio::process::Child,
    base: String,
    pid: u32,
}

async fn spawn_sim(port: u16) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let sim = exe.parent().context("exe dir")?.join("urumi-sim");
    let kc = std::env::temp_dir().join(format!("bench-sim-{port}.kubeconfig"));
    let child = tokio::process::Command::new(&sim)
        .env("SIM_ADDR", format!("127.0.0.1:{port}"))
        .env("SIM_KUBECONFIG", &kc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", sim.display()))?;
    let pid = child.id().context("child pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = http_client();
    for _ in 0..200 {
        if request(&client, "GET", &format!("{base}/version"), None, "")
            .await
            .is_ok()
        {
            return Ok(Child { child, base, pid });
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the simulator did not come up on port {port}")
}

fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

async fn request(
    c: &Http,
    method: &str,
    url: &str,
    body: Option<&Value>,
    content_type: &str,
) -> anyhow::Result<u16> {
    let payload = body
        .map(|b| Bytes::from(serde_json::to_vec(b).expect("serializes")))
        .unwrap_or_default();
    let mut req = http::Request::builder().method(method).uri(url);
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    let resp = c.request(req.body(Full::new(payload))?).await?;
    let code = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(code)
}

async fn apply(c: &Http, base: &str, path: &str, obj: &Value) -> anyhow::Result<()> {
    let url = format!("{base}{path}?fieldManager=urumi&force=true");
    let code = request(c, "PATCH", &url, Some(obj), "application/apply-patch+yaml").await?;
    if code >= 300 {
        bail!("apply {path} -> {code}");
    }
    Ok(())
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The objects of one store, shaped like Urumi's provisioning output: (path, object).
fn store_objects(i: u64) -> Vec<(String, Value)> {
    let slug = format!("shop{i:05}");
    let ns = format!("store-{slug}");
    let labels = json!({"app.kubernetes.io/managed-by": "urumi", "urumi.io/store-id": format!("00000000-0000-4000-8000-{i:012}"), "urumi.io/store": slug});
    let md = |name: &str| json!({"name": name, "namespace": ns, "labels": labels});
    let sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
    let psc = json!({"runAsNonRoot": true, "runAsUser": 999, "seccompProfile": {"type": "RuntimeDefault"}});
    let res = json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}});
    let core = |p: &str| format!("/api/v1/namespaces/{ns}/{p}");
    let apps = |p: &str| format!("/apis/apps/v1/namespaces/{ns}/{p}");
    let net = |p: &str| format!("/apis/networking.k8s.io/v1/namespaces/{ns}/{p}");
    let mut out = vec![
        (
            format!("/api/v1/namespaces/{ns}"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "app.kubernetes.io/managed-by": "urumi", "urumi.io/store": slug, "pod-security.kubernetes.io/enforce": "restricted"}}}),
        ),
        (
            core("resourcequotas/store"),
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": md("store"), "spec": {"hard": {
            "pods": "10", "requests.cpu": "1", "requests.memory": "1536Mi", "limits.cpu": "2", "limits.memory": "3Gi", "persistentvolumeclaims": "4", "requests.storage": "20Gi"}}}),
        ),
        (
            core("limitranges/defaults"),
            json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": md("defaults"), "spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "512Mi"}, "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}}),
        ),
    ];
    let policies = [
        (
            "default-deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        ),
        (
            "allow-same-namespace",
            json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}]}),
        ),
        (
            "allow-ingress-controller",
            json!({"podSelector": {"matchLabels": {"app": "wordpress"}}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}], "ports": [{"port": 80}]}]}),
        ),
        (
            "allow-dns",
            json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}),
        ),
        (
            "allow-https-egress",
            json!({"podSelector": {"matchLabels": {"app": "wordpress"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "169.254.169.254/32"]}}], "ports": [{"port": 443}]}]}),
        ),
    ];
    for (name, spec) in policies {
        out.push((net(&format!("networkpolicies/{name}")), json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md(name), "spec": spec})));
    }
    out.push((core("secrets/mariadb"), json!({"apiVersion": "v1", "kind": "Secret", "metadata": md("mariadb"), "type": "Opaque",
        "data": {"root-password": "c2VjcmV0LXJvb3QtcGFzc3dvcmQ=", "password": "c2VjcmV0LXVzZXItcGFzc3dvcmQ="}})));
    out.push((core("secrets/wordpress"), json!({"apiVersion": "v1", "kind": "Secret", "metadata": md("wordpress"), "type": "Opaque",
        "data": {"admin-password": "c2VjcmV0LWFkbWluLXBhc3N3b3Jk", "auth-key": "YXV0aC1rZXktc2FsdC12YWx1ZS1yYW5kb20tNjQtY2hhcnMtbG9uZy1zdHJpbmc="}})));
    let mut sts_md = md("mariadb");
    sts_md["labels"]["app"] = json!("mariadb");
    out.push((apps("statefulsets/mariadb"), json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": sts_md, "spec": {
        "serviceName": "mariadb", "replicas": 1, "selector": {"matchLabels": {"app": "mariadb"}},
        "template": {"metadata": {"labels": {"app": "mariadb"}}, "spec": {"securityContext": psc, "containers": [{"name": "mariadb", "image": "mariadb:11.4.5",
            "ports": [{"containerPort": 3306}], "env": [{"name": "MARIADB_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "mariadb", "key": "root-password"}}}],
            "readinessProbe": {"exec": {"command": ["healthcheck.sh", "--connect", "--innodb_initialized"]}}, "resources": res, "securityContext": sc,
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}]}})));
    out.push((core("services/mariadb"), json!({"apiVersion": "v1", "kind": "Service", "metadata": md("mariadb"), "spec": {"selector": {"app": "mariadb"}, "ports": [{"port": 3306}]}})));
    out.push((
        core("persistentvolumeclaims/wordpress"),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md("wordpress"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}),
    ));
    out.push((apps("deployments/wordpress"), json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md("wordpress"), "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "wordpress"}},
        "template": {"metadata": {"labels": {"app": "wordpress"}}, "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 33, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "wordpress", "image": "wordpress:6.8-php8.3-apache", "ports": [{"containerPort": 80}],
            "env": [{"name": "WORDPRESS_DB_HOST", "value": "mariadb"}, {"name": "WORDPRESS_DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "mariadb", "key": "password"}}}],
            "resources": res, "securityContext": sc, "volumeMounts": [{"name": "content", "mountPath": "/var/www/html"}]}],
            "volumes": [{"name": "content", "persistentVolumeClaim": {"claimName": "wordpress"}}]}}}})));
    out.push((core("services/wordpress"), json!({"apiVersion": "v1", "kind": "Service", "metadata": md("wordpress"), "spec": {"selector": {"app": "wordpress"}, "ports": [{"port": 80}]}})));
    out.push((net("ingresses/wordpress"), json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md("wordpress"), "spec": {"ingressClassName": "traefik",
        "rules": [{"host": format!("{slug}.example.com"), "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "wordpress", "port": {"number": 80}}}}]}}]}})));
    out.push((format!("/apis/batch/v1/namespaces/{ns}/jobs/setup"), json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": md("setup"), "spec": {"backoffLimit": 3,
        "template": {"spec": {"restartPolicy": "Never", "securityContext": {"runAsNonRoot": true, "runAsUser": 33, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "setup", "image": "wordpress:cli-2.12", "command": ["sh", "-c", "wp core is-installed || wp core install"], "env": [{"name": "HOME", "value": "/tmp"}],
            "resources": res, "securityContext": sc}]}}}})));
    out
}

/// The GET paths of store `i`'s objects: everything applied, plus the StatefulSet's pod and
/// claim that the controllers create (their names are deterministic).
fn store_get_paths(i: u64) -> Vec<String> {
    let ns = format!("store-shop{i:05}");
    let mut paths: Vec<String> = store_objects(i).into_iter().map(|(p, _)| p).collect();
    paths.push(format!("/api/v1/namespaces/{ns}/pods/mariadb-0"));
    paths.push(format!(
        "/api/v1/namespaces/{ns}/persistentvolumeclaims/data-mariadb-0"
    ));
    paths
}

/// A small deterministic generator (splitmix64), so every run GETs the same sequence.
struct Mix(u64);

impl Mix {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// What one GET run saw.
struct GetRun {
    per_sec: f64,
    distinct_paths: usize,
    mean_body: f64,
}

/// GETs of objects picked at random (seeded) from every store's objects, one after the
/// other on one keep-alive connection. Every response must be 200 with a JSON object body;
/// every 64th is parsed and must be the object that was asked for.
async fn gets_per_sec(
    base: &str,
    paths: &[String],
    secs: u64,
    seed: u64,
) -> anyhow::Result<GetRun> {
    let c = http_client();
    let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
    let mut rng = Mix(seed);
    let mut seen = std::collections::HashSet::new();
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let i = rng.below(urls.len());
        let resp = c
            .request(http::Request::get(&urls[i]).body(Full::new(Bytes::new()))?)
            .await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        if code != 200 || body.first() != Some(&b'{') {
            bail!("GET {} -> {code}", paths[i]);
        }
        if n.is_multiple_of(64) {
            let v: Value = serde_json::from_slice(&body)?;
            let name = v.pointer("/metadata/name").and_then(Value::as_str);
            if !paths[i].ends_with(&format!("/{}", name.unwrap_or("?"))) {
                bail!("GET {} returned {name:?}", paths[i]);
            }
        }
        seen.insert(i);
        bytes += body.len() as u64;
        n += 1;
    }
    Ok(GetRun {
        per_sec: n as f64 / start.elapsed().as_secs_f64(),
        distinct_paths: seen.len(),
        mean_body: bytes as f64 / n.max(1) as f64,
    })
}

async fn applies_per_sec(base: &str, secs: u64) -> anyhow::Result<f64> {
    let c = http_client();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let name = format!("bench-{}", n % 500);
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default", "labels": {"app.kubernetes.io/managed-by": "urumi"}},
            "data": {"counter": n.to_string(), "site": "https://shop.example.com"}});
        apply(
            &c,
            base,
            &format!("/api/v1/namespaces/default/configmaps/{name}"),
            &obj,
        )
        .await?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn get_json(c: &Http, url: &str) -> anyhow::Result<Value> {
    let resp = c
        .request(http::Request::get(url).body(Full::new(Bytes::new()))?)
        .await?;
    Ok(serde_json::from_slice(
        &resp.into_body().collect().await?.to_bytes(),
    )?)
}

async fn load_stores(base: &str, stores: u64) -> anyhow::Result<()> {
    let workers = 4;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let base = base.to_string();
        tasks.push(tokio::spawn(async move {
            let c = http_client();
            let mut i = w;
            while i < stores {
                for (path, obj) in store_objects(i) {
                    apply(&c, &base, &path, &obj).await?;
                }
                i += workers;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() -> anyhow::Result<()> {
    let rt = match std::env::var("BENCH_RT").as_deref() {
        Ok("multi") => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        Ok("multi-spawn") => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            return rt.block_on(async { tokio::spawn(run()).await? });
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let stores = env_num("STORES", 10_000);
    let reps = env_num("REPS", 3).max(1);
    let secs = env_num("SECONDS", 3);
    let mut gets = Vec::new();
    let mut applies = Vec::new();
    let mut rss = Vec::new();
    let mut objects = 0u64;
    println!(
        "bench-sim: {reps} repetitions; {secs}s per throughput run; {stores} stores for memory"
    );
    let mut paths = Vec::new();
    for i in 0..stores {
        paths.extend(store_get_paths(i));
    }
    if let Ok(url) = std::env::var("SIM_URL") {
        // Profiling aid: GETs against a long-running simulator (stores loaded on first use).
        let c = http_client();
        let last = format!("{url}{}", paths.last().context("STORES=0")?);
        if request(&c, "GET", &last, None, "").await? != 200 {
            load_stores(&url, stores).await?;
            request(&c, "GET", &format!("{url}/_sim/idle"), None, "").await?;
        }
        for rep in 0..reps {
            let g = gets_per_sec(&url, &paths, secs, rep + 1).await?;
            println!(
                "GETs against {url}: {:.0}/s ({} distinct objects, mean body {:.0} B)",
                g.per_sec, g.distinct_paths, g.mean_body
            );
        }
        return Ok(());
    }
    for rep in 0..reps {
        let port = 17_000 + rep as u16;
        let mut sim = spawn_sim(port).await?;
        let t = Instant::now();
        load_stores(&sim.base, stores).await?;
        let c = http_client();
        // Let the controllers create every pod and claim before measuring (up to 3 min).
        let mut idle = 0;
        for _ in 0..18 {
            idle = request(&c, "GET", &format!("{}/_sim/idle", sim.base), None, "").await?;
            if idle == 200 {
                break;
            }
        }
        let load_secs = t.elapsed().as_secs_f64();
        let stats_body = get_json(&c, &format!("{}/_sim/stats", sim.base)).await?;
        objects = stats_body["objects"].as_u64().unwrap_or(0);
        let r = rss_mib(sim.pid);
        println!(
            "rep {}: {stores} stores loaded in {load_secs:.1}s ({objects} objects, controllers idle: {}), stored JSON {:.1} MiB, RSS {r:.1} MiB",
            rep + 1,
            idle == 200,
            stats_body["objectBytes"].as_f64().unwrap_or(0.0) / 1_048_576.0
        );
        // The request log then holds this run's GETs: their time inside the handler.
        request(
            &c,
            "DELETE",
            &format!("{}/_sim/requests", sim.base),
            None,
            "",
        )
        .await?;
        let g = gets_per_sec(&sim.base, &paths, secs, rep + 1).await?;
        let log = get_json(&c, &format!("{}/_sim/requests?since=0", sim.base)).await?;
        let mut handler_us: Vec<f64> = log
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|r| r["verb"] == "get")
            .filter_map(|r| r["latencyMs"].as_f64())
            .map(|ms| ms * 1000.0)
            .collect();
        handler_us.sort_by(f64::total_cmp);
        let handler_p50 = handler_us.get(handler_us.len() / 2).copied().unwrap_or(0.0);
        let a = applies_per_sec(&sim.base, secs).await?;
        println!(
            "rep {}: {:.0} GETs/s ({} distinct objects of {}, mean body {:.0} B, handler p50 {handler_p50:.1} us, round trip {:.1} us), {a:.0} applies/s",
            rep + 1,
            g.per_sec,
            g.distinct_paths,
            paths.len(),
            g.mean_body,
            1e6 / g.per_sec
        );
        gets.push(g.per_sec);
        applies.push(a);
        rss.push(r);
        sim.child.kill().await.ok();
        let _ =
            std::fs::remove_file(std::env::temp_dir().join(format!("bench-sim-{port}.kubeconfig")));
    }
    let (gm, gmin, gmax) = stats(gets);
    let (am, amin, amax) = stats(applies);
    let (rm, rmin, rmax) = stats(rss);
    // One rounding for the text and the JSON.
    let (rm, rmin, rmax) = (tenth(rm), tenth(rmin), tenth(rmax));
    println!(
        "GET of random stored objects, one keep-alive client: median {gm:.0}/s (min {gmin:.0}, max {gmax:.0})   target >= 5000"
    );
    println!(
        "server-side apply (each a real write), one client: median {am:.0}/s (min {amin:.0}, max {amax:.0})   target >= 1000"
    );
    println!(
        "RSS holding {stores} stores ({objects} objects):      median {rm:.1} MiB (min {rmin:.1}, max {rmax:.1})   target <= 200"
    );
    let result = json!({
        "bench": "sim",
        "get_per_sec": {"median": gm.round(), "min": gmin.round(), "max": gmax.round()},
        "apply_per_sec": {"median": am.round(), "min": amin.round(), "max": amax.round()},
        "rss_mib_10k_stores": {"median": rm, "min": rmin, "max": rmax},
        "stores": stores,
        "objects": objects,
        "reps": reps,
        "client_runtime": std::env::var("BENCH_RT").unwrap_or_else(|_| "current-thread".into()),
        "machine": {"cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0)},
    });
    println!("RESULT {result}");
    Ok(())
}
