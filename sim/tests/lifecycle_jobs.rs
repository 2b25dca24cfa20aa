//! Urumi's backup, restore and upgrade Jobs (labelled `urumi.io/job`) through a kube-rs
//! client: the simulator emulates their scripts' last log line, a restore only finds a
//! backup made in its own namespace with the expected checksum (and not after the
//! namespace was deleted), and failure injection (registered scripts, annotations) still
//! takes precedence.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use urumi_sim::{JobScript, SimHandle, Simulator};

const IDLE: Duration = Duration::from_secs(10);

async fn start() -> (SimHandle, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let mut config = kube::Config::new(sim.url().parse().expect("url parses"));
    config.default_namespace = "default".into();
    let client = Client::try_from(config).expect("client builds");
    for ns in ["store-a", "store-b"] {
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
    }
    (sim, client)
}

/// A lifecycle Job: the env goes on its main container (the dump phase as an init container
/// carries only database settings, as the workflows' Jobs would).
fn job(name: &str, kind: &str, env: &[(&str, &str)], annotations: &Value) -> Job {
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": {"urumi.io/job": kind}, "annotations": annotations},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "dump", "image": "mariadb:11", "env": [{"name": "DB_HOST", "value": "mariadb"}]}],
            "containers": [{"name": "main", "image": "curlimages/curl", "env": env}]}}}
    }))
    .unwrap()
}

/// Runs the Job to its end: whether it completed, and its pod's log.
async fn run(sim: &SimHandle, c: &Client, ns: &str, job: Job) -> (bool, String) {
    let name = job.name_any();
    let jobs: Api<Job> = Api::namespaced(c.clone(), ns);
    jobs.create(&PostParams::default(), &job).await.unwrap();
    assert!(sim.wait_idle(IDLE).await, "the simulator settles");
    let status = jobs.get(&name).await.unwrap().status.unwrap();
    let conds = status.conditions.unwrap_or_default();
    let complete = conds
        .iter()
        .any(|c| c.type_ == "Complete" && c.status == "True");
    let failed = conds
        .iter()
        .any(|c| c.type_ == "Failed" && c.status == "True");
    assert!(complete != failed, "{name} finished one way: {conds:?}");
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&format!("job-name={name}")))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "backoffLimit 0: one pod");
    let log = pods
        .logs(&list.items[0].name_any(), &LogParams::default())
        .await
        .unwrap();
    (complete, log)
}

fn last_json(log: &str, prefix: &str) -> Value {
    let last = log.lines().last().unwrap_or_default();
    let rest = last
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("last line is not {prefix}: {log}"));
    serde_json::from_str(rest.trim()).unwrap()
}

fn restore(name: &str, id: &str, sha: &str) -> Job {
    job(
        name,
        "restore",
        &[("BACKUP_ID", id), ("EXPECT_SHA256", sha)],
        &json!({}),
    )
}

#[tokio::test]
async fn a_backup_can_be_restored_in_its_own_namespace_with_its_checksum_only() {
    let (sim, c) = start().await;
    let id = "0190a1b2-0000-7000-8000-000000000001";
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        job("backup-1", "backup", &[("BACKUP_ID", id)], &json!({})),
    )
    .await;
    assert!(ok, "{log}");
    let line = last_json(&log, "URUMI-BACKUP ");
    assert_eq!(line["id"], id);
    let sha = line["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    assert!(line["size"].as_u64().unwrap() > 0);
    // The same backup made again reports the same archive.
    let (_, again) = run(
        &sim,
        &c,
        "store-a",
        job("backup-2", "backup", &[("BACKUP_ID", id)], &json!({})),
    )
    .await;
    assert_eq!(last_json(&again, "URUMI-BACKUP "), line);

    let (ok, log) = run(&sim, &c, "store-a", restore("restore-1", id, &sha)).await;
    assert!(ok, "{log}");
    assert_eq!(
        last_json(&log, "URUMI-RESTORE "),
        json!({"id": id, "sha256": sha})
    );
    let (ok, log) = run(&sim, &c, "store-b", restore("restore-1", id, &sha)).await;
    assert!(!ok);
    assert!(
        log.contains(&format!("backup {id} not found in store-b")),
        "{log}"
    );
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        restore("restore-2", id, &"0".repeat(64)),
    )
    .await;
    assert!(!ok);
    assert!(log.contains("checksum mismatch"), "{log}");
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        restore("restore-3", "never-made", &sha),
    )
    .await;
    assert!(!ok);
    assert!(
        log.contains("backup never-made not found in store-a"),
        "{log}"
    );

    // Deleting the namespace forgets its backups: a store re-made under the name has none.
    let nss: Api<Namespace> = Api::all(c.clone());
    nss.delete("store-a", &DeleteParams::default())
        .await
        .unwrap();
    assert!(sim.wait_idle(IDLE).await);
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "store-a"}})).unwrap(),
    )
    .await
    .unwrap();
    let (ok, log) = run(&sim, &c, "store-a", restore("restore-4", id, &sha)).await;
    assert!(!ok);
    assert!(
        log.contains(&format!("backup {id} not found in store-a")),
        "{log}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_upgrade_reports_the_versions_of_its_env() {
    let (sim, c) = start().await;
    let env = [
        ("WORDPRESS_VERSION", "6.8.1"),
        ("WOOCOMMERCE_VERSION", "9.9.3"),
    ];
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        job("upgrade-1", "upgrade", &env, &json!({})),
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(
        last_json(&log, "URUMI-UPGRADE "),
        json!({"wordpress": "6.8.1", "woocommerce": "9.9.3"})
    );
    let env = [("WOOCOMMERCE_VERSION", "9.9.3")];
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        job("upgrade-2", "upgrade", &env, &json!({})),
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(last_json(&log, "URUMI-UPGRADE ")["wordpress"], "unknown");
    sim.shutdown().await;
}

