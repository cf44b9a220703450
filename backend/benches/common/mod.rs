//! Shared by the benches: the storages to measure (SQLite always;
//! PostgreSQL when `PRICEWATCH_BENCH_POSTGRES_URL` is set), report
//! builders, and percentiles.
#![allow(dead_code)]

use backend::store::{NewReport, Registered, Storage};
use std::sync::Arc;
use wasm_core::types::{Availability, Condition, Seller};

/// A positive count from the environment variable `name`, else `default`
/// (unset, unparsable or zero).
pub fn env_count<T: std::str::FromStr + PartialOrd + Default>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > T::default())
        .unwrap_or(default)
}

/// The storages to benchmark, with a label. The temp dir lives as long as
/// the returned guard.
pub async fn storages(name: &str) -> (Vec<(String, Arc<dyn Storage>)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/{name}.db", dir.path().display());
    let mut out = vec![(
        "sqlite".to_string(),
        backend::store::connect(&url).await.expect("open sqlite"),
    )];
    if let Ok(pg) = std::env::var("PRICEWATCH_BENCH_POSTGRES_URL") {
        match backend::store::connect(&pg).await {
            Ok(store) => out.push(("postgres".to_string(), store)),
            Err(e) => eprintln!("skipping postgres: {e}"),
        }
    } else {
        println!("(PostgreSQL skipped: set PRICEWATCH_BENCH_POSTGRES_URL to a fresh database to include it)");
    }
    (out, dir)
}

/// Registers one key and returns its id.
pub async fn key(store: &dyn Storage, seed: u8) -> i64 {
    match store
        .register_key(&[seed; 32], 0, None)
        .await
        .expect("register")
    {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    }
}

/// One report.
pub fn report(
    key_id: i64,
    serial: u64,
    asin: &str,
    t: i64,
    price: Option<i64>,
    avail: Availability,
) -> NewReport {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&serial.to_be_bytes());
    NewReport {
        key_id,
        nonce,
        marketplace: "amazon.com".into(),
        asin: asin.into(),
        condition: Condition::New,
        price_minor: price,
        currency: "USD".into(),
        availability: avail,
        seller: Seller::Amazon,
        title: format!("Benchmark product {asin}"),
        observed_at: t,
        trusted: false,
        net_hash: Some([1; 16]),
        raw: format!(
            "{{\"obs\":{{\"asin\":\"{asin}\",\"observed_at\":{t},\"price_minor\":{}}},\"sig\":\"{}\"}}",
            price.map(|p| p.to_string()).unwrap_or_else(|| "null".into()),
            "A".repeat(86)
        ),
    }
}

/// splitmix64 (deterministic load shapes).
pub struct Mix(pub u64);
impl Mix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The `p` percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
