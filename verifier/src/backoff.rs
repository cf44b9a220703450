//! Retries with exponential backoff and full jitter: before retry `n`
//! (0-based) wait a uniformly random time in `[0, min(cap, base * 2^n)]`
//! ("full jitter", which spreads retries of many workers best). A server's
//! `Retry-After` raises the wait to at least what it asked for, still
//! bounded by the cap.

use rand::Rng;

/// Retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Ceiling of the first wait, in milliseconds.
    pub base_ms: u64,
    /// Largest wait, in milliseconds.
    pub cap_ms: u64,
    /// Retries after the first attempt (so `max_retries + 1` attempts).
    pub max_retries: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 500,
            cap_ms: 30_000,
            max_retries: 3,
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry `retry` (0-based).
    pub fn ceiling_ms(&self, retry: u32) -> u64 {
        let factor = 1u64.checked_shl(retry.min(63)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.cap_ms)
    }

    /// The wait before retry `retry`: full jitter, raised to
    /// `retry_after_ms` when the server asked for it, never above the cap.
    pub fn delay_ms<R: Rng + ?Sized>(
        &self,
        retry: u32,
        retry_after_ms: Option<u64>,
        rng: &mut R,
    ) -> u64 {
        let jitter = rng.gen_range(0..=self.ceiling_ms(retry));
        match retry_after_ms {
            Some(ra) => jitter.max(ra.min(self.cap_ms)),
            None => jitter,
        }
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is
/// ignored: Amazon and our backend send seconds).
pub fn parse_retry_after_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u64>().ok().map(|s| s * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1000,
            max_retries: 10,
        };
        let got: Vec<u64> = (0..6).map(|n| b.ceiling_ms(n)).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(
            b.ceiling_ms(200),
            1000,
            "huge retry numbers do not overflow"
        );
    }

    #[test]
    fn delays_stay_in_bounds_and_spread() {
        let b = Backoff {
            base_ms: 100,
            cap_ms: 1000,
            max_retries: 10,
        };
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 0..8 {
            let ceil = b.ceiling_ms(retry);
            let samples: Vec<u64> = (0..500)
                .map(|_| b.delay_ms(retry, None, &mut rng))
                .collect();
            assert!(samples.iter().all(|d| *d <= ceil), "retry {retry}");
            // Full jitter: both small and large waits occur.
            assert!(samples.iter().any(|d| *d < ceil / 4), "retry {retry}");
            assert!(samples.iter().any(|d| *d > ceil * 3 / 4), "retry {retry}");
        }
    }

    #[test]
    fn retry_after_raises_the_wait_but_not_above_the_cap() {
        let b = Backoff {
            base_ms: 10,
            cap_ms: 5000,
            max_retries: 3,
        };
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let d = b.delay_ms(0, Some(2000), &mut rng);
            assert_eq!(d, 2000);
            assert_eq!(b.delay_ms(0, Some(60_000), &mut rng), 5000);
        }
    }

    #[test]
    fn parses_retry_after_seconds() {
        assert_eq!(parse_retry_after_ms("3"), Some(3000));
        assert_eq!(parse_retry_after_ms(" 0 "), Some(0));
        assert_eq!(parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after_ms("-1"), None);
        assert_eq!(parse_retry_after_ms(""), None);
    }
}
