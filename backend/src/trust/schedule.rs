//! Crawl scheduling rules: spot-check rates, crawl priority, the share of
//! crawl capacity reserved for critical crawls, refresh intervals.

use super::{DAY_MS, ESTABLISHED_T};

/// Spot-check probability while `T < 0.7`.
pub const SPOT_CHECK_PROBATION: f64 = 0.05;
/// Spot-check probability once established.
pub const SPOT_CHECK_ESTABLISHED: f64 = 0.005;
/// Share of crawl capacity reserved for critical crawls.
pub const RESERVED_CRITICAL_SHARE: f64 = 0.2;
/// Watchers from which a product is refreshed every 6 h instead of daily.
pub const MANY_WATCHERS: u32 = 50;

/// A crawl the store should queue (one in flight per product: when one is
/// already pending the decision attaches instead of asking for another).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrawlRequest {
    /// `A * (1 - c) + 10 * critical + 1` (higher first).
    pub priority: f64,
    /// Rule 4 (counts against the reserved share).
    pub critical: bool,
    /// Stable snake_case reason (the API.md job `reason`): `critical`,
    /// `confirm`, `cold_start`, `low_impact`, `spot_check`, `drift`,
    /// `refresh`, `judge`.
    pub reason: &'static str,
}

/// `A * (1 - c) + 10 * critical + 1`.
pub fn crawl_priority(alerts: u32, c: f64, critical: bool) -> f64 {
    f64::from(alerts) * (1.0 - c.clamp(0.0, 1.0)) + if critical { 10.0 } else { 0.0 } + 1.0
}

/// Spot-check probability for trust `t`: 5% while `t < 0.7`, 0.5% after.
pub fn spot_check_rate(t: f64) -> f64 {
    if t < ESTABLISHED_T {
        SPOT_CHECK_PROBATION
    } else {
        SPOT_CHECK_ESTABLISHED
    }
}

/// Whether an agreeing report is spot checked, given a uniform `draw` in
/// `[0, 1)` from the caller's RNG.
pub fn spot_check(t: f64, draw: f64) -> bool {
    draw < spot_check_rate(t)
}

/// At most this many "judge" crawls in any hour ([`judge_crawl_due`]).
pub const JUDGE_CRAWLS_PER_HOUR: u32 = 1;
/// A waiting report is eligible for a judge crawl this long after it was
/// observed (other crawls of its product judge it for free until then).
pub const JUDGE_AFTER_MS: i64 = 3600 * 1000;
/// The stores look at this many of the oldest waiting reports in the
/// eligible time range per try (a bounded scan each tick); the simulation
/// does the same.
pub const JUDGE_SCAN_ROWS: i64 = 1000;

/// Whether the scheduler may queue one more "judge" crawl now, given how
/// many it queued in the last hour.
///
/// A judge crawl is queued for the product with the most waiting reports
/// ([`super::judge_waiting`]) of keys that have no evidence at all yet and
/// no other waiting report (fresh keys past their crawl-trigger limit that
/// told one lie), observed between [`JUDGE_AFTER_MS`] and the waiting
/// horizon ago, when no job is pending for it (ties: the oldest such
/// report first; only the oldest [`JUDGE_SCAN_ROWS`] waiting reports in
/// that range are looked at).
///
/// Why: a flood of fresh keys that each tell one lie and are gone
/// (`key_churn`: a new key every 30 minutes on five networks) gets two
/// crawls per network and day from the crawl-trigger limits; the other
/// lies wait for a crawl of their product that may not come within the
/// horizon (unwatched products are not refreshed, and the lies themselves
/// count as recent reports), so those keys were never judged: 82-83% of
/// `key_churn` keys distrusted on seeds 1-3. Why these limits: the budget
/// is global and small (one an hour) so no flood can turn it into crawl
/// load; keys with several waiting reports are left out because one of
/// their products is soon crawled anyway (a `verifier_exhaustion` key lies
/// about eleven products: with them in, that flood took the whole budget
/// for nothing, crawls per change 1.11-1.13 -> 1.17-1.19). `pricewatch
/// simulate`, seeds 1 / 2 / 3, `key_churn` keys distrusted: 82.5 / 83.2 /
/// 81.9% without, 97.2 / 97.0 / 97.2% with (0.21 -> 0.71 crawls per
/// attacker key, crawls per change 0.88-0.90 -> 0.99-1.00); 12 a day at
/// most 1 an hour after 2 h: 95.2 / 93.9 / 94.9%. Limits: an attacker
/// that gives each churned key two lies is not helped by this (its keys
/// are then judged like `verifier_exhaustion`'s, by the first crawl of
/// either product), and a flood of waiting reports older than the
/// eligible ones can fill the scanned rows and starve it.
pub fn judge_crawl_due(last_hour: u32) -> bool {
    last_hour < JUDGE_CRAWLS_PER_HOUR
}

/// How often a watched product nobody reported recently is crawled: every
/// 6 h with 50 or more watchers, daily otherwise.
pub fn refresh_interval(watchers: u32) -> i64 {
    if watchers >= MANY_WATCHERS {
        DAY_MS / 4
    } else {
        DAY_MS
    }
}

/// Slots of a lease of `capacity` jobs reserved for critical crawls:
/// `ceil(20% of capacity)`, at least 1 when `capacity >= 1`.
pub fn reserved_critical_slots(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    // ceil(capacity / 5) without floats.
    capacity.div_ceil(5)
}

/// A job waiting in the queue (input of [`pick_jobs`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueuedJob {
    /// Priority ([`crawl_priority`]).
    pub priority: f64,
    /// Critical crawl.
    pub critical: bool,
    /// When it was queued (ms), the tie-break (older first).
    pub enqueued_at: i64,
}

/// Which jobs a lease of `capacity` takes (indices into `queue`, in the
/// order to work them). The rule, for the SQL implementation to follow:
///
/// 1. the reserved slots ([`reserved_critical_slots`]) go to critical jobs
///    only, best first (priority descending, then `enqueued_at` ascending,
///    then index);
/// 2. the remaining slots (and reserved slots no critical job needed) go
///    to all remaining jobs, critical or not, in the same order.
///
/// So no amount of high-priority non-critical work can take the reserved
/// share from critical crawls, and idle reserved capacity is not wasted.
pub fn pick_jobs(queue: &[QueuedJob], capacity: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..queue.len()).collect();
    order.sort_by(|&a, &b| {
        let (ja, jb) = (&queue[a], &queue[b]);
        jb.priority
            .total_cmp(&ja.priority)
            .then(ja.enqueued_at.cmp(&jb.enqueued_at))
            .then(a.cmp(&b))
    });
    let reserved = reserved_critical_slots(capacity);
    let mut taken = vec![false; queue.len()];
    let mut out = Vec::with_capacity(capacity.min(queue.len()));
    for &i in &order {
        if out.len() >= reserved {
            break;
        }
        if queue[i].critical {
            taken[i] = true;
            out.push(i);
        }
    }
    for &i in &order {
        if out.len() >= capacity {
            break;
        }
        if !taken[i] {
            taken[i] = true;
            out.push(i);
        }
    }
    out
}
