//! Property: random valid report sequences, ingested through the real
//! SQLite store in a random (late-arrival) order, give exactly the history
//! a naive recomputation from all observations gives: the runs are the
//! maximal runs of equal (price, availability) of the observations in time
//! order, and the stats equal the naive stats.

use backend::store::history::{points, stats, Granularity, Stats};
use backend::store::{NewReport, Registered, Storage};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use wasm_core::types::{Availability, Condition, Seller};

#[derive(Debug, Clone, Copy, PartialEq)]
struct Obs {
    t: i64,
    price: Option<i64>,
    avail: Availability,
}

/// The naive stats over all observations (range `all`, `to` = now).
fn naive(obs: &[Obs], to: i64) -> Stats {
    let mut s = Stats {
        current: obs.last().and_then(|o| o.price),
        ..Stats::default()
    };
    let mut prev: Option<i64> = None;
    for o in obs {
        let Some(p) = o.price else { continue };
        if let Some(pp) = prev {
            if p < pp {
                s.drops += 1;
            } else if p > pp {
                s.increases += 1;
            }
        }
        prev = Some(p);
        if s.lowest.is_none_or(|l| p <= l) {
            s.lowest = Some(p);
            s.lowest_at = Some(o.t);
        }
        if s.highest.is_none_or(|h| p >= h) {
            s.highest = Some(p);
            s.highest_at = Some(o.t);
        }
    }
    // Time-weighted: each observation's price holds until the next one.
    let (mut sum, mut total) = (0i128, 0i128);
    for (i, o) in obs.iter().enumerate() {
        let end = obs.get(i + 1).map(|n| n.t).unwrap_or(to);
        if let Some(p) = o.price {
            sum += i128::from(p) * i128::from(end - o.t);
            total += i128::from(end - o.t);
        }
    }
    s.average = if total > 0 {
        i64::try_from((sum + total / 2) / total).ok()
    } else {
        obs.iter().rev().find_map(|o| o.price)
    };
    s
}

/// Maximal runs of the time-ordered observations.
fn naive_runs(obs: &[Obs]) -> Vec<(i64, i64, Option<i64>, Availability, i64)> {
    let mut runs: Vec<(i64, i64, Option<i64>, Availability, i64)> = Vec::new();
    for o in obs {
        match runs.last_mut() {
            Some(r) if r.2 == o.price && r.3 == o.avail => {
                r.1 = o.t;
                r.4 += 1;
            }
            _ => runs.push((o.t, o.t, o.price, o.avail, 1)),
        }
    }
    runs
}

fn value() -> impl Strategy<Value = (Option<i64>, Availability)> {
    (
        prop_oneof![1 => Just(None), 6 => (1i64..5).prop_map(|p| Some(p * 100))],
        prop_oneof![4 => Just(Availability::InStock), 1 => Just(Availability::OutOfStock)],
    )
}

/// Strictly increasing times with a random value each, and a random
/// arrival delay (up to 2 h) that shuffles the arrival order.
fn sequence() -> impl Strategy<Value = Vec<(i64, Option<i64>, Availability, i64)>> {
    prop::collection::vec((1i64..600_000, value(), 0i64..7_200_000), 1..60).prop_map(|v| {
        let mut t = 1_763_700_000_000;
        v.into_iter()
            .map(|(gap, (p, a), delay)| {
                t += gap;
                (t, p, a, delay)
            })
            .collect()
    })
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    store: Arc<dyn Storage>,
    key_id: i64,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/prop.db", dir.path().display());
    let (store, key_id) = rt.block_on(async {
        let store = backend::store::connect(&url).await.expect("open");
        let key_id = match store.register_key(&[1; 32], 0, None).await.expect("key") {
            Registered::Created(k) | Registered::Existing(k) => k.id,
        };
        (store, key_id)
    });
    Fixture {
        rt,
        store,
        key_id,
        _dir: dir,
    }
}