#[tokio::test]
async fn failure_injection_still_overrides_the_emulation() {
    let (sim, c) = start().await;
    let id = "0190a1b2-0000-7000-8000-000000000001";
    // An annotation fails the backup, which then is not remembered.
    let (ok, log) = run(
        &sim,
        &c,
        "store-a",
        job(
            "backup-1",
            "backup",
            &[("BACKUP_ID", id)],
            &json!({"sim.urumi.io/outcome": "fail", "sim.urumi.io/log": "mariadb-dump: Got error: 2002\n"}),
        ),
    )
    .await;
    assert!(!ok);
    assert_eq!(log, "mariadb-dump: Got error: 2002\n");
    let sha = last_json(
        &run(
            &sim,
            &c,
            "store-b",
            job("backup-1", "backup", &[("BACKUP_ID", id)], &json!({})),
        )
        .await
        .1,
        "URUMI-BACKUP ",
    )["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _) = run(&sim, &c, "store-b", restore("restore-1", id, &sha)).await;
    assert!(ok, "store-b's backup restores in store-b");
    let failed_sha = urumi_sim::lifecycle::archive("store-a", id).0;
    let (ok, log) = run(&sim, &c, "store-a", restore("restore-1", id, &failed_sha)).await;
    assert!(!ok && log.contains("not found in store-a"), "{log}");

    // A registered script decides alone: this restore of a known backup fails, and one of an
    // unknown backup succeeds with the scripted log.
    sim.script_job(
        Some("store-b"),
        "restore-broken",
        JobScript::fail("mariadb: ERROR 1045\n"),
    );
    sim.script_job(
        Some("store-b"),
        "restore-scripted",
        JobScript::succeed("scripted\n"),
    );
    let (ok, log) = run(&sim, &c, "store-b", restore("restore-broken", id, &sha)).await;
    assert!(!ok);
    assert_eq!(log, "mariadb: ERROR 1045\n");
    let (ok, log) = run(
        &sim,
        &c,
        "store-b",
        restore("restore-scripted", "never-made", &sha),
    )
    .await;
    assert!(ok);
    assert_eq!(log, "scripted\n");

    // A pod that gets past `fail-times` is emulated, after the annotation's log.
    let mut flaky = job(
        "upgrade-flaky",
        "upgrade",
        &[("WOOCOMMERCE_VERSION", "9.9.3")],
        &json!({"sim.urumi.io/fail-times": "1", "sim.urumi.io/log": "wp: timeout\n"}),
    );
    flaky.spec.as_mut().unwrap().backoff_limit = Some(1);
    let jobs: Api<Job> = Api::namespaced(c.clone(), "store-b");
    jobs.create(&PostParams::default(), &flaky).await.unwrap();
    assert!(sim.wait_idle(IDLE).await);
    let status = jobs.get("upgrade-flaky").await.unwrap().status.unwrap();
    assert_eq!((status.failed, status.succeeded), (Some(1), Some(1)));
    let pods: Api<Pod> = Api::namespaced(c.clone(), "store-b");
    let mut logs = Vec::new();
    for p in pods
        .list(&ListParams::default().labels("job-name=upgrade-flaky"))
        .await
        .unwrap()
        .items
    {
        let phase = p.status.as_ref().unwrap().phase.clone().unwrap();
        logs.push((
            phase,
            pods.logs(&p.name_any(), &LogParams::default())
                .await
                .unwrap(),
        ));
    }
    logs.sort();
    assert_eq!(logs[0], ("Failed".to_string(), "wp: timeout\n".to_string()));
    assert_eq!(logs[1].0, "Succeeded");
    assert!(logs[1].1.starts_with("wp: timeout\n"), "{}", logs[1].1);
    assert_eq!(
        last_json(&logs[1].1, "URUMI-UPGRADE ")["woocommerce"],
        "9.9.3"
    );
    sim.shutdown().await;
}
