//! The extension's alerts end to end (issue 8, parts 3 and 4): the real
//! `pricewatch serve` with its notifier (temporary SQLite), the fake
//! Amazon over HTTPS with the marketplace hosts mapped onto it, and
//! headless Chromium with a copy of `dist/extension` pointed at that
//! backend. Scenarios run in `tests/js/extension_alerts.cjs`; this side
//! owns the fake Amazon and the database and plays its part when the
//! script asks (signal files: `drop` changes the fake's price, `correct`
//! refutes the price that fired the alert).
//!
//! What is checked: a watch created from the overlay (in the page's closed
//! shadow root, or in the extension iframe on a page whose CSP blocks
//! wasm), a price drop shown by the fake Amazon and reported by the
//! extension itself, the alert in the backend's feed, the
//! `chrome.notifications` notification the service worker created from it
//! (its text, the price formatted for the marketplace), the click opening
//! the product page, each alert shown once, a `correction` shown as one,
//! and the popup listing the watch with its current price and the alerts.
//!
//! Test shortcut (documented): the correction is produced by calling the
//! store's `correct_published_price` on the server's SQLite file (the
//! function the trust rules call when a crawl refutes a published price),
//! so the test does not depend on the verification queue's timing.
//!
//! Trust rules (TRUST.md): the embedded verifier of `pricewatch serve` is
//! pointed at the fake Amazon. The extension's key is fresh (on
//! probation): its drop on a watched product is `held` and crawled at top
//! priority, and the crawl, seeing the same price on the fake Amazon,
//! publishes it and sends the held alert. A key on probation may trigger
//! one crawl a day, so the product is first seeded by another key (its
//! cold-start crawl verifies the first price) before the browser starts;
//! the extension's first report then agrees with the verified price and
//! triggers nothing, leaving its crawl for the drop.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::fake_amazon::{FakeAmazon, ProductState};
use tests::{http, BrowserRun, ExtensionBrowser, PricewatchServer};
use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{b64u_encode, pow_solve, Keypair, Observation, Registration};
use wasm_core::types::{Availability, Condition, Seller};

/// The whole browser run (each scenario takes well under a minute).
const TIMEOUT: Duration = Duration::from_secs(90);

/// One scenario's product on the fake Amazon.
struct Product {
    host: &'static str,
    marketplace: &'static str,
    asin: &'static str,
    title: &'static str,
    before_minor: u64,
    after_minor: u64,
    target_minor: u64,
    /// The target as a shopper types it into the overlay's form.
    target_text: &'static str,
    /// Response headers of the product page (a CSP for the fallback).
    headers: Vec<(String, String)>,
}

impl Product {
    fn json(&self) -> String {
        json!({
            "marketplace": self.marketplace,
            "asin": self.asin,
            "before_minor": self.before_minor,
            "after_minor": self.after_minor,
            "target_minor": self.target_minor,
            "target_text": self.target_text,
        })
        .to_string()
    }

    fn url(&self) -> String {
        format!("https://www.{}/dp/{}", self.marketplace, self.asin)
    }
}

struct Setup {
    /// Behind a lock: the test side stops and restarts it when asked.
    server: Mutex<PricewatchServer>,
    fake: FakeAmazon,
    browser: ExtensionBrowser,
    _copy: tempfile::TempDir,
    _ca_dir: tempfile::TempDir,
}

