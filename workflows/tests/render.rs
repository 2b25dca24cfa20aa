//! Rendering a store's objects: ownership labels, Pod Security `restricted`, resources on
//! every container, the network policy set, and schema validation for Kubernetes 1.33 and 1.37
//! (PyPI `kubernetes-validate`, installed by `make test`).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};
use urumi_workflows::store::engines::woocommerce::{CREDENTIAL_KEYS, WooCommerce};
use urumi_workflows::store::names::slugify;
use urumi_workflows::store::render::{self, StoreSpec};
use urumi_workflows::store::settings::StoreSettings;
use urumi_workflows::store::upgrade::upgrade_job;

fn rendered(settings: &StoreSettings) -> Vec<Value> {
    rendered_as(settings, false)
}

fn rendered_as(settings: &StoreSettings, suspended: bool) -> Vec<Value> {
    rendered_with(settings, suspended, &[])
}

const DOMAINS: [&str; 2] = ["shop.bobs-bikes.example", "www.bobs-bikes.example"];

/// The objects of the store with custom `domains`, and its site-URL Job (last).
fn rendered_with(settings: &StoreSettings, suspended: bool, domains: &[&str]) -> Vec<Value> {
    let slug = slugify("Bob's Bikes", &settings.platform_namespace).unwrap();
    let plan = settings.plan(None).unwrap();
    let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
    let pins = settings.image_pins();
    let spec = StoreSpec {
        id: "0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6b",
        name: "Bob's Bikes",
        slug: &slug,
        plan,
        suspended,
        domains: &domains,
        pins: &pins,
    };
    let creds: BTreeMap<String, String> = CREDENTIAL_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), "x".repeat(32)))
        .collect();
    let mut out = render::all(&WooCommerce, &spec, settings, &creds);
    if !domains.is_empty() {
        let job =
            render::site_url_job(&WooCommerce, &spec, settings).expect("WordPress stores its URL");
        let mut job = serde_json::to_value(job).unwrap();
        job["apiVersion"] = "batch/v1".into();
        job["kind"] = "Job".into();
        out.push(job);
    }
    out
}

/// The backup volume, and a backup and a restore Job with backups on the PVC and in S3.
fn archive_objects() -> Vec<Value> {
    use urumi_workflows::store::backup::{archive_job, backup_pvc};
    use urumi_workflows::store::engines::{ArchiveJob, ArchiveKind};
    let settings = StoreSettings::default();
    let slug = slugify("Bob's Bikes", &settings.platform_namespace).unwrap();
    let pins = settings.image_pins();
    let spec = StoreSpec {
        id: "0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6b",
        name: "Bob's Bikes",
        slug: &slug,
        plan: settings.plan(None).unwrap(),
        suspended: false,
        domains: &[],
        pins: &pins,
    };
    let id = uuid::Uuid::parse_str("0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6c").unwrap();
    let value = |o: serde_json::Value, kind: &str, api: &str| {
        let mut o = o;
        o["kind"] = kind.into();
        o["apiVersion"] = api.into();
        o
    };
    let mut out = vec![value(
        serde_json::to_value(backup_pvc(&spec, &settings)).unwrap(),
        "PersistentVolumeClaim",
        "v1",
    )];
    for (kind, s3) in [
        (ArchiveKind::Backup, false),
        (ArchiveKind::Backup, true),
        (ArchiveKind::Restore, false),
        (ArchiveKind::Restore, true),
    ] {
        let job = ArchiveJob {
            kind,
            backup_id: id,
            expect_sha256: (kind == ArchiveKind::Restore).then(|| "ab".repeat(32)),
            prune: vec![uuid::Uuid::nil()],
            s3: s3.then(|| {
                (
                    "http://s3.example:9000/b/stores/x".into(),
                    "us-east-1".into(),
                )
            }),
        };
        let name = format!("store-{}-{}-1", kind.as_str(), id.simple());
        out.push(value(
            serde_json::to_value(archive_job(&WooCommerce, &spec, &settings, &job, &name)).unwrap(),
            "Job",
            "batch/v1",
        ));
    }
    out
}

