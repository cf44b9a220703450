//! Write-behind of "seen again" refreshes in the SQLite ingest writer.
//!
//! Most reports agree with the published price (TRUST.md rule 1): all
//! they change is the tail run's `last_seen`/`n` and the offer's
//! `observed_at`. Written at every group commit, those two rows per report
//! are random pages (a product's offer and its run), and they were about
//! half of the pages a group commit wrote (issue 4's ingest benchmark).
//! Under load they are kept here and written once, by a later group commit
//! of the same writer, instead of by every group.
//!
//! Invariants:
//! * Only refreshes wait: an update of a run that already exists in the
//!   database (`RunPlan::Count` / `ExtendPrev` on the cached tail) and an
//!   offer change that publishes nothing. New runs, published values,
//!   alerts, crawl jobs and the audit rows (the reports themselves) are
//!   written by the group commit that decides them, as before.
//! * The in-memory series cache is always current; the database lags it
//!   by at most the waiting refreshes. The audit row of every report is
//!   committed with its group, so nothing a refresh stands for is lost by
//!   a rollback or a graceful shutdown ([`super::SqliteStore`]'s `close`
//!   writes them). A crash loses at most [`MAX_AGE`] of refreshes (the
//!   `last_seen` and `n` of runs whose reports are in the audit log).
//! * A group defers only while more ingest is coming (batches queued
//!   behind it, or announced by the HTTP handler while their signatures
//!   are verified: `Storage::ingest_coming`), and never for longer than
//!   [`MAX_AGE`]: the group that finds no more coming writes everything,
//!   so an idle server has nothing waiting and a client that ingests and
//!   then reads sees its own refreshes.
//! * Every other user of the writer writes them first
//!   (`SqliteStore::lock_writer`), so no other path reads a stale row or
//!   has its write overwritten by an older refresh.
//! * Two levels: `group_*` belong to the transaction in progress and are
//!   dropped if it rolls back (their reports are gone too); `runs`/`offers`
//!   belong to committed groups and survive a rollback. A row written by the
//!   transaction in progress (`material_*`) is newer than any committed
//!   refresh of it.

use super::{ProductId, SeriesKey, SeriesState};
use crate::store::{Offer, Run};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Longest a refresh waits under continuous load.
pub(super) const MAX_AGE: Duration = Duration::from_millis(500);
/// Most refreshes kept waiting (bounds the memory and the write that ends it).
const MAX_ROWS: usize = 50_000;

pub(super) type RunKey = (ProductId, i64, i64);

#[derive(Default)]
pub(super) struct Deferred {
    /// Refreshes may wait: from [`Deferred::begin_group`] to the group's
    /// commit or rollback (every other path writes them at once).
    pub on: bool,
    /// Refreshes of committed groups.
    runs: BTreeMap<RunKey, Run>,
    offers: BTreeMap<SeriesKey, Offer>,
    /// When the oldest committed refresh started waiting.
    since: Option<Instant>,
    /// The clock of the group that deferred last (the offers' `updated_at`).
    pub now: i64,
    /// The transaction in progress.
    group_runs: BTreeMap<RunKey, Run>,
    group_offers: BTreeMap<SeriesKey, Offer>,
    material_runs: BTreeSet<RunKey>,
    material_offers: BTreeSet<SeriesKey>,
    /// The transaction in progress wrote every committed refresh.
    wrote_committed: bool,
}

