//! The verification endpoints and the trust-visible read side through the
//! real router (SQLite): lease, result validation (the observation must be
//! the requesting verifier's, about the job's product), idempotent and
//! unknown results, summary `status` / `reporters` / `last_verified_at`,
//! history `corrections` and points without refuted observations, and the
//! verification metrics on `/metrics`.

mod common {
    pub mod api;
}

use axum::http::{Method, StatusCode};
use backend::http::ApiConfig;
use common::api::*;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use wasm_core::protocol::Keypair;

const ASIN: &str = "B08N5WRWNW";

struct T {
    app: TestApp,
    verifier: Keypair,
    collector: Keypair,
    nonce: AtomicU8,
}

impl T {
    async fn new() -> T {
        let verifier = keypair(42);
        let app = TestApp::new(ApiConfig {
            trusted_verifier_keys: HashSet::from([verifier.public_bytes()]),
            ..test_config()
        })
        .await;
        app.state.store.seed_trust_rng(3);
        let collector = keypair(1);
        assert_eq!(app.register(&collector).await.0, StatusCode::CREATED);
        T {
            app,
            verifier,
            collector,
            nonce: AtomicU8::new(1),
        }
    }

    async fn signed(&self, kp: &Keypair, path: &str, body: &str) -> (StatusCode, Value) {
        let mut nonce = [9u8; 16];
        nonce[0] = self.nonce.fetch_add(1, Ordering::SeqCst);
        let (s, _, v) = self
            .app
            .signed(kp, Method::POST, path, body, self.app.now(), nonce)
            .await;
        (s, v)
    }

