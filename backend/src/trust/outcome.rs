//! What a verification crawl's result does (TRUST.md rule 7).
//!
//! * `observed`: the crawled reading is published as `verified` and the
//!   watches may fire on it (this is how held alerts are released: the
//!   held report was never published, the verified price now is). Each
//!   attached report is judged ([`super::judge`]). When the published
//!   value came from reports (`provisional` or `confirmed`) and the crawl
//!   contradicts it, [`Resolution::correction`] names the refuted price:
//!   the store calls `Storage::correct_published_price` so that anyone
//!   alerted on it gets a `correction`.
//!
//!   Judgement call on stale reports: a report observed more than 30
//!   minutes ([`STALE_REPORT_MS`], the hold's lifetime) before the crawl
//!   result is still credited when the crawl agrees, but a disagreement
//!   counts as no evidence: when the queue was slow, the price may well
//!   have moved in between, and TRUST.md's "no evidence when the price
//!   moved" cannot be decided either way. Without this, a crawl backlog
//!   (e.g. under `verifier_exhaustion`) turns honest reporters into
//!   refuted ones. Fresh lies (a penny bomb is crawled within minutes
//!   while the queue is healthy) are judged as usual.
//!
//!   Judgement call on reports that backed a published price
//!   ([`AttachedReport::backed_published`]: published by their decision,
//!   as `provisional` or `confirmed`, or a spot-checked echo of a value no
//!   crawl had verified): a refutation counts as severe even when the
//!   error is small and no watch fired. TRUST.md makes "would have fired
//!   alerts" severe because of the harm; a wrong price shown to everyone
//!   is harm too, and it is how slow poisoning works (lies of +8-25% that
//!   rule 5 publishes as provisional, each crawled with probability 0.2:
//!   an established poisoner needed about as many mild refutations as it
//!   had confirmations before `beta > alpha`). Honest keys are almost
//!   never refuted on attached reports when not misreading (a price moved
//!   within the 30 minutes before the crawl). `pricewatch simulate`, seeds
//!   1 / 2 / 3, `slow_poison` crawls per attacker key 8.95 / 9.25 / 9.10 ->
//!   2.75 / 2.35 / 2.50 (of which lies 7.05 / 7.40 / 7.60 -> 2.10 / 2.05 /
//!   2.10: two severe refutations distrust a key, so two crawled lies is
//!   the floor); honest keys distrusted unchanged (0.79 / 0.78 / 1.17%).
//! * `failed`, `captcha`, `blocked`: retried twice, 1 then 2 minutes after
//!   the failing attempt (both retries within 5 minutes of the first
//!   attempt); after the third failure the job is given up and its held
//!   reports expire 30 minutes after the job was queued
//!   ([`hold_expires_at`]). Nobody is judged.
//! * `not_found` (judgement call: the page is gone or the crawler could
//!   not find the offer): inconclusive. Nothing is published, nobody is
//!   judged, the job closes and held reports expire now. A product that
//!   really disappeared is picked up by the next report or refresh.

use super::{judge, Judgement, Published, Reading, DAY_MS, MINUTE_MS};
use crate::store::OfferStatus;

/// Held reports expire this long after their crawl was queued.
pub const HOLD_TTL_MS: i64 = 30 * MINUTE_MS;
/// A report observed longer than this before the crawl result is not
/// penalised when the crawl disagrees (see [`resolve`]).
pub const STALE_REPORT_MS: i64 = HOLD_TTL_MS;
/// A waiting report ([`judge_waiting`]) is judged by the first crawl of its
/// product within this time; later it is no longer judged.
pub const WAITING_HORIZON_MS: i64 = 3 * DAY_MS;
/// Attempts per crawl job (the first plus two retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// The verifier's outcome (API.md `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrawlOutcome {
    /// The page was read: the reading.
    Observed(Reading),
    /// No such product / offer.
    NotFound,
    /// A CAPTCHA or robot check.
    Captcha,
    /// Blocked (403, proxy refused, ...).
    Blocked,
    /// Anything else (timeouts, 5xx, parse failure).
    Failed,
}

impl CrawlOutcome {
    /// API.md spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            CrawlOutcome::Observed(_) => "observed",
            CrawlOutcome::NotFound => "not_found",
            CrawlOutcome::Captcha => "captcha",
            CrawlOutcome::Blocked => "blocked",
            CrawlOutcome::Failed => "failed",
        }
    }
}

/// A crawl result and its job (input of [`resolve`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrawlResult {
    /// What the verifier saw.
    pub outcome: CrawlOutcome,
    /// When the result arrived (ms); for `observed`, also the
    /// observation time.
    pub now: i64,
    /// When the job was first queued (ms).
    pub enqueued_at: i64,
    /// Attempts made so far, this one included (1 for the first).
    pub attempts: u32,
    /// The published offer right now (before this result).
    pub published: Option<Published>,
}

