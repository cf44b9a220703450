//! Watch evaluation: one product with 100,000 watches (targets spread
//! evenly over 10.00..50.00 USD); a published price change is ingested
//! (writing its outbox event) and the time to find and record the alerts
//! that fire (`Storage::process_outbox`: the threshold range query, the
//! alert inserts, the disarm and re-arm updates, in one transaction) is
//! measured for drops that fire 1 %, 10 % and 25 % of the watches, and for
//! the rise back above every threshold (re-arming them). SQLite always;
//! PostgreSQL too when `PRICEWATCH_BENCH_POSTGRES_URL` names a fresh
//! database.
//!
//! On PostgreSQL the evaluation records the alerts that fire as one batch
//! row per (event, kind) and fans them out into alert rows right after
//! (see `backend/src/watch/postgres.rs`); both times are printed:
//! `recorded` (the evaluation transaction: the target) and `fan-out` (the
//! alert rows, in chunks of 5,000).
//!
//! `cargo bench -p backend --bench watch_eval`; with PostgreSQL:
//! `PRICEWATCH_BENCH_POSTGRES_URL=postgres://.../scratch_db cargo bench -p
//! backend --bench watch_eval` (a fresh scratch database, e.g. created with
//! `createdb` against the URL `scripts/postgres-start` prints; drop it
//! afterwards).

mod common;

use common::*;
use std::time::Instant;
use wasm_core::types::Availability;

const WATCHES: i64 = 100_000;
const ASIN: &str = "B0BENCHW01";
const DAY: i64 = 86_400_000;

/// Loads the watches with one statement (100,000 API calls would only
/// measure the loader).
async fn bulk_load(label: &str, url: &str, key_id: i64, product: i64, t: i64) {
    use sqlx::Connection;
    if label == "sqlite" {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("conn");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
             INSERT INTO watches (key_id, product_id, condition, target_price_minor, \
               back_in_stock, threshold, armed, stock_armed, ch_extension, created_at) \
             SELECT ?2, ?3, 0, 1000 + i * 4000 / ?1, 0, 1000 + i * 4000 / ?1, 1, 1, 1, ?4 FROM n",
        )
        .bind(WATCHES)
        .bind(key_id)
        .bind(product)
        .bind(t)
        .execute(&mut conn)
        .await
        .expect("load");
        conn.close().await.expect("close");
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("conn");
        sqlx::query(
            "INSERT INTO watches (key_id, product_id, condition, target_price_minor, \
               back_in_stock, threshold, armed, stock_armed, ch_extension, created_at) \
             SELECT $2, $3, 0, 1000 + i * 4000 / $1, 0, 1000 + i * 4000 / $1, 1, 1, 1, $4 \
             FROM generate_series(0::bigint, $1 - 1) AS i",
        )
        .bind(WATCHES)
        .bind(key_id)
        .bind(product)
        .bind(t)
        .execute(&mut conn)
        .await
        .expect("load");
        sqlx::query("ANALYZE watches")
            .execute(&mut conn)
            .await
            .expect("analyze");
        conn.close().await.expect("close");
    }
}

/// A verifier's observation: it publishes (and reaches the watch outbox)
/// at once. Since the trust rules, a lone collector's price change is held
/// or provisional and fires nothing; the bench measures evaluation, not
/// the trust rules.
fn verified(mut r: backend::store::NewReport) -> backend::store::NewReport {
    r.trusted = true;
    r
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![(
        "sqlite".to_string(),
        format!("sqlite://{}", dir.path().join("watch.db").display()),
    )];
    match std::env::var("PRICEWATCH_BENCH_POSTGRES_URL") {
        Ok(pg) if !pg.trim().is_empty() => targets.push(("postgres".into(), pg.trim().into())),
        _ => println!("(PostgreSQL skipped: set PRICEWATCH_BENCH_POSTGRES_URL to a fresh database to include it)"),
    }
    for (label, url) in targets {
        run(&label, &url).await;
    }
}

async fn run(label: &str, url: &str) {
    let pg = if label == "postgres" {
        Some(std::sync::Arc::new(
            backend::store::postgres::PostgresStore::open(url)
                .await
                .expect("open"),
        ))
    } else {
        None
    };
    let store: std::sync::Arc<dyn backend::store::Storage> = match &pg {
        Some(pg) => pg.clone(),
        None => backend::store::connect(url).await.expect("open"),
    };
    let key_id = key(store.as_ref(), 1).await;
    let mut t: i64 = 1_763_800_000_000;
    let mut serial = 0u64;
    store
        .ingest(
            &[verified(report(
                key_id,
                serial,
                ASIN,
                t,
                Some(5000),
                Availability::InStock,
            ))],
            t,
        )
        .await
        .expect("ingest");
    store.process_outbox(t, 100).await.expect("outbox");
    let product = store
        .product_info("amazon.com", ASIN)
        .await
        .expect("info")
        .expect("product")
        .id;
    let load = Instant::now();
    bulk_load(label, url, key_id, product, t).await;
    println!(
        "watch evaluation bench ({label}): {WATCHES} watches on one product, loaded in {:.1} s",
        load.elapsed().as_secs_f64()
    );
    for (what0, price) in [("1 % fire", 4960), ("10 % fire", 4600), ("25 % fire", 4000)] {
        for (what, p) in [(what0, price), ("re-arm all", 5000)] {
            // A new day each time: no cooldown or daily cap in the way.
            t += DAY;
            serial += 1;
            store
                .ingest(
                    &[verified(report(
                        key_id,
                        serial,
                        ASIN,
                        t,
                        Some(p),
                        Availability::InStock,
                    ))],
                    t,
                )
                .await
                .expect("ingest");
            let start = Instant::now();
            // (stats, ms until the alerts are recorded, fan-out note)
            let (stats, ms, fan_out) = match &pg {
                Some(pg) => {
                    let stats = pg.evaluate_outbox(t, 100).await.expect("evaluate");
                    let recorded = start.elapsed();
                    let mut rows = 0;
                    loop {
                        let n = pg.fan_out_alerts(5_000).await.expect("fan out");
                        if n == 0 {
                            break;
                        }
                        rows += n;
                    }
                    assert_eq!(rows, stats.alerts);
                    let rest = (start.elapsed() - recorded).as_secs_f64() * 1000.0;
                    (
                        stats,
                        recorded.as_secs_f64() * 1000.0,
                        format!(" (recorded), alert rows fanned out in {rest:8.2} ms more"),
                    )
                }
                None => {
                    let stats = store.process_outbox(t, 100).await.expect("outbox");
                    (stats, start.elapsed().as_secs_f64() * 1000.0, String::new())
                }
            };
            assert_eq!(stats.events, 1);
            println!(
                "  {what:>10} (price {p}): {:>6} alerts, {:>6} re-armed in {ms:8.2} ms{fan_out}",
                stats.alerts, stats.rearmed
            );
        }
    }
    store.close().await;
}
