//! The trust rules as the store applies them (issue 6, TRUST.md), on both
//! backends: SQLite always; PostgreSQL when `PRICEWATCH_TEST_POSTGRES_URL`
//! is set (required when `CI` is). One focused scenario per rule: agree,
//! distrusted, pending crawl, cold start, critical drop, low impact, safe
//! to alert, refuted (correction row, correction alert, penalty, history
//! exclusion), confirmed (held alert released, credit), failed crawls
//! (retries, then hold expiry), lease expiry, idempotent results, the
//! 10-minute rule, summary status, durability across a reopen,
//! (PostgreSQL) concurrent leases that never share a job, and waiting
//! reports (stored only over the crawl-trigger limit or from a distrusted
//! key, judged by the product's next crawl against the series' last
//! verified reading, whatever is published, purged past the horizon; a
//! fresh key's single waiting lie gets a judge crawl after an hour, at most
//! one an hour; a distrusted key's skipped spot check waits too).

use backend::notify::AlertKind;
use backend::store::verify::{JobOutcome, ResultApplied, VerifierOutcome};
use backend::store::{IngestOutcome, NewReport, OfferStatus, Registered, Storage};
use backend::watch::{NewWatch, WatchSpec};
use sqlx::Connection;
use std::sync::Arc;
use wasm_core::types::{Availability, Condition, Seller};

const ASIN: &str = "B08N5WRWNW";
const T0: i64 = 1_763_800_000_000;
const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;

/// A store and the URL it was opened with (for raw SQL set-up).
struct Db {
    store: Arc<dyn Storage>,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/trust.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    store.seed_trust_rng(7);
    Db {
        store,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, or `None` when no server is configured.
async fn postgres() -> Option<Db> {
    const ENV: &str = "PRICEWATCH_TEST_POSTGRES_URL";
    let server = match std::env::var(ENV) {
        Ok(u) if !u.trim().is_empty() => u.trim().to_string(),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{ENV} must be set in CI (export {ENV}=$(scripts/postgres-start))"
            );
            eprintln!("skipping PostgreSQL: {ENV} is not set");
            return None;
        }
    };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "pricewatch_trust_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("admin");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create db");
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let cut = base.rfind('/').expect("url has a path");
    let url = format!("{}/{name}{query}", &base[..cut]);
    let store = backend::store::connect(&url).await.expect("open");
    store.seed_trust_rng(7);
    Some(Db {
        store,
        url,
        _dir: None,
    })
}

/// Drops the database [`postgres`] created for a scenario (after it passed;
/// a failed one is left for a look).
async fn drop_postgres(url: &str) {
    let server = std::env::var("PRICEWATCH_TEST_POSTGRES_URL").expect("server url");
    let path = url.split_once('?').map_or(url, |(b, _)| b);
    let name = &path[path.rfind('/').expect("url has a path") + 1..];
    let mut admin = sqlx::PgConnection::connect(server.trim())
        .await
        .expect("admin");
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop db");
}

/// Runs a scenario on SQLite, then on PostgreSQL when configured.
macro_rules! both {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::postgres().await {
                    let url = db.url.clone();
                    super::$scenario(db).await;
                    super::drop_postgres(&url).await;
                }
            }
        }
    };
}

fn report(key_id: i64, n: u32, price: Option<i64>, t: i64) -> NewReport {
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_be_bytes());
    nonce[4..12].copy_from_slice(&key_id.to_be_bytes());
    NewReport {
        key_id,
        nonce,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        price_minor: price,
        currency: "USD".into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: "Echo Dot".into(),
        observed_at: t,
        trusted: false,
        net_hash: None,
        raw: "{}".into(),
    }
}

fn verified(key_id: i64, n: u32, price: i64, t: i64) -> NewReport {
    NewReport {
        trusted: true,
        ..report(key_id, n, Some(price), t)
    }
}

async fn key(db: &Db, seed: u8, registered_at: i64) -> i64 {
    match db
        .store
        .register_key(&[seed; 32], registered_at, Some([seed; 16]))
        .await
        .expect("register")
    {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    }
}

/// Sets a key's evidence directly (an established or distrusted key
/// without replaying weeks of crawls).
async fn set_evidence(db: &Db, key: i64, alpha: f64, beta: f64, at: i64) {
    let sql = "UPDATE keys SET alpha = $1, beta = $2, evidence_at = $3 WHERE id = $4";
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url)
            .await
            .expect("conn");
        sqlx::query(&sql.replace('$', "?"))
            .bind(alpha)
            .bind(beta)
            .bind(at)
            .bind(key)
            .execute(&mut c)
            .await
            .expect("update");
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.expect("conn");
        sqlx::query(sql)
            .bind(alpha)
            .bind(beta)
            .bind(at)
            .bind(key)
            .execute(&mut c)
            .await
            .expect("update");
    }
}

/// A key's `(alpha, beta)` as stored.
async fn evidence(db: &Db, key: i64) -> (f64, f64) {
    let pk = [u8::try_from(key).unwrap_or(0); 32];
    let _ = pk;
    let sql = "SELECT alpha, beta FROM keys WHERE id = $1";
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url)
            .await
            .expect("conn");
        sqlx::query_as(&sql.replace('$', "?"))
            .bind(key)
            .fetch_one(&mut c)
            .await
            .expect("select")
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.expect("conn");
        sqlx::query_as(sql)
            .bind(key)
            .fetch_one(&mut c)
            .await
            .expect("select")
    }
}

async fn ingest(db: &Db, r: NewReport, now: i64) -> IngestOutcome {
    let out = db.store.ingest(&[r], now).await.expect("ingest");
    out[0]
}

async fn offer(db: &Db) -> backend::store::OfferSummary {
    let s = db
        .store
        .product_summary("amazon.com", ASIN)
        .await
        .expect("summary")
        .expect("known");
    s.offers[0].clone()
}

async fn product_id(db: &Db) -> i64 {
    db.store
        .product_info("amazon.com", ASIN)
        .await
        .expect("info")
        .expect("known")
        .id
}

async fn watch(db: &Db, key: i64, target: i64, now: i64) {
    db.store
        .create_watch(
            &NewWatch {
                key_id: key,
                marketplace: "amazon.com".into(),
                asin: ASIN.into(),
                condition: Condition::New,
                spec: WatchSpec {
                    target_price_minor: Some(target),
                    drop_percent: None,
                    back_in_stock: false,
                    extension: true,
                    email: None,
                    webhook: None,
                },
                webhook_secret: None,
                contact_hashes: None,
            },
            now,
        )
        .await
        .expect("watch");
}

/// A verifier publishes `price` at `t` (no job, alerts may fire) and the
/// outbox is processed.
async fn baseline(db: &Db, verifier: i64, price: i64, t: i64) {
    assert_eq!(
        ingest(db, verified(verifier, 9_000, price, t), t).await,
        IngestOutcome::Accepted
    );
    db.store.process_outbox(t, 100).await.expect("outbox");
}

async fn lease_one(db: &Db, verifier: i64, now: i64) -> backend::store::verify::LeasedJob {
    let jobs = db
        .store
        .lease_jobs(verifier, 5, 60_000, now)
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    jobs[0].clone()
}

