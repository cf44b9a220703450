//! Every real page of `../shared/fixtures/amazon` (see its `INDEX.tsv`)
//! yields the expected page kind, ASIN, marketplace, price in minor units,
//! currency, availability and condition, or no price where the page
//! shows none.
//!
//! The pages are never committed: the test reads them from the shared
//! folder next to the workspace. When it is missing, the test fails if
//! `CI` is set and otherwise says it was skipped.
//!
//! Each page is extracted twice: without a URL (everything must come
//! from the page itself) and with its product URL.

use std::path::PathBuf;
use wasm_core::extract::{extract_html, Extraction, PageKind};
use wasm_core::types::{Availability, Condition};

fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/amazon"
    ))
}

struct Row {
    file: String,
    marketplace: String,
    asin: String,
    currency: String,
    minor: Option<u64>,
    availability: String,
    condition: String,
}

fn read_index(dir: &std::path::Path) -> Vec<Row> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv readable");
    let mut lines = index.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (f, m, a, c, n, av, co) = (
        col("file"),
        col("marketplace"),
        col("asin"),
        col("currency"),
        col("expected_amount_minor"),
        col("availability"),
        col("condition"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let cell = |i: usize| cells.get(i).copied().unwrap_or("").trim().to_string();
            Row {
                file: cell(f),
                // "amazon.es (Portuguese UI)" -> "amazon.es"
                marketplace: cell(m).split_whitespace().next().unwrap_or("").to_string(),
                asin: cell(a),
                currency: cell(c),
                minor: cell(n).parse().ok(),
                availability: cell(av),
                condition: cell(co),
            }
        })
        .collect()
}

/// Problems with one extraction, empty when it is right.
fn check(row: &Row, got: &Extraction) -> Vec<String> {
    let mut bad = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    let captcha = row.availability == "blocked_captcha";
    let kind = if captcha {
        PageKind::Captcha
    } else {
        PageKind::Product
    };
    expect(
        got.page == kind,
        format!("page {:?}, want {kind:?}", got.page),
    );
    expect(
        got.asin.as_deref() == Some(row.asin.as_str()),
        format!("asin {:?}, want {}", got.asin, row.asin),
    );
    expect(
        got.marketplace.as_deref() == Some(row.marketplace.as_str()),
        format!(
            "marketplace {:?}, want {}",
            got.marketplace, row.marketplace
        ),
    );
    if captcha {
        expect(
            got.offers.is_empty(),
            format!("captcha page has offers {:?}", got.offers),
        );
        return bad;
    }
    expect(
        got.title.as_deref().is_some_and(|t| !t.is_empty()),
        "no title".to_string(),
    );
    let offer = got.offers.first();
    let price = offer.and_then(|o| o.price_minor);
    match row.minor {
        Some(want) => {
            expect(price == Some(want), format!("price {price:?}, want {want}"));
            let cur = offer.and_then(|o| o.currency.as_deref());
            expect(
                cur == Some(row.currency.as_str()),
                format!("currency {cur:?}, want {}", row.currency),
            );
        }
        None => expect(
            price.is_none(),
            format!("price {price:?} where the page shows none"),
        ),
    }
    let avail = offer.map(|o| o.availability);
    match row.availability.as_str() {
        "in_stock" | "digital_available" | "used_only" => expect(
            avail == Some(Availability::InStock),
            format!("availability {avail:?}, want in_stock"),
        ),
        "preorder" => expect(
            avail == Some(Availability::Preorder),
            format!("availability {avail:?}, want preorder"),
        ),
        "no_featured_offer" | "needs_variation_selection" => {}
        other => expect(false, format!("unknown availability {other} in INDEX")),
    }
    let cond = offer.map(|o| o.condition);
    match row.condition.as_str() {
        "new" => expect(
            cond == Some(Condition::New),
            format!("condition {cond:?}, want new"),
        ),
        "used" => expect(
            cond == Some(Condition::Used),
            format!("condition {cond:?}, want used"),
        ),
        _ => {}
    }
    bad
}

/// Used offers the INDEX notes name as distractors for the buy box: they
/// must not be the buy-box price, and are listed as the second offer.
const USED_SECOND_OFFERS: &[(&str, u64)] = &[
    ("metascraper_com_B0057OC5O8_ourprice_2017.html", 718),
    ("metascraper_couk_1849757097_book_2017.html", 850),
    ("metascraper_es_B01MUGXRT9_2019.html", 17820),
    ("shassi_de_B01DQDZVCO_regular.html", 1342),
];

#[test]
fn corpus_pages_extract_as_indexed() {
    let dir = corpus_dir();
    if !dir.join("INDEX.tsv").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus missing at {} while CI is set",
            dir.display()
        );
        eprintln!("corpus test skipped: {} not found", dir.display());
        return;
    }
    let rows = read_index(&dir);
    assert_eq!(rows.len(), 31, "INDEX.tsv rows");
    let mut failures = Vec::new();
    for row in &rows {
        let bytes = std::fs::read(dir.join(&row.file)).expect("corpus page readable");
        let html = String::from_utf8_lossy(&bytes);
        let url = format!("https://www.{}/dp/{}", row.marketplace, row.asin);
        for (label, url) in [("no url", None), ("url", Some(url.as_str()))] {
            let got = extract_html(&html, url);
            let mut bad = check(row, &got);
            let used = got
                .offers
                .iter()
                .skip(1)
                .find(|o| o.condition == Condition::Used)
                .and_then(|o| o.price_minor);
            let want_used = USED_SECOND_OFFERS
                .iter()
                .find(|(f, _)| *f == row.file)
                .map(|(_, m)| *m);
            if used != want_used {
                bad.push(format!("second (used) offer {used:?}, want {want_used:?}"));
            }
            if !bad.is_empty() {
                failures.push(format!("{} ({label}): {}", row.file, bad.join("; ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus checks failed:\n{}",
        failures.len(),
        rows.len() * 2,
        failures.join("\n")
    );
}
