//! Text shown to the user: prices the way the marketplace writes them
//! (`wasm_core::price::format_price`), dates (UTC, from Unix ms, integer
//! arithmetic only), "how long ago", and parsing what the user types as a
//! target price into minor units (never through floats).

use wasm_core::marketplace::{Currency, Marketplace};
use wasm_core::price::{amount_string, format_price, parse_decimal};

/// `minor` units as the marketplace shows them (`$1,234.56`, `1.234,56 €`).
/// An unknown marketplace falls back to `<amount> <currency code>`; a
/// negative amount (never a price) shows as a dash.
pub fn price(minor: i64, marketplace: &str) -> String {
    let Ok(minor) = u64::try_from(minor) else {
        return "–".to_string();
    };
    match Marketplace::from_domain(marketplace) {
        Some(m) => format_price(minor, m),
        None => minor.to_string(),
    }
}

/// The amount without symbol for an input field's initial value, in the
/// marketplace's decimal separator (`12,34` on amazon.de).
pub fn amount_for_input(minor: i64, marketplace: &str) -> String {
    let Ok(minor) = u64::try_from(minor) else {
        return String::new();
    };
    match Marketplace::from_domain(marketplace) {
        Some(m) => {
            let plain = amount_string(minor, m.currency());
            if m.number_format().decimal == ',' {
                plain.replace('.', ",")
            } else {
                plain
            }
        }
        None => minor.to_string(),
    }
}

/// What the user typed as a price (`12.34`, `12,34`, `1.234,56`, `$12`,
/// `1 234,56 zł`) in minor units of the marketplace's currency. The last
/// `.` or `,` followed by at most the currency's number of fraction digits
/// is the decimal separator; other separators group. `None` when it is
/// not a plain amount.
pub fn parse_amount(text: &str, marketplace: &str) -> Option<i64> {
    let m = Marketplace::from_domain(marketplace)?;
    let currency: Currency = m.currency();
    // The marketplace's own symbol may be typed (`$`, `zł`, `R$`); any other
    // letter means this is not an amount.
    if text
        .replace(m.number_format().symbol, "")
        .chars()
        .any(char::is_alphabetic)
    {
        return None;
    }
    // Keep digits and separators; symbols and spaces go.
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .collect();
    if kept.is_empty() || !kept.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp = usize::from(currency.exponent());
    let normalized = match kept.rfind(['.', ',']) {
        Some(i) if exp > 0 && kept.len() - i - 1 <= exp && kept.len() - i - 1 > 0 => {
            let (whole, frac) = kept.split_at(i);
            let whole: String = whole.chars().filter(char::is_ascii_digit).collect();
            format!(
                "{}.{}",
                if whole.is_empty() { "0" } else { &whole },
                &frac[1..]
            )
        }
        _ => kept.chars().filter(char::is_ascii_digit).collect(),
    };
    parse_decimal(&normalized, currency).and_then(|m| i64::try_from(m).ok())
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d in 1..=31 and m in 1..=12 by construction.
    (y, m as u32, d as u32)
}

const DAY_MS: i64 = 86_400_000;

/// `2026-11-22` (UTC).
pub fn date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-11-22 14:05 UTC`.
pub fn date_time(ms: i64) -> String {
    let in_day = ms.rem_euclid(DAY_MS) / 60_000;
    format!("{} {:02}:{:02} UTC", date(ms), in_day / 60, in_day % 60)
}

/// `just now`, `5 min ago`, `3 h ago`, `2 days ago` (a time in the future,
/// clock skew, reads as "just now").
pub fn ago(ms: i64, now: i64) -> String {
    let secs = (now - ms).max(0) / 1_000;
    match secs {
        0..=59 => "just now".to_string(),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        86_400..=172_799 => "1 day ago".to_string(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_marketplace() {
        assert_eq!(price(123_456, "amazon.com"), "$1,234.56");
        assert_eq!(price(123_456, "amazon.de"), "1.234,56\u{a0}€");
        assert_eq!(price(1_598, "amazon.co.jp"), "￥1,598");
        assert_eq!(price(-1, "amazon.com"), "–");
        assert_eq!(price(5, "example.org"), "5");
    }

    #[test]
    fn typed_amounts() {
        let check = |text: &str, mp: &str, want: Option<i64>| {
            assert_eq!(parse_amount(text, mp), want, "{text:?} on {mp}");
        };
        check("12.34", "amazon.com", Some(1_234));
        check("$12", "amazon.com", Some(1_200));
        check("1,234.5", "amazon.com", Some(123_450));
        check("12,34", "amazon.de", Some(1_234));
        check("1.234,56 €", "amazon.de", Some(123_456));
        check("1598", "amazon.co.jp", Some(1_598));
        check("1,598", "amazon.co.jp", Some(1_598));
        check("", "amazon.com", None);
        check("abc", "amazon.com", None);
        check("12.34", "example.org", None);
        assert_eq!(amount_for_input(1_234, "amazon.de"), "12,34");
        assert_eq!(amount_for_input(1_234, "amazon.com"), "12.34");
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_763_769_600_000), "2025-11-22");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(-DAY_MS), "1969-12-31");
        assert_eq!(
            date_time(1_763_769_600_000 + 3_723_000),
            "2025-11-22 01:02 UTC"
        );
        assert_eq!(ago(0, 30_000), "just now");
        assert_eq!(ago(0, 3 * 3_600_000), "3 h ago");
        assert_eq!(ago(0, 5 * DAY_MS), "5 days ago");
    }
}
