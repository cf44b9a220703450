//! The storage story on a real PostgreSQL, plus what only PostgreSQL has:
//! concurrent writers, partitions, the default partition.
//!
//! The server comes from `PRICEWATCH_TEST_POSTGRES_URL` (for example the
//! URL printed by `scripts/postgres-start`); the role needs CREATEDB. Each
//! test creates its own database, named after the process and a counter,
//! and drops it afterwards (also when the test fails), so runs and parallel tests never share state.
//! Without the variable the tests print a skip message and pass, unless
//! `CI` is set: then they fail.

mod common {
    pub mod story;
}

use backend::store::postgres::PostgresStore;
use backend::store::{IngestOutcome, NewReport, Registered, Storage, StoreError};
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use wasm_core::types::Condition;

const ENV: &str = "PRICEWATCH_TEST_POSTGRES_URL";

/// The server URL, or `None` (skip) when unset outside CI.
fn server_url(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{ENV} is not set and CI is: the PostgreSQL tests must run in CI \
                 (export {ENV}=$(scripts/postgres-start))"
            );
            eprintln!("skipping {test}: {ENV} is not set (export {ENV}=$(scripts/postgres-start))");
            None
        }
    }
}

/// `url` with its database replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{db}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{db}{query}"),
    }
}

/// A throw-away database, dropped when the guard is dropped (also while a
/// failed test unwinds).
struct FreshDatabase {
    server: String,
    name: String,
    url: String,
}

impl FreshDatabase {
    /// Creates the database; `None` when the tests are skipped.
    async fn create(test: &str) -> Option<FreshDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let server = server_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "pricewatch_t{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {ENV}: {e}"));
        drop_stale_databases(&mut admin).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create the test database (the role needs CREATEDB)");
        let _ = admin.close().await;
        let url = with_database(&server, &name);
        Some(FreshDatabase { server, name, url })
    }
}

/// Drops the databases of earlier test processes that died before their
/// guards ran (killed runs): names carry the process id, and a database
/// whose process no longer exists on this machine is stale. Best effort.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'pricewatch\\_t%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name
            .strip_prefix("pricewatch_t")
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut *admin)
            .await;
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on:
        // use a thread with a runtime of its own.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut admin = PgConnection::connect(&server)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<_, String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop test database {}", self.name),
        }
    }
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn postgres_story() {
    let Some(db) = FreshDatabase::create("postgres_story").await else {
        return;
    };
    let url = db.url.clone();
    {
        let store = backend::store::connect(&url).await.expect("open");
        assert_eq!(store.backend(), "postgres");
        common::story::story(store.as_ref()).await;
        store.close().await;
        assert!(store.ping().await.is_err(), "a closed store refuses work");
        assert!(store.ingest(&[], 0).await.is_err());

        // Reopening runs the migrations again without harm and keeps the data.
        let reopened = PostgresStore::open(&url).await.expect("reopen");
        let stats = reopened.storage_stats().await.expect("stats");
        assert_eq!(stats.observations, 12);

        // The story's clock is a year or more before the real one, so its
        // rows went to the default partitions, and the purge (maintenance
        // around its `now`) created the partitions of that time and moved
        // the history rows there; the audit rows were purged.
        let pool = reopened.pool();
        // A unique violation maps to the same storage error as on SQLite.
        let dup = sqlx::query(
            "INSERT INTO products (marketplace, asin, currency, created_at) \
             VALUES ('amazon.de', 'B000STORY1', 'EUR', 0)",
        )
        .execute(pool)
        .await
        .map_err(StoreError::from);
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_default").await,
            0
        );
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_y2025").await,
            stats.history_rows
        );
        assert_eq!(count(pool, "SELECT count(*) FROM reports").await, 0);
        assert_eq!(count(pool, "SELECT count(*) FROM report_nonces").await, 0);
        // Partitions exist around the real time too (created at open).
        assert!(
            count(
                pool,
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'reports'::regclass"
            )
            .await
                >= 9,
            "default + today + 7 days ahead"
        );
        reopened.close().await;
    }
}

