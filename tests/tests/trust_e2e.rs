//! Trust but verify, end to end (issue 6, `../shared/design/TRUST.md`):
//! the real `pricewatch serve` binary with its embedded verifier crawling
//! the fake Amazon, collectors that sign real reports, a webhook receiver
//! for the alerts.
//!
//! - a penny bomb from five fresh keys is held, refuted by one crawl,
//!   alerts nobody and costs the keys their trust;
//! - a real 60% flash deal reported by established keys is confirmed by
//!   the crawl and alerts within the crawl latency (printed);
//! - a price that two established groups corroborated (so it alerted at
//!   once) and that a later crawl refuted sends a `correction` alert.
//!
//! Test shortcut, for established keys: trust is earned only from crawl
//! outcomes and a key on probation may trigger only a few crawls a day,
//! so a test cannot earn it in seconds. The keys are registered through
//! the API, the server is stopped, their Beta evidence is written into the
//! SQLite file (`alpha = 41, beta = 1`: 40 confirmations, `T = 0.95`) and
//! the server is restarted on the same database. Everything after that
//! runs through the real code.
//!
//! Independence groups are per registration network (/24) and day:
//! collectors register and report from 127.0.1.1, 127.0.2.1, ... (all of
//! 127/8 is loopback on Linux), so two of them count as two groups.
//!
//! Nothing sleeps blindly: every wait polls with a deadline. Where a test
//! asserts that something does *not* happen (no alert), it first waits for
//! the event that would have caused it (the crawl's result), then watches
//! for a short, named grace period.

use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::fake_amazon::{Failure, FakeAmazon, ProductState};
use tests::http;
use tests::webhook_sink::WebhookSink;
use tests::PricewatchServer;
use wasm_core::protocol::{
    b64u_encode, pow_solve, sign_request, Keypair, Observation, Registration, NONCE_LEN,
};
use wasm_core::types::{Availability, Condition, Seller};

/// Proof-of-work difficulty the test servers ask for.
const POW: u32 = 4;
/// How long any one wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);
/// After the crawl result is in, how long an alert that must not come is
/// watched for (the notifier wakes on each outbox event within ms).
const NO_ALERT_GRACE: Duration = Duration::from_millis(1_500);
/// Seeded evidence of an established key: 40 confirmations.
const SEED_ALPHA: f64 = 41.0;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A loopback address on its own /24 (`127.0.n.1`).
fn net(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, n, 1))
}

/// Polls `f` every 50 ms until it gives a value; fails after [`DEADLINE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server, the fake Amazon it crawls and a webhook receiver.
struct Env {
    fake: FakeAmazon,
    hooks: WebhookSink,
    server: PricewatchServer,
    _ca_dir: tempfile::TempDir,
}

impl Env {
    /// `pricewatch serve` with its embedded verifier aimed at the fake
    /// Amazon (fast polling and rate, quick ticks), no rate limits on the
    /// loopback collectors. `None` (skipped) without the binary outside CI.
    fn start(test: &str) -> Option<Env> {
        if let Err(e) = tests::server::pricewatch_bin() {
            tests::skip_or_fail(test, &[e.to_string()]);
            return None;
        }
        let fake = FakeAmazon::start().expect("fake Amazon");
        let hooks = WebhookSink::start().expect("webhook sink");
        let ca_dir = tempfile::tempdir().expect("tempdir");
        let ca = fake.write_ca_pem(ca_dir.path()).expect("CA file");
        let base = format!("amazon.com={}", fake.base_url());
        let ca = ca.display().to_string();
        let server = PricewatchServer::start_with(&[
            "--pow-difficulty",
            &POW.to_string(),
            "--rate-ip-reports-per-min",
            "0",
            "--rate-key-reports-per-min",
            "0",
            "--rate-ip-registrations-per-hour",
            "0",
            "--rate-ip-requests-per-min",
            "0",
            "--webhook-allow-loopback-http",
            "--verifier-marketplace-base",
            &base,
            "--verifier-ca-cert",
            &ca,
            "--verifier-rate",
            "*=50/s",
            "--verifier-concurrency",
            "4",
            "--verifier-idle-poll-ms",
            "100",
            "--tick-ms",
            "200",
        ])
        .expect("pricewatch serve");
        Some(Env {
            fake,
            hooks,
            server,
            _ca_dir: ca_dir,
        })
    }

    fn summary(&self, asin: &str) -> Value {
        let r = self
            .server
            .get(&format!("/v1/products/amazon.com/{asin}"))
            .expect("summary");
        serde_json::from_str(&r.text()).unwrap_or(Value::Null)
    }

