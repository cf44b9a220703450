//! The in-page price history overlay end to end (issue 8, parts 1, 2 and
//! 5): the real `pricewatch serve` (temporary SQLite), the fake Amazon
//! over HTTPS, and headless Chromium with a copy of `dist/extension`
//! pointed at that backend. Scenarios run in `tests/js/extension_overlay.cjs`,
//! which reaches the overlay's closed shadow root through the DevTools
//! protocol; this side seeds the data and checks the results against the
//! backend's own answers.
//!
//! Test shortcut (documented): months of history cannot arrive through
//! `POST /v1/reports`, which refuses observations older than 24 h. The
//! history is seeded into the stopped server's SQLite file through the
//! backend's own storage code (`SqliteStore::ingest` with each report's
//! time as "now", signed by a trusted key, so every price is published as
//! verified), then the server starts again on the same file.

use backend::store::sqlite::SqliteStore;
use backend::store::{IngestOutcome, NewReport, Registered, Storage};
use base64::Engine as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tests::fake_amazon::{product_page, FakeAmazon, ProductState};
use tests::{BrowserRun, ExtensionBrowser, PricewatchServer};
use wasm_core::marketplace::Marketplace;
use wasm_core::price::format_price;
use wasm_core::types::{Availability, Condition, Seller};

const TIMEOUT: Duration = Duration::from_secs(90);
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const TITLE: &str = "Pricewatch Overlay Kettle";

struct Setup {
    server: PricewatchServer,
    fake: FakeAmazon,
    browser: ExtensionBrowser,
    _copy: tempfile::TempDir,
}

fn setup(test: &str) -> Option<Setup> {
    let browser = ExtensionBrowser::for_test(test)?;
    let server =
        PricewatchServer::start_with(&["--pow-difficulty", "8"]).expect("pricewatch serve");
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

fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("ms fit i64")
}

/// (how long ago in ms, price in cents). Every price differs from the one
/// before, so each observation is its own history run and the chart's
/// points do not depend on the exact moment a range starts.
const SERIES: &[(i64, i64)] = &[
    (420 * DAY, 14_999),
    (330 * DAY, 17_999),
    (250 * DAY, 12_999),
    (200 * DAY, 9_999),
    (120 * DAY, 13_999),
    (80 * DAY, 11_999),
    (60 * DAY, 15_999),
    (45 * DAY, 10_999),
    (25 * DAY, 12_499),
    (15 * DAY, 13_499),
    (7 * DAY, 11_499),
    (2 * DAY, 12_999),
    (HOUR, 12_499),
];
const CURRENT: i64 = 12_499;

