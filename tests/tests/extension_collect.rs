//! The extension's collector side end to end (issue 7): the real
//! `pricewatch serve` (temporary SQLite, `--pow-difficulty 8`), the fake
//! Amazon over HTTPS with the real marketplace hosts mapped onto it, and
//! headless Chromium loading a copy of `dist/extension` pointed at that
//! backend. Scenarios run in `tests/js/extension_collect.cjs`; this side
//! sets the pages up and checks what reached the backend.
//!
//! "Reached the backend" is checked twice: the service worker's log of
//! sent reports with the backend's per-report status (every report is
//! verified here with the protocol code), and the backend's own product
//! summary where a price is published.

use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tests::fake_amazon::{FakeAmazon, ProductState, Variation};
use tests::{BrowserRun, ExtensionBrowser, PricewatchServer};
use wasm_core::protocol::Report;

const TIMEOUT: Duration = Duration::from_secs(120);

struct Setup {
    server: PricewatchServer,
    fake: FakeAmazon,
    browser: ExtensionBrowser,
    _copy: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    setup_with(test, &[])
}

/// [`setup`] with extra `pricewatch serve` arguments.
fn setup_with(test: &str, serve_args: &[&str]) -> Option<Setup> {
    let browser = ExtensionBrowser::for_test(test)?;
    let mut args = vec!["--pow-difficulty", "8"];
    args.extend_from_slice(serve_args);
    let server = PricewatchServer::start_with(&args).expect("pricewatch serve");
    let fake = FakeAmazon::start().expect("fake Amazon");
    let (browser, copy) = browser
        .with_backend(&server.url())
        .expect("extension copy for this backend");
    Some(Setup {
        server,
        fake,
        browser,
        _copy: copy,
    })
}

fn run(setup: &Setup, scenario: &str, extra: &[(&str, &str)]) -> BrowserRun {
    let port = setup.fake.port().to_string();
    let url = setup.server.url();
    let mut env = vec![
        ("PRICEWATCH_FAKE_PORT", port.as_str()),
        ("PRICEWATCH_BACKEND_URL", url.as_str()),
        ("PRICEWATCH_SCENARIO", scenario),
    ];
    env.extend_from_slice(extra);
    let run = setup
        .browser
        .run_script("extension_collect.cjs", &env, TIMEOUT)
        .unwrap_or_else(|e| panic!("{scenario}: {e}\nserver log:\n{}", setup.server.log()));
    let ours = extension_errors(&run.errors);
    assert!(
        ours.is_empty(),
        "{scenario}: the extension logged errors: {ours:#?}"
    );
    run
}

/// The errors that are the extension's: its service worker and pages, and
/// anything our content script logged ("pricewatch:"). The corpus pages'
/// own scripts and resources (Amazon's CDN, unreachable here) are not.
fn extension_errors(errors: &[String]) -> Vec<&String> {
    errors
        .iter()
        .filter(|e| e.contains("chrome-extension://") || e.contains("pricewatch"))
        .collect()
}

/// The reports the service worker sent, each verified.
fn sent_reports(sent: &Value) -> Vec<(Report, String)> {
    sent.as_array()
        .expect("sent log is a list")
        .iter()
        .map(|entry| {
            let report = Report::from_json(&entry["report"].to_string())
                .unwrap_or_else(|e| panic!("sent report does not parse: {e}: {entry}"));
            report
                .verify()
                .unwrap_or_else(|e| panic!("sent report does not verify: {e}: {entry}"));
            let status = entry["status"].as_str().unwrap_or_default().to_string();
            assert!(
                ["accepted", "provisional", "held", "stored", "duplicate"]
                    .contains(&status.as_str()),
                "the backend did not take a report: {entry}"
            );
            (report, status)
        })
        .collect()
}