    /// The `new` offer of the summary, once it has `status` and `price`.
    fn wait_offer(&self, asin: &str, status: &str, price: i64) -> Value {
        wait_for(&format!("{asin} {status} at {price}"), || {
            let offer = self.summary(asin)["offers"]["new"].clone();
            (offer["status"] == status && offer["price_minor"] == price).then_some(offer)
        })
    }

    /// Open verification jobs (queued, leased or holding), from `/metrics`.
    fn open_jobs(&self) -> i64 {
        let m = self.server.get("/metrics").expect("metrics").text();
        m.lines()
            .filter(|l| l.starts_with("pricewatch_verification_queue_depth{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
            .sum()
    }

    fn history(&self, asin: &str) -> Value {
        let r = self
            .server
            .get(&format!("/v1/products/amazon.com/{asin}/history?range=1d"))
            .expect("history");
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_str(&r.text()).expect("history json")
    }

    /// A fresh key, registered from `from` and reporting from there.
    fn collector(&self, from: IpAddr) -> Collector {
        let kp = Keypair::from_seed(&rand::random::<[u8; 32]>());
        let pow = pow_solve(&kp.public_b64u(), POW, 0, u64::MAX).expect("pow");
        let reg = serde_json::to_string(&Registration::new(&kp, &pow)).expect("json");
        // Registered from its own network: a key's independence group is
        // its registration network and day.
        let r = http::request_from(
            from,
            self.server.addr(),
            "POST",
            "/v1/keys",
            &[("content-type", "application/json")],
            reg.as_bytes(),
        )
        .expect("register");
        assert_eq!(r.status, 201, "{}", r.text());
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        Collector {
            addr: self.server.addr(),
            kp,
            from,
            registered_trust: v["trust"].as_f64().expect("trust"),
        }
    }

    /// Test shortcut (module docs): gives `keys` the evidence of 40
    /// confirmed reports, with the server stopped, then restarts it.
    fn establish(&mut self, keys: &[&Collector]) {
        self.server.stop();
        let db = self.server.data_dir().join("pricewatch.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            let url = format!("sqlite://{}", db.display());
            let mut conn = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("open the stopped server's database");
            for k in keys {
                let done = sqlx::query(
                    "UPDATE keys SET alpha = ?1, beta = 1.0, evidence_at = ?2 WHERE public_key = ?3",
                )
                .bind(SEED_ALPHA)
                .bind(now_ms())
                .bind(k.kp.public_bytes().to_vec())
                .execute(&mut conn)
                .await
                .expect("seed the reputation");
                assert_eq!(done.rows_affected(), 1, "the key is registered");
            }
            conn.close().await.expect("close");
        });
        self.server.restart().expect("restart on the same database");
        for k in keys {
            let t = k.trust();
            assert!(t >= 0.9, "seeded trust {t}");
        }
    }
}

/// A collector key.
struct Collector {
    addr: SocketAddr,
    kp: Keypair,
    from: IpAddr,
    registered_trust: f64,
}

fn nonce() -> String {
    b64u_encode(&rand::random::<[u8; NONCE_LEN]>())
}

impl Collector {
    /// One signed report of `price` (USD cents) for `asin`; the report's
    /// result object (`status`, `reason`).
    fn report(&self, asin: &str, condition: Condition, price: u64) -> Value {
        let o = Observation {
            key: self.kp.public_b64u(),
            asin: asin.into(),
            marketplace: "amazon.com".into(),
            condition,
            price_minor: Some(price),
            currency: "USD".into(),
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: format!("Product {asin}"),
            observed_at: now_ms(),
            nonce: nonce(),
        };
        let body = json!({"reports": [o.into_report(&self.kp).expect("sign")]}).to_string();
        let r = http::request_from(
            self.from,
            self.addr,
            "POST",
            "/v1/reports",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .expect("report");
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = serde_json::from_str(&r.text()).expect("json");
        v["results"][0].clone()
    }

    /// A signed request (PROTOCOL.md §3).
    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let nonce = nonce();
        let t = now_ms();
        let sig = sign_request(&self.kp, method, path, t, &nonce, body.as_bytes());
        let ts = t.to_string();
        let key = self.kp.public_b64u();
        let r = http::request_from(
            self.from,
            self.addr,
            method,
            path,
            &[
                ("content-type", "application/json"),
                ("x-pricewatch-key", &key),
                ("x-pricewatch-timestamp", &ts),
                ("x-pricewatch-nonce", &nonce),
                ("x-pricewatch-signature", &sig),
            ],
            body.as_bytes(),
        )
        .expect("signed request");
        (
            r.status,
            serde_json::from_str(&r.text()).unwrap_or(Value::Null),
        )
    }

