//! Independence groups and corroboration (TRUST.md).
//!
//! Keys that report from the same network (/24 or /48, seen only as the
//! keyed hash `http::limits::net_hash`) and registered on the same UTC day
//! form one group: a swarm of keys made together on one network counts
//! once. A report without a network hash (e.g. ingested from a trusted
//! path) is its own group, named by its key.

use super::{DAY_MS, ESTABLISHED_T};
use std::collections::BTreeMap;

/// An independence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupId {
    /// Network hash + registration day (days since the Unix epoch).
    Net {
        /// Keyed hash of the network prefix.
        net: [u8; 16],
        /// `registered_at` in whole UTC days.
        day: i64,
    },
    /// A key with no network hash is its own group.
    Key(i64),
}

/// The group of a key that reported from `net_hash` and registered at
/// `registered_at` (ms). `key_id` names the group when there is no hash.
pub fn group_of(net_hash: Option<[u8; 16]>, registered_at: i64, key_id: i64) -> GroupId {
    match net_hash {
        Some(net) => GroupId::Net {
            net,
            day: registered_at.div_euclid(DAY_MS),
        },
        None => GroupId::Key(key_id),
    }
}

/// `c = 1 - prod(1 - T_g)` over the *established* groups (`T >= 0.7`)
/// among `reports` (one `(group, T)` per report that agreed with the price
/// in the window); each group counts once, with its best `T`.
pub fn corroboration(reports: &[(GroupId, f64)]) -> f64 {
    let best = best_per_group(reports);
    1.0 - best
        .values()
        .fold(1.0, |p, t| p * (1.0 - t.clamp(0.0, 1.0)))
}

/// Number of distinct established groups among `reports`.
pub fn established_groups(reports: &[(GroupId, f64)]) -> usize {
    best_per_group(reports).len()
}

fn best_per_group(reports: &[(GroupId, f64)]) -> BTreeMap<GroupId, f64> {
    let mut best: BTreeMap<GroupId, f64> = BTreeMap::new();
    for &(g, t) in reports {
        if t >= ESTABLISHED_T {
            let e = best.entry(g).or_insert(t);
            if t > *e {
                *e = t;
            }
        }
    }
    best
}
