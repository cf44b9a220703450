//! SQLite implementation of [`Storage`] (the embedded default).
//!
//! Judgement calls:
//! * WAL journal, `synchronous=NORMAL`: a commit is durable against a
//!   process crash (the WAL is written before the commit returns) but the
//!   last commits may be lost on power failure. That is the usual trade for
//!   an embedded server; use PostgreSQL for stronger guarantees.
//! * One writer connection behind an async mutex (SQLite allows one writer
//!   anyway) with `BEGIN IMMEDIATE`, so writers never dead-lock on a lock
//!   upgrade; a small pool of connections serves the reads concurrently.
//! * The writer keeps a cache of product ids (the common ingest path then
//!   needs no product lookup); it is dropped whenever a transaction fails.
//! * Runtime queries only (`sqlx::query`), no compile-time macros.
//! * Ingest's group commits run on a second, synchronous connection
//!   ([`ingest_db`]), on a blocking thread, with cached prepared
//!   statements; everything else writes through sqlx. Both writers are
//!   used only while holding the writer mutex, so they never overlap.

mod checkpoint;
mod deferred;
mod ingest_db;

use super::trust_sqlite as ts;
use super::verify;
use super::{
    code, plan_run_update, HistoryRead, IngestOutcome, KeyActivity, KeyId, KeyRecord, NewReport,
    Offer, OfferStatus, OfferSummary, ProductId, ProductInfo, ProductRef, ProductSummary,
    PurgeStats, Registered, Run, RunPlan, Storage, StorageStats, StoreError, StoreResult,
};
use crate::trust::{self, Reading, ReportStatus, Reporter};
use crate::watch::sqlite as ws;
use crate::watch::{
    AlertRecord, DeliveryChannel, DeliveryState, EvalStats, NewWatch, PendingContact, Watch,
};
use async_trait::async_trait;
use ingest_db::{run_now, IngestDb, SyncDb};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use wasm_core::types::Condition;

/// Above this many entries the product cache is simply cleared.
const PRODUCT_CACHE_MAX: usize = 200_000;
/// Above this many entries the series cache is simply cleared.
const SERIES_CACHE_MAX: usize = 500_000;
/// WAL pages between automatic checkpoints (see `SqliteStore::open`).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;
/// Rows deleted per purge statement.
const PURGE_CHUNK: i64 = 5_000;

#[derive(Debug, Clone)]
struct CachedProduct {
    id: ProductId,
    currency: String,
    title: String,
}

/// In-memory state of the writer (see [`SeriesState`]).
struct Writer {
    products: HashMap<(String, String), CachedProduct>,
    series: HashMap<SeriesKey, SeriesState>,
    /// Outbox events written by the transaction in progress (watches).
    pending_events: u64,
    /// Draws of the trust decisions (OS-seeded; `seed_trust_rng`).
    rng: StdRng,
    /// Drift check: timers per series and the last report id examined.
    drift: HashMap<SeriesKey, trust::DriftTimer>,
    drift_cursor: i64,
    /// Decisions of the transaction in progress (`/metrics`, counted once
    /// it commits).
    decisions: Vec<(&'static str, &'static str)>,
    /// Write-behind of "seen again" refreshes ([`deferred`]).
    deferred: deferred::Deferred,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            products: HashMap::new(),
            series: HashMap::new(),
            pending_events: 0,
            rng: StdRng::from_entropy(),
            drift: HashMap::new(),
            drift_cursor: 0,
            decisions: Vec::new(),
            deferred: deferred::Deferred::default(),
        }
    }
}

struct WriterConn {
    conn: SqliteConnection,
    /// The synchronous connection of ingest's group commits.
    sync: SyncDb,
    caches: Writer,
}

/// The SQLite store. Open with [`SqliteStore::open`].
pub struct SqliteStore {
    read: SqlitePool,
    /// The writer (`None` once closed). Shared so that a group commit on
    /// a blocking thread holds it until it ends, even when the request
    /// that started it is dropped.
    writer: Arc<Mutex<Option<WriterConn>>>,
    /// Ingest batches waiting for the writer (group commit, see
    /// [`Storage::ingest`] below).
    ingest_queue: Arc<std::sync::Mutex<Vec<IngestJob>>>,
    /// Batches announced by [`Storage::ingest_coming`] and not yet done.
    coming: Arc<std::sync::atomic::AtomicUsize>,
    /// Woken after a commit that wrote outbox events (the notifier).
    outbox: Arc<tokio::sync::Notify>,
    /// The background WAL checkpoints (`None` once closed).
    checkpointer: std::sync::Mutex<Option<checkpoint::Checkpointer>>,
}

impl SqliteStore {
    /// The writer, for every path but ingest's group commit: the "seen
    /// again" refreshes that wait ([`deferred`]) are written first, so the
    /// caller reads current rows and no older refresh is written over its
    /// changes later. An error writing them fails the caller (they stay
    /// waiting).
    async fn lock_writer(&self) -> StoreResult<tokio::sync::OwnedMutexGuard<Option<WriterConn>>> {
        let mut guard = self.writer.clone().lock_owned().await;
        let waiting = guard
            .as_ref()
            .is_some_and(|w| w.caches.deferred.committed() > 0);
        if !waiting {
            return Ok(guard);
        }
        let (guard, written) = tokio::task::spawn_blocking(move || {
            let written = guard.as_mut().map_or(Ok(()), write_waiting);
            (guard, written)
        })
        .await
        .map_err(|e| StoreError::Database(format!("writing the waiting refreshes: {e}")))?;
        written.map(|()| guard)
    }
}

/// The file path of a `sqlite://PATH` / `sqlite:PATH` URL (query stripped).
pub fn sqlite_path(url: &str) -> StoreResult<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("not a sqlite URL: {url}")))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Config(
            "the SQLite URL needs a file path (sqlite://PATH)".into(),
        ));
    }
    Ok(PathBuf::from(path))
}

fn closed() -> StoreError {
    StoreError::Database("the store is closed".into())
}

/// One queued ingest batch (see `Storage::ingest` of [`SqliteStore`]).
struct IngestJob {
    reports: Vec<NewReport>,
    now: i64,
    done: tokio::sync::oneshot::Sender<StoreResult<Vec<IngestOutcome>>>,
}

/// A group commit that takes this long is logged at debug level.
const SLOW_GROUP: std::time::Duration = std::time::Duration::from_millis(25);

/// Most reports applied in one group-commit transaction (bounds the
/// latency a batch adds to the others of its group).
const GROUP_MAX_REPORTS: usize = 2_000;

/// The oldest queued batches, up to [`GROUP_MAX_REPORTS`] reports (at
/// least one batch); the rest stay queued for the next writer.
fn take_group(queue: &mut Vec<IngestJob>) -> Vec<IngestJob> {
    let mut total = 0;
    let mut n = 0;
    for job in queue.iter() {
        if n > 0 && total + job.reports.len() > GROUP_MAX_REPORTS {
            break;
        }
        total += job.reports.len();
        n += 1;
    }
    queue.drain(..n).collect()
}

/// Applies a group of queued batches (see `Storage::ingest`) on the
/// synchronous connection, and sends each its result. Runs on a blocking
/// thread. While more ingest is coming (batches waiting in `queue`, or
/// more announced batches in `coming` than this group holds), the group's
/// "seen again" refreshes may wait ([`deferred`]).
fn apply_group(
    w: &mut WriterConn,
    jobs: Vec<IngestJob>,
    outbox: &tokio::sync::Notify,
    queue: &std::sync::Mutex<Vec<IngestJob>>,
    coming: &std::sync::atomic::AtomicUsize,
) {
    let WriterConn { sync, caches, .. } = w;
    let started = std::time::Instant::now();
    let mut applied_at = started;
    caches.deferred.begin_group();
    let grouped = sync.transaction(|sync| {
        let mut outs = Vec::with_capacity(jobs.len());
        for job in &jobs {
            outs.push(run_now(ingest_batch(caches, sync, &job.reports, job.now))?);
        }
        applied_at = std::time::Instant::now();
        let queue_empty = queue.lock().map(|q| q.is_empty()).unwrap_or(true);
        let idle = queue_empty && coming.load(std::sync::atomic::Ordering::Acquire) <= jobs.len();
        let now = jobs.last().map_or(caches.deferred.now, |j| j.now);
        caches.deferred.now = now;
        if caches.deferred.due(idle, applied_at) {
            run_now(write_deferred(caches, sync, now))?;
        }
        Ok(outs)
    });
    match &grouped {
        Ok(_) => caches.deferred.commit(std::time::Instant::now()),
        Err(_) => caches.deferred.rollback(),
    }
    // Where a slow group's time went (the tail of the ingest latency).
    let took = started.elapsed();
    if took >= SLOW_GROUP {
        tracing::debug!(
            batches = jobs.len(),
            reports = jobs.iter().map(|j| j.reports.len()).sum::<usize>(),
            apply_ms = (applied_at - started).as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - (applied_at - started)).as_secs_f64() * 1e3,
            "slow ingest group"
        );
    }
    match grouped {
        Ok(outs) => {
            ingested(caches, outbox);
            for (job, out) in jobs.into_iter().zip(outs) {
                let _ = job.done.send(Ok(out));
            }
        }
        Err(e) => {
            ingest_failed(caches);
            if jobs.len() == 1 {
                if let Some(job) = jobs.into_iter().next() {
                    let _ = job.done.send(Err(e));
                }
            } else {
                for job in jobs {
                    // Alone, refreshes are written at once (deferral off).
                    let alone = sync.transaction(|sync| {
                        run_now(ingest_batch(caches, sync, &job.reports, job.now))
                    });
                    if alone.is_ok() {
                        caches.deferred.commit(std::time::Instant::now());
                        ingested(caches, outbox);
                    } else {
                        caches.deferred.rollback();
                        ingest_failed(caches);
                    }
                    let _ = job.done.send(alone);
                }
            }
        }
    }
}

/// Writes every "seen again" refresh that waits ([`deferred`]), in the
/// transaction in progress.
async fn write_deferred<D: IngestDb>(w: &mut Writer, conn: &mut D, now: i64) -> StoreResult<()> {
    let (mut runs, offers) = w.deferred.take_all();
    conn.flush_runs(&mut runs).await?;
    conn.flush_offers(&offers, now).await
}

