//! After-apply faults through a real kube-rs client: the simulator applies a mutating
//! request and then answers 5xx or drops the connection, so the client sees a failure for a
//! write that happened — the object is there afterwards, and the request log says so.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use urumi_sim::{FaultConfig, FaultRule, SimHandle, Simulator};

fn client_for(sim: &SimHandle) -> Client {
    let mut config = kube::Config::new(sim.url().parse().expect("url parses"));
    config.default_namespace = "default".into();
    // No retries: the test must see the injected answer, not a retry of it.
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

fn cm(name: &str, data: &Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data}))
        .expect("fixture deserializes")
}

async fn stats(sim: &SimHandle) -> Value {
    admin_get(&format!("{}/_sim/stats", sim.url())).await
}

async fn admin_get(url: &str) -> Value {
    // Plain HTTP/1.1 over TCP, enough for the admin endpoint.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("plain http");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .expect("connects");
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("writes");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("reads");
    let text = String::from_utf8_lossy(&out);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1);
    serde_json::from_str(body).expect("a JSON body")
}

#[tokio::test]
async fn a_create_answered_500_after_apply_has_still_created_its_object() {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let cms: Api<ConfigMap> = Api::default_namespaced(client_for(&sim));
    sim.faults().set(FaultConfig {
        seed: 1,
        rules: vec![
            FaultRule::any()
                .verb("create")
                .resource("configmaps")
                .error_after_apply(1.0, 500),
        ],
    });
    let mark = sim.request_log().mark();
    let err = cms
        .create(&PostParams::default(), &cm("committed", &json!({"a": "1"})))
        .await
        .expect_err("the client is told the create failed");
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 500, "{s:?}"),
        other => panic!("expected a 500 Status, got {other:?}"),
    }
    // Reads are not struck by after-apply rules: the object is there, as applied.
    let got = cms.get("committed").await.expect("the object exists");
    assert_eq!(got.data.unwrap()["a"], "1");
    // Creating it again (what a client that retried would do) is AlreadyExists, not a second
    // object.
    sim.faults().clear();
    let again = cms
        .create(&PostParams::default(), &cm("committed", &json!({"a": "2"})))
        .await
        .expect_err("a second create conflicts");
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 409),
        "{again:?}"
    );
    let log = sim.request_log().since(mark);
    let creates: Vec<_> = log.iter().filter(|r| r.verb == "create").collect();
    assert_eq!(creates.len(), 2, "{creates:?}");
    assert!(creates[0].injected && creates[0].changed && creates[0].status == 500);
    assert_eq!(creates[0].created.as_deref(), Some("committed"));
    assert!(!creates[1].injected && creates[1].status == 409 && creates[1].created.is_none());
    assert_eq!(sim.faults().injected(), 1);
    assert_eq!(stats(&sim).await["faultsInjected"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_patch_whose_connection_drops_after_apply_was_applied() {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let cms: Api<ConfigMap> = Api::default_namespaced(client_for(&sim));
    let pp = PatchParams::apply("soak").force();
    cms.patch(
        "settings",
        &pp,
        &Patch::Apply(cm("settings", &json!({"v": "1"}))),
    )
    .await
    .expect("first apply");
    sim.faults().set(FaultConfig {
        seed: 9,
        rules: vec![FaultRule::any().verb("patch").drop_after_apply(1.0)],
    });
    let err = cms
        .patch(
            "settings",
            &pp,
            &Patch::Apply(cm("settings", &json!({"v": "2"}))),
        )
        .await
        .expect_err("the connection is dropped");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "a transport error: {err:?}"
    );
    sim.faults().clear();
    let got = cms.get("settings").await.expect("the object exists");
    assert_eq!(got.data.unwrap()["v"], "2", "the dropped patch was applied");
    let last = sim
        .request_log()
        .entries()
        .into_iter()
        .rfind(|r| r.verb == "patch")
        .expect("the patch is logged");
    assert!(
        last.injected && last.changed && last.status == 0,
        "{last:?}"
    );
    assert!(
        last.created.is_none(),
        "an apply to an existing object creates nothing"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn after_apply_rates_are_seeded_and_apply_every_write_they_strike() {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let cms: Api<ConfigMap> = Api::default_namespaced(client_for(&sim));
    let run = || async {
        sim.faults().set(FaultConfig {
            seed: 42,
            rules: vec![
                FaultRule::any()
                    .resource("configmaps")
                    .error_after_apply(0.3, 503),
            ],
        });
        let mut outcomes = Vec::new();
        for i in 0..100 {
            let name = format!("c{i}");
            let r = cms
                .create(&PostParams::default(), &cm(&name, &json!({})))
                .await;
            outcomes.push((name, r.is_ok()));
        }
        outcomes
    };
    let first = run().await;
    let failed = first.iter().filter(|(_, ok)| !ok).count();
    assert!(
        (15..=45).contains(&failed),
        "about 30 of 100 fail, got {failed}"
    );
    // Every create was applied, answered 201 or not.
    for (name, _) in &first {
        cms.get(name)
            .await
            .expect("every struck create was applied");
    }
    let names: Vec<String> = cms
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names.len(), 100);
    // The same seed and sequence strike the same requests.
    sim.faults().clear();
    for (name, _) in &first {
        cms.delete(name, &Default::default()).await.unwrap();
    }
    let second = run().await;
    let pattern = |v: &[(String, bool)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(pattern(&first), pattern(&second));
    sim.shutdown().await;
}
