//! The slow drift check (TRUST.md): a robust consensus of established
//! groups' latest reports against the published price.
//!
//! Consensus is the weighted median (weights `T`) of each established
//! group's latest price; spread is the weighted median absolute deviation
//! from it, scaled by 1.4826 (so it estimates a standard deviation). A gap
//! `|m - P| > max(1% of P, 3 MAD)` is drift. The caller keeps a
//! [`DriftTimer`] per series and dispatches a crawl (reason `drift`) when
//! drift persists 30 minutes.
//!
//! Judgement call: at least two established groups are needed for a
//! consensus; one group alone is ordinary reporting, handled by the
//! per-report rules.

use super::{GroupId, ESTABLISHED_T, MINUTE_MS};
use std::collections::BTreeMap;

/// Drift must persist this long before a crawl is dispatched.
pub const DRIFT_PERSIST_MS: i64 = 30 * MINUTE_MS;
/// Scale of the MAD to a standard deviation (normal data).
pub const MAD_SCALE: f64 = 1.4826;

/// Weighted median of `(value, weight)`: the smallest value whose
/// cumulative weight reaches half the total. `None` when empty or all
/// weights are zero.
pub fn weighted_median(points: &mut [(i64, f64)]) -> Option<i64> {
    points.sort_by_key(|p| p.0);
    let total: f64 = points.iter().map(|p| p.1.max(0.0)).sum();
    if total <= 0.0 {
        return None;
    }
    let mut acc = 0.0;
    for &(v, w) in points.iter() {
        acc += w.max(0.0);
        if acc >= total / 2.0 {
            return Some(v);
        }
    }
    points.last().map(|p| p.0)
}

/// The consensus price when it drifted from `published`, else `None`.
/// `reports` is `(group, T, latest price)`; entries with `T < 0.7` are
/// ignored, and each group counts once (its entry with the best `T`).
pub fn drift(reports: &[(GroupId, f64, i64)], published: i64) -> Option<i64> {
    let mut best: BTreeMap<GroupId, (f64, i64)> = BTreeMap::new();
    for &(g, t, x) in reports {
        if t >= ESTABLISHED_T {
            let e = best.entry(g).or_insert((t, x));
            if t > e.0 {
                *e = (t, x);
            }
        }
    }
    if best.len() < 2 {
        return None;
    }
    let mut pts: Vec<(i64, f64)> = best.values().map(|&(t, x)| (x, t)).collect();
    let m = weighted_median(&mut pts)?;
    let mut dev: Vec<(i64, f64)> = pts.iter().map(|&(x, t)| ((x - m).abs(), t)).collect();
    let mad = weighted_median(&mut dev)? as f64 * MAD_SCALE;
    let gap = (i128::from(m) - i128::from(published)).abs();
    let over_pct = 100 * gap > i128::from(published).abs();
    let over_mad = gap as f64 > 3.0 * mad;
    (over_pct && over_mad).then_some(m)
}

/// Per-series drift state: when the current drift started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftTimer {
    /// Start of the current drift (ms), `None` when not drifting.
    pub since: Option<i64>,
}

impl DriftTimer {
    /// Feeds one check at `now`; returns `true` when a drift crawl should
    /// be dispatched (drift persisted 30 minutes). The timer then restarts,
    /// so a drift that outlives the crawl dispatches again 30 minutes later.
    pub fn update(&mut self, drifting: bool, now: i64) -> bool {
        if !drifting {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now - since >= DRIFT_PERSIST_MS {
            self.since = None;
            return true;
        }
        false
    }
}
