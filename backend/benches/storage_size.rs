//! Storage footprint: 1,000,000 observations over 10,000 products at a
//! realistic change rate (each observation has a 5% chance of a new price,
//! 1% of flipping availability; everything else repeats the current
//! value), products observed in interleaved order over time. Prints bytes
//! of history per observation (pages of the history table, so free space
//! inside pages counts) and, separately, the audit log's bytes per report.
//!
//! `cargo bench -p backend --bench storage_size`

mod common;

use common::*;
use std::time::Instant;
use wasm_core::types::Availability;

const OBSERVATIONS: u64 = 1_000_000;
const PRODUCTS: u64 = 10_000;
const BATCH: usize = 1000;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n = env_count("PRICEWATCH_BENCH_OBSERVATIONS", OBSERVATIONS);
    let (stores, _dir) = storages("size").await;
    println!("storage bench: {n} observations over {PRODUCTS} products, 5% price changes, 1% availability flips");
    for (label, store) in stores {
        let key_id = key(store.as_ref(), 1).await;
        let mut rng = Mix(7);
        let mut prices: Vec<i64> = (0..PRODUCTS).map(|p| 500 + (p as i64 % 900) * 50).collect();
        let mut in_stock = vec![true; PRODUCTS as usize];
        let start: i64 = 1_760_000_000_000;
        let mut batch = Vec::with_capacity(BATCH);
        let t0 = Instant::now();
        for i in 0..n {
            let p = rng.below(PRODUCTS) as usize;
            if rng.below(100) < 5 {
                let delta = (rng.below(21) as i64 - 10) * 10;
                prices[p] = (prices[p] + delta).max(1);
            }
            if rng.below(100) == 0 {
                in_stock[p] = !in_stock[p];
            }
            let (price, avail) = if in_stock[p] {
                (Some(prices[p]), Availability::InStock)
            } else {
                (None, Availability::OutOfStock)
            };
            // ~36 observations per second overall: 1M over ~7.7 hours.
            let t = start + (i as i64) * 28;
            batch.push(report(key_id, i, &format!("B{p:09}"), t, price, avail));
            if batch.len() == BATCH {
                store.ingest(&batch, t).await.expect("ingest");
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store
                .ingest(&batch, start + n as i64 * 28)
                .await
                .expect("ingest");
        }
        let secs = t0.elapsed().as_secs_f64();
        let s = store.storage_stats().await.expect("stats");
        // Not every report ends in the runs: the trust rules hold or store
        // only some of this one fresh key's price changes. Bytes per
        // observation divide by the observations the runs count (fewer
        // than the reports: the figure errs high), the audit log by the
        // reports it keeps.
        println!(
            "[{label}] ingested {n} reports in {secs:.1}s ({:.0}/s through Storage::ingest, batches of {BATCH}); {} observations in the history runs",
            n as f64 / secs,
            s.observations
        );
        println!(
            "[{label}] history: {} runs, {} bytes = {:.2} bytes/observation ({:.1} bytes/run)",
            s.history_rows,
            s.history_bytes,
            s.history_bytes as f64 / s.observations.max(1) as f64,
            s.history_bytes as f64 / s.history_rows.max(1) as f64
        );
        println!(
            "[{label}] audit log (excluded above, purged after the retention): {} bytes = {:.1} bytes/report",
            s.audit_bytes,
            s.audit_bytes as f64 / n.max(1) as f64
        );
        store.close().await;
    }
}
