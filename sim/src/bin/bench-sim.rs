//! `bench-sim`: throughput and memory of the simulator binary, measured from outside.
//!
//! Starts `urumi-sim` (the sibling binary) as a child process per repetition and drives
//! it over HTTP/1.1 keep-alive: GETs/s and server-side applies/s from one sequential
//! client, then the child's RSS after loading the objects of N stores (default 10,000,
//! ~17 applied objects each plus the pods and claims the controllers create). Prints
//! medians of `REPS` (default 3) with min/max; the last line is `RESULT {json}`.
//!
//! Environment: `STORES` (10000), `REPS` (3), `SECONDS` (3 per throughput run).

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

async fn gets_per_sec(base: &str, secs: u64) -> anyhow::Result<f64> {
    let c = http_client();
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench", "namespace": "default"}, "data": {"k": "v"}});
    apply(
        &c,
        base,
        "/api/v1/namespaces/default/configmaps/bench",
        &obj,
    )
    .await?;
    let url = format!("{base}/api/v1/namespaces/default/configmaps/bench");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let code = request(&c, "GET", &url, None, "").await?;
        if code != 200 {
            bail!("GET -> {code}");
        }
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
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

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
    for rep in 0..reps {
        let port = 17_000 + rep as u16;
        let mut sim = spawn_sim(port).await?;
        let g = gets_per_sec(&sim.base, secs).await?;
        let a = applies_per_sec(&sim.base, secs).await?;
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
        let stats_resp = c
            .request(
                http::Request::get(format!("{}/_sim/stats", sim.base))
                    .body(Full::new(Bytes::new()))?,
            )
            .await?;
        let stats_body: Value =
            serde_json::from_slice(&stats_resp.into_body().collect().await?.to_bytes())?;
        objects = stats_body["objects"].as_u64().unwrap_or(0);
        let r = rss_mib(sim.pid);
        println!(
            "  stored JSON: {:.1} MiB",
            stats_body["objectBytes"].as_f64().unwrap_or(0.0) / 1048576.0
        );
        println!(
            "rep {}: {g:.0} GETs/s, {a:.0} applies/s, {stores} stores loaded in {load_secs:.1}s ({objects} objects, controllers idle: {}), RSS {r:.1} MiB",
            rep + 1,
            idle == 200
        );
        gets.push(g);
        applies.push(a);
        rss.push(r);
        sim.child.kill().await.ok();
        let _ =
            std::fs::remove_file(std::env::temp_dir().join(format!("bench-sim-{port}.kubeconfig")));
    }
    let (gm, gmin, gmax) = stats(gets);
    let (am, amin, amax) = stats(applies);
    let (rm, rmin, rmax) = stats(rss);
    println!(
        "GET /configmaps/<name>, one keep-alive client:   median {gm:.0}/s (min {gmin:.0}, max {gmax:.0})   target >= 5000"
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
        "rss_mib_10k_stores": {"median": (rm * 10.0).round() / 10.0, "min": (rmin * 10.0).round() / 10.0, "max": (rmax * 10.0).round() / 10.0},
        "stores": stores,
        "objects": objects,
        "reps": reps,
        "machine": {"cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0)},
    });
    println!("RESULT {result}");
    Ok(())
}
