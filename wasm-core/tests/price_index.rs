//! Every `expected_price_as_shown` of `../shared/fixtures/amazon/INDEX.tsv`
//! parses, on its row's marketplace, to exactly the row's
//! `expected_amount_minor` and `currency`, and rows without a single price
//! (`(none shown)`, a range) give no price.
//!
//! The index is never committed: the test reads it from the shared folder
//! next to the workspace. When it is missing, the test fails if `CI` is set
//! and otherwise says it was skipped.

use std::path::PathBuf;
use wasm_core::marketplace::Marketplace;
use wasm_core::price::parse_price;

fn index_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/amazon/INDEX.tsv"
    ))
}

#[test]
fn every_price_as_shown_in_the_index() {
    let path = index_path();
    let Ok(index) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing and CI is set",
            path.display()
        );
        eprintln!("skipped: {} not found", path.display());
        return;
    };
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().expect("header line").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (file, market, shown, currency, minor) = (
        col("file"),
        col("marketplace"),
        col("expected_price_as_shown"),
        col("currency"),
        col("expected_amount_minor"),
    );
    let mut checked = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        // "amazon.es (Portuguese UI, ship-to Brazil)" -> amazon.es
        let domain = cells[market].split_whitespace().next().unwrap_or("");
        let m = Marketplace::from_domain(domain);
        // "$45.99 (price for everyone; ...)": the price is before the note.
        let text = cells[shown].split(" (").next().unwrap_or("");
        let want = cells[minor]
            .parse::<u64>()
            .ok()
            .map(|n| (n, cells[currency].to_owned()));
        let got = parse_price(text, m).map(|p| (p.minor, p.currency.code().to_owned()));
        assert_eq!(got, want, "{}: {text:?} on {domain}", cells[file]);
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} rows in the index");
}