    fn trust(&self) -> f64 {
        let (s, v) = self.send("GET", "/v1/me", "");
        assert_eq!(s, 200, "{v}");
        v["trust"].as_f64().expect("trust")
    }

    /// A watch on the new offer with a target price, on the extension feed
    /// and the webhook `hook_url`.
    fn watch(&self, asin: &str, target: i64, hook_url: &str) -> i64 {
        let w = json!({"asin": asin, "marketplace": "amazon.com", "condition": "new",
            "target_price_minor": target,
            "channels": {"extension": true, "webhook": hook_url}});
        let (s, v) = self.send("POST", "/v1/watches", &w.to_string());
        assert_eq!(s, 201, "{v}");
        v["id"].as_i64().expect("watch id")
    }

    fn alerts(&self) -> Vec<Value> {
        let (s, v) = self.send("GET", "/v1/alerts?after=0", "");
        assert_eq!(s, 200, "{v}");
        v["alerts"].as_array().cloned().unwrap_or_default()
    }
}

/// The webhook bodies received on `path`, parsed.
fn hooks_on(env: &Env, path: &str) -> Vec<Value> {
    env.hooks
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// Five fresh keys report $0.01 for a watched $999 phone: every report is
/// held, one crawl reads the real price, nobody is alerted, the keys lose
/// their trust, and the history lists the refuted price.
#[test]
fn penny_bomb_is_held_refuted_by_one_crawl_and_alerts_nobody() {
    let Some(env) = Env::start("penny bomb") else {
        return;
    };
    const PHONE: &str = "B0PENNY001";
    env.fake.set_product(
        "amazon.com",
        PHONE,
        ProductState::priced(99_900, "Pricewatch Phone 15"),
    );
    // An honest first report: published as provisional, crawled, verified.
    let honest = env.collector(net(0));
    assert_eq!(
        honest.report(PHONE, Condition::New, 99_900)["status"],
        "provisional"
    );
    env.wait_offer(PHONE, "verified", 99_900);
    let watcher = env.collector(net(0));
    let watch = watcher.watch(PHONE, 90_000, &env.hooks.url("/penny"));
    let crawls_before = env.fake.requests_for("amazon.com", PHONE).len();

    // The swarm reports within a second; the crawl takes 2 s (a slow page),
    // so every report arrives while it is pending.
    env.fake
        .fail_next("amazon.com", PHONE, Failure::Delay(2_000), 1);
    let attackers: Vec<Collector> = (0..5).map(|_| env.collector(net(66))).collect();
    for a in &attackers {
        let r = a.report(PHONE, Condition::New, 1);
        assert_eq!(r["status"], "held", "a $0.01 phone is never published: {r}");
    }
    // The crawl reads $999.00; the penalty shows in every attacker's trust.
    let penalised = wait_for("the attackers' penalty", || {
        let after: Vec<f64> = attackers.iter().map(|a| a.trust()).collect();
        after
            .iter()
            .zip(&attackers)
            .all(|(t, a)| *t < a.registered_trust)
            .then_some(after)
    });
    println!(
        "attackers' trust: {:.3} at registration, {penalised:?} after the crawl",
        attackers[0].registered_trust
    );
    assert!(
        penalised.iter().all(|t| *t < 0.01),
        "a severe refutation leaves no trust: {penalised:?}"
    );
    assert_eq!(
        env.fake.requests_for("amazon.com", PHONE).len() - crawls_before,
        1,
        "five keys, one crawl"
    );
    let offer = env.wait_offer(PHONE, "verified", 99_900);
    println!("summary after the penny bomb: {offer}");
    assert_eq!(
        offer["lowest"]["price_minor"], 99_900,
        "the refuted price never became the low: {offer}"
    );
    let history = env.history(PHONE);
    println!("history corrections: {}", history["corrections"]);
    let corrections = history["corrections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        corrections
            .iter()
            .any(|c| c["reported_price_minor"] == 1 && c["verified_price_minor"] == 99_900),
        "the refuted price is listed: {history}"
    );
    assert!(
        history["points"]
            .as_array()
            .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["low"] == 99_900)),
        "no chart point at $0.01: {history}"
    );