fn report(key_id: i64, nonce: u32, asin: &str, t: i64, price: i64) -> NewReport {
    let mut n = [0u8; 16];
    n[..4].copy_from_slice(&nonce.to_be_bytes());
    NewReport {
        key_id,
        nonce: n,
        marketplace: "amazon.de".into(),
        asin: asin.into(),
        condition: Condition::New,
        price_minor: Some(price),
        currency: "EUR".into(),
        availability: wasm_core::types::Availability::InStock,
        seller: wasm_core::types::Seller::Amazon,
        title: format!("Produkt {asin}"),
        observed_at: t,
        // A verifier's observation: these tests are about storage
        // (partitions, runs, concurrency), and since the trust issue only
        // verified or otherwise believed reports publish at once. The trust
        // decisions are tested in `trust_store.rs`.
        trusted: true,
        net_hash: None,
        raw: format!("{{\"n\":{nonce}}}"),
    }
}

/// The price at time `t` in the concurrency test: changes every 7 s.
fn price_at(t: i64) -> i64 {
    1000 + (t / 7_000) % 3 * 250
}

/// Naive runs of observations: sort by time, cut where the price changes.
fn naive_runs(mut obs: Vec<(i64, i64)>) -> Vec<(i64, i64, Option<i64>, i64)> {
    obs.sort_unstable();
    let mut out: Vec<(i64, i64, Option<i64>, i64)> = Vec::new();
    for (t, p) in obs {
        match out.last_mut() {
            Some(last) if last.2 == Some(p) => {
                last.1 = t;
                last.3 += 1;
            }
            _ => out.push((t, t, Some(p), 1)),
        }
    }
    out
}

/// Many writers at once on the same two products, batches in opposite
/// product orders, observations arriving out of time order: no lost update,
/// no dead-lock, and the runs equal a recomputation from all observations.
/// One nonce is replayed by every writer: exactly one wins.
#[tokio::test]
async fn concurrent_writers_lose_nothing() {
    let Some(db) = FreshDatabase::create("concurrent_writers_lose_nothing").await else {
        return;
    };
    let url = db.url.clone();
    {
        let store: Arc<dyn Storage> = backend::store::connect(&url).await.expect("open");
        let key = match store
            .register_key(&[4u8; 32], common::story::NOW - 3_600_000, None)
            .await
            .expect("register")
        {
            Registered::Created(k) => k.id,
            other => panic!("expected Created, got {other:?}"),
        };
        const WRITERS: u32 = 8;
        const BATCHES: u32 = 6;
        const PER_BATCH: u32 = 10;
        let base = common::story::NOW - 2 * 3_600_000;
        // Writer w, batch b, item i observes at a time that interleaves
        // with every other writer's, so runs are extended, merged and split
        // concurrently.
        let time = move |w: u32, b: u32, i: u32| {
            base + i64::from(((i * BATCHES + b) * WRITERS + w) * 1_000 + w)
        };
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for b in 0..BATCHES {
                    let mut batch = Vec::new();
                    for i in 0..PER_BATCH {
                        let t = time(w, b, i);
                        let nonce = (w * BATCHES + b) * PER_BATCH + i + 1;
                        let asin = if (i + w) % 2 == 0 {
                            "B00CONCUR1"
                        } else {
                            "B00CONCUR2"
                        };
                        batch.push(report(key, nonce, asin, t, price_at(t)));
                    }
                    if w % 2 == 1 {
                        batch.reverse();
                    }
                    // Everybody replays nonce 0 once.
                    batch.push(report(key, 0, "B00CONCUR1", base - 1, 999));
                    let out = store
                        .ingest(&batch, common::story::NOW)
                        .await
                        .expect("ingest under contention");
                    assert_eq!(out.len(), batch.len());
                    outcomes.extend(out);
                }
                outcomes
            }));
        }
        let mut accepted_replays = 0;
        for task in tasks {
            let outcomes = task.await.expect("writer");
            for (j, o) in outcomes.iter().enumerate() {
                if (j + 1) % (PER_BATCH as usize + 1) == 0 {
                    if *o != IngestOutcome::Duplicate {
                        accepted_replays += 1;
                    }
                } else {
                    assert!(
                        matches!(o, IngestOutcome::Accepted | IngestOutcome::Stored),
                        "{o:?}"
                    );
                }
            }
        }
        assert_eq!(accepted_replays, 1, "exactly one copy of nonce 0 is stored");

        for asin in ["B00CONCUR1", "B00CONCUR2"] {
            let mut obs = Vec::new();
            for w in 0..WRITERS {
                for b in 0..BATCHES {
                    for i in 0..PER_BATCH {
                        if ((i + w) % 2 == 0) == (asin == "B00CONCUR1") {
                            let t = time(w, b, i);
                            obs.push((t, price_at(t)));
                        }
                    }
                }
            }
            if asin == "B00CONCUR1" {
                obs.push((base - 1, 999));
            }
            let want = naive_runs(obs);
            let summary = store
                .product_summary("amazon.de", asin)
                .await
                .expect("summary")
                .expect("known");
            let got: Vec<_> = store
                .history_runs(summary.id, Condition::New, 0, i64::MAX)
                .await
                .expect("runs")
                .iter()
                .map(|r| (r.first_seen, r.last_seen, r.price_minor, r.n))
                .collect();
            assert_eq!(got, want, "{asin}");
        }
        let stats = store.storage_stats().await.expect("stats");
        assert_eq!(
            stats.observations,
            i64::from(WRITERS * BATCHES * PER_BATCH) + 1
        );
        store.close().await;
    }
}

