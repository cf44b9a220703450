//! `pricewatch extract` end to end: the real binary on the project's own
//! fixtures.

use std::process::Command;

fn fixture(name: &str) -> String {
    format!(
        "{}/../wasm-core/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pricewatch"))
        .args(args)
        .output()
        .expect("pricewatch runs")
}

#[test]
fn prints_one_json_object_for_a_product_page() {
    let out = run(&[
        "extract",
        "--url",
        "https://www.amazon.de/dp/349803587X",
        &fixture("book_buynew.html"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for k in ["page", "asin", "marketplace", "title", "offers"] {
        assert!(keys.contains(&k), "missing {k} in {stdout}");
    }
    assert_eq!(v["page"], "product");
    assert_eq!(v["asin"], "349803587X");
    assert_eq!(v["marketplace"], "amazon.de");
    assert_eq!(v["title"], "Der Roman");
    let offer = &v["offers"][0];
    assert_eq!(offer["condition"], "new");
    assert_eq!(offer["price_minor"], 1299);
    assert_eq!(offer["currency"], "EUR");
    assert_eq!(offer["availability"], "in_stock");
    assert_eq!(offer["seller"], "amazon");
    assert_eq!(offer["rule"], "buy_new_offer_price");
}

#[test]
fn captcha_page_exits_zero_without_offers() {
    let out = run(&["extract", &fixture("captcha.html")]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["page"], "captcha");
    assert_eq!(v["offers"], serde_json::json!([]));
    assert_eq!(v["title"], serde_json::Value::Null);
}

#[test]
fn missing_file_is_a_one_line_error() {
    let out = run(&["extract", "/nonexistent/page.html"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/page.html"), "{stderr}");
}
