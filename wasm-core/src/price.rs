//! Prices: parsing what Amazon shows into integer minor units, and
//! formatting minor units the way each marketplace shows them.
//!
//! Invariant: no floating point anywhere. Decimal strings are read digit by
//! digit into `u64` minor units with checked arithmetic.

use crate::marketplace::{Currency, Marketplace};

/// An amount of money in the currency's minor unit (cents; yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub minor: u64,
    pub currency: Currency,
}

/// What a piece of price text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceText {
    /// One price: the price.
    Single(Price),
    /// `"$10.99 - $24.99"`: a variation still to choose.
    Range(Price, Price),
    /// `"($6.24 / Pack)"`, `"EUR 23,05 / kg"`.
    UnitPrice(Price),
    /// A price with a label that says it is not the price to pay.
    Labelled(PriceLabel, Price),
    /// No single price.
    NoPrice,
}

/// The kind of label in front of (or behind) a price that is not the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceLabel {
    /// List price, RRP, UVP, "Prix conseillé", print list price.
    ListPrice,
    /// A former price: "Was:", "De:", "Statt".
    Was,
    /// An amount saved: "You Save", "Sie sparen", "Você economiza".
    Savings,
    /// Any other price that is not the offer's price: member-only prices,
    /// shipping, "from" minimums, Subscribe & Save, coupons.
    Other,
}

/// Classifies price text. See the module docs for the judgement calls.
pub fn classify_price(text: &str, marketplace: Option<Marketplace>) -> PriceText {
    let _ = (text, marketplace);
    PriceText::NoPrice
}

/// The price in `text`, only when the text is one single price.
pub fn parse_price(text: &str, marketplace: Option<Marketplace>) -> Option<Price> {
    match classify_price(text, marketplace) {
        PriceText::Single(p) => Some(p),
        _ => None,
    }
}

/// Amazon's split markup:
/// `<span class="a-price-symbol">$</span><span class="a-price-whole">1,234<span class="a-price-decimal">.</span></span><span class="a-price-fraction">56</span>`.
pub fn parse_parts(
    symbol: Option<&str>,
    whole: &str,
    fraction: Option<&str>,
    marketplace: Option<Marketplace>,
) -> Option<Price> {
    let _ = (symbol, whole, fraction, marketplace);
    None
}

/// A machine number from structured data (`"12.48"`, `"1234.5"`,
/// `"32970"`) in the currency's minor unit.
pub fn parse_decimal(number: &str, currency: Currency) -> Option<u64> {
    let number = number.trim();
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || whole.len() > 15 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let exp = usize::from(currency.exponent());
    // Digits beyond the minor unit are accepted only when they are zeros
    // ("32970.00" JPY): anything else is not a price in this currency.
    if frac.len() > exp && frac.bytes().skip(exp).any(|b| b != b'0') {
        return None;
    }
    let mut minor: u64 = 0;
    for b in whole.bytes() {
        minor = minor.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    for i in 0..exp {
        let d = frac.as_bytes().get(i).map_or(0, |b| b - b'0');
        minor = minor.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(minor)
}

/// Formats minor units the way the marketplace shows prices.
pub fn format_price(minor: u64, marketplace: Marketplace) -> String {
    let _ = marketplace;
    amount_string(minor, marketplace.currency())
}

/// The decimal string of an amount: 123456 EUR -> `"1234.56"`; 32970 JPY ->
/// `"32970"`.
pub fn amount_string(minor: u64, currency: Currency) -> String {
    let exp = u32::from(currency.exponent());
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(exp);
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = exp as usize
    )
}
