//! A pool of outgoing proxies with health scores.
//!
//! Each proxy has a score in `1..=100` (new proxies start at 50). The next
//! proxy is a weighted random choice among those neither cooling down nor
//! retired, weight = score, so healthy proxies carry most traffic while weak
//! ones still get a little (and can recover). Outcomes move the score:
//! success +10, a transient failure -15 (floor 5), a block (CAPTCHA, 403)
//! halves it and sends the proxy into a cool-down that doubles with each
//! consecutive block (`cooldown_ms * 2^(blocks-1)`, at most 16x). After
//! `retire_after` consecutive blocks without a success in between the
//! proxy is retired for good: its exit address is burned.

use rand::Rng;

/// Pool tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyPoolConfig {
    /// Cool-down after the first block, in milliseconds.
    pub cooldown_ms: u64,
    /// Consecutive blocks that retire a proxy.
    pub retire_after: u32,
}

impl Default for ProxyPoolConfig {
    fn default() -> Self {
        ProxyPoolConfig {
            cooldown_ms: 5 * 60_000,
            retire_after: 3,
        }
    }
}

/// Initial score of a proxy.
pub const INITIAL_SCORE: u32 = 50;
/// Highest score.
pub const MAX_SCORE: u32 = 100;

/// One proxy's health. `Debug` shows the URL without credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyHealth {
    /// The proxy URL (`http://user:pass@host:port` or `https://...`; SOCKS needs reqwest's `socks` feature, not enabled).
    pub url: String,
    /// Health score, `1..=100`.
    pub score: u32,
    /// Consecutive blocks since the last success.
    pub blocks: u32,
    /// Not chosen before this time.
    pub cooldown_until_ms: u64,
    /// Never chosen again.
    pub retired: bool,
}

impl std::fmt::Debug for ProxyHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHealth")
            .field("url", &redact(&self.url))
            .field("score", &self.score)
            .field("blocks", &self.blocks)
            .field("cooldown_until_ms", &self.cooldown_until_ms)
            .field("retired", &self.retired)
            .finish()
    }
}

/// A proxy URL without its `user:password@` part, for logs.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let sep = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{sep}***@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

/// How a request through a proxy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// A normal answer.
    Success,
    /// Timeout, connection error, 5xx.
    Failure,
    /// CAPTCHA or 403: the exit address is flagged.
    Blocked,
}

/// Why no proxy can be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoProxy {
    /// All are cooling down; the first is free again at this time.
    CoolingDown {
        /// When the earliest cool-down ends.
        until_ms: u64,
    },
    /// All are retired (or the pool is empty).
    AllRetired,
}

/// The pool.
#[derive(Debug, Clone)]
pub struct ProxyPool {
    config: ProxyPoolConfig,
    proxies: Vec<ProxyHealth>,
}

impl ProxyPool {
    /// A pool of `urls`, all healthy.
    pub fn new(urls: impl IntoIterator<Item = String>, config: ProxyPoolConfig) -> ProxyPool {
        ProxyPool {
            config,
            proxies: urls
                .into_iter()
                .map(|url| ProxyHealth {
                    url,
                    score: INITIAL_SCORE,
                    blocks: 0,
                    cooldown_until_ms: 0,
                    retired: false,
                })
                .collect(),
        }
    }

    /// Every proxy's health, in configuration order.
    pub fn health(&self) -> &[ProxyHealth] {
        &self.proxies
    }

    /// Chooses a proxy index: weighted by score among the available ones.
    pub fn choose<R: Rng + ?Sized>(&self, now_ms: u64, rng: &mut R) -> Result<usize, NoProxy> {
        let available = |p: &ProxyHealth| !p.retired && p.cooldown_until_ms <= now_ms;
        let total: u64 = self
            .proxies
            .iter()
            .filter(|p| available(p))
            .map(|p| u64::from(p.score))
            .sum();
        if total == 0 {
            return Err(self
                .proxies
                .iter()
                .filter(|p| !p.retired)
                .map(|p| p.cooldown_until_ms)
                .min()
                .map_or(NoProxy::AllRetired, |until_ms| NoProxy::CoolingDown {
                    until_ms,
                }));
        }
        let mut pick = rng.gen_range(0..total);
        for (i, p) in self.proxies.iter().enumerate() {
            if !available(p) {
                continue;
            }
            let w = u64::from(p.score);
            if pick < w {
                return Ok(i);
            }
            pick -= w;
        }
        // Unreachable: `pick < total`; answer sensibly anyway.
        Err(NoProxy::AllRetired)
    }

