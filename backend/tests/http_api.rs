//! HTTP tests through the real router (`oneshot`): every status code API.md
//! names, with the JSON error body, and every kind of bad ingest input
//! rejected with the right code and nothing stored.

mod common {
    pub mod api;
}

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use backend::http::limits::LimitConfig;
use backend::http::ApiConfig;
use common::api::*;
use std::collections::HashSet;

const ASIN: &str = "B08N5WRWNW";

async fn registered_app(config: ApiConfig) -> (TestApp, wasm_core::protocol::Keypair) {
    let app = TestApp::new(config).await;
    let kp = keypair(1);
    let (s, _) = app.register(&kp).await;
    assert_eq!(s, StatusCode::CREATED);
    (app, kp)
}

/// An app whose reporting key is a trusted verifier: every fresh report
/// publishes at once (as `verified`). The tests of publishing, history and
/// caching use it; the trust decisions for collector keys are tested in
/// `trust_api.rs` and the store tests.
async fn verifier_app() -> (TestApp, wasm_core::protocol::Keypair) {
    let kp = keypair(1);
    let app = TestApp::new(ApiConfig {
        trusted_verifier_keys: HashSet::from([kp.public_bytes()]),
        ..test_config()
    })
    .await;
    (app, kp)
}

#[tokio::test]
async fn public_endpoints_answer() {
    let app = TestApp::new(test_config()).await;
    let (s, _, v) = app.get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (s, _, v) = app.get("/v1/config").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["pow_difficulty"], 6);
    assert_eq!(v["max_batch"], 100);
    assert_eq!(v["max_body_bytes"], 512 * 1024);
    assert_eq!(v["observation_max_age_ms"], 86_400_000);
    assert_eq!(v["clock_skew_ms"], 300_000);
    assert!(v["version"].is_string());
    let (s, _, v) = app.get("/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&v), "not_found");
    let (s, h, v) = app.get("/metrics").await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = v.as_str().expect("text");
    assert!(
        text.contains(
            "pricewatch_http_requests_total{route=\"/v1/config\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("pricewatch_database_errors_total"));
}

#[tokio::test]
async fn key_registration() {
    let app = TestApp::new(test_config()).await;
    let kp = keypair(1);
    let (s, v) = app.register(&kp).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["key"], kp.public_b64u());
    let trust = v["trust"].as_f64().expect("trust");
    assert!((0.1..0.2).contains(&trust), "{trust}");
    let (s, v2) = app.register(&kp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, v2);

    // Not enough work: difficulty 6 needs 6 zero bits; find a pow that has none.
    let kp2 = keypair(2);
    let key = kp2.public_b64u();
    let weak = (0u64..)
        .map(|i| wasm_core::protocol::b64u_encode(&i.to_be_bytes()))
        .find(|p| wasm_core::protocol::pow_check(&key, p, 1).is_err())
        .expect("a failing pow");
    let reg = wasm_core::protocol::Registration::new(&kp2, &weak);
    let (s, _, v) = app
        .post("/v1/keys", serde_json::to_string(&reg).expect("json"))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&v), "insufficient_work");

    // Signature by another key.
    let mut reg = registration(&kp2, 6);
    reg.sig = registration(&keypair(3), 6).sig;
    let (s, _, v) = app
        .post("/v1/keys", serde_json::to_string(&reg).expect("json"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "bad_signature");

    let (s, _, v) = app.post("/v1/keys", "{\"key\":").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v), "malformed_json");
    let mut body = serde_json::to_value(registration(&kp2, 6)).expect("json");
    body["extra"] = 1.into();
    let (s, _, v) = app.post("/v1/keys", body.to_string()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v), "unknown_field");
    // Nothing registered for kp2.
    let found = app
        .state
        .store
        .keys_by_public(&[kp2.public_bytes()])
        .await
        .expect("lookup");
    assert!(found[0].is_none());
}

