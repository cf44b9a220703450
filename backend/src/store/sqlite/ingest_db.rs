//! The statements of one ingest transaction, behind [`IngestDb`], so the
//! decision logic of `ingest_batch` exists once and runs on two
//! connections:
//!
//! * [`SyncDb`], a synchronous `rusqlite` connection to the same file,
//!   used by `Storage::ingest` (performance, issue 4's ingest benchmark).
//!   sqlx runs every statement as a message to its own worker thread and
//!   back; a group commit of 2,000 reports paid that hand-off for every
//!   statement. The group commit now runs on a blocking thread that owns
//!   this connection and executes cached prepared statements directly.
//!   Its futures never wait: [`run_now`] polls them once.
//! * sqlx's writer connection (`SqliteConnection`), for the verifier's
//!   observation that `finish_job` ingests inside its own transaction.
//!
//! Both sides run the same SQL (the sqlx side is the functions of
//! `store::sqlite`, `store::trust_sqlite` and `watch::sqlite`; this file
//! spells each statement again for rusqlite, row by row instead of
//! multi-row, which a prepared statement makes as cheap). The two writers
//! never overlap: both are used only while holding the store's writer
//! mutex, so the writer's caches stay exact.
//!
//! Only one crate may link `sqlite3`: `rusqlite` is pinned to the version
//! whose `libsqlite3-sys` is the one sqlx links (`cargo tree -i
//! libsqlite3-sys`).

use super::super::trust_sqlite as ts;
use super::super::verify::{status, KeyRep, Waiting, KEY_REP_COLS};
use super::super::{
    code, plan_run_update, KeyId, NewReport, Offer, OfferStatus, ProductId, Run, RunPlan,
    StoreError, StoreResult,
};
use super::{AuditRow, CachedProduct, SeriesKey, SeriesState, OFFER_COLS};
use crate::trust::{self, CrawlRequest, GroupId, Reading, Reputation};
use rusqlite::{params, OptionalExtension};
use sqlx::sqlite::SqliteConnection;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use wasm_core::types::Availability;

/// A recent report of a series: `(key, group, trust now, reading,
/// observed_at)` (see `trust_sqlite::recent_reports`).
pub(super) type Recent = (KeyId, GroupId, f64, Reading, i64);