#[test]
fn archive_jobs_mount_the_backup_volume_or_stage_for_s3_and_carry_what_the_scripts_read() {
    let objects = archive_objects();
    let env = |job: &Value, container: &str, name: &str| -> Option<String> {
        let pod = &job["spec"]["template"]["spec"];
        pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
            .find(|c| c["name"] == container)?["env"]
            .as_array()?
            .iter()
            .find(|e| e["name"] == name)?["value"]
            .as_str()
            .map(String::from)
    };
    let (pvc_backup, s3_backup, pvc_restore, s3_restore) =
        (&objects[1], &objects[2], &objects[3], &objects[4]);
    // PVC mode: one container; it prunes locally.
    let pod = &pvc_backup["spec"]["template"]["spec"];
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    assert!(pod.get("initContainers").is_none());
    assert_eq!(
        pod["volumes"][1]["persistentVolumeClaim"]["claimName"],
        "store-backups"
    );
    assert_eq!(
        env(pvc_backup, "dump", "PRUNE").unwrap(),
        uuid::Uuid::nil().to_string()
    );
    assert_eq!(pvc_backup["metadata"]["labels"]["urumi.io/job"], "backup");
    // S3 mode: dump first (no local pruning), then the upload prunes the bucket's objects.
    let pod = &s3_backup["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "dump");
    assert_eq!(pod["containers"][0]["name"], "upload");
    assert!(pod["volumes"][1]["emptyDir"].is_object());
    assert_eq!(env(s3_backup, "dump", "PRUNE").as_deref(), Some(""));
    assert_eq!(
        env(s3_backup, "upload", "PRUNE").unwrap(),
        uuid::Uuid::nil().to_string()
    );
    assert!(
        env(s3_backup, "upload", "S3_URL")
            .unwrap()
            .starts_with("http://s3.example:9000/")
    );
    // A restore verifies the recorded checksum; with S3 it fetches first.
    assert_eq!(
        env(pvc_restore, "import", "EXPECT_SHA256").unwrap(),
        "ab".repeat(32)
    );
    assert_eq!(
        s3_restore["spec"]["template"]["spec"]["initContainers"][0]["name"],
        "fetch"
    );
    assert_eq!(
        s3_restore["spec"]["template"]["spec"]["containers"][0]["name"],
        "import"
    );
    // Every archive pod runs restricted, never retried inside the Job.
    for job in &objects[1..] {
        let spec = &job["spec"];
        assert_eq!(spec["backoffLimit"], 0);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(
            spec["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
    }
}

/// The upgrade's update script ConfigMap and Job `store-upgrade-1` of the store [`rendered`]
/// renders (pins: the default channel's).
fn upgrade_objects(settings: &StoreSettings) -> Vec<Value> {
    let slug = slugify("Bob's Bikes", &settings.platform_namespace).unwrap();
    let (_, channel) = settings.channel(None).unwrap();
    let spec = StoreSpec {
        id: "0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6b",
        name: "Bob's Bikes",
        slug: &slug,
        plan: settings.plan(None).unwrap(),
        suspended: false,
        domains: &[],
        pins: &channel.pins,
    };
    let (script, job) = upgrade_job(&WooCommerce, &spec, uuid::Uuid::nil(), "store-upgrade-1")
        .expect("WooCommerce has a database update");
    vec![render::value(&script), render::value(&job)]
}

fn pod_specs(objects: &[Value]) -> Vec<(&str, &Value)> {
    objects
        .iter()
        .filter_map(|o| Some((o["kind"].as_str()?, o.pointer("/spec/template/spec")?)))
        .collect()
}

#[test]
fn every_object_carries_the_ownership_labels_and_lives_in_the_store_namespace() {
    let objects = rendered(&StoreSettings::default());
    assert_eq!(objects.len(), 17);
    for o in &objects {
        let labels = &o["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "urumi",
            "{}",
            o["kind"]
        );
        assert_eq!(labels["urumi.io/store"], "bob-s-bikes");
        assert_eq!(
            labels["urumi.io/store-id"],
            "0195f0c4-7d1e-7aa0-8b7e-3c1d2e4f5a6b"
        );
        if o["kind"] != "Namespace" {
            assert_eq!(
                o["metadata"]["namespace"], "store-bob-s-bikes",
                "{}",
                o["kind"]
            );
        }
    }
    let ns = &objects[0];
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

/// The checks of Pod Security Standards `restricted` (v1.33) that apply to these pods.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let psc = &pod["securityContext"];
    for c in pod["containers"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let sc = &c["securityContext"];
        if sc["allowPrivilegeEscalation"] != false {
            v.push(format!("{name}: allowPrivilegeEscalation != false"));
        }
        let drops = sc["capabilities"]["drop"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !drops.iter().any(|d| d == "ALL") {
            v.push(format!("{name}: capabilities.drop lacks ALL"));
        }
        if sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x != "NET_BIND_SERVICE"))
        {
            v.push(format!("{name}: adds capabilities"));
        }
        if sc["runAsNonRoot"] != true && psc["runAsNonRoot"] != true {
            v.push(format!("{name}: runAsNonRoot not set"));
        }
        if sc["runAsUser"] == 0 || psc["runAsUser"] == 0 {
            v.push(format!("{name}: runs as uid 0"));
        }
        let seccomp = if sc["seccompProfile"].is_null() {
            &psc["seccompProfile"]
        } else {
            &sc["seccompProfile"]
        };
        if !matches!(
            seccomp["type"].as_str(),
            Some("RuntimeDefault" | "Localhost")
        ) {
            v.push(format!("{name}: seccompProfile not RuntimeDefault"));
        }
        if sc["privileged"] == true {
            v.push(format!("{name}: privileged"));
        }
    }
    for sysctl in psc["sysctls"].as_array().cloned().unwrap_or_default() {
        let allowed = [
            "net.ipv4.ip_unprivileged_port_start",
            "net.ipv4.ping_group_range",
            "kernel.shm_rmid_forced",
        ];
        if !allowed.contains(&sysctl["name"].as_str().unwrap()) {
            v.push(format!("unsafe sysctl {}", sysctl["name"]));
        }
    }
    if pod["hostNetwork"] == true || pod["hostPID"] == true || pod["hostIPC"] == true {
        v.push("host namespaces".into());
    }
    for vol in pod["volumes"].as_array().cloned().unwrap_or_default() {
        if !vol["hostPath"].is_null() {
            v.push("hostPath volume".into());
        }
    }
    v
}

#[test]
fn every_pod_template_satisfies_restricted_and_every_container_has_requests_and_limits() {
    let objects = rendered(&StoreSettings::default());
    let pods = pod_specs(&objects);
    assert_eq!(
        pods.iter().map(|p| p.0).collect::<Vec<_>>(),
        ["StatefulSet", "Deployment", "Job"]
    );
    for (kind, pod) in pods {
        assert_eq!(restricted_violations(pod), Vec::<String>::new(), "{kind}");
        for c in pod["containers"].as_array().unwrap() {
            for part in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(
                        c["resources"][part][res].is_string(),
                        "{kind}/{}: no {part}.{res}",
                        c["name"]
                    );
                }
            }
        }
    }
}