static CASE: AtomicU32 = AtomicU32::new(0);

/// One case: the sequence ingested in arrival order (with `defer`, while
/// more ingest is announced), then the runs and stats compared with the
/// naive ones.
fn check(seq: &[(i64, Option<i64>, Availability, i64)], defer: bool) -> Result<(), TestCaseError> {
    thread_local!(static FIX: Fixture = fixture());
    let case = CASE.fetch_add(1, Ordering::SeqCst);
    let asin = format!("B{case:09}");
    let obs: Vec<Obs> = seq
        .iter()
        .map(|&(t, price, avail, _)| Obs { t, price, avail })
        .collect();
    let mut arrival: Vec<(i64, usize)> = seq
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0 + s.3, i))
        .collect();
    arrival.sort();
    let now = seq.last().map(|s| s.0).unwrap_or(0) + 7_200_000;
    FIX.with(|f| {
        f.rt.block_on(async {
            // This batch and one more announced: refreshes wait.
            let coming = defer.then(|| (f.store.ingest_coming(), f.store.ingest_coming()));
            let mut pending = Vec::new();
            for (k, &(_, i)) in arrival.iter().enumerate() {
                let o = obs[i];
                let mut nonce = [0u8; 16];
                nonce[..4].copy_from_slice(&case.to_be_bytes());
                nonce[4..8].copy_from_slice(&u32::try_from(k).unwrap_or(0).to_be_bytes());
                let r = NewReport {
                    key_id: f.key_id,
                    nonce,
                    marketplace: "amazon.com".into(),
                    asin: asin.clone(),
                    condition: Condition::New,
                    price_minor: o.price,
                    currency: "USD".into(),
                    availability: o.avail,
                    seller: Seller::Amazon,
                    title: String::new(),
                    observed_at: o.t,
                    trusted: false,
                    net_hash: None,
                    raw: "{}".into(),
                };
                pending.push(r);
                // Batches of 1 to 7 reports (the arrival delay decides).
                if seq[i].3 % 7 < pending.len() as i64 || k + 1 == arrival.len() {
                    f.store.ingest(&pending, now).await.expect("ingest");
                    pending.clear();
                }
            }
            if let Some(coming) = coming {
                // Another use of the writer writes what waits first.
                let mut n = [0xff; 16];
                n[..4].copy_from_slice(&case.to_be_bytes());
                f.store
                    .claim_request_nonce(f.key_id, &n, now)
                    .await
                    .expect("nonce");
                drop(coming);
            }
            let summary = f
                .store
                .product_summary("amazon.com", &asin)
                .await
                .expect("summary")
                .expect("known");
            let runs = f
                .store
                .history_runs(summary.id, Condition::New, 0, now)
                .await
                .expect("runs");
            let got: Vec<_> = runs
                .iter()
                .map(|r| {
                    (
                        r.first_seen,
                        r.last_seen,
                        r.price_minor,
                        r.availability,
                        r.n,
                    )
                })
                .collect();
            prop_assert_eq!(got, naive_runs(&obs));
            prop_assert_eq!(stats(&runs, 0, now), naive(&obs, now));
            // Bucketed points keep every priced observation.
            let priced = obs.iter().filter(|o| o.price.is_some()).count() as i64;
            for g in [Granularity::Raw, Granularity::Hour, Granularity::Day] {
                let n: i64 = points(&runs, 0, now, g).iter().map(|p| p.n).sum();
                prop_assert_eq!(n, priced, "granularity {:?}", g);
            }
            Ok(())
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn history_matches_naive_recomputation(seq in sequence()) {
        check(&seq, false)?;
    }

    /// The same with every group's "seen again" refreshes waiting
    /// (`store/sqlite/deferred.rs`: more ingest announced throughout),
    /// written when another use of the writer comes.
    #[test]
    fn history_matches_naive_recomputation_with_refreshes_waiting(seq in sequence()) {
        check(&seq, true)?;
    }
}