    // Nobody is alerted: not on the feed, not on the webhook.
    let start = Instant::now();
    while start.elapsed() < NO_ALERT_GRACE {
        assert!(watcher.alerts().is_empty(), "no alert for watch {watch}");
        assert!(hooks_on(&env, "/penny").is_empty(), "no webhook");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Distrusted now: another penny report is stored only, no new crawl.
    let again = attackers[0].report(PHONE, Condition::New, 1);
    assert_eq!(again["status"], "stored", "{again}");
}

/// Established keys report a real 60% flash deal that the fake Amazon
/// shows too: the crawl confirms it, it is published as verified and the
/// watcher's alert arrives within the crawl latency.
#[test]
fn real_flash_deal_from_established_keys_alerts_after_the_crawl() {
    let Some(mut env) = Env::start("flash deal") else {
        return;
    };
    let a = env.collector(net(1));
    let b = env.collector(net(2));
    env.establish(&[&a, &b]);
    const TV: &str = "B0FLASH001";
    env.fake.set_product(
        "amazon.com",
        TV,
        ProductState::priced(50_000, "Pricewatch TV 55"),
    );
    assert_eq!(
        a.report(TV, Condition::New, 50_000)["status"],
        "provisional"
    );
    env.wait_offer(TV, "verified", 50_000);
    let watcher = env.collector(net(0));
    watcher.watch(TV, 30_000, &env.hooks.url("/deal"));
    let trust_before = a.trust();

    // The deal goes live; the shoppers see it and report it.
    env.fake.set_price("amazon.com", TV, Some(20_000));
    let reported = Instant::now();
    let first = a.report(TV, Condition::New, 20_000);
    let second = b.report(TV, Condition::New, 20_000);
    println!("deal reports: {first} {second}");
    for r in [&first, &second] {
        assert_eq!(
            r["status"], "held",
            "a drop over 50% waits for the crawl: {r}"
        );
    }
    let hook = wait_for("the deal's webhook", || {
        hooks_on(&env, "/deal").into_iter().next()
    });
    let latency = reported.elapsed();
    println!(
        "flash deal: first report to webhook alert {} ms (crawl, publish, notifier)",
        latency.as_millis()
    );
    assert!(hook.to_string().contains("200.00"), "{hook}");
    let alerts = watcher.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "target_reached");
    assert_eq!(alerts[0]["new_price_minor"], 20_000);
    assert_eq!(alerts[0]["old_price_minor"], 50_000);
    let offer = env.wait_offer(TV, "verified", 20_000);
    assert!(offer["last_verified_at"].as_i64().is_some(), "{offer}");
    assert!(
        env.history(TV)["corrections"]
            .as_array()
            .is_none_or(|c| c.is_empty()),
        "nothing was corrected"
    );
    // The confirmed reporters are credited.
    let trust_after = wait_for("the reporters' credit", || {
        let t = a.trust();
        (t > trust_before).then_some(t)
    });
    println!("reporter trust {trust_before:.4} -> {trust_after:.4}");
}

