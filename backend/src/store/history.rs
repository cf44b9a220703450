//! Pure history maths over runs: OHLC buckets and the stats of API.md.
//! No IO; every backend feeds it the runs of [`super::Storage::history_runs`].
//!
//! Definitions (an observation is "in range" when `from <= t <= to`):
//! * `current`: the price of the latest run (may be `None`: no price).
//! * `lowest`/`highest`: over observations in range; `*_at` is the time of
//!   the *latest* observation at that price (the last time you could buy
//!   at it).
//! * `average`: **time-weighted** mean of the price step function
//!   (each observed price holds until the next observation) over
//!   `[max(from, first observation), to]`, rounded half up; stretches
//!   without a price are left out. Time-weighting keeps a price reported
//!   a thousand times in an hour from outweighing a month at another price.
//! * `drops`/`increases`: changes between consecutive priced observations
//!   where the later one is in range (the baseline is the last priced run
//!   before `from` that the store returned).
//! * Points: per bucket (UTC hours, days, ISO weeks from Monday), `open`
//!   is the first price in effect, `close` the last, `high`/`low` the
//!   extremes of runs overlapping the bucket, `n` the observations of the
//!   bucket, spreading a run's `n` evenly over its time span (runs do not
//!   record the times of their middle observations). `raw` is one point
//!   per run. Runs without a price give no point.

use super::Run;

/// Chart granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One point per run.
    Raw,
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
    /// Weeks starting Monday 00:00 UTC.
    Week,
}

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 1970-01-05 was a Monday.
const WEEK_ORIGIN: i64 = 4 * DAY;

/// At most this many points for `auto`.
pub const AUTO_MAX_POINTS: usize = 500;
/// Explicit granularities that would give more buckets than this are made
/// coarser (the response names the granularity actually used).
pub const HARD_MAX_POINTS: i64 = 10_000;

impl Granularity {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Raw => "raw",
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
        }
    }
    /// Bucket size and origin (ms); `None` for `raw`.
    fn size_origin(self) -> Option<(i64, i64)> {
        match self {
            Granularity::Raw => None,
            Granularity::Hour => Some((HOUR, 0)),
            Granularity::Day => Some((DAY, 0)),
            Granularity::Week => Some((7 * DAY, WEEK_ORIGIN)),
        }
    }
    fn coarser(self) -> Option<Granularity> {
        match self {
            Granularity::Raw => Some(Granularity::Hour),
            Granularity::Hour => Some(Granularity::Day),
            Granularity::Day => Some(Granularity::Week),
            Granularity::Week => None,
        }
    }
}

/// A query value outside its allowed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown value")]
pub struct UnknownValue;

/// `auto|raw|hour|day|week`: `Ok(None)` is `auto`.
pub fn parse_granularity(s: &str) -> Result<Option<Granularity>, UnknownValue> {
    Ok(Some(match s {
        "auto" => return Ok(None),
        "raw" => Granularity::Raw,
        "hour" => Granularity::Hour,
        "day" => Granularity::Day,
        "week" => Granularity::Week,
        _ => return Err(UnknownValue),
    }))
}

/// `1d|1w|1m|3m|1y|all` to a duration in ms (`None` = all).
pub fn parse_range(s: &str) -> Result<Option<i64>, UnknownValue> {
    Ok(Some(match s {
        "1d" => DAY,
        "1w" => 7 * DAY,
        "1m" => 30 * DAY,
        "3m" => 91 * DAY,
        "1y" => 365 * DAY,
        "all" => return Ok(None),
        _ => return Err(UnknownValue),
    }))
}

/// One chart point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Bucket start (or run start for `raw`), ms.
    pub t: i64,
    /// First price in the bucket.
    pub open: i64,
    /// Highest price.
    pub high: i64,
    /// Lowest price.
    pub low: i64,
    /// Last price.
    pub close: i64,
    /// Observations.
    pub n: i64,
}

/// Stats of API.md (see the module docs for the definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Latest price.
    pub current: Option<i64>,
    /// Lowest price in range.
    pub lowest: Option<i64>,
    /// Latest time at the lowest price.
    pub lowest_at: Option<i64>,
    /// Highest price in range.
    pub highest: Option<i64>,
    /// Latest time at the highest price.
    pub highest_at: Option<i64>,
    /// Time-weighted average.
    pub average: Option<i64>,
    /// Price decreases.
    pub drops: i64,
    /// Price increases.
    pub increases: i64,
}

