//! What helm v4 asks of the simulator when it installs, upgrades, rolls back and uninstalls
//! helm/urumi (scripts/check-helm-install.sh drives the real helm): autoscaling/v2
//! HorizontalPodAutoscalers served and discoverable next to the group's other versions.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use urumi_sim::{SimHandle, Simulator};

async fn start() -> (SimHandle, Client) {
    let sim = Simulator::builder()
        .start()
        .await
        .expect("simulator starts");
    let client = Client::try_from(kube::Config::new(sim.url().parse().expect("url parses")))
        .expect("client builds");
    (sim, client)
}

async fn get_json(client: &Client, path: &str) -> Value {
    let req = http::Request::get(path)
        .body(Vec::new())
        .expect("request builds");
    client.request::<Value>(req).await.expect("GET answers JSON")
}

#[tokio::test]
async fn autoscaling_v2_is_discoverable_and_horizontal_pod_autoscalers_are_served() {
    let (sim, client) = start().await;
    let groups = get_json(&client, "/apis").await;
    let autoscaling = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .expect("the autoscaling group is listed");
    assert_eq!(autoscaling["preferredVersion"]["groupVersion"], "autoscaling/v2");
    let list = get_json(&client, "/apis/autoscaling/v2").await;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]
    );
    // The groups served at v1 still say v1.
    let policy = get_json(&client, "/apis/policy").await;
    assert_eq!(policy["preferredVersion"]["groupVersion"], "policy/v1");

    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "default");
    let hpa = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "worker"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
                 "minReplicas": 2, "maxReplicas": 6},
    });
    let made = api
        .patch("worker", &PatchParams::apply("helm").force(), &Patch::Apply(&hpa))
        .await
        .expect("apply creates the autoscaler");
    assert_eq!(made.metadata.generation, Some(1));
    let got = api.get("worker").await.expect("get");
    assert_eq!(got.spec.expect("spec").max_replicas, 6);
    assert_eq!(got.uid(), made.uid());
    api.delete("worker", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("worker").await.expect("get_opt").is_none());
    sim.shutdown().await;
}