fn millicores(q: &str) -> u64 {
    q.strip_suffix('m')
        .map_or_else(|| q.parse::<u64>().unwrap() * 1000, |m| m.parse().unwrap())
}

fn mebibytes(q: &str) -> u64 {
    q.strip_suffix("Gi").map_or_else(
        || q.strip_suffix("Mi").unwrap().parse().unwrap(),
        |g| g.parse::<u64>().unwrap() * 1024,
    )
}

#[test]
fn all_pods_running_at_once_fit_in_the_plan_quota() {
    let settings = StoreSettings::default();
    let objects = rendered(&settings);
    let plan = settings.plan(None).unwrap();
    let mut sum = [0u64; 4];
    for (_, pod) in pod_specs(&objects) {
        for c in pod["containers"].as_array().unwrap() {
            let r = &c["resources"];
            sum[0] += millicores(r["requests"]["cpu"].as_str().unwrap());
            sum[1] += mebibytes(r["requests"]["memory"].as_str().unwrap());
            sum[2] += millicores(r["limits"]["cpu"].as_str().unwrap());
            sum[3] += mebibytes(r["limits"]["memory"].as_str().unwrap());
        }
    }
    let quota = [
        millicores(&plan.requests_cpu),
        mebibytes(&plan.requests_memory),
        millicores(&plan.limits_cpu),
        mebibytes(&plan.limits_memory),
    ];
    for (i, what) in [
        "requests.cpu",
        "requests.memory",
        "limits.cpu",
        "limits.memory",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            sum[i] <= quota[i],
            "{what}: pods need {} but the quota allows {}",
            sum[i],
            quota[i]
        );
    }
}