/// Whether this `pricewatch` binary's `serve` has the embedded verifier's
/// pass-through flags (they land with the trust rules).
fn serve_has_embedded_verifier() -> bool {
    let Ok(bin) = tests::server::pricewatch_bin() else {
        return false;
    };
    std::process::Command::new(bin)
        .args(["serve", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--verifier-marketplace-base"))
        .unwrap_or(false)
}

fn setup(test: &str, product: &Product) -> Option<Setup> {
    let browser = ExtensionBrowser::for_test(test)?;
    let fake = FakeAmazon::start().expect("fake Amazon");
    fake.set_product(
        product.host,
        product.asin,
        ProductState {
            headers: product.headers.clone(),
            ..ProductState::priced(product.before_minor, product.title)
        },
    );
    let ca_dir = tempfile::tempdir().expect("temp dir");
    let ca = fake.write_ca_pem(ca_dir.path()).expect("CA file");
    let base = format!("{}={}", product.marketplace, fake.base_url());
    let ca = ca.to_string_lossy().to_string();
    let mut args = vec!["--pow-difficulty", "8"];
    let verifier = serve_has_embedded_verifier();
    if verifier {
        fake.set_default_host(product.host);
        // Crawl as soon as a job is queued (as trust_e2e.rs does).
        args.extend_from_slice(&[
            "--verifier-marketplace-base",
            &base,
            "--verifier-ca-cert",
            &ca,
            "--verifier-rate",
            "*=50/s",
            "--verifier-idle-poll-ms",
            "100",
            "--tick-ms",
            "200",
        ]);
    }
    let server = PricewatchServer::start_with(&args).expect("pricewatch serve");
    seed_product(&server, product, verifier);
    let (browser, copy) = browser
        .with_backend(&server.url())
        .expect("extension copy for this backend");
    Some(Setup {
        server: Mutex::new(server),
        fake,
        browser,
        _copy: copy,
        _ca_dir: ca_dir,
    })
}

/// Reports the product's first price from a key of the test's own and
/// waits until the backend publishes it (verified by the embedded
/// verifier's cold-start crawl where there is one).
fn seed_product(server: &PricewatchServer, product: &Product, verifier: bool) {
    const POW: u32 = 8;
    let kp = Keypair::from_seed(&[0x5e; 32]);
    let pow = pow_solve(&kp.public_b64u(), POW, 0, u64::MAX).expect("proof of work");
    let reg = serde_json::to_string(&Registration::new(&kp, &pow)).expect("json");
    let r = http::request(
        server.addr(),
        "POST",
        "/v1/keys",
        &[("content-type", "application/json")],
        reg.as_bytes(),
    )
    .expect("register the seeding key");
    assert!(r.status == 200 || r.status == 201, "{}", r.text());
    let marketplace = Marketplace::from_domain(product.marketplace).expect("a marketplace");
    let mut nonce = [7u8; 16];
    nonce[..10].copy_from_slice(product.asin.as_bytes());
    let obs = Observation {
        key: kp.public_b64u(),
        asin: product.asin.into(),
        marketplace: product.marketplace.into(),
        condition: Condition::New,
        price_minor: Some(product.before_minor),
        currency: marketplace.currency().code().into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: product.title.into(),
        observed_at: now_ms(),
        nonce: b64u_encode(&nonce),
    };
    let body = json!({"reports": [obs.into_report(&kp).expect("sign")]}).to_string();
    let r = http::request(
        server.addr(),
        "POST",
        "/v1/reports",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .expect("seed report");
    assert_eq!(r.status, 200, "{}", r.text());
    let path = format!("/v1/products/{}/{}", product.marketplace, product.asin);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let summary: Value = server
            .get(&path)
            .ok()
            .and_then(|r| serde_json::from_str(&r.text()).ok())
            .unwrap_or(Value::Null);
        let offer = &summary["offers"]["new"];
        let status = offer["status"].as_str().unwrap_or_default();
        // Without a verifier (no trust rules) the report is published at once.
        if offer["price_minor"] == product.before_minor && (status == "verified" || !verifier) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the seeded price was not verified: {summary}\nserver log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Setup {
    fn server(&self) -> MutexGuard<'_, PricewatchServer> {
        // A panic while holding it already failed the test.
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Refutes `refuted` (the price that fired the alert) in favour of
/// `verified` through the store, as the trust rules do after a crawl.
fn correct_price(db: &Path, product: &Product) -> Result<Vec<i64>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let store = backend::store::connect(&format!("sqlite://{}", db.display()))
            .await
            .map_err(|e| e.to_string())?;
        let info = store
            .product_info(product.marketplace, product.asin)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the product is unknown to the backend")?;
        let ids = store
            .correct_published_price(
                info.id,
                Condition::New,
                i64::try_from(product.after_minor).map_err(|e| e.to_string())?,
                Some(i64::try_from(product.before_minor).map_err(|e| e.to_string())?),
                0,
                now_ms(),
            )
            .await
            .map_err(|e| e.to_string())?;
        store.close().await;
        Ok(ids)
    })
}

/// Plays the test side of the script's signals until `done` is set:
/// `drop` sets the fake's price to the product's `after_minor`, `correct`
/// refutes it, `stop` stops the backend and `start` starts it again (same
/// port, same database). Each signal is answered once. Returns what it did.
fn control(
    signals: PathBuf,
    done: Arc<AtomicBool>,
    setup: &Setup,
    db: &Path,
    product: &Product,
) -> Result<Vec<String>, String> {
    let mut did = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut pending: Vec<&str> = vec!["drop", "correct", "stop", "start"];
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut handled = Vec::new();
        for name in &pending {
            if !signals.join(name).exists() {
                continue;
            }
            match *name {
                "drop" => {
                    setup
                        .fake
                        .set_price(product.host, product.asin, Some(product.after_minor));
                    did.push(format!("price {}", product.after_minor));
                }
                "correct" => {
                    let ids = correct_price(db, product)?;
                    did.push(format!("corrected {ids:?}"));
                }
                "stop" => {
                    setup.server().stop();
                    did.push("stopped".to_string());
                }
                _ => {
                    setup.server().restart().map_err(|e| e.to_string())?;
                    did.push("started".to_string());
                }
            }
            std::fs::write(signals.join(format!("{name}.done")), "").map_err(|e| e.to_string())?;
            handled.push(*name);
        }
        pending.retain(|n| !handled.contains(n));
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(did)
}

/// Runs `scenario` for `product` with the test side answering signals.
fn run(setup: &Setup, scenario: &str, product: &Product) -> (BrowserRun, Vec<String>) {
    run_with(setup, scenario, product, &[])
}

/// [`run`] with extra environment for the script.
fn run_with(
    setup: &Setup,
    scenario: &str,
    product: &Product,
    extra: &[(&str, &str)],
) -> (BrowserRun, Vec<String>) {
    let signals = tempfile::tempdir().expect("signal dir");
    let port = setup.fake.port().to_string();
    let url = setup.server().url();
    let product_json = product.json();
    let signal_dir = signals.path().to_string_lossy().to_string();
    let mut env = vec![
        ("PRICEWATCH_FAKE_PORT", port.as_str()),
        ("PRICEWATCH_BACKEND_URL", url.as_str()),
        ("PRICEWATCH_SCENARIO", scenario),
        ("PRICEWATCH_PRODUCT", product_json.as_str()),
        ("PRICEWATCH_SIGNAL_DIR", signal_dir.as_str()),
    ];
    env.extend_from_slice(extra);
    let done = Arc::new(AtomicBool::new(false));
    let db = setup.server().data_dir().join("pricewatch.db");
    let (result, did) = std::thread::scope(|s| {
        let helper = s.spawn(|| {
            control(
                signals.path().to_path_buf(),
                done.clone(),
                setup,
                &db,
                product,
            )
        });
        let result = setup
            .browser
            .run_script("extension_alerts.cjs", &env, TIMEOUT);
        done.store(true, Ordering::SeqCst);
        (result, helper.join())
    });
    let did = did
        .expect("control thread")
        .unwrap_or_else(|e| panic!("{scenario}: the test side failed: {e}"));
    let run = result.unwrap_or_else(|e| {
        panic!(
            "{scenario}: {e}\ntest side did: {did:?}\nserver log:\n{}",
            setup.server().log()
        )
    });
    let ours: Vec<&String> = run
        .errors
        .iter()
        .filter(|e| e.contains("chrome-extension://") || e.contains("pricewatch"))
        .collect();
    assert!(
        ours.is_empty(),
        "{scenario}: the extension logged errors: {ours:#?}"
    );
    (run, did)
}

/// The alerts the backend's feed holds for the watch's key are checked
/// through what the extension fetched; this checks the drop's notification.
fn assert_drop_notification(r: &Value, product: &Product, after_text: &str, before_text: &str) {
    let n = &r["notification"];
    assert_eq!(n["url"], product.url(), "{r}");
    let title = n["title"].as_str().unwrap_or_default();
    assert!(
        title.starts_with("Target price reached") || title.starts_with("Price drop"),
        "{r}"
    );
    assert!(title.contains(product.title), "the product's title: {r}");
    let message = n["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(after_text),
        "the new price {after_text:?} formatted for {}: {message:?}",
        product.marketplace
    );
    assert!(message.contains(before_text), "the old price: {message:?}");
    assert!(
        n["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("pricewatch-alert|"),
        "{r}"
    );
}

fn assert_click_opens_the_product(r: &Value, product: &Product) {
    assert_eq!(r["click"]["opened"], product.url(), "{r}");
    assert_eq!(r["click"]["tabUrl"], product.url(), "{r}");
    assert_eq!(r["click"]["stillShown"], false, "the click clears it: {r}");
}

/// `fallback`: the page's CSP blocks wasm, so the content script takes the
/// fallback path and the overlay runs in the extension iframe.
fn drop_scenario(
    test: &str,
    product: &Product,
    fallback: bool,
    after_text: &str,
    before_text: &str,
) {
    let Some(setup) = setup(test, product) else {
        return;
    };
    let (run, did) = run(&setup, "drop", product);
    let r = &run.result;
    assert_eq!(did, vec![format!("price {}", product.after_minor)], "{r}");
    // The extension reported both prices itself.
    for key in ["firstReport", "secondReport"] {
        assert!(
            ["accepted", "provisional", "held"].contains(&r[key].as_str().unwrap_or_default()),
            "{key}: {r}"
        );
    }
    let path = if fallback { "fallback" } else { "wasm" };
    assert_eq!(r["first"]["path"], path, "{r}");
    assert_eq!(r["second"]["path"], path, "{r}");
    assert_eq!(
        r["watch"]["frame"], fallback,
        "the overlay ran in the extension iframe exactly on the CSP page: {r}"
    );
    assert!(
        !r["watch"]["existing"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "the overlay shows the saved watch: {r}"
    );
    assert_drop_notification(r, product, after_text, before_text);
    // chrome.notifications holds it (before the click).
    let shown = r["shown"].as_object().expect("getAll answers an object");
    assert!(
        shown.contains_key(r["notification"]["id"].as_str().unwrap_or_default()),
        "{r}"
    );
    // Polling again shows nothing new, and there was exactly one.
    assert_eq!(r["pollAgain"]["shown"], 0, "{r}");
    assert_eq!(r["notified"].as_array().map(Vec::len), Some(1), "{r}");
    assert_click_opens_the_product(r, product);

    // The popup: the watch with its current price, the alert, links to
    // the product page, pause/resume.
    let popup = &r["popup"];
    let watches = popup["watches"].as_array().expect("watches");
    assert_eq!(watches.len(), 1, "{r}");
    let watch_text = watches[0]["text"].as_str().unwrap_or_default();
    assert!(
        watch_text.contains(after_text),
        "the watch's current price {after_text:?}: {watch_text:?}"
    );
    assert!(
        watches[0]["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|u| *u == product.url())),
        "{r}"
    );
    let alerts = popup["alerts"].as_array().expect("alerts");
    assert_eq!(alerts.len(), 1, "{r}");
    assert!(
        alerts[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(after_text),
        "{r}"
    );
    assert!(
        alerts[0]["links"]
            .as_array()
            .is_some_and(|l| l.iter().any(|u| *u == product.url())),
        "{r}"
    );
    assert_eq!(popup["paused"], true, "{r}");
    assert_eq!(popup["resumed"], true, "{r}");

    // The backend's own view: one alert for the watch's product.
    let summary = setup
        .server()
        .get(&format!(
            "/v1/products/{}/{}",
            product.marketplace, product.asin
        ))
        .expect("summary");
    let summary: Value = serde_json::from_str(&summary.text()).expect("summary json");
    assert_eq!(
        summary["offers"]["new"]["price_minor"], product.after_minor,
        "{summary}"
    );
}

#[test]
fn overlay_watch_then_a_price_drop_notifies_and_the_click_opens_the_product() {
    let product = Product {
        host: "www.amazon.com",
        marketplace: "amazon.com",
        asin: "B0PWALRT01",
        title: "Pricewatch Alert Kettle",
        before_minor: 12_999,
        after_minor: 8_999,
        target_minor: 9_999,
        target_text: "99.99",
        headers: Vec::new(),
    };
    drop_scenario(
        "extension alerts (overlay watch, drop, notification)",
        &product,
        false,
        "$89.99",
        "$129.99",
    );
}

#[test]
fn the_same_on_a_csp_page_through_the_iframe_fallback() {
    let product = Product {
        host: "www.amazon.co.jp",
        marketplace: "amazon.co.jp",
        asin: "B0PWALRT02",
        title: "Pricewatch アラート",
        before_minor: 5_980,
        after_minor: 4_480,
        target_minor: 5_000,
        target_text: "5000",
        headers: vec![("Content-Security-Policy".into(), "script-src 'self'".into())],
    };
    drop_scenario(
        "extension alerts on a CSP page (iframe fallback)",
        &product,
        true,
        "￥4,480",
        "￥5,980",
    );
}

#[test]
fn a_correction_alert_shows_as_a_correction() {
    let product = Product {
        host: "www.amazon.de",
        marketplace: "amazon.de",
        asin: "B0PWALRT03",
        title: "Pricewatch Korrektur",
        before_minor: 4_999,
        after_minor: 3_999,
        target_minor: 4_500,
        target_text: "45,00",
        headers: Vec::new(),
    };
    let Some(setup) = setup("extension correction alert", &product) else {
        return;
    };
    // A screenshot of the popup with the watch and both alerts, for review.
    let shot = tests::workspace_root()
        .join("target")
        .join("extension-popup.png");
    let shot_text = shot.to_string_lossy().to_string();
    let (run, did) = run_with(
        &setup,
        "correction",
        &product,
        &[("PRICEWATCH_POPUP_SCREENSHOT", shot_text.as_str())],
    );
    println!("popup screenshot: {}", shot.display());
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    let r = &run.result;
    assert_eq!(did.len(), 2, "{did:?}");
    assert!(did[1].starts_with("corrected ["), "{did:?}");
    assert_ne!(did[1], "corrected []", "the drop's alert was corrected");

    // amazon.de shows `39,99 €` (a no-break space before the sign).
    let wrong = "39,99\u{a0}€";
    let verified = "49,99\u{a0}€";
    let drop = &r["drop"];
    assert_eq!(drop["kind"], "target_reached", "{r}");
    assert!(
        drop["message"].as_str().unwrap_or_default().contains(wrong),
        "{r}"
    );
    let c = &r["correction"];
    assert_eq!(c["url"], product.url(), "{r}");
    let title = c["title"].as_str().unwrap_or_default();
    assert!(title.starts_with("Correction"), "{r}");
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("was wrong") && message.contains(wrong),
        "says plainly that the earlier price was wrong: {message:?}"
    );
    assert!(
        message.contains(&format!("verified price is {verified}")),
        "gives the verified price: {message:?}"
    );

    // The recent list (the popup's source), newest first.
    let recent = r["recent"]["data"]["alerts"].as_array().expect("recent");
    let kinds: Vec<&str> = recent.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["correction", "target_reached"], "{r}");
    assert_eq!(recent[0]["new_price_minor"], product.before_minor, "{r}");
    assert_eq!(recent[0]["old_price_minor"], product.after_minor, "{r}");

    // The popup shows both, the correction as one.
    let alerts = r["popup"]["alerts"].as_array().expect("popup alerts");
    assert_eq!(alerts.len(), 2, "{r}");
    assert_eq!(alerts[0]["kind"], "correction", "{r}");
    let text = alerts[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Correction") && text.contains(verified),
        "{r}"
    );
}

#[test]
fn polls_survive_an_outage_and_a_worker_restart_and_group_several_alerts() {
    let product = Product {
        host: "www.amazon.co.uk",
        marketplace: "amazon.co.uk",
        asin: "B0PWALRT04",
        title: "Pricewatch Outage Teapot",
        before_minor: 2_500,
        after_minor: 1_999,
        target_minor: 2_200,
        target_text: "22.00",
        headers: Vec::new(),
    };
    let Some(setup) = setup("extension alerts across an outage and a restart", &product) else {
        return;
    };
    // run() also fails on any console error of the extension: the outage
    // must leave warnings only.
    let (run, did) = run(&setup, "outage", &product);
    let r = &run.result;
    assert_eq!(did, vec!["stopped", "started", "price 1999"], "{r}");
    // Polls went on failing at each alarm, quietly: one warning.
    assert_eq!(r["firstFailed"]["failed"], "unreachable", "{r}");
    assert_eq!(r["laterFailed"]["failed"], "unreachable", "{r}");
    assert_eq!(r["laterFailed"]["why"], "alarm", "{r}");
    assert!(r["outageMarker"]["since"].is_number(), "{r}");
    assert_eq!(r["warnings"], 1, "one warning per outage: {r}");
    // Back again: the drop fired the four watches' alerts at once, shown
    // as one grouped notification, each line with the price formatted for
    // amazon.co.uk; its click opens the popup page, which lists them all.
    let n = &r["notification"];
    assert_eq!(n["title"], "4 price alerts", "{r}");
    let items = n["items"].as_array().expect("list items");
    assert_eq!(items.len(), 4, "{r}");
    for item in items {
        let message = item["message"].as_str().unwrap_or_default();
        assert!(message.contains("£19.99"), "{message:?}");
        assert!(message.contains("£25.00"), "{message:?}");
        assert!(
            item["title"]
                .as_str()
                .unwrap_or_default()
                .contains(product.title),
            "{r}"
        );
    }
    assert!(
        r["shown"]
            .as_object()
            .is_some_and(|m| m.contains_key(n["id"].as_str().unwrap_or_default())),
        "{r}"
    );
    let opened = r["click"]["opened"].as_str().unwrap_or_default();
    assert!(
        opened.starts_with("chrome-extension://") && opened.ends_with("/popup.html"),
        "{r}"
    );
    assert_eq!(r["click"]["stillShown"], false, "{r}");
    // The worker was stopped; the alarm started a new one, whose poll
    // showed nothing again.
    assert_eq!(r["restart"]["restarted"], true, "{r}");
    assert_eq!(r["restart"]["poll"]["shown"], 0, "{r}");
    assert!(r["restart"]["poll"].get("failed").is_none(), "{r}");
    assert_eq!(
        r["restart"]["notified"].as_array().map(Vec::len),
        Some(1),
        "each alert is shown once: {r}"
    );
}