fn db_url(server: &PricewatchServer) -> String {
    format!(
        "sqlite://{}",
        server.data_dir().join("pricewatch.db").display()
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Seeds `SERIES` for each `(marketplace, asin)` (see the module docs),
/// with the server stopped, then starts it again.
fn seed_history(server: &mut PricewatchServer, products: &[(&str, &str)]) {
    server.stop();
    let url = db_url(server);
    let now = now_ms();
    runtime().block_on(async {
        let store = SqliteStore::open(&url).await.expect("open the SQLite file");
        let first = now - SERIES[0].0 - DAY;
        let key_id = match store
            .register_key(&[42u8; 32], first, None)
            .await
            .expect("register the seeding key")
        {
            Registered::Created(k) | Registered::Existing(k) => k.id,
        };
        let mut nonce = 0u16;
        for (marketplace, asin) in products {
            let currency = Marketplace::from_domain(marketplace)
                .expect("a marketplace")
                .currency()
                .code();
            for (ago, price) in SERIES {
                nonce += 1;
                let mut n = [0u8; 16];
                n[..2].copy_from_slice(&nonce.to_be_bytes());
                let at = now - ago;
                let report = NewReport {
                    key_id,
                    nonce: n,
                    marketplace: marketplace.to_string(),
                    asin: asin.to_string(),
                    condition: Condition::New,
                    price_minor: Some(*price),
                    currency: currency.to_string(),
                    availability: Availability::InStock,
                    seller: Seller::Amazon,
                    title: TITLE.to_string(),
                    observed_at: at,
                    trusted: true,
                    net_hash: None,
                    raw: "{}".to_string(),
                };
                let outcome = store.ingest(&[report], at).await.expect("ingest");
                assert_eq!(
                    outcome,
                    vec![IngestOutcome::Accepted],
                    "seeding {asin} at -{ago} ms"
                );
            }
        }
        store.close().await;
    });
    server.restart().expect("restart after seeding");
}

fn run(setup: &Setup, scenario: &str, page: &str, extra: &[(&str, &str)]) -> BrowserRun {
    let port = setup.fake.port().to_string();
    let url = setup.server.url();
    let mut env = vec![
        ("PRICEWATCH_FAKE_PORT", port.as_str()),
        ("PRICEWATCH_BACKEND_URL", url.as_str()),
        ("PRICEWATCH_SCENARIO", scenario),
        ("PRICEWATCH_PAGE", page),
    ];
    env.extend_from_slice(extra);
    let run = setup
        .browser
        .run_script("extension_overlay.cjs", &env, TIMEOUT)
        .unwrap_or_else(|e| panic!("{scenario}: {e}\nserver log:\n{}", setup.server.log()));
    assert_no_extension_errors(scenario, &run);
    run
}

fn assert_no_extension_errors(scenario: &str, run: &BrowserRun) {
    let ours: Vec<&String> = run
        .errors
        .iter()
        .filter(|e| e.contains("chrome-extension://") || e.contains("pricewatch"))
        .collect();
    assert!(
        ours.is_empty(),
        "{scenario}: the extension logged errors: {ours:#?}"
    );
}

fn get_json(server: &PricewatchServer, path: &str) -> Value {
    let r = server.get(path).expect("GET");
    assert_eq!(r.status, 200, "GET {path}");
    serde_json::from_slice(&r.body).expect("JSON")
}

fn usd(minor: i64) -> String {
    format_price(
        u64::try_from(minor).expect("a price"),
        Marketplace::from_domain("amazon.com").expect("amazon.com"),
    )
}

#[test]
fn overlay_shows_the_seeded_history_and_switches_ranges() {
    let Some(mut setup) = setup("overlay history") else {
        return;
    };
    let asin = "B0PWOVL001";
    seed_history(&mut setup.server, &[("amazon.com", asin)]);
    setup.fake.set_product(
        "www.amazon.com",
        asin,
        ProductState::priced(u64::try_from(CURRENT).expect("price"), TITLE),
    );
    let shot_dir = tests::workspace_root()
        .join("target")
        .join("extension-overlay");
    std::fs::create_dir_all(&shot_dir).expect("screenshot folder");
    let shot = shot_dir.join("overlay.png");
    let _ = std::fs::remove_file(&shot);
    let page = format!("https://www.amazon.com/dp/{asin}");
    let shot_str = shot.to_string_lossy().to_string();
    let run = run(
        &setup,
        "history",
        &page,
        &[("PRICEWATCH_SCREENSHOT", shot_str.as_str())],
    );
    let r = &run.result;

    // Current price and what backs it: the backend's summary.
    let summary = get_json(&setup.server, &format!("/v1/products/amazon.com/{asin}"));
    let offer = &summary["offers"]["new"];
    let initial = &r["initial"];
    assert_eq!(offer["price_minor"], CURRENT, "{summary}");
    assert_eq!(initial["currentPrice"], CURRENT, "{initial}");
    assert_eq!(initial["current"], usd(CURRENT), "{initial}");
    assert_eq!(initial["status"], offer["status"], "{initial}");
    assert_eq!(initial["status"], "verified", "{initial}");
    let reporters = initial["reporters"].as_str().expect("reporters text");
    assert!(
        reporters.starts_with(&format!("{} independent", offer["reporters"])),
        "{reporters}"
    );
    assert!(reporters.contains("last crawl"), "{reporters}");
    assert_eq!(
        initial["share"],
        format!("{}/p/amazon.com/{asin}", setup.server.url()),
        "{initial}"
    );

    // Per range: the chart's points are the history API's, and lowest,
    // highest and average are its stats, formatted as amazon.com does.
    let mut counts = Vec::new();
    for range in ["1m", "3m", "1y", "all"] {
        let shown = &r["ranges"][range]["shown"];
        let api = &r["ranges"][range]["api"];
        let want: Vec<(i64, i64)> = api["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| {
                (
                    p["t"].as_i64().expect("t"),
                    p["close"].as_i64().expect("close"),
                )
            })
            .collect();
        let got: Vec<(i64, i64)> = shown["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| (p[0].as_i64().expect("t"), p[1].as_i64().expect("price")))
            .collect();
        assert_eq!(got, want, "{range}");
        assert!(!want.is_empty(), "{range}");
        let stats = &api["stats"];
        for (field, key) in [
            ("lowestPrice", "lowest"),
            ("highestPrice", "highest"),
            ("averagePrice", "average"),
        ] {
            assert_eq!(shown[field], stats[key], "{range} {field}: {shown}");
        }
        let lowest = stats["lowest"].as_i64().expect("lowest");
        let highest = stats["highest"].as_i64().expect("highest");
        assert!(
            shown["lowest"]
                .as_str()
                .expect("lowest text")
                .contains(&usd(lowest)),
            "{shown}"
        );
        assert!(
            shown["highest"]
                .as_str()
                .expect("highest text")
                .contains(&usd(highest)),
            "{shown}"
        );
        assert!(
            !shown["verdict"].as_str().unwrap_or_default().is_empty(),
            "{shown}"
        );
        counts.push(want.len());
    }
    // The seeded series: lowest of the year and all time $99.99, highest of
    // all time $179.99; the 3-month lowest $109.99.
    assert_eq!(r["ranges"]["all"]["shown"]["lowestPrice"], 9_999);
    assert_eq!(r["ranges"]["all"]["shown"]["highestPrice"], 17_999);
    assert_eq!(r["ranges"]["3m"]["shown"]["lowestPrice"], 10_999);
    // Each longer range shows more points.
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");

    // The tooltip (keyboard: End, then one step left) names the date and
    // the price of the second-to-last 3m point.
    let tooltip = r["tooltip"].as_str().expect("tooltip");
    assert!(tooltip.contains(&usd(12_999)), "{tooltip}");
    // Hovering a point shows its date and price.
    let hover = &r["hover"];
    let hover_price = hover["price"].as_i64().expect("hovered price");
    assert!(
        hover["tooltip"]
            .as_str()
            .expect("hover tooltip")
            .contains(&usd(hover_price)),
        "{hover}"
    );
    // Collapse is remembered across a reload; the badge opens it again.
    assert_eq!(r["collapsed"]["collapsed"], true);
    assert_eq!(r["afterReload"]["badge"], true);
    assert_eq!(r["expanded"]["currentPrice"], CURRENT);

    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    println!("overlay screenshot: {}", shot.display());
}

/// A product page with the page styles the isolation check uses.
fn styled_page(asin: &str) -> String {
    let m = Marketplace::from_domain("amazon.com").expect("amazon.com");
    let html = product_page(m, asin, &ProductState::priced(4_999, TITLE));
    html.replacen(
        "</head>",
        "<style>div { color: rgb(255, 0, 0); letter-spacing: 3px; } body { font-size: 40px; line-height: 3; font-family: serif; }</style>\n</head>",
        1,
    )
}

#[test]
fn overlay_leaves_the_page_layout_and_styles_alone() {
    let Some(setup) = setup("overlay layout") else {
        return;
    };
    // Nothing known about this product: the overlay shows its quiet message.
    let asin = "B0PWOVL002";
    setup.fake.set_page(
        "www.amazon.com",
        &format!("/dp/{asin}"),
        &styled_page(asin),
        &[],
    );
    let run = run(
        &setup,
        "layout",
        &format!("https://www.amazon.com/dp/{asin}"),
        &[],
    );
    let r = &run.result;
    let with = &r["withOverlay"];
    let without = &r["withoutOverlay"];
    assert_eq!(with["host"], true, "{r}");
    assert_eq!(without["host"], false, "{r}");
    // The page's own boxes and computed styles are identical.
    for key in ["buybox", "rightCol", "centerCol", "styles"] {
        assert!(!with[key].is_null(), "{key}: {r}");
        assert_eq!(with[key], without[key], "{key} changed with the overlay");
    }
    // The host is out of the flow and its shadow root is closed to the page.
    // (Chromium serialises `all: initial` as its longhands.)
    let host_style = with["hostStyle"].as_str().expect("host style");
    assert!(host_style.contains("color: initial"), "{host_style}");
    assert!(host_style.contains("font: initial"), "{host_style}");
    assert!(host_style.contains("position: absolute"), "{host_style}");
    assert_eq!(with["pageSeesShadow"], false);
    // The page's `div` and inherited `body` rules do not reach the overlay.
    let inside = &r["inside"];
    for id in ["overlay", "message"] {
        let s = &inside[id];
        assert!(!s.is_null(), "{id}: {inside}");
        assert_ne!(s["color"], "rgb(255, 0, 0)", "{id}: {inside}");
        assert_ne!(s["letterSpacing"], "3px", "{id}: {inside}");
        assert_ne!(s["fontSize"], "40px", "{id}: {inside}");
    }
    assert_eq!(inside["overlay"]["fontSize"], "13px", "{inside}");
    // The host sits below the buy box, not over it.
    let buybox = with["buybox"].as_array().expect("buy box rect");
    let host = inside["host"].as_array().expect("host rect");
    let (bb_y, bb_h) = (
        buybox[1].as_f64().expect("y"),
        buybox[3].as_f64().expect("h"),
    );
    assert!(host[1].as_f64().expect("host y") >= bb_y + bb_h, "{r}");
}

#[test]
fn csp_page_gets_the_overlay_in_an_iframe_with_the_same_price() {
    let Some(mut setup) = setup("overlay iframe fallback") else {
        return;
    };
    let asin = "B0PWOVL003";
    seed_history(&mut setup.server, &[("amazon.com", asin)]);
    let page = ProductState {
        headers: vec![("Content-Security-Policy".into(), "script-src 'self'".into())],
        ..ProductState::priced(u64::try_from(CURRENT).expect("price"), TITLE)
    };
    setup.fake.set_product("www.amazon.com", asin, page);
    let run = run(
        &setup,
        "iframe",
        &format!("https://www.amazon.com/dp/{asin}"),
        &[],
    );
    let r = &run.result;
    assert_eq!(r["path"], "fallback", "{r}");
    assert_eq!(r["host"]["mode"], "iframe", "{r}");
    assert_eq!(r["shown"]["currentPrice"], CURRENT, "{r}");
    assert_eq!(r["shown"]["current"], usd(CURRENT), "{r}");
    let api = get_json(
        &setup.server,
        &format!("/v1/products/amazon.com/{asin}/history?range=3m"),
    );
    assert_eq!(r["shown"]["lowestPrice"], api["stats"]["lowest"], "{r}");
    // Sized from the UI's height messages (within a pixel of rounding).
    let frame = r["frameHeight"].as_f64().expect("frame height");
    let doc = r["docHeight"].as_f64().expect("document height");
    assert!(frame > 100.0 && (frame - doc).abs() <= 1.0, "{r}");
}

/// Waits for `name` in `dir` (written by the JS side).
fn wait_signal(dir: &Path, name: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(body) = std::fs::read_to_string(dir.join(name)) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no {name} signal from the browser"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn watches_of(url: &str, key_b64u: &str) -> Vec<backend::watch::Watch> {
    let key: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key_b64u)
        .expect("b64u key")
        .try_into()
        .expect("32 bytes");
    runtime().block_on(async {
        let store = SqliteStore::open(url)
            .await
            .expect("open the live SQLite file");
        let record = store.keys_by_public(&[key]).await.expect("key lookup")[0]
            .clone()
            .expect("the extension's key is registered");
        let list = store.list_watches(record.id).await.expect("list watches");
        store.close().await;
        list
    })
}

#[test]
fn watch_created_edited_and_removed_from_the_overlay() {
    let Some(mut setup) = setup("overlay watch") else {
        return;
    };
    let asin = "B0PWOVL004";
    seed_history(&mut setup.server, &[("amazon.com", asin)]);
    setup.fake.set_product(
        "www.amazon.com",
        asin,
        ProductState::priced(u64::try_from(CURRENT).expect("price"), TITLE),
    );
    let signals = tempfile::tempdir().expect("signal dir");
    let signal_dir: PathBuf = signals.path().to_path_buf();
    let url = db_url(&setup.server);

    // The DB checks run while the browser waits at each step.
    let checker = {
        let dir = signal_dir.clone();
        std::thread::spawn(move || {
            let created: Value =
                serde_json::from_str(&wait_signal(&dir, "created")).expect("created signal");
            let key = created["key"].as_str().expect("key").to_string();
            let list = watches_of(&url, &key);
            assert_eq!(list.len(), 1, "{list:?}");
            let w = &list[0];
            assert_eq!(
                (w.asin.as_str(), w.marketplace.as_str()),
                ("B0PWOVL004", "amazon.com")
            );
            assert_eq!(w.spec.target_price_minor, Some(9_550), "{w:?}");
            assert_eq!(w.spec.drop_percent, None, "{w:?}");
            assert!(w.spec.extension, "{w:?}");
            assert_eq!(Some(w.id), created["id"].as_i64(), "{w:?}");
            std::fs::write(dir.join("created.checked"), "").expect("signal");

            wait_signal(&dir, "edited");
            let list = watches_of(&url, &key);
            assert_eq!(list.len(), 1, "{list:?}");
            let w = &list[0];
            assert_eq!(w.spec.target_price_minor, None, "{w:?}");
            assert_eq!(w.spec.drop_percent, Some(15), "{w:?}");
            assert_eq!(
                w.spec.email.as_deref(),
                Some("shopper@example.org"),
                "{w:?}"
            );
            std::fs::write(dir.join("edited.checked"), "").expect("signal");

            wait_signal(&dir, "removed");
            let list = watches_of(&url, &key);
            assert!(list.is_empty(), "{list:?}");
            std::fs::write(dir.join("removed.checked"), "").expect("signal");
        })
    };
    let signal = signal_dir.to_string_lossy().to_string();
    let run = run(
        &setup,
        "watch",
        &format!("https://www.amazon.com/dp/{asin}"),
        &[("PRICEWATCH_SIGNAL_DIR", signal.as_str())],
    );
    checker.join().expect("the DB checks passed");
    let r = &run.result;
    let no_consent = r["noConsent"]["watchStatus"].as_str().expect("status");
    assert!(no_consent.contains("consent"), "{no_consent}");
    assert_eq!(r["afterEscape"]["formOpen"], false);
    let created = r["created"]["watchExisting"].as_str().expect("existing");
    assert!(created.contains(&usd(9_550)), "{created}");
    assert_eq!(r["reloaded"]["watchId"], r["created"]["watchId"]);
    assert!(r["removed"]["watchExisting"].is_null(), "{r}");
}
