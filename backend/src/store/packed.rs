//! Packed history runs: the byte format of PostgreSQL's `history_packed`
//! rows (migration `0011_history_packed.sql`), where the closed runs of one
//! product, condition and 30-day period live in one row instead of one row
//! each.
//!
//! Why: the history read of a year is ~140 runs; PostgreSQL's cost for it
//! is per row visited (index step, heap fetch, projection), not per byte,
//! so a year read from 13 packed rows costs the server about half of what
//! 140 run rows cost (pgbench of the two statements on this VM: ~21-23k/s
//! against ~10-11k/s, 16 clients). The SQLite store keeps plain runs (its
//! reads are in-process and already cheap).
//!
//! Format (all integers LEB128 varints; signed ones zigzag-encoded first):
//! * version byte `1`, then the run count;
//! * per run: `first_seen` as a signed delta from the previous run's
//!   `last_seen` (the first from 0; runs follow each other, so the gap is
//!   about one observation interval), `last_seen - first_seen` (signed), a
//!   tag (`availability code << 1 | price present`), the price (signed) when
//!   present, and `n` (signed).
//!
//! Deltas use wrapping arithmetic, so every `i64` value round-trips.
//! [`decode`] checks everything and returns an error on any malformed
//! input (truncated, trailing bytes, overlong varints, unknown version):
//! a damaged row is an error for its reader, never a panic.

use super::{code, Run};

/// Length of a packing period: runs are grouped by
/// `first_seen.div_euclid(PERIOD_MS)`.
pub const PERIOD_MS: i64 = 30 * 86_400_000;

/// The format version this code writes and reads.
const VERSION: u8 = 1;

/// The period of a time.
pub fn period_of(t: i64) -> i64 {
    t.div_euclid(PERIOD_MS)
}

/// The first millisecond of a period (saturating at the `i64` range).
pub fn period_start(period: i64) -> i64 {
    period.saturating_mul(PERIOD_MS)
}

/// Why bytes are not a packed run list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackError(pub &'static str);

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "packed history runs: {}", self.0)
    }
}

