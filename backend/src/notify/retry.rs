//! Retry policy: exponential backoff with jitter, a maximum number of
//! attempts, then a dead letter.
//!
//! Default: 8 attempts. The waits between them are 30 s, 1, 2, 4, 8, 16 and
//! 32 min (each ±20 % jitter so that many alerts failing together do not
//! retry together), about 63 min from the first attempt to the last.
//! A receiver's `Retry-After` (webhook 429) is honoured by waiting at least
//! that long, capped at one hour so a hostile value cannot park an alert
//! for ever; it still counts as an attempt.

use rand::Rng;

/// What the worker stores after a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the receiver (SMTP 250 after DATA, webhook 2xx). Final.
    Delivered,
    /// Failed for now; try again (attempt + 1) at this unix-ms time.
    Retry { at: i64 },
    /// Given up: a permanent failure, or the last attempt failed. Final;
    /// `/metrics` counts it and the alerts API shows it.
    DeadLetter { reason: String },
}

impl DeliveryOutcome {
    /// The state's stable name for storage: `delivered`, `retry`,
    /// `dead_letter`.
    pub fn state(&self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::DeadLetter { .. } => "dead_letter",
        }
    }

    /// Whether nothing more will be attempted.
    pub fn is_final(&self) -> bool {
        !matches!(self, DeliveryOutcome::Retry { .. })
    }
}

/// How one attempt failed, as the transports classify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: timeouts, connection errors, 5xx, 408, 429, SMTP 4xx.
    Transient {
        reason: String,
        /// The receiver asked to wait this long (milliseconds).
        retry_after_ms: Option<i64>,
    },
    /// Retrying cannot help: 4xx from a webhook, a refused URL, an SMTP
    /// "no such mailbox".
    Permanent { reason: String },
}

/// Backoff settings. All durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubles each time.
    pub base_delay_ms: i64,
    /// No single wait is longer than this.
    pub max_delay_ms: i64,
    /// Each wait is scaled by a random factor in `[100 - j, 100 + j]` %.
    pub jitter_percent: u32,
    /// The longest `Retry-After` honoured.
    pub max_retry_after_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay_ms: 30_000,
            max_delay_ms: 3_600_000,
            jitter_percent: 20,
            max_retry_after_ms: 3_600_000,
        }
    }
}

impl RetryPolicy {
    /// The same number of attempts with no waits at all: for tests driven
    /// by a fake clock.
    pub fn immediate(max_attempts: u32) -> Self {
        RetryPolicy {
            max_attempts,
            base_delay_ms: 0,
            max_delay_ms: 0,
            jitter_percent: 0,
            max_retry_after_ms: 0,
        }
    }

    /// When to make the attempt after failed attempt number `attempt`
    /// (1-based), or `None` when it was the last one. Never earlier than
    /// `now_ms`.
    pub fn next_attempt(&self, attempt: u32, now_ms: i64, rng: &mut impl Rng) -> Option<i64> {
        if attempt >= self.max_attempts.max(1) {
            return None;
        }
        // 2^(attempt-1) saturates long before i64 overflows: the shift is
        // bounded and the multiplication saturates.
        let exponent = attempt.saturating_sub(1).min(40);
        let delay = self
            .base_delay_ms
            .max(0)
            .saturating_mul(1i64 << exponent)
            .min(self.max_delay_ms.max(0));
        let j = i64::from(self.jitter_percent.min(100));
        let factor = if j == 0 {
            100
        } else {
            100 - j + rng.gen_range(0..=2 * j)
        };
        let delay = delay.saturating_mul(factor) / 100;
        Some(now_ms.saturating_add(delay))
    }

