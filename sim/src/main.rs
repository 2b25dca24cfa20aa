//! `urumi-sim`: runs the Kubernetes API simulator in the foreground.
//!
//! Environment: `SIM_ADDR` (default `127.0.0.1:6443`), `SIM_KUBECONFIG` (default
//! `./urumi-sim.kubeconfig`), `SIM_TLS=1` (serve HTTPS with a CA minted at
//! start, written into the kubeconfig), `SIM_FAULTS` (a fault config JSON file), `SIM_TIMINGS` (a
//! timings JSON file), `SIM_SNAPSHOT` (a snapshot file kept across restarts).

use anyhow::Context;
use urumi_sim::{FaultConfig, Simulator, Timings};

fn read_json<T: serde::de::DeserializeOwned>(var: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(var) {
        Ok(path) if !path.is_empty() => {
            let raw = std::fs::read(&path).with_context(|| format!("reading {var}={path}"))?;
            Ok(Some(
                serde_json::from_slice(&raw).with_context(|| format!("parsing {var}={path}"))?,
            ))
        }
        _ => Ok(None),
    }
}

// One thread: every API operation takes the store lock anyway, and a single allocator
// arena keeps the resident set small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let addr = std::env::var("SIM_ADDR").unwrap_or_else(|_| "127.0.0.1:6443".into());
    let addr = addr
        .parse()
        .with_context(|| format!("SIM_ADDR={addr} is not host:port"))?;
    let kubeconfig =
        std::env::var("SIM_KUBECONFIG").unwrap_or_else(|_| "urumi-sim.kubeconfig".into());
    let tls = std::env::var("SIM_TLS").is_ok_and(|v| v == "1" || v == "true");
    let mut builder = Simulator::builder()
        .addr(addr)
        .kubeconfig_path(&kubeconfig)
        .tls(tls);
    if let Some(f) = read_json::<FaultConfig>("SIM_FAULTS")? {
        builder = builder.faults(f);
    }
    if let Some(t) = read_json::<Timings>("SIM_TIMINGS")? {
        builder = builder.timings(t);
    }
    if let Ok(p) = std::env::var("SIM_SNAPSHOT")
        && !p.is_empty()
    {
        builder = builder.snapshot(p);
    }
    let sim = builder.start().await.context("starting the simulator")?;
    println!("urumi-sim listening on {}", sim.url());
    println!("kubeconfig written to {}", sim.kubeconfig_path().display());
    println!(
        "try: KUBECONFIG={} kubectl get namespaces",
        sim.kubeconfig_path().display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("shutting down");
    sim.shutdown().await;
    Ok(())
}