/// Writes the committed refreshes that wait ([`deferred`]) in a
/// transaction of their own (see `SqliteStore::lock_writer`).
fn write_waiting(w: &mut WriterConn) -> StoreResult<()> {
    let WriterConn { sync, caches, .. } = w;
    let now = caches.deferred.now;
    let written = sync.transaction(|sync| run_now(write_deferred(caches, sync, now)));
    match written {
        Ok(()) => caches.deferred.commit(std::time::Instant::now()),
        Err(_) => caches.deferred.rollback(),
    }
    written
}

/// After an ingest transaction committed.
fn ingested(caches: &mut Writer, outbox: &tokio::sync::Notify) {
    verify::count_decisions(&caches.decisions);
    if caches.pending_events > 0 {
        outbox.notify_one();
    }
    caches.decisions.clear();
    caches.pending_events = 0;
}

/// After an ingest transaction failed: the caches may hold what it
/// rolled back.
fn ingest_failed(caches: &mut Writer) {
    caches.products.clear();
    caches.series.clear();
    caches.decisions.clear();
    caches.pending_events = 0;
}

impl SqliteStore {
    /// Opens (creating folder and file when missing) and migrates.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let path = sqlite_path(url)?;
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!("cannot create folder {}: {e}", dir.display()))
                })?;
            }
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(e.to_string()))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // 32 MiB of page cache per connection (the default is 2 MB):
            // the audit log's random (key, nonce) index otherwise thrashes
            // it once it holds a few hundred thousand rows.
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory")
            // Checkpoint every 10,000 WAL pages (about 40 MB) instead of
            // the default 1,000: under ingest load every group commit
            // dirties hundreds of random pages (offers, runs, the audit
            // index), so the default checkpointed after nearly every
            // commit, writing each hot page to the database file (and
            // syncing it) again and again. Durability is unchanged: a
            // commit is in the WAL either way.
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
        let mut conn = SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Database(format!("migrations failed: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await?;
        let (sync, checkpointer) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, StoreError>((
                    SyncDb::open(&path)?,
                    checkpoint::Checkpointer::start(&path)?,
                ))
            })
            .await
            .map_err(|e| StoreError::Database(format!("opening the ingest connection: {e}")))??
        };
        Ok(SqliteStore {
            read,
            writer: Arc::new(Mutex::new(Some(WriterConn {
                conn,
                sync,
                caches: Writer::default(),
            }))),
            ingest_queue: Arc::new(std::sync::Mutex::new(Vec::new())),
            coming: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            outbox: Arc::new(tokio::sync::Notify::new()),
            checkpointer: std::sync::Mutex::new(Some(checkpointer)),
        })
    }
}

fn key_from_row(row: &SqliteRow) -> StoreResult<KeyRecord> {
    let pk: Vec<u8> = row.try_get("public_key")?;
    let public_key: [u8; 32] = pk
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Database("stored key is not 32 bytes".into()))?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        public_key,
        registered_at: row.try_get("registered_at")?,
        alpha: row.try_get("alpha")?,
        beta: row.try_get("beta")?,
        blocked: row.try_get::<i64, _>("blocked")? != 0,
        erased_at: row.try_get("erased_at")?,
    })
}

const KEY_COLUMNS: &str = "id, public_key, registered_at, alpha, beta, blocked, erased_at";

fn run_from_row(row: &SqliteRow) -> StoreResult<Run> {
    Ok(Run {
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        price_minor: row.try_get("price_minor")?,
        availability: code::availability_from(row.try_get("availability")?),
        n: row.try_get("n")?,
    })
}

/// Offer columns (`offer_from_row` reads them).
const OFFER_COLS: &str = "price_minor, availability, seller, observed_at, status, \
    last_verified_at, verified_low, verified_low_at, alert_price_minor, alert_availability, \
    verified_price_minor, verified_availability";

fn offer_from_row(row: &SqliteRow) -> StoreResult<Offer> {
    let low: Option<i64> = row.try_get("verified_low")?;
    let low_at: Option<i64> = row.try_get("verified_low_at")?;
    let alert_avail: Option<i64> = row.try_get("alert_availability")?;
    let verified_avail: Option<i64> = row.try_get("verified_availability")?;
    Ok(Offer {
        price_minor: row.try_get("price_minor")?,
        availability: code::availability_from(row.try_get("availability")?),
        seller: code::seller_from(row.try_get("seller")?),
        observed_at: row.try_get("observed_at")?,
        status: OfferStatus::from_code(row.try_get("status")?),
        last_verified_at: row.try_get("last_verified_at")?,
        verified_low: low.zip(low_at),
        alerted: match alert_avail {
            Some(a) => Some((
                row.try_get("alert_price_minor")?,
                code::availability_from(a),
            )),
            None => None,
        },
        verified_reading: match verified_avail {
            Some(a) => Some((
                row.try_get("verified_price_minor")?,
                code::availability_from(a),
            )),
            None => None,
        },
    })
}

/// Finds or creates the product of `r` through the writer's cache.
async fn product_for<D: IngestDb>(
    db: &mut D,
    cache: &mut HashMap<(String, String), CachedProduct>,
    r: &NewReport,
    now: i64,
) -> StoreResult<CachedProduct> {
    let key = (r.marketplace.clone(), r.asin.clone());
    if let Some(p) = cache.get(&key) {
        return Ok(p.clone());
    }
    let p = db.find_or_create_product(r, now).await?;
    if cache.len() >= PRODUCT_CACHE_MAX {
        cache.clear();
    }
    cache.insert(key, p.clone());
    Ok(p)
}

/// Finds or creates the product of `r` (sqlx; no cache).
async fn find_or_create_product(
    conn: &mut SqliteConnection,
    r: &NewReport,
    now: i64,
) -> StoreResult<CachedProduct> {
    let row = sqlx::query(
        "SELECT id, currency, title FROM products WHERE marketplace = ?1 AND asin = ?2",
    )
    .bind(&r.marketplace)
    .bind(&r.asin)
    .fetch_optional(&mut *conn)
    .await?;
    let p = match row {
        Some(row) => CachedProduct {
            id: row.try_get("id")?,
            currency: row.try_get("currency")?,
            title: row.try_get("title")?,
        },
        None => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO products (marketplace, asin, title, currency, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )
            .bind(&r.marketplace)
            .bind(&r.asin)
            .bind(&r.title)
            .bind(&r.currency)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            CachedProduct {
                id,
                currency: r.currency.clone(),
                title: r.title.clone(),
            }
        }
    };
    Ok(p)
}

async fn neighbours(
    conn: &mut SqliteConnection,
    product: ProductId,
    cond: i64,
    t: i64,
) -> StoreResult<(Option<Run>, Option<Run>)> {
    let rows = sqlx::query(
        "SELECT * FROM (SELECT 0 AS side, first_seen, last_seen, price_minor, availability, n \
           FROM history_runs WHERE product_id = ?1 AND condition = ?2 AND first_seen <= ?3 \
           ORDER BY first_seen DESC LIMIT 1) \
         UNION ALL \
         SELECT * FROM (SELECT 1 AS side, first_seen, last_seen, price_minor, availability, n \
           FROM history_runs WHERE product_id = ?1 AND condition = ?2 AND first_seen > ?3 \
           ORDER BY first_seen ASC LIMIT 1)",
    )
    .bind(product)
    .bind(cond)
    .bind(t)
    .fetch_all(&mut *conn)
    .await?;
    let (mut prev, mut next) = (None, None);
    for row in &rows {
        let side: i64 = row.try_get("side")?;
        let run = run_from_row(row)?;
        if side == 0 {
            prev = Some(run);
        } else {
            next = Some(run);
        }
    }
    Ok((prev, next))
}

