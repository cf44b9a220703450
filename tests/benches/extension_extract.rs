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
    let mut times: Vec<(f64, String)> = run.result["visits"]
        .as_array()
        .expect("visits")
        .iter()
        .zip(&pages)
        .map(|(v, p)| {
            let ms = v["ms"]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            (ms, p.file.clone())
        })
        .collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (ms, file) in &times {
        let _ = writeln!(out, "{ms:8.3} ms  {file}");
    }
    let n = times.len();
    if n > 0 {
        let median = if n % 2 == 1 {
            times[n / 2].0
        } else {
            (times[n / 2 - 1].0 + times[n / 2].0) / 2.0
        };
        let _ = writeln!(
            out,
            "live-DOM extraction over {n} corpus pages: median {median:.3} ms, max {:.3} ms ({})",
            times[n - 1].0,
            times[n - 1].1
        );
    }
    let (raw, gz) = browser.wasm_sizes().expect("wasm sizes");
    let _ = writeln!(
        out,
        "shipped wasm: {raw} bytes, {gz} bytes gzipped (budget 307200)"
    );
}
