//! The soak's API client: creates stores (each with its own `Idempotency-Key`, so that a
//! request whose answer was lost — the API killed, Postgres restarted — is sent again
//! safely) and deletes some of them while they provision. Every request is retried until
//! it gets an answer or the deadline passes; the answers are what the audit check expects.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

/// What the driver asked for and what the API answered.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Store name → the store's id once a create was accepted.
    pub created: BTreeMap<String, Uuid>,
    /// Stores whose deletion the API accepted (or answered "already deleted").
    pub deleted: BTreeMap<Uuid, String>,
    /// Requests that got no acceptance before the deadline, or a refusal no retry fixes.
    pub refused: Vec<String>,
    /// Requests sent again after a transport error, 5xx or 429.
    pub retries: u64,
}

/// A cheap handle on the API.
#[derive(Debug, Clone)]
pub struct Api {
    pub url: String,
    token: String,
    http: reqwest::Client,
    pub ledger: Arc<Mutex<Ledger>>,
}

enum Answer {
    Done(Value),
    /// Status and body of a refusal that retrying does not change.
    Refused(StatusCode, String),
}

impl Api {
    pub fn new(url: String, token: String) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client");
        Self {
            url,
            token,
            http,
            ledger: Arc::default(),
        }
    }

    /// The bearer token (the follower uses it too).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends the request `build` makes until it gets a 2xx or a 4xx other than 429, or
    /// `deadline` passes (then `None`).
    async fn send(
        &self,
        deadline: Instant,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Option<Answer> {
        let mut first = true;
        while Instant::now() < deadline {
            if !first {
                self.ledger.lock().expect("ledger").retries += 1;
            }
            first = false;
            let wait = match build().bearer_auth(&self.token).send().await {
                Ok(r) if r.status().is_success() => {
                    if let Ok(v) = r.json::<Value>().await {
                        return Some(Answer::Done(v));
                    }
                    // The body was cut off: ask again (the request is idempotent).
                    Duration::from_millis(300)
                }
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                    let secs = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1);
                    Duration::from_secs(secs.clamp(1, 5))
                }
                Ok(r) if r.status().is_server_error() => Duration::from_millis(300),
                Ok(r) => {
                    let status = r.status();
                    return Some(Answer::Refused(status, r.text().await.unwrap_or_default()));
                }
                Err(_) => Duration::from_millis(300),
            };
            tokio::time::sleep(wait).await;
        }
        None
    }

    /// Creates store `name` (idempotency key `key`); records its id. Returns the id.
    pub async fn create(&self, name: &str, key: &str, deadline: Instant) -> Option<Uuid> {
        let body = json!({ "name": name, "engine": "woocommerce" });
        let answer = self
            .send(deadline, || {
                self.http
                    .post(format!("{}/api/v1/stores", self.url))
                    .header("Idempotency-Key", key)
                    .json(&body)
            })
            .await;
        let mut l = self.ledger.lock().expect("ledger");
        match answer {
            Some(Answer::Done(v)) => {
                let id = v
                    .pointer("/store/id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok());
                match id {
                    Some(id) => {
                        l.created.insert(name.to_owned(), id);
                    }
                    None => l
                        .refused
                        .push(format!("create {name}: answer without a store id: {v}")),
                }
                id
            }
            Some(Answer::Refused(s, body)) => {
                l.refused.push(format!("create {name}: {s} {body}"));
                None
            }
            None => {
                l.refused
                    .push(format!("create {name}: no answer before the deadline"));
                None
            }
        }
    }

    /// Deletes store `id`. A 409 "deleted" to a repeated request means an earlier one was
    /// committed before its answer was lost; it counts as accepted.
    pub async fn delete(&self, name: &str, id: Uuid, deadline: Instant) {
        let answer = self
            .send(deadline, || {
                self.http.delete(format!("{}/api/v1/stores/{id}", self.url))
            })
            .await;
        let accepted = match &answer {
            Some(Answer::Done(_)) => true,
            Some(Answer::Refused(StatusCode::CONFLICT, _)) => {
                self.status(id, deadline).await.as_deref() == Some("deleted")
            }
            _ => false,
        };
        let mut l = self.ledger.lock().expect("ledger");
        if accepted {
            l.deleted.insert(id, name.to_owned());
        } else {
            let why = match answer {
                Some(Answer::Refused(s, body)) => format!("{s} {body}"),
                _ => "no answer before the deadline".into(),
            };
            l.refused.push(format!("delete {name} ({id}): {why}"));
        }
    }

    /// A store's status through the API.
    pub async fn status(&self, id: Uuid, deadline: Instant) -> Option<String> {
        match self
            .send(deadline, || {
                self.http.get(format!("{}/api/v1/stores/{id}", self.url))
            })
            .await
        {
            Some(Answer::Done(v)) => v.get("status").and_then(Value::as_str).map(String::from),
            _ => None,
        }
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        self.http
            .get(format!("{}/readyz", self.url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }
}
