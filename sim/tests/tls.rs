//! The simulator over TLS: kube-rs and kubectl verify the server against the CA the
//! simulator minted and wrote into its kubeconfig, as they would a real cluster's.

use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use urumi_sim::Simulator;

// Multi-threaded: kubectl runs as a blocking child process while the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_and_kubectl_talk_to_the_simulator_over_verified_tls() {
    let sim = Simulator::builder().tls(true).start().await.unwrap();
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    let kc = Kubeconfig::read_from(sim.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": "over-tls" } })).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert!(namespaces.get_opt("over-tls").await.unwrap().is_some());

    // A client that does not trust the minted CA is refused by certificate verification.
    let mut untrusting = kube::Config::new(sim.url().parse().unwrap());
    untrusting.accept_invalid_certs = false;
    let err = Api::<Namespace>::all(Client::try_from(untrusting).unwrap())
        .list(&Default::default())
        .await
        .unwrap_err();
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "expected a TLS failure, got {err}"
    );

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let kubectl = std::env::var("KUBECTL")
        .unwrap_or_else(|_| root.join(".tools/bin/kubectl").display().to_string());
    if !std::path::Path::new(&kubectl).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kubectl is required in CI (sim/scripts/install-kubectl.sh)"
        );
        eprintln!(
            "SKIPPED the kubectl half: {kubectl} not found; run sim/scripts/install-kubectl.sh"
        );
        sim.shutdown().await;
        return;
    }
    let out = Command::new(&kubectl)
        .args([
            "--kubeconfig",
            &sim.kubeconfig_path().display().to_string(),
            "get",
            "namespace",
            "over-tls",
            "-o",
            "name",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/over-tls"
    );
    sim.shutdown().await;
}