/// Whether verifier `v` finds no job to lease at `now`.
async fn no_job(db: &Db, v: i64, now: i64) -> bool {
    db.store
        .lease_jobs(v, 10, 60_000, now)
        .await
        .expect("lease")
        .is_empty()
}

async fn runs(db: &Db) -> Vec<(i64, Option<i64>, i64)> {
    let id = product_id(db).await;
    db.store
        .history_runs(id, Condition::New, 0, i64::MAX)
        .await
        .expect("runs")
        .iter()
        .map(|r| (r.first_seen, r.price_minor, r.n))
        .collect()
}

// ---- Scenarios ----

async fn agree(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let out = ingest(&db, report(k, 1, Some(5000), T0 + MIN), T0 + MIN).await;
    assert_eq!(out, IngestOutcome::Accepted);
    let o = offer(&db).await;
    assert_eq!(o.offer.observed_at, T0 + MIN, "last seen refreshed");
    assert_eq!(o.offer.status, OfferStatus::Verified, "status kept");
    assert_eq!(o.offer.price_minor, Some(5000));
}
both!(agree_is_accepted_and_refreshes_last_seen, agree);

async fn distrusted(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    set_evidence(&db, k, 1.0, 9.0, T0).await;
    baseline(&db, v, 5000, T0).await;
    let out = ingest(&db, report(k, 1, Some(4000), T0 + MIN), T0 + MIN).await;
    assert_eq!(out, IngestOutcome::Stored);
    assert_eq!(offer(&db).await.offer.price_minor, Some(5000));
    assert!(
        no_job(&db, v, T0 + MIN).await,
        "a distrusted key triggers no crawl"
    );
    // Kept out of the history runs (not believed).
    assert!(runs(&db).await.iter().all(|r| r.1 != Some(4000)));
}
both!(distrusted_key_is_stored_only, distrusted);

async fn misread(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    set_evidence(&db, k, 31.0, 1.0, T0).await; // established
    baseline(&db, v, 110_618, T0).await; // 1,106.18
    watch(&db, k, 100_000, T0).await;
    let before = runs(&db).await;
    // 1,106.18 read as 1.11: a drop of 99.9% that would alert the watch.
    let out = ingest(&db, report(k, 1, Some(111), T0 + MIN), T0 + MIN).await;
    assert_eq!(out, IngestOutcome::Stored);
    assert_eq!(report_state(&db, k, 1).await.1, "looks_misread");
    let o = offer(&db).await;
    assert_eq!(
        (o.offer.price_minor, o.offer.status),
        (Some(110_618), OfferStatus::Verified)
    );
    assert!(no_job(&db, v, T0 + MIN).await, "a misread queues no crawl");
    assert_eq!(runs(&db).await, before, "and stays out of the history");
    assert_eq!(evidence(&db, k).await, (31.0, 1.0), "and judges nobody");
    assert_eq!(waiting_rows(&db, k).await, 0);
    // A drop of another shape goes through the rules (critical: held).
    let out = ingest(&db, report(k, 2, Some(50_000), T0 + 2 * MIN), T0 + 2 * MIN).await;
    assert_eq!(out, IngestOutcome::Held);
}
both!(a_separator_misread_is_stored_only, misread);

async fn cold_start_and_pending(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    let k2 = key(&db, 3, T0 - 90 * DAY).await;
    // Nothing published: provisional, and a crawl at normal priority.
    let out = ingest(&db, report(k, 1, Some(5000), T0), T0).await;
    assert_eq!(out, IngestOutcome::Provisional);
    let o = offer(&db).await;
    assert_eq!(o.offer.status, OfferStatus::Provisional);
    assert_eq!(o.offer.price_minor, Some(5000));
    // A crawl is pending: another price attaches to it (held).
    let out = ingest(&db, report(k2, 1, Some(3000), T0 + MIN), T0 + MIN).await;
    assert_eq!(out, IngestOutcome::Held);
    assert_eq!(offer(&db).await.offer.price_minor, Some(5000));
    let job = lease_one(&db, v, T0 + MIN).await;
    assert_eq!(job.reason, "cold_start");
    assert!(!job.critical);
    assert_eq!(job.asin, ASIN);
    // One job for the product: nothing else to lease.
    assert!(db
        .store
        .lease_jobs(v, 5, 60_000, T0 + MIN)
        .await
        .expect("lease")
        .is_empty());
    // The held report is not in history.
    assert_eq!(runs(&db).await, vec![(T0, Some(5000), 1)]);
}
both!(
    cold_start_is_provisional_and_later_reports_attach,
    cold_start_and_pending
);

async fn critical_then_confirmed(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let watcher = key(&db, 4, T0 - 90 * DAY).await;
    let fresh = key(&db, 5, T0 - MIN).await;
    baseline(&db, v, 5000, T0).await;
    watch(&db, watcher, 4000, T0).await;
    // A drop of more than 50%: held, top-priority critical crawl.
    let t = T0 + MIN;
    let out = ingest(&db, report(fresh, 1, Some(2000), t), t).await;
    assert_eq!(out, IngestOutcome::Held);
    assert_eq!(offer(&db).await.offer.price_minor, Some(5000));
    let st = db.store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!(st.alerts, 0, "a held price fires nothing");
    let job = lease_one(&db, v, t).await;
    assert!(job.critical);
    assert_eq!(job.reason, "critical");
    assert!(job.priority >= 11.0, "{}", job.priority);
    // The crawl confirms: published verified, the held alert released,
    // the reporter credited, the report enters history.
    let before = evidence(&db, fresh).await;
    let now = t + MIN;
    let applied = db
        .store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 1, 2000, now)),
            now,
        )
        .await
        .expect("finish");
    match applied {
        ResultApplied::Finished { outcome, .. } => assert_eq!(outcome, JobOutcome::Confirmed),
        other => panic!("{other:?}"),
    }
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(2000));
    assert_eq!(o.offer.status, OfferStatus::Verified);
    assert_eq!(o.offer.last_verified_at, Some(now));
    let st = db.store.process_outbox(now, 100).await.expect("outbox");
    assert_eq!(st.alerts, 1, "held alert released");
    let alerts = db.store.alerts_after(watcher, 0, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].new_price_minor, Some(2000));
    let after = evidence(&db, fresh).await;
    assert!(
        after.0 > before.0 + 0.9,
        "credited: {before:?} -> {after:?}"
    );
    // The held observation and the crawl's make one run from `t`.
    assert!(runs(&db).await.contains(&(t, Some(2000), 2)));
    // Idempotent: a second result changes nothing; unknown ids are unknown.
    let again = db
        .store
        .finish_job(job.id, VerifierOutcome::Failed, None, now + MIN)
        .await
        .expect("again");
    assert_eq!(again, ResultApplied::AlreadyFinished);
    assert_eq!(evidence(&db, fresh).await, after);
    let unknown = db
        .store
        .finish_job(job.id + 1000, VerifierOutcome::Failed, None, now)
        .await
        .expect("unknown");
    assert_eq!(unknown, ResultApplied::Unknown);
}
both!(
    critical_drop_is_held_then_confirmed,
    critical_then_confirmed
);

