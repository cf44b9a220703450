//! Parse-price throughput over a realistic mix of what the extraction
//! rules hand to `classify_price`: buy-box prices in every locale, split
//! markup text, labelled list prices, unit prices, ranges, and text with no
//! price. Prints strings per second (and ns per string).
//!
//! `cargo bench -p wasm-core --bench price`

use std::hint::black_box;
use std::time::{Duration, Instant};
use wasm_core::marketplace::Marketplace;
use wasm_core::price::{classify_price, format_price, parse_parts};

const MIX: &[(&str, &str)] = &[
    ("$29.99", "amazon.com"),
    ("$12.48", "amazon.com"),
    ("$12.48 ($6.24 / Pack)", "amazon.com"),
    ("$ 9 . 98", "amazon.com"),
    ("List Price: $13.97", "amazon.com"),
    ("-29% $9.98 List Price: $13.97", "amazon.com"),
    ("Join Prime to buy this item at $8.09", "amazon.com"),
    ("$10.99 - $24.99", "amazon.com"),
    ("$8.99$8.99", "amazon.com"),
    ("Kindle Price: $9.99", "amazon.com"),
    ("EUR 12,99", "amazon.de"),
    ("EUR 23,05 / kg", "amazon.de"),
    ("UVP: EUR 159,99", "amazon.de"),
    ("Sie sparen: EUR 50,99 (32%)", "amazon.de"),
    ("1.234,56 €", "amazon.de"),
    ("225,00 €", "amazon.es"),
    ("66,99€", "amazon.es"),
    ("Entrega 57,48 €", "amazon.es"),
    ("1\u{202f}234,56\u{a0}€", "amazon.fr"),
    ("£13.53", "amazon.co.uk"),
    ("RRP £16.99, You Save £3.46 (20%)", "amazon.co.uk"),
    ("¥32,970", "amazon.co.jp"),
    ("Price: ¥32,970 + ￥1,598 shipping", "amazon.co.jp"),
    ("330pt (1%)", "amazon.co.jp"),
    ("R$ 19,90", "amazon.com.br"),
    ("De: R$ 59,90", "amazon.com.br"),
    ("R$169,00 - R$199,90", "amazon.com.br"),
    ("₹1,23,456.00", "amazon.in"),
    ("1 234,56 zł", "amazon.pl"),
    ("AED 1,234.56", "amazon.ae"),
    ("Only 4 left in stock - order soon.", "amazon.com"),
    (
        "\n          \n            $45.99\n          \n          \n            $45.99\n          ",
        "amazon.com",
    ),
];

fn measure<F: FnMut() -> usize>(name: &str, mut f: F) {
    // Warm up, then run whole rounds for at least two seconds.
    for _ in 0..200 {
        black_box(f());
    }
    let start = Instant::now();
    let mut items = 0usize;
    while start.elapsed() < Duration::from_secs(2) {
        items += f();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<28} {:>12.0} strings/s  {:>8.0} ns/string  ({items} strings in {secs:.2} s)",
        items as f64 / secs,
        secs * 1e9 / items as f64,
    );
}

fn main() {
    let mix: Vec<(&str, Option<Marketplace>)> = MIX
        .iter()
        .map(|(t, d)| (*t, Marketplace::from_domain(d)))
        .collect();
    // Sanity: the mix holds both prices and non-prices.
    let singles = mix
        .iter()
        .filter(|(t, m)| {
            matches!(
                classify_price(t, *m),
                wasm_core::price::PriceText::Single(_)
            )
        })
        .count();
    println!("mix: {} strings, {singles} single prices", mix.len());

    measure("classify_price (mix)", || {
        for (t, m) in &mix {
            black_box(classify_price(black_box(t), *m));
        }
        mix.len()
    });
    measure("classify_price (no mkt)", || {
        for (t, _) in &mix {
            black_box(classify_price(black_box(t), None));
        }
        mix.len()
    });
    measure("parse_parts", || {
        let us = Marketplace::from_domain("amazon.com");
        let de = Marketplace::from_domain("amazon.de");
        black_box(parse_parts(Some("$"), black_box("1,234."), Some("56"), us));
        black_box(parse_parts(Some("€"), black_box("39,"), Some("99"), de));
        2
    });
    measure("format_price (all mkts)", || {
        for m in Marketplace::all() {
            black_box(format_price(black_box(123_456), *m));
        }
        Marketplace::all().len()
    });
}