/// Applies one observation to the history runs (see [`RunPlan`]).
async fn update_runs(
    conn: &mut SqliteConnection,
    product: ProductId,
    cond: i64,
    r: &NewReport,
) -> StoreResult<()> {
    let t = r.observed_at;
    let avail = code::availability(r.availability);
    let (prev, next) = neighbours(conn, product, cond, t).await?;
    let mut plan = plan_run_update(
        prev.as_ref(),
        next.as_ref(),
        t,
        r.price_minor,
        r.availability,
    );
    let upd = |sql: &'static str| sqlx::query(sql).bind(product).bind(cond);
    if plan == RunPlan::Split {
        // Unwrap-free: Split is only planned with a prev run.
        if let Some(p) = prev {
            let pavail = code::availability(p.availability);
            // Held (5) and refuted (6) audit rows are not in the runs
            // (`store::verify::status`).
            let right = sqlx::query(
                "SELECT count(*) AS k, min(observed_at) AS first FROM reports \
                 WHERE product_id = ?1 AND condition = ?2 AND observed_at > ?3 \
                   AND observed_at <= ?4 AND price_minor IS ?5 AND availability = ?6 \
                   AND status NOT IN (5, 6)",
            )
            .bind(product)
            .bind(cond)
            .bind(t)
            .bind(p.last_seen)
            .bind(p.price_minor)
            .bind(pavail)
            .fetch_one(&mut *conn)
            .await?;
            let k: i64 = right.try_get("k")?;
            let right_first: Option<i64> = right.try_get("first")?;
            match right_first {
                Some(right_first) if k > 0 => {
                    let left_last: Option<i64> = sqlx::query_scalar(
                        "SELECT max(observed_at) FROM reports \
                         WHERE product_id = ?1 AND condition = ?2 AND observed_at >= ?3 \
                           AND observed_at <= ?4 AND price_minor IS ?5 AND availability = ?6 \
                   AND status NOT IN (5, 6)",
                    )
                    .bind(product)
                    .bind(cond)
                    .bind(p.first_seen)
                    .bind(t)
                    .bind(p.price_minor)
                    .bind(pavail)
                    .fetch_one(&mut *conn)
                    .await?;
                    let left_last = left_last.unwrap_or(p.first_seen).max(p.first_seen);
                    let left_n = (p.n - k).max(1);
                    upd("UPDATE history_runs SET last_seen = ?3, n = ?4 \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?5")
                    .bind(left_last)
                    .bind(left_n)
                    .bind(p.first_seen)
                    .execute(&mut *conn)
                    .await?;
                    upd("INSERT INTO history_runs \
                         (product_id, condition, first_seen, last_seen, price_minor, availability, n) \
                         VALUES (?1, ?2, ?3, ?3, ?4, ?5, 1)")
                    .bind(t)
                    .bind(r.price_minor)
                    .bind(avail)
                    .execute(&mut *conn)
                    .await?;
                    upd("INSERT INTO history_runs \
                         (product_id, condition, first_seen, last_seen, price_minor, availability, n) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                    .bind(right_first)
                    .bind(p.last_seen)
                    .bind(p.price_minor)
                    .bind(pavail)
                    .bind(k)
                    .execute(&mut *conn)
                    .await?;
                    return Ok(());
                }
                _ => plan = RunPlan::Count,
            }
        }
    }
    match (plan, prev, next) {
        (RunPlan::Count, Some(p), _) => {
            upd("UPDATE history_runs SET n = n + 1 \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?3")
            .bind(p.first_seen)
            .execute(&mut *conn)
            .await?;
        }
        (RunPlan::ExtendPrev, Some(p), _) => {
            upd("UPDATE history_runs SET last_seen = ?3, n = n + 1 \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?4")
            .bind(t)
            .bind(p.first_seen)
            .execute(&mut *conn)
            .await?;
        }
        (RunPlan::MergeAll, Some(p), Some(nx)) => {
            upd("DELETE FROM history_runs \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?3")
            .bind(nx.first_seen)
            .execute(&mut *conn)
            .await?;
            upd("UPDATE history_runs SET last_seen = ?3, n = n + ?4 \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?5")
            .bind(nx.last_seen)
            .bind(nx.n + 1)
            .bind(p.first_seen)
            .execute(&mut *conn)
            .await?;
        }
        (RunPlan::ExtendNext, _, Some(nx)) => {
            upd("UPDATE history_runs SET first_seen = ?3, n = n + 1 \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?4")
            .bind(t)
            .bind(nx.first_seen)
            .execute(&mut *conn)
            .await?;
        }
        _ => {
            upd("INSERT INTO history_runs \
                 (product_id, condition, first_seen, last_seen, price_minor, availability, n) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, 1)")
            .bind(t)
            .bind(r.price_minor)
            .bind(avail)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Cached state of one series `(product, condition)` in the writer: the
/// latest run and the published offer. Only the writer changes either, so
/// the cache stays exact; it is dropped whenever a transaction fails.
#[derive(Debug, Clone, Default)]
struct SeriesState {
    tail: Option<Run>,
    offer: Option<Offer>,
    /// The open verification job of the series (trust issue).
    open_job: Option<i64>,
}

type SeriesKey = (ProductId, i64);

async fn load_series(
    conn: &mut SqliteConnection,
    product: ProductId,
    cond: i64,
) -> StoreResult<SeriesState> {
    let tail = sqlx::query(
        "SELECT first_seen, last_seen, price_minor, availability, n FROM history_runs \
         WHERE product_id = ?1 AND condition = ?2 ORDER BY first_seen DESC LIMIT 1",
    )
    .bind(product)
    .bind(cond)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| run_from_row(&row))
    .transpose()?;
    let offer = sqlx::query(&format!(
        "SELECT {OFFER_COLS} FROM offers WHERE product_id = ?1 AND condition = ?2"
    ))
    .bind(product)
    .bind(cond)
    .fetch_optional(&mut *conn)
    .await?
    .map(|row| offer_from_row(&row))
    .transpose()?;
    let open_job = ts::open_job(conn, product, cond).await?;
    Ok(SeriesState {
        tail,
        offer,
        open_job,
    })
}

/// An audit row waiting for the next multi-row insert.
struct AuditRow<'a> {
    r: &'a NewReport,
    product: ProductId,
    cond: i64,
    status: i64,
    /// Decision reason code (`store::verify::reason`).
    reason: i64,
}

/// Rows per multi-row statement (SQLite allows 32,766 bound values).
const ROWS_PER_STATEMENT: usize = 400;

async fn flush_audit(
    conn: &mut SqliteConnection,
    rows: &mut Vec<AuditRow<'_>>,
    now: i64,
) -> StoreResult<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO reports (key_id, nonce, product_id, condition, observed_at, received_at, \
               price_minor, availability, status, net_hash, raw, reason) ",
        );
        qb.push_values(chunk, |mut b, a| {
            b.push_bind(a.r.key_id)
                .push_bind(a.r.nonce.to_vec())
                .push_bind(a.product)
                .push_bind(a.cond)
                .push_bind(a.r.observed_at)
                .push_bind(now)
                .push_bind(a.r.price_minor)
                .push_bind(code::availability(a.r.availability))
                .push_bind(a.status)
                .push_bind(a.r.net_hash.map(|h| h.to_vec()))
                .push_bind(a.r.raw.as_str())
                .push_bind(a.reason);
        });
        qb.build().execute(&mut *conn).await?;
    }
    rows.clear();
    Ok(())
}

async fn flush_runs(
    conn: &mut SqliteConnection,
    runs: &mut BTreeMap<(ProductId, i64, i64), Run>,
) -> StoreResult<()> {
    let all: Vec<(&(ProductId, i64, i64), &Run)> = runs.iter().collect();
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO history_runs (product_id, condition, first_seen, last_seen, price_minor, \
               availability, n) ",
        );
        qb.push_values(chunk, |mut b, ((product, cond, _), run)| {
            b.push_bind(*product)
                .push_bind(*cond)
                .push_bind(run.first_seen)
                .push_bind(run.last_seen)
                .push_bind(run.price_minor)
                .push_bind(code::availability(run.availability))
                .push_bind(run.n);
        });
        qb.push(
            " ON CONFLICT (product_id, condition, first_seen) DO UPDATE SET \
               last_seen = excluded.last_seen, price_minor = excluded.price_minor, \
               availability = excluded.availability, n = excluded.n",
        );
        qb.build().execute(&mut *conn).await?;
    }
    runs.clear();
    Ok(())
}

async fn flush_offers(
    conn: &mut SqliteConnection,
    offers: &BTreeMap<SeriesKey, Offer>,
    now: i64,
) -> StoreResult<()> {
    let all: Vec<(&SeriesKey, &Offer)> = offers.iter().collect();
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO offers (product_id, condition, price_minor, availability, seller, \
               observed_at, status, last_verified_at, updated_at, verified_low, verified_low_at, \
               alert_price_minor, alert_availability, verified_price_minor, \
               verified_availability) ",
        );
        qb.push_values(chunk, |mut b, ((product, cond), o)| {
            b.push_bind(*product)
                .push_bind(*cond)
                .push_bind(o.price_minor)
                .push_bind(code::availability(o.availability))
                .push_bind(code::seller(o.seller))
                .push_bind(o.observed_at)
                .push_bind(o.status as i64)
                .push_bind(o.last_verified_at)
                .push_bind(now)
                .push_bind(o.verified_low.map(|l| l.0))
                .push_bind(o.verified_low.map(|l| l.1))
                .push_bind(o.alerted.and_then(|a| a.0))
                .push_bind(o.alerted.map(|a| code::availability(a.1)))
                .push_bind(o.verified_reading.and_then(|v| v.0))
                .push_bind(o.verified_reading.map(|v| code::availability(v.1)));
        });
        qb.push(
            " ON CONFLICT (product_id, condition) DO UPDATE SET \
               price_minor = excluded.price_minor, availability = excluded.availability, \
               seller = excluded.seller, observed_at = excluded.observed_at, \
               status = excluded.status, last_verified_at = excluded.last_verified_at, \
               updated_at = excluded.updated_at, verified_low = excluded.verified_low, \
               verified_low_at = excluded.verified_low_at, \
               alert_price_minor = excluded.alert_price_minor, \
               alert_availability = excluded.alert_availability, \
               verified_price_minor = excluded.verified_price_minor, \
               verified_availability = excluded.verified_availability",
        );
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// `(key_id, nonce)` pairs of `reports` that are already stored.
async fn stored_pairs(
    conn: &mut SqliteConnection,
    reports: &[NewReport],
) -> StoreResult<HashSet<(KeyId, [u8; 16])>> {
    let mut by_key: BTreeMap<KeyId, Vec<[u8; 16]>> = BTreeMap::new();
    for r in reports {
        by_key.entry(r.key_id).or_default().push(r.nonce);
    }
    let mut out = HashSet::new();
    for (key_id, nonces) in by_key {
        for chunk in nonces.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT nonce FROM reports WHERE key_id = ",
            );
            qb.push_bind(key_id).push(" AND nonce IN (");
            let mut sep = qb.separated(", ");
            for n in chunk {
                sep.push_bind(n.to_vec());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *conn).await? {
                let n: Vec<u8> = row.try_get(0)?;
                if let Ok(n) = <[u8; 16]>::try_from(n.as_slice()) {
                    out.insert((key_id, n));
                }
            }
        }
    }
    Ok(out)
}