async fn low_impact(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let watcher = key(&db, 4, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    watch(&db, watcher, 4000, T0).await;
    // 10% down, above every threshold (A = 0): provisional, no alert and
    // no outbox event.
    let t = T0 + MIN;
    let out = ingest(&db, report(k, 1, Some(4500), t), t).await;
    assert_eq!(out, IngestOutcome::Provisional);
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(4500));
    assert_eq!(o.offer.status, OfferStatus::Provisional);
    let st = db.store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!((st.events, st.alerts), (0, 0));
}
both!(low_impact_is_provisional_without_alerts, low_impact);

async fn safe_then_refuted(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let watcher = key(&db, 4, T0 - 90 * DAY).await;
    let a = key(&db, 6, T0 - 90 * DAY).await;
    let b = key(&db, 7, T0 - 90 * DAY).await;
    set_evidence(&db, a, 40.0, 1.0, T0).await;
    set_evidence(&db, b, 40.0, 1.0, T0).await;
    let t = T0 + 20 * MIN;
    baseline(&db, v, 5000, t - 5 * MIN).await;
    watch(&db, watcher, 4500, t - 5 * MIN).await;
    // (4200 is above 0.8 x the verified low: not critical.)
    // Key a saw 4200 a while ago (too old to publish, but it corroborates).
    let out = ingest(&db, report(a, 1, Some(4200), t - 15 * MIN), t).await;
    assert_eq!(out, IngestOutcome::Stored);
    // Key b (another group) reports it now: two established groups agree,
    // A * (1 - c) is tiny: accepted, published as confirmed, alert now.
    let out = ingest(&db, report(b, 1, Some(4200), t), t).await;
    assert_eq!(out, IngestOutcome::Accepted);
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(4200));
    assert_eq!(o.offer.status, OfferStatus::Confirmed);
    let st = db.store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!(st.alerts, 1, "safe: alerted at once");
    // The confirming crawl refutes it.
    let job = lease_one(&db, v, t + MIN).await;
    assert_eq!(job.reason, "confirm");
    let before = evidence(&db, b).await;
    let now = t + 2 * MIN;
    let applied = db
        .store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 2, 5000, now)),
            now,
        )
        .await
        .expect("finish");
    match applied {
        ResultApplied::Finished {
            outcome,
            corrections,
            correction_alerts,
            ..
        } => {
            assert_eq!(outcome, JobOutcome::Refuted);
            assert_eq!(corrections, 1);
            assert_eq!(correction_alerts, 1);
        }
        other => panic!("{other:?}"),
    }
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(5000));
    assert_eq!(o.offer.status, OfferStatus::Corrected);
    let alerts = db.store.alerts_after(watcher, 0, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].kind, AlertKind::Correction);
    assert_eq!(alerts[1].old_price_minor, Some(4200));
    assert_eq!(alerts[1].new_price_minor, Some(5000));
    // Penalised severely (it fired alerts).
    let after = evidence(&db, b).await;
    assert!(after.1 >= before.1 + 4.9, "{before:?} -> {after:?}");
    // The corrections row, and the refuted observation left the runs.
    let id = product_id(&db).await;
    let c = db
        .store
        .corrections(id, Condition::New, 0, i64::MAX)
        .await
        .expect("corrections");
    assert_eq!(c.len(), 1);
    assert_eq!(
        (
            c[0].at,
            c[0].reported_price_minor,
            c[0].verified_price_minor
        ),
        (now, Some(4200), Some(5000))
    );
    let r = runs(&db).await;
    assert!(!r.iter().any(|x| x.0 == t), "refuted run removed: {r:?}");
    // Key a's older report corroborated the refuted value (it was not
    // attached to the crawl, so it is not judged): it leaves history with
    // it, so no point and no all-time low shows the false 4200.
    assert_eq!(r, vec![(t - 5 * MIN, Some(5000), 2)]);
    assert_eq!(evidence(&db, a).await, (40.0, 1.0), "a was not judged");
    let o = offer(&db).await;
    assert_eq!(
        o.lowest,
        Some((5000, now)),
        "lowest without the refuted price"
    );
    assert_eq!(o.highest, Some((5000, now)));
}
both!(safe_alerts_now_and_a_refutation_corrects, safe_then_refuted);

/// A crawl that refutes a published value takes the reports that backed
/// it out of history when they are recent (within the 30 minutes a hold
/// lives); an older one stays (the price may have moved since), and the
/// summary's lowest/highest follow the runs.
async fn refuted_published_value(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let c = key(&db, 2, T0 - 90 * DAY).await;
    let b = key(&db, 3, T0 - 90 * DAY).await;
    let d = key(&db, 4, T0 - 90 * DAY).await;
    let t = T0 + 20 * MIN;
    // Cold start: 4000 published as provisional; its crawl is inconclusive.
    let out = ingest(&db, report(c, 1, Some(4000), t), t).await;
    assert_eq!(out, IngestOutcome::Provisional);
    let job = lease_one(&db, v, t + MIN).await;
    db.store
        .finish_job(job.id, VerifierOutcome::NotFound, None, t + MIN)
        .await
        .expect("finish");
    // 35 minutes later another key sees the same value (agrees).
    let t2 = t + 35 * MIN;
    let out = ingest(&db, report(b, 1, Some(4000), t2), t2).await;
    assert_eq!(out, IngestOutcome::Accepted);
    assert_eq!(runs(&db).await, vec![(t, Some(4000), 2)]);
    assert_eq!(offer(&db).await.lowest, Some((4000, t2)));
    // A critical drop is held; its crawl reads 5000: the published 4000
    // is refuted along with the held report.
    let out = ingest(&db, report(d, 1, Some(1000), t2 + MIN), t2 + MIN).await;
    assert_eq!(out, IngestOutcome::Held);
    let job = lease_one(&db, v, t2 + 2 * MIN).await;
    let now = t2 + 5 * MIN;
    let applied = db
        .store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 2, 5000, now)),
            now,
        )
        .await
        .expect("finish");
    assert!(
        matches!(
            applied,
            ResultApplied::Finished {
                outcome: JobOutcome::Refuted,
                corrections: 2,
                ..
            }
        ),
        "{applied:?}"
    );
    // b's report (5 minutes before the crawl) left the run; c's (40
    // minutes before) stays, so the run ends at c's observation.
    assert_eq!(
        runs(&db).await,
        vec![(t, Some(4000), 1), (now, Some(5000), 1)]
    );
    let id = product_id(&db).await;
    let h = db
        .store
        .history_runs(id, Condition::New, 0, i64::MAX)
        .await
        .expect("runs");
    assert_eq!(h[0].last_seen, t, "{h:?}");
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(5000));
    assert_eq!(o.lowest, Some((4000, t)), "only the stale observation");
    assert_eq!(o.highest, Some((5000, now)));
    // Nobody was judged for the published value: b is not penalised.
    assert_eq!(evidence(&db, b).await, (1.0, 1.0));
}
both!(
    a_refuted_published_value_leaves_history_with_its_recent_reports,
    refuted_published_value
);