/// Rows that arrive before their partition exists land in the default
/// partition and move when the partition is created; the retention purge
/// drops whole days.
#[tokio::test]
async fn partitions_are_created_ahead_and_filled_from_default() {
    let Some(db) = FreshDatabase::create("partitions_are_created_ahead").await else {
        return;
    };
    let url = db.url.clone();
    {
        let store = PostgresStore::open(&url).await.expect("open");
        // 2031-03-15T12:00:00Z, far ahead of any partition created at open.
        let future: i64 = 1_931_342_400_000;
        let day: i64 = 86_400_000;
        let key = match store
            .register_key(&[5u8; 32], future, None)
            .await
            .expect("register")
        {
            Registered::Created(k) => k.id,
            other => panic!("expected Created, got {other:?}"),
        };
        let out = store
            .ingest(
                &[
                    report(key, 1, "B00PARTIT1", future - 2 * day, 500),
                    report(key, 2, "B00PARTIT1", future - 60_000, 450),
                ],
                future - 2 * day,
            )
            .await
            .expect("ingest");
        assert_eq!(out, vec![IngestOutcome::Accepted, IngestOutcome::Accepted]);
        let pool = store.pool();
        assert_eq!(count(pool, "SELECT count(*) FROM reports_default").await, 2);
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_default").await,
            2
        );
        // Maintenance at that time: partitions appear, rows move out of
        // the defaults.
        let created = store
            .ensure_partitions(future - 2 * day)
            .await
            .expect("ensure");
        assert!(created >= 9, "{created}");
        assert_eq!(count(pool, "SELECT count(*) FROM reports_default").await, 0);
        assert_eq!(
            count(pool, "SELECT count(*) FROM reports_d20310313").await,
            2
        );
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_y2031").await,
            2
        );
        assert_eq!(
            store
                .ensure_partitions(future - 2 * day)
                .await
                .expect("again"),
            0
        );
        // A late observation from a year without a partition lands in the
        // default partition; the next maintenance gives it its own.
        let late = 1_552_651_200_000; // 2019-03-15T12:00:00Z
        let out = store
            .ingest(&[report(key, 9, "B00PARTIT1", late, 700)], future - 2 * day)
            .await
            .expect("ingest");
        assert_eq!(out, vec![IngestOutcome::Stored]);
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_default").await,
            1
        );
        assert_eq!(
            store
                .ensure_partitions(future - 2 * day)
                .await
                .expect("adopt"),
            1
        );
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_default").await,
            0
        );
        assert_eq!(
            count(pool, "SELECT count(*) FROM history_runs_y2019").await,
            1
        );
        // A day later another report; then a purge with the cut after the
        // first day drops that day's partition whole.
        // (A collector's report agreeing with the published price: older
        // than it, so a verifier's would be history only.)
        let out = store
            .ingest(
                &[NewReport {
                    trusted: false,
                    ..report(key, 3, "B00PARTIT1", future - day, 450)
                }],
                future - day,
            )
            .await
            .expect("ingest");
        assert_eq!(out, vec![IngestOutcome::Accepted]);
        let stats = store
            .purge(future - day - day / 2, future - day)
            .await
            .expect("purge");
        assert_eq!(stats.reports, 3);
        assert_eq!(
            count(
                pool,
                "SELECT count(*) FROM pg_class WHERE relname = 'reports_d20310313'"
            )
            .await,
            0,
            "the whole day was dropped"
        );
        assert_eq!(count(pool, "SELECT count(*) FROM reports").await, 1);
        assert_eq!(count(pool, "SELECT count(*) FROM report_nonces").await, 1);
        // History is never purged.
        assert_eq!(store.storage_stats().await.expect("stats").observations, 4);
        store.close().await;
    }
}

