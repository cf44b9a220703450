//! Watches and alerts through the real router on SQLite: the signed watch
//! API, the outbox written by ingest, evaluation (fire, re-arm, cooldown,
//! daily cap, back in stock), the alerts feed, corrections, a restart
//! between the price change and the evaluation, and the email links.

mod common {
    pub mod api;
}

use axum::http::{Method, StatusCode};
use backend::watch::{COOLDOWN_MS, DAILY_CAP};
use common::api::*;
use serde_json::Value;
use std::sync::atomic::{AtomicU8, Ordering};
use wasm_core::protocol::Keypair;
use wasm_core::types::{Availability, Condition};

const ASIN: &str = "B08N5WRWNW";

struct W {
    app: TestApp,
    kp: Keypair,
    nonce: AtomicU8,
    rnonce: AtomicU8,
}

impl W {
    /// Prices are reported by a trusted verifier key: these tests are
    /// about the watch rules, and only verified (or otherwise safe) prices
    /// may fire alerts since the trust issue. The decisions for collector
    /// keys are tested in `trust_store.rs` and `trust_api.rs`.
    async fn new() -> W {
        let kp = keypair(1);
        let app = TestApp::new(backend::http::ApiConfig {
            trusted_verifier_keys: std::collections::HashSet::from([kp.public_bytes()]),
            ..test_config()
        })
        .await;
        let (s, _) = app.register(&kp).await;
        assert_eq!(s, StatusCode::OK, "verifier keys are registered at start");
        W {
            app,
            kp,
            nonce: AtomicU8::new(1),
            rnonce: AtomicU8::new(1),
        }
    }

    /// Reports `price`/`availability` observed now; asserts it published.
    async fn price(&self, price: Option<u64>, availability: Availability) {
        let n = self.rnonce.fetch_add(1, Ordering::SeqCst);
        let mut o = obs(&self.kp, n, ASIN, price, self.app.now());
        o.availability = availability;
        let (s, _, v) = self.app.report(&[signed_report(o, &self.kp)]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["results"][0]["status"], "accepted", "{v}");
    }

    async fn req(&self, kp: &Keypair, m: Method, path: &str, body: &str) -> (StatusCode, Value) {
        let n = self.nonce.fetch_add(1, Ordering::SeqCst);
        let mut nonce = [7u8; 16];
        nonce[0] = n;
        let (s, _, v) = self
            .app
            .signed(kp, m, path, body, self.app.now(), nonce)
            .await;
        (s, v)
    }

    async fn evaluate(&self) -> u64 {
        self.app
            .state
            .store
            .process_outbox(self.app.now(), 100)
            .await
            .expect("outbox")
            .alerts
    }