async fn failed_then_expired(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    let k2 = key(&db, 3, T0 - 90 * DAY).await;
    ingest(&db, report(k, 1, Some(5000), T0), T0).await;
    assert_eq!(
        ingest(&db, report(k2, 1, Some(3000), T0 + 1), T0 + 1).await,
        IngestOutcome::Held
    );
    let mut now = T0 + 10;
    for (i, outcome) in [VerifierOutcome::Failed, VerifierOutcome::Captcha]
        .into_iter()
        .enumerate()
    {
        let job = lease_one(&db, v, now).await;
        let r = db
            .store
            .finish_job(job.id, outcome, None, now)
            .await
            .expect("finish");
        assert_eq!(
            r,
            ResultApplied::Retrying {
                attempts: i as i64 + 1
            }
        );
        // Not before the retry time.
        assert!(db
            .store
            .lease_jobs(v, 5, 60_000, now + 1)
            .await
            .expect("lease")
            .is_empty());
        now += (i as i64 + 1) * MIN;
    }
    assert!(now - T0 < 5 * MIN, "two retries within 5 minutes");
    let job = lease_one(&db, v, now).await;
    let r = db
        .store
        .finish_job(job.id, VerifierOutcome::Blocked, None, now)
        .await
        .expect("finish");
    assert_eq!(r, ResultApplied::Retrying { attempts: 3 });
    // Given up: never leased again; the hold expires 30 minutes after the
    // job was queued (the periodic tick).
    assert!(db
        .store
        .lease_jobs(v, 5, 60_000, now + 10 * MIN)
        .await
        .expect("lease")
        .is_empty());
    let st = db
        .store
        .verification_tick(T0 + 20 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.expired_holds, 0);
    let st = db
        .store
        .verification_tick(T0 + 31 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.expired_holds, 1);
    assert_eq!(offer(&db).await.offer.price_minor, Some(5000));
    // The job is closed: a new report may queue a new crawl.
    let out = ingest(&db, report(k2, 2, Some(3000), T0 + 32 * MIN), T0 + 32 * MIN).await;
    assert_ne!(out, IngestOutcome::Stored);
    let job2 = lease_one(&db, v, T0 + 33 * MIN).await;
    assert_ne!(job2.id, job.id);
}
both!(
    failed_crawls_retry_then_the_hold_expires,
    failed_then_expired
);

async fn lease_expiry(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    ingest(&db, report(k, 1, Some(5000), T0), T0).await;
    let jobs = db.store.lease_jobs(v, 5, 1_000, T0).await.expect("lease");
    assert_eq!(jobs.len(), 1);
    assert!(db
        .store
        .lease_jobs(v, 5, 1_000, T0 + 500)
        .await
        .expect("lease")
        .is_empty());
    let again = lease_one(&db, v, T0 + 1_001).await;
    assert_eq!(again.id, jobs[0].id, "an expired lease returns the job");
}
both!(an_expired_lease_returns_the_job, lease_expiry);

async fn ten_minute_rule(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let now = T0 + 30 * MIN;
    // Older than 10 minutes: history only, even from a verifier.
    let out = ingest(&db, report(k, 1, Some(4000), now - 11 * MIN), now).await;
    assert_eq!(out, IngestOutcome::Stored);
    let out = ingest(&db, verified(v, 2, 3000, now - 11 * MIN), now).await;
    assert_eq!(out, IngestOutcome::Stored);
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(5000));
    assert_eq!(o.offer.observed_at, T0);
    assert!(runs(&db).await.iter().any(|r| r.1 == Some(4000)));
}
both!(
    observations_over_ten_minutes_old_never_move_the_price,
    ten_minute_rule
);

async fn concurrent_leases(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    for i in 0..60u32 {
        // One key each: a key on probation triggers one crawl at a time.
        let k = key(&db, 100 + i as u8, T0 - 90 * DAY).await;
        let mut r = report(k, i, Some(1000), T0);
        r.asin = format!("B{i:09}");
        assert_eq!(ingest(&db, r, T0).await, IngestOutcome::Provisional);
    }
    let depth = db.store.queue_depth().await.expect("depth");
    assert_eq!(depth.open.iter().map(|e| e.2).sum::<i64>(), 60, "{depth:?}");
    // Two store instances on PostgreSQL: two backend processes sharing the
    // database (SQLite has one writer per file anyway).
    let other = if db.url.starts_with("postgres") {
        backend::store::connect(&db.url)
            .await
            .expect("second store")
    } else {
        db.store.clone()
    };
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..3 {
                let jobs = store.lease_jobs(v, 5, 60_000, T0 + 1).await.expect("lease");
                ids.extend(jobs.iter().map(|j| j.id));
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "no job leased twice");
    assert_eq!(n, 60);
}
both!(concurrent_leases_never_share_a_job, concurrent_leases);

#[tokio::test]
async fn queue_is_durable_across_reopen_sqlite() {
    let db = sqlite().await;
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    ingest(&db, report(k, 1, Some(5000), T0), T0).await;
    db.store.close().await;
    let store = backend::store::connect(&db.url).await.expect("reopen");
    let jobs = store.lease_jobs(v, 5, 60_000, T0).await.expect("lease");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].reason, "cold_start");
    let depth = store.queue_depth().await.expect("depth");
    assert_eq!(depth.open.iter().map(|e| e.2).sum::<i64>(), 1);
}

async fn refresh(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let watcher = key(&db, 4, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    watch(&db, watcher, 4000, T0).await;
    // Reported an hour ago: fresh enough.
    let st = db
        .store
        .verification_tick(T0 + 60 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.refresh_queued, 0);
    // Nobody reported for a day (fewer than 50 watchers): one refresh.
    let st = db
        .store
        .verification_tick(T0 + DAY + MIN)
        .await
        .expect("tick");
    assert_eq!(st.refresh_queued, 1);
    let st = db
        .store
        .verification_tick(T0 + DAY + 2 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.refresh_queued, 0, "one open job per product");
    let job = lease_one(&db, v, T0 + DAY + 2 * MIN).await;
    assert_eq!(job.reason, "refresh");
    // Its result refreshes the verification.
    let now = T0 + DAY + 3 * MIN;
    let r = db
        .store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 3, 5000, now)),
            now,
        )
        .await
        .expect("finish");
    assert!(matches!(
        r,
        ResultApplied::Finished {
            outcome: JobOutcome::Confirmed,
            ..
        }
    ));
    assert_eq!(offer(&db).await.offer.last_verified_at, Some(now));
    let st = db.store.verification_tick(now + MIN).await.expect("tick");
    assert_eq!(st.refresh_queued, 0);
}
both!(watched_products_nobody_reports_are_refreshed, refresh);

