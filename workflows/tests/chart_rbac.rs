//! The chart's worker identity is exactly enough: the store workflows run as the
//! ServiceAccount that `helm template` renders (helm/urumi/templates/rbac.yaml and
//! worker-policy.yaml), with a token from the simulator, which enforces RBAC for bearer
//! tokens. With every rule they provision, repair, back up and restore, preview (dry-run), observe the usage of,
//! sweep for drift (dry-run) and delete a store (and read a failed setup Job's log); without any one rule, the step that needs it fails with the API
//! server's Forbidden message naming that rule's resource. The chart's admission policy is
//! enforced too: outside store namespaces the same ServiceAccount can change nothing.
//!
//! Needs helm (`scripts/install-helm.sh`; `make test` installs it): a missing helm fails the
//! test, it is never skipped.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Api, Client};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use urumi_engine::{Engine, NewRun, RunStatus};
use urumi_sim::{JobScript, SimHandle, Simulator};
use urumi_store::preview::{PREVIEW, PlannedAction, PreviewInput, PreviewOutput};
use urumi_workflows::store::service;
use urumi_workflows::store::settings::StoreSettings;
use uuid::Uuid;

const NAMESPACE: &str = "urumi-system";
const WORKER: &str = "urumi-worker";
const ROLE: &str = "urumi-system-urumi-worker";

/// The chart's worker identity, as `helm template` renders it with the default values.
fn rendered() -> Vec<Value> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let helm = std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools/bin/helm"));
    let out = std::process::Command::new(&helm)
        .args(["template", "urumi", "helm/urumi", "--namespace", NAMESPACE])
        .args(["--show-only", "templates/rbac.yaml"])
        .args(["--show-only", "templates/worker-policy.yaml"])
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install helm with scripts/install-helm.sh (make test does)",
                helm.display()
            )
        });
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(d).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Server-side applies `doc` as the cluster admin.
async fn apply_as_admin(admin: &Client, doc: &Value) {
    let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", doc["apiVersion"].as_str().unwrap()),
    };
    let gvk = GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap());
    let ar = ApiResource::from_gvk(&gvk);
    let name = doc["metadata"]["name"].as_str().unwrap();
    let api: Api<DynamicObject> = match doc["metadata"]["namespace"].as_str() {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
        None if doc["kind"] == "ServiceAccount" => {
            Api::namespaced_with(admin.clone(), NAMESPACE, &ar)
        }
        None => Api::all_with(admin.clone(), &ar),
    };
    api.patch(
        name,
        &PatchParams::apply("chart-test").force(),
        &Patch::Apply(doc),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", doc["kind"]));
}

struct Rig {
    pool: PgPool,
    engine: Engine,
    sim: SimHandle,
    admin: Client,
    /// The worker's own client (the ServiceAccount's token).
    worker: Client,
    settings: StoreSettings,
    role: Value,
}

async fn rig(connect: PgConnectOptions) -> (Rig, urumi_engine::WorkerHandle) {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect_with(connect)
        .await
        .unwrap();
    let sim = Simulator::builder().start().await.unwrap();
    let admin = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
    apply_as_admin(
        &admin,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )
    .await;
    let docs = rendered();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding"
        ],
        "the chart's worker identity"
    );
    for d in &docs {
        apply_as_admin(&admin, d).await;
    }
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .unwrap()
        .clone();
    assert_eq!(role["metadata"]["name"], ROLE);

    // The worker, as the pod would run it: the ServiceAccount's token, nothing else.
    let token = sim.service_account_token(NAMESPACE, WORKER).await.unwrap();
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_with_token(&token)).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    config.read_timeout = Some(Duration::from_secs(10));
    let client = Client::try_from(config).unwrap();
    let settings = StoreSettings::default();
    let (engine, worker) =
        common::store_worker(&pool, client.clone(), &settings, "chart-rbac").await;
    (
        Rig {
            pool,
            engine,
            sim,
            admin,
            worker: client,
            settings,
            role,
        },
        worker,
    )
}

impl Rig {
    /// Replaces the worker's ClusterRole rules.
    async fn set_rules(&self, rules: &[Value]) {
        let mut role = self.role.clone();
        role["rules"] = json!(rules);
        apply_as_admin(&self.admin, &role).await;
    }

