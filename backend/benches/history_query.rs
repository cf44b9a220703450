//! History query latency: one product with 5 years of hourly observations
//! and realistic price changes (a change every ~3 days on average, deals
//! that revert, short out-of-stock spells); 16 concurrent clients ask
//! `GET /v1/products/amazon.com/{asin}/history?range=1y&granularity=day`
//! through the real router (no TCP). Prints p50/p99/max per storage, twice:
//! * `cached`: as served, with `http::history_cache` (a body lives 1 s of
//!   app time; concurrent misses compute once), the clock fixed;
//! * `uncached`: the cache is off (`HistoryCache::disabled`), so every
//!   request runs the store query, the buckets and the JSON, the 16 at
//!   once (what 16 clients of 16 different products cost). Until
//!   2026-11-23 this mode kept the cache and moved the app clock past its
//!   lifetime at every call: every call missed, but the cache's one
//!   computation per key made the 16 clients of the one product compute
//!   one after the other, so it measured a queue of 16 (PostgreSQL: p50
//!   7-8 ms, p99 18-22 ms at ~1,900 queries/s, the same throughput as one
//!   client alone), not concurrent queries.
//!
//! The load is followed by the server's maintenance hook (`purge`, which
//! on PostgreSQL packs the runs of old periods into `history_packed`) and
//! on PostgreSQL by `VACUUM (ANALYZE)` (steady state; see
//! [`settle_postgres`]).
//!
//! Every storage must give the same answer (points, stats, corrections) as
//! the first one, in both modes at the same fixed clock; the bench stops
//! if not.
//!
//! `cargo bench -p backend --bench history_query`; with PostgreSQL:
//! `PRICEWATCH_BENCH_POSTGRES_URL=postgres://.../scratch_db cargo bench -p
//! backend --bench history_query` (a fresh scratch database, e.g. created
//! with `createdb` against the URL `scripts/postgres-start` prints; drop it
//! afterwards).
//!
//! `PRICEWATCH_BENCH_HISTORY_QUERIES=N` sets the queries per client
//! (default 150; more for a profiler to attach),
//! `PRICEWATCH_BENCH_HISTORY_CLIENTS=N` the clients (default 16). Each line also prints the
//! CPU time this process spent per query (user + system, from
//! `/proc/self/stat`, Linux only): on two shared cores CPU per query is
//! what sets the p99, and unlike latency it hardly depends on what else
//! runs on the machine. The PostgreSQL server's CPU is not in it; for a
//! local server the line adds the CPU of every `postgres` process on the
//! machine over the same queries (`server CPU/query`).

mod common;

use axum::body::Body;
use axum::http::Request;
use backend::http::history_cache::HistoryCache;
use backend::http::{app, ApiConfig, AppState, Clock};
use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;
use wasm_core::types::Availability;

const HOUR: i64 = 3_600_000;
const YEARS: i64 = 5;
const CLIENTS: usize = 16;
const QUERIES_PER_CLIENT: usize = 150;
/// Untimed requests per client before the measurement (see [`measure`]).
const WARM_UP: usize = 10;

/// Concurrent clients (`PRICEWATCH_BENCH_HISTORY_CLIENTS`, default
/// [`CLIENTS`], the figure; 1 shows the latency of one request
/// alone).
fn clients() -> usize {
    env_count("PRICEWATCH_BENCH_HISTORY_CLIENTS", CLIENTS)
}

/// Queries per client (`PRICEWATCH_BENCH_HISTORY_QUERIES`, default
/// [`QUERIES_PER_CLIENT`]).
fn queries_per_client() -> usize {
    env_count("PRICEWATCH_BENCH_HISTORY_QUERIES", QUERIES_PER_CLIENT)
}

/// CPU time (user + system) of this process so far, in ms; `None` where
/// `/proc/self/stat` is not there. Fields 14 and 15 are in clock ticks,
/// 100 per second on Linux (USER_HZ).
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 10.0)
}

