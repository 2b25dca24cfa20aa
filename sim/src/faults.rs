//! Fault injection (error rates with a status, added latency, dropped connections, hangs;
//! per verb, resource and namespace; deterministic with a seed) and the request log that
//! tests read.
//!
//! Most faults strike *before* a request is served, so nothing was applied. An
//! *after-apply* fault (`afterApplyRate`) strikes a mutating request *after* it was applied
//! to the store: the client then gets a 5xx (or a dropped connection) for a write that
//! happened, as from a real API server that commits and then times out.
//!
//! ```text
//!   request ─► decide ─┬─ Drop / Hang / Fail ─────────────────► answer (nothing applied)
//!                      ├─ Pass ──────────► serve ─────────────► answer
//!                      └─ AfterApply ────► serve (applied) ───► 5xx or dropped connection
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

fn default_status() -> u16 {
    500
}

/// The verbs that change stored state, the only ones an after-apply fault strikes.
pub const MUTATING_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// How an after-apply fault answers a request it let through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterApply {
    /// Answer the rule's `status` (a 5xx such as 500, 503 or 504).
    #[default]
    Error,
    /// Close the connection without answering.
    Drop,
}

/// One fault rule. Unset selectors match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Plural resource name, optionally with a subresource (`pods/log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Probability (0..=1) that a matching request fails with `status`.
    #[serde(default)]
    pub error_rate: f64,
    /// Status of injected errors: 500, 503, 429, 409, ...
    #[serde(default = "default_status")]
    pub status: u16,
    /// `Retry-After` seconds on injected errors (429 defaults to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// Latency added to every matching request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability that the connection is closed without a response.
    #[serde(default)]
    pub drop_rate: f64,
    /// Probability that the request hangs (for `hang_ms`, default one hour).
    #[serde(default)]
    pub hang_rate: f64,
    /// How long a hang lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_ms: Option<u64>,
    /// Probability that a matching *mutating* request (see [`MUTATING_VERBS`]) is applied
    /// and then answered as `after_apply` says: the write happened, the client is told it
    /// failed. Other verbs are never struck by it.
    #[serde(default)]
    pub after_apply_rate: f64,
    /// How an after-apply fault answers: `error` (with `status`) or `drop`.
    #[serde(default)]
    pub after_apply: AfterApply,
}

impl FaultRule {
    /// A rule matching every request.
    pub fn any() -> Self {
        Self {
            status: 500,
            ..Default::default()
        }
    }

    /// Restricts the rule to a verb.
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.into());
        self
    }

    /// Restricts the rule to a resource.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Restricts the rule to a namespace.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Fails `rate` of matching requests with `status`.
    pub fn error(mut self, rate: f64, status: u16) -> Self {
        self.error_rate = rate;
        self.status = status;
        self
    }

    /// Adds latency.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency_ms = d.as_millis() as u64;
        self
    }

    /// Drops `rate` of matching connections.
    pub fn drop_connections(mut self, rate: f64) -> Self {
        self.drop_rate = rate;
        self
    }

    /// Hangs `rate` of matching requests for `d`.
    pub fn hang(mut self, rate: f64, d: Duration) -> Self {
        self.hang_rate = rate;
        self.hang_ms = Some(d.as_millis() as u64);
        self
    }

    /// Applies `rate` of matching mutating requests, then answers them with `status`.
    pub fn error_after_apply(mut self, rate: f64, status: u16) -> Self {
        self.after_apply_rate = rate;
        self.after_apply = AfterApply::Error;
        self.status = status;
        self
    }

    /// Applies `rate` of matching mutating requests, then closes their connection unanswered.
    pub fn drop_after_apply(mut self, rate: f64) -> Self {
        self.after_apply_rate = rate;
        self.after_apply = AfterApply::Drop;
        self
    }

    fn matches(&self, verb: &str, resource: &str, ns: Option<&str>) -> bool {
        self.verb.as_deref().is_none_or(|v| v == "*" || v == verb)
            && self
                .resource
                .as_deref()
                .is_none_or(|r| r == "*" || r == resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| n == "*" || Some(n) == ns)
    }
}