fn in_range(r: &Run, from: i64, to: i64) -> bool {
    r.last_seen >= from && r.first_seen <= to
}

/// The stats of `runs` (ordered by `first_seen`, as the store returns them)
/// over `[from, to]`.
pub fn stats(runs: &[Run], from: i64, to: i64) -> Stats {
    let mut s = Stats {
        current: runs
            .iter()
            .rev()
            .find(|r| r.first_seen <= to)
            .and_then(|r| r.price_minor),
        ..Stats::default()
    };
    let mut prev_price: Option<i64> = None;
    for r in runs {
        let Some(p) = r.price_minor else { continue };
        if r.first_seen >= from && r.first_seen <= to {
            if let Some(pp) = prev_price {
                if p < pp {
                    s.drops += 1;
                } else if p > pp {
                    s.increases += 1;
                }
            }
        }
        prev_price = Some(p);
        if in_range(r, from, to) {
            let at = r.last_seen.min(to);
            if s.lowest
                .is_none_or(|l| p < l || (p == l && at > s.lowest_at.unwrap_or(i64::MIN)))
            {
                s.lowest = Some(p);
                s.lowest_at = Some(at);
            }
            if s.highest
                .is_none_or(|h| p > h || (p == h && at > s.highest_at.unwrap_or(i64::MIN)))
            {
                s.highest = Some(p);
                s.highest_at = Some(at);
            }
        }
    }
    s.average = time_weighted_average(runs, from, to);
    s
}

fn time_weighted_average(runs: &[Run], from: i64, to: i64) -> Option<i64> {
    let start = from.max(runs.first()?.first_seen);
    let (mut sum, mut total): (i128, i128) = (0, 0);
    let mut last_priced: Option<i64> = None;
    for (i, r) in runs.iter().enumerate() {
        let seg_start = r.first_seen.max(start);
        let seg_end = runs
            .get(i + 1)
            .map(|nx| nx.first_seen)
            .unwrap_or(to)
            .min(to);
        if let Some(p) = r.price_minor {
            if r.first_seen <= to && r.last_seen.max(seg_end) >= from {
                last_priced = Some(p);
            }
            if seg_end > seg_start {
                let d = i128::from(seg_end - seg_start);
                sum += i128::from(p) * d;
                total += d;
            }
        }
    }
    if total == 0 {
        return last_priced;
    }
    i64::try_from((sum + total / 2) / total).ok()
}

fn bucket_of(t: i64, size: i64, origin: i64) -> i64 {
    (t - origin).div_euclid(size)
}

/// Cumulative observations of `r` up to and including time `t` (spread
/// evenly over the run's span).
fn cumulative(r: &Run, t: i64) -> i64 {
    if t < r.first_seen {
        return 0;
    }
    if t >= r.last_seen {
        return r.n;
    }
    let span = i128::from(r.last_seen - r.first_seen) + 1;
    let done = i128::from(t - r.first_seen) + 1;
    i64::try_from(i128::from(r.n) * done / span).unwrap_or(r.n)
}

/// Picks the granularity: the requested one (made coarser while it would
/// exceed [`HARD_MAX_POINTS`]), or for `auto` the finest that gives at
/// most [`AUTO_MAX_POINTS`] points.
pub fn choose_granularity(
    requested: Option<Granularity>,
    runs: &[Run],
    from: i64,
    to: i64,
) -> Granularity {
    let start = runs
        .first()
        .map(|r| r.first_seen.max(from))
        .unwrap_or(from)
        .max(from);
    let buckets = |g: Granularity| -> i64 {
        match g.size_origin() {
            None => runs.iter().filter(|r| in_range(r, from, to)).count() as i64,
            Some((size, origin)) => {
                bucket_of(to, size, origin) - bucket_of(start, size, origin) + 1
            }
        }
    };
    let (mut g, limit) = match requested {
        Some(g) => (g, HARD_MAX_POINTS),
        None => (Granularity::Raw, AUTO_MAX_POINTS as i64),
    };
    while buckets(g) > limit {
        match g.coarser() {
            Some(c) => g = c,
            None => break,
        }
    }
    g
}