#[test]
fn the_restricted_check_catches_a_root_pod() {
    let pod = serde_json::json!({
        "containers": [{ "name": "bad", "securityContext": { "runAsUser": 0 } }],
        "hostNetwork": true
    });
    let v = restricted_violations(&pod);
    assert!(
        v.iter().any(|m| m.contains("uid 0")) && v.iter().any(|m| m.contains("host")),
        "{v:?}"
    );
}

#[test]
fn network_policies_deny_by_default_and_never_allow_the_platform_namespace() {
    let settings = StoreSettings::default();
    let objects = rendered(&settings);
    let policies: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    let names: Vec<&str> = policies
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "default-deny",
            "allow-same-namespace",
            "allow-ingress-controller",
            "allow-dns",
            "allow-https-egress"
        ]
    );
    let text = serde_json::to_string(&policies).unwrap();
    assert!(
        !text.contains(&settings.platform_namespace),
        "the platform namespace is in an allow rule"
    );
    let https = policies[4];
    let except = https
        .pointer("/spec/egress/0/to/0/ipBlock/except")
        .unwrap()
        .as_array()
        .unwrap();
    assert!(except.iter().any(|e| e == "169.254.169.254/32"));
    assert!(except.iter().any(|e| e == "10.0.0.0/8"));
    let from = policies[2]
        .pointer("/spec/ingress/0/from/0/namespaceSelector/matchLabels")
        .unwrap();
    assert_eq!(from["kubernetes.io/metadata.name"], "kube-system");

    let closed = rendered(&StoreSettings {
        internet_egress: false,
        ..StoreSettings::default()
    });
    assert_eq!(
        closed
            .iter()
            .filter(|o| o["kind"] == "NetworkPolicy")
            .count(),
        4,
        "no internet egress when disabled"
    );
}

#[test]
fn the_ingress_serves_the_store_host_with_tls_only_when_an_issuer_is_set() {
    let plain = rendered(&StoreSettings::default());
    let ing = plain.iter().find(|o| o["kind"] == "Ingress").unwrap();
    assert_eq!(
        ing["spec"]["rules"][0]["host"],
        "bob-s-bikes.stores.localhost"
    );
    assert!(ing["spec"]["tls"].is_null());
    let tls = rendered(&StoreSettings {
        tls_issuer: Some("letsencrypt".into()),
        ..StoreSettings::default()
    });
    let ing = tls.iter().find(|o| o["kind"] == "Ingress").unwrap();
    assert_eq!(
        ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert_eq!(
        ing["spec"]["tls"][0]["hosts"][0],
        "bob-s-bikes.stores.localhost"
    );
}

#[test]
fn custom_domains_are_ingress_rules_each_with_its_own_certificate() {
    let settings = StoreSettings {
        tls_issuer: Some("letsencrypt".into()),
        ..StoreSettings::default()
    };
    let objects = rendered_with(&settings, false, &DOMAINS);
    let ing = named(&objects, "Ingress", "wordpress").unwrap();
    let hosts: Vec<&str> = ing["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["bob-s-bikes.stores.localhost", DOMAINS[0], DOMAINS[1]]
    );
    for rule in ing["spec"]["rules"].as_array().unwrap() {
        assert_eq!(
            rule["http"]["paths"][0]["backend"]["service"]["name"], "wordpress",
            "every host reaches the store"
        );
    }
    let tls: Vec<(String, String)> = ing["spec"]["tls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(
                t["hosts"].as_array().unwrap().len(),
                1,
                "one host per certificate"
            );
            (
                t["hosts"][0].as_str().unwrap().to_owned(),
                t["secretName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tls,
        [
            ("bob-s-bikes.stores.localhost".into(), "store-tls".into()),
            (DOMAINS[0].into(), DOMAINS[0].into()),
            (DOMAINS[1].into(), DOMAINS[1].into()),
        ]
    );
    // Suspended, every host reaches the suspended page.
    let suspended = rendered_with(&settings, true, &DOMAINS);
    let ing = named(&suspended, "Ingress", "wordpress").unwrap();
    for rule in ing["spec"]["rules"].as_array().unwrap() {
        assert_eq!(
            rule["http"]["paths"][0]["backend"]["service"]["name"],
            "store-suspended"
        );
    }
    assert_eq!(ing["spec"]["rules"].as_array().unwrap().len(), 3);
    // Without an issuer: the rules, no TLS.
    let plain = rendered_with(&StoreSettings::default(), false, &DOMAINS);
    let ing = named(&plain, "Ingress", "wordpress").unwrap();
    assert_eq!(ing["spec"]["rules"].as_array().unwrap().len(), 3);
    assert!(ing["spec"]["tls"].is_null());
}

#[test]
fn the_site_url_job_sets_the_oldest_domain_as_a_restricted_wp_cli_pod() {
    let settings = StoreSettings {
        tls_issuer: Some("letsencrypt".into()),
        ..StoreSettings::default()
    };
    let objects = rendered_with(&settings, false, &DOMAINS);
    let job = objects.last().unwrap();
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], "store-siteurl");
    assert_eq!(
        job["metadata"]["annotations"]["urumi.io/site-url"],
        "https://shop.bobs-bikes.example"
    );
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(restricted_violations(pod), Vec::<String>::new());
    let c = &pod["containers"][0];
    assert_eq!(c["image"], settings.images.wp_cli.as_str());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let url = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "STORE_URL")
        .unwrap();
    assert_eq!(url["value"], "https://shop.bobs-bikes.example");
    let script = c["command"][2].as_str().unwrap();
    assert!(
        script.contains("option update home \"$STORE_URL\"")
            && script.contains("option update siteurl \"$STORE_URL\""),
        "{script}"
    );
}