/// One batch in the open transaction. The common case (an observation at
/// or after the start of its series' latest run) is applied to the cached
/// tail in memory and written once per batch with multi-row statements;
/// anything else (a late observation before the latest run) flushes what is
/// pending and takes the general SQL path of [`update_runs`].
///
/// Generic over the connection ([`IngestDb`]): `Storage::ingest` runs it
/// on the synchronous connection, `finish_job` on sqlx's.
async fn ingest_batch<D: IngestDb>(
    w: &mut Writer,
    conn: &mut D,
    reports: &[NewReport],
    now: i64,
) -> StoreResult<Vec<IngestOutcome>> {
    let mut seen = conn.stored_pairs(reports).await?;
    let mut key_ids: Vec<KeyId> = reports.iter().map(|r| r.key_id).collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    let mut reporters = conn.load_reporters(&key_ids).await?;
    let mut audit: Vec<AuditRow<'_>> = Vec::with_capacity(reports.len());
    let mut links: Vec<ts::Link> = Vec::new();
    let mut dirty_runs: BTreeMap<(ProductId, i64, i64), Run> = BTreeMap::new();
    let mut dirty_offers: BTreeMap<SeriesKey, Offer> = BTreeMap::new();
    // The value the watch outbox saw before this batch, and the alertable
    // value it moved to (only decisions with `alert` move it).
    let mut before: BTreeMap<SeriesKey, Option<Offer>> = BTreeMap::new();
    let mut alerted: BTreeMap<SeriesKey, Offer> = BTreeMap::new();
    let mut out = Vec::with_capacity(reports.len());
    for r in reports {
        let product = product_for(conn, &mut w.products, r, now).await?;
        if product.currency != r.currency {
            out.push(IngestOutcome::CurrencyMismatch);
            continue;
        }
        if !seen.insert((r.key_id, r.nonce)) {
            out.push(IngestOutcome::Duplicate);
            continue;
        }
        let cond = code::condition(r.condition);
        let key = (product.id, cond);
        if !w.series.contains_key(&key) {
            if w.series.len() >= SERIES_CACHE_MAX {
                // Write what is pending first: a series reloaded after the
                // clear must find its latest state in the database.
                conn.flush_audit(&mut audit, now).await?;
                conn.flush_links(&mut links).await?;
                conn.flush_runs(&mut dirty_runs).await?;
                conn.flush_offers(&dirty_offers, now).await?;
                write_deferred(w, conn, now).await?;
                w.pending_events += conn.flush_outbox(&mut before, &alerted, now).await?;
                dirty_offers.clear();
                alerted.clear();
                w.series.clear();
            }
            let mut st = conn.load_series(product.id, cond).await?;
            w.deferred.overlay(key, &mut st);
            w.series.insert(key, st);
        }
        let (current, open_job) = match w.series.get(&key) {
            Some(st) => (st.offer.clone(), st.open_job),
            None => return Err(StoreError::Database("series cache lost an entry".into())),
        };
        let v = trust_decision(
            conn,
            &mut w.rng,
            &reporters,
            current.as_ref(),
            open_job,
            key,
            r,
            now,
            &mut audit,
        )
        .await?;
        let d = v.decision;
        w.decisions.push((d.status.as_str(), d.reason));
        let (status, outcome) = match d.status {
            ReportStatus::Accepted => (IngestOutcome::Accepted.code(), IngestOutcome::Accepted),
            ReportStatus::Stored => (IngestOutcome::Stored.code(), IngestOutcome::Stored),
            ReportStatus::Provisional => (
                IngestOutcome::Provisional.code(),
                IngestOutcome::Provisional,
            ),
            ReportStatus::Held => (IngestOutcome::Held.code(), IngestOutcome::Held),
        };
        audit.push(AuditRow {
            r,
            product: product.id,
            cond,
            status,
            reason: verify::reason::code(d.reason),
        });
        let touches_offer = d.publish.is_some() || d.refresh_last_seen;
        if !r.title.is_empty() && r.title != product.title && touches_offer {
            conn.set_title(product.id, &r.title).await?;
            if let Some(p) = w.products.get_mut(&(r.marketplace.clone(), r.asin.clone())) {
                p.title = r.title.clone();
            }
        }
        if verify::enters_history(&d) {
            let Some(st) = w.series.get_mut(&key) else {
                return Err(StoreError::Database("series cache lost an entry".into()));
            };
            let t = r.observed_at;
            let fast = match st.tail {
                None => true,
                Some(tail) => t >= tail.first_seen,
            };
            let plan = plan_run_update(st.tail.as_ref(), None, t, r.price_minor, r.availability);
            if fast && plan != RunPlan::Split {
                // "Seen again": the cached tail run, already in the database.
                let refresh = matches!(
                    (plan, st.tail),
                    (RunPlan::Count | RunPlan::ExtendPrev, Some(_))
                );
                let run = match (plan, st.tail) {
                    (RunPlan::Count, Some(mut tail)) => {
                        tail.n += 1;
                        tail
                    }
                    (RunPlan::ExtendPrev, Some(mut tail)) => {
                        tail.last_seen = t;
                        tail.n += 1;
                        tail
                    }
                    _ => Run {
                        first_seen: t,
                        last_seen: t,
                        price_minor: r.price_minor,
                        availability: r.availability,
                        n: 1,
                    },
                };
                st.tail = Some(run);
                let rk = (product.id, cond, run.first_seen);
                if refresh && w.deferred.on && !dirty_runs.contains_key(&rk) {
                    w.deferred.put_run(rk, run);
                } else {
                    w.deferred.wrote_run(rk);
                    dirty_runs.insert(rk, run);
                }
            } else {
                // General path: make the database current, then update in SQL.
                conn.flush_audit(&mut audit, now).await?;
                conn.flush_runs(&mut dirty_runs).await?;
                write_deferred(w, conn, now).await?;
                conn.update_runs(product.id, cond, r).await?;
                let fresh = conn.load_series(product.id, cond).await?;
                if let Some(st) = w.series.get_mut(&key) {
                    st.tail = fresh.tail;
                }
            }
        }
        if touches_offer {
            let next = verify::next_offer(current.as_ref(), r, &d);
            if d.alert {
                before
                    .entry(key)
                    .or_insert_with(|| current.as_ref().and_then(verify::alert_view));
                if let Some(a) = verify::alert_view(&next) {
                    alerted.insert(key, a);
                }
            }
            if let Some(st) = w.series.get_mut(&key) {
                st.offer = Some(next.clone());
            }
            // Rule 1's refresh (nothing published) may wait ([`deferred`]).
            let refresh = d.publish.is_none() && !d.alert;
            if refresh && w.deferred.on && !dirty_offers.contains_key(&key) {
                w.deferred.put_offer(key, next);
            } else {
                w.deferred.wrote_offer(key);
                dirty_offers.insert(key, next);
            }
        }
        let mut job = open_job;
        if let (Some(req), None) = (d.crawl, job) {
            let trigger = (!r.trusted).then_some(r.key_id);
            let id = conn.queue_job(product.id, cond, &req, trigger, now).await?;
            job = Some(id);
            if let Some(st) = w.series.get_mut(&key) {
                st.open_job = Some(id);
            }
        }
        if let (Some(req), Some(job)) = (d.escalate, open_job) {
            conn.escalate(job, &req).await?;
        }
        if let (true, Some(job)) = (d.attach, job) {
            links.push(ts::Link {
                job,
                key_id: r.key_id,
                nonce: r.nonce,
                received_at: now,
                observed_at: r.observed_at,
                reading: Reading {
                    price: r.price_minor,
                    availability: r.availability,
                },
                held: d.status == ReportStatus::Held,
                alerts: v.alerts,
                agreed_verified: v.agreed_verified,
            });
        }
        // Stored only, no crawl of its own: waits for the series' next crawl.
        if verify::waits(&d) {
            let row = verify::Waiting::of(r, &d, current.as_ref(), v.alerts, now);
            conn.insert_waiting(product.id, cond, &row).await?;
        }
        if let Some(j) = d.credit {
            if let Some(k) = reporters.get_mut(&r.key_id) {
                k.rep.apply(j, now);
                conn.save_reputation(r.key_id, &k.rep).await?;
            }
        }
        out.push(outcome);
    }
    conn.flush_audit(&mut audit, now).await?;
    conn.flush_links(&mut links).await?;
    conn.flush_runs(&mut dirty_runs).await?;
    conn.flush_offers(&dirty_offers, now).await?;
    w.pending_events += conn.flush_outbox(&mut before, &alerted, now).await?;
    Ok(out)
}

/// A trust decision and the facts the store keeps with its link.
pub(crate) struct Verdict {
    pub decision: trust::Decision,
    pub alerts: u32,
    pub agreed_verified: bool,
}

/// Builds the [`trust::ReportContext`] of one report and decides. The
/// costly facts (`A`, corroboration, the crawl-trigger count) are read
/// only when the decision can depend on them: not for reports that are
/// too old, from a verifier, matching a published value that is not
/// provisional, older than the published one, from a distrusted key, or
/// with a crawl pending. That keeps the common case (a report agreeing
/// with the published price) free of extra queries.
#[allow(clippy::too_many_arguments)]
async fn trust_decision<D: IngestDb>(
    conn: &mut D,
    rng: &mut StdRng,
    reporters: &HashMap<KeyId, verify::KeyRep>,
    current: Option<&Offer>,
    open_job: Option<i64>,
    key: SeriesKey,
    r: &NewReport,
    now: i64,
    audit: &mut Vec<AuditRow<'_>>,
) -> StoreResult<Verdict> {
    let reading = Reading {
        price: r.price_minor,
        availability: r.availability,
    };
    let published = current.map(verify::published_of);
    let kr = reporters
        .get(&r.key_id)
        .copied()
        .unwrap_or_else(|| verify::KeyRep::unknown(now));
    let mut reporter = Reporter::from_reputation(&kr.rep, now, kr.registered_at, true);
    reporter.verifier = r.trusted;
    let too_old = now - r.observed_at > trust::MAX_PUBLISH_AGE_MS;
    let matches = published.is_some_and(|p| reading.matches(&p.reading));
    let older = published.is_some_and(|p| r.observed_at < p.observed_at);
    let needs_facts = !too_old
        && !r.trusted
        && if matches {
            published.is_some_and(|p| p.status == OfferStatus::Provisional) && reporter.established
        } else {
            !older && !reporter.distrusted && open_job.is_none()
        };
    let (mut alerts, mut c, mut groups) = (0, 0.0, 0);
    if needs_facts {
        alerts = conn
            .alerts_for(
                key.0,
                key.1,
                reading,
                current.and_then(|o| o.alerted.map(|a| a.1)),
            )
            .await?;
        // This batch's earlier reports count too: write them first.
        conn.flush_audit(audit, now).await?;
        let recent = conn.recent_reports(key.0, key.1, now).await?;
        let mut set: Vec<(trust::GroupId, f64)> = recent
            .iter()
            .filter(|x| x.3.matches(&reading))
            .map(|x| (x.1, x.2))
            .collect();
        set.push((kr.group(r.key_id), reporter.trust));
        c = trust::corroboration(&set);
        groups = trust::groups::established_groups(&set);
        if !reporter.established && !matches {
            reporter.within_crawl_limit = conn.within_crawl_limit(r.key_id, &kr, now).await?;
        }
    }
    let ctx = trust::ReportContext {
        now,
        observed_at: r.observed_at,
        reported: reading,
        published,
        verified_low: current.and_then(|o| o.verified_low.map(|l| l.0)),
        reporter,
        alerts,
        crawl_pending: open_job.is_some(),
        corroboration: c,
        corroborating_groups: groups,
        spot_draw: rng.gen::<f64>(),
        crawl_draw: rng.gen::<f64>(),
    };
    Ok(Verdict {
        decision: trust::decide(&ctx),
        alerts,
        agreed_verified: matches && published.is_some_and(|p| p.status == OfferStatus::Verified),
    })
}