/// The statements `ingest_batch` runs, on either connection (see the
/// module docs). Every method is one statement or a short fixed sequence.
pub(super) trait IngestDb: Send {
    /// `(key_id, nonce)` pairs of `reports` that are already stored.
    fn stored_pairs(
        &mut self,
        reports: &[NewReport],
    ) -> impl Future<Output = StoreResult<HashSet<(KeyId, [u8; 16])>>> + Send;
    /// The reputations of `ids` (unknown ids are absent).
    fn load_reporters(
        &mut self,
        ids: &[KeyId],
    ) -> impl Future<Output = StoreResult<HashMap<KeyId, KeyRep>>> + Send;
    /// Finds or creates the product of `r` (no cache: the caller has one).
    fn find_or_create_product(
        &mut self,
        r: &NewReport,
        now: i64,
    ) -> impl Future<Output = StoreResult<CachedProduct>> + Send;
    /// Latest run, published offer and open job of a series.
    fn load_series(
        &mut self,
        product: ProductId,
        cond: i64,
    ) -> impl Future<Output = StoreResult<SeriesState>> + Send;
    /// Writes the pending audit rows (and clears them).
    fn flush_audit<'a>(
        &mut self,
        rows: &mut Vec<AuditRow<'a>>,
        now: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Writes the pending job links (and clears them).
    fn flush_links(
        &mut self,
        links: &mut Vec<ts::Link>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Upserts the changed runs (and clears them).
    fn flush_runs(
        &mut self,
        runs: &mut BTreeMap<(ProductId, i64, i64), Run>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Upserts the changed published offers.
    fn flush_offers(
        &mut self,
        offers: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Outbox events of watched series whose alertable value changed
    /// (`watch::sqlite::flush_outbox`); clears `before`.
    fn flush_outbox(
        &mut self,
        before: &mut BTreeMap<SeriesKey, Option<Offer>>,
        after: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Sets a product's title.
    fn set_title(
        &mut self,
        product: ProductId,
        title: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// The general (SQL) history-run update of one observation.
    fn update_runs(
        &mut self,
        product: ProductId,
        cond: i64,
        r: &NewReport,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// `A` of a reading (`trust_sqlite::alerts_for`).
    fn alerts_for(
        &mut self,
        product: ProductId,
        cond: i64,
        reading: Reading,
        alerted_availability: Option<Availability>,
    ) -> impl Future<Output = StoreResult<u32>> + Send;
    /// Recent reports of a series (`trust_sqlite::recent_reports`).
    fn recent_reports(
        &mut self,
        product: ProductId,
        cond: i64,
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<Recent>>> + Send;
    /// Crawl-trigger limit of a key (`trust_sqlite::within_crawl_limit`).
    fn within_crawl_limit(
        &mut self,
        key: KeyId,
        rep: &KeyRep,
        now: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Queues a job unless one is open; the open job's id.
    fn queue_job(
        &mut self,
        product: ProductId,
        cond: i64,
        req: &CrawlRequest,
        trigger: Option<KeyId>,
        now: i64,
    ) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Raises a pending job (`trust_sqlite::escalate`).
    fn escalate(
        &mut self,
        job: i64,
        wanted: &CrawlRequest,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Stores a key's evidence.
    fn save_reputation(
        &mut self,
        key_id: KeyId,
        rep: &Reputation,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Inserts a waiting report (`trust_sqlite::insert_waiting`).
    fn insert_waiting(
        &mut self,
        product: ProductId,
        cond: i64,
        w: &Waiting,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

impl IngestDb for SqliteConnection {
    async fn stored_pairs(
        &mut self,
        reports: &[NewReport],
    ) -> StoreResult<HashSet<(KeyId, [u8; 16])>> {
        super::stored_pairs(self, reports).await
    }
    async fn load_reporters(&mut self, ids: &[KeyId]) -> StoreResult<HashMap<KeyId, KeyRep>> {
        ts::load_reporters(self, ids).await
    }
    async fn find_or_create_product(
        &mut self,
        r: &NewReport,
        now: i64,
    ) -> StoreResult<CachedProduct> {
        super::find_or_create_product(self, r, now).await
    }
    async fn load_series(&mut self, product: ProductId, cond: i64) -> StoreResult<SeriesState> {
        super::load_series(self, product, cond).await
    }
    async fn flush_audit<'a>(&mut self, rows: &mut Vec<AuditRow<'a>>, now: i64) -> StoreResult<()> {
        super::flush_audit(self, rows, now).await
    }
    async fn flush_links(&mut self, links: &mut Vec<ts::Link>) -> StoreResult<()> {
        ts::flush_links(self, links).await
    }
    async fn flush_runs(
        &mut self,
        runs: &mut BTreeMap<(ProductId, i64, i64), Run>,
    ) -> StoreResult<()> {
        super::flush_runs(self, runs).await
    }
    async fn flush_offers(
        &mut self,
        offers: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> StoreResult<()> {
        super::flush_offers(self, offers, now).await
    }
    async fn flush_outbox(
        &mut self,
        before: &mut BTreeMap<SeriesKey, Option<Offer>>,
        after: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> StoreResult<u64> {
        crate::watch::sqlite::flush_outbox(self, before, after, now).await
    }
    async fn set_title(&mut self, product: ProductId, title: &str) -> StoreResult<()> {
        sqlx::query("UPDATE products SET title = ?1 WHERE id = ?2")
            .bind(title)
            .bind(product)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
    async fn update_runs(
        &mut self,
        product: ProductId,
        cond: i64,
        r: &NewReport,
    ) -> StoreResult<()> {
        super::update_runs(self, product, cond, r).await
    }
    async fn alerts_for(
        &mut self,
        product: ProductId,
        cond: i64,
        reading: Reading,
        alerted_availability: Option<Availability>,
    ) -> StoreResult<u32> {
        ts::alerts_for(self, product, cond, reading, alerted_availability).await
    }
    async fn recent_reports(
        &mut self,
        product: ProductId,
        cond: i64,
        now: i64,
    ) -> StoreResult<Vec<Recent>> {
        ts::recent_reports(self, product, cond, now).await
    }
    async fn within_crawl_limit(
        &mut self,
        key: KeyId,
        rep: &KeyRep,
        now: i64,
    ) -> StoreResult<bool> {
        ts::within_crawl_limit(self, key, rep, now).await
    }
    async fn queue_job(
        &mut self,
        product: ProductId,
        cond: i64,
        req: &CrawlRequest,
        trigger: Option<KeyId>,
        now: i64,
    ) -> StoreResult<i64> {
        ts::queue_job(self, product, cond, req, trigger, now).await
    }
    async fn escalate(&mut self, job: i64, wanted: &CrawlRequest) -> StoreResult<()> {
        ts::escalate(self, job, wanted).await
    }
    async fn save_reputation(&mut self, key_id: KeyId, rep: &Reputation) -> StoreResult<()> {
        ts::save_reputation(self, key_id, rep).await
    }
    async fn insert_waiting(
        &mut self,
        product: ProductId,
        cond: i64,
        w: &Waiting,
    ) -> StoreResult<()> {
        ts::insert_waiting(self, product, cond, w).await
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, msg)
                if f.code == rusqlite::ErrorCode::ConstraintViolation
                    && matches!(
                        f.extended_code,
                        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    ) =>
            {
                StoreError::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Drives a future of [`SyncDb`]'s statements to its end. They never wait
/// (every statement runs synchronously inside `poll`), so one poll ends
/// it; a future that does wait is a bug, reported as an error.
pub(super) fn run_now<T>(fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(StoreError::Database(
            "a synchronous ingest statement waited".into(),
        )),
    }
}

/// The synchronous writer connection of ingest (see the module docs).
pub(super) struct SyncDb {
    conn: rusqlite::Connection,
}

/// Page cache of the ingest connection (`PRAGMA cache_size`, negative:
/// KiB): 8 MiB, not the 32 MiB of the sqlx connections. SQLite walks the
/// whole page-cache hash when a transaction ends with pages cached beyond
/// the database's end (`pcache1TruncateUnsafe`, 6.8% of the server's cycles
/// under `loadgen` with 32 MiB, nearly all cache misses). Measured with
/// `loadgen --concurrency 2`, fresh databases: 8 MiB 19,400-20,700
/// reports/s against 17,100-18,900 with 32 MiB (2 MiB and 4 MiB: 16,500-
/// 19,400, p99 up to 63 ms); still ahead after 30 s of load (16,500-18,700
/// against 15,900-17,500).
const WRITER_CACHE_KIB: i64 = -8192;

/// The ingest connection's own automatic checkpoint: only a safety net
/// (about 400 MB of WAL) for when the background checkpoints
/// (`sqlite::checkpoint`) cannot keep up, as under sustained ingest: the
/// background PASSIVE checkpoints never catch up with a writer that never
/// pauses, so the WAL is rewound only by this checkpoint, which stalls the
/// group commit that crosses it (it copies what the background ones have
/// not, then syncs). Rarer is better here: `loadgen --concurrency 2`,
/// fresh databases, 10 s: 100,000 pages p99 17.7-18.0 ms (2 runs), 50,000
/// (200 MB) 42-51 ms (5 runs), 25,000 62-65 ms, 12,500 56-59 ms; 30 s:
/// 100,000 p99 33 ms, max 138 ms, 50,000 p99 69 ms, max 1.45 s (one run
/// each; throughput falls over 30 s either way as the database grows:
/// 18,600 and 15,100 reports/s).
const SAFETY_AUTOCHECKPOINT_PAGES: i64 = 100_000;

/// Statements a group commit prepares (the cache keeps them all).
const STATEMENT_CACHE: usize = 64;

impl SyncDb {
    /// Opens the database file (already created and migrated by sqlx)
    /// with the settings of the sqlx connections.
    pub(super) fn open(path: &Path) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // journal_mode answers with a row; the others with none.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database(format!(
                "the database is not in WAL mode ({mode})"
            )));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = {}; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = {};",
            WRITER_CACHE_KIB, SAFETY_AUTOCHECKPOINT_PAGES
        ))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SyncDb { conn })
    }

    /// `BEGIN IMMEDIATE`.
    pub(super) fn begin(&mut self) -> StoreResult<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// `COMMIT`; on failure the transaction is rolled back.
    pub(super) fn commit(&mut self) -> StoreResult<()> {
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            self.rollback();
            return Err(e.into());
        }
        Ok(())
    }

    /// `f` between `BEGIN IMMEDIATE` and `COMMIT`; rolled back when `f` or
    /// the commit fails.
    pub(super) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut SyncDb) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => self.commit().map(|()| v),
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// `ROLLBACK` (nothing when no transaction is open).
    pub(super) fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

// Columns are read by position (performance: a name lookup compares the
// name with every column's, and the prefixed names were formatted per
// row). The positions follow the SELECTs below and `OFFER_COLS`,
// `KEY_REP_COLS`; the test at the end of this file compares every table
// with the sqlx path, which reads by name.

/// A run from `first_seen, last_seen, price_minor, availability, n`.
fn run_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        first_seen: row.get(0)?,
        last_seen: row.get(1)?,
        price_minor: row.get(2)?,
        availability: code::availability_from(row.get(3)?),
        n: row.get(4)?,
    })
}

/// An offer from the columns of `OFFER_COLS`, in its order.
fn offer_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<Offer> {
    let low: Option<i64> = row.get(6)?;
    let low_at: Option<i64> = row.get(7)?;
    let alert_avail: Option<i64> = row.get(9)?;
    let verified_avail: Option<i64> = row.get(11)?;
    Ok(Offer {
        price_minor: row.get(0)?,
        availability: code::availability_from(row.get(1)?),
        seller: code::seller_from(row.get(2)?),
        observed_at: row.get(3)?,
        status: OfferStatus::from_code(row.get(4)?),
        last_verified_at: row.get(5)?,
        verified_low: low.zip(low_at),
        alerted: match alert_avail {
            Some(a) => Some((row.get(8)?, code::availability_from(a))),
            None => None,
        },
        verified_reading: match verified_avail {
            Some(a) => Some((row.get(10)?, code::availability_from(a))),
            None => None,
        },
    })
}

/// A [`KeyRep`] from the columns of `KEY_REP_COLS` after `id`
/// (`registered_at, net_hash, alpha, beta, evidence_at, severe_at,
/// severe_prev_at`) starting at position `first` (see
/// `store::verify::key_rep_from_row`, the sqlx twin).
fn key_rep_from(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<KeyRep> {
    let registered_at: i64 = row.get(first)?;
    let net: Option<Vec<u8>> = row.get(first + 1)?;
    let evidence_at: Option<i64> = row.get(first + 4)?;
    Ok(KeyRep {
        registered_at,
        net_hash: net.and_then(|n| <[u8; 16]>::try_from(n.as_slice()).ok()),
        rep: Reputation {
            alpha: row.get(first + 2)?,
            beta: row.get(first + 3)?,
            evidence_at: evidence_at.unwrap_or(registered_at),
            severe_at: [row.get(first + 5)?, row.get(first + 6)?],
        },
    })
}

impl SyncDb {
    fn open_job(&mut self, product: ProductId, cond: i64) -> StoreResult<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM verification_jobs \
                 WHERE product_id = ?1 AND condition = ?2 AND state <> 2",
            )?
            .query_row(params![product, cond], |r| r.get(0))
            .optional()?)
    }

    fn neighbours(
        &mut self,
        product: ProductId,
        cond: i64,
        t: i64,
    ) -> StoreResult<(Option<Run>, Option<Run>)> {
        let prev = self
            .conn
            .prepare_cached(
                "SELECT first_seen, last_seen, price_minor, availability, n FROM history_runs \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen <= ?3 \
                 ORDER BY first_seen DESC LIMIT 1",
            )?
            .query_row(params![product, cond, t], run_from)
            .optional()?;
        let next = self
            .conn
            .prepare_cached(
                "SELECT first_seen, last_seen, price_minor, availability, n FROM history_runs \
                 WHERE product_id = ?1 AND condition = ?2 AND first_seen > ?3 \
                 ORDER BY first_seen ASC LIMIT 1",
            )?
            .query_row(params![product, cond, t], run_from)
            .optional()?;
        Ok((prev, next))
    }

    fn insert_run(&mut self, product: ProductId, cond: i64, run: &Run) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO history_runs \
                 (product_id, condition, first_seen, last_seen, price_minor, availability, n) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                product,
                cond,
                run.first_seen,
                run.last_seen,
                run.price_minor,
                code::availability(run.availability),
                run.n
            ])?;
        Ok(())
    }

    /// `update_runs` of `store::sqlite`, statement for statement.
    fn update_runs_sync(
        &mut self,
        product: ProductId,
        cond: i64,
        r: &NewReport,
    ) -> StoreResult<()> {
        let t = r.observed_at;
        let (prev, next) = self.neighbours(product, cond, t)?;
        let mut plan = plan_run_update(
            prev.as_ref(),
            next.as_ref(),
            t,
            r.price_minor,
            r.availability,
        );
        if plan == RunPlan::Split {
            if let Some(p) = prev {
                let pavail = code::availability(p.availability);
                // Held (5) and refuted (6) audit rows are not in the runs.
                let (k, right_first): (i64, Option<i64>) = self
                    .conn
                    .prepare_cached(
                        "SELECT count(*), min(observed_at) FROM reports \
                         WHERE product_id = ?1 AND condition = ?2 AND observed_at > ?3 \
                           AND observed_at <= ?4 AND price_minor IS ?5 AND availability = ?6 \
                           AND status NOT IN (5, 6)",
                    )?
                    .query_row(
                        params![product, cond, t, p.last_seen, p.price_minor, pavail],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )?;
                match right_first {
                    Some(right_first) if k > 0 => {
                        let left_last: Option<i64> = self
                            .conn
                            .prepare_cached(
                                "SELECT max(observed_at) FROM reports \
                                 WHERE product_id = ?1 AND condition = ?2 AND observed_at >= ?3 \
                                   AND observed_at <= ?4 AND price_minor IS ?5 \
                                   AND availability = ?6 AND status NOT IN (5, 6)",
                            )?
                            .query_row(
                                params![product, cond, p.first_seen, t, p.price_minor, pavail],
                                |row| row.get(0),
                            )?;
                        let left_last = left_last.unwrap_or(p.first_seen).max(p.first_seen);
                        let left_n = (p.n - k).max(1);
                        self.conn
                            .prepare_cached(
                                "UPDATE history_runs SET last_seen = ?3, n = ?4 \
                                 WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?5",
                            )?
                            .execute(params![product, cond, left_last, left_n, p.first_seen])?;
                        self.insert_run(
                            product,
                            cond,
                            &Run {
                                first_seen: t,
                                last_seen: t,
                                price_minor: r.price_minor,
                                availability: r.availability,
                                n: 1,
                            },
                        )?;
                        self.insert_run(
                            product,
                            cond,
                            &Run {
                                first_seen: right_first,
                                last_seen: p.last_seen,
                                price_minor: p.price_minor,
                                availability: p.availability,
                                n: k,
                            },
                        )?;
                        return Ok(());
                    }
                    _ => plan = RunPlan::Count,
                }
            }
        }
        match (plan, prev, next) {
            (RunPlan::Count, Some(p), _) => {
                self.conn
                    .prepare_cached(
                        "UPDATE history_runs SET n = n + 1 \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?3",
                    )?
                    .execute(params![product, cond, p.first_seen])?;
            }
            (RunPlan::ExtendPrev, Some(p), _) => {
                self.conn
                    .prepare_cached(
                        "UPDATE history_runs SET last_seen = ?3, n = n + 1 \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?4",
                    )?
                    .execute(params![product, cond, t, p.first_seen])?;
            }
            (RunPlan::MergeAll, Some(p), Some(nx)) => {
                self.conn
                    .prepare_cached(
                        "DELETE FROM history_runs \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?3",
                    )?
                    .execute(params![product, cond, nx.first_seen])?;
                self.conn
                    .prepare_cached(
                        "UPDATE history_runs SET last_seen = ?3, n = n + ?4 \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?5",
                    )?
                    .execute(params![product, cond, nx.last_seen, nx.n + 1, p.first_seen])?;
            }
            (RunPlan::ExtendNext, _, Some(nx)) => {
                self.conn
                    .prepare_cached(
                        "UPDATE history_runs SET first_seen = ?3, n = n + 1 \
                         WHERE product_id = ?1 AND condition = ?2 AND first_seen = ?4",
                    )?
                    .execute(params![product, cond, t, nx.first_seen])?;
            }
            _ => {
                self.insert_run(
                    product,
                    cond,
                    &Run {
                        first_seen: t,
                        last_seen: t,
                        price_minor: r.price_minor,
                        availability: r.availability,
                        n: 1,
                    },
                )?;
            }
        }
        Ok(())
    }
}