async fn erase(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    ingest(&db, report(k, 1, Some(5000), T0), T0).await;
    db.store.erase_key(k, T0 + 1).await.expect("erase");
    // The job stays (the product still needs its crawl); the key is gone
    // from it, and the result judges nobody.
    let job = lease_one(&db, v, T0 + 2).await;
    let r = db
        .store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 2, 4000, T0 + 3)),
            T0 + 3,
        )
        .await
        .expect("finish");
    assert!(matches!(r, ResultApplied::Finished { .. }), "{r:?}");
    assert_eq!(evidence(&db, k).await, (1.0, 1.0));
}
both!(erased_keys_leave_the_queue, erase);

async fn escalation(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    let k2 = key(&db, 3, T0 - 90 * DAY).await;
    // A cold-start crawl at normal priority...
    assert_eq!(
        ingest(&db, report(k, 1, Some(5000), T0), T0).await,
        IngestOutcome::Provisional
    );
    // ... then a critical drop attaches to it and raises it.
    assert_eq!(
        ingest(&db, report(k2, 1, Some(2000), T0 + MIN), T0 + MIN).await,
        IngestOutcome::Held
    );
    let job = lease_one(&db, v, T0 + MIN).await;
    assert_eq!(job.reason, "cold_start");
    assert!(job.critical, "raised to critical");
    assert!(job.priority >= 11.0, "{}", job.priority);
}
both!(
    an_attached_critical_report_raises_the_pending_crawl,
    escalation
);

async fn group_limit(db: Db) {
    // Fresh keys of one network and registration day share the group's
    // crawl allowance (two open crawls): the third one's cold start
    // publishes without a crawl.
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let net = [77u8; 16];
    let mut keys = Vec::new();
    for seed in 10..13u8 {
        let id = match db
            .store
            .register_key(&[seed; 32], T0 - MIN, Some(net))
            .await
            .expect("register")
        {
            Registered::Created(k) | Registered::Existing(k) => k.id,
        };
        keys.push(id);
    }
    // Other groups: the same network but registered the day before, and
    // another network the same day. Each has its own allowance.
    for (seed, registered, other_net) in [(13u8, T0 - DAY - MIN, net), (14, T0 - MIN, [78u8; 16])] {
        let id = match db
            .store
            .register_key(&[seed; 32], registered, Some(other_net))
            .await
            .expect("register")
        {
            Registered::Created(k) | Registered::Existing(k) => k.id,
        };
        keys.push(id);
    }
    for (i, k) in keys.iter().enumerate() {
        let mut r = report(*k, 1, Some(1000), T0);
        r.asin = format!("B{i:09}");
        assert_eq!(ingest(&db, r, T0).await, IngestOutcome::Provisional);
    }
    let jobs = db
        .store
        .lease_jobs(v, 10, 60_000, T0 + 1)
        .await
        .expect("lease");
    let mut asins: Vec<String> = jobs.iter().map(|j| j.asin.clone()).collect();
    asins.sort();
    // Keys 0 and 1 of the first group, and each of the other two groups'.
    assert_eq!(
        asins,
        vec!["B000000000", "B000000001", "B000000003", "B000000004"],
        "{jobs:?}"
    );
}
both!(
    a_group_of_fresh_keys_shares_its_crawl_allowance,
    group_limit
);

// ---- Waiting reports: stored only (over the crawl-trigger limit, or a
// distrusted key's), judged by the series' next crawl ----

/// The product a key's first crawl is about (it keeps that crawl open).
const OTHER_ASIN: &str = "B0WAITING1";

/// The nonce [`report`] gives report `n` of `key_id`.
fn nonce_of(key_id: i64, n: u32) -> [u8; 16] {
    report(key_id, n, None, 0).nonce
}

/// A fresh key (registered a minute before `t`, its own group) over its
/// crawl-trigger limit: its cold start of another product queued a crawl
/// that is still open.
async fn key_over_limit(db: &Db, seed: u8, t: i64) -> i64 {
    let k = key(db, seed, t - MIN).await;
    let mut r = report(k, 900, Some(1000), t);
    r.asin = OTHER_ASIN.into();
    assert_eq!(ingest(db, r, t).await, IngestOutcome::Provisional);
    k
}

/// Runs a query on the test's database (`$n` placeholders).
async fn fetch_row<T>(db: &Db, sql: &str, key: i64, nonce: Option<[u8; 16]>) -> T
where
    T: Send + Unpin,
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    if db.url.starts_with("sqlite") {
        let mut c = sqlx::SqliteConnection::connect(&db.url)
            .await
            .expect("conn");
        let sql = sql.replace('$', "?");
        let mut q = sqlx::query_as::<_, T>(&sql).bind(key);
        if let Some(n) = nonce {
            q = q.bind(n.to_vec());
        }
        q.fetch_one(&mut c).await.expect("select")
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.expect("conn");
        let mut q = sqlx::query_as::<_, T>(sql).bind(key);
        if let Some(n) = nonce {
            q = q.bind(n.to_vec());
        }
        q.fetch_one(&mut c).await.expect("select")
    }
}

/// Status code and reason of report `n` of `key`.
async fn report_state(db: &Db, key: i64, n: u32) -> (i64, &'static str) {
    let (status, reason): (i64, Option<i64>) = fetch_row(
        db,
        "SELECT CAST(status AS BIGINT), CAST(reason AS BIGINT) FROM reports \
         WHERE key_id = $1 AND nonce = $2",
        key,
        Some(nonce_of(key, n)),
    )
    .await;
    (
        status,
        backend::store::verify::reason::name(reason.unwrap_or(0)),
    )
}

/// Waiting rows of `key`.
/// Key `key` reports `price` (agreeing with the published one) once a
/// second after `t` until two of its reports are spot checks decided with
/// `drawn` (the others agree plainly); at most 400 reports. Returns the
/// time of the last one.
async fn report_until_two_drawn(db: &Db, key: i64, price: i64, t: i64, drawn: &str) -> i64 {
    let mut count = 0;
    let mut last = t;
    for n in 1..=400 {
        let at = t + i64::from(n) * 1000;
        last = at;
        assert_eq!(
            ingest(db, report(key, n, Some(price), at), at).await,
            IngestOutcome::Accepted
        );
        match report_state(db, key, n).await.1 {
            r if r == drawn => count += 1,
            "agrees" => {}
            other => panic!("unexpected reason {other}"),
        }
        if count == 2 {
            break;
        }
    }
    assert_eq!(count, 2, "two spot checks drawn in 400 reports");
    last
}

async fn waiting_rows(db: &Db, key: i64) -> i64 {
    let (n,): (i64,) = fetch_row(
        db,
        "SELECT CAST(count(*) AS BIGINT) FROM waiting_reports WHERE key_id = $1",
        key,
        None,
    )
    .await;
    n
}

/// The open crawl of [`ASIN`] (other products' jobs may be leased too).
async fn lease_asin(db: &Db, verifier: i64, now: i64) -> backend::store::verify::LeasedJob {
    let jobs = db
        .store
        .lease_jobs(verifier, 10, 60_000, now)
        .await
        .expect("lease");
    let mine: Vec<_> = jobs.iter().filter(|j| j.asin == ASIN).collect();
    assert_eq!(mine.len(), 1, "{jobs:?}");
    mine[0].clone()
}

