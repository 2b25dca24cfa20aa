//! Clients the identity tests share: the cluster admin (no token) and a process started as a
//! ServiceAccount (its token in a kubeconfig from `kubeconfig_with_token`); JSON fixtures.

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;
use serde_json::Value;
use urumi_sim::SimHandle;

/// The cluster admin: no `Authorization` header.
pub fn admin_client(sim: &SimHandle) -> Client {
    let mut config = kube::Config::new(sim.url().parse().expect("url parses"));
    config.default_namespace = "default".into();
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

/// A client built the way a process started as the token's ServiceAccount would build it.
pub async fn token_client(sim: &SimHandle, token: &str) -> Client {
    let kubeconfig =
        Kubeconfig::from_yaml(&sim.kubeconfig_with_token(token)).expect("kubeconfig parses");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("config from kubeconfig");
    config.default_retry = false;
    Client::try_from(config).expect("client builds")
}

/// A typed object from a JSON fixture.
pub fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("fixture deserializes")
}