#[tokio::test]
async fn reports_publish_and_read_back() {
    let (app, kp) = verifier_app().await;
    let t = app.now();
    let r1 = signed_report(obs(&kp, 1, ASIN, Some(4999), t - 120_000), &kp);
    let r2 = signed_report(obs(&kp, 2, ASIN, Some(3999), t - 60_000), &kp);
    let (s, _, v) = app.report(&[r1, r2]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["results"],
        serde_json::json!([{"status": "accepted"}, {"status": "accepted"}])
    );

    let (s, _, v) = app.get(&format!("/v1/products/amazon.com/{ASIN}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["asin"], ASIN);
    assert_eq!(v["currency"], "USD");
    assert_eq!(v["title"], "Echo Dot (5th Gen) Smart speaker");
    assert_eq!(v["watchers"], 0);
    let new = &v["offers"]["new"];
    assert_eq!(new["price_minor"], 3999);
    assert_eq!(new["status"], "verified");
    assert_eq!(new["availability"], "in_stock");
    assert_eq!(new["seller"], "amazon");
    assert_eq!(new["reporters"], 1);
    assert_eq!(
        new["lowest"],
        serde_json::json!({"price_minor": 3999, "at": t - 60_000})
    );
    assert_eq!(
        new["highest"],
        serde_json::json!({"price_minor": 4999, "at": t - 120_000})
    );
    assert_eq!(new["last_verified_at"], t - 60_000);

    let (s, _, v) = app
        .get(&format!(
            "/v1/products/amazon.com/{ASIN}/history?range=1d&granularity=raw"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["granularity"], "raw");
    assert_eq!(v["range"], "1d");
    assert_eq!(v["condition"], "new");
    assert_eq!(v["points"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["points"][1]["close"], 3999);
    assert_eq!(v["stats"]["current"], 3999);
    assert_eq!(v["stats"]["drops"], 1);
    assert_eq!(v["stats"]["increases"], 0);
    // 4999 for 60 s, 3999 for 60 s.
    assert_eq!(v["stats"]["average"], 4499);
    assert_eq!(v["corrections"], serde_json::json!([]));
    let (_, _, v) = app
        .get(&format!("/v1/products/amazon.com/{ASIN}/history"))
        .await;
    assert_eq!(v["range"], "3m");
    assert_eq!(v["granularity"], "raw", "auto picks raw for 2 runs");

    let (s, _, v) = app.get("/v1/products/search?q=echo%20dot").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["total"], 1);
    assert_eq!(v["products"][0]["asin"], ASIN);
    let (_, _, v) = app
        .get("/v1/products/search?q=echo&marketplace=amazon.de")
        .await;
    assert_eq!(v["total"], 0);

    let (s, h, page) = app.get(&format!("/p/amazon.com/{ASIN}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let html = page.as_str().expect("html");
    assert!(html.contains("<svg"), "chart");
    assert!(html.contains("$39.99"), "formatted current price");
    assert!(html.contains("lowest $39.99"), "lowest marked");
    assert!(html.contains("highest $49.99"), "highest marked");
    assert!(html.contains("?range=1y&amp;condition=new"), "range links");
    assert!(html.contains("Echo Dot (5th Gen)"));

    let (_, _, m) = app.get("/metrics").await;
    let text = m.as_str().expect("metrics");
    assert!(
        text.contains("pricewatch_reports_total{status=\"accepted\",reason=\"\"} 2"),
        "{text}"
    );
    assert!(text.contains("pricewatch_ingest_duration_seconds_count 1"));
}

/// History answers are cached briefly (`http::history_cache`), but a
/// stored report drops its product's cached answers at once.
#[tokio::test]
async fn a_stored_report_refreshes_cached_history() {
    let (app, kp) = verifier_app().await;
    let t = app.now();
    let r1 = signed_report(obs(&kp, 1, ASIN, Some(4999), t - 120_000), &kp);
    let (s, _, _) = app.report(&[r1]).await;
    assert_eq!(s, StatusCode::OK);
    let uri = format!("/v1/products/amazon.com/{ASIN}/history?range=1d&granularity=raw");
    let (_, h, v) = app.get(&uri).await;
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(v["points"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["stats"]["current"], 4999);
    let r2 = signed_report(obs(&kp, 2, ASIN, Some(2999), t - 30_000), &kp);
    let (s, _, _) = app.report(&[r2]).await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, v) = app.get(&uri).await;
    assert_eq!(v["points"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["stats"]["current"], 2999);
    // A duplicate stores nothing and the (re-cached) answer stays right.
    let again = signed_report(obs(&kp, 2, ASIN, Some(2999), t - 30_000), &kp);
    let (s, _, _) = app.report(&[again]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, _, v) = app.get(&uri).await;
    assert_eq!(v["points"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn each_bad_report_is_rejected_and_stores_nothing() {
    let (app, kp) = registered_app(test_config()).await;
    let t = app.now();
    let good = |n: u8| obs(&kp, n, ASIN, Some(1000), t);

    // Bad signature: signed by another key.
    let stranger = keypair(9);
    let mut forged =
        serde_json::from_str::<serde_json::Value>(&signed_report(good(1), &kp)).expect("json");
    let other_sig = signed_report(
        wasm_core::protocol::Observation {
            key: stranger.public_b64u(),
            ..good(1)
        },
        &stranger,
    );
    forged["sig"] =
        serde_json::from_str::<serde_json::Value>(&other_sig).expect("json")["sig"].clone();
    let bad_asin = signed_report(good(2), &kp).replace(ASIN, "b08n5wrwnw");
    let unknown_inner = signed_report(good(3), &kp).replacen("{\"obs\":", "{\"x\":1,\"obs\":", 1);
    let dup_inner = signed_report(good(4), &kp).replacen("\"sig\":", "\"sig\":\"AA\",\"sig\":", 1);
    let stale = signed_report(obs(&kp, 5, ASIN, Some(1000), t - 25 * 3_600_000), &kp);
    let future = signed_report(obs(&kp, 6, ASIN, Some(1000), t + 6 * 60_000), &kp);
    let unregistered = signed_report(
        wasm_core::protocol::Observation {
            key: stranger.public_b64u(),
            ..good(7)
        },
        &stranger,
    );
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "bad signature",
            forged.to_string(),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "grammar",
            bad_asin,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "unknown field",
            unknown_inner,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            "duplicate key",
            dup_inner,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        ("stale", stale, StatusCode::UNPROCESSABLE_ENTITY, "stale"),
        ("future", future, StatusCode::UNPROCESSABLE_ENTITY, "future"),
        (
            "unregistered",
            unregistered,
            StatusCode::FORBIDDEN,
            "unregistered_key",
        ),
    ];
    for (name, report, status, code) in &cases {
        let (s, _, v) = app.report(std::slice::from_ref(report)).await;
        assert_eq!(s, *status, "{name}: {v}");
        assert_eq!(error_code(&v), *code, "{name}");
        assert_eq!(v["results"][0]["status"], "rejected", "{name}");
        assert_eq!(v["results"][0]["reason"], *code, "{name}");
        assert_eq!(app.observations().await, 0, "{name} stored something");
    }
    let (s, _, _) = app.get(&format!("/v1/products/amazon.com/{ASIN}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The same kinds inside one batch: one result each, in order.
    let mut batch: Vec<String> = cases.iter().map(|c| c.1.clone()).collect();
    batch.insert(3, signed_report(good(10), &kp));
    let (s, _, v) = app.report(&batch).await;
    assert_eq!(s, StatusCode::OK);
    let reasons: Vec<String> = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            r["reason"]
                .as_str()
                .unwrap_or(r["status"].as_str().unwrap_or(""))
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "bad_signature",
            "invalid_field",
            "invalid_field",
            // The first report of an unknown product: cold start.
            "provisional",
            "invalid_field",
            "stale",
            "future",
            "unregistered_key"
        ]
    );
    assert_eq!(app.observations().await, 1);

    // Replay: 409 alone, `duplicate` in a batch; nothing changes.
    let (s, _, v) = app.report(&[signed_report(good(10), &kp)]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "duplicate");
    assert_eq!(v["results"][0]["status"], "duplicate");
    let (s, _, v) = app
        .report(&[signed_report(good(10), &kp), signed_report(good(11), &kp)])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["results"],
        serde_json::json!([{"status": "duplicate"}, {"status": "accepted"}])
    );
    assert_eq!(app.observations().await, 2);
}

#[tokio::test]
async fn whole_request_rejections() {
    let (app, kp) = registered_app(ApiConfig {
        max_body_bytes: 4096,
        max_batch: 3,
        ..test_config()
    })
    .await;
    let t = app.now();
    let one = signed_report(obs(&kp, 1, ASIN, Some(1000), t), &kp);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            "{\"reports\": [".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        ("not json".into(), StatusCode::BAD_REQUEST, "malformed_json"),
        (
            format!("{{\"reports\":[{one}],\"more\":1}}"),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            format!("{{\"reports\":[{one}],\"reports\":[{one}]}}"),
            StatusCode::BAD_REQUEST,
            "duplicate_field",
        ),
        (
            "{\"reports\": {}}".into(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "{\"reports\": []}".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_batch",
        ),
        (
            format!("{{\"reports\":[{one},{one},{one},{one}]}}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "batch_too_large",
        ),
        (
            format!("{{\"reports\":[{}]}}", vec![one.clone(); 30].join(",")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let (s, _, v) = app.post("/v1/reports", body.clone()).await;
        assert_eq!(s, status, "{body:.60}: {v}");
        assert_eq!(error_code(&v), code, "{body:.60}");
        assert_eq!(app.observations().await, 0);
    }
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let (app, kp) = registered_app(ApiConfig {
        limits: LimitConfig {
            ip_reports_per_min: 3,
            key_reports_per_min: 2,
            ip_registrations_per_hour: 2,
            ip_requests_per_min: 0,
        },
        ..test_config()
    })
    .await;
    let t = app.now();
    let r = |n: u8| signed_report(obs(&kp, n, ASIN, Some(1000), t), &kp);
    let (s, _, v) = app.report(&[r(1), r(2), r(3)]).await;
    assert_eq!(s, StatusCode::OK);
    // Per key (after the signature): the third report of the key is limited.
    assert_eq!(
        v["results"],
        // Cold start publishes the first as provisional; the second agrees.
        serde_json::json!([{"status": "provisional"}, {"status": "accepted"}, {"status": "rejected", "reason": "rate_limited"}])
    );
    // Per address: the bucket of 3 is empty now.
    let (s, h, v) = app.report(&[r(4)]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&v), "rate_limited");
    let wait: u64 = h["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    // Registrations per address: one used by registered_app, one left.
    assert_eq!(app.register(&keypair(5)).await.0, StatusCode::CREATED);
    let reg = serde_json::to_string(&registration(&keypair(6), 6)).expect("json");
    let (s, h, v) = app.post("/v1/keys", reg).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&v), "rate_limited");
    assert!(h.contains_key("retry-after"));
    assert_eq!(app.observations().await, 2);
}

#[tokio::test]
async fn read_errors() {
    let app = TestApp::new(test_config()).await;
    for (uri, status, code) in [
        (
            "/v1/products/amazon.com/B000000000",
            StatusCode::NOT_FOUND,
            "unknown_product",
        ),
        (
            "/v1/products/amazon.com/B000000000/history",
            StatusCode::NOT_FOUND,
            "unknown_product",
        ),
        (
            "/v1/products/example.com/B000000000",
            StatusCode::BAD_REQUEST,
            "invalid_marketplace",
        ),
        (
            "/v1/products/amazon.com/b000000000",
            StatusCode::BAD_REQUEST,
            "invalid_asin",
        ),
        (
            "/v1/products/amazon.com/B000000000/history?range=5y",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/products/amazon.com/B000000000/history?granularity=minute",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/products/amazon.com/B000000000/history?condition=mint",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/products/search",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/products/search?q=x&limit=1000",
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            "/v1/products/search?q=x&marketplace=ebay.com",
            StatusCode::BAD_REQUEST,
            "invalid_marketplace",
        ),
    ] {
        let (s, _, v) = app.get(uri).await;
        assert_eq!(s, status, "{uri}: {v}");
        assert_eq!(error_code(&v), code, "{uri}");
    }
    let (s, _, v) = app.get("/p/amazon.com/B000000000").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v.as_str().unwrap_or("").contains("Nothing known yet"));
}

#[tokio::test]
async fn signed_requests_and_me() {
    let (app, kp) = registered_app(test_config()).await;
    let t = app.now();
    let (s, _, _) = app
        .report(&[signed_report(obs(&kp, 1, ASIN, Some(1000), t), &kp)])
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, _, v) = app.signed(&kp, Method::GET, "/v1/me", "", t, [1; 16]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["key"], kp.public_b64u());
    assert_eq!(v["reports"], 1);
    assert_eq!(v["watches"], 0);
    assert_eq!(v["registered_at"], t);
    assert!(v["trust"].as_f64().is_some());

    // Replayed nonce.
    let (s, _, v) = app.signed(&kp, Method::GET, "/v1/me", "", t, [1; 16]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(error_code(&v), "replay");
    // Clock skew.
    let (s, _, v) = app
        .signed(&kp, Method::GET, "/v1/me", "", t - 6 * 60_000, [2; 16])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "clock_skew");
    // Missing headers.
    let (s, _, v) = app.get("/v1/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "missing_signature");
    // Signature over another path.
    let nonce = wasm_core::protocol::b64u_encode(&[3; 16]);
    let sig = wasm_core::protocol::sign_request(&kp, "GET", "/v1/other", t, &nonce, b"");
    let req = Request::get("/v1/me")
        .header("x-pricewatch-key", kp.public_b64u())
        .header("x-pricewatch-timestamp", t.to_string())
        .header("x-pricewatch-nonce", nonce)
        .header("x-pricewatch-signature", sig)
        .body(Body::empty())
        .expect("request");
    let (s, _, v) = app.send(req).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&v), "bad_signature");
    // Unregistered key.
    let (s, _, v) = app
        .signed(&keypair(8), Method::GET, "/v1/me", "", t, [4; 16])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&v), "unregistered_key");

    // Erase: 204, then the key is gone and its reports are unlinked.
    let (s, _, _) = app
        .signed(&kp, Method::DELETE, "/v1/me", "", t, [5; 16])
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = app.signed(&kp, Method::GET, "/v1/me", "", t, [6; 16]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&v), "unregistered_key");
    let (s, _, v) = app
        .report(&[signed_report(obs(&kp, 2, ASIN, Some(900), t), &kp)])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // Re-registering starts afresh; reports from before the erasure stay refused.
    app.set_now(t + 1000);
    assert_eq!(app.register(&kp).await.0, StatusCode::CREATED);
    let (s, _, v) = app
        .signed(&kp, Method::GET, "/v1/me", "", t + 1000, [7; 16])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["reports"], 0);
    let (s, _, _) = app
        .report(&[signed_report(obs(&kp, 3, ASIN, Some(900), t - 10), &kp)])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = app
        .report(&[signed_report(obs(&kp, 4, ASIN, Some(900), t + 500), &kp)])
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn verification_endpoints_need_a_trusted_key() {
    let verifier = keypair(42);
    let app = TestApp::new(ApiConfig {
        trusted_verifier_keys: HashSet::from([verifier.public_bytes()]),
        ..test_config()
    })
    .await;
    let t = app.now();
    let body = "{\"max\":5,\"lease_ms\":60000}";
    let (s, _, v) = app
        .signed(
            &verifier,
            Method::POST,
            "/v1/verification/lease",
            body,
            t,
            [1; 16],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, serde_json::json!({"jobs": []}));
    let (s, _, v) = app
        .signed(
            &verifier,
            Method::POST,
            "/v1/verification/lease",
            "{\"max\":5}",
            t,
            [2; 16],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&v), "invalid_body");
    let (s, _, v) = app
        .signed(
            &verifier,
            Method::POST,
            "/v1/verification/7/result",
            "{\"outcome\":\"failed\"}",
            t,
            [3; 16],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&v), "unknown_job");
    // A registered collector key is not a verifier.
    let kp = keypair(1);
    assert_eq!(app.register(&kp).await.0, StatusCode::CREATED);
    let (s, _, v) = app
        .signed(
            &kp,
            Method::POST,
            "/v1/verification/lease",
            body,
            t,
            [4; 16],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&v), "not_a_verifier");

    // The verifier's observation needs no registration and is "verified".
    let (s, _, v) = app
        .report(&[signed_report(
            obs(&verifier, 1, ASIN, Some(2500), t),
            &verifier,
        )])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, v) = app.get(&format!("/v1/products/amazon.com/{ASIN}")).await;
    assert_eq!(v["offers"]["new"]["status"], "verified");
    assert_eq!(v["offers"]["new"]["last_verified_at"], t);
}

#[tokio::test]
async fn unavailable_database_is_503() {
    let app = TestApp::new(test_config()).await;
    app.state.store.close().await;
    let (s, h, v) = app.get("/healthz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&v), "unavailable");
    assert!(h.contains_key("retry-after"));
    let (s, _, v) = app.get("/v1/products/amazon.com/B000000000").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&v), "unavailable");
    let (_, _, m) = app.get("/metrics").await;
    assert!(m
        .as_str()
        .unwrap_or("")
        .contains("pricewatch_database_errors_total"));
}