impl std::error::Error for PackError {}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Runs in the order given (callers pass them in `first_seen` order).
pub fn encode(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + runs.len() * 10);
    out.push(VERSION);
    put(&mut out, runs.len() as u64);
    let mut prev = 0i64;
    for r in runs {
        put(&mut out, zigzag(r.first_seen.wrapping_sub(prev)));
        put(&mut out, zigzag(r.last_seen.wrapping_sub(r.first_seen)));
        let avail = code::availability(r.availability) as u64;
        put(&mut out, avail << 1 | u64::from(r.price_minor.is_some()));
        if let Some(p) = r.price_minor {
            put(&mut out, zigzag(p));
        }
        put(&mut out, zigzag(r.n));
        prev = r.last_seen;
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, PackError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or(PackError("truncated varint"))?;
            self.at += 1;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(PackError("varint overflows 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(PackError("varint longer than 10 bytes"))
    }
}

/// The runs of one packed row.
pub fn decode(bytes: &[u8]) -> Result<Vec<Run>, PackError> {
    let (&version, rest) = bytes.split_first().ok_or(PackError("empty"))?;
    if version != VERSION {
        return Err(PackError("unknown version"));
    }
    let mut r = Reader { bytes: rest, at: 0 };
    let count = r.varint()?;
    // Every run takes at least 4 bytes: a count above that is a lie, and
    // must not size an allocation.
    if count > (rest.len() / 4) as u64 {
        return Err(PackError("run count larger than the data"));
    }
    let mut runs = Vec::with_capacity(count as usize);
    let mut prev = 0i64;
    for _ in 0..count {
        let first_seen = prev.wrapping_add(unzigzag(r.varint()?));
        let last_seen = first_seen.wrapping_add(unzigzag(r.varint()?));
        let tag = r.varint()?;
        let price_minor = if tag & 1 == 1 {
            Some(unzigzag(r.varint()?))
        } else {
            None
        };
        let avail = i64::try_from(tag >> 1).map_err(|_| PackError("availability out of range"))?;
        let n = unzigzag(r.varint()?);
        runs.push(Run {
            first_seen,
            last_seen,
            price_minor,
            availability: code::availability_from(avail),
            n,
        });
        prev = last_seen;
    }
    if r.at != rest.len() {
        return Err(PackError("trailing bytes"));
    }
    Ok(runs)
}

/// The runs of several packed rows, in row order.
pub fn decode_all(rows: &[Vec<u8>]) -> Result<Vec<Run>, PackError> {
    let mut runs = Vec::with_capacity(rows.len() * 12);
    for row in rows {
        runs.extend(decode(row)?);
    }
    Ok(runs)
}

/// The runs a history read returns, from packed rows (`packed`, each a
/// [`decode`]d row, any order) and plain rows (`live`): the last run that
/// began before `from` (the baseline), then every run beginning in
/// `[from, to]`, in `first_seen` order. The same selection as the plain
/// query, whichever side each run sits on.
pub fn select_runs(
    packed: &[Vec<u8>],
    live: Vec<Run>,
    from: i64,
    to: i64,
) -> Result<Vec<Run>, PackError> {
    let mut all = decode_all(packed)?;
    all.extend(live);
    all.sort_by_key(|r| r.first_seen);
    let start = all.iter().rposition(|r| r.first_seen < from).unwrap_or(0);
    Ok(all
        .into_iter()
        .skip(start)
        .filter(|r| r.first_seen <= to)
        .collect())
}

/// A price and the last time it was seen.
pub type PriceAt = (i64, i64);

/// Lowest and highest priced run of a list (price, then the latest
/// `last_seen` at that price), as the summary reports them.
pub fn extremes(runs: &[Run]) -> (Option<PriceAt>, Option<PriceAt>) {
    let mut lo: Option<PriceAt> = None;
    let mut hi: Option<PriceAt> = None;
    for r in runs {
        let Some(p) = r.price_minor else { continue };
        let better_lo = match lo {
            None => true,
            Some((lp, lt)) => p < lp || (p == lp && r.last_seen > lt),
        };
        if better_lo {
            lo = Some((p, r.last_seen));
        }
        let better_hi = match hi {
            None => true,
            Some((hp, ht)) => p > hp || (p == hp && r.last_seen > ht),
        };
        if better_hi {
            hi = Some((p, r.last_seen));
        }
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_core::types::Availability;

    fn run(first: i64, last: i64, price: Option<i64>, a: Availability, n: i64) -> Run {
        Run {
            first_seen: first,
            last_seen: last,
            price_minor: price,
            availability: a,
            n,
        }
    }

    #[test]
    fn runs_round_trip_including_extreme_values() {
        let runs = vec![
            run(i64::MIN, i64::MIN, Some(i64::MIN), Availability::InStock, 1),
            run(-5, 7, None, Availability::OutOfStock, i64::MAX),
            run(0, 0, Some(0), Availability::Preorder, 0),
            run(
                1_763_800_000_000,
                1_763_800_360_000,
                Some(4999),
                Availability::Unknown,
                3,
            ),
            run(
                i64::MAX,
                i64::MAX,
                Some(i64::MAX),
                Availability::InStock,
                -1,
            ),
        ];
        let bytes = encode(&runs);
        assert_eq!(decode(&bytes).unwrap(), runs);
        assert_eq!(decode(&encode(&[])).unwrap(), Vec::<Run>::new());
    }

    #[test]
    fn a_typical_run_takes_at_most_15_bytes() {
        // Hourly observations, a change every few days: what the format is
        // for (a plain `history_runs` row is ~60 bytes with its index entry).
        // Per run: 1 h gap 4 bytes, 71 h duration 5, tag 1, price 2, n 2.
        let base = 1_763_800_000_000i64;
        let runs: Vec<Run> = (0..10)
            .map(|i| {
                let first = base + i * 72 * 3_600_000;
                run(
                    first,
                    first + 71 * 3_600_000,
                    Some(4999 - i * 100),
                    Availability::InStock,
                    72,
                )
            })
            .collect();
        let bytes = encode(&runs);
        assert!(bytes.len() <= 2 + 10 * 15, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), runs);
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        let good = encode(&[run(10, 20, Some(5), Availability::InStock, 2)]);
        assert_eq!(decode(&[]).unwrap_err().0, "empty");
        assert_eq!(decode(&[2, 0]).unwrap_err().0, "unknown version");
        // Every strict prefix is truncated (or claims more runs than it holds).
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing).unwrap_err().0, "trailing bytes");
        assert_eq!(
            decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err().0,
            "run count larger than the data"
        );
        let overlong = [
            1u8, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0,
        ];
        assert_eq!(decode(&overlong).unwrap_err().0, "varint overflows 64 bits");
        // Arbitrary bytes never panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes);
            let mut v1 = bytes.clone();
            if let Some(b) = v1.first_mut() {
                *b = 1;
            }
            let _ = decode(&v1);
        }
    }

    #[test]
    fn selection_keeps_the_baseline_and_the_range_across_both_sides() {
        let a = Availability::InStock;
        let packed = vec![
            encode(&[run(100, 150, Some(1), a, 2), run(200, 250, Some(2), a, 2)]),
            encode(&[run(300, 350, Some(3), a, 2)]),
        ];
        let live = vec![run(400, 450, Some(4), a, 2), run(500, 550, Some(5), a, 2)];
        let firsts = |v: Vec<Run>| v.iter().map(|r| r.first_seen).collect::<Vec<_>>();
        // Baseline in the packed rows.
        assert_eq!(
            firsts(select_runs(&packed, live.clone(), 320, 450).unwrap()),
            vec![300, 400]
        );
        // Baseline on the live side: the packed runs drop out.
        assert_eq!(
            firsts(select_runs(&packed, live.clone(), 450, 1000).unwrap()),
            vec![400, 500]
        );
        // Nothing before `from`: everything from the start up to `to`.
        assert_eq!(
            firsts(select_runs(&packed, live.clone(), 50, 250).unwrap()),
            vec![100, 200]
        );
        // A damaged packed row is an error.
        assert!(select_runs(&[vec![1, 9]], live, 0, 10).is_err());
    }

    #[test]
    fn extremes_prefer_the_latest_run_at_the_extreme_price() {
        let a = Availability::InStock;
        let runs = vec![
            run(0, 10, Some(5), a, 1),
            run(20, 30, None, Availability::OutOfStock, 1),
            run(40, 50, Some(9), a, 1),
            run(60, 70, Some(5), a, 1),
            run(80, 90, Some(9), a, 1),
        ];
        assert_eq!(extremes(&runs), (Some((5, 70)), Some((9, 90))));
        assert_eq!(extremes(&runs[1..2]), (None, None));
    }
}
