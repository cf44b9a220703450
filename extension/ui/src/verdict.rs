//! The deal verdict: one short sentence comparing the current price with
//! the chosen range ("Lowest in 90 days", "10% above the 3-month
//! average"). Integer arithmetic; percentages rounded half away from
//! zero. Judgement call: within 2% of the average reads "about the
//! average", as a shopper cannot act on a smaller difference.

/// How the verdict judges the price (the view colours it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// At or near the range's lowest: a good moment.
    Good,
    /// Around the average.
    Neutral,
    /// Above the average or at the highest.
    Bad,
}

/// A verdict: text and tone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The sentence.
    pub text: String,
    /// Its tone.
    pub tone: Tone,
}

/// "90 days", "a year": the span of a range for "lowest in ...".
fn span(range: &str) -> &'static str {
    match range {
        "1d" => "a day",
        "1w" => "7 days",
        "1m" => "30 days",
        "3m" => "90 days",
        "1y" => "a year",
        _ => "all recorded history",
    }
}

/// "3-month average".
fn average_name(range: &str) -> &'static str {
    match range {
        "1d" => "1-day average",
        "1w" => "1-week average",
        "1m" => "1-month average",
        "3m" => "3-month average",
        "1y" => "1-year average",
        _ => "all-time average",
    }
}

/// `(a - b) * 100 / b` rounded half away from zero; `None` when `b <= 0`.
pub fn percent_diff(a: i64, b: i64) -> Option<i64> {
    if b <= 0 {
        return None;
    }
    let num = (i128::from(a) - i128::from(b)) * 100;
    let den = i128::from(b);
    let q = if num >= 0 {
        (num * 2 + den) / (den * 2)
    } else {
        -((-num * 2 + den) / (den * 2))
    };
    i64::try_from(q).ok()
}

/// The verdict for `current` against the range's stats; `None` when there
/// is nothing to compare (no price, or fewer than two points).
pub fn verdict(
    current: Option<i64>,
    lowest: Option<i64>,
    highest: Option<i64>,
    average: Option<i64>,
    points: usize,
    range: &str,
) -> Option<Verdict> {
    let current = current?;
    if points < 2 {
        return None;
    }
    if let (Some(lo), Some(hi)) = (lowest, highest) {
        if lo < hi && current <= lo {
            return Some(Verdict {
                text: format!("Lowest in {}", span(range)),
                tone: Tone::Good,
            });
        }
        if lo < hi && current >= hi {
            return Some(Verdict {
                text: format!("Highest in {}", span(range)),
                tone: Tone::Bad,
            });
        }
    }
    let pct = percent_diff(current, average?)?;
    let name = average_name(range);
    Some(if pct.abs() <= 2 {
        Verdict {
            text: format!("About the {name}"),
            tone: Tone::Neutral,
        }
    } else if pct > 0 {
        Verdict {
            text: format!("{pct}% above the {name}"),
            tone: Tone::Bad,
        }
    } else {
        Verdict {
            text: format!("{}% below the {name}", -pct),
            tone: Tone::Good,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Option<Verdict>) -> Option<String> {
        v.map(|v| v.text)
    }

    #[test]
    fn verdicts() {
        let check = |cur, lo, hi, avg, n, range, want: Option<&str>| {
            assert_eq!(
                text(verdict(cur, lo, hi, avg, n, range)),
                want.map(str::to_string),
                "{cur:?} {lo:?} {hi:?} {avg:?} {range}"
            );
        };
        check(
            Some(900),
            Some(900),
            Some(1200),
            Some(1000),
            5,
            "3m",
            Some("Lowest in 90 days"),
        );
        check(
            Some(1200),
            Some(900),
            Some(1200),
            Some(1000),
            5,
            "1m",
            Some("Highest in 30 days"),
        );
        check(
            Some(1100),
            Some(900),
            Some(1200),
            Some(1000),
            5,
            "3m",
            Some("10% above the 3-month average"),
        );
        check(
            Some(950),
            Some(900),
            Some(1200),
            Some(1000),
            5,
            "1y",
            Some("5% below the 1-year average"),
        );
        check(
            Some(1010),
            Some(900),
            Some(1200),
            Some(1000),
            5,
            "all",
            Some("About the all-time average"),
        );
        check(
            Some(1000),
            Some(1000),
            Some(1000),
            Some(1000),
            5,
            "3m",
            Some("About the 3-month average"),
        );
        check(None, Some(900), Some(1200), Some(1000), 5, "3m", None);
        check(Some(900), Some(900), Some(1200), Some(1000), 1, "3m", None);
    }

    #[test]
    fn percentages_round_half_away_from_zero() {
        assert_eq!(percent_diff(1_005, 1_000), Some(1));
        assert_eq!(percent_diff(1_015, 1_000), Some(2));
        assert_eq!(percent_diff(985, 1_000), Some(-2));
        assert_eq!(percent_diff(1, 0), None);
        assert_eq!(percent_diff(i64::MAX, 1), None);
    }
}
