//! Per-marketplace token buckets (`--rate amazon.de=1/s`).
//!
//! Tokens are counted in thousandths so refills stay exact in integers.
//! Judgement call: the default burst is 1 (requests evenly spaced, the
//! politest shape for a crawler); `amazon.de=10/m,burst=3` allows short
//! bursts. Fractions of a token lost to integer division only ever make the
//! limiter slower, never faster.

use crate::clock::Clock;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasm_core::marketplace::Marketplace;

const MILLI: u64 = 1000;

/// A rate: `tokens` per `per_ms` milliseconds, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per period (at least 1).
    pub tokens: u64,
    /// The period in milliseconds (at least 1).
    pub per_ms: u64,
    /// Bucket capacity in tokens (at least 1).
    pub burst: u64,
}

/// A rate specification that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {0:?}: expected N/s, N/m or N/h, optionally followed by ,burst=B")]
pub struct RateError(pub String);

impl FromStr for Rate {
    type Err = RateError;

    /// `"1/s"`, `"30/m"`, `"100/h"`, `"10/m,burst=3"`, `"2/500ms"`.
    fn from_str(s: &str) -> Result<Rate, RateError> {
        let err = || RateError(s.to_string());
        let (rate, burst) = match s.split_once(',') {
            Some((r, b)) => {
                let b = b.trim().strip_prefix("burst=").ok_or_else(err)?;
                (r, Some(parse_positive(b).ok_or_else(err)?))
            }
            None => (s, None),
        };
        let (n, unit) = rate.trim().split_once('/').ok_or_else(err)?;
        let tokens = parse_positive(n).ok_or_else(err)?;
        let per_ms = match unit.trim() {
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => {
                let ms = other.strip_suffix("ms").ok_or_else(err)?;
                parse_positive(ms).ok_or_else(err)?
            }
        };
        Ok(Rate {
            tokens,
            per_ms,
            burst: burst.unwrap_or(1),
        })
    }
}

fn parse_positive(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n > 0)
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms,burst={}", self.tokens, self.per_ms, self.burst)
    }
}

/// One token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    milli_tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate: Rate, now_ms: u64) -> TokenBucket {
        TokenBucket {
            rate,
            milli_tokens: rate.burst * MILLI,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed == 0 {
            return;
        }
        let cap = self.rate.burst * MILLI;
        let add = u128::from(elapsed) * u128::from(self.rate.tokens) * u128::from(MILLI)
            / u128::from(self.rate.per_ms);
        let add = u64::try_from(add).unwrap_or(u64::MAX);
        self.milli_tokens = self.milli_tokens.saturating_add(add).min(cap);
        self.last_ms = now_ms;
    }

    /// Takes one token, or says how many milliseconds until one is there.
    pub fn try_take(&mut self, now_ms: u64) -> Result<(), u64> {
        self.refill(now_ms);
        if self.milli_tokens >= MILLI {
            self.milli_tokens -= MILLI;
            return Ok(());
        }
        let missing = MILLI - self.milli_tokens;
        // ceil(missing * per_ms / (tokens * 1000)), at least 1 ms.
        let denom = self.rate.tokens * MILLI;
        let wait = (u128::from(missing) * u128::from(self.rate.per_ms)).div_ceil(u128::from(denom));
        Err(u64::try_from(wait).unwrap_or(u64::MAX).max(1))
    }
}

/// Rates per marketplace, with a default for the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateConfig {
    /// For marketplaces without an entry; `None` means unlimited.
    pub default: Option<Rate>,
    /// Explicit per-marketplace rates.
    pub per_marketplace: HashMap<Marketplace, Rate>,
}

impl RateConfig {
    /// The rate that applies to `m`.
    pub fn rate_for(&self, m: Marketplace) -> Option<Rate> {
        self.per_marketplace.get(&m).copied().or(self.default)
    }
}

