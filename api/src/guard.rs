//! Guardrails: the per-actor create-rate limiter, the caps on active stores and the request
//! body limit (which also refuses NUL bytes in URIs). Each refusal is a problem document
//! (429 with `Retry-After`, 413, 400).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};
use sqlx::PgConnection;

use crate::problem::ApiError;

/// A token bucket per actor (per API process: N replicas allow N times the rate).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    #[must_use]
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `actor`, or says how long until one is available.
    ///
    /// # Errors
    /// The wait.
    pub fn take(&self, actor: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("limiter lock");
        let (tokens, at) = buckets.entry(actor.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The caps on active stores (not deleted), global and per actor.
///
/// Counting live stores on every create would cost a scan and serialise creates. So counts
/// are cached for a second: while a cached count is more than `exact_within` below its cap,
/// the create passes without a lock; closer to a cap, the check is exact — an advisory
/// lock serialises the creates, which count inside their own transaction. A cap can thus be
/// passed only if more than `exact_within` creates land within one cache second.
#[derive(Debug)]
pub struct Caps {
    max_total: i64,
    max_per_actor: i64,
    exact_within: i64,
    cached: Mutex<HashMap<String, (i64, Instant)>>,
}

const CACHE_FOR: Duration = Duration::from_secs(1);
const TOTAL: &str = "\0total";

impl Caps {
    /// Caps of `max_total` and `max_per_actor` live stores.
    #[must_use]
    pub fn new(max_total: i64, max_per_actor: i64, exact_within: i64) -> Self {
        Self {
            max_total,
            max_per_actor,
            exact_within,
            cached: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, key: &str) -> Option<i64> {
        let cached = self.cached.lock().expect("caps lock");
        cached
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_FOR)
            .map(|(n, _)| *n)
    }

    fn remember(&self, key: &str, n: i64) {
        let mut cached = self.cached.lock().expect("caps lock");
        if cached.len() > 10_000 {
            cached.retain(|_, (_, at)| at.elapsed() < CACHE_FOR);
        }
        cached.insert(key.to_owned(), (n, Instant::now()));
    }

    async fn count(tx: &mut PgConnection, actor: Option<&str>) -> Result<i64, ApiError> {
        Ok(match actor {
            None => {
                sqlx::query_scalar!(
                    r#"SELECT count(*) AS "n!" FROM urumi.stores WHERE status <> 'deleted'"#
                )
                .fetch_one(&mut *tx)
                .await?
            }
            Some(a) => {
                sqlx::query_scalar!(
                    r#"SELECT count(*) AS "n!" FROM urumi.stores
                       WHERE status <> 'deleted' AND created_by = $1"#,
                    a,
                )
                .fetch_one(&mut *tx)
                .await?
            }
        })
    }

    /// Refuses a create when the platform or `actor` has the most active stores allowed.
    /// Runs inside the create's transaction.
    ///
    /// # Errors
    /// [`ApiError::TooManyRequests`] at a cap; database errors.
    pub async fn check(&self, tx: &mut PgConnection, actor: &str) -> Result<(), ApiError> {
        let total = match self.fresh(TOTAL) {
            Some(n) => n,
            None => {
                let n = Self::count(tx, None).await?;
                self.remember(TOTAL, n);
                n
            }
        };
        let mine = match self.fresh(actor) {
            Some(n) => n,
            None => {
                let n = Self::count(tx, Some(actor)).await?;
                self.remember(actor, n);
                n
            }
        };
        let far = total + self.exact_within < self.max_total
            && mine + self.exact_within < self.max_per_actor;
        if far {
            return Ok(());
        }
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('urumi.store_caps'))")
            .execute(&mut *tx)
            .await?;
        let total = Self::count(tx, None).await?;
        let mine = Self::count(tx, Some(actor)).await?;
        if total >= self.max_total {
            return Err(ApiError::too_many(
                format!(
                    "the platform has its maximum of {} active stores; delete some or raise api.max_active_stores",
                    self.max_total
                ),
                60,
            ));
        }
        if mine >= self.max_per_actor {
            return Err(ApiError::too_many(
                format!(
                    "{actor:?} has its maximum of {} active stores; delete some first",
                    self.max_per_actor
                ),
                60,
            ));
        }
        Ok(())
    }
}

/// Refuses bodies over `max` bytes with 413, whether or not they announce their length.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint {
            inner: ep,
            max: self.0,
        }
    }
}

/// See [`BodyLimit`].
#[derive(Debug)]
pub struct BodyLimitEndpoint<E> {
    inner: E,
    max: usize,
}

fn too_large(max: usize) -> poem::Error {
    poem::Error::from_string(
        format!("the request body is larger than {max} bytes"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Self::Output> {
        // Postgres text cannot hold NUL; a %00 anywhere in the URI is refused up front.
        let uri = req.uri();
        let has_nul = |part: &str| {
            part.as_bytes()
                .windows(3)
                .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
        };
        if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
            return Err(poem::Error::from_string(
                "the request URI contains a NUL byte (%00)",
                StatusCode::BAD_REQUEST,
            ));
        }
        if matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            let announced = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            match announced {
                Some(n) if n > self.max => return Err(too_large(self.max)),
                Some(_) => {}
                None => {
                    // Chunked or unannounced: read at most max + 1 bytes.
                    let body = req
                        .take_body()
                        .into_bytes_limit(self.max)
                        .await
                        .map_err(|_| too_large(self.max))?;
                    req.set_body(body);
                }
            }
        }
        Ok(self.inner.call(req).await?.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_says_how_long_to_wait() {
        let l = RateLimiter::new(2.0, 3);
        for _ in 0..3 {
            l.take("a").unwrap();
        }
        let wait = l.take("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another actor has its own bucket.
        l.take("b").unwrap();
    }
}
