//! The soak's hands on the Kubernetes simulator's admin endpoint (`/_sim/...`): fault
//! bursts, the request log (drained continuously: the simulator keeps only its last 10,000
//! requests) and namespace checks. From the log it keeps what the invariants need: every
//! object creation (also those an after-apply fault hid from the client) and the injected
//! faults.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

/// An object's identity: resource, namespace (empty when cluster-scoped), name.
pub type ObjectKey = (String, String, String);

/// What the drained request log showed.
#[derive(Debug, Default)]
pub struct LogSummary {
    /// The last sequence number read.
    pub since: u64,
    /// How many times each object was created.
    pub creations: BTreeMap<ObjectKey, u32>,
    /// Requests the simulator answered with an injected fault (by its log).
    pub injected: u64,
    /// Of those, writes that changed the store and were then answered 5xx or dropped (an
    /// after-apply fault on a write that changed nothing is not counted here).
    pub hidden_writes: u64,
    /// Records lost because the log wrapped between two reads.
    pub gaps: u64,
    /// Requests read.
    pub requests: u64,
}

impl LogSummary {
    /// Objects created more than once, with their count.
    pub fn duplicates(&self) -> Vec<(&ObjectKey, u32)> {
        self.creations
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k, *n))
            .collect()
    }

    /// Per namespace, the distinct setup Jobs (`store-setup-N`) created in it.
    pub fn setup_jobs(&self) -> BTreeMap<&str, BTreeSet<&str>> {
        let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (res, ns, name) in self.creations.keys() {
            if res == "jobs" && name.starts_with("store-setup-") {
                out.entry(ns.as_str()).or_default().insert(name.as_str());
            }
        }
        out
    }
}

/// A client of one simulator.
#[derive(Debug, Clone)]
pub struct Sim {
    pub url: String,
    http: reqwest::Client,
}

impl Sim {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client");
        Self { url, http }
    }

    /// Replaces the fault rules (and reseeds).
    ///
    /// # Errors
    /// When the simulator refuses or does not answer.
    pub async fn set_faults(&self, seed: u64, rules: &[Value]) -> anyhow::Result<()> {
        self.http
            .put(format!("{}/_sim/faults", self.url))
            .json(&json!({ "seed": seed, "rules": rules }))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `GET /_sim/stats`.
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self
            .http
            .get(format!("{}/_sim/stats", self.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Reads the request log after `summary.since` into `summary`.
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn drain(&self, summary: &mut LogSummary) -> anyhow::Result<()> {
        let records: Vec<Value> = self
            .http
            .get(format!(
                "{}/_sim/requests?since={}",
                self.url, summary.since
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
            .context("the request log")?;
        for r in records {
            let seq = r.get("seq").and_then(Value::as_u64).unwrap_or(0);
            if seq > summary.since + 1 {
                summary.gaps += seq - summary.since - 1;
            }
            summary.since = summary.since.max(seq);
            summary.requests += 1;
            let s = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            if r.get("injected").and_then(Value::as_bool) == Some(true) {
                summary.injected += 1;
                if r.get("changed").and_then(Value::as_bool) == Some(true) {
                    summary.hidden_writes += 1;
                }
            }
            if let Some(name) = r.get("created").and_then(Value::as_str) {
                *summary
                    .creations
                    .entry((s("resource"), s("namespace"), name.to_owned()))
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    /// The HTTP status of `GET /api/v1/namespaces/{ns}` (200 present, 404 gone).
    ///
    /// # Errors
    /// When the simulator does not answer.
    pub async fn namespace_status(&self, ns: &str) -> anyhow::Result<u16> {
        Ok(self
            .http
            .get(format!("{}/api/v1/namespaces/{ns}", self.url))
            .send()
            .await?
            .status()
            .as_u16())
    }
}
