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
