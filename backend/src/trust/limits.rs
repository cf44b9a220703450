//! Crawl-trigger limits of keys on probation, per key **and per
//! independence group**, and how a report raises the pending crawl it
//! attaches to.
//!
//! # Crawl-trigger limits ([`within_crawl_limit`])
//! TRUST.md names "that key's crawl-trigger limit" (rule 5) and targets at
//! most one crawl per attacker key. A key on probation (`T < 0.7`) may
//! trigger a crawl (rules 3a-6, not spot checks, which the server
//! chooses) only while
//! * the key has fewer than [`KEY_OPEN_CRAWLS`] unresolved crawls it
//!   triggered and triggered fewer than [`KEY_CRAWLS_PER_DAY`] in the last
//!   day, **and**
//! * its independence group (network hash + registration day, TRUST.md:
//!   "a group counts once") has fewer than [`GROUP_OPEN_CRAWLS`]
//!   unresolved crawls triggered by its probation keys and fewer than
//!   [`GROUP_CRAWLS_PER_DAY`] in the last day.
//!
//! Judgement call (TRUST.md is silent on the group part): fresh keys made
//! together on one network are one group for corroboration, so they are
//! one group for the crawls they may cost as well; otherwise a flood of
//! fresh keys from a handful of networks (`pricewatch simulate --attack
//! verifier_exhaustion`: 150 keys an hour from 20 networks) buys one
//! critical crawl per key and crowds real deals out of the reserved
//! share. The group allowance is two open crawls and two a day (a
//! household whose members registered on the same day shares them). It
//! was twelve a day until reports past the limit were judged by the
//! product's next crawl anyway ([`super::judge_waiting`]): a limited key's
//! lie no longer needs a crawl of its own to be judged, and every crawl the
//! limit allows a flood is one more than real changes need (`pricewatch
//! simulate --seed 1 --attack verifier_exhaustion`, crawls per real
//! change: 2.15 at 12 a day, 1.24 at 3, 1.13 at 2; keys distrusted 98.8%
//! at 2 and 3; `key_churn` keys distrusted 85% at 3, 82.5% at 2, the rest
//! lied about products no crawl visited within the waiting horizon;
//! judge crawls, [`super::schedule::judge_crawl_due`], now reach those:
//! 97%). Established keys are never limited. An attacker with a
//! fresh network for every few keys is not stopped by this rule (it is
//! bounded by the registration limit per address, `http::limits`, and by
//! the cost of networks); the simulation documents that variant.
//!
//! # Raising the pending crawl ([`escalate`])
//! Rule 3 attaches a report to the crawl already pending for the product.
//! When that crawl was queued for a lesser reason (a spot check or a
//! low-impact change at priority 1) and the attached report is critical or
//! would fire alerts, the report would wait behind everything of higher
//! priority although TRUST.md gives it top priority (a held flash deal
//! stuck behind a spot check). So the pending job takes the higher of the
//! two priorities, and becomes critical when the report is critical
//! (judgement call: "one crawl in flight per product" must not lower the
//! priority a report is owed). Only reports that may trigger a crawl
//! themselves (established, or within the limits above) raise a job, so a
//! limited key cannot promote crawls it could not have asked for.

use super::schedule::CrawlRequest;

/// A probation key may have this many unresolved crawls it triggered...
pub const KEY_OPEN_CRAWLS: u32 = 1;
/// ... and trigger this many a day.
pub const KEY_CRAWLS_PER_DAY: u32 = 3;
/// All probation keys of one independence group together: unresolved
/// crawls they triggered...
pub const GROUP_OPEN_CRAWLS: u32 = 2;
/// ... and crawls a day.
pub const GROUP_CRAWLS_PER_DAY: u32 = 2;

/// Crawls triggered by a key (or by the probation keys of a group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TriggerCounts {
    /// Triggered crawls not yet resolved (queued, leased or retrying).
    pub open: u32,
    /// Crawls triggered in the last 24 hours (resolved or not).
    pub last_day: u32,
}

/// Whether a key on probation may trigger one more crawl (module docs):
/// `key` counts its own triggered crawls, `group` those of every
/// probation key in its independence group (this key's included).
pub fn within_crawl_limit(key: TriggerCounts, group: TriggerCounts) -> bool {
    key.open < KEY_OPEN_CRAWLS
        && key.last_day < KEY_CRAWLS_PER_DAY
        && group.open < GROUP_OPEN_CRAWLS
        && group.last_day < GROUP_CRAWLS_PER_DAY
}

/// The pending job's scheduling fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobPriority {
    /// Current priority.
    pub priority: f64,
    /// Counts against the reserved critical share.
    pub critical: bool,
}

/// What the pending job becomes when a report that would have asked for
/// `wanted` attaches to it: `None` when nothing changes, else the raised
/// priority (the maximum of both) and criticality (either).
pub fn escalate(pending: JobPriority, wanted: &CrawlRequest) -> Option<JobPriority> {
    let raised = JobPriority {
        priority: pending.priority.max(wanted.priority),
        critical: pending.critical || wanted.critical,
    };
    (raised != pending).then_some(raised)
}