#[test]
fn consent_reporting_variations_dedupe_and_csp_fallback() {
    let Some(setup) = setup("extension collection flow") else {
        return;
    };
    let fake = &setup.fake;
    fake.set_product(
        "www.amazon.com",
        "B0PWTEST01",
        ProductState::priced(12_999, "Pricewatch Test Kettle"),
    );
    let variations = vec![
        Variation {
            asin: "B0PWVAR001".into(),
            label: "Small".into(),
            price_minor: Some(1_999),
        },
        Variation {
            asin: "B0PWVAR002".into(),
            label: "Large".into(),
            price_minor: Some(2_499),
        },
    ];
    let parent = ProductState {
        variations: variations.clone(),
        ..ProductState::priced(1_999, "Pricewatch Test Shirt")
    };
    fake.set_product("www.amazon.de", "B0PWVAR001", parent);
    // What a reload of the chosen child's URL shows.
    let child = ProductState {
        variations,
        ..ProductState::priced(2_499, "Pricewatch Test Shirt")
    };
    fake.set_product("www.amazon.de", "B0PWVAR002", child);
    let csp = ProductState {
        headers: vec![("Content-Security-Policy".into(), "script-src 'self'".into())],
        ..ProductState::priced(3_980, "Pricewatch テスト")
    };
    fake.set_product("www.amazon.co.jp", "B0PWCSP001", csp);

    let run = run(&setup, "flow", &[]);
    let r = &run.result;

    // Before consent: the content script ran, nothing was queued or sent.
    assert_eq!(r["preConsent"]["path"], "wasm", "{r}");
    assert_eq!(r["preConsent"]["reported"], "0", "{r}");
    assert_eq!(r["preConsentQueued"], 0, "{r}");
    assert_eq!(r["preConsentSent"], 0, "{r}");
    assert!(r["preConsentBackend"].is_null(), "{r}");

    let reports = sent_reports(&r["sent"]);
    let of = |asin: &str| -> Vec<&Report> {
        reports
            .iter()
            .map(|(rep, _)| rep)
            .filter(|rep| rep.obs.asin == asin)
            .collect()
    };

    // After consent: one report, with the page's values.
    let first = of("B0PWTEST01");
    assert_eq!(first.len(), 1, "{r}");
    let obs = &first[0].obs;
    assert_eq!(obs.marketplace, "amazon.com");
    assert_eq!(obs.price_minor, Some(12_999));
    assert_eq!(obs.currency, "USD");
    assert_eq!(obs.title, "Pricewatch Test Kettle");
    let meta = first[0].meta.as_ref().expect("meta goes with the report");
    assert_eq!(meta.extractor.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    assert!(meta.rule.as_deref().is_some_and(|rule| !rule.is_empty()));
    assert_eq!(
        r["summary"]["offers"]["new"]["price_minor"], 12_999,
        "the backend publishes the reported price: {r}"
    );
    // Privacy: nothing of the URL or cookies travels in a report.
    let raw = r["sent"].to_string();
    assert!(
        !raw.contains("https://") && !raw.contains("session-id"),
        "{raw}"
    );

    // Variation: the parent once, the chosen child once, nothing on reload.
    assert_eq!(of("B0PWVAR001").len(), 1, "{r}");
    let chosen = of("B0PWVAR002");
    assert_eq!(chosen.len(), 1, "the new variation is reported once: {r}");
    assert_eq!(chosen[0].obs.price_minor, Some(2_499));
    assert_eq!(chosen[0].obs.marketplace, "amazon.de");
    assert_eq!(chosen[0].obs.currency, "EUR");
    assert!(
        r["variationUrl"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/dp/B0PWVAR002"),
        "{r}"
    );
    assert_eq!(
        r["reload"]["reported"], "0",
        "a reload reports nothing new: {r}"
    );

    // CSP page: the fallback path in the service worker reported it.
    assert_eq!(r["csp"]["path"], "fallback", "{r}");
    let csp = of("B0PWCSP001");
    assert_eq!(csp.len(), 1, "{r}");
    assert_eq!(csp[0].obs.price_minor, Some(3_980));
    assert_eq!(csp[0].obs.currency, "JPY");
    assert_eq!(csp[0].obs.marketplace, "amazon.co.jp");
    assert_eq!(
        r["cspSummary"]["offers"]["new"]["price_minor"], 3_980,
        "{r}"
    );

    // Exactly these four reports, nothing else.
    assert_eq!(reports.len(), 4, "{r}");
}

#[test]
fn reports_queue_while_the_backend_is_down_and_arrive_after_it_returns() {
    let Some(setup) = setup("extension offline queue") else {
        return;
    };
    setup.fake.set_product(
        "www.amazon.com",
        "B0PWTEST01",
        ProductState::priced(1_000, "Pricewatch Offline One"),
    );
    setup.fake.set_product(
        "www.amazon.com",
        "B0PWTEST02",
        ProductState::priced(2_000, "Pricewatch Offline Two"),
    );
    let signals = tempfile::tempdir().expect("signal dir");
    let signal_dir = signals.path().to_path_buf();
    let Setup {
        server,
        fake,
        browser,
        _copy,
    } = setup;
    let server = std::sync::Arc::new(std::sync::Mutex::new(server));
    // Plays the backend's part of the scenario: stop when asked, start
    // again (same port, same database) when asked.
    let control = {
        let server = server.clone();
        let dir = signal_dir.clone();
        std::thread::spawn(move || -> Result<(), String> {
            wait_for_file(&dir.join("stop"))?;
            server.lock().map_err(|e| e.to_string())?.stop();
            std::fs::write(dir.join("stopped"), "").map_err(|e| e.to_string())?;
            wait_for_file(&dir.join("start"))?;
            server
                .lock()
                .map_err(|e| e.to_string())?
                .restart()
                .map_err(|e| e.to_string())?;
            std::fs::write(dir.join("started"), "").map_err(|e| e.to_string())
        })
    };
    let setup_view = (fake.port().to_string(), {
        let s = server.lock().expect("server");
        s.url()
    });
    let signal = signal_dir.to_string_lossy().to_string();
    let env = [
        ("PRICEWATCH_FAKE_PORT", setup_view.0.as_str()),
        ("PRICEWATCH_BACKEND_URL", setup_view.1.as_str()),
        ("PRICEWATCH_SCENARIO", "offline"),
        ("PRICEWATCH_SIGNAL_DIR", signal.as_str()),
    ];
    let run = browser.run_script("extension_collect.cjs", &env, TIMEOUT);
    let log = server.lock().map(|s| s.log()).unwrap_or_default();
    let run = run.unwrap_or_else(|e| panic!("offline: {e}\nserver log:\n{log}"));
    control
        .join()
        .expect("control thread")
        .expect("the backend stopped and started again");
    let ours = extension_errors(&run.errors);
    assert!(ours.is_empty(), "the extension logged errors: {ours:#?}");
    let r = &run.result;
    assert!(r["queuedWhileDown"].as_u64() >= Some(1), "{r}");
    assert_eq!(r["sentWhileDown"], 0, "{r}");
    assert_eq!(r["queuedAfter"], 0, "{r}");
    let reports = sent_reports(&r["sent"]);
    let two: Vec<_> = reports
        .iter()
        .filter(|(rep, _)| rep.obs.asin == "B0PWTEST02")
        .collect();
    assert_eq!(two.len(), 1, "{r}");
    assert_eq!(two[0].0.obs.price_minor, Some(2_000));
    let summary = server
        .lock()
        .expect("server")
        .get("/v1/products/amazon.com/B0PWTEST02")
        .expect("product summary");
    assert_eq!(summary.status, 200, "{}", summary.text());
}

fn wait_for_file(path: &Path) -> Result<(), String> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !path.exists() {
        if std::time::Instant::now() > deadline {
            return Err(format!("{} never appeared", path.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[test]
fn every_corpus_page_reports_its_expected_price_or_none() {
    let Some(pages) = tests::corpus::load_for_test("extension corpus reporting") else {
        return;
    };
    let Some(setup) = setup("extension corpus reporting") else {
        return;
    };
    let urls = tests::corpus::serve(&setup.fake, &pages);
    let urls_json = serde_json::to_string(&urls).expect("json");
    let run = run(
        &setup,
        "corpus",
        &[("PRICEWATCH_PAGES", urls_json.as_str())],
    );
    let r = &run.result;
    let visits = r["visits"].as_array().expect("visits");
    assert_eq!(visits.len(), pages.len(), "{r}");
    let reports = sent_reports(&r["sent"]);
    let mut failures = Vec::new();
    for (page, visit) in pages.iter().zip(visits) {
        // Every page ran the wasm path (the corpus is served without a CSP).
        if visit["path"] != "wasm" {
            failures.push(format!(
                "{}: content script path {}",
                page.file, visit["path"]
            ));
        }
        let same_product =
            |rep: &&Report| rep.obs.asin == page.asin && rep.obs.marketplace == page.marketplace;
        match page.expected_minor {
            Some(price) => {
                let found = reports
                    .iter()
                    .map(|(rep, _)| rep)
                    .filter(same_product)
                    .any(|rep| {
                        rep.obs.price_minor == Some(price)
                            && rep.obs.condition.as_str() == page.condition
                            && rep.obs.currency == page.currency
                    });
                if !found {
                    failures.push(format!(
                        "{}: no {} report of {} {} at the backend; sent for it: {:?}",
                        page.file,
                        page.condition,
                        price,
                        page.currency,
                        reports
                            .iter()
                            .map(|(rep, _)| rep)
                            .filter(same_product)
                            .map(|rep| (rep.obs.condition.as_str(), rep.obs.price_minor))
                            .collect::<Vec<_>>()
                    ));
                }
            }
            None => {
                // No price on this page: any priced `new` report of the
                // product must be one another corpus page of it expects.
                // (Judgement call: `used` reports are not checked here:
                // sibling pages of the same product show used offers that
                // INDEX.tsv does not list.)
                let expected_elsewhere: Vec<u64> = pages
                    .iter()
                    .filter(|p| p.asin == page.asin && p.marketplace == page.marketplace)
                    .filter(|p| p.condition == "new")
                    .filter_map(|p| p.expected_minor)
                    .collect();
                for rep in reports.iter().map(|(rep, _)| rep).filter(same_product) {
                    if let (Some(p), "new") = (rep.obs.price_minor, rep.obs.condition.as_str()) {
                        if !expected_elsewhere.contains(&p) {
                            failures.push(format!(
                                "{}: expected no price, a new report says {p}",
                                page.file
                            ));
                        }
                    }
                }
            }
        }
    }
    // Pages that are not product pages (robot check) send nothing.
    for page in pages.iter().filter(|p| p.availability == "blocked_captcha") {
        assert!(
            !reports.iter().any(|(rep, _)| rep.obs.asin == page.asin),
            "{}: a robot check page was reported",
            page.file
        );
    }
    assert!(
        failures.is_empty(),
        "corpus mismatches:\n{}",
        failures.join("\n")
    );
}

#[test]
fn shipped_wasm_is_under_300_kb_gzipped() {
    let Some(browser) = ExtensionBrowser::for_test("extension wasm size") else {
        return;
    };
    let (raw, gz) = browser.wasm_sizes().expect("wasm sizes");
    assert!(raw > 0);
    assert!(gz < 300 * 1024, "the shipped wasm is {gz} bytes gzipped");
}

#[test]
fn options_pause_drops_reports_and_delete_erases_the_key() {
    let Some(setup) = setup("extension options") else {
        return;
    };
    for (asin, price) in [
        ("B0PWTEST01", 1_100),
        ("B0PWTEST02", 2_200),
        ("B0PWTEST03", 3_300),
    ] {
        setup.fake.set_product(
            "www.amazon.com",
            asin,
            ProductState::priced(price, "Pricewatch Options Test"),
        );
    }
    let run = run(&setup, "options", &[]);
    let r = &run.result;
    // Paused: the page was read, nothing was queued or sent.
    assert_eq!(r["paused"]["reported"], "0", "{r}");
    assert_eq!(r["queuedWhilePaused"], 0, "{r}");
    // The deletion also cleared the local log of sent reports.
    assert_eq!(r["sentAfterDelete"], 0, "{r}");
    let reports = sent_reports(&r["sent"]);
    assert_eq!(reports.len(), 1, "{r}");
    let after = &reports[0].0;
    assert_eq!(after.obs.asin, "B0PWTEST03");
    assert_eq!(after.obs.price_minor, Some(3_300));
    // The old key was wiped: the new report comes from a fresh key.
    let first_key = r["firstKey"].as_str().expect("first key");
    assert_eq!(first_key.len(), 43, "{r}");
    assert_ne!(after.obs.key, first_key, "the key was not replaced: {r}");
    let first_key_reports = setup
        .server
        .get("/v1/products/amazon.com/B0PWTEST02")
        .expect("summary of the paused product");
    assert_eq!(
        first_key_reports.status, 404,
        "nothing was reported while paused"
    );
}

#[test]
fn a_429_retry_after_postpones_sending_and_keeps_the_report() {
    let Some(setup) = setup_with("extension rate limit", &["--rate-ip-reports-per-min", "2"])
    else {
        return;
    };
    for asin in ["B0PWTEST01", "B0PWTEST02", "B0PWTEST03"] {
        setup.fake.set_product(
            "www.amazon.com",
            asin,
            ProductState::priced(1_234, "Pricewatch Rate Limit Test"),
        );
    }
    let run = run(&setup, "ratelimit", &[]);
    let r = &run.result;
    assert_eq!(r["backoff"]["reason"], "rate limited (429)", "{r}");
    let wait_ms =
        r["backoff"]["at"].as_f64().unwrap_or(0.0) - r["backoff"]["now"].as_f64().unwrap_or(0.0);
    // The first exponential step is 1 s; Retry-After from a 2-per-minute
    // limit is many seconds.
    assert!(
        wait_ms > 5_000.0,
        "the next attempt is only {wait_ms} ms away: {r}"
    );
    assert_eq!(r["queued"], 1, "the limited report stays queued: {r}");
    assert_eq!(sent_reports(&r["sent"]).len(), 2, "{r}");
}