    /// Waits for the run to end; its error if it failed.
    async fn ended(&self, run: Uuid) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let d = self.engine.run(run).await.unwrap();
            match d.run.status() {
                RunStatus::Succeeded => return Ok(()),
                RunStatus::Failed => return Err(d.run.error.clone().unwrap_or_default()),
                s => assert!(
                    tokio::time::Instant::now() < deadline,
                    "run {run} still {s} after 90 s: {d:#?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Previews `action` on store `id` (`store.preview@1`); the plan's error if the preview
    /// found the action would fail.
    async fn preview(&self, id: Uuid, action: PlannedAction) -> Result<(), String> {
        let run = self
            .engine
            .start_run(NewRun::new(
                PREVIEW,
                format!("preview:{}", Uuid::now_v7()),
                json!(PreviewInput {
                    action,
                    store_ids: vec![id],
                    plan: None,
                    backup_id: None,
                    domains: None,
                    channel: None,
                }),
            ))
            .await
            .unwrap();
        self.ended(run.run_id).await?;
        let out: PreviewOutput = serde_json::from_value(
            self.engine
                .run(run.run_id)
                .await
                .unwrap()
                .run
                .output
                .unwrap(),
        )
        .unwrap();
        match out.stores[0].error.clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sweeps the fleet for drift (`store.sweep@1`, dry); the first store's error if the
    /// sweep could not judge one.
    async fn sweep(&self) -> Result<(), String> {
        use urumi_store::sweep::{SWEEP, SWEEP_SUBJECT, SweepInput, SweepOutput};
        let run = self
            .engine
            .start_run(NewRun::new(
                SWEEP,
                SWEEP_SUBJECT,
                json!(SweepInput { repair: false }),
            ))
            .await
            .unwrap();
        self.ended(run.run_id).await?;
        let d = self.engine.run(run.run_id).await.unwrap();
        let out: SweepOutput = serde_json::from_value(d.run.output.unwrap()).unwrap();
        assert!(out.checked >= 1, "{out:#?}");
        match out.failed.first() {
            Some(f) => Err(f.error.clone()),
            None => Ok(()),
        }
    }

    /// Provisions, repairs, previews a repair and a delete, sweeps for drift, and deletes a
    /// store; the first failed run's error (or a preview's or the sweep's store error).
    async fn lifecycle(&self, name: &str) -> Result<(), String> {
        let created = service::create(&self.engine, &self.settings, name, "woocommerce", None, "t")
            .await
            .unwrap();
        self.ended(created.run_id).await?;
        let id = created.store.id;
        let repair = service::repair(&self.engine, id, "t").await.unwrap();
        self.ended(repair.run_id).await?;
        // A backup (to the store's backup volume) and a restore from it.
        let who = urumi_engine::Who::interactive("t");
        let mut tx = self.engine.pool().begin().await.unwrap();
        let backup = service::backup_in(
            &mut tx,
            &self.engine,
            id,
            urumi_store::backups::BackupReason::Manual,
            &who,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.ended(backup.requested.run_id).await?;
        let mut tx = self.engine.pool().begin().await.unwrap();
        let restore = service::restore_in(&mut tx, &self.engine, id, backup.backup_id, &who)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        self.ended(restore.requested.run_id).await?;
        self.preview(id, PlannedAction::Repair).await?;
        self.preview(id, PlannedAction::Delete).await?;
        let usage = self
            .engine
            .start_run(NewRun::new(
                urumi_store::usage::USAGE,
                urumi_store::usage::USAGE_SUBJECT,
                json!({}),
            ))
            .await
            .unwrap();
        self.ended(usage.run_id).await?;
        self.sweep().await?;
        let delete = service::delete(&self.engine, id, "t").await.unwrap();
        self.ended(delete.run_id).await
    }

    /// A store whose setup Job fails: the setup step's first error (it carries the Job's
    /// log tail, read through `pods` list and `pods/log`). The run is cancelled after.
    async fn failed_setup(&self, name: &str, slug: &str) -> String {
        self.sim.script_job(
            Some(&format!("store-{slug}")),
            "store-setup-1",
            JobScript {
                fail_times: u32::MAX,
                log: "wp: the database refused the connection\n".into(),
            },
        );
        let created = service::create(&self.engine, &self.settings, name, "woocommerce", None, "t")
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let error = loop {
            let d = self.engine.run(created.run_id).await.unwrap();
            if let Some(e) = d
                .steps
                .iter()
                .find(|s| s.name == "setup")
                .and_then(|s| s.last_error.clone())
            {
                break e;
            }
            if d.run.status() == RunStatus::Failed {
                break d.run.error.clone().unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "setup never failed: {d:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let _ = self.engine.cancel_run(created.run_id, "t").await;
        error
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[sqlx::test(migrator = "urumi_migrations::MIGRATOR")]
async fn the_workers_need_every_rule_the_chart_grants_and_no_other(
    _: PgPoolOptions,
    connect: PgConnectOptions,
) {
    let (rig, worker) = rig(connect).await;
    let rules: Vec<Value> = rig.role["rules"].as_array().unwrap().clone();

    // RBAC lets the worker create ConfigMaps anywhere; the chart's admission policy keeps it
    // to store namespaces, and to namespaces it may make stores of.
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "outside"}, "data": {"k": "v"}
    }))
    .unwrap();
    let outside =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(rig.worker.clone(), NAMESPACE)
            .create(&Default::default(), &cm)
            .await;
    let policy = "is forbidden: ValidatingAdmissionPolicy 'urumi-system-urumi-worker-stores-only' \
                  with binding 'urumi-system-urumi-worker-stores-only' denied request: the Urumi \
                  worker may only change store namespaces";
    match outside {
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains(policy) => {}
        other => {
            panic!("a ConfigMap outside store namespaces was not refused by the policy: {other:?}")
        }
    }
    let plain: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "not-a-store"}})).unwrap();
    let made = Api::<k8s_openapi::api::core::v1::Namespace>::all(rig.worker.clone())
        .create(&Default::default(), &plain)
        .await;
    assert!(
        matches!(&made, Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains(policy)),
        "the worker made a namespace that is not a store's: {made:?}"
    );