/// A batch is applied as if report by report: a later report sees the
/// offer an earlier one published, a repeated nonce is a duplicate for the
/// second copy only, a currency mismatch claims nothing.
#[tokio::test]
async fn a_batch_sees_its_own_earlier_reports() {
    let Some(db) = FreshDatabase::create("a_batch_sees_its_own_earlier_reports").await else {
        return;
    };
    let store = PostgresStore::open(&db.url).await.expect("open");
    let now = common::story::NOW;
    let key = match store
        .register_key(&[6u8; 32], now - 60_000, None)
        .await
        .expect("register")
    {
        Registered::Created(k) => k.id,
        other => panic!("expected Created, got {other:?}"),
    };
    let mut usd = report(key, 4, "B00BATCH01", now - 1_000, 1);
    usd.currency = "USD".into();
    let mut verified = report(key, 5, "B00BATCH01", now - 500, 900);
    verified.trusted = true;
    let out = store
        .ingest(
            &[
                // Publishes 1000 at now - 2 s (creates the product, EUR).
                report(key, 1, "B00BATCH01", now - 2_000, 1000),
                // Older than that and disagreeing: history only.
                report(key, 2, "B00BATCH01", now - 3_000, 1100),
                // The same nonce again: duplicate.
                report(key, 1, "B00BATCH01", now - 1_500, 1000),
                // Wrong currency: no trace, nonce 4 stays free.
                usd,
                // Newer: publishes; agrees with nothing published before.
                verified,
                // A collector agreeing with the verified offer: keeps its
                // status, refreshes "last seen".
                NewReport {
                    trusted: false,
                    ..report(key, 6, "B00BATCH01", now - 100, 900)
                },
            ],
            now,
        )
        .await
        .expect("ingest");
    assert_eq!(
        out,
        vec![
            IngestOutcome::Accepted,
            IngestOutcome::Stored,
            IngestOutcome::Duplicate,
            IngestOutcome::CurrencyMismatch,
            IngestOutcome::Accepted,
            IngestOutcome::Accepted,
        ]
    );
    let s = store
        .product_summary("amazon.de", "B00BATCH01")
        .await
        .expect("summary")
        .expect("known");
    let o = &s.offers[0].offer;
    assert_eq!(o.price_minor, Some(900));
    assert_eq!(o.observed_at, now - 100);
    assert_eq!(o.status, backend::store::OfferStatus::Verified);
    assert_eq!(o.last_verified_at, Some(now - 500));
    // Nonce 4 was not claimed by the mismatching report.
    let out = store
        .ingest(&[report(key, 4, "B00BATCH01", now - 50, 900)], now)
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    assert_eq!(
        count(store.pool(), "SELECT count(*) FROM reports").await,
        5,
        "four stored from the batch, one after"
    );
    store.close().await;
}

