//! The price chart's geometry: a step chart of the history points in an
//! SVG coordinate box. Prices and times are integers; the mapping onto
//! the box is integer arithmetic (i128, so no overflow) rounded to whole
//! SVG units. The view box is scaled by the browser, so whole units of a
//! 600 x 180 box are finer than a pixel at the overlay's size.
//!
//! A price holds from its point's `t` until the next point (or the end of
//! the range): one horizontal segment per point, a vertical one between
//! levels. Each point is also a vertex the view draws as a `<circle>`
//! carrying `data-t` / `data-price` (the history API's `t` / `close`).

use crate::model::{Correction, Point};

/// View box width.
pub const WIDTH: i64 = 600;
/// View box height.
pub const HEIGHT: i64 = 180;
/// Left margin (price labels), right, top and bottom margins.
pub const LEFT: i64 = 8;
const RIGHT: i64 = 8;
const TOP: i64 = 14;
const BOTTOM: i64 = 22;

/// One drawn point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    /// X in view box units.
    pub x: i64,
    /// Y in view box units.
    pub y: i64,
    /// The point's time (ms).
    pub t: i64,
    /// The point's price (`close`, minor units).
    pub price: i64,
    /// A correction (a report proved false) falls in this point's step.
    pub corrected: bool,
}

/// Everything the view draws.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Geometry {
    /// The step line (`d` of an SVG path).
    pub path: String,
    /// One vertex per point, oldest first.
    pub vertices: Vec<Vertex>,
    /// Index into `vertices` of the (latest) lowest point.
    pub lowest: Option<usize>,
    /// Index of the (latest) highest point.
    pub highest: Option<usize>,
    /// Y of the highest and lowest price levels (for the guide lines).
    pub y_high: i64,
    /// See `y_high`.
    pub y_low: i64,
}

fn scale(value: i64, from_lo: i64, from_hi: i64, to_lo: i64, to_hi: i64) -> i64 {
    if from_hi <= from_lo {
        return (to_lo + to_hi) / 2;
    }
    let num = (i128::from(value) - i128::from(from_lo)) * i128::from(to_hi - to_lo);
    let den = i128::from(from_hi) - i128::from(from_lo);
    // Rounded to nearest (floor of q + 1/2, right for both directions);
    // the result lies between to_lo and to_hi, view box coordinates, so
    // it fits i64.
    let q = (num * 2 + den).div_euclid(den * 2);
    to_lo + i64::try_from(q).unwrap_or(0)
}

/// The chart of `points` (oldest first) from the first point to `end`
/// (ms, usually now; a point later than `end` stretches the axis).
/// `corrections` mark the steps they fall in.
pub fn geometry(points: &[Point], corrections: &[Correction], end: i64) -> Geometry {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Geometry::default();
    };
    let t0 = first.t;
    let t1 = end.max(last.t);
    let lo = points.iter().map(|p| p.close).min().unwrap_or(0);
    let hi = points.iter().map(|p| p.close).max().unwrap_or(0);
    let (x_lo, x_hi) = (LEFT, WIDTH - RIGHT);
    let (y_top, y_bottom) = (TOP, HEIGHT - BOTTOM);
    let x_of = |t: i64| scale(t, t0, t1, x_lo, x_hi);
    // Higher price, smaller y.
    let y_of = |p: i64| scale(p, lo, hi, y_bottom, y_top);

    let mut vertices = Vec::with_capacity(points.len());
    let mut path = String::with_capacity(points.len() * 16);
    for (i, p) in points.iter().enumerate() {
        let x = x_of(p.t);
        let y = y_of(p.close);
        if i == 0 {
            path.push_str(&format!("M{x} {y}"));
        } else {
            path.push_str(&format!("V{y}"));
        }
        let next_t = points.get(i + 1).map_or(t1, |n| n.t);
        path.push_str(&format!("H{}", x_of(next_t)));
        let corrected = corrections
            .iter()
            .any(|c| c.at >= p.t && (c.at < next_t || (i + 1 == points.len() && c.at <= next_t)));
        vertices.push(Vertex {
            x,
            y,
            t: p.t,
            price: p.close,
            corrected,
        });
    }
    // The latest point at the extreme (API.md's `lowest_at` is the latest).
    let lowest = vertices.iter().rposition(|v| v.price == lo);
    let highest = vertices.iter().rposition(|v| v.price == hi);
    Geometry {
        path,
        vertices,
        lowest,
        highest,
        y_high: y_of(hi),
        y_low: y_of(lo),
    }
}

/// The vertex nearest to view box x (for pointer moves over the chart).
pub fn nearest(vertices: &[Vertex], x: i64) -> Option<usize> {
    vertices
        .iter()
        .enumerate()
        .min_by_key(|(_, v)| (v.x - x).abs())
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(t: i64, close: i64) -> Point {
        Point {
            t,
            close,
            low: close,
            high: close,
        }
    }

    #[test]
    fn steps_span_the_box() {
        let g = geometry(&[pt(0, 100), pt(50, 200), pt(75, 150)], &[], 100);
        let xs: Vec<i64> = g.vertices.iter().map(|v| v.x).collect();
        let ys: Vec<i64> = g.vertices.iter().map(|v| v.y).collect();
        assert_eq!(xs, vec![LEFT, 300, 446]);
        assert_eq!(ys, vec![HEIGHT - BOTTOM, TOP, 86]);
        assert_eq!(g.path, "M8 158H300V14H446V86H592");
        assert_eq!(g.lowest, Some(0));
        assert_eq!(g.highest, Some(1));
    }

    #[test]
    fn flat_and_single_points_sit_in_the_middle() {
        let g = geometry(&[pt(10, 500)], &[], 10);
        assert_eq!(g.vertices.len(), 1);
        assert_eq!(g.vertices[0].y, (TOP + HEIGHT - BOTTOM) / 2);
        assert_eq!(g.vertices[0].x, (LEFT + WIDTH - RIGHT) / 2);
        assert_eq!(geometry(&[], &[], 0), Geometry::default());
    }

    #[test]
    fn latest_extreme_wins_and_corrections_mark_their_step() {
        let c = Correction {
            at: 60,
            reported_price_minor: Some(1),
            verified_price_minor: Some(100),
        };
        let g = geometry(&[pt(0, 100), pt(50, 300), pt(70, 100)], &[c], 100);
        assert_eq!(g.lowest, Some(2));
        let marked: Vec<bool> = g.vertices.iter().map(|v| v.corrected).collect();
        assert_eq!(marked, vec![false, true, false]);
        assert_eq!(nearest(&g.vertices, 310), Some(1));
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let g = geometry(
            &[pt(i64::MIN / 2, 0), pt(i64::MAX / 2, i64::MAX / 2)],
            &[],
            0,
        );
        assert_eq!(g.vertices[0].x, LEFT);
        assert_eq!(g.vertices[1].y, TOP);
    }
}