impl Deferred {
    /// Nothing waits, committed or in progress.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.offers.is_empty()
            && self.group_runs.is_empty()
            && self.group_offers.is_empty()
    }

    /// Committed refreshes waiting (what `lock_writer` writes).
    pub fn committed(&self) -> usize {
        self.runs.len() + self.offers.len()
    }

    /// A run refresh of the transaction in progress.
    pub fn put_run(&mut self, key: RunKey, run: Run) {
        self.group_runs.insert(key, run);
    }

    /// An offer refresh of the transaction in progress.
    pub fn put_offer(&mut self, key: SeriesKey, offer: Offer) {
        self.group_offers.insert(key, offer);
    }

    /// The transaction in progress writes this run itself (newest value).
    pub fn wrote_run(&mut self, key: RunKey) {
        self.group_runs.remove(&key);
        self.material_runs.insert(key);
    }

    /// The transaction in progress writes this offer itself (newest value).
    pub fn wrote_offer(&mut self, key: SeriesKey) {
        self.group_offers.remove(&key);
        self.material_offers.insert(key);
    }

    /// Whether the group ending now writes what waits: when it is `idle`
    /// (no more ingest coming), when the oldest refresh is [`MAX_AGE`]
    /// old, or when too many wait.
    pub fn due(&self, idle: bool, at: Instant) -> bool {
        if self.is_empty() {
            return false;
        }
        idle || self.since.is_some_and(|s| at.duration_since(s) >= MAX_AGE)
            || self.committed() + self.group_runs.len() + self.group_offers.len() >= MAX_ROWS
    }

    /// Everything to write now, newest value per row, and marks the
    /// committed refreshes written by the transaction in progress.
    pub fn take_all(&mut self) -> (BTreeMap<RunKey, Run>, BTreeMap<SeriesKey, Offer>) {
        let mut runs = unwritten(&self.runs, &self.material_runs, self.wrote_committed);
        let mut offers = unwritten(&self.offers, &self.material_offers, self.wrote_committed);
        runs.append(&mut self.group_runs);
        offers.append(&mut self.group_offers);
        self.wrote_committed = true;
        (runs, offers)
    }

    /// A group commit starts: what other paths marked since the last one
    /// is dropped (they ran with no committed refresh waiting, as
    /// `lock_writer` wrote them first, so their marks mean nothing now).
    pub fn begin_group(&mut self) {
        self.group_runs.clear();
        self.group_offers.clear();
        self.end_group();
        self.on = true;
    }

    /// The transaction in progress committed.
    pub fn commit(&mut self, at: Instant) {
        if self.wrote_committed {
            self.runs.clear();
            self.offers.clear();
        } else {
            for k in &self.material_runs {
                self.runs.remove(k);
            }
            for k in &self.material_offers {
                self.offers.remove(k);
            }
        }
        self.runs.append(&mut self.group_runs);
        self.offers.append(&mut self.group_offers);
        self.since = if self.runs.is_empty() && self.offers.is_empty() {
            None
        } else {
            self.since.or(Some(at))
        };
        self.end_group();
    }

    /// The transaction in progress rolled back: its refreshes are gone
    /// with its reports; the committed ones still wait.
    pub fn rollback(&mut self) {
        self.group_runs.clear();
        self.group_offers.clear();
        self.end_group();
    }

    fn end_group(&mut self) {
        self.material_runs.clear();
        self.material_offers.clear();
        self.wrote_committed = false;
        self.on = false;
    }

    /// A series just loaded from the database, brought up to the
    /// refreshes that wait for it (the cache was cleared after a rollback,
    /// or filled up).
    pub fn overlay(&self, key: SeriesKey, st: &mut SeriesState) {
        if let Some(o) = self.group_offers.get(&key).or_else(|| {
            (!self.wrote_committed && !self.material_offers.contains(&key))
                .then(|| self.offers.get(&key))
                .flatten()
        }) {
            st.offer = Some(o.clone());
        }
        if let Some(tail) = st.tail {
            let rk = (key.0, key.1, tail.first_seen);
            if let Some(r) = self.group_runs.get(&rk).or_else(|| {
                (!self.wrote_committed && !self.material_runs.contains(&rk))
                    .then(|| self.runs.get(&rk))
                    .flatten()
            }) {
                st.tail = Some(*r);
            }
        }
    }
}

