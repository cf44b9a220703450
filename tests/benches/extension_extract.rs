//! Live-DOM extraction time of the extension, per corpus page: each page
//! of `../shared/fixtures/amazon/` is served by the fake Amazon at its
//! marketplace host and opened in headless Chromium with the built
//! extension; the content script times `extract_live` (wasm-core on the
//! live DOM) with `performance.now()` and leaves the figure on the page.
//! Prints the median and maximum, and the gzipped size of the shipped wasm.
//!
//! Run: `cargo bench -p tests --bench extension_extract` (needs
//! `scripts/build-extension`, Chromium and the shared corpus; prints why
//! when something is missing).

use std::io::Write;
use std::time::Duration;
use tests::fake_amazon::FakeAmazon;
use tests::ExtensionBrowser;

fn main() {
    let mut out = std::io::stdout();
    let Some(pages) = tests::corpus::load_for_test("extension extraction benchmark") else {
        return;
    };
    let Some(browser) = ExtensionBrowser::for_test("extension extraction benchmark") else {
        return;
    };
    let fake = FakeAmazon::start().expect("fake Amazon");
    let urls = tests::corpus::serve(&fake, &pages);
    let urls_json = serde_json::to_string(&urls).expect("json");
    let port = fake.port().to_string();
    // No consent is given in this scenario: nothing is reported, so no
    // backend is needed; the content script still extracts and times.
    let run = browser
        .run_script(
            "extension_collect.cjs",
            &[
                ("PRICEWATCH_FAKE_PORT", port.as_str()),
                ("PRICEWATCH_BACKEND_URL", "http://127.0.0.1:9"),
                ("PRICEWATCH_SCENARIO", "timing"),
                ("PRICEWATCH_PAGES", urls_json.as_str()),
            ],
            Duration::from_secs(180),
        )
        .expect("the timing scenario runs");
    let visits = run.result["visits"].as_array().expect("visits");
    let figure = |v: &serde_json::Value, name: &str| {
        v[name]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let mut rows: Vec<(f64, f64, &str)> = visits
        .iter()
        .zip(&pages)
        .map(|(v, p)| (figure(v, "ms"), figure(v, "warmMs"), p.file.as_str()))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let _ = writeln!(out, "   first      again  page");
    for (first, again, file) in &rows {
        let _ = writeln!(out, "{first:8.3} {again:8.3} ms  {file}");
    }
    let firsts: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let agains: Vec<f64> = rows.iter().map(|r| r.1).collect();
    for (what, values) in [
        ("first extraction on page load", firsts),
        ("re-extraction after a buy-box change", agains),
    ] {
        let (median, max) = median_max(values);
        let _ = writeln!(
            out,
            "live-DOM {what}, {} corpus pages: median {median:.3} ms, max {max:.3} ms",
            rows.len()
        );
    }
    let (raw, gz) = browser.wasm_sizes().expect("wasm sizes");
    let _ = writeln!(
        out,
        "shipped wasm: {raw} bytes, {gz} bytes gzipped (budget 307200)"
    );
}

/// Median and maximum (NaN when empty). `performance.now()` is coarsened
/// to 0.1 ms in pages that are not cross-origin isolated.
fn median_max(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (median, values[n - 1])
}