/// CPU time (user + system, ms) so far of each process named `postgres`
/// on this machine, by pid (the local PostgreSQL server's backends and
/// helpers, when the bench's database is local and `/proc` shows them);
/// `None` when there are none. Counts what the server spends on the
/// queries, which [`process_cpu_ms`] does not see. See
/// [`server_cpu_delta_ms`].
fn postgres_cpu_ms() -> Option<HashMap<u32, f64>> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != "postgres" {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        if let (Some(Ok(u)), Some(Ok(s))) = (
            fields.get(11).map(|v| v.parse::<f64>()),
            fields.get(12).map(|v| v.parse::<f64>()),
        ) {
            out.insert(pid, (u + s) * 10.0);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The server CPU (ms) spent between two [`postgres_cpu_ms`] readings: a
/// process seen only at the end counts whole, one that ended in between
/// counts nothing (its last figures are gone).
fn server_cpu_delta_ms(start: &HashMap<u32, f64>, end: &HashMap<u32, f64>) -> f64 {
    end.iter()
        .map(|(pid, ms)| ms - start.get(pid).copied().unwrap_or(0.0))
        .filter(|d| *d > 0.0)
        .fold(0.0, |a, d| a + d)
}
const ASIN: &str = "B0BENCH001";

/// Brings the freshly loaded PostgreSQL database to the steady state of a
/// database whose history grew over years: `VACUUM (ANALYZE)`, what
/// autovacuum does after a load like ours. Without it autovacuum starts
/// (on its one-minute cycle) in the middle of the measurement and its
/// passes over the tables the load just wrote (reports, nonces, runs: tens
/// of MB) take the cores from the queries: a tail of load, not of the
/// query (max latencies of 50-60 ms seen that way). Failures only print.
async fn settle_postgres() {
    use sqlx::Connection;
    let Ok(url) = std::env::var("PRICEWATCH_BENCH_POSTGRES_URL") else {
        return;
    };
    let t = Instant::now();
    match sqlx::PgConnection::connect(&url).await {
        Ok(mut conn) => {
            if let Err(e) = sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await {
                eprintln!("VACUUM (ANALYZE) failed: {e}");
            }
            let _ = conn.close().await;
            println!(
                "[postgres] VACUUM (ANALYZE) after the load in {:.1}s",
                t.elapsed().as_secs_f64()
            );
        }
        Err(e) => eprintln!("cannot connect to vacuum: {e}"),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let (stores, _dir) = storages("history").await;
    let n_obs = YEARS * 365 * 24;
    let end: i64 = 1_763_800_000_000;
    let start = end - n_obs * HOUR;
    println!("history query bench: {n_obs} hourly observations over {YEARS} years, {} clients x {} queries of range=1y&granularity=day", clients(), queries_per_client());
    // The first storage's answer at the fixed clock: every other storage
    // must answer byte for byte the same (points, stats, corrections).
    let mut reference: Option<(String, serde_json::Value)> = None;
    for (label, store) in stores {
        let key_id = key(store.as_ref(), 1).await;
        let mut rng = Mix(42);
        let base = 4999i64;
        let mut price = base;
        let mut out_of_stock = 0;
        let mut batch = Vec::with_capacity(1000);
        let t_load = Instant::now();
        for i in 0..n_obs {
            // ~1 change per 72 h: a deal (10-40% off) or back to the base.
            if rng.below(72) == 0 {
                price = if price != base || rng.below(3) == 0 {
                    base + (rng.below(5) as i64 - 2) * 100
                } else {
                    base * (60 + rng.below(31) as i64) / 100
                };
            }
            if out_of_stock == 0 && rng.below(500) == 0 {
                out_of_stock = 1 + rng.below(24) as i64;
            }
            let (p, a) = if out_of_stock > 0 {
                out_of_stock -= 1;
                (None, Availability::OutOfStock)
            } else {
                (Some(price), Availability::InStock)
            };
            batch.push(report(key_id, i as u64, ASIN, start + i * HOUR, p, a));
            if batch.len() == 1000 {
                store.ingest(&batch, end).await.expect("ingest");
                batch.clear();
            }
        }
        if !batch.is_empty() {
            store.ingest(&batch, end).await.expect("ingest");
        }
        let stats = store.storage_stats().await.expect("stats");
        println!(
            "[{label}] loaded {} observations into {} runs in {:.1}s",
            stats.observations,
            stats.history_rows,
            t_load.elapsed().as_secs_f64()
        );
        // The maintenance hook a running server calls every 10 minutes
        // (audit retention left out: `audit_before` 0 purges nothing):
        // PostgreSQL packs the runs of old periods (`history_packed`).
        let t_pack = Instant::now();
        let purged = store.purge(0, end).await.expect("maintenance");
        println!(
            "[{label}] maintenance after the load: {} runs packed in {:.1}s",
            purged.packed_runs,
            t_pack.elapsed().as_secs_f64()
        );
        if label == "postgres" {
            settle_postgres().await;
        }
        let uri = format!("/v1/products/amazon.com/{ASIN}/history?range=1y&granularity=day");
        let fixed: Clock = Arc::new(move || end + HOUR);
        for mode in ["cached", "uncached"] {
            let mut state = AppState::new(store.clone(), ApiConfig::default(), fixed.clone())
                .await
                .expect("state");
            if mode == "uncached" {
                state.history_cache = Arc::new(HistoryCache::disabled());
            }
            let answer = measure(&label, mode, app(state), &uri).await;
            match &reference {
                None => reference = Some((format!("{label} {mode}"), answer)),
                Some((first, want)) => assert_eq!(
                    &answer, want,
                    "[{label} {mode}] answers differently from [{first}]"
                ),
            }
        }
        store.close().await;
    }
}

/// Warm-up with a sanity check, then [`clients`] concurrent clients; returns
/// the warm-up's answer.
async fn measure(label: &str, mode: &str, router: axum::Router, uri: &str) -> serde_json::Value {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("req"))
        .await
        .expect("resp");
    assert_eq!(resp.status(), 200);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let points = v["points"].as_array().map(Vec::len).unwrap_or(0);
    assert!(points > 300, "a year of days: {points}");
    // Untimed requests first, WARM_UP per client, the clients at once:
    // the stores open their pooled connections on demand, and a
    // connection's start-up (tens of ms on PostgreSQL) is not a query's
    // latency; and PostgreSQL plans a prepared statement anew at each of
    // its first 5 executions on a connection before it settles on the
    // generic plan, while a running server's connections have long served
    // thousands. Until 2026-11-23 one request per client: with 150 queries
    // per client the first five on each of the pool's connections (~3% of
    // the queries, planning ~1 ms more each) sat in the p99.
    let warm: Vec<_> = (0..clients())
        .map(|_| {
            let (router, uri) = (router.clone(), uri.to_string());
            tokio::spawn(async move {
                for _ in 0..WARM_UP {
                    let resp = router
                        .clone()
                        .oneshot(Request::get(&uri).body(Body::empty()).expect("req"))
                        .await
                        .expect("resp");
                    assert_eq!(resp.status(), 200);
                    let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                }
            })
        })
        .collect();
    for w in warm {
        w.await.expect("warm-up");
    }
    let per_client = queries_per_client();
    let cpu_start = process_cpu_ms();
    let server_start = (label == "postgres").then(postgres_cpu_ms).flatten();
    let t_all = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients() {
        let (router, uri) = (router.clone(), uri.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                let resp = router
                    .clone()
                    .oneshot(Request::get(&uri).body(Body::empty()).expect("req"))
                    .await
                    .expect("resp");
                let ok = resp.status() == 200;
                let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                assert!(ok);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client"));
    }
    let wall = t_all.elapsed().as_secs_f64();
    let cpu_per_query = match (cpu_start, process_cpu_ms()) {
        (Some(a), Some(b)) => format!(", {:.3} ms CPU/query here", (b - a) / lat.len() as f64),
        _ => String::new(),
    };
    let server_per_query = match (server_start, postgres_cpu_ms()) {
        (Some(a), Some(b)) => format!(
            ", {:.3} ms server CPU/query",
            server_cpu_delta_ms(&a, &b) / lat.len() as f64
        ),
        _ => String::new(),
    };
    lat.sort_by(f64::total_cmp);
    println!(
        "[{label}] {mode:8} history?range=1y&granularity=day ({points} points): {} queries, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} queries/s{cpu_per_query}{server_per_query}",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0),
        lat.len() as f64 / wall
    );
    v
}