/// Chart points of `runs` over `[from, to]` at granularity `g`.
pub fn points(runs: &[Run], from: i64, to: i64, g: Granularity) -> Vec<Point> {
    let priced = runs
        .iter()
        .filter(|r| in_range(r, from, to))
        .filter_map(|r| r.price_minor.map(|p| (r, p)));
    let Some((size, origin)) = g.size_origin() else {
        return priced
            .map(|(r, p)| Point {
                t: r.first_seen.max(from),
                open: p,
                high: p,
                low: p,
                close: p,
                n: r.n,
            })
            .collect();
    };
    let mut out: Vec<Point> = Vec::new();
    for (r, p) in priced {
        let a = r.first_seen.max(from);
        let b = r.last_seen.min(to);
        for bucket in bucket_of(a, size, origin)..=bucket_of(b, size, origin) {
            let bstart = bucket * size + origin;
            let bend = bstart + size - 1;
            let n = cumulative(r, bend.min(b)) - cumulative(r, bstart.max(a) - 1);
            match out.last_mut() {
                Some(pt) if pt.t == bstart => {
                    pt.high = pt.high.max(p);
                    pt.low = pt.low.min(p);
                    pt.close = p;
                    pt.n += n;
                }
                _ => out.push(Point {
                    t: bstart,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    n,
                }),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_core::types::Availability;

    fn run(first: i64, last: i64, price: Option<i64>, n: i64) -> Run {
        Run {
            first_seen: first,
            last_seen: last,
            price_minor: price,
            availability: Availability::InStock,
            n,
        }
    }

    #[test]
    fn stats_over_simple_runs() {
        let runs = [
            run(0, 10, Some(100), 3),
            run(20, 30, Some(80), 2),
            run(40, 40, None, 1),
            run(50, 60, Some(120), 2),
        ];
        let s = stats(&runs, 0, 100);
        assert_eq!(s.current, Some(120));
        assert_eq!((s.lowest, s.lowest_at), (Some(80), Some(30)));
        assert_eq!((s.highest, s.highest_at), (Some(120), Some(60)));
        assert_eq!((s.drops, s.increases), (1, 1));
        // 100 for [0,20), 80 for [20,40), none [40,50), 120 for [50,100]
        // = (2000 + 1600 + 6000) / 90 = 106.67 -> 107
        assert_eq!(s.average, Some(107));
    }

    #[test]
    fn day_buckets_spread_counts() {
        let runs = [
            run(0, 2 * DAY - 1, Some(100), 4),
            run(2 * DAY, 2 * DAY, Some(50), 1),
        ];
        let pts = points(&runs, 0, 3 * DAY, Granularity::Day);
        assert_eq!(pts.len(), 3);
        assert_eq!(
            pts[0],
            Point {
                t: 0,
                open: 100,
                high: 100,
                low: 100,
                close: 100,
                n: 2
            }
        );
        assert_eq!(pts[1].n, 2);
        assert_eq!(
            pts[2],
            Point {
                t: 2 * DAY,
                open: 50,
                high: 50,
                low: 50,
                close: 50,
                n: 1
            }
        );
        let total: i64 = pts.iter().map(|p| p.n).sum();
        assert_eq!(total, 5);
    }

    #[test]
    fn auto_keeps_points_bounded() {
        let runs: Vec<Run> = (0..2000)
            .map(|i| run(i * HOUR, i * HOUR + 1, Some(100 + i % 7), 2))
            .collect();
        let to = 2000 * HOUR;
        let g = choose_granularity(None, &runs, 0, to);
        assert_eq!(g, Granularity::Day);
        assert!(points(&runs, 0, to, g).len() <= AUTO_MAX_POINTS);
        assert_eq!(
            choose_granularity(Some(Granularity::Raw), &runs, 0, to),
            Granularity::Raw
        );
    }

    #[test]
    fn week_buckets_start_monday() {
        // 1970-01-05 00:00 UTC was a Monday.
        let runs = [run(5 * DAY, 5 * DAY, Some(1), 1)];
        let pts = points(&runs, 0, 10 * DAY, Granularity::Week);
        assert_eq!(pts[0].t, 4 * DAY);
    }
}
