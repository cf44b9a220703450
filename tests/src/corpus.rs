//! The shared corpus of real Amazon pages (`../shared/fixtures/amazon/`,
//! `INDEX.tsv` with the expected values), for tests that serve every page
//! from the fake Amazon at its marketplace host.
//!
//! The corpus is not part of this repository. When it is missing a test
//! fails in CI and skips elsewhere ([`crate::skip_or_fail`]).

use crate::fake_amazon::FakeAmazon;
use crate::{workspace_root, Error, Result};
use std::path::PathBuf;

/// One corpus page and what it should yield.
#[derive(Debug, Clone)]
pub struct CorpusPage {
    /// File name in the corpus folder.
    pub file: String,
    /// Marketplace domain (`amazon.de`).
    pub marketplace: String,
    /// The product's ASIN.
    pub asin: String,
    /// ISO 4217 currency, empty when the page shows none.
    pub currency: String,
    /// Expected price in minor units; `None`: the page offers no price.
    pub expected_minor: Option<u64>,
    /// `new` or `used`; empty when no offer is expected.
    pub condition: String,
    /// INDEX.tsv's availability note (`in_stock`, `blocked_captcha`, ...).
    pub availability: String,
    /// The page's HTML.
    pub html: String,
}

/// `../shared/fixtures/amazon` beside the workspace.
pub fn corpus_dir() -> PathBuf {
    workspace_root()
        .join("..")
        .join("shared")
        .join("fixtures")
        .join("amazon")
}

/// Every page of `INDEX.tsv`, or `None` after a skip line when the corpus
/// is missing (a failure in CI).
pub fn load_for_test(test: &str) -> Option<Vec<CorpusPage>> {
    let dir = corpus_dir();
    let index = dir.join("INDEX.tsv");
    if !crate::skip_or_fail(test, &missing(&index)) {
        return None;
    }
    match load(&dir) {
        Ok(pages) => Some(pages),
        Err(e) => panic!("{test}: reading the corpus: {e}"),
    }
}

fn missing(index: &std::path::Path) -> Vec<String> {
    if index.is_file() {
        Vec::new()
    } else {
        vec![format!("the shared corpus {}", index.display())]
    }
}

/// Reads `INDEX.tsv` and the pages it lists from `dir`.
pub fn load(dir: &std::path::Path) -> Result<Vec<CorpusPage>> {
    let index = std::fs::read_to_string(dir.join("INDEX.tsv"))?;
    let mut lines = index.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::new("INDEX.tsv is empty"))?
        .split('\t')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| Error::new(format!("INDEX.tsv has no column {name}")))
    };
    let (file, mp, asin, currency, minor, availability, condition) = (
        col("file")?,
        col("marketplace")?,
        col("asin")?,
        col("currency")?,
        col("expected_amount_minor")?,
        col("availability")?,
        col("condition")?,
    );
    let mut pages = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
        let expected_minor = match cell(minor) {
            "" => None,
            n => Some(
                n.parse::<u64>()
                    .map_err(|_| Error::new(format!("bad expected amount {n:?} in {line}")))?,
            ),
        };
        let name = cell(file).to_string();
        let html = std::fs::read(dir.join(&name))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| Error::new(format!("{name}: {e}")))?;
        pages.push(CorpusPage {
            // "amazon.es (Portuguese UI)" -> "amazon.es"
            marketplace: cell(mp)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
            asin: cell(asin).to_string(),
            currency: cell(currency).to_string(),
            expected_minor,
            condition: cell(condition).to_string(),
            availability: cell(availability).to_string(),
            file: name,
            html,
        });
    }
    Ok(pages)
}

/// Serves every page on the fake Amazon at `https://www.{marketplace}/
/// pw{i}/dp/{asin}` (a distinct path per page: some pages share an ASIN)
/// and returns those URLs in corpus order.
pub fn serve(fake: &FakeAmazon, pages: &[CorpusPage]) -> Vec<String> {
    pages
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let host = format!("www.{}", p.marketplace);
            let path = format!("/pw{i}/dp/{}", p.asin);
            fake.set_page(&host, &path, &p.html, &[]);
            format!("https://{host}{path}")
        })
        .collect()
}