/// The shared limiter: one bucket per marketplace, created on first use.
pub struct RateLimiter {
    config: RateConfig,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<Marketplace, TokenBucket>>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter for `config` reading `clock`.
    pub fn new(config: RateConfig, clock: Arc<dyn Clock>) -> RateLimiter {
        RateLimiter {
            config,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `m` now, or returns the wait in milliseconds.
    pub fn try_acquire(&self, m: Marketplace) -> Result<(), u64> {
        let Some(rate) = self.config.rate_for(m) else {
            return Ok(());
        };
        let now = self.clock.now_ms();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(m)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now)
    }

    /// Waits (asynchronously) until a token for `m` is available and takes it.
    pub async fn acquire(&self, m: Marketplace) {
        while let Err(wait) = self.try_acquire(m) {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn rate(s: &str) -> Rate {
        s.parse().expect("valid rate")
    }

    #[test]
    fn parses_rates() {
        assert_eq!(
            rate("1/s"),
            Rate {
                tokens: 1,
                per_ms: 1000,
                burst: 1
            }
        );
        assert_eq!(rate("30/m").per_ms, 60_000);
        assert_eq!(rate("100/h").tokens, 100);
        assert_eq!(rate("10/m,burst=3").burst, 3);
        assert_eq!(rate("2/500ms").per_ms, 500);
        for bad in [
            "",
            "1",
            "0/s",
            "-1/s",
            "1/d",
            "1.5/s",
            "1/s,burst=0",
            "1/s,b=2",
            "x/s",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn bucket_spaces_requests_evenly() {
        let mut b = TokenBucket::new(rate("2/s"), 0);
        assert_eq!(b.try_take(0), Ok(()));
        assert_eq!(b.try_take(0), Err(500));
        assert_eq!(b.try_take(499), Err(1));
        assert_eq!(b.try_take(500), Ok(()));
        assert_eq!(b.try_take(700), Err(300));
    }

    #[test]
    fn bucket_allows_burst_then_refills_to_capacity_only() {
        let mut b = TokenBucket::new(rate("1/s,burst=3"), 0);
        for _ in 0..3 {
            assert_eq!(b.try_take(0), Ok(()));
        }
        assert_eq!(b.try_take(0), Err(1000));
        // A long idle period refills only up to the burst.
        let t = 1_000_000;
        for _ in 0..3 {
            assert_eq!(b.try_take(t), Ok(()));
        }
        assert!(b.try_take(t).is_err());
    }

    #[test]
    fn bucket_never_exceeds_rate_over_a_window() {
        // Simulate a caller polling every 7 ms for 10 s at 5/s, burst 1:
        // at most 1 + 5 * 10 tokens.
        let mut b = TokenBucket::new(rate("5/s"), 0);
        let mut taken = 0;
        let mut t = 0;
        while t <= 10_000 {
            if b.try_take(t).is_ok() {
                taken += 1;
            }
            t += 7;
        }
        assert!(taken <= 51, "took {taken}");
        assert!(taken >= 49, "took {taken}");
    }

    #[test]
    fn limiter_keeps_marketplaces_apart() {
        let clock = Arc::new(ManualClock::new(0));
        let mut config = RateConfig {
            default: None,
            ..RateConfig::default()
        };
        config
            .per_marketplace
            .insert(Marketplace::AMAZON_DE, rate("1/s"));
        let limiter = RateLimiter::new(config, clock.clone());
        assert_eq!(limiter.try_acquire(Marketplace::AMAZON_DE), Ok(()));
        assert_eq!(limiter.try_acquire(Marketplace::AMAZON_DE), Err(1000));
        // No default: other marketplaces are unlimited.
        for _ in 0..100 {
            assert_eq!(limiter.try_acquire(Marketplace::AMAZON_COM), Ok(()));
        }
        clock.advance(1000);
        assert_eq!(limiter.try_acquire(Marketplace::AMAZON_DE), Ok(()));
    }
}