/// A fault configuration: a seed and rules (the file format of `SIM_FAULTS` and the body
/// of `PUT /_sim/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// RNG seed; the same seed and request sequence give the same faults.
    #[serde(default)]
    pub seed: u64,
    /// Rules; every matching rule applies (latencies add up, the first failure wins).
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// What to do to a request.
#[derive(Debug)]
pub enum FaultAction {
    /// Serve it.
    Pass,
    /// Answer with this error.
    Fail(ApiError),
    /// Close the connection without answering.
    Drop,
    /// Wait this long before serving it.
    Hang(Duration),
    /// Serve it (apply it), then answer with this error instead of the real answer.
    FailAfterApply(ApiError),
    /// Serve it (apply it), then close the connection without answering.
    DropAfterApply,
}

#[derive(Debug)]
struct FaultState {
    config: FaultConfig,
    rng: StdRng,
    /// Faults decided since start (never reset): every action but `Pass`.
    injected: u64,
}

/// Runtime-adjustable faults (cheap to clone).
#[derive(Debug, Clone)]
pub struct Faults(Arc<Mutex<FaultState>>);

impl Default for Faults {
    fn default() -> Self {
        Self::new(FaultConfig::default())
    }
}

impl Faults {
    /// Faults from a configuration.
    pub fn new(config: FaultConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        Self(Arc::new(Mutex::new(FaultState {
            config,
            rng,
            injected: 0,
        })))
    }

    /// Replaces the configuration (and reseeds).
    pub fn set(&self, config: FaultConfig) {
        let mut s = self.0.lock().expect("fault lock");
        s.rng = StdRng::seed_from_u64(config.seed);
        s.config = config;
    }

    /// Adds a rule.
    pub fn add(&self, rule: FaultRule) {
        self.0.lock().expect("fault lock").config.rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.0.lock().expect("fault lock").config.rules.clear();
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.0.lock().expect("fault lock").config.clone()
    }

    /// How many faults were injected since start (every drop, hang and error, before or
    /// after apply; added latency alone is not a fault). Replacing the rules keeps the count.
    pub fn injected(&self) -> u64 {
        self.0.lock().expect("fault lock").injected
    }

    /// Decides the fate of one request.
    pub fn decide(&self, verb: &str, resource: &str, ns: Option<&str>) -> (Duration, FaultAction) {
        let mut s = self.0.lock().expect("fault lock");
        let FaultState {
            config,
            rng,
            injected,
        } = &mut *s;
        let mutating = MUTATING_VERBS.contains(&verb);
        let mut latency = Duration::ZERO;
        let mut action = FaultAction::Pass;
        for r in config
            .rules
            .iter()
            .filter(|r| r.matches(verb, resource, ns))
        {
            latency += Duration::from_millis(r.latency_ms);
            if !matches!(action, FaultAction::Pass) {
                continue;
            }
            if r.drop_rate > 0.0 && rng.random::<f64>() < r.drop_rate {
                action = FaultAction::Drop;
            } else if r.hang_rate > 0.0 && rng.random::<f64>() < r.hang_rate {
                action = FaultAction::Hang(Duration::from_millis(r.hang_ms.unwrap_or(3_600_000)));
            } else if r.error_rate > 0.0 && rng.random::<f64>() < r.error_rate {
                let ra = r
                    .retry_after_seconds
                    .or(if r.status == 429 { Some(1) } else { None });
                action = FaultAction::Fail(ApiError::injected(r.status, ra));
            } else if mutating
                && r.after_apply_rate > 0.0
                && rng.random::<f64>() < r.after_apply_rate
            {
                action = match r.after_apply {
                    AfterApply::Error => {
                        FaultAction::FailAfterApply(ApiError::injected(r.status, None))
                    }
                    AfterApply::Drop => FaultAction::DropAfterApply,
                };
            }
        }
        if !matches!(action, FaultAction::Pass) {
            *injected += 1;
        }
        (latency, action)
    }
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Sequence number, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Kubernetes verb (`get`, `list`, `watch`, `create`, ...), or `discovery`/`admin`.
    pub verb: String,
    /// Resource (with `/subresource`), empty for discovery.
    pub resource: String,
    /// Namespace, when the request had one.
    pub namespace: Option<String>,
    /// Object name, when the request had one.
    pub name: Option<String>,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// Response status (0 for a dropped connection).
    pub status: u16,
    /// Time to the response head, in milliseconds.
    pub latency_ms: f64,
    /// Whether the request changed stored state (a new `resourceVersion`).
    pub changed: bool,
    /// Whether a fault was injected.
    pub injected: bool,
    /// The name of the object this request created (a `create`, or an apply that created
    /// its object), also when an after-apply fault then hid the answer; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `User-Agent`.
    pub user_agent: String,
    /// The authenticated user: `system:admin` for the cluster admin (no token, or the
    /// kubeconfig's), `system:serviceaccount:<ns>:<name>` for a ServiceAccount token;
    /// `None` when authentication failed (401).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The request log (cheap to clone; keeps the last 10,000 requests).
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<(u64, VecDeque<RequestRecord>)>>);