    /// Records how a request through proxy `index` went.
    pub fn record(&mut self, index: usize, outcome: ProxyOutcome, now_ms: u64) {
        let config = self.config;
        let Some(p) = self.proxies.get_mut(index) else {
            return;
        };
        match outcome {
            ProxyOutcome::Success => {
                p.score = (p.score + 10).min(MAX_SCORE);
                p.blocks = 0;
            }
            ProxyOutcome::Failure => {
                p.score = p.score.saturating_sub(15).max(5);
            }
            ProxyOutcome::Blocked => {
                p.blocks += 1;
                p.score = (p.score / 2).max(1);
                let factor = 1u64 << (p.blocks - 1).min(4);
                p.cooldown_until_ms =
                    now_ms.saturating_add(config.cooldown_ms.saturating_mul(factor));
                if p.blocks >= config.retire_after {
                    p.retired = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn pool(n: usize) -> ProxyPool {
        ProxyPool::new(
            (0..n).map(|i| format!("http://proxy{i}:8080")),
            ProxyPoolConfig {
                cooldown_ms: 1000,
                retire_after: 3,
            },
        )
    }

    fn counts(pool: &ProxyPool, now: u64, draws: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(42);
        let mut c = vec![0; pool.health().len()];
        for _ in 0..draws {
            c[pool.choose(now, &mut rng).expect("a proxy")] += 1;
        }
        c
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(redact("http://user:pw@proxy:8080"), "http://***@proxy:8080");
        assert_eq!(
            redact("socks5://a@b@host:1080/x"),
            "socks5://***@host:1080/x"
        );
        assert_eq!(redact("http://proxy:8080"), "http://proxy:8080");
        assert_eq!(redact("user:pw@proxy:8080"), "***@proxy:8080");
        let p = ProxyPool::new(
            ["http://u:secret@p:1".to_string()],
            ProxyPoolConfig::default(),
        );
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn scores_move_with_outcomes() {
        let mut p = pool(1);
        p.record(0, ProxyOutcome::Success, 0);
        assert_eq!(p.health()[0].score, 60);
        for _ in 0..10 {
            p.record(0, ProxyOutcome::Success, 0);
        }
        assert_eq!(p.health()[0].score, MAX_SCORE);
        for _ in 0..10 {
            p.record(0, ProxyOutcome::Failure, 0);
        }
        assert_eq!(p.health()[0].score, 5, "failures floor at 5");
        assert!(!p.health()[0].retired, "failures alone never retire");
    }

    #[test]
    fn choice_is_weighted_by_score() {
        let mut p = pool(2);
        for _ in 0..5 {
            p.record(0, ProxyOutcome::Success, 0); // 100
        }
        for _ in 0..3 {
            p.record(1, ProxyOutcome::Failure, 0); // 5
        }
        let c = counts(&p, 0, 10_000);
        // Expected shares 100/105 and 5/105.
        assert!(c[0] > 9_200 && c[0] < 9_800, "{c:?}");
        assert!(c[1] > 200, "a weak proxy still gets some traffic: {c:?}");
    }

    #[test]
    fn blocked_proxy_cools_down_then_returns() {
        let mut p = pool(2);
        p.record(1, ProxyOutcome::Blocked, 100);
        assert_eq!(p.health()[1].score, 25);
        assert_eq!(p.health()[1].cooldown_until_ms, 1100);
        let c = counts(&p, 500, 1000);
        assert_eq!(c[1], 0, "not chosen while cooling down");
        let c = counts(&p, 1100, 1000);
        assert!(c[1] > 0, "back after the cool-down");
    }

    #[test]
    fn cooldown_doubles_and_repeated_blocks_retire() {
        let mut p = pool(2);
        p.record(0, ProxyOutcome::Blocked, 0);
        p.record(0, ProxyOutcome::Blocked, 1000);
        assert_eq!(p.health()[0].cooldown_until_ms, 3000);
        assert!(!p.health()[0].retired);
        p.record(0, ProxyOutcome::Blocked, 3000);
        assert!(p.health()[0].retired);
        assert_eq!(counts(&p, 1_000_000, 500)[0], 0, "retired for good");
    }

    #[test]
    fn a_success_between_blocks_resets_the_strikes() {
        let mut p = pool(1);
        p.record(0, ProxyOutcome::Blocked, 0);
        p.record(0, ProxyOutcome::Blocked, 0);
        p.record(0, ProxyOutcome::Success, 5000);
        p.record(0, ProxyOutcome::Blocked, 5000);
        assert!(!p.health()[0].retired);
        assert_eq!(p.health()[0].blocks, 1);
    }

    #[test]
    fn reports_why_nothing_is_available() {
        let mut p = pool(2);
        let mut rng = StdRng::seed_from_u64(1);
        p.record(0, ProxyOutcome::Blocked, 0); // until 1000
        p.record(1, ProxyOutcome::Blocked, 500); // until 1500
        assert_eq!(
            p.choose(600, &mut rng),
            Err(NoProxy::CoolingDown { until_ms: 1000 })
        );
        for t in [2000, 10_000] {
            p.record(0, ProxyOutcome::Blocked, t);
            p.record(1, ProxyOutcome::Blocked, t);
        }
        assert_eq!(p.choose(1_000_000, &mut rng), Err(NoProxy::AllRetired));
        assert_eq!(pool(0).choose(0, &mut rng), Err(NoProxy::AllRetired));
    }
}