#[tokio::test]
async fn unreachable_server_is_a_one_line_error() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://pricewatch:secret@127.0.0.1:1/pricewatch";
    match backend::store::connect(url).await {
        Err(StoreError::Database(msg)) => {
            assert!(!msg.contains('\n'), "{msg}");
            assert!(!msg.contains("secret"), "password leaked: {msg}");
            assert!(msg.contains("127.0.0.1:1"), "{msg}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to nothing"),
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/db", "x"),
        "postgres://u:p@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}

/// The history endpoint's one-query read (`product_history_with_corrections`)
/// equals the separate calls (`product_history`, `history_runs`,
/// `corrections`) and the naive runs, over two year partitions, with the
/// corrections in the range only and in `(at, id)` order.
#[tokio::test]
async fn history_read_in_one_query_equals_the_separate_calls() {
    let Some(db) = FreshDatabase::create("history_read_in_one_query").await else {
        return;
    };
    let store = PostgresStore::open(&db.url).await.expect("open");
    let now = common::story::NOW;
    let key = match store
        .register_key(&[7u8; 32], now - 60_000, None)
        .await
        .expect("register")
    {
        Registered::Created(k) => k.id,
        other => panic!("expected Created, got {other:?}"),
    };
    // Every 6 hours from 2024-12-20 to 2025-01-10, 1000 and 900 taking
    // turns every three days: runs on both sides of the year boundary.
    const HOUR: i64 = 3_600_000;
    let start = 1_734_652_800_000; // 2024-12-20 00:00 UTC
    let obs: Vec<(i64, i64)> = (0..84)
        .map(|i| {
            let t = start + i * 6 * HOUR;
            (t, if (i / 12) % 2 == 0 { 1000 } else { 900 })
        })
        .collect();
    let reports: Vec<NewReport> = obs
        .iter()
        .enumerate()
        .map(|(i, &(t, p))| report(key, i as u32 + 1, "B00HISTRD1", t, p))
        .collect();
    store.ingest(&reports, now).await.expect("ingest");
    // Maintenance moves the rows from the default partition into y2024 and
    // y2025.
    store.ensure_partitions(now).await.expect("partitions");
    assert_eq!(
        count(store.pool(), "SELECT count(*) FROM history_runs_default").await,
        0
    );
    assert!(count(store.pool(), "SELECT count(*) FROM history_runs_y2024").await > 0);
    assert!(count(store.pool(), "SELECT count(*) FROM history_runs_y2025").await > 0);
    let info = store
        .product_info("amazon.de", "B00HISTRD1")
        .await
        .expect("info")
        .expect("known");
    let (from, to) = (start + 5 * 24 * HOUR + HOUR, start + 19 * 24 * HOUR);
    // Corrections: one before the range, two at the same time (kept in
    // insertion order), one in the range, one after it.
    for (at, rep, ver) in [
        (from - 1, Some(1), Some(2)),
        (from + 10 * HOUR, Some(800), Some(1000)),
        (from + 10 * HOUR, None, Some(1000)),
        (from + 2 * HOUR, Some(700), Some(900)),
        (to + 1, Some(3), Some(4)),
    ] {
        sqlx::query(
            "INSERT INTO corrections (product_id, condition, at, reported_price_minor, \
             verified_price_minor) VALUES ($1, 0, $2, $3, $4)",
        )
        .bind(info.id)
        .bind(at)
        .bind(rep)
        .bind(ver)
        .execute(store.pool())
        .await
        .expect("insert correction");
    }
    let read = store
        .product_history_with_corrections("amazon.de", "B00HISTRD1", Condition::New, from, to)
        .await
        .expect("read")
        .expect("known");
    assert_eq!(read.info, info);
    // The naive runs: the baseline (last run starting before `from`), then
    // every run starting in [from, to].
    let naive = naive_runs(obs.clone());
    let base = naive.iter().rposition(|r| r.0 < from).expect("a baseline");
    let want: Vec<(i64, i64, Option<i64>, i64)> = naive[base..]
        .iter()
        .copied()
        .filter(|r| r.0 <= to)
        .collect();
    let got: Vec<(i64, i64, Option<i64>, i64)> = read
        .runs
        .iter()
        .map(|r| (r.first_seen, r.last_seen, r.price_minor, r.n))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 6, "{got:?}");
    let runs = store
        .history_runs(info.id, Condition::New, from, to)
        .await
        .expect("runs");
    assert_eq!(read.runs, runs);
    let (info2, runs2) = store
        .product_history("amazon.de", "B00HISTRD1", Condition::New, from, to)
        .await
        .expect("history")
        .expect("known");
    assert_eq!((info2, runs2), (info.clone(), runs));
    let corrections = store
        .corrections(info.id, Condition::New, from, to)
        .await
        .expect("corrections");
    assert_eq!(read.corrections, corrections);
    let got: Vec<(i64, Option<i64>, Option<i64>)> = read
        .corrections
        .iter()
        .map(|c| (c.at, c.reported_price_minor, c.verified_price_minor))
        .collect();
    assert_eq!(
        got,
        vec![
            (from + 2 * HOUR, Some(700), Some(900)),
            (from + 10 * HOUR, Some(800), Some(1000)),
            (from + 10 * HOUR, None, Some(1000)),
        ]
    );
    // Another condition: the product, no runs, no corrections.
    let used = store
        .product_history_with_corrections("amazon.de", "B00HISTRD1", Condition::Used, from, to)
        .await
        .expect("read")
        .expect("known");
    assert_eq!((used.runs.len(), used.corrections.len()), (0, 0));
    // An unknown product.
    assert!(store
        .product_history_with_corrections("amazon.de", "B00NOSUCH1", Condition::New, from, to)
        .await
        .expect("read")
        .is_none());
    store.close().await;
}

/// What every history read of `B00PACKED1` must answer, from the naive
/// runs of all its observations: each range's runs (the baseline, then the
/// runs beginning in the range) through the one-query read and
/// `history_runs`, the summary's all-time lowest and highest, and the
/// storage figures.
async fn assert_history_as_naive(store: &PostgresStore, obs: &[(i64, i64)], ranges: &[(i64, i64)]) {
    let naive = naive_runs(obs.to_vec());
    let info = store
        .product_info("amazon.de", "B00PACKED1")
        .await
        .expect("info")
        .expect("known");
    for &(from, to) in ranges {
        let base = naive.iter().rposition(|r| r.0 < from).unwrap_or(0);
        let want: Vec<(i64, i64, Option<i64>, i64)> = naive[base..]
            .iter()
            .copied()
            .filter(|r| r.0 <= to)
            .collect();
        let read = store
            .product_history_with_corrections("amazon.de", "B00PACKED1", Condition::New, from, to)
            .await
            .expect("read")
            .expect("known");
        let got: Vec<(i64, i64, Option<i64>, i64)> = read
            .runs
            .iter()
            .map(|r| (r.first_seen, r.last_seen, r.price_minor, r.n))
            .collect();
        assert_eq!(got, want, "range {from}..{to}");
        let runs = store
            .history_runs(info.id, Condition::New, from, to)
            .await
            .expect("runs");
        assert_eq!(runs, read.runs, "history_runs, range {from}..{to}");
    }
    let extreme = |better: fn(i64, i64) -> bool| {
        naive.iter().fold(None, |acc: Option<(i64, i64)>, r| {
            let p = r.2.expect("priced");
            match acc {
                Some((ap, at)) if !(better(p, ap) || (p == ap && r.1 > at)) => Some((ap, at)),
                _ => Some((p, r.1)),
            }
        })
    };
    let summary = store
        .product_summary("amazon.de", "B00PACKED1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(summary.offers[0].lowest, extreme(|a, b| a < b), "lowest");
    assert_eq!(summary.offers[0].highest, extreme(|a, b| a > b), "highest");
    let stats = store.storage_stats().await.expect("stats");
    assert_eq!(stats.observations, obs.len() as i64);
    assert_eq!(stats.history_rows, naive.len() as i64);
}

/// Packed history (`history_packed`, migration 0011): once the maintenance
/// packs the runs of old periods, every read answers as before (ranges
/// whose baseline is packed or plain, the summary, the storage figures);
/// a late observation inside the packed periods brings them back to plain
/// rows and lands where it belongs (one that splits a packed run, one
/// that extends one); packing again answers the same.
#[tokio::test]
async fn packed_history_answers_like_plain_runs() {
    let Some(db) = FreshDatabase::create("packed_history").await else {
        return;
    };
    let store = PostgresStore::open(&db.url).await.expect("open");
    let now = common::story::NOW;
    let key = match store
        .register_key(&[9u8; 32], now - 60_000, None)
        .await
        .expect("register")
    {
        Registered::Created(k) => k.id,
        other => panic!("expected Created, got {other:?}"),
    };
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    // Every 6 hours for 200 days up to 5 minutes ago (the last one
    // publishes the offer); a new price every 9 observations, some equal
    // to the one before (those runs go on).
    let start = now - 5 * 60_000 - 799 * 6 * HOUR;
    let mut obs: Vec<(i64, i64)> = (0..800)
        .map(|i| (start + i * 6 * HOUR, 800 + ((i / 9) * 37 % 11) * 50))
        .collect();
    let mut serial = 0u32;
    let mut ingest = |batch: &[(i64, i64)]| {
        batch
            .iter()
            .map(|&(t, p)| {
                serial += 1;
                report(key, serial, "B00PACKED1", t, p)
            })
            .collect::<Vec<_>>()
    };
    for chunk in obs.chunks(100) {
        store.ingest(&ingest(chunk), now).await.expect("ingest");
    }
    let ranges = [
        (0, i64::MAX),
        (start + 45 * DAY + 3 * HOUR, start + 100 * DAY),
        (start + 10 * DAY, start + 11 * DAY),
        (start + 150 * DAY, now),
        (now - 3 * DAY, now),
        (now + DAY, now + 2 * DAY),
    ];
    assert_history_as_naive(&store, &obs, &ranges).await;
    let plain_rows = count(store.pool(), "SELECT count(*) FROM history_runs").await;

    let packed = store.purge(0, now).await.expect("maintenance").packed_runs;
    let rows = count(store.pool(), "SELECT count(*) FROM history_runs").await;
    assert!(packed > 0, "nothing packed");
    assert_eq!(rows + packed as i64, plain_rows);
    // Periods are 30 days; the plain rows left begin at most one period
    // before the cutoff (7 days ago).
    assert!(count(store.pool(), "SELECT count(*) FROM history_packed").await >= 5);
    assert_eq!(
        count(
            store.pool(),
            &format!(
                "SELECT count(*) FROM history_runs WHERE first_seen < {}",
                now - 37 * DAY
            )
        )
        .await,
        0
    );
    assert_history_as_naive(&store, &obs, &ranges).await;
    // Packing again moves nothing.
    assert_eq!(store.purge(0, now).await.expect("again").packed_runs, 0);

    // Late observations in the packed periods: a new lowest price between
    // two observations (splits a run), and one at the price of the run it
    // falls in (extends it).
    let split = (start + 60 * DAY + 3 * HOUR, 555);
    let inside = obs
        .iter()
        .position(|o| o.0 > start + 61 * DAY)
        .expect("an observation");
    let extend = (obs[inside].0 + HOUR, obs[inside].1);
    store
        .ingest(&ingest(&[split, extend]), now)
        .await
        .expect("late ingest");
    obs.push(split);
    obs.push(extend);
    assert_eq!(
        count(store.pool(), "SELECT count(*) FROM history_packed").await,
        0,
        "the packed runs went back to plain rows"
    );
    assert_history_as_naive(&store, &obs, &ranges).await;
    assert!(store.purge(0, now).await.expect("repack").packed_runs > 0);
    assert_history_as_naive(&store, &obs, &ranges).await;
    store.close().await;
}
