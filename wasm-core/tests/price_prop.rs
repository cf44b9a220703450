//! Property tests for prices: every marketplace's own display format
//! parses back to the same amount and currency; arbitrary text never
//! panics. Native only (proptest does not build for wasm32 here).

#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use wasm_core::marketplace::Marketplace;
use wasm_core::price::{
    amount_string, classify_price, format_price, parse_decimal, parse_parts, parse_price, Price,
    PriceLabel, PriceText,
};

fn marketplace() -> impl Strategy<Value = Marketplace> {
    (0..Marketplace::all().len()).prop_map(|i| Marketplace::all()[i])
}

/// Amounts from one minor unit to ten billion, weighted towards small ones
/// (where most separator ambiguity lives).
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..1_000, 0u64..1_000_000, 0u64..1_000_000_000_000]
}

const LABELS: &[(&str, PriceLabel)] = &[
    ("List Price:", PriceLabel::ListPrice),
    ("RRP:", PriceLabel::ListPrice),
    ("UVP:", PriceLabel::ListPrice),
    ("Prix conseillé :", PriceLabel::ListPrice),
    ("Was:", PriceLabel::Was),
    ("De:", PriceLabel::Was),
    ("Statt:", PriceLabel::Was),
    ("You Save:", PriceLabel::Savings),
    ("Sie sparen:", PriceLabel::Savings),
    ("Você economiza:", PriceLabel::Savings),
    ("Join Prime to buy this item at", PriceLabel::Other),
    ("Subscribe & Save:", PriceLabel::Other),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn format_then_parse_round_trips(m in marketplace(), minor in amount()) {
        let shown = format_price(minor, m);
        let want = Price { minor, currency: m.currency() };
        prop_assert_eq!(parse_price(&shown, Some(m)), Some(want), "{:?} on {}", shown, m);
        // The same text inside a sentence and with plain spaces.
        let plain = shown.replace(['\u{a0}', '\u{202f}'], " ");
        prop_assert_eq!(parse_price(&plain, Some(m)), Some(want), "{:?} on {}", plain, m);
        let sentence = format!("Price:\n  {shown}\n  & FREE Returns");
        prop_assert_eq!(parse_price(&sentence, Some(m)), Some(want), "{:?} on {}", sentence, m);
    }

    #[test]
    fn labelled_ranges_and_unit_prices_are_never_the_price(
        m in marketplace(),
        a in amount(),
        b in amount(),
        label in 0usize..LABELS.len(),
    ) {
        let price = |minor| Price { minor, currency: m.currency() };
        let (words, kind) = LABELS[label];
        let text = format!("{words} {}", format_price(a, m));
        prop_assert_eq!(classify_price(&text, Some(m)), PriceText::Labelled(kind, price(a)), "{:?}", text);
        prop_assert_eq!(parse_price(&text, Some(m)), None);

        let text = format!("({} / kg)", format_price(a, m));
        prop_assert_eq!(classify_price(&text, Some(m)), PriceText::UnitPrice(price(a)), "{:?}", text);

        let text = format!("{} - {}", format_price(a, m), format_price(b, m));
        let want = if a == b { PriceText::Single(price(a)) } else { PriceText::Range(price(a), price(b)) };
        prop_assert_eq!(classify_price(&text, Some(m)), want, "{:?}", text);

        // Two different unlabelled prices: no price, never the first one.
        let text = format!("{} {}", format_price(a, m), format_price(b, m));
        let want = if a == b { Some(price(a)) } else { None };
        prop_assert_eq!(parse_price(&text, Some(m)), want, "{:?}", text);
    }

    #[test]
    fn amount_string_round_trips(m in marketplace(), minor in amount()) {
        let c = m.currency();
        prop_assert_eq!(parse_decimal(&amount_string(minor, c), c), Some(minor));
    }

    #[test]
    fn split_parts_round_trip(m in marketplace(), minor in amount()) {
        // Rebuild Amazon's split markup from the formatted price.
        let f = m.number_format();
        let shown = format_price(minor, m);
        let number = shown.replace(f.symbol, "").replace('\u{a0}', " ");
        let number = number.trim();
        let (whole, fraction) = match number.rsplit_once(f.decimal) {
            Some((w, fr)) if m.currency().exponent() > 0 => (format!("{w}{}", f.decimal), Some(fr)),
            _ => (number.to_owned(), None),
        };
        let want = Some(Price { minor, currency: m.currency() });
        prop_assert_eq!(parse_parts(Some(f.symbol), &whole, fraction, Some(m)), want);
        prop_assert_eq!(parse_parts(None, &whole, fraction, Some(m)), want);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,60}", m in proptest::option::of(marketplace())) {
        let _ = classify_price(&s, m);
        let _ = parse_parts(Some(&s), &s, Some(&s), m);
    }

    #[test]
    fn price_like_noise_never_panics(
        s in "[-0-9 .,'$€£¥￥₹%/()a-zA-Z:\u{a0}\u{202f}]{0,40}",
        m in proptest::option::of(marketplace()),
    ) {
        if let Some(p) = parse_price(&s, m) {
            // Whatever was accepted is a sane amount.
            prop_assert!(p.minor < 10u64.pow(15));
        }
    }
}