/// A report attached to the crawl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttachedReport {
    /// What it said.
    pub reading: Reading,
    /// When it was observed (ms).
    pub observed_at: i64,
    /// `A` at decision time: would publishing it have fired watches.
    pub alerts: u32,
    /// At decision time it matched a published `verified` reading (rule 1).
    /// When such a report now disagrees with the crawl, the price
    /// demonstrably moved between report and crawl: no evidence either way
    /// (the reporter saw what the verifier itself had seen).
    pub agreed_with_verified: bool,
    /// It backed a price shown on reports' word: its decision published it
    /// (`provisional` or `confirmed`: not held), or it agreed with a
    /// published value no crawl had verified (a spot check of an echo).
    /// The store has it as "not held and not `agreed_with_verified`". A
    /// refutation of such a report counts as severe ([`resolve`]).
    pub backed_published: bool,
}

/// The refuted published price (arguments of
/// `Storage::correct_published_price`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Correction {
    /// The published price the crawl refuted.
    pub refuted_price: i64,
    /// The verified price (`None` = none offered).
    pub corrected_price: Option<i64>,
    /// Alerts fired since this time (the refuted observation's time) get a
    /// correction.
    pub since: i64,
}

/// The job-level result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionKind {
    /// Observed and every attached report and the published value agree.
    Confirmed,
    /// Observed and something attached or published was contradicted.
    Refuted,
    /// Try again at this time (keep the job, release its lease).
    Retry {
        /// Not before (ms).
        at: i64,
    },
    /// Give up: close the job; held reports expire at this time.
    GiveUp {
        /// When the held reports become `stored` (ms).
        holds_expire_at: i64,
    },
}

/// What the store does with a crawl result.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// Job-level outcome.
    pub kind: ResolutionKind,
    /// Stable snake_case reason: `crawl_confirmed`, `crawl_refuted`,
    /// `crawl_retry`, `crawl_gave_up`, `not_found`.
    pub reason: &'static str,
    /// Publish this reading with status `verified`.
    pub publish: Option<Reading>,
    /// Watches may fire on the published reading (releases held alerts).
    pub alert: bool,
    /// A published price from reports was refuted.
    pub correction: Option<Correction>,
    /// One judgement per attached report, same order; apply each to the
    /// report's key with [`super::Reputation::apply`] at the result's time.
    pub judgements: Vec<Judgement>,
}

/// When held reports of a job queued at `enqueued_at` expire.
pub fn hold_expires_at(enqueued_at: i64) -> i64 {
    enqueued_at.saturating_add(HOLD_TTL_MS)
}

/// Applies rule 7 (module docs).
pub fn resolve(result: &CrawlResult, attached: &[AttachedReport]) -> Resolution {
    let none = vec![Judgement::NoEvidence; attached.len()];
    let crawled = match result.outcome {
        CrawlOutcome::Observed(r) => r,
        CrawlOutcome::NotFound => {
            return Resolution {
                kind: ResolutionKind::GiveUp {
                    holds_expire_at: result.now,
                },
                reason: "not_found",
                publish: None,
                alert: false,
                correction: None,
                judgements: none,
            }
        }
        CrawlOutcome::Captcha | CrawlOutcome::Blocked | CrawlOutcome::Failed => {
            let attempts = result.attempts.max(1);
            let kind = if attempts < MAX_ATTEMPTS {
                ResolutionKind::Retry {
                    at: result.now + MINUTE_MS * i64::from(attempts),
                }
            } else {
                ResolutionKind::GiveUp {
                    holds_expire_at: hold_expires_at(result.enqueued_at).max(result.now),
                }
            };
            let reason = match kind {
                ResolutionKind::Retry { .. } => "crawl_retry",
                _ => "crawl_gave_up",
            };
            return Resolution {
                kind,
                reason,
                publish: None,
                alert: false,
                correction: None,
                judgements: none,
            };
        }
    };
    let judgements: Vec<Judgement> = attached
        .iter()
        .map(|a| {
            let stale = result.now - a.observed_at > STALE_REPORT_MS;
            match judge(
                &a.reading,
                &crawled,
                a.agreed_with_verified || stale,
                a.alerts >= 1,
            ) {
                Judgement::Refuted if a.backed_published => Judgement::SevereRefuted,
                j => j,
            }
        })
        .collect();
    let correction = result.published.and_then(|p| {
        let from_reports = matches!(p.status, OfferStatus::Provisional | OfferStatus::Confirmed);
        match p.reading.price {
            Some(refuted) if from_reports && !p.reading.matches(&crawled) => Some(Correction {
                refuted_price: refuted,
                corrected_price: crawled.price,
                since: p.observed_at,
            }),
            _ => None,
        }
    });
    let refuted = correction.is_some()
        || judgements
            .iter()
            .any(|j| matches!(j, Judgement::Refuted | Judgement::SevereRefuted));
    Resolution {
        kind: if refuted {
            ResolutionKind::Refuted
        } else {
            ResolutionKind::Confirmed
        },
        reason: if refuted {
            "crawl_refuted"
        } else {
            "crawl_confirmed"
        },
        publish: Some(crawled),
        alert: true,
        correction,
        judgements,
    }
}