/// The committed refreshes of `all` still to write: none when the
/// transaction in progress already wrote them, and never those a material
/// write of the same row replaced.
fn unwritten<K: Ord + Copy, V: Clone>(
    all: &BTreeMap<K, V>,
    material: &BTreeSet<K>,
    written: bool,
) -> BTreeMap<K, V> {
    if written {
        return BTreeMap::new();
    }
    all.iter()
        .filter(|(k, _)| !material.contains(k))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_core::types::Availability;

    fn run(first: i64, last: i64, n: i64) -> Run {
        Run {
            first_seen: first,
            last_seen: last,
            price_minor: Some(1999),
            availability: Availability::InStock,
            n,
        }
    }

    /// A series as loaded from the database: its tail run, no offer.
    fn series(tail: Run) -> SeriesState {
        SeriesState {
            tail: Some(tail),
            offer: None,
            open_job: None,
        }
    }

    #[test]
    fn a_committed_refresh_waits_until_a_group_writes_it() {
        let t0 = Instant::now();
        let mut d = Deferred::default();
        d.put_run((1, 0, 100), run(100, 200, 2));
        assert!(d.due(true, t0), "an idle queue writes at once");
        assert!(!d.due(false, t0), "ingest queued behind: it waits");
        d.commit(t0);
        assert_eq!(d.committed(), 1);
        assert!(!d.due(false, t0 + MAX_AGE / 2));
        assert!(d.due(false, t0 + MAX_AGE), "never older than MAX_AGE");
        // The next group refreshes it again: one row, the newest value.
        d.put_run((1, 0, 100), run(100, 300, 3));
        let (runs, offers) = d.take_all();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[&(1, 0, 100)].n, 3);
        assert!(offers.is_empty());
        d.commit(t0 + MAX_AGE);
        assert!(d.is_empty());
        assert!(!d.due(true, t0 + MAX_AGE), "nothing to write");
    }

    #[test]
    fn a_rollback_keeps_the_committed_refreshes_only() {
        let t0 = Instant::now();
        let mut d = Deferred::default();
        d.put_run((1, 0, 100), run(100, 200, 2));
        d.commit(t0);
        d.put_run((1, 0, 100), run(100, 300, 3));
        d.put_run((2, 0, 50), run(50, 60, 2));
        // The group also wrote everything mid-way (an out-of-order report).
        let (runs, _) = d.take_all();
        assert_eq!(runs.len(), 2);
        d.rollback();
        assert_eq!(d.committed(), 1, "the committed refresh still waits");
        let (runs, _) = d.take_all();
        assert_eq!(runs[&(1, 0, 100)].n, 2, "with its committed value");
    }

    #[test]
    fn a_row_the_group_writes_itself_supersedes_a_committed_refresh() {
        let t0 = Instant::now();
        let mut d = Deferred::default();
        d.put_run((1, 0, 100), run(100, 200, 2));
        d.commit(t0);
        d.wrote_run((1, 0, 100));
        let (runs, _) = d.take_all();
        assert!(runs.is_empty(), "the older refresh is not written over it");
        d.rollback();
        // Rolled back: the material write is gone, the refresh waits again.
        let (runs, _) = d.take_all();
        assert_eq!(runs.len(), 1);
        d.commit(t0);
        // Committed with a material write of the row: nothing waits.
        d.put_run((1, 0, 100), run(100, 300, 3));
        d.commit(t0);
        d.wrote_run((1, 0, 100));
        d.commit(t0);
        assert!(d.is_empty());
    }

    #[test]
    fn a_reloaded_series_gets_its_waiting_refreshes() {
        let t0 = Instant::now();
        let mut d = Deferred::default();
        d.put_run((1, 0, 100), run(100, 200, 2));
        d.commit(t0);
        let mut st = series(run(100, 150, 1));
        d.overlay((1, 0), &mut st);
        assert_eq!(st.tail, Some(run(100, 200, 2)));
        // A different tail in the database (a newer run was written).
        let mut st = series(run(300, 300, 1));
        d.overlay((1, 0), &mut st);
        assert_eq!(st.tail, Some(run(300, 300, 1)));
    }
}