    // Every rule: the whole life of a store works, and a failed setup shows its log.
    let mark = rig.sim.request_log().mark();
    rig.lifecycle("Chart Shop").await.expect("with every rule");
    let tail = rig.failed_setup("Chart Setup", "chart-setup").await;
    assert!(
        tail.contains("wp: the database refused the connection"),
        "{tail}"
    );
    let log = rig.sim.request_log().since(mark);
    let worker_user = format!("system:serviceaccount:{NAMESPACE}:{WORKER}");
    assert!(
        log.iter()
            .any(|r| r.user.as_deref() == Some(worker_user.as_str())),
        "the workflows ran as the chart's ServiceAccount"
    );
    assert!(
        log.iter()
            .filter(|r| r.user.as_deref() == Some(worker_user.as_str()))
            .all(|r| r.status != 403),
        "nothing was forbidden with every rule"
    );
    assert!(
        !log.iter()
            .any(|r| r.resource == "secrets" && r.verb == "get"),
        "the worker never reads a Secret"
    );

    // Without any one verb on any one resource, the step that needs it fails with the
    // server's Forbidden naming exactly that verb and resource.
    let mut variant = 0;
    for (i, rule) in rules.iter().enumerate() {
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        for r in &resources {
            for v in &verbs {
                variant += 1;
                let mut fewer = rules.clone();
                fewer.remove(i);
                let others: Vec<&String> = resources.iter().filter(|x| *x != r).collect();
                if !others.is_empty() {
                    let mut rest = rule.clone();
                    rest["resources"] = json!(others);
                    fewer.push(rest);
                }
                let left: Vec<&String> = verbs.iter().filter(|x| *x != v).collect();
                if !left.is_empty() {
                    let mut narrowed = rule.clone();
                    narrowed["resources"] = json!([r]);
                    narrowed["verbs"] = json!(left);
                    fewer.push(narrowed);
                }
                rig.set_rules(&fewer).await;
                let error = match rig.lifecycle(&format!("Lack {variant} Shop")).await {
                    Err(e) => e,
                    Ok(()) => {
                        rig.failed_setup(
                            &format!("Lack {variant} Setup"),
                            &format!("lack-{variant}-setup"),
                        )
                        .await
                    }
                };
                // The server's own words, or — for an apply that would create the object,
                // which the server refuses without naming a verb — the step's.
                assert!(
                    error.contains(&format!(
                        "is forbidden: User \"{worker_user}\" cannot {v} resource \"{r}\""
                    )) || (error.contains("is forbidden: )")
                        && error.contains(&format!("cannot {v} resource \"{r}\""))),
                    "without {v} on {r} nothing failed for its lack (the chart grants more \
                     than the workflows need, or the error does not say why): {error}"
                );
                eprintln!(
                    "needs {v} {r}: {}",
                    error.lines().next().unwrap_or_default()
                );
            }
        }
    }
    assert!(variant > 20, "{variant} verb/resource pairs");
    rig.set_rules(&rules).await;
    worker.shutdown().await.unwrap();
    rig.sim.shutdown().await;
    drop(rig.pool);
}