    /// The outcome of a failed attempt number `attempt`.
    pub fn outcome(
        &self,
        failure: Failure,
        attempt: u32,
        now_ms: i64,
        rng: &mut impl Rng,
    ) -> DeliveryOutcome {
        match failure {
            Failure::Permanent { reason } => DeliveryOutcome::DeadLetter { reason },
            Failure::Transient {
                reason,
                retry_after_ms,
            } => match self.next_attempt(attempt, now_ms, rng) {
                None => DeliveryOutcome::DeadLetter {
                    reason: format!("gave up after {attempt} attempts: {reason}"),
                },
                Some(at) => {
                    let asked = retry_after_ms
                        .unwrap_or(0)
                        .clamp(0, self.max_retry_after_ms.max(0));
                    DeliveryOutcome::Retry {
                        at: at.max(now_ms.saturating_add(asked)),
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn transient(retry_after_ms: Option<i64>) -> Failure {
        Failure::Transient {
            reason: "503".into(),
            retry_after_ms,
        }
    }

    #[test]
    fn waits_double_within_jitter_and_stop_after_max_attempts() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let now = 1_000_000;
        let mut total = 0;
        for attempt in 1..8u32 {
            let at = policy.next_attempt(attempt, now, &mut rng).expect("retry");
            let nominal = 30_000i64 << (attempt - 1);
            let wait = at - now;
            assert!(
                wait >= nominal * 80 / 100 && wait <= nominal * 120 / 100,
                "attempt {attempt}: {wait} vs {nominal}"
            );
            total += nominal;
        }
        assert_eq!(total, 3_810_000, "about an hour in all");
        assert_eq!(policy.next_attempt(8, now, &mut rng), None);
        assert_eq!(policy.next_attempt(100, now, &mut rng), None);
    }

    #[test]
    fn jitter_spreads_retries() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(1);
        let times: std::collections::HashSet<i64> = (0..50)
            .filter_map(|_| policy.next_attempt(3, 0, &mut rng))
            .collect();
        assert!(times.len() > 10, "{} distinct times", times.len());
    }

    #[test]
    fn immediate_policy_has_no_waits() {
        let policy = RetryPolicy::immediate(3);
        let mut rng = StdRng::seed_from_u64(0);
        assert_eq!(policy.next_attempt(1, 42, &mut rng), Some(42));
        assert_eq!(policy.next_attempt(2, 42, &mut rng), Some(42));
        assert_eq!(policy.next_attempt(3, 42, &mut rng), None);
    }

    #[test]
    fn outcomes() {
        let policy = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(3);
        let perm = Failure::Permanent {
            reason: "404".into(),
        };
        assert_eq!(
            policy.outcome(perm, 1, 0, &mut rng),
            DeliveryOutcome::DeadLetter {
                reason: "404".into()
            }
        );
        match policy.outcome(transient(None), 8, 0, &mut rng) {
            DeliveryOutcome::DeadLetter { reason } => {
                assert_eq!(reason, "gave up after 8 attempts: 503")
            }
            other => panic!("{other:?}"),
        }
        // Retry-After longer than the backoff wins; a huge one is capped.
        assert_eq!(
            policy.outcome(transient(Some(600_000)), 1, 0, &mut rng),
            DeliveryOutcome::Retry { at: 600_000 }
        );
        assert_eq!(
            policy.outcome(transient(Some(i64::MAX)), 1, 0, &mut rng),
            DeliveryOutcome::Retry { at: 3_600_000 }
        );
        assert_eq!(DeliveryOutcome::Retry { at: 1 }.state(), "retry");
        assert!(!DeliveryOutcome::Retry { at: 1 }.is_final());
        assert!(DeliveryOutcome::Delivered.is_final());
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay_ms: i64::MAX,
            max_delay_ms: i64::MAX,
            jitter_percent: 100,
            max_retry_after_ms: i64::MAX,
        };
        let mut rng = StdRng::seed_from_u64(9);
        let at = policy.next_attempt(1000, i64::MAX - 5, &mut rng);
        assert!(at.is_some_and(|at| at >= i64::MAX - 5));
    }
}