const LOG_CAP: usize = 10_000;

impl RequestLog {
    /// Appends a record (its `seq` is assigned here).
    pub fn push(&self, mut rec: RequestRecord) {
        let mut g = self.0.lock().expect("log lock");
        g.0 += 1;
        rec.seq = g.0;
        g.1.push_back(rec);
        while g.1.len() > LOG_CAP {
            g.1.pop_front();
        }
    }

    /// Every retained record, oldest first.
    pub fn entries(&self) -> Vec<RequestRecord> {
        self.0.lock().expect("log lock").1.iter().cloned().collect()
    }

    /// Records after sequence number `seq`.
    pub fn since(&self, seq: u64) -> Vec<RequestRecord> {
        self.0
            .lock()
            .expect("log lock")
            .1
            .iter()
            .filter(|r| r.seq > seq)
            .cloned()
            .collect()
    }

    /// The last sequence number issued (a mark for [`RequestLog::since`]).
    pub fn mark(&self) -> u64 {
        self.0.lock().expect("log lock").0
    }

    /// Forgets every record.
    pub fn clear(&self) {
        self.0.lock().expect("log lock").1.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_injects_the_same_faults() {
        let cfg = FaultConfig {
            seed: 7,
            rules: vec![FaultRule::any().verb("get").error(0.5, 503)],
        };
        let run = || {
            let f = Faults::new(cfg.clone());
            (0..50)
                .map(|_| matches!(f.decide("get", "pods", None).1, FaultAction::Fail(_)))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert!(run().iter().any(|x| *x) && run().iter().any(|x| !*x));
    }

    #[test]
    fn rules_only_match_their_verb_resource_and_namespace() {
        let f = Faults::new(FaultConfig {
            seed: 1,
            rules: vec![
                FaultRule::any()
                    .verb("create")
                    .resource("pods")
                    .namespace("a")
                    .error(1.0, 500),
            ],
        });
        assert!(matches!(
            f.decide("create", "pods", Some("a")).1,
            FaultAction::Fail(_)
        ));
        assert!(matches!(
            f.decide("create", "pods", Some("b")).1,
            FaultAction::Pass
        ));
        assert!(matches!(
            f.decide("get", "pods", Some("a")).1,
            FaultAction::Pass
        ));
    }

    #[test]
    fn after_apply_faults_strike_only_mutating_verbs_and_every_fault_is_counted() {
        let f = Faults::new(FaultConfig {
            seed: 3,
            rules: vec![FaultRule::any().error_after_apply(1.0, 503)],
        });
        for verb in ["get", "list", "watch"] {
            assert!(matches!(f.decide(verb, "jobs", None).1, FaultAction::Pass));
        }
        assert_eq!(f.injected(), 0);
        for verb in MUTATING_VERBS {
            match f.decide(verb, "jobs", Some("a")).1 {
                FaultAction::FailAfterApply(e) => assert_eq!(e.code, 503),
                other => panic!("{verb}: {other:?}"),
            }
        }
        f.set(FaultConfig {
            seed: 3,
            rules: vec![FaultRule::any().verb("create").drop_after_apply(1.0)],
        });
        assert!(matches!(
            f.decide("create", "secrets", Some("a")).1,
            FaultAction::DropAfterApply
        ));
        assert!(matches!(
            f.decide("patch", "secrets", Some("a")).1,
            FaultAction::Pass
        ));
        // Replacing the rules keeps the count: five errors and one drop.
        assert_eq!(f.injected(), 6);
    }

    #[test]
    fn after_apply_rules_read_and_write_their_json_form() {
        let rule: FaultRule = serde_json::from_str(
            r#"{"verb": "create", "afterApplyRate": 0.25, "afterApply": "drop"}"#,
        )
        .unwrap();
        assert_eq!(rule, FaultRule::any().verb("create").drop_after_apply(0.25));
        let back = serde_json::to_value(FaultRule::any().error_after_apply(0.1, 504)).unwrap();
        assert_eq!(back["afterApplyRate"], 0.1);
        assert_eq!(back["afterApply"], "error");
        assert_eq!(back["status"], 504);
        assert!(serde_json::from_str::<FaultRule>(r#"{"afterApply": "later"}"#).is_err());
    }
}