/// Another key (on probation, within its limit) reports a small change:
/// published provisional, and a crawl of the product is queued (this crawl
/// is not the waiting report's).
async fn queue_crawl_by_another_report(db: &Db, seed: u8, t: i64) -> i64 {
    let other = key(db, seed, T0 - 90 * DAY).await;
    assert_eq!(
        ingest(db, report(other, 1, Some(4900), t), t).await,
        IngestOutcome::Provisional
    );
    other
}

/// The crawl of [`ASIN`] observes `price` at `now`.
async fn crawl_observes(db: &Db, verifier: i64, price: i64, now: i64) -> ResultApplied {
    let job = lease_asin(db, verifier, now).await;
    db.store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(verifier, 50, price, now)),
            now,
        )
        .await
        .expect("finish")
}

/// (a) A penny price from a fresh key over its limit on a verified,
/// watched product: stored (`crawl_limit`), in the runs meanwhile; the
/// next crawl (queued by another report) reads the old verified price:
/// severe refutation (the key is distrusted), the report is refuted and
/// leaves the runs, so the lowest price is the real one again.
async fn waiting_penny(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let watcher = key(&db, 4, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    watch(&db, watcher, 4000, T0).await;
    let t = T0 + 5 * MIN;
    let k = key_over_limit(&db, 20, t).await;
    assert_eq!(
        ingest(&db, report(k, 1, Some(1), t), t).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "crawl_limit")
    );
    assert_eq!(waiting_rows(&db, k).await, 1);
    assert_eq!(offer(&db).await.offer.price_minor, Some(5000));
    assert_eq!(runs(&db).await, vec![(T0, Some(5000), 1), (t, Some(1), 1)]);
    assert_eq!(offer(&db).await.lowest, Some((1, t)), "meanwhile");
    let st = db.store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!(st.alerts, 0, "a stored report fires nothing");
    // Another report queues the product's next crawl; it reads 5000.
    let other = queue_crawl_by_another_report(&db, 3, t + MIN).await;
    let now = t + 3 * MIN;
    let r = crawl_observes(&db, v, 5000, now).await;
    assert!(matches!(r, ResultApplied::Finished { .. }), "{r:?}");
    // Severe refutation of a new key: beta 1 + 5, distrusted.
    assert_eq!(evidence(&db, k).await, (1.0, 6.0));
    assert_eq!(
        report_state(&db, k, 1).await,
        (backend::store::verify::status::REFUTED, "crawl_refuted")
    );
    assert_eq!(waiting_rows(&db, k).await, 0);
    // The penny and the refuted provisional 4900 left the runs; the two
    // verified observations merged around them.
    assert_eq!(runs(&db).await, vec![(T0, Some(5000), 2)]);
    let o = offer(&db).await;
    assert_eq!(o.lowest, Some((5000, now)));
    assert_eq!(o.offer.price_minor, Some(5000));
    // The attached report had been published (provisional): a refutation
    // of a report that backed a published price is severe
    // (trust::outcome, `backed_published`).
    assert_eq!(evidence(&db, other).await, (1.0, 6.0));
    // A distrusted key's next deviating report is stored (and waits).
    let t2 = now + MIN;
    assert_eq!(
        ingest(&db, report(k, 2, Some(1), t2), t2).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, k, 2).await,
        (IngestOutcome::Stored.code(), "distrusted_key")
    );
    assert_eq!(waiting_rows(&db, k).await, 1);
}
both!(
    a_waiting_penny_price_is_refuted_by_the_next_crawl,
    waiting_penny
);

/// (b) A distrusted key reports the last verified price (5000) while a
/// collector's change (4900) is published provisional after the crawl: it
/// disagrees with the published value, so it waits, with the last verified
/// reading as `before`. The next crawl shows a third price (4000): the
/// report said what the verifier itself had seen, the price moved since:
/// no evidence, reputation unchanged, status and reason kept; the row is
/// gone.
async fn waiting_moved(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    set_evidence(&db, k, 1.0, 9.0, T0).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    queue_crawl_by_another_report(&db, 3, t).await;
    let o = offer(&db).await.offer;
    assert_eq!(
        (o.price_minor, o.status),
        (Some(4900), OfferStatus::Provisional)
    );
    assert_eq!(
        o.verified_reading,
        Some((Some(5000), Availability::InStock))
    );
    assert_eq!(
        ingest(&db, report(k, 1, Some(5000), t + MIN), t + MIN).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "distrusted_key")
    );
    assert_eq!(waiting_rows(&db, k).await, 1);
    let (before,): (Option<i64>,) = fetch_row(
        &db,
        "SELECT before_price_minor FROM waiting_reports WHERE key_id = $1",
        k,
        None,
    )
    .await;
    assert_eq!(before, Some(5000), "the last verified reading");
    let r = crawl_observes(&db, v, 4000, t + 3 * MIN).await;
    assert!(matches!(r, ResultApplied::Finished { .. }), "{r:?}");
    assert_eq!(evidence(&db, k).await, (1.0, 9.0), "reputation unchanged");
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "distrusted_key")
    );
    assert_eq!(waiting_rows(&db, k).await, 0);
    // The crawl's reading is the new verified one (published `verified`,
    // or `corrected` as the collector's 4900 was refuted: SQLite says
    // corrected, PostgreSQL verified; not this test's subject).
    let o = offer(&db).await.offer;
    assert_eq!(o.price_minor, Some(4000));
    assert!(
        matches!(o.status, OfferStatus::Verified | OfferStatus::Corrected),
        "{o:?}"
    );
    assert_eq!(
        o.verified_reading,
        Some((Some(4000), Availability::InStock))
    );
}
both!(
    a_waiting_report_of_the_last_verified_price_is_no_evidence_when_the_price_moved,
    waiting_moved
);

/// (c) The crawl reads the waiting report's price: confirmed (alpha up),
/// status kept.
async fn waiting_confirmed(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    let k = key_over_limit(&db, 20, t).await;
    assert_eq!(
        ingest(&db, report(k, 1, Some(2000), t), t).await,
        IngestOutcome::Stored
    );
    queue_crawl_by_another_report(&db, 3, t + MIN).await;
    crawl_observes(&db, v, 2000, t + 3 * MIN).await;
    assert_eq!(evidence(&db, k).await, (2.0, 1.0));
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "crawl_limit")
    );
    assert_eq!(waiting_rows(&db, k).await, 0);
    // It stays in the runs: with the crawl's observation once the refuted
    // provisional 4900 between them left.
    assert_eq!(
        runs(&db).await,
        vec![(T0, Some(5000), 1), (t, Some(2000), 2)]
    );
}
both!(
    a_waiting_report_the_crawl_agrees_with_is_confirmed,
    waiting_confirmed
);

