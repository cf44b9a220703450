//! Per-key reputation (TRUST.md "Reputation"): Beta evidence that decays
//! with a 30-day half-life, scored by a lower bound so new keys start low.
//!
//! The store keeps four values per key: `alpha`, `beta` (the evidence as
//! of `evidence_at`), `evidence_at`, and the times of the last two severe
//! refutations. Decay is applied lazily: the stored evidence is valid at
//! `evidence_at`; reading it at `now` scales the part above the prior 1 by
//! `2^(-(now - evidence_at) / 30 d)`. Since decay is multiplicative this is
//! exactly `alpha = 1 + sum(decay_i * pos_i)` over all past judgements.

use super::{Reading, ESTABLISHED_T, HALF_LIFE_MS, SEVERE_NEG};

/// The judgement of one report by a crawl result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judgement {
    /// The crawl agrees with the report: `pos = 1`.
    Confirmed,
    /// A mild mismatch: `neg = 1`.
    Refuted,
    /// Error over 50%, or the report would have fired alerts: `neg = 5`.
    SevereRefuted,
    /// The price demonstrably moved between report and crawl: nothing.
    NoEvidence,
}

impl Judgement {
    /// Positive evidence this judgement adds.
    pub fn pos(self) -> f64 {
        match self {
            Judgement::Confirmed => 1.0,
            _ => 0.0,
        }
    }
    /// Negative evidence this judgement adds.
    #[allow(clippy::should_implement_trait)] // evidence, not arithmetic negation
    pub fn neg(self) -> f64 {
        match self {
            Judgement::Refuted => 1.0,
            Judgement::SevereRefuted => SEVERE_NEG,
            _ => 0.0,
        }
    }
    /// Stable snake_case name (for logs and stored explanations).
    pub fn as_str(self) -> &'static str {
        match self {
            Judgement::Confirmed => "confirmed",
            Judgement::Refuted => "refuted",
            Judgement::SevereRefuted => "severe_refuted",
            Judgement::NoEvidence => "no_evidence",
        }
    }
}

/// How the crawled reading judges a reported one (TRUST.md).
///
/// * The readings match ([`Reading::matches`]): `Confirmed`.
/// * Otherwise, when `moved_between` (the price demonstrably moved between
///   the report and the crawl, see [`super::AttachedReport`]): `NoEvidence`.
/// * Otherwise `SevereRefuted` when `would_have_alerted` (the report's
///   price would have fired at least one watch), or both have a price and
///   the error exceeds 50% of the crawled price (`2 |x - y| > y`);
///   `Refuted` for any other mismatch (a wrong availability, a price where
///   none is offered or the other way round, an error up to 50%).
pub fn judge(
    reported: &Reading,
    crawled: &Reading,
    moved_between: bool,
    would_have_alerted: bool,
) -> Judgement {
    if reported.matches(crawled) {
        return Judgement::Confirmed;
    }
    if moved_between {
        return Judgement::NoEvidence;
    }
    let big_error = match (reported.price, crawled.price) {
        (Some(x), Some(y)) => 2 * (i128::from(x) - i128::from(y)).abs() > i128::from(y).abs(),
        _ => false,
    };
    if would_have_alerted || big_error {
        Judgement::SevereRefuted
    } else {
        Judgement::Refuted
    }
}

/// Lower bound of the Beta(alpha, beta) mean: `max(0, mean - 1.28 sd)`.
pub fn trust_score(alpha: f64, beta: f64) -> f64 {
    let (a, b) = (alpha.max(1e-9), beta.max(1e-9));
    let s = a + b;
    let mean = a / s;
    let var = a * b / (s * s * (s + 1.0));
    (mean - 1.28 * var.sqrt()).clamp(0.0, 1.0)
}

/// Decay factor for evidence `age_ms` old: `2^(-age / 30 d)`; ages below
/// zero (a clock that went back) count as zero.
pub fn decay(age_ms: i64) -> f64 {
    let age = age_ms.max(0) as f64;
    (-(age / HALF_LIFE_MS as f64)).exp2()
}

/// A key's reputation, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reputation {
    /// `1 + decayed positive evidence`, valid at `evidence_at`.
    pub alpha: f64,
    /// `1 + decayed negative evidence`, valid at `evidence_at`.
    pub beta: f64,
    /// When `alpha` and `beta` were last brought up to date (ms).
    pub evidence_at: i64,
    /// The last two severe refutations, most recent first.
    pub severe_at: [Option<i64>; 2],
}

impl Reputation {
    /// A new key: the uniform prior Beta(1, 1).
    pub fn new(now: i64) -> Self {
        Reputation {
            alpha: 1.0,
            beta: 1.0,
            evidence_at: now,
            severe_at: [None, None],
        }
    }

    /// `(alpha, beta)` decayed to `now`.
    pub fn decayed(&self, now: i64) -> (f64, f64) {
        let d = decay(now - self.evidence_at);
        (
            1.0 + (self.alpha - 1.0).max(0.0) * d,
            1.0 + (self.beta - 1.0).max(0.0) * d,
        )
    }

    /// Trust `T` at `now` (about 0.13 for a new key, 0.73 after 6
    /// confirmations, 0.93 after 30).
    pub fn score(&self, now: i64) -> f64 {
        let (a, b) = self.decayed(now);
        trust_score(a, b)
    }

    /// `T >= 0.7`.
    pub fn established(&self, now: i64) -> bool {
        self.score(now) >= ESTABLISHED_T
    }

    /// Two severe refutations inside the half-life, or `beta > alpha`
    /// (decayed to `now`).
    pub fn distrusted(&self, now: i64) -> bool {
        let recent = |t: Option<i64>| t.is_some_and(|t| now - t < HALF_LIFE_MS);
        if recent(self.severe_at[0]) && recent(self.severe_at[1]) {
            return true;
        }
        let (a, b) = self.decayed(now);
        b > a
    }

    /// A severe refutation inside the half-life before `now` (one of the
    /// two that distrust a key). The decision gives such a key's spot checks
    /// a crawl of their own ([`super::decide`], rule 1).
    pub fn refuted_recently(&self, now: i64) -> bool {
        self.severe_at[0].is_some_and(|t| now - t < HALF_LIFE_MS)
    }

    /// Adds one judgement's evidence at `now` (decaying the old evidence
    /// first). `NoEvidence` changes nothing.
    pub fn apply(&mut self, j: Judgement, now: i64) {
        if j == Judgement::NoEvidence {
            return;
        }
        let at = now.max(self.evidence_at);
        let (a, b) = self.decayed(at);
        self.alpha = a + j.pos();
        self.beta = b + j.neg();
        self.evidence_at = at;
        if j == Judgement::SevereRefuted {
            self.severe_at = [Some(now), self.severe_at[0]];
        }
    }
}
