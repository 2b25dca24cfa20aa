//! Per-step retry policy: exponential backoff with full jitter.
//!
//! The delay before attempt `n + 1` (after `n` failed attempts) is drawn uniformly from
//! `[0, min(max_interval, initial × multiplier^(n-1))]` ("full jitter"), so many runs failing
//! together do not retry in lockstep. The chosen delay is persisted as the step's
//! `next_attempt_at`, so a restart does not shorten it.

use std::time::Duration;

use rand::Rng;

/// The backoff between retries after transient errors: 0.5 s doubling to 30 s, full
/// jitter. How long they go on is the step's transient budget, not an attempt count.
pub const TRANSIENT_BACKOFF: RetryPolicy = RetryPolicy {
    initial_interval: Duration::from_millis(500),
    multiplier: 2.0,
    max_interval: Duration::from_secs(30),
    max_attempts: u32::MAX,
};

/// How a step is retried after a retryable failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The backoff ceiling after the first failure.
    pub initial_interval: Duration,
    /// How much the ceiling grows after each further failure (≥ 1).
    pub multiplier: f64,
    /// The largest ceiling.
    pub max_interval: Duration,
    /// Attempts in all, the first included (≥ 1). `1` means never retry.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            multiplier: 2.0,
            max_interval: Duration::from_secs(60),
            max_attempts: 5,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    #[must_use]
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The same policy with another attempt budget.
    #[must_use]
    pub fn with_max_attempts(self, max_attempts: u32) -> Self {
        Self {
            max_attempts,
            ..self
        }
    }

    /// The same policy with other intervals.
    #[must_use]
    pub fn with_intervals(self, initial: Duration, max: Duration) -> Self {
        Self {
            initial_interval: initial,
            max_interval: max,
            ..self
        }
    }

    /// True when another attempt is allowed after `attempts_made` attempts.
    #[must_use]
    pub fn allows_another(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts
    }

    /// The backoff ceiling after `failed_attempts` (≥ 1) failures.
    #[must_use]
    pub fn ceiling(&self, failed_attempts: u32) -> Duration {
        let exp = failed_attempts.saturating_sub(1).min(64);
        let secs = self.initial_interval.as_secs_f64() * self.multiplier.max(1.0).powi(exp as i32);
        let max = self.max_interval.as_secs_f64();
        Duration::from_secs_f64(secs.min(max).max(0.0))
    }

    /// A full-jitter delay after `failed_attempts` failures, drawn from `rng`.
    pub fn backoff(&self, failed_attempts: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(failed_attempts);
        if ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_secs_f64(rng.random_range(0.0..=ceiling.as_secs_f64()))
    }

    /// Checks the policy's numbers.
    ///
    /// # Errors
    /// A description of the first thing wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1".into());
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err("multiplier must be a finite number ≥ 1".into());
        }
        if self.max_interval < self.initial_interval {
            return Err("max_interval must be ≥ initial_interval".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial_interval: Duration::from_millis(100),
            multiplier: 2.0,
            max_interval: Duration::from_secs(1),
            max_attempts: 4,
        }
    }

    #[test]
    fn ceiling_grows_by_the_multiplier_and_stops_at_the_max() {
        let p = policy();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(5), Duration::from_secs(1));
        assert_eq!(p.ceiling(500), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads_out() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        let draws: Vec<Duration> = (0..1000).map(|_| p.backoff(3, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(400)));
        let below_half = draws
            .iter()
            .filter(|d| **d < Duration::from_millis(200))
            .count();
        assert!(
            (350..650).contains(&below_half),
            "not uniform: {below_half} of 1000 below half"
        );
    }

    #[test]
    fn attempts_budget_counts_the_first_attempt() {
        let p = policy();
        assert!(p.allows_another(3));
        assert!(!p.allows_another(4));
        assert!(!RetryPolicy::never().allows_another(1));
    }

    #[test]
    fn validate_refuses_nonsense() {
        assert!(policy().validate().is_ok());
        assert!(policy().with_max_attempts(0).validate().is_err());
        let shrinking = RetryPolicy {
            multiplier: 0.5,
            ..policy()
        };
        assert!(shrinking.validate().is_err());
        let inverted = policy().with_intervals(Duration::from_secs(5), Duration::from_secs(1));
        assert!(inverted.validate().is_err());
    }
}