/// (d) Past the horizon (`WAITING_HORIZON_MS`, 3 days) the tick deletes
/// the row; the next crawl judges nobody.
async fn waiting_horizon(db: Db) {
    const HORIZON: i64 = backend::trust::outcome::WAITING_HORIZON_MS;
    assert_eq!(HORIZON, 3 * DAY);
    let v = key(&db, 1, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    let k = key_over_limit(&db, 20, t).await;
    // Some positive evidence (still on probation): no judge crawl for its
    // waiting report (scenario g), so only the purge is at work here.
    set_evidence(&db, k, 2.0, 1.0, t).await;
    assert_eq!(
        ingest(&db, report(k, 1, Some(1), t), t).await,
        IngestOutcome::Stored
    );
    let st = db
        .store
        .verification_tick(t + HORIZON - MIN)
        .await
        .expect("tick");
    assert_eq!(st.waiting_purged, 0);
    assert_eq!(waiting_rows(&db, k).await, 1);
    let st = db
        .store
        .verification_tick(t + HORIZON + MIN)
        .await
        .expect("tick");
    assert_eq!(st.waiting_purged, 1);
    assert_eq!(waiting_rows(&db, k).await, 0);
    let t2 = t + HORIZON + 2 * MIN;
    queue_crawl_by_another_report(&db, 3, t2).await;
    crawl_observes(&db, v, 5000, t2 + MIN).await;
    assert_eq!(evidence(&db, k).await, (2.0, 1.0), "judged by nobody");
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "crawl_limit")
    );
}
both!(
    waiting_reports_past_the_horizon_are_purged_unjudged,
    waiting_horizon
);

/// (e) A distrusted key's disagreeing report waits (kept out of the runs)
/// and the next crawl judges it: refuted, one more unit of negative
/// evidence.
async fn waiting_distrusted(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    set_evidence(&db, k, 1.0, 9.0, T0).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    assert_eq!(
        ingest(&db, report(k, 1, Some(4000), t), t).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "distrusted_key")
    );
    assert_eq!(waiting_rows(&db, k).await, 1);
    queue_crawl_by_another_report(&db, 3, t + MIN).await;
    let now = t + 3 * MIN;
    crawl_observes(&db, v, 5000, now).await;
    let (alpha, beta) = evidence(&db, k).await;
    let decayed = 1.0 + 8.0 * (-((now - T0) as f64) / (30.0 * DAY as f64)).exp2();
    assert_eq!(alpha, 1.0);
    assert!((beta - (decayed + 1.0)).abs() < 1e-9, "{beta} vs {decayed}");
    assert_eq!(
        report_state(&db, k, 1).await,
        (backend::store::verify::status::REFUTED, "crawl_refuted")
    );
    assert_eq!(waiting_rows(&db, k).await, 0);
    assert!(runs(&db).await.iter().all(|r| r.1 != Some(4000)));
}
both!(
    a_distrusted_keys_waiting_report_is_judged,
    waiting_distrusted
);

/// (f) A penny price waits while the published value is provisional (a
/// collector's change, 4900, whose crawl found nothing) and the last
/// verified reading is the old price (5000). The next crawl (queued by
/// another report) shows the collector's price: the penny matches neither
/// the verified reading before it nor the crawl after it, so it is
/// severe-refuted. The published provisional value (which the crawl
/// agrees with) is not what it is judged against.
async fn waiting_penny_over_provisional(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    // The collector's change is published; its crawl finds nothing, so it
    // stays published provisional with no crawl pending.
    let t0 = T0 + MIN;
    queue_crawl_by_another_report(&db, 3, t0).await;
    let job = lease_asin(&db, v, t0 + MIN).await;
    let r = db
        .store
        .finish_job(job.id, VerifierOutcome::NotFound, None, t0 + MIN)
        .await
        .expect("finish");
    assert!(
        matches!(
            r,
            ResultApplied::Finished {
                outcome: JobOutcome::NotFound,
                ..
            }
        ),
        "{r:?}"
    );
    let o = offer(&db).await.offer;
    assert_eq!(
        (o.price_minor, o.status),
        (Some(4900), OfferStatus::Provisional)
    );
    assert_eq!(
        o.verified_reading,
        Some((Some(5000), Availability::InStock))
    );
    // The penny from a fresh key over its limit waits, `before` = 5000.
    let t = T0 + 5 * MIN;
    let k = key_over_limit(&db, 20, t).await;
    assert_eq!(
        ingest(&db, report(k, 1, Some(1), t), t).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, k, 1).await,
        (IngestOutcome::Stored.code(), "crawl_limit")
    );
    let (before,): (Option<i64>,) = fetch_row(
        &db,
        "SELECT before_price_minor FROM waiting_reports WHERE key_id = $1",
        k,
        None,
    )
    .await;
    assert_eq!(before, Some(5000), "the last verified reading");
    // Another collector's change queues the next crawl; it reads 4900.
    let other = key(&db, 5, T0 - 90 * DAY).await;
    assert_eq!(
        ingest(&db, report(other, 1, Some(4800), t + MIN), t + MIN).await,
        IngestOutcome::Provisional
    );
    let now = t + 3 * MIN;
    let r = crawl_observes(&db, v, 4900, now).await;
    assert!(matches!(r, ResultApplied::Finished { .. }), "{r:?}");
    // Severe refutation of a new key: beta 1 + 5, distrusted.
    assert_eq!(evidence(&db, k).await, (1.0, 6.0));
    assert_eq!(
        report_state(&db, k, 1).await,
        (backend::store::verify::status::REFUTED, "crawl_refuted")
    );
    assert_eq!(waiting_rows(&db, k).await, 0);
    assert!(runs(&db).await.iter().all(|r| r.1 != Some(1)));
    // The crawl's 4900 is published (status: see (b)) and is the new
    // verified reading; the penny no longer is the lowest price.
    let o = offer(&db).await;
    assert_eq!(o.offer.price_minor, Some(4900));
    assert!(
        matches!(
            o.offer.status,
            OfferStatus::Verified | OfferStatus::Corrected
        ),
        "{o:?}"
    );
    assert_eq!(
        o.offer.verified_reading,
        Some((Some(4900), Availability::InStock))
    );
    assert_eq!(o.lowest.map(|l| l.0), Some(4900));
}
both!(
    a_waiting_penny_is_judged_against_the_last_verified_reading_not_the_published_one,
    waiting_penny_over_provisional
);

/// Failed and not-found crawls judge nobody (the row keeps waiting);
/// erasing the key deletes its rows.
async fn waiting_failed_and_erased(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    let k = key_over_limit(&db, 20, t).await;
    assert_eq!(
        ingest(&db, report(k, 1, Some(1), t), t).await,
        IngestOutcome::Stored
    );
    queue_crawl_by_another_report(&db, 3, t + MIN).await;
    let job = lease_asin(&db, v, t + 2 * MIN).await;
    let r = db
        .store
        .finish_job(job.id, VerifierOutcome::Failed, None, t + 2 * MIN)
        .await
        .expect("finish");
    assert_eq!(r, ResultApplied::Retrying { attempts: 1 });
    assert_eq!(waiting_rows(&db, k).await, 1);
    let job = lease_asin(&db, v, t + 4 * MIN).await;
    let r = db
        .store
        .finish_job(job.id, VerifierOutcome::NotFound, None, t + 4 * MIN)
        .await
        .expect("finish");
    assert!(
        matches!(
            r,
            ResultApplied::Finished {
                outcome: JobOutcome::NotFound,
                ..
            }
        ),
        "{r:?}"
    );
    assert_eq!(waiting_rows(&db, k).await, 1);
    assert_eq!(evidence(&db, k).await, (1.0, 1.0));
    db.store.erase_key(k, t + 5 * MIN).await.expect("erase");
    assert_eq!(waiting_rows(&db, k).await, 0);
}
both!(
    failed_crawls_judge_no_waiting_report_and_erasure_deletes_them,
    waiting_failed_and_erased
);