/// Two established groups report a price nobody had published yet: the
/// first report publishes it as provisional and its crawl is inconclusive
/// (the page answers 404), the second corroborates it, so it becomes
/// `confirmed` and the watch fires at once. A later report (a broken
/// parse: $1.00) is held for a crawl, which reads the real price: the
/// refuted, already alerted price gets a `correction` alert on the same
/// channels; the product shows the verified price and the history lists
/// the correction, while neither its points nor the lowest/highest (of
/// the summary or the history) show a refuted price.
#[test]
fn a_refuted_price_that_alerted_sends_a_correction() {
    let Some(mut env) = Env::start("correction") else {
        return;
    };
    let a = env.collector(net(1));
    let b = env.collector(net(2));
    env.establish(&[&a, &b]);
    const LAMP: &str = "B0LAMP0001";
    env.fake.set_product(
        "amazon.com",
        LAMP,
        ProductState::priced(30_000, "Pricewatch Lamp"),
    );
    // The product becomes known through a used-condition report, so the
    // watch on the new offer is made while no new price is published: it
    // is armed. (That report's crawl finds no used offer.)
    let other = env.collector(net(9));
    other.report(LAMP, Condition::Used, 12_000);
    wait_for("the used offer's crawl", || {
        (env.fake.requests_for("amazon.com", LAMP).len() == 1 && env.open_jobs() == 0).then_some(())
    });
    // A new watch on a product nobody reported recently gets a scheduled
    // refresh crawl; the page answers 404 (inconclusive: nothing published).
    env.fake
        .fail_next("amazon.com", LAMP, Failure::Status(404), 1);
    let watcher = env.collector(net(0));
    watcher.watch(LAMP, 26_000, &env.hooks.url("/fix"));
    wait_for("the watched product's refresh crawl", || {
        (env.fake.requests_for("amazon.com", LAMP).len() == 2 && env.open_jobs() == 0).then_some(())
    });
    assert!(
        env.summary(LAMP)["offers"]["new"].is_null(),
        "no new price yet: {}",
        env.summary(LAMP)
    );
    let a_before = a.trust();

    // The first group reports $250: cold start, published as provisional;
    // its crawl is inconclusive too.
    env.fake
        .fail_next("amazon.com", LAMP, Failure::Status(404), 1);
    let first = a.report(LAMP, Condition::New, 25_000);
    assert_eq!(first["status"], "provisional", "cold start: {first}");
    wait_for("the inconclusive crawl", || {
        (env.fake.requests_for("amazon.com", LAMP).len() == 3).then_some(())
    });
    // The second group's report corroborates it once that crawl is closed
    // (while a crawl is pending the crawl decides); the shopper's page
    // reloads report again until then.
    let reported = Instant::now();
    let confirmed = wait_for("the corroborated price", || {
        let r = b.report(LAMP, Condition::New, 25_000);
        assert_eq!(r["status"], "accepted", "{r}");
        let offer = env.summary(LAMP)["offers"]["new"].clone();
        (offer["status"] == "confirmed").then_some(offer)
    });
    println!("corroborated: {confirmed}");
    assert_eq!(confirmed["price_minor"], 25_000);
    let alert = wait_for("the alert", || hooks_on(&env, "/fix").into_iter().next());
    println!(
        "corroborated price: report to webhook {} ms: {alert}",
        reported.elapsed().as_millis()
    );
    assert!(alert.to_string().contains("250.00"), "{alert}");

    // A broken parse reads $1.00: held, crawled, and the crawl reads $300.
    let broken = env.collector(net(7));
    let r = broken.report(LAMP, Condition::New, 100);
    assert_eq!(r["status"], "held", "{r}");
    let correction = wait_for("the correction", || {
        hooks_on(&env, "/fix").into_iter().nth(1)
    });
    println!("crawl refuted it: correction webhook {correction}");
    assert!(correction.to_string().contains("300.00"), "{correction}");
    let alerts = watcher.alerts();
    println!("alerts feed: {alerts:?}");
    let kinds: Vec<&str> = alerts.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, ["target_reached", "correction"], "{alerts:?}");
    assert_eq!(alerts[0]["new_price_minor"], 25_000);
    assert_eq!(alerts[1]["new_price_minor"], 30_000, "{}", alerts[1]);

    let offer = wait_for("the verified price", || {
        let o = env.summary(LAMP)["offers"]["new"].clone();
        (o["price_minor"] == 30_000).then_some(o)
    });
    println!("summary after the correction: {offer}");
    assert!(
        offer["status"] == "corrected" || offer["status"] == "verified",
        "{offer}"
    );
    // The refuted $250 (and the held $1.00) are in no point, and neither
    // the summary's nor the history's lowest/highest show them (API.md:
    // points exclude observations verification proved false).
    assert_eq!(offer["lowest"]["price_minor"], 30_000, "{offer}");
    assert_eq!(offer["highest"]["price_minor"], 30_000, "{offer}");
    let history = env.history(LAMP);
    println!("history corrections: {}", history["corrections"]);
    println!("history points: {}", history["points"]);
    let points = history["points"].as_array().cloned().unwrap_or_default();
    assert!(!points.is_empty(), "{history}");
    for p in &points {
        assert_eq!(
            (&p["low"], &p["high"]),
            (&json!(30_000), &json!(30_000)),
            "{history}"
        );
    }
    assert_eq!(history["stats"]["lowest"], 30_000, "{history}");
    assert_eq!(history["stats"]["highest"], 30_000, "{history}");
    let corrections = history["corrections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        corrections
            .iter()
            .any(|c| c["reported_price_minor"] == 25_000 && c["verified_price_minor"] == 30_000),
        "{history}"
    );
    assert!(
        corrections
            .iter()
            .any(|c| c["reported_price_minor"] == 100 && c["verified_price_minor"] == 30_000),
        "{history}"
    );
    // The broken reporter is penalised; the corroborators' reports were not
    // judged by a crawl (the first one's crawl was inconclusive).
    assert!(broken.trust() < broken.registered_trust);
    println!("corroborator's trust {a_before:.4} -> {:.4}", a.trust());
}