impl IngestDb for SyncDb {
    async fn stored_pairs(
        &mut self,
        reports: &[NewReport],
    ) -> StoreResult<HashSet<(KeyId, [u8; 16])>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM reports WHERE key_id = ?1 AND nonce = ?2")?;
        let mut out = HashSet::new();
        for r in reports {
            if stmt.exists(params![r.key_id, &r.nonce[..]])? {
                out.insert((r.key_id, r.nonce));
            }
        }
        Ok(out)
    }

    async fn load_reporters(&mut self, ids: &[KeyId]) -> StoreResult<HashMap<KeyId, KeyRep>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {KEY_REP_COLS} FROM keys WHERE id = ?1"))?;
        let mut out = HashMap::new();
        for id in ids {
            if let Some(rep) = stmt
                .query_row(params![id], |row| key_rep_from(row, 1))
                .optional()?
            {
                out.insert(*id, rep);
            }
        }
        Ok(out)
    }

    async fn find_or_create_product(
        &mut self,
        r: &NewReport,
        now: i64,
    ) -> StoreResult<CachedProduct> {
        let found = self
            .conn
            .prepare_cached(
                "SELECT id, currency, title FROM products WHERE marketplace = ?1 AND asin = ?2",
            )?
            .query_row(params![r.marketplace, r.asin], |row| {
                Ok(CachedProduct {
                    id: row.get(0)?,
                    currency: row.get(1)?,
                    title: row.get(2)?,
                })
            })
            .optional()?;
        if let Some(p) = found {
            return Ok(p);
        }
        let id: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO products (marketplace, asin, title, currency, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?
            .query_row(
                params![r.marketplace, r.asin, r.title, r.currency, now],
                |row| row.get(0),
            )?;
        Ok(CachedProduct {
            id,
            currency: r.currency.clone(),
            title: r.title.clone(),
        })
    }

    async fn load_series(&mut self, product: ProductId, cond: i64) -> StoreResult<SeriesState> {
        let tail = self
            .conn
            .prepare_cached(
                "SELECT first_seen, last_seen, price_minor, availability, n FROM history_runs \
                 WHERE product_id = ?1 AND condition = ?2 ORDER BY first_seen DESC LIMIT 1",
            )?
            .query_row(params![product, cond], run_from)
            .optional()?;
        let offer = self
            .conn
            .prepare_cached(&format!(
                "SELECT {OFFER_COLS} FROM offers WHERE product_id = ?1 AND condition = ?2"
            ))?
            .query_row(params![product, cond], offer_from)
            .optional()?;
        let open_job = self.open_job(product, cond)?;
        Ok(SeriesState {
            tail,
            offer,
            open_job,
        })
    }

    async fn flush_audit<'a>(&mut self, rows: &mut Vec<AuditRow<'a>>, now: i64) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO reports (key_id, nonce, product_id, condition, observed_at, received_at, \
               price_minor, availability, status, net_hash, raw, reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for a in rows.iter() {
            stmt.execute(params![
                a.r.key_id,
                &a.r.nonce[..],
                a.product,
                a.cond,
                a.r.observed_at,
                now,
                a.r.price_minor,
                code::availability(a.r.availability),
                a.status,
                a.r.net_hash.as_ref().map(|h| &h[..]),
                a.r.raw.as_str(),
                a.reason,
            ])?;
        }
        rows.clear();
        Ok(())
    }

    async fn flush_links(&mut self, links: &mut Vec<ts::Link>) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO verification_reports (job_id, key_id, nonce, received_at, \
               observed_at, price_minor, availability, held, alerts, agreed_verified) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for l in links.iter() {
            stmt.execute(params![
                l.job,
                l.key_id,
                &l.nonce[..],
                l.received_at,
                l.observed_at,
                l.reading.price,
                code::availability(l.reading.availability),
                i64::from(l.held),
                i64::from(l.alerts),
                i64::from(l.agreed_verified),
            ])?;
        }
        links.clear();
        Ok(())
    }

    async fn flush_runs(
        &mut self,
        runs: &mut BTreeMap<(ProductId, i64, i64), Run>,
    ) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO history_runs (product_id, condition, first_seen, last_seen, price_minor, \
               availability, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (product_id, condition, first_seen) DO UPDATE SET \
               last_seen = excluded.last_seen, price_minor = excluded.price_minor, \
               availability = excluded.availability, n = excluded.n",
        )?;
        for ((product, cond, _), run) in runs.iter() {
            stmt.execute(params![
                product,
                cond,
                run.first_seen,
                run.last_seen,
                run.price_minor,
                code::availability(run.availability),
                run.n
            ])?;
        }
        runs.clear();
        Ok(())
    }

    async fn flush_offers(
        &mut self,
        offers: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO offers (product_id, condition, price_minor, availability, seller, \
               observed_at, status, last_verified_at, updated_at, verified_low, verified_low_at, \
               alert_price_minor, alert_availability, verified_price_minor, \
               verified_availability) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
             ON CONFLICT (product_id, condition) DO UPDATE SET \
               price_minor = excluded.price_minor, availability = excluded.availability, \
               seller = excluded.seller, observed_at = excluded.observed_at, \
               status = excluded.status, last_verified_at = excluded.last_verified_at, \
               updated_at = excluded.updated_at, verified_low = excluded.verified_low, \
               verified_low_at = excluded.verified_low_at, \
               alert_price_minor = excluded.alert_price_minor, \
               alert_availability = excluded.alert_availability, \
               verified_price_minor = excluded.verified_price_minor, \
               verified_availability = excluded.verified_availability",
        )?;
        for ((product, cond), o) in offers {
            stmt.execute(params![
                product,
                cond,
                o.price_minor,
                code::availability(o.availability),
                code::seller(o.seller),
                o.observed_at,
                o.status as i64,
                o.last_verified_at,
                now,
                o.verified_low.map(|l| l.0),
                o.verified_low.map(|l| l.1),
                o.alerted.and_then(|a| a.0),
                o.alerted.map(|a| code::availability(a.1)),
                o.verified_reading.and_then(|v| v.0),
                o.verified_reading.map(|v| code::availability(v.1)),
            ])?;
        }
        Ok(())
    }

    async fn flush_outbox(
        &mut self,
        before: &mut BTreeMap<SeriesKey, Option<Offer>>,
        after: &BTreeMap<SeriesKey, Offer>,
        now: i64,
    ) -> StoreResult<u64> {
        let mut n = 0u64;
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO outbox (product_id, condition, old_price_minor, new_price_minor, \
               old_availability, new_availability, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS \
               (SELECT 1 FROM watches WHERE product_id = ?1 AND condition = ?2)",
        )?;
        for (key, old) in before.iter() {
            let Some(new) = after.get(key) else { continue };
            let changed = match old {
                None => true,
                Some(o) => o.price_minor != new.price_minor || o.availability != new.availability,
            };
            if !changed {
                continue;
            }
            let rows = stmt.execute(params![
                key.0,
                key.1,
                old.as_ref().and_then(|o| o.price_minor),
                new.price_minor,
                old.as_ref().map(|o| code::availability(o.availability)),
                code::availability(new.availability),
                now,
            ])?;
            n += rows as u64;
        }
        before.clear();
        Ok(n)
    }

    async fn set_title(&mut self, product: ProductId, title: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached("UPDATE products SET title = ?1 WHERE id = ?2")?
            .execute(params![title, product])?;
        Ok(())
    }

    async fn update_runs(
        &mut self,
        product: ProductId,
        cond: i64,
        r: &NewReport,
    ) -> StoreResult<()> {
        self.update_runs_sync(product, cond, r)
    }

    async fn alerts_for(
        &mut self,
        product: ProductId,
        cond: i64,
        reading: Reading,
        alerted_availability: Option<Availability>,
    ) -> StoreResult<u32> {
        let price = reading
            .price
            .filter(|_| reading.availability != Availability::OutOfStock);
        let back = reading.availability == Availability::InStock
            && alerted_availability != Some(Availability::InStock);
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM watches WHERE product_id = ?1 AND condition = ?2 \
                 AND ((armed = 1 AND ?3 IS NOT NULL AND threshold >= ?3) \
                   OR (?4 = 1 AND back_in_stock = 1 AND stock_armed = 1))",
            )?
            .query_row(params![product, cond, price, i64::from(back)], |r| r.get(0))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn recent_reports(
        &mut self,
        product: ProductId,
        cond: i64,
        now: i64,
    ) -> StoreResult<Vec<Recent>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT r.key_id AS rk, r.price_minor AS rp, r.availability AS ra, \
               r.observed_at AS rt, k.registered_at AS k_registered_at, \
               k.net_hash AS k_net_hash, k.alpha AS k_alpha, k.beta AS k_beta, \
               k.evidence_at AS k_evidence_at, k.severe_at AS k_severe_at, \
               k.severe_prev_at AS k_severe_prev_at \
             FROM reports r JOIN keys k ON k.id = r.key_id \
             WHERE r.product_id = ?1 AND r.condition = ?2 AND r.observed_at >= ?3 \
               AND r.status <> ?4",
        )?;
        let rows = stmt.query_map(
            params![
                product,
                cond,
                now - trust::CORROBORATION_WINDOW_MS,
                status::REFUTED
            ],
            |row| {
                // rk, rp, ra, rt, then the key's columns from position 4.
                let key: i64 = row.get(0)?;
                let k = key_rep_from(row, 4)?;
                Ok((
                    key,
                    k.group(key),
                    k.rep.score(now),
                    Reading {
                        price: row.get(1)?,
                        availability: code::availability_from(row.get(2)?),
                    },
                    row.get(3)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    async fn within_crawl_limit(
        &mut self,
        key: KeyId,
        rep: &KeyRep,
        now: i64,
    ) -> StoreResult<bool> {
        let counts = |row: &rusqlite::Row<'_>| -> rusqlite::Result<trust::TriggerCounts> {
            let open: i64 = row.get(0)?;
            let day: i64 = row.get(1)?;
            Ok(trust::TriggerCounts {
                open: u32::try_from(open).unwrap_or(u32::MAX),
                last_day: u32::try_from(day).unwrap_or(u32::MAX),
            })
        };
        let since = now - trust::DAY_MS;
        let mine = self
            .conn
            .prepare_cached(
                "SELECT coalesce(sum(CASE WHEN state <> 2 THEN 1 ELSE 0 END), 0), count(*) \
                 FROM verification_jobs WHERE trigger_key = ?1 AND enqueued_at > ?2 \
                   AND reason <> 'spot_check'",
            )?
            .query_row(params![key, since], counts)?;
        let group = match rep.net_hash {
            None => mine,
            Some(net) => self
                .conn
                .prepare_cached(super::super::verify::GROUP_TRIGGER_COUNTS)?
                .query_row(
                    params![&net[..], rep.registered_at.div_euclid(trust::DAY_MS), since],
                    counts,
                )?,
        };
        Ok(trust::within_crawl_limit(mine, group))
    }

    async fn queue_job(
        &mut self,
        product: ProductId,
        cond: i64,
        req: &CrawlRequest,
        trigger: Option<KeyId>,
        now: i64,
    ) -> StoreResult<i64> {
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "INSERT INTO verification_jobs (product_id, condition, reason, priority, \
                   critical, state, enqueued_at, next_attempt_at, hold_expires_at, trigger_key, \
                   trigger_net, trigger_cohort) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6, ?7, ?8, \
                   (SELECT net_hash FROM keys WHERE id = ?8), \
                   (SELECT registered_at / 86400000 FROM keys WHERE id = ?8)) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )?
            .query_row(
                params![
                    product,
                    cond,
                    req.reason,
                    req.priority,
                    i64::from(req.critical),
                    now,
                    trust::outcome::hold_expires_at(now),
                    trigger
                ],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => Ok(id),
            None => self
                .open_job(product, cond)?
                .ok_or_else(|| StoreError::Database("no open job after a conflict".into())),
        }
    }

    async fn escalate(&mut self, job: i64, wanted: &CrawlRequest) -> StoreResult<()> {
        let pending = self
            .conn
            .prepare_cached("SELECT priority, critical FROM verification_jobs WHERE id = ?1")?
            .query_row(params![job], |row| {
                Ok(trust::JobPriority {
                    priority: row.get(0)?,
                    critical: row.get::<_, i64>(1)? != 0,
                })
            })
            .optional()?;
        let Some(pending) = pending else {
            return Ok(());
        };
        if let Some(up) = trust::escalate(pending, wanted) {
            self.conn
                .prepare_cached(
                    "UPDATE verification_jobs SET priority = ?2, critical = ?3 WHERE id = ?1",
                )?
                .execute(params![job, up.priority, i64::from(up.critical)])?;
        }
        Ok(())
    }

    async fn save_reputation(&mut self, key_id: KeyId, rep: &Reputation) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE keys SET alpha = ?1, beta = ?2, evidence_at = ?3, severe_at = ?4, \
                 severe_prev_at = ?5 WHERE id = ?6",
            )?
            .execute(params![
                rep.alpha,
                rep.beta,
                rep.evidence_at,
                rep.severe_at[0],
                rep.severe_at[1],
                key_id
            ])?;
        Ok(())
    }

    async fn insert_waiting(
        &mut self,
        product: ProductId,
        cond: i64,
        w: &Waiting,
    ) -> StoreResult<()> {
        let r = &w.report;
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO waiting_reports (product_id, condition, key_id, nonce, \
                   received_at, observed_at, price_minor, availability, alerts, \
                   before_price_minor, before_availability, in_history) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                product,
                cond,
                w.key_id,
                &w.nonce[..],
                w.received_at,
                r.observed_at,
                r.reading.price,
                code::availability(r.reading.availability),
                i64::from(r.alerts),
                r.before.and_then(|b| b.price),
                r.before.map(|b| code::availability(b.availability)),
                i64::from(w.in_history),
            ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The two implementations of [`IngestDb`] must leave the database in
    //! the same state: the same batches go through `ingest_batch` on the
    //! synchronous connection and on sqlx's, and every table is compared.

    use super::super::{ingest_batch, SqliteStore, Writer};
    use super::*;
    use crate::store::{IngestOutcome, Storage};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rusqlite::types::Value;
    use sqlx::Connection;
    use wasm_core::types::{Condition, Seller};

    const NOW: i64 = 1_763_800_000_000;
    const MIN: i64 = 60_000;

    #[allow(clippy::too_many_arguments)]
    fn report(
        key_id: KeyId,
        nonce: u8,
        asin: &str,
        price: Option<i64>,
        currency: &str,
        observed_at: i64,
        trusted: bool,
    ) -> NewReport {
        NewReport {
            key_id,
            nonce: [nonce; 16],
            marketplace: "amazon.com".into(),
            asin: asin.into(),
            condition: Condition::New,
            price_minor: price,
            currency: currency.into(),
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: format!("title of {asin} {}", nonce % 3),
            observed_at,
            trusted,
            net_hash: Some([key_id as u8; 16]),
            raw: format!("{{\"n\":{nonce}}}"),
        }
    }

    /// Batches covering the paths of `ingest_batch`: new products, agreeing
    /// and deviating reports (holds, crawl jobs, links), an established
    /// key (the corroboration queries), a watched product (alert count,
    /// outbox), a duplicate nonce, a currency mismatch, a trusted report,
    /// and late observations (the general run update, with a split).
    fn batches() -> Vec<(i64, Vec<NewReport>)> {
        let (a, b, c) = ("B000000001", "B000000002", "B000000003");
        vec![
            (
                NOW,
                vec![
                    report(1, 1, a, Some(1000), "USD", NOW - 5 * MIN, false),
                    report(1, 2, b, Some(2000), "USD", NOW - 5 * MIN, false),
                    report(2, 3, c, Some(3000), "USD", NOW - 5 * MIN, false),
                    report(2, 4, a, Some(1000), "USD", NOW - 4 * MIN, false),
                ],
            ),
            (
                NOW + MIN,
                vec![
                    report(2, 5, a, Some(900), "USD", NOW - 3 * MIN, false),
                    report(1, 6, a, Some(900), "USD", NOW - 2 * MIN, false),
                    report(1, 1, a, Some(1000), "USD", NOW - 5 * MIN, false),
                    report(2, 7, b, Some(2000), "EUR", NOW - 2 * MIN, false),
                    report(1, 8, c, Some(3000), "USD", NOW - MIN, false),
                    report(3, 9, b, Some(1900), "USD", NOW - MIN, true),
                ],
            ),
            (
                NOW + 2 * MIN,
                vec![
                    report(2, 10, c, Some(2500), "USD", NOW - 3 * MIN, false),
                    report(1, 11, c, Some(3000), "USD", NOW - 6 * MIN, false),
                    report(2, 12, a, None, "USD", NOW, false),
                    report(1, 13, b, Some(1900), "USD", NOW + MIN, false),
                    report(2, 13, b, Some(1900), "USD", NOW + MIN, false),
                    report(3, 14, a, Some(950), "USD", NOW + MIN, true),
                    report(1, 15, a, Some(950), "USD", NOW + MIN, false),
                ],
            ),
        ]
    }

    /// A migrated database with three keys (key 1 established) at `path`.
    async fn fresh(path: &Path) -> String {
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url).await.expect("open");
        for k in 1u8..=3 {
            store
                .register_key(&[k; 32], NOW - 90 * trust::DAY_MS, Some([k; 16]))
                .await
                .expect("register");
        }
        store.close().await;
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute(
            "UPDATE keys SET alpha = 40.0, evidence_at = ?1 WHERE id = 1",
            params![NOW],
        )
        .expect("established key");
        url
    }

    /// After the first batch: a watch on the first product that any price
    /// fires.
    fn watch(path: &Path) {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute(
            "INSERT INTO watches (key_id, product_id, condition, target_price_minor, \
               back_in_stock, threshold, armed, stock_armed, ch_extension, created_at) \
             VALUES (2, 1, 0, 100000, 1, 100000, 1, 1, 1, ?1)",
            params![NOW],
        )
        .expect("watch");
    }

    fn dump(path: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
        let conn = rusqlite::Connection::open(path).expect("open");
        let mut tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%' \
                 AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .expect("tables")
            .query_map([], |r| r.get(0))
            .expect("tables")
            .collect::<Result<_, _>>()
            .expect("tables");
        tables.retain(|t| t != "settings");
        tables
            .into_iter()
            .map(|t| {
                let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).expect("select");
                let n = stmt.column_count();
                let mut rows: Vec<Vec<Value>> = stmt
                    .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                    .expect("rows")
                    .collect::<Result<_, _>>()
                    .expect("rows");
                rows.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
                (t, rows)
            })
            .collect()
    }

    #[tokio::test]
    async fn sync_and_sqlx_connections_write_the_same_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pa, pb) = (dir.path().join("sync.db"), dir.path().join("sqlx.db"));
        fresh(&pa).await;
        let url_b = fresh(&pb).await;

        let mut wa = Writer {
            rng: StdRng::seed_from_u64(7),
            ..Writer::default()
        };
        let mut sync = SyncDb::open(&pa).expect("sync");
        let mut outs_a = Vec::new();
        for (i, (now, reports)) in batches().into_iter().enumerate() {
            sync.begin().expect("begin");
            outs_a.push(run_now(ingest_batch(&mut wa, &mut sync, &reports, now)).expect("sync"));
            sync.commit().expect("commit");
            if i == 0 {
                watch(&pa);
            }
        }
        drop(sync);

        let mut wb = Writer {
            rng: StdRng::seed_from_u64(7),
            ..Writer::default()
        };
        let mut conn = sqlx::SqliteConnection::connect(&url_b).await.expect("sqlx");
        let mut outs_b = Vec::new();
        for (i, (now, reports)) in batches().into_iter().enumerate() {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            outs_b.push(
                ingest_batch(&mut wb, &mut *tx, &reports, now)
                    .await
                    .expect("sqlx"),
            );
            tx.commit().await.expect("commit");
            if i == 0 {
                watch(&pb);
            }
        }
        conn.close().await.expect("close");

        assert_eq!(outs_a, outs_b);
        // The batches reach the paths they are meant to.
        let all: Vec<IngestOutcome> = outs_a.concat();
        assert!(all.contains(&IngestOutcome::Duplicate), "{all:?}");
        assert!(all.contains(&IngestOutcome::CurrencyMismatch), "{all:?}");
        assert!(all.contains(&IngestOutcome::Accepted), "{all:?}");
        assert_eq!(wa.pending_events, wb.pending_events);
        assert!(wa.pending_events > 0, "the watched product wrote no event");
        let (da, db) = (dump(&pa), dump(&pb));
        let count = |d: &[(String, Vec<Vec<Value>>)], t: &str| {
            d.iter().find(|x| x.0 == t).map_or(0, |x| x.1.len())
        };
        // 17 reports, one duplicate and one currency mismatch not stored.
        assert_eq!(count(&da, "reports"), 15);
        assert!(count(&da, "history_runs") >= 4);
        assert!(count(&da, "verification_jobs") >= 1);
        for ((ta, ra), (tb, rb)) in da.iter().zip(&db) {
            assert_eq!(ta, tb);
            assert_eq!(ra, rb, "table {ta} differs");
        }
        assert_eq!(da.len(), db.len());
    }
}