    async fn lease(&self) -> Vec<Value> {
        let (s, v) = self
            .signed(
                &self.verifier,
                "/v1/verification/lease",
                "{\"max\":5,\"lease_ms\":60000}",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["jobs"].as_array().cloned().unwrap_or_default()
    }

    async fn result(&self, id: &str, body: &str) -> (StatusCode, Value) {
        self.signed(
            &self.verifier,
            &format!("/v1/verification/{id}/result"),
            body,
        )
        .await
    }

    async fn report(&self, n: u8, price: u64) -> String {
        let o = obs(&self.collector, n, ASIN, Some(price), self.app.now());
        let (s, _, v) = self.app.report(&[signed_report(o, &self.collector)]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["results"][0]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn offer(&self) -> Value {
        let (s, _, v) = self
            .app
            .get(&format!("/v1/products/amazon.com/{ASIN}"))
            .await;
        assert_eq!(s, StatusCode::OK);
        v["offers"]["new"].clone()
    }
}

fn observed(kp: &Keypair, n: u8, asin: &str, price: u64, t: i64) -> String {
    format!(
        "{{\"outcome\":\"observed\",\"report\":{}}}",
        signed_report(obs(kp, n, asin, Some(price), t), kp)
    )
}

#[tokio::test]
async fn lease_result_summary_history_and_metrics() {
    let t = T::new().await;
    // Cold start: provisional, one crawl queued.
    assert_eq!(t.report(1, 5000).await, "provisional");
    let o = t.offer().await;
    assert_eq!(o["status"], "provisional");
    assert_eq!(o["reporters"], 1);
    assert!(o["last_verified_at"].is_null());
    let jobs = t.lease().await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job["asin"], ASIN);
    assert_eq!(job["marketplace"], "amazon.com");
    assert_eq!(job["condition"], "new");
    assert_eq!(job["reason"], "cold_start");
    assert_eq!(job["enqueued_at"], t.app.now());
    assert!(job["priority"].as_f64().is_some_and(|p| p >= 1.0));
    let id = job["id"].to_string();
    // Leased: not handed out again.
    assert!(t.lease().await.is_empty());

    // Observations that do not belong to this job are refused.
    let now = t.app.now();
    let (s, v) = t
        .result(&id, &observed(&t.verifier, 1, "B000000001", 5000, now))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_report");
    let (s, v) = t
        .result(&id, &observed(&t.collector, 50, ASIN, 5000, now))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(error_code(&v), "invalid_report");
    let (s, v) = t.result(&id, "{\"outcome\":\"observed\"}").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t.result(&id, "{\"outcome\":\"maybe\"}").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Unknown ids.
    let (s, v) = t.result("999", "{\"outcome\":\"failed\"}").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(error_code(&v), "unknown_job");
    let (s, _) = t.result("abc", "{\"outcome\":\"failed\"}").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The crawl confirms: verified, and a second result is 204, no change.
    t.app.set_now(now + 30_000);
    let body = observed(&t.verifier, 2, ASIN, 5000, now + 30_000);
    let (s, v) = t.result(&id, &body).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let o = t.offer().await;
    assert_eq!(o["status"], "verified");
    assert_eq!(o["last_verified_at"], now + 30_000);
    let (s, _) = t.result(&id, "{\"outcome\":\"failed\"}").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(t.offer().await["status"], "verified");

    // 40% down, below 0.8 x the verified low: critical, held, refuted.
    t.app.set_now(now + 60_000);
    assert_eq!(t.report(3, 3000).await, "held");
    assert_eq!(t.offer().await["price_minor"], 5000);
    let jobs = t.lease().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["reason"], "critical");
    assert_eq!(jobs[0]["critical"], true);
    let id2 = jobs[0]["id"].to_string();
    let at = now + 90_000;
    t.app.set_now(at);
    let (s, v) = t
        .result(&id2, &observed(&t.verifier, 3, ASIN, 5000, at))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, _, h) = t
        .app
        .get(&format!(
            "/v1/products/amazon.com/{ASIN}/history?range=1d&granularity=raw"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        h["corrections"],
        serde_json::json!([{"at": at, "reported_price_minor": 3000, "verified_price_minor": 5000}])
    );
    let points = h["points"].as_array().cloned().unwrap_or_default();
    assert!(!points.is_empty());
    assert!(
        points.iter().all(|p| p["low"] == 5000),
        "the refuted observation is not in the points: {h}"
    );
    assert_eq!(h["stats"]["lowest"], 5000);

    // Metrics.
    let (_, _, m) = t.app.get("/metrics").await;
    let text = m.as_str().expect("metrics");
    for want in [
        "pricewatch_verification_queue_depth{state=\"queued\",critical=\"false\"} 0",
        "pricewatch_verification_leased_total 2",
        "pricewatch_verification_results_total{outcome=\"confirmed\"} 1",
        "pricewatch_verification_results_total{outcome=\"refuted\"} 1",
        "pricewatch_verification_results_total{outcome=\"duplicate\"} 1",
        "pricewatch_verification_latency_seconds{quantile=\"0.5\"}",
        "pricewatch_verification_latency_seconds{quantile=\"0.99\"}",
        "pricewatch_trust_decisions_total{status=\"provisional\",reason=\"cold_start\"}",
        "pricewatch_trust_decisions_total{status=\"held\",reason=\"below_verified_low\"}",
        "pricewatch_reports_total{status=\"held\",reason=\"\"} 1",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
}

#[tokio::test]
async fn failed_results_retry_and_expired_leases_come_back() {
    let t = T::new().await;
    assert_eq!(t.report(1, 5000).await, "provisional");
    let now = t.app.now();
    // A lease of 1 s expires; the job comes back.
    let (s, v) = t
        .signed(
            &t.verifier,
            "/v1/verification/lease",
            "{\"max\":5,\"lease_ms\":1000}",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let id = v["jobs"][0]["id"].to_string();
    t.app.set_now(now + 1_001);
    let jobs = t.lease().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"].to_string(), id);
    // A CAPTCHA: 204, queued again for a retry a minute later.
    let (s, _) = t.result(&id, "{\"outcome\":\"captcha\"}").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(t.lease().await.is_empty());
    t.app.set_now(now + 1_001 + 60_000);
    assert_eq!(t.lease().await.len(), 1);
    let (_, _, m) = t.app.get("/metrics").await;
    let text = m.as_str().expect("metrics");
    assert!(text.contains("pricewatch_verification_results_total{outcome=\"retry\"} 1"));
    assert!(
        text.contains("pricewatch_verification_queue_depth{state=\"leased\",critical=\"false\"} 1")
    );
}

/// A lease request that names `claimed` as its key but is signed by
/// `signer` (a forged verifier claim when they differ).
fn lease_claiming(
    app: &TestApp,
    claimed: &Keypair,
    signer: &Keypair,
    nonce: [u8; 16],
) -> axum::http::Request<axum::body::Body> {
    let lease = "{\"max\":5,\"lease_ms\":60000}";
    let nonce = wasm_core::protocol::b64u_encode(&nonce);
    let t = app.now();
    let sig = wasm_core::protocol::sign_request(
        signer,
        "POST",
        "/v1/verification/lease",
        t,
        &nonce,
        lease.as_bytes(),
    );
    axum::http::Request::post("/v1/verification/lease")
        .header("x-pricewatch-key", claimed.public_b64u())
        .header("x-pricewatch-timestamp", t.to_string())
        .header("x-pricewatch-nonce", nonce)
        .header("x-pricewatch-signature", sig)
        .body(axum::body::Body::from(lease))
        .expect("request")
}

/// The per-address limit on signed requests does not count requests that
/// verify as a trusted verifier key's (every client of a reverse proxy on
/// the same host has one address, and so does the embedded verifier):
/// the verifier's calls leave the collectors' allowance untouched and
/// keep working once the collectors exhausted it. A request that only
/// claims the verifier key (bad signature) is charged like any other.
#[tokio::test]
async fn trusted_verifier_requests_are_exempt_from_the_per_address_limit() {
    let verifier = keypair(42);
    let app = TestApp::new(ApiConfig {
        trusted_verifier_keys: HashSet::from([verifier.public_bytes()]),
        limits: backend::http::limits::LimitConfig {
            ip_requests_per_min: 3,
            ..backend::http::limits::LimitConfig::default()
        },
        ..test_config()
    })
    .await;
    let collector = keypair(1);
    assert_eq!(app.register(&collector).await.0, StatusCode::CREATED);
    let mut n = 0u8;
    let mut nonce = || {
        n += 1;
        [n; 16]
    };
    let lease = "{\"max\":5,\"lease_ms\":60000}";
    // Every request of the test comes from one address (no ConnectInfo:
    // the router sees 0.0.0.0 for all of them).
    for i in 0..10 {
        let (s, _, v) = app
            .signed(
                &verifier,
                Method::POST,
                "/v1/verification/lease",
                lease,
                app.now(),
                nonce(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "verifier lease {i}: {v}");
    }
    // The collectors' allowance of 3 is whole...
    for i in 0..3 {
        let (s, _, v) = app
            .signed(&collector, Method::GET, "/v1/me", "", app.now(), nonce())
            .await;
        assert_eq!(s, StatusCode::OK, "collector request {i}: {v}");
    }
    // ... and now spent.
    let (s, h, v) = app
        .signed(&collector, Method::GET, "/v1/me", "", app.now(), nonce())
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(error_code(&v), "rate_limited");
    assert!(h.get("retry-after").is_some(), "{h:?}");
    // The verifier still gets through.
    let (s, _, v) = app
        .signed(
            &verifier,
            Method::POST,
            "/v1/verification/lease",
            lease,
            app.now(),
            nonce(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "verifier after the collectors' limit: {v}"
    );
    // A request naming the verifier key but signed by another key does
    // not verify, so it is not exempt: it is charged and refused as rate
    // limited (over the address's allowance) rather than reaching the
    // signature error.
    let forger = keypair(7);
    let (s, _, v) = app
        .signed(
            &forger,
            Method::POST,
            "/v1/verification/lease",
            lease,
            app.now(),
            nonce(),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let forged = lease_claiming(&app, &verifier, &forger, nonce());
    let (s, _, v) = app.send(forged).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "an unverified claim to be the verifier is charged: {v}"
    );
}

/// Below the limit, a forged verifier claim gets its signature error (and
/// costs the address one request): the exemption changes nothing else.
#[tokio::test]
async fn a_forged_verifier_claim_is_refused_and_charged() {
    let verifier = keypair(42);
    let app = TestApp::new(ApiConfig {
        trusted_verifier_keys: HashSet::from([verifier.public_bytes()]),
        limits: backend::http::limits::LimitConfig {
            ip_requests_per_min: 2,
            ..backend::http::limits::LimitConfig::default()
        },
        ..test_config()
    })
    .await;
    let forger = keypair(7);
    let lease = "{\"max\":5,\"lease_ms\":60000}";
    let forged = |n: u8| lease_claiming(&app, &verifier, &forger, [n; 16]);
    for n in 1..=2 {
        let (s, _, v) = app.send(forged(n)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(error_code(&v), "bad_signature");
    }
    let (s, _, v) = app.send(forged(3)).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "two forged claims spent the allowance: {v}"
    );
    // The real verifier is not held back by them.
    let (s, _, v) = app
        .signed(
            &verifier,
            Method::POST,
            "/v1/verification/lease",
            lease,
            app.now(),
            [9; 16],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