/// The series state of `key`, loaded into the writer's cache when missing.
async fn series_state(
    w: &mut Writer,
    conn: &mut SqliteConnection,
    key: SeriesKey,
) -> StoreResult<SeriesState> {
    if let Some(st) = w.series.get(&key) {
        return Ok(st.clone());
    }
    let st = load_series(conn, key.0, key.1).await?;
    if w.series.len() < SERIES_CACHE_MAX {
        w.series.insert(key, st.clone());
    }
    Ok(st)
}

/// A report carrying a linked observation (only the fields the run update
/// reads are meaningful).
fn link_report(l: &ts::Link) -> NewReport {
    NewReport {
        key_id: l.key_id,
        nonce: l.nonce,
        marketplace: String::new(),
        asin: String::new(),
        condition: Condition::New,
        price_minor: l.reading.price,
        currency: String::new(),
        availability: l.reading.availability,
        seller: wasm_core::types::Seller::Unknown,
        title: String::new(),
        observed_at: l.observed_at,
        trusted: false,
        net_hash: None,
        raw: String::new(),
    }
}

/// Applies a verifier's result in the open transaction (see
/// `Storage::finish_job` and `store::verify`).
async fn finish_in_tx(
    w: &mut Writer,
    conn: &mut SqliteConnection,
    id: i64,
    outcome: verify::VerifierOutcome,
    observation: Option<&NewReport>,
    now: i64,
) -> StoreResult<verify::ResultApplied> {
    use verify::{JobOutcome, JobState, ResultApplied, VerifierOutcome};
    let Some(job) = ts::job_row(conn, id).await? else {
        return Ok(ResultApplied::Unknown);
    };
    if job.state == JobState::Finished {
        return Ok(ResultApplied::AlreadyFinished);
    }
    let key = (job.product, job.cond);
    let condition = ts::cond_from(job.cond)?;
    let st = series_state(w, conn, key).await?;
    let links = ts::links_of(conn, id).await?;
    let crawl = match (outcome, observation) {
        (VerifierOutcome::Observed, Some(o)) => trust::CrawlOutcome::Observed(Reading {
            price: o.price_minor,
            availability: o.availability,
        }),
        (VerifierOutcome::Observed, None) => {
            return Err(StoreError::Conflict(
                "an observed result needs the observation".into(),
            ))
        }
        (VerifierOutcome::NotFound, _) => trust::CrawlOutcome::NotFound,
        (VerifierOutcome::Captcha, _) => trust::CrawlOutcome::Captcha,
        (VerifierOutcome::Blocked, _) => trust::CrawlOutcome::Blocked,
        (VerifierOutcome::Failed, _) => trust::CrawlOutcome::Failed,
    };
    let attached: Vec<trust::AttachedReport> = links
        .iter()
        .map(|l| trust::AttachedReport {
            reading: l.reading,
            observed_at: l.observed_at,
            alerts: l.alerts,
            agreed_with_verified: l.agreed_verified,
            backed_published: !l.held && !l.agreed_verified,
        })
        .collect();
    let attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
    let res = trust::resolve(
        &trust::CrawlResult {
            outcome: crawl,
            now,
            enqueued_at: job.enqueued_at,
            attempts,
            published: st.offer.as_ref().map(verify::published_of),
        },
        &attached,
    );
    let latency_ms = now - job.enqueued_at;
    let refuted = match res.kind {
        trust::ResolutionKind::Retry { at } => {
            ts::retry_job(conn, id, at).await?;
            return Ok(ResultApplied::Retrying {
                attempts: job.attempts + 1,
            });
        }
        trust::ResolutionKind::GiveUp { holds_expire_at } => {
            if holds_expire_at > now {
                ts::hold_job(conn, id, holds_expire_at).await?;
                return Ok(ResultApplied::Retrying {
                    attempts: job.attempts + 1,
                });
            }
            let (why, end) = if outcome == VerifierOutcome::NotFound {
                ("not_found", JobOutcome::NotFound)
            } else {
                ("hold_expired", JobOutcome::Failed)
            };
            ts::release_holds(conn, &links, why).await?;
            ts::close_job(conn, id, end, None, now).await?;
            if let Some(st) = w.series.get_mut(&key) {
                st.open_job = None;
            }
            return Ok(ResultApplied::Finished {
                outcome: end,
                latency_ms,
                corrections: 0,
                correction_alerts: 0,
            });
        }
        trust::ResolutionKind::Refuted => true,
        trust::ResolutionKind::Confirmed => false,
    };
    // The job closes first, so the observation is not decided against it.
    let verified_price = observation.and_then(|o| o.price_minor);
    let end = if refuted {
        JobOutcome::Refuted
    } else {
        JobOutcome::Confirmed
    };
    ts::close_job(conn, id, end, verified_price, now).await?;
    if let Some(st) = w.series.get_mut(&key) {
        st.open_job = None;
    }
    // The verified reading is published like any trusted report (and
    // through the outbox: that releases the held alerts).
    if let Some(o) = observation {
        ingest_batch(w, conn, std::slice::from_ref(o), now).await?;
    }
    // The series' waiting reports are judged by this crawl too (below).
    let waiting = match crawl {
        trust::CrawlOutcome::Observed(_) => ts::take_waiting(conn, job.product, job.cond).await?,
        _ => Vec::new(),
    };
    // Judge the attached reports.
    let mut ids: Vec<KeyId> = links.iter().map(|l| l.key_id).collect();
    ids.extend(waiting.iter().map(|w| w.key_id));
    ids.sort_unstable();
    ids.dedup();
    let mut reps = ts::load_reporters(conn, &ids).await?;
    let mut refuted_prices: Vec<Option<i64>> = Vec::new();
    for (l, j) in links.iter().zip(&res.judgements) {
        if let Some(k) = reps.get_mut(&l.key_id) {
            k.rep.apply(*j, now);
        }
        match j {
            trust::Judgement::Confirmed | trust::Judgement::NoEvidence => {
                if l.held {
                    let (code, why) = if *j == trust::Judgement::Confirmed {
                        (verify::status::CONFIRMED, "crawl_confirmed")
                    } else {
                        (IngestOutcome::Stored.code(), "crawl_no_evidence")
                    };
                    ts::set_report_status(conn, l, code, why).await?;
                    update_runs(conn, job.product, job.cond, &link_report(l)).await?;
                }
            }
            trust::Judgement::Refuted | trust::Judgement::SevereRefuted => {
                ts::set_report_status(conn, l, verify::status::REFUTED, "crawl_refuted").await?;
                if !l.held {
                    ts::remove_observation(conn, job.product, job.cond, l.observed_at, l.reading)
                        .await?;
                }
                if !refuted_prices.contains(&l.reading.price) {
                    refuted_prices.push(l.reading.price);
                }
            }
        }
    }
    if let trust::CrawlOutcome::Observed(crawled) = crawl {
        ts::judge_waiting(
            conn,
            job.product,
            job.cond,
            &waiting,
            &crawled,
            &mut reps,
            now,
        )
        .await?;
    }
    for k in &ids {
        if let Some(rep) = reps.get(k) {
            ts::save_reputation(conn, *k, &rep.rep).await?;
        }
    }
    let mut corrections = 0;
    let mut correction_alerts = 0;
    if let Some(c) = res.correction {
        if !refuted_prices.contains(&Some(c.refuted_price)) {
            refuted_prices.push(Some(c.refuted_price));
        }
        // The reports that published or corroborated the refuted value
        // leave history with it (`store::verify`'s module docs).
        ts::refute_published(
            conn,
            job.product,
            job.cond,
            c.refuted_price,
            now.saturating_sub(trust::outcome::STALE_REPORT_MS),
            now,
        )
        .await?;
        correction_alerts = ws::correct_published_price(
            conn,
            job.product,
            condition,
            c.refuted_price,
            c.corrected_price,
            c.since,
            now,
        )
        .await?
        .len();
        // The summary says the value was corrected until it next changes.
        if let Some(st) = w.series.get_mut(&key) {
            if let Some(o) = st.offer.as_mut() {
                if o.status == OfferStatus::Verified {
                    o.status = OfferStatus::Corrected;
                    sqlx::query(
                        "UPDATE offers SET status = ?1 WHERE product_id = ?2 AND condition = ?3",
                    )
                    .bind(OfferStatus::Corrected as i64)
                    .bind(job.product)
                    .bind(job.cond)
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
    }
    for p in &refuted_prices {
        ts::insert_correction(conn, job.product, job.cond, *p, verified_price, id, now).await?;
        corrections += 1;
    }
    // The runs changed outside the cached tail: reload it next time.
    if let Some(st) = w.series.get_mut(&key) {
        let fresh = load_series(conn, key.0, key.1).await?;
        st.tail = fresh.tail;
    }
    Ok(verify::ResultApplied::Finished {
        outcome: end,
        latency_ms,
        corrections,
        correction_alerts,
    })
}

/// The periodic task in the open transaction (see
/// `Storage::verification_tick`).
async fn tick_in_tx(
    w: &mut Writer,
    conn: &mut SqliteConnection,
    now: i64,
) -> StoreResult<verify::TickStats> {
    let mut stats = verify::TickStats {
        waiting_purged: ts::purge_waiting(conn, now - trust::outcome::WAITING_HORIZON_MS).await?,
        ..Default::default()
    };
    for id in ts::expired_holds(conn, now).await? {
        let Some(job) = ts::job_row(conn, id).await? else {
            continue;
        };
        let links = ts::links_of(conn, id).await?;
        ts::release_holds(conn, &links, "hold_expired").await?;
        ts::close_job(conn, id, verify::JobOutcome::Failed, None, now).await?;
        if let Some(st) = w.series.get_mut(&(job.product, job.cond)) {
            st.open_job = None;
        }
        stats.expired_holds += 1;
    }
    for key in ts::queue_refreshes(conn, now).await? {
        w.series.remove(&key);
        stats.refresh_queued += 1;
    }
    if let Some(key) = ts::queue_judge_crawl(conn, now).await? {
        w.series.remove(&key);
        stats.judge_queued += 1;
    }
    // Drift: series reported since the last tick and those with a running
    // timer.
    let (mut keys, top) = ts::series_reported_after(conn, w.drift_cursor).await?;
    w.drift_cursor = top;
    for k in w.drift.keys() {
        if !keys.contains(k) {
            keys.push(*k);
        }
    }
    for key in keys {
        let st = series_state(w, conn, key).await?;
        let published = st.offer.as_ref().and_then(|o| o.price_minor);
        let drifting = match (published, st.open_job) {
            (Some(p), None) => {
                let recent = ts::recent_reports(conn, key.0, key.1, now).await?;
                verify::drift_of(&recent, p).is_some()
            }
            _ => false,
        };
        let timer = w.drift.entry(key).or_default();
        let fire = timer.update(drifting, now);
        if timer.since.is_none() {
            w.drift.remove(&key);
        }
        if fire {
            let req = trust::CrawlRequest {
                priority: trust::crawl_priority(0, 0.0, false),
                critical: false,
                reason: "drift",
            };
            let id = ts::queue_job(conn, key.0, key.1, &req, None, now).await?;
            if let Some(st) = w.series.get_mut(&key) {
                st.open_job = Some(id);
            }
            stats.drift_queued += 1;
        }
    }
    Ok(stats)
}

/// Parses [`SqliteStore::history_runs`]'s packed runs.
fn unpack_runs(packed: &str) -> StoreResult<Vec<Run>> {
    let bad = || StoreError::Database(format!("malformed packed history runs: {packed:.80}"));
    let int = |f: Option<&str>| -> StoreResult<i64> {
        f.and_then(|v| v.parse::<i64>().ok()).ok_or_else(bad)
    };
    packed
        .split(';')
        .map(|run| {
            let mut f = run.split(',');
            let first_seen = int(f.next())?;
            let last_seen = int(f.next())?;
            let price_minor = match f.next() {
                Some("") => None,
                p => Some(int(p)?),
            };
            let availability = code::availability_from(int(f.next())?);
            let n = int(f.next())?;
            if f.next().is_some() {
                return Err(bad());
            }
            Ok(Run {
                first_seen,
                last_seen,
                price_minor,
                availability,
                n,
            })
        })
        .collect()
}

/// Turns free text into an FTS5 query: every word quoted (so no FTS syntax
/// reaches SQLite from users), all required, each as a prefix.
pub fn fts_query(q: &str) -> Option<String> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\"*"))
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(words.join(" "))
}