    async fn alerts(&self, after: i64) -> Vec<Value> {
        let (s, v) = self
            .req(
                &self.kp,
                Method::GET,
                &format!("/v1/alerts?after={after}"),
                "",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["alerts"].as_array().expect("alerts").clone()
    }

    fn advance(&self, ms: i64) {
        self.app.set_now(self.app.now() + ms);
    }
}

fn watch_body(target: Option<i64>, drop: Option<i64>) -> String {
    let mut v = serde_json::json!({
        "asin": ASIN, "marketplace": "amazon.com", "condition": "new",
        "channels": {"extension": true}
    });
    if let Some(t) = target {
        v["target_price_minor"] = t.into();
    }
    if let Some(d) = drop {
        v["drop_percent"] = d.into();
    }
    v.to_string()
}

#[tokio::test]
async fn watch_crud_fire_rearm_cooldown_and_feed() {
    let w = W::new().await;
    // Unknown product: 404.
    let (s, v) = w
        .req(
            &w.kp,
            Method::POST,
            "/v1/watches",
            &watch_body(Some(4000), None),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "unknown_product");

    w.price(Some(5000), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 0);
    let (s, v) = w
        .req(
            &w.kp,
            Method::POST,
            "/v1/watches",
            &watch_body(Some(4000), None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().expect("id");
    assert_eq!(v["armed"], true);
    assert_eq!(v["current_price_minor"], 5000);
    assert_eq!(v["baseline_price_minor"], 5000);
    assert_eq!(v["currency"], "USD");

    // Listed with the current price; counted on the product and in /v1/me.
    let (s, v) = w.req(&w.kp, Method::GET, "/v1/watches", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["watches"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(v["watches"][0]["id"], id);
    assert_eq!(v["watches"][0]["current_price_minor"], 5000);
    let (_, _, p) = w.app.get(&format!("/v1/products/amazon.com/{ASIN}")).await;
    assert_eq!(p["watchers"], 1, "{p}");
    let (_, me) = w.req(&w.kp, Method::GET, "/v1/me", "").await;
    assert_eq!(me["watches"], 1);

    // A report that does not change the published price writes no event.
    w.advance(1000);
    w.price(Some(5000), Availability::InStock).await;
    let st = w
        .app
        .state
        .store
        .process_outbox(w.app.now(), 100)
        .await
        .expect("outbox");
    assert_eq!(st.events, 0);

    // Falls to 3900: fires once.
    w.advance(1000);
    w.price(Some(3900), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 1);
    let a = w.alerts(0).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "target_reached");
    assert_eq!(a[0]["old_price_minor"], 5000);
    assert_eq!(a[0]["new_price_minor"], 3900);
    assert_eq!(a[0]["watch_id"], id);
    assert_eq!(a[0]["asin"], ASIN);
    assert_eq!(a[0]["currency"], "USD");
    assert_eq!(a[0]["delivery"]["email"], "none");
    let first = a[0]["id"].as_i64().expect("id");
    assert!(w.alerts(first).await.is_empty());

    // Lower again while disarmed: nothing.
    w.advance(1000);
    w.price(Some(3800), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 0);
    // Back above: re-armed; below again inside the cooldown: nothing.
    w.advance(1000);
    w.price(Some(4500), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 0);
    w.advance(1000);
    w.price(Some(3700), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 0, "cooldown");
    // After the cooldown, the next change fires.
    w.advance(COOLDOWN_MS);
    w.price(Some(3600), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 1);
    let a = w.alerts(first).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["new_price_minor"], 3600);

    // Replace: a drop watch keeps the original baseline (5000).
    let (s, v) = w
        .req(
            &w.kp,
            Method::PUT,
            &format!("/v1/watches/{id}"),
            &watch_body(None, Some(50)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["drop_percent"], 50);
    assert_eq!(v["baseline_price_minor"], 5000);
    assert_eq!(v["armed"], true);
    w.advance(COOLDOWN_MS);
    w.price(Some(2500), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 1);
    let a = w.alerts(0).await;
    assert_eq!(
        a.last().map(|x| x["kind"].clone()),
        Some("price_drop".into())
    );

    // Another key: its list is empty, our watch is 404 for it.
    let other = keypair(2);
    assert_eq!(w.app.register(&other).await.0, StatusCode::CREATED);
    let (s, v) = w.req(&other, Method::GET, "/v1/watches", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["watches"].as_array().map(|a| a.len()), Some(0));
    let (s, _) = w
        .req(
            &other,
            Method::PUT,
            &format!("/v1/watches/{id}"),
            &watch_body(Some(1), None),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = w
        .req(&other, Method::DELETE, &format!("/v1/watches/{id}"), "")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = w.req(&other, Method::GET, "/v1/alerts?after=0", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["alerts"].as_array().map(|a| a.len()), Some(0));

    // Delete: 204, then 404; the watcher count goes back to 0.
    let (s, _) = w
        .req(&w.kp, Method::DELETE, &format!("/v1/watches/{id}"), "")
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = w
        .req(&w.kp, Method::DELETE, &format!("/v1/watches/{id}"), "")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, p) = w.app.get(&format!("/v1/products/amazon.com/{ASIN}")).await;
    assert_eq!(p["watchers"], 0);
}

#[tokio::test]
async fn validation_and_signed_request_failures() {
    let w = W::new().await;
    w.price(Some(5000), Availability::InStock).await;
    let bad = [
        r#"{"asin":"nope","marketplace":"amazon.com","condition":"new","target_price_minor":1,"channels":{"extension":true}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"ebay.com","condition":"new","target_price_minor":1,"channels":{"extension":true}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"mint","target_price_minor":1,"channels":{"extension":true}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","target_price_minor":0,"channels":{"extension":true}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","drop_percent":100,"channels":{"extension":true}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","target_price_minor":1,"channels":{}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","target_price_minor":1,"channels":{"email":"not-an-address"}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","target_price_minor":1,"channels":{"webhook":"http://example.com/x"}}"#,
        r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"used","drop_percent":10,"channels":{"extension":true}}"#,
    ];
    for b in bad {
        let (s, v) = w.req(&w.kp, Method::POST, "/v1/watches", b).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b} -> {v}");
    }
    let (s, v) = w
        .req(
            &w.kp,
            Method::POST,
            "/v1/watches",
            r#"{"asin":"B08N5WRWNW","bogus":1}"#,
        )
        .await;
    assert!(s.is_client_error(), "{v}");

    // Bad signature: signed by another key than the one named.
    let t = w.app.now();
    let body = watch_body(Some(10), None);
    let other = keypair(9);
    let nonce = wasm_core::protocol::b64u_encode(&[42; 16]);
    let sig = wasm_core::protocol::sign_request(
        &other,
        "POST",
        "/v1/watches",
        t,
        &nonce,
        body.as_bytes(),
    );
    let req = axum::http::Request::post("/v1/watches")
        .header("x-pricewatch-key", w.kp.public_b64u())
        .header("x-pricewatch-timestamp", t.to_string())
        .header("x-pricewatch-nonce", nonce)
        .header("x-pricewatch-signature", sig)
        .body(axum::body::Body::from(body.clone()))
        .expect("request");
    let (s, _, v) = w.app.send(req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "bad_signature");
    // Skewed clock.
    let (s, _, v) = w
        .app
        .signed(
            &w.kp,
            Method::POST,
            "/v1/watches",
            &body,
            t - 6 * 60_000,
            [43; 16],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "clock_skew");
    // Replayed nonce.
    let (s, _, _) = w
        .app
        .signed(&w.kp, Method::POST, "/v1/watches", &body, t, [44; 16])
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, v) = w
        .app
        .signed(&w.kp, Method::POST, "/v1/watches", &body, t, [44; 16])
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "replay");
    // A non-numeric id is a 404, not a 400 (no enumeration either way).
    let (s, _) = w.req(&w.kp, Method::DELETE, "/v1/watches/abc", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn daily_cap_back_in_stock_and_correction() {
    let w = W::new().await;
    w.price(Some(5000), Availability::InStock).await;
    let (s, v) = w
        .req(
            &w.kp,
            Method::POST,
            "/v1/watches",
            &watch_body(Some(4000), None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Start of a UTC day, so every step stays inside one day.
    let day = 86_400_000;
    w.app.set_now((w.app.now() / day + 1) * day);
    let mut fired = 0;
    for _ in 0..(DAILY_CAP + 2) {
        w.price(Some(3000), Availability::InStock).await;
        fired += w.evaluate().await;
        w.advance(1000);
        w.price(Some(4500), Availability::InStock).await;
        w.evaluate().await;
        w.advance(COOLDOWN_MS);
    }
    assert_eq!(fired as i64, DAILY_CAP, "capped per day");
    // Next day: fires again.
    w.app.set_now((w.app.now() / day + 1) * day);
    w.price(Some(3000), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 1);

    // Back in stock: an explicit flag.
    w.advance(COOLDOWN_MS);
    let body = r#"{"asin":"B08N5WRWNW","marketplace":"amazon.com","condition":"new","back_in_stock":true,"channels":{"extension":true}}"#;
    let (s, v) = w.req(&w.kp, Method::POST, "/v1/watches", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let stock_id = v["id"].as_i64().expect("id");
    w.price(None, Availability::OutOfStock).await;
    assert_eq!(w.evaluate().await, 0);
    w.advance(1000);
    w.price(Some(4800), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 1);
    let all = w.alerts(0).await;
    let last = all.last().expect("alert");
    assert_eq!(last["kind"], "back_in_stock");
    assert_eq!(last["watch_id"], stock_id);

    // Correction: a refuted price of 3000 fired DAILY_CAP + 1 alerts.
    let info = w
        .app
        .state
        .store
        .product_info("amazon.com", ASIN)
        .await
        .expect("info")
        .expect("product");
    let ids = w
        .app
        .state
        .store
        .correct_published_price(info.id, Condition::New, 3000, Some(4800), 0, w.app.now())
        .await
        .expect("correct");
    assert_eq!(ids.len() as i64, DAILY_CAP + 1);
    // Idempotent.
    let again = w
        .app
        .state
        .store
        .correct_published_price(info.id, Condition::New, 3000, Some(4800), 0, w.app.now())
        .await
        .expect("correct");
    assert!(again.is_empty());
    let all = w.alerts(0).await;
    let corrections: Vec<&Value> = all.iter().filter(|a| a["kind"] == "correction").collect();
    assert_eq!(corrections.len() as i64, DAILY_CAP + 1);
    assert_eq!(corrections[0]["old_price_minor"], 3000);
    assert_eq!(corrections[0]["new_price_minor"], 4800);
}

#[tokio::test]
async fn restart_between_change_and_evaluation_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    // Build the state through the store API directly (no router needed).
    let kp = keypair(3);
    let pk = *wasm_core::protocol::PublicKey::from_b64u(&kp.public_b64u())
        .expect("pk")
        .as_bytes();
    let key = match store.register_key(&pk, T0, None).await.expect("reg") {
        backend::store::Registered::Created(k) | backend::store::Registered::Existing(k) => k,
    };
    let report = |n: u8, price: i64, t: i64| backend::store::NewReport {
        key_id: key.id,
        nonce: [n; 16],
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        price_minor: Some(price),
        currency: "USD".into(),
        availability: Availability::InStock,
        seller: wasm_core::types::Seller::Amazon,
        title: "t".into(),
        observed_at: t,
        // A verifier's observation: it may alert at once.
        trusted: true,
        net_hash: None,
        raw: "{}".into(),
    };
    store
        .ingest(&[report(1, 5000, T0)], T0)
        .await
        .expect("ingest");
    store.process_outbox(T0, 100).await.expect("outbox");
    let nw = backend::watch::NewWatch {
        key_id: key.id,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        spec: backend::watch::WatchSpec {
            target_price_minor: Some(4000),
            drop_percent: None,
            back_in_stock: false,
            extension: true,
            email: None,
            webhook: None,
        },
        webhook_secret: None,
        contact_hashes: None,
    };
    store.create_watch(&nw, T0).await.expect("watch");
    // The price change commits, then the process "dies" before evaluating.
    store
        .ingest(&[report(2, 3000, T0 + 1)], T0 + 1)
        .await
        .expect("ingest");
    store.close().await;
    drop(store);
    let store = backend::store::connect(&url).await.expect("reopen");
    let st = store.process_outbox(T0 + 2, 100).await.expect("outbox");
    assert_eq!((st.events, st.alerts), (1, 1));
    // Nothing left to do, and no duplicate on another pass.
    let st = store.process_outbox(T0 + 3, 100).await.expect("outbox");
    assert_eq!((st.events, st.alerts), (0, 0));
    let alerts = store.alerts_after(key.id, 0, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].new_price_minor, Some(3000));
    store.close().await;
}

/// `GET /v1/alerts` is the extension's channel: a watch saved with
/// `"extension": false` (email only here) fires and records its alert, but
/// the feed leaves it out, and the feed's cursor still pages past it.
#[tokio::test]
async fn feed_leaves_out_watches_without_the_extension_channel() {
    let w = W::new().await;
    w.price(Some(5000), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 0);
    let (s, v) = w
        .req(
            &w.kp,
            Method::POST,
            "/v1/watches",
            &watch_body(Some(4000), None),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let shown = v["id"].as_i64().expect("id");
    let body = serde_json::json!({
        "asin": ASIN, "marketplace": "amazon.com", "condition": "new",
        "target_price_minor": 4500,
        "channels": {"extension": false, "email": "someone@example.com"}
    })
    .to_string();
    let (s, v) = w.req(&w.kp, Method::POST, "/v1/watches", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["channels"]["extension"], false, "{v}");
    let hidden = v["id"].as_i64().expect("id");

    // 3900 meets both thresholds: two alerts recorded, one in the feed.
    w.advance(1000);
    w.price(Some(3900), Availability::InStock).await;
    assert_eq!(w.evaluate().await, 2);
    let feed = w.alerts(0).await;
    assert_eq!(feed.len(), 1, "{feed:?}");
    assert_eq!(feed[0]["watch_id"], shown);
    assert_eq!(feed[0]["kind"], "target_reached");
    assert_eq!(feed[0]["new_price_minor"], 3900);
    assert!(feed.iter().all(|a| a["watch_id"] != hidden));

    // Turning the extension channel on shows that watch's alert too.
    let body = serde_json::json!({
        "asin": ASIN, "marketplace": "amazon.com", "condition": "new",
        "target_price_minor": 4500,
        "channels": {"extension": true, "email": "someone@example.com"}
    })
    .to_string();
    let (s, v) = w
        .req(&w.kp, Method::PUT, &format!("/v1/watches/{hidden}"), &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let feed = w.alerts(0).await;
    assert_eq!(feed.len(), 2, "{feed:?}");
    assert_eq!(feed[1]["watch_id"], hidden);
    assert_eq!(feed[1]["new_price_minor"], 3900);
}
