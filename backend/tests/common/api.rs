//! Helpers for driving the router with `oneshot`: a temp SQLite store, a
//! settable clock, signed reports and requests.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use backend::http::{app, ApiConfig, AppState, Clock};
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;
use wasm_core::protocol::{
    b64u_encode, pow_solve, sign_request, Keypair, Observation, Registration,
};
use wasm_core::types::{Availability, Condition, Seller};

/// Start time of every test clock.
pub const T0: i64 = 1_763_800_000_000;

/// A router over a fresh SQLite database.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub now: Arc<AtomicI64>,
    _dir: tempfile::TempDir,
}

/// Low difficulty so tests register quickly.
pub fn test_config() -> ApiConfig {
    ApiConfig {
        pow_difficulty: 6,
        ..ApiConfig::default()
    }
}

impl TestApp {
    pub async fn new(config: ApiConfig) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/api.db", dir.path().display());
        let store = backend::store::connect(&url).await.expect("open store");
        let now = Arc::new(AtomicI64::new(T0));
        let n2 = now.clone();
        let clock: Clock = Arc::new(move || n2.load(Ordering::SeqCst));
        let state = AppState::new(store, config, clock).await.expect("state");
        TestApp {
            router: app(state.clone()),
            state,
            now,
            _dir: dir,
        }
    }

    pub fn set_now(&self, t: i64) {
        self.now.store(t, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// Sends a request; returns status, headers and the body (JSON when it
    /// parses, else a JSON string of the text).
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, HeaderMap, Value) {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    pub async fn post(&self, uri: &str, body: impl Into<String>) -> (StatusCode, HeaderMap, Value) {
        self.send(
            Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.into()))
                .expect("request"),
        )
        .await
    }

    /// Registers `kp` with a solved proof of work; returns the status.
    pub async fn register(&self, kp: &Keypair) -> (StatusCode, Value) {
        let body = serde_json::to_string(&registration(kp, self.state.config.pow_difficulty))
            .expect("json");
        let (s, _, v) = self.post("/v1/keys", body).await;
        (s, v)
    }

    /// POSTs reports (JSON strings) as one batch.
    pub async fn report(&self, reports: &[String]) -> (StatusCode, HeaderMap, Value) {
        self.post(
            "/v1/reports",
            format!("{{\"reports\":[{}]}}", reports.join(",")),
        )
        .await
    }

    /// Number of observations in history (the "stored nothing" check).
    pub async fn observations(&self) -> i64 {
        self.state
            .store
            .storage_stats()
            .await
            .expect("stats")
            .observations
    }

    /// A signed request (PROTOCOL.md §3).
    pub async fn signed(
        &self,
        kp: &Keypair,
        method: Method,
        path: &str,
        body: &str,
        timestamp: i64,
        nonce: [u8; 16],
    ) -> (StatusCode, HeaderMap, Value) {
        let nonce = b64u_encode(&nonce);
        let sig = sign_request(
            kp,
            method.as_str(),
            path,
            timestamp,
            &nonce,
            body.as_bytes(),
        );
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-pricewatch-key", kp.public_b64u())
            .header("x-pricewatch-timestamp", timestamp.to_string())
            .header("x-pricewatch-nonce", nonce)
            .header("x-pricewatch-signature", sig)
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }
}

pub fn keypair(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

pub fn registration(kp: &Keypair, difficulty: u32) -> Registration {
    let pow = pow_solve(&kp.public_b64u(), difficulty, 0, u64::MAX).expect("pow");
    Registration::new(kp, &pow)
}

/// An observation template.
pub fn obs(
    kp: &Keypair,
    nonce: u8,
    asin: &str,
    price: Option<u64>,
    observed_at: i64,
) -> Observation {
    let mut n = [0u8; 16];
    n[0] = nonce;
    n[1] = asin.as_bytes()[9];
    Observation {
        key: kp.public_b64u(),
        asin: asin.into(),
        marketplace: "amazon.com".into(),
        condition: Condition::New,
        price_minor: price,
        currency: "USD".into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: "Echo Dot (5th Gen) Smart speaker".into(),
        observed_at,
        nonce: b64u_encode(&n),
    }
}

/// A signed report as JSON.
pub fn signed_report(o: Observation, kp: &Keypair) -> String {
    serde_json::to_string(&o.into_report(kp).expect("sign")).expect("json")
}

/// Asserts the API.md error body and returns its code.
pub fn error_code(body: &Value) -> String {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error body: {body}"));
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error message missing: {body}"
    );
    code.to_string()
}