#[test]
fn an_unknown_plan_is_refused_with_the_known_ones() {
    let err = StoreSettings::default().plan(Some("platinum")).unwrap_err();
    assert_eq!(err, "unknown plan \"platinum\"; known plans: starter");
}

#[test]
fn every_rendered_object_passes_kubernetes_schema_validation() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-manifests");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let settings = StoreSettings {
        tls_issuer: Some("letsencrypt".into()),
        ..StoreSettings::default()
    };
    // The running store, and the suspended one's extra Service and changed Ingress.
    let suspended: Vec<Value> = rendered_as(&settings, true)
        .into_iter()
        .filter(|o| o["kind"] == "Ingress" || o["metadata"]["name"] == "store-suspended")
        .collect();
    assert_eq!(suspended.len(), 2);
    // The backup and restore Jobs, in both storage modes, and the backup volume.
    let archives = archive_objects();
    // A store with custom domains: its Ingress (a rule and a TLS entry per host) and its
    // site-URL Job.
    let with_domains: Vec<Value> = rendered_with(&settings, false, &DOMAINS)
        .into_iter()
        .filter(|o| o["kind"] == "Ingress" || o["metadata"]["name"] == "store-siteurl")
        .collect();
    assert_eq!(with_domains.len(), 2);
    let upgrade = upgrade_objects(&settings);
    for (i, o) in rendered(&settings)
        .iter()
        .chain(&suspended)
        .chain(&with_domains)
        .chain(&archives)
        .chain(&upgrade)
        .enumerate()
    {
        let path = dir.join(format!(
            "{i:02}-{}.json",
            o["kind"].as_str().unwrap().to_lowercase()
        ));
        std::fs::write(&path, serde_json::to_vec_pretty(o).unwrap()).unwrap();
        files.push(path);
    }
    let tool =
        std::env::var("KUBERNETES_VALIDATE").unwrap_or_else(|_| "kubernetes-validate".into());
    for version in ["1.33.0", "1.37.0"] {
        let out = match Command::new(&tool)
            .args(["-k", version, "--strict", "--quiet"])
            .args(&files)
            .output()
        {
            Ok(out) => out,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!(
                    "SKIPPED schema validation: {tool} not found ({e}); `make test` installs it"
                );
                return;
            }
            Err(e) => panic!("{tool} is required in CI (pip install kubernetes-validate): {e}"),
        };
        assert!(
            out.status.success(),
            "schema validation against {version} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

#[test]
fn a_suspended_store_has_no_replicas_and_its_ingress_reaches_the_suspended_page() {
    let settings = StoreSettings::default();
    let running = rendered(&settings);
    let suspended = rendered_as(&settings, true);
    for (kind, name) in [("StatefulSet", "mariadb"), ("Deployment", "wordpress")] {
        assert_eq!(named(&running, kind, name).unwrap()["spec"]["replicas"], 1);
        assert_eq!(
            named(&suspended, kind, name).unwrap()["spec"]["replicas"],
            0
        );
    }
    let page = named(&suspended, "Service", "store-suspended").expect("the page's alias");
    assert_eq!(page["spec"]["type"], "ExternalName");
    assert_eq!(
        page["spec"]["externalName"],
        "urumi-suspended.urumi-system.svc.cluster.local"
    );
    let backend = |objects: &[Value]| {
        named(objects, "Ingress", "wordpress").unwrap()
            ["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
            .clone()
    };
    assert_eq!(backend(&running)["name"], "wordpress");
    assert_eq!(backend(&suspended)["name"], "store-suspended");
    assert_eq!(backend(&suspended)["port"]["number"], 80);
    let position = |kind: &str, name: &str| {
        suspended
            .iter()
            .position(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap()
    };
    assert!(
        position("Service", "store-suspended") < position("Ingress", "wordpress"),
        "the Service exists before the Ingress names it"
    );
    // Nothing else differs: same objects, apart from the alias, replicas and the backend.
    assert_eq!(suspended.len(), running.len() + 1);
    assert!(named(&running, "Service", "store-suspended").is_none());

    // Without a suspended page the Ingress keeps the (scaled-down) web Service.
    let no_page = StoreSettings {
        suspended_service: String::new(),
        ..StoreSettings::default()
    };
    let suspended = rendered_as(&no_page, true);
    assert!(named(&suspended, "Service", "store-suspended").is_none());
    assert_eq!(backend(&suspended)["name"], "wordpress");
    assert_eq!(
        named(&suspended, "Deployment", "wordpress").unwrap()["spec"]["replicas"],
        0
    );
}

#[test]
fn the_upgrade_job_runs_the_new_wp_cli_with_the_versions_to_reach_as_literal_env() {
    let settings = StoreSettings::default();
    let objects = upgrade_objects(&settings);
    let job = named(&objects, "Job", "store-upgrade-1").expect("the update Job is rendered");
    assert_eq!(job["metadata"]["labels"]["urumi.io/job"], "upgrade");
    let pod = &job["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], StoreSettings::default().images.wp_cli);
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(env("WORDPRESS_VERSION"), Some(json!("6.8.3")));
    assert_eq!(
        env("WOOCOMMERCE_VERSION"),
        Some(json!(urumi_workflows::store::settings::DEFAULT_WOOCOMMERCE))
    );
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(restricted_violations(pod), Vec::<String>::new());
    assert_eq!(job["metadata"]["namespace"], "store-bob-s-bikes");
    // It runs beside the store's workloads instead of the setup Job (never with it): the
    // same resources keep the plan's quota check above true.
    let setup = named(&rendered(&settings), "Job", "store-setup")
        .map(|j| j["spec"]["template"]["spec"]["containers"][0]["resources"].clone());
    assert_eq!(setup, Some(c["resources"].clone()));
    let script = named(&objects, "ConfigMap", "store-upgrade").expect("the script ConfigMap");
    assert!(
        script["data"]["upgrade.sh"]
            .as_str()
            .unwrap()
            .contains("URUMI-UPGRADE")
    );
}

#[test]
fn the_web_tier_syncs_core_from_its_image_before_apache_starts() {
    let objects = rendered(&StoreSettings::default());
    let web = named(&objects, "Deployment", "wordpress").unwrap();
    let init = &web["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["name"], "core");
    assert_eq!(
        init["image"],
        web["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    let script = init["command"][2].as_str().unwrap();
    assert!(script.contains("--exclude=./wp-content"), "{script}");
    assert!(
        script.starts_with("if [ -e /var/www/html/wp-includes/version.php ]"),
        "a fresh volume is left to the image's entrypoint: {script}"
    );
}