/// A report that disagreed with the published price and got no crawl of
/// its own: its key was over the crawl-trigger limit (`crawl_limit`) or
/// distrusted (`distrusted_key`). It is stored only, and it waits for the
/// product's next crawl, whatever queued it ([`judge_waiting`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitingReport {
    /// What it said.
    pub reading: Reading,
    /// When it was observed (ms).
    pub observed_at: i64,
    /// `A` at decision time.
    pub alerts: u32,
    /// The last reading the verifier saw for the product before the report
    /// arrived (whatever is published now), `None` when it never saw one;
    /// for a report that agreed with the published reading (a spot check
    /// that waits: skipped or waiting), that published reading
    /// ([`WaitingReport::before_for`]).
    pub before: Option<Reading>,
}

impl WaitingReport {
    /// The `before` of a report decided as `d`: the verifier's last
    /// reading `verified`, except for a report that agreed with the
    /// published reading (rule 1, `spot_check_skipped` or
    /// `spot_check_waiting`): then `published`.
    ///
    /// Judgement call: such a report said what the rules already showed;
    /// when the next crawl disagrees, the price moved since (as for an
    /// attached report that agreed with a verified price,
    /// [`AttachedReport::agreed_with_verified`]), so it is confirmed or
    /// nothing. Judged against the verifier's reading instead, a distrusted
    /// honest key echoing a true provisional price (a real change an
    /// established key reported, published with no crawl under rule 5) was
    /// refuted whenever the price moved again before the next crawl:
    /// `pricewatch simulate --seed 1`, 18 mild refutations of true reports
    /// among the distrusted honest keys' negative judgements.
    pub fn before_for(
        d: &super::Decision,
        verified: Option<Reading>,
        published: Option<Reading>,
    ) -> Option<Reading> {
        if d.status == super::ReportStatus::Accepted {
            published
        } else {
            verified
        }
    }
}

/// How the product's next crawl judges a waiting report (the judgement
/// TRUST.md gives attached reports, for reports that could not have a crawl
/// of their own):
///
/// * observed more than [`WAITING_HORIZON_MS`] before the crawl: no
///   evidence (too far apart to say anything);
/// * the crawl matches the report: confirmed (the report was right, a crawl
///   queued for another reason shows it);
/// * the report matches the verifier's reading before it (`before`): no
///   evidence (it said what the verifier itself had seen; the price moved
///   since);
/// * no verified reading before it: no evidence;
/// * otherwise the report matches neither the verifier's reading before it
///   nor the one after it: it is judged as an attached report ([`judge`]),
///   except that a crawl more than [`STALE_REPORT_MS`] (30 min) after the
///   report refutes it mildly at most (`Refuted`, never `SevereRefuted`).
///
/// Judgement call on the stale cap: the longer the gap, the likelier the
/// price moved to the reported value and back in between (a short real
/// deal: A -> B -> A, or A -> B -> C, which a report of B matches neither
/// side of). A severe refutation is 5 units of negative evidence and one of
/// the two that distrust a key, so a key distrusted by one honest parse
/// error stayed distrusted by its next true report of a short deal. A mild
/// refutation still distrusts a key with no positive evidence (a fresh key
/// telling one lie: `beta` 2 > `alpha` 1), which is what the waiting
/// reports of limited floods are. `pricewatch simulate`, seeds 1 / 2 / 3:
/// honest keys distrusted, before the cap 0.99% / 1.17% / 1.57% (4-6
/// severe refutations a seed of true waiting reports among the negative
/// judgements of the distrusted honest keys); see the module docs of
/// [`super::sim`] for the figures after.
///
/// Judgement call (TRUST.md is silent on reports past a crawl-trigger
/// limit): without it, a flood of fresh keys that the limits keep from
/// triggering crawls is never judged and never distrusted (`pricewatch
/// simulate --attack verifier_exhaustion`: 8% of its keys distrusted), or
/// each key must cost a crawl. A report that matches neither the price
/// the verifier saw before it nor the one it saw after was true only if
/// the price moved to the reported value and away again between two
/// crawls with no report the rules listen to in between (such a report
/// would have made the value published, and the waiting report would then
/// have agreed with it). That is what this cannot tell from a lie: an
/// honest key over its limit that reported a short real deal nobody
/// crawled is refuted. Honest keys rarely reach the limit (`simulate`:
/// one report in 14 days), and distrusted keys are the other case, whose
/// agreeing reports still earn their way back (rule 1). The horizon (3
/// days) is where that stays rare: at 7 days `simulate` distrusted 1.18%
/// of honest keys (0.99% at 1 and 3 days); at 1 day only 66% of
/// `key_churn` keys were judged in time (85% at 3 days).
pub fn judge_waiting(w: &WaitingReport, crawled: &Reading, now: i64) -> Judgement {
    if now - w.observed_at > WAITING_HORIZON_MS {
        return Judgement::NoEvidence;
    }
    if w.reading.matches(crawled) {
        return Judgement::Confirmed;
    }
    match w.before {
        Some(before) if !w.reading.matches(&before) => {
            match judge(&w.reading, crawled, false, w.alerts >= 1) {
                Judgement::SevereRefuted if now - w.observed_at > STALE_REPORT_MS => {
                    Judgement::Refuted
                }
                j => j,
            }
        }
        _ => Judgement::NoEvidence,
    }
}