fn looks_like_asin(q: &str) -> bool {
    q.len() == 10
        && q.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

#[async_trait]
impl Storage for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&self.read).await?;
        if one == 1 {
            Ok(())
        } else {
            Err(StoreError::Database("ping returned a wrong value".into()))
        }
    }

    async fn install_secret(&self) -> StoreResult<[u8; 32]> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let existing: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'install_secret'")
                .fetch_optional(&mut w.conn)
                .await?;
        let bytes = match existing {
            Some(v) => v,
            None => {
                let mut fresh = [0u8; 32];
                getrandom::getrandom(&mut fresh)
                    .map_err(|e| StoreError::Database(format!("no randomness: {e}")))?;
                sqlx::query("INSERT INTO settings (name, value) VALUES ('install_secret', ?1)")
                    .bind(&fresh[..])
                    .execute(&mut w.conn)
                    .await?;
                fresh.to_vec()
            }
        };
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Database("install secret is not 32 bytes".into()))
    }

    async fn register_key(
        &self,
        public_key: &[u8; 32],
        now: i64,
        net_hash: Option<[u8; 16]>,
    ) -> StoreResult<Registered> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE public_key = ?1");
        let existing = sqlx::query(&sql)
            .bind(&public_key[..])
            .fetch_optional(&mut w.conn)
            .await?;
        if let Some(row) = existing {
            let rec = key_from_row(&row)?;
            if rec.erased_at.is_none() || rec.registered_at > rec.erased_at.unwrap_or(i64::MAX) {
                return Ok(Registered::Existing(rec));
            }
            sqlx::query(
                "UPDATE keys SET registered_at = ?1, net_hash = ?2, alpha = 1.0, beta = 1.0 \
                 WHERE id = ?3",
            )
            .bind(now)
            .bind(net_hash.as_ref().map(|h| &h[..]))
            .bind(rec.id)
            .execute(&mut w.conn)
            .await?;
            return Ok(Registered::Created(KeyRecord {
                registered_at: now,
                alpha: 1.0,
                beta: 1.0,
                ..rec
            }));
        }
        let sql = format!(
            "INSERT INTO keys (public_key, registered_at, net_hash) VALUES (?1, ?2, ?3) \
             RETURNING {KEY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&public_key[..])
            .bind(now)
            .bind(net_hash.as_ref().map(|h| &h[..]))
            .fetch_one(&mut w.conn)
            .await?;
        Ok(Registered::Created(key_from_row(&row)?))
    }

    async fn keys_by_public(&self, keys: &[[u8; 32]]) -> StoreResult<Vec<Option<KeyRecord>>> {
        let mut conn = self.read.acquire().await?;
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE public_key = ?1");
        let mut found: HashMap<[u8; 32], Option<KeyRecord>> = HashMap::new();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if !found.contains_key(k) {
                let row = sqlx::query(&sql)
                    .bind(&k[..])
                    .fetch_optional(&mut *conn)
                    .await?;
                let rec = row.map(|r| key_from_row(&r)).transpose()?;
                found.insert(*k, rec);
            }
            out.push(found.get(k).cloned().flatten());
        }
        Ok(out)
    }

    /// Group commit (performance, issue 4's ingest benchmark: one
    /// transaction per batch made every batch pay its own BEGIN, COMMIT and
    /// WAL frames on the single writer). A batch is queued, then its caller
    /// waits for the writer; whoever gets the writer takes every queued
    /// batch (up to [`GROUP_MAX_REPORTS`] reports) and applies them one
    /// after the other, each exactly as alone, in ONE transaction. If that
    /// transaction fails, each batch is retried in a transaction of its
    /// own, so one batch's failure is only its own. A caller whose batch an
    /// earlier writer already applied just takes its result.
    ///
    /// The group runs on a blocking thread, on the synchronous connection
    /// of [`ingest_db`] (cached prepared statements, no hand-off to sqlx's
    /// worker thread per statement); that thread owns the writer guard
    /// until the commit ends, so every batch of the group is answered
    /// even if the request that started it goes away. `accepted` is still
    /// only answered after the COMMIT returned (WAL, `synchronous=NORMAL`).
    async fn ingest(&self, reports: &[NewReport], now: i64) -> StoreResult<Vec<IngestOutcome>> {
        let (done, mut result) = tokio::sync::oneshot::channel();
        if let Ok(mut q) = self.ingest_queue.lock() {
            q.push(IngestJob {
                reports: reports.to_vec(),
                now,
                done,
            });
        } else {
            return Err(StoreError::Database("ingest queue poisoned".into()));
        }
        loop {
            let mut guard = self.writer.clone().lock_owned().await;
            match result.try_recv() {
                Ok(out) => return out,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(StoreError::Database(
                        "the ingest group commit failed".into(),
                    ))
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            if guard.is_none() {
                return Err(closed());
            }
            let jobs = match self.ingest_queue.lock() {
                Ok(mut q) => take_group(&mut q),
                Err(_) => return Err(StoreError::Database("ingest queue poisoned".into())),
            };
            // The group runs on a blocking thread that owns the writer
            // guard: it ends (and answers every batch of the group) even
            // if this request is dropped meanwhile.
            if !jobs.is_empty() {
                let outbox = self.outbox.clone();
                let queue = self.ingest_queue.clone();
                let coming = self.coming.clone();
                let applied = tokio::task::spawn_blocking(move || {
                    if let Some(w) = guard.as_mut() {
                        let run = std::panic::AssertUnwindSafe(|| {
                            apply_group(w, jobs, &outbox, &queue, &coming)
                        });
                        if std::panic::catch_unwind(run).is_err() {
                            // The group's callers get an error (their
                            // senders are gone); nothing half-done stays.
                            w.sync.rollback();
                            w.caches.deferred.rollback();
                            ingest_failed(&mut w.caches);
                            tracing::error!("ingest group commit panicked; rolled back");
                        }
                    }
                })
                .await;
                if let Err(e) = applied {
                    tracing::error!("ingest group commit task failed: {e}");
                }
                if let Ok(c) = self.checkpointer.lock() {
                    if let Some(c) = c.as_ref() {
                        c.wake();
                    }
                }
            }
            // Ours was in that group, or is still queued behind it.
            match result.try_recv() {
                Ok(out) => return out,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(StoreError::Database(
                        "the ingest group commit failed".into(),
                    ))
                }
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
        }
    }

    fn ingest_coming(&self) -> super::Coming {
        super::Coming::count(&self.coming)
    }

    async fn claim_request_nonce(
        &self,
        key_id: KeyId,
        nonce: &[u8],
        expires_at: i64,
    ) -> StoreResult<bool> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let res = sqlx::query(
            "INSERT INTO request_nonces (key_id, nonce, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key_id, nonce) DO NOTHING",
        )
        .bind(key_id)
        .bind(nonce)
        .bind(expires_at)
        .execute(&mut w.conn)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    async fn key_activity(&self, key_id: KeyId) -> StoreResult<KeyActivity> {
        let reports: i64 = sqlx::query_scalar("SELECT count(*) FROM reports WHERE key_id = ?1")
            .bind(key_id)
            .fetch_one(&self.read)
            .await?;
        let mut conn = self.read.acquire().await?;
        let watches = crate::watch::sqlite::count_watches(&mut conn, key_id).await?;
        Ok(KeyActivity { reports, watches })
    }

    async fn erase_key(&self, key_id: KeyId, now: i64) -> StoreResult<()> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("UPDATE reports SET key_id = NULL WHERE key_id = ?1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM request_nonces WHERE key_id = ?1")
            .bind(key_id)
            .execute(&mut *tx)
            .await?;
        crate::watch::sqlite::erase_key(&mut tx, key_id).await?;
        ts::erase_key(&mut tx, key_id).await?;
        let res = sqlx::query(
            "UPDATE keys SET erased_at = ?1, alpha = 1.0, beta = 1.0, net_hash = NULL, \
             evidence_at = NULL, severe_at = NULL, severe_prev_at = NULL WHERE id = ?2",
        )
        .bind(now)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn product_info(
        &self,
        marketplace: &str,
        asin: &str,
    ) -> StoreResult<Option<ProductInfo>> {
        let row = sqlx::query(
            "SELECT id, currency, title FROM products WHERE marketplace = ?1 AND asin = ?2",
        )
        .bind(marketplace)
        .bind(asin)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(ProductInfo {
                id: r.try_get("id")?,
                currency: r.try_get("currency")?,
                title: r.try_get("title")?,
            })
        })
        .transpose()
    }

    async fn product_summary(
        &self,
        marketplace: &str,
        asin: &str,
    ) -> StoreResult<Option<ProductSummary>> {
        let mut conn = self.read.acquire().await?;
        let Some(row) = sqlx::query(
            "SELECT id, title, currency, watchers FROM products WHERE marketplace = ?1 AND asin = ?2",
        )
        .bind(marketplace)
        .bind(asin)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let offer_rows = sqlx::query(&format!(
            "SELECT condition, {OFFER_COLS} FROM offers WHERE product_id = ?1 ORDER BY condition"
        ))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
        let mut offers = Vec::new();
        for orow in &offer_rows {
            let Some(condition) = code::condition_from(orow.try_get("condition")?) else {
                continue;
            };
            let offer = offer_from_row(orow)?;
            let cond = code::condition(condition);
            let extreme = |order: &'static str| {
                format!(
                    "SELECT price_minor, last_seen FROM history_runs \
                     WHERE product_id = ?1 AND condition = ?2 AND price_minor IS NOT NULL \
                     ORDER BY price_minor {order}, last_seen DESC LIMIT 1"
                )
            };
            let mut ext = Vec::new();
            for order in ["ASC", "DESC"] {
                let r = sqlx::query(&extreme(order))
                    .bind(id)
                    .bind(cond)
                    .fetch_optional(&mut *conn)
                    .await?;
                ext.push(match r {
                    Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)),
                    None => None,
                });
            }
            let run_start: Option<i64> = sqlx::query_scalar(
                "SELECT first_seen FROM history_runs WHERE product_id = ?1 AND condition = ?2 \
                 AND price_minor IS ?3 AND availability = ?4 AND first_seen <= ?5 \
                 ORDER BY first_seen DESC LIMIT 1",
            )
            .bind(id)
            .bind(cond)
            .bind(offer.price_minor)
            .bind(code::availability(offer.availability))
            .bind(offer.observed_at)
            .fetch_optional(&mut *conn)
            .await?;
            // Independent groups (network + registration day, see
            // `trust::group_of`; a key without a network is its own group)
            // whose reports back the current value; held and refuted
            // reports do not count.
            let reporters: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT CASE WHEN k.net_hash IS NULL THEN 'k' || r.key_id \
                   ELSE hex(k.net_hash) || ':' || (k.registered_at / 86400000) END) \
                 FROM reports r JOIN keys k ON k.id = r.key_id WHERE r.product_id = ?1 \
                 AND r.condition = ?2 AND r.observed_at >= ?3 AND r.price_minor IS ?4 \
                 AND r.availability = ?5 AND r.status NOT IN (?6, ?7)",
            )
            .bind(id)
            .bind(cond)
            .bind(run_start.unwrap_or(offer.observed_at))
            .bind(offer.price_minor)
            .bind(code::availability(offer.availability))
            .bind(verify::status::HELD)
            .bind(verify::status::REFUTED)
            .fetch_one(&mut *conn)
            .await?;
            offers.push(OfferSummary {
                condition,
                offer,
                reporters,
                lowest: ext[0],
                highest: ext[1],
            });
        }
        Ok(Some(ProductSummary {
            id,
            marketplace: marketplace.to_string(),
            asin: asin.to_string(),
            title: row.try_get("title")?,
            currency: row.try_get("currency")?,
            watchers: row.try_get("watchers")?,
            offers,
        }))
    }

    async fn product_history_with_corrections(
        &self,
        marketplace: &str,
        asin: &str,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Option<HistoryRead>> {
        // Performance (issue 4's history benchmark): the product, its runs
        // packed as in `history_runs`, and whether any correction falls in
        // the range, in ONE statement on one pooled connection, instead of
        // three acquisitions and three hand-offs to sqlx's SQLite thread.
        // Corrections are rare; only then a second statement reads them.
        let mut conn = self.read.acquire().await?;
        let cond = code::condition(condition);
        let Some(row) = sqlx::query(
            "SELECT p.id, p.currency, p.title, \
               (SELECT group_concat(first_seen || ',' || last_seen || ',' || \
                  ifnull(price_minor, '') || ',' || availability || ',' || n, ';' \
                  ORDER BY first_seen) FROM history_runs \
                WHERE product_id = p.id AND condition = ?3 AND first_seen <= ?5 \
                  AND first_seen >= coalesce((SELECT first_seen FROM history_runs \
                    WHERE product_id = p.id AND condition = ?3 AND first_seen < ?4 \
                    ORDER BY first_seen DESC LIMIT 1), ?4)) AS runs, \
               EXISTS (SELECT 1 FROM corrections WHERE product_id = p.id \
                 AND condition = ?3 AND at >= ?4 AND at <= ?5) AS corrected \
             FROM products p WHERE p.marketplace = ?1 AND p.asin = ?2",
        )
        .bind(marketplace)
        .bind(asin)
        .bind(cond)
        .bind(from)
        .bind(to)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let info = ProductInfo {
            id: row.try_get("id")?,
            currency: row.try_get("currency")?,
            title: row.try_get("title")?,
        };
        let packed: Option<String> = row.try_get("runs")?;
        let runs = packed
            .as_deref()
            .map(unpack_runs)
            .unwrap_or(Ok(Vec::new()))?;
        let corrected: bool = row.try_get("corrected")?;
        let corrections = if corrected {
            ts::corrections(&mut conn, info.id, cond, from, to).await?
        } else {
            Vec::new()
        };
        Ok(Some(HistoryRead {
            info,
            runs,
            corrections,
        }))
    }

    async fn history_runs(
        &self,
        product: ProductId,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Run>> {
        // Performance: the runs come back as ONE text row
        // (`first,last,price,availability,n;...`, price empty for none)
        // instead of one row each. sqlx hands every row from its SQLite
        // thread to the async task separately; a year of a busy product is
        // hundreds of rows, and under 16 concurrent readers those handoffs
        // (thread wake-ups), not SQLite, were most of the query's cost.
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(first_seen || ',' || last_seen || ',' || \
               ifnull(price_minor, '') || ',' || availability || ',' || n, ';' \
               ORDER BY first_seen) FROM history_runs \
             WHERE product_id = ?1 AND condition = ?2 AND first_seen <= ?4 AND first_seen >= \
               coalesce((SELECT first_seen FROM history_runs WHERE product_id = ?1 \
                 AND condition = ?2 AND first_seen < ?3 ORDER BY first_seen DESC LIMIT 1), ?3)",
        )
        .bind(product)
        .bind(code::condition(condition))
        .bind(from)
        .bind(to)
        .fetch_one(&self.read)
        .await?;
        packed.as_deref().map(unpack_runs).unwrap_or(Ok(Vec::new()))
    }

    async fn search(
        &self,
        query: &str,
        marketplace: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ProductRef>, i64)> {
        let q = query.trim();
        let to_ref = |row: &SqliteRow| -> StoreResult<ProductRef> {
            Ok(ProductRef {
                marketplace: row.try_get("marketplace")?,
                asin: row.try_get("asin")?,
            })
        };
        if looks_like_asin(q) {
            let rows = sqlx::query(
                "SELECT marketplace, asin FROM products WHERE asin = ?1 \
                 AND (?2 IS NULL OR marketplace = ?2) ORDER BY marketplace LIMIT ?3 OFFSET ?4",
            )
            .bind(q)
            .bind(marketplace)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
            let total: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM products WHERE asin = ?1 AND (?2 IS NULL OR marketplace = ?2)",
            )
            .bind(q)
            .bind(marketplace)
            .fetch_one(&self.read)
            .await?;
            let list = rows.iter().map(to_ref).collect::<StoreResult<Vec<_>>>()?;
            return Ok((list, total));
        }
        let Some(fts) = fts_query(q) else {
            return Ok((Vec::new(), 0));
        };
        let rows = sqlx::query(
            "SELECT p.marketplace, p.asin FROM products_fts f JOIN products p ON p.id = f.rowid \
             WHERE products_fts MATCH ?1 AND (?2 IS NULL OR p.marketplace = ?2) \
             ORDER BY f.rank, p.id LIMIT ?3 OFFSET ?4",
        )
        .bind(&fts)
        .bind(marketplace)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.read)
        .await?;
        let total: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM products_fts f JOIN products p ON p.id = f.rowid \
             WHERE products_fts MATCH ?1 AND (?2 IS NULL OR p.marketplace = ?2)",
        )
        .bind(&fts)
        .bind(marketplace)
        .fetch_one(&self.read)
        .await?;
        let list = rows.iter().map(to_ref).collect::<StoreResult<Vec<_>>>()?;
        Ok((list, total))
    }

    async fn purge(&self, audit_before: i64, now: i64) -> StoreResult<PurgeStats> {
        let mut stats = PurgeStats::default();
        loop {
            // Ids grow with receipt time, so the oldest rows come first; one
            // short transaction per chunk keeps ingest flowing.
            let mut guard = self.lock_writer().await?;
            let w = guard.as_mut().ok_or_else(closed)?;
            let res = sqlx::query(
                "DELETE FROM reports WHERE id IN \
                   (SELECT id FROM reports ORDER BY id LIMIT ?1) AND received_at < ?2",
            )
            .bind(PURGE_CHUNK)
            .bind(audit_before)
            .execute(&mut w.conn)
            .await?;
            stats.reports += res.rows_affected();
            if res.rows_affected() == 0 {
                let res = sqlx::query("DELETE FROM request_nonces WHERE expires_at < ?1")
                    .bind(now)
                    .execute(&mut w.conn)
                    .await?;
                stats.request_nonces = res.rows_affected();
                // Processed watch outbox events are kept as long as the
                // audit rows (they explain alerts), then deleted.
                sqlx::query(
                    "DELETE FROM outbox WHERE processed_at IS NOT NULL AND processed_at < ?1",
                )
                .bind(audit_before)
                .execute(&mut w.conn)
                .await?;
                ts::purge_jobs(&mut w.conn, audit_before).await?;
                return Ok(stats);
            }
        }
    }

    async fn storage_stats(&self) -> StoreResult<StorageStats> {
        let mut conn = self.read.acquire().await?;
        let sizes = sqlx::query(
            "SELECT name, sum(pgsize) AS bytes FROM dbstat \
             WHERE name IN ('history_runs', 'reports', 'reports_key_nonce', 'reports_series_time') \
             GROUP BY name",
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut stats = StorageStats::default();
        for row in &sizes {
            let name: String = row.try_get("name")?;
            let bytes: i64 = row.try_get("bytes")?;
            if name == "history_runs" {
                stats.history_bytes += bytes;
            } else {
                stats.audit_bytes += bytes;
            }
        }
        let row = sqlx::query("SELECT count(*) AS c, coalesce(sum(n), 0) AS s FROM history_runs")
            .fetch_one(&mut *conn)
            .await?;
        stats.history_rows = row.try_get("c")?;
        stats.observations = row.try_get("s")?;
        Ok(stats)
    }

    async fn create_watch(&self, nw: &NewWatch, now: i64) -> StoreResult<Watch> {
        let id = {
            let mut guard = self.lock_writer().await?;
            let w = guard.as_mut().ok_or_else(closed)?;
            let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
            let id = ws::create_watch(&mut tx, nw, now).await?;
            tx.commit().await?;
            id
        };
        let mut conn = self.read.acquire().await?;
        ws::get_watch(&mut conn, nw.key_id, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn get_watch(&self, key_id: KeyId, id: i64) -> StoreResult<Option<Watch>> {
        let mut conn = self.read.acquire().await?;
        ws::get_watch(&mut conn, key_id, id).await
    }

    async fn list_watches(&self, key_id: KeyId) -> StoreResult<Vec<Watch>> {
        let mut conn = self.read.acquire().await?;
        ws::list_watches(&mut conn, key_id).await
    }

    async fn replace_watch(&self, id: i64, nw: &NewWatch, now: i64) -> StoreResult<Option<Watch>> {
        {
            let mut guard = self.lock_writer().await?;
            let w = guard.as_mut().ok_or_else(closed)?;
            let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
            if !ws::replace_watch(&mut tx, id, nw, now).await? {
                return Ok(None);
            }
            tx.commit().await?;
        }
        let mut conn = self.read.acquire().await?;
        ws::get_watch(&mut conn, nw.key_id, id).await
    }

    async fn delete_watch(&self, key_id: KeyId, id: i64) -> StoreResult<bool> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        let found = ws::delete_watch(&mut tx, key_id, id).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn process_outbox(&self, now: i64, max: i64) -> StoreResult<EvalStats> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        let stats = ws::process_outbox(&mut tx, now, max).await?;
        tx.commit().await?;
        Ok(stats)
    }

    fn outbox_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        Some(self.outbox.clone())
    }

    async fn alerts_after(
        &self,
        key_id: KeyId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        let mut conn = self.read.acquire().await?;
        ws::alerts_after(&mut conn, key_id, after, limit).await
    }

    async fn due_deliveries(
        &self,
        channel: DeliveryChannel,
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        let mut conn = self.read.acquire().await?;
        ws::due_deliveries(&mut conn, channel, now, limit).await
    }

    async fn record_delivery(
        &self,
        ids: &[i64],
        channel: DeliveryChannel,
        state: DeliveryState,
        attempts: i64,
        next_at: Option<i64>,
    ) -> StoreResult<()> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        ws::record_delivery(&mut tx, ids, channel, state, attempts, next_at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_contacts(&self, now: i64, limit: i64) -> StoreResult<Vec<PendingContact>> {
        let mut conn = self.read.acquire().await?;
        ws::pending_contacts(&mut conn, now, limit).await
    }

    async fn confirmation_retry(
        &self,
        key_id: KeyId,
        email: &str,
        attempts: i64,
        next_at: i64,
    ) -> StoreResult<()> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        ws::confirmation_retry(&mut w.conn, key_id, email, attempts, next_at).await
    }

    async fn confirmation_sent(&self, key_id: KeyId, email: &str) -> StoreResult<()> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        ws::confirmation_sent(&mut w.conn, key_id, email).await
    }

    async fn contact_created_at(&self, key_id: KeyId, email: &str) -> StoreResult<Option<i64>> {
        let mut conn = self.read.acquire().await?;
        ws::contact_created_at(&mut conn, key_id, email).await
    }

    async fn confirm_contact(&self, hash: &str, now: i64) -> StoreResult<bool> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        ws::confirm_contact(&mut w.conn, hash, now).await
    }

    async fn unsubscribe_contact(&self, hash: &str, now: i64) -> StoreResult<bool> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        let found = ws::unsubscribe_contact(&mut tx, hash, now).await?;
        tx.commit().await?;
        Ok(found)
    }

    async fn correct_published_price(
        &self,
        product: ProductId,
        condition: Condition,
        refuted_price_minor: i64,
        corrected_price_minor: Option<i64>,
        since: i64,
        now: i64,
    ) -> StoreResult<Vec<i64>> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        let ids = ws::correct_published_price(
            &mut tx,
            product,
            condition,
            refuted_price_minor,
            corrected_price_minor,
            since,
            now,
        )
        .await?;
        tx.commit().await?;
        if !ids.is_empty() {
            // Corrections are deliveries too: wake the worker.
            self.outbox.notify_one();
        }
        Ok(ids)
    }

    async fn lease_jobs(
        &self,
        owner: KeyId,
        max: u32,
        lease_ms: i64,
        now: i64,
    ) -> StoreResult<Vec<verify::LeasedJob>> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
        let jobs = ts::lease(&mut tx, owner, max, lease_ms, now).await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn job_target(&self, id: i64) -> StoreResult<Option<verify::JobTarget>> {
        let row = sqlx::query(
            "SELECT j.id, j.state, j.condition, p.marketplace, p.asin, p.currency \
             FROM verification_jobs j JOIN products p ON p.id = j.product_id WHERE j.id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(verify::JobTarget {
                id: r.try_get("id")?,
                marketplace: r.try_get("marketplace")?,
                asin: r.try_get("asin")?,
                condition: ts::cond_from(r.try_get("condition")?)?,
                currency: r.try_get("currency")?,
                finished: verify::JobState::from_code(r.try_get("state")?)
                    == verify::JobState::Finished,
            })
        })
        .transpose()
    }

    async fn finish_job(
        &self,
        id: i64,
        outcome: verify::VerifierOutcome,
        observation: Option<&NewReport>,
        now: i64,
    ) -> StoreResult<verify::ResultApplied> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let result = async {
            let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
            let out = finish_in_tx(&mut w.caches, &mut tx, id, outcome, observation, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(out)
        }
        .await;
        if result.is_ok() {
            verify::count_decisions(&w.caches.decisions);
        }
        w.caches.decisions.clear();
        if result.is_err() {
            w.caches.products.clear();
            w.caches.series.clear();
        } else if w.caches.pending_events > 0
            || matches!(&result, Ok(verify::ResultApplied::Finished { correction_alerts, .. }) if *correction_alerts > 0)
        {
            self.outbox.notify_one();
        }
        w.caches.pending_events = 0;
        result
    }

    async fn verification_tick(&self, now: i64) -> StoreResult<verify::TickStats> {
        let mut guard = self.lock_writer().await?;
        let w = guard.as_mut().ok_or_else(closed)?;
        let result = async {
            let mut tx = w.conn.begin_with("BEGIN IMMEDIATE").await?;
            let out = tick_in_tx(&mut w.caches, &mut tx, now).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(out)
        }
        .await;
        if result.is_err() {
            w.caches.series.clear();
        }
        result
    }

    async fn queue_depth(&self) -> StoreResult<verify::QueueDepth> {
        let mut conn = self.read.acquire().await?;
        ts::queue_depth(&mut conn).await
    }

    async fn corrections(
        &self,
        product: ProductId,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<verify::CorrectionRow>> {
        let mut conn = self.read.acquire().await?;
        ts::corrections(&mut conn, product, code::condition(condition), from, to).await
    }

    fn seed_trust_rng(&self, seed: u64) {
        // Only between requests (tests): skip when the writer is busy.
        if let Ok(mut guard) = self.writer.try_lock() {
            if let Some(w) = guard.as_mut() {
                w.caches.rng = StdRng::seed_from_u64(seed);
            }
        }
    }

    async fn close(&self) {
        // Waiting for the writer lock waits for the transaction in flight;
        // every ingest call has committed before it returned.
        // The refreshes that wait are written first ([`deferred`]).
        let writer = match self.lock_writer().await {
            Ok(mut guard) => guard.take(),
            Err(e) => {
                tracing::error!(
                    "closing: the waiting run and offer refreshes were not written: {e}"
                );
                self.writer.lock().await.take()
            }
        };
        if let Some(w) = writer {
            let _ = w.conn.close().await;
        }
        let checkpointer = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some(c) = checkpointer {
            let _ = tokio::task::spawn_blocking(move || c.stop()).await;
        }
        self.read.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_are_quoted() {
        assert_eq!(fts_query("echo dot").as_deref(), Some("\"echo\"* \"dot\"*"));
        assert_eq!(
            fts_query("a\"b OR c").as_deref(),
            Some("\"a\"* \"b\"* \"OR\"* \"c\"*")
        );
        assert_eq!(fts_query("  ;; "), None);
    }

    #[test]
    fn packed_runs_parse_and_bad_ones_are_errors() {
        let runs = unpack_runs("10,20,4999,0,3;21,21,,1,1").expect("runs");
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (
                runs[0].first_seen,
                runs[0].last_seen,
                runs[0].price_minor,
                runs[0].n
            ),
            (10, 20, Some(4999), 3)
        );
        assert_eq!(runs[1].price_minor, None);
        assert_eq!(
            runs[1].availability,
            wasm_core::types::Availability::OutOfStock
        );
        for bad in ["", "1,2,3,0", "1,2,3,0,1,9", "a,2,3,0,1", "1,2,3,0,1;"] {
            assert!(unpack_runs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://data/x.db").unwrap(),
            PathBuf::from("data/x.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            PathBuf::from("/tmp/x.db")
        );
        assert!(sqlite_path("sqlite://").is_err());
        assert!(sqlite_path("postgres://x").is_err());
    }
}
