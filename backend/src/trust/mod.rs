//! Trust but verify: the pure decision core of `../shared/design/TRUST.md`.
//!
//! This module decides what to believe; the store applies the decisions.
//! It is **pure**: no IO, no SQL, no async, no wall clock and no global
//! random numbers. The caller supplies the time (`now`, Unix ms) and every
//! random draw (an `f64` in `[0, 1)`), so the same inputs always give the
//! same answer and the simulation (`pricewatch simulate`) runs the exact
//! code the server runs.
//!
//! Units: times are Unix milliseconds (`i64`), prices integer minor units
//! (`i64`, `None` = no price offered). Floats appear only for trust scores,
//! corroboration and probabilities.
//!
//! # Map
//! * [`reputation`]: per-key Beta evidence with a 30-day half-life, the
//!   lower-bound score `T`, established / distrusted, and [`judge`] (how a
//!   crawl result judges one report).
//! * [`groups`]: independence groups and corroboration `c`.
//! * [`limits`]: crawl-trigger limits per key and per independence group,
//!   and how an attached report raises the pending crawl ([`escalate`]).
//! * [`decision`]: [`decide`], the per-report decision (TRUST.md rules 1-7,
//!   the 10-minute rule, verifiers) with a stable reason code.
//! * [`outcome`]: [`resolve`], what a crawl result does (publish, credit,
//!   penalise, correct, retry, expire holds).
//! * [`drift`]: the slow drift check (weighted median / MAD consensus).
//! * [`schedule`]: spot-check rates, crawl priorities, the reserved share
//!   of crawl capacity for critical crawls, refresh intervals.
//! * [`sim`]: the adversarial simulation behind `pricewatch simulate`.
//!
//! # How prices compare ([`Reading`], [`agrees`], [`Reading::matches`])
//! Two prices agree when `|x - y| <= max(1, 0.5% of y)` (integer
//! arithmetic). Two readings (price + availability) match when both have
//! no price or both have agreeing prices, and their availabilities are
//! equal or one of them is `unknown` (the extension cannot always read
//! availability; an unknown never contradicts).

pub mod decision;
pub mod drift;
pub mod groups;
pub mod limits;
pub mod outcome;
pub mod reputation;
pub mod schedule;
pub mod sim;

pub use decision::{decide, Decision, Published, ReportContext, ReportStatus, Reporter};
pub use drift::{drift, DriftTimer};
pub use groups::{corroboration, group_of, GroupId};
pub use limits::{escalate, within_crawl_limit, JobPriority, TriggerCounts};
pub use outcome::{
    judge_waiting, resolve, AttachedReport, Correction, CrawlOutcome, CrawlResult, Resolution,
    ResolutionKind, WaitingReport,
};
pub use reputation::{judge, trust_score, Judgement, Reputation};
pub use schedule::{
    crawl_priority, pick_jobs, refresh_interval, reserved_critical_slots, spot_check,
    spot_check_rate, CrawlRequest, QueuedJob,
};

use wasm_core::types::Availability;

/// One day in ms.
pub const DAY_MS: i64 = 24 * 3600 * 1000;
/// One minute in ms.
pub const MINUTE_MS: i64 = 60 * 1000;
/// Half-life of reputation evidence: 30 days.
pub const HALF_LIFE_MS: i64 = 30 * DAY_MS;
/// `T` at or above this: established.
pub const ESTABLISHED_T: f64 = 0.7;
/// Observations older than this (relative to `now`) never move the
/// published price and never fire alerts (same value as
/// `store::PUBLISH_MAX_AGE_MS`).
pub const MAX_PUBLISH_AGE_MS: i64 = 10 * MINUTE_MS;
/// Reports of other groups count for corroboration this long.
pub const CORROBORATION_WINDOW_MS: i64 = 30 * MINUTE_MS;
/// A key younger than this with `A >= 1` is critical (rule 4).
pub const YOUNG_KEY_MS: i64 = DAY_MS;
/// Evidence weight of a severe refutation (a mild one counts 1).
pub const SEVERE_NEG: f64 = 5.0;

/// What one observation says about an offer: price and availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Price in minor units, `None` = no price offered.
    pub price: Option<i64>,
    /// Availability.
    pub availability: Availability,
}

impl Reading {
    /// An in-stock reading at `price`.
    pub fn in_stock(price: i64) -> Self {
        Reading {
            price: Some(price),
            availability: Availability::InStock,
        }
    }

    /// Whether two readings say the same thing (see the module docs):
    /// prices agree (or both absent) and availabilities do not contradict.
    pub fn matches(&self, other: &Reading) -> bool {
        let price_ok = match (self.price, other.price) {
            (None, None) => true,
            (Some(x), Some(y)) => agrees(x, y),
            _ => false,
        };
        let avail_ok = self.availability == other.availability
            || self.availability == Availability::Unknown
            || other.availability == Availability::Unknown;
        price_ok && avail_ok
    }
}

/// `|x - y| <= max(1, 0.5% of y)`, in integer arithmetic
/// (`200 * |x - y| <= |y|` or `|x - y| <= 1`). Not exactly symmetric: the
/// tolerance is relative to `y`, the reference (published or crawled)
/// price. Saturating, so extreme inputs cannot overflow.
pub fn agrees(x: i64, y: i64) -> bool {
    let d = (i128::from(x) - i128::from(y)).abs();
    d <= 1 || 200 * d <= i128::from(y).abs()
}

#[cfg(test)]
mod tests;