/// Number of `judge` jobs of the test product (`$1` = its id).
async fn judge_jobs(db: &Db) -> i64 {
    let id = product_id(db).await;
    let (n,): (i64,) = fetch_row(
        db,
        "SELECT CAST(count(*) AS BIGINT) FROM verification_jobs \
         WHERE reason = 'judge' AND product_id = $1",
        id,
        None,
    )
    .await;
    n
}

/// A fresh key over its crawl-trigger limit, as [`key_over_limit`], its
/// open crawl on `other` (one product per key, so that each key's cold
/// start queues its own crawl).
async fn key_over_limit_on(db: &Db, seed: u8, t: i64, other: &str) -> i64 {
    let k = key(db, seed, t - MIN).await;
    let mut r = report(k, 900, Some(1000), t);
    r.asin = other.into();
    assert_eq!(ingest(db, r, t).await, IngestOutcome::Provisional);
    k
}

/// (g) Judge crawls (trust::schedule::judge_crawl_due): a fresh key over
/// its limit with two waiting lies is not worth one (its other product may
/// be crawled first); a fresh key's single waiting lie gets one once it is
/// an hour old, at most one an hour. The crawl judges every waiting report
/// of the series; over 30 minutes after the lies, mildly (a fresh key is
/// distrusted all the same).
async fn judge_crawl(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 5 * MIN;
    let two = key_over_limit_on(&db, 30, t, "B0JUDGE001").await;
    for n in 1..=2 {
        assert_eq!(
            ingest(&db, report(two, n, Some(1), t), t).await,
            IngestOutcome::Stored
        );
    }
    assert_eq!(waiting_rows(&db, two).await, 2);
    let st = db
        .store
        .verification_tick(t + 61 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.judge_queued, 0, "two waiting reports: not eligible");
    assert_eq!(judge_jobs(&db).await, 0);
    let t1 = t + 62 * MIN;
    let one = key_over_limit_on(&db, 31, t1, "B0JUDGE002").await;
    assert_eq!(
        ingest(&db, report(one, 1, Some(2), t1), t1).await,
        IngestOutcome::Stored
    );
    assert_eq!(
        report_state(&db, one, 1).await,
        (IngestOutcome::Stored.code(), "crawl_limit")
    );
    let st = db
        .store
        .verification_tick(t1 + 30 * MIN)
        .await
        .expect("tick");
    assert_eq!(st.judge_queued, 0, "not an hour old yet");
    let due = t1 + 61 * MIN;
    let st = db.store.verification_tick(due).await.expect("tick");
    assert_eq!(st.judge_queued, 1);
    assert_eq!(judge_jobs(&db).await, 1);
    let st = db.store.verification_tick(due + MIN).await.expect("tick");
    assert_eq!(st.judge_queued, 0, "one an hour");
    let job = lease_asin(&db, v, due + 2 * MIN).await;
    assert_eq!(job.reason, "judge");
    let now = due + 3 * MIN;
    db.store
        .finish_job(
            job.id,
            VerifierOutcome::Observed,
            Some(&verified(v, 50, 5000, now)),
            now,
        )
        .await
        .expect("finish");
    // Crawled an hour and more after the lies: mild refutations.
    assert_eq!(evidence(&db, one).await, (1.0, 2.0));
    assert_eq!(evidence(&db, two).await, (1.0, 3.0));
    assert_eq!(waiting_rows(&db, one).await, 0);
    assert_eq!(waiting_rows(&db, two).await, 0);
    assert_eq!(
        report_state(&db, one, 1).await,
        (backend::store::verify::status::REFUTED, "crawl_refuted")
    );
}
both!(
    a_fresh_keys_single_waiting_lie_gets_a_judge_crawl,
    judge_crawl
);

/// (h) A distrusted key's spot check with no fresh verification to answer
/// it (`spot_check_skipped`) queues no crawl; it waits for the product's
/// next crawl, judged against the published reading it agreed with: the
/// crawl shows that price, so the key is credited.
async fn skipped_spot_check_waits(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    let t = T0 + 2 * DAY;
    set_evidence(&db, k, 1.0, 9.0, t).await;
    // Spot checks are drawn (5% on probation): report until one is.
    report_until_two_drawn(&db, k, 5000, t, "spot_check_skipped").await;
    assert_eq!(waiting_rows(&db, k).await, 2);
    assert_eq!(judge_jobs(&db).await, 0);
    let t2 = t + 10 * MIN;
    queue_crawl_by_another_report(&db, 3, t2).await;
    crawl_observes(&db, v, 5000, t2 + 2 * MIN).await;
    let (alpha, _) = evidence(&db, k).await;
    assert!((alpha - 3.0).abs() < 1e-9, "two confirmations: {alpha}");
    assert_eq!(waiting_rows(&db, k).await, 0);
}
both!(
    a_distrusted_keys_skipped_spot_check_waits_for_the_next_crawl,
    skipped_spot_check_waits
);

/// (i) A spot check of a key with no severe refutation inside the
/// half-life, with no fresh verification to answer it and no crawl pending
/// (`spot_check_waiting`), queues no crawl: it waits for the product's next
/// crawl, judged against the published reading it agreed with; the crawl
/// shows that price, so the key is credited.
async fn waiting_spot_check(db: Db) {
    let v = key(&db, 1, T0 - 90 * DAY).await;
    let k = key(&db, 2, T0 - 90 * DAY).await;
    baseline(&db, v, 5000, T0).await;
    // Two days later: the verification is too old to answer spot checks.
    let t = T0 + 2 * DAY;
    // A new key (no evidence, on probation): 5% of its agreeing reports are
    // drawn; report until two are.
    let last = report_until_two_drawn(&db, k, 5000, t, "spot_check_waiting").await;
    assert_eq!(waiting_rows(&db, k).await, 2);
    assert!(
        db.store
            .lease_jobs(v, 10, 60_000, last + 1000)
            .await
            .expect("lease")
            .is_empty(),
        "a waiting spot check queues no crawl"
    );
    assert_eq!(evidence(&db, k).await, (1.0, 1.0), "not credited yet");
    let t2 = last + 10 * MIN;
    queue_crawl_by_another_report(&db, 3, t2).await;
    crawl_observes(&db, v, 5000, t2 + 2 * MIN).await;
    let (alpha, beta) = evidence(&db, k).await;
    assert!((alpha - 3.0).abs() < 1e-9, "two confirmations: {alpha}");
    assert!((beta - 1.0).abs() < 1e-9, "{beta}");
    assert_eq!(waiting_rows(&db, k).await, 0);
}
both!(
    a_clean_keys_spot_check_waits_for_the_next_crawl,
    waiting_spot_check
);
