//! Storage: one trait, [`Storage`], with one implementation per database.
//!
//! The HTTP layer and the jobs only ever see `Arc<dyn Storage>`; the backend
//! is chosen once from the URL scheme by [`connect`]. Each implementation
//! owns its SQL dialect and its migrations (`backend/migrations/<db>/`).
//! Nothing here is database-specific except the modules named after one.
//!
//! # Contract every implementation must keep
//!
//! * **Times** are Unix milliseconds (`i64`), prices integer minor units
//!   (`i64`, `None` = no price offered). Enums are stored as the small codes
//!   of [`code`] (stable: they are on disk).
//! * **Ingest is transactional per call**: [`Storage::ingest`] either
//!   commits every report it returns a non-`Rejected` outcome for, or
//!   returns an error and commits nothing. A report is "accepted" only once
//!   that commit returned. Reports of one call are applied in order, so a
//!   repeated `(key, nonce)` inside one batch gives `Duplicate` for the
//!   second one.
//! * **Replay**: `(key_id, nonce)` of reports is unique for as long as the
//!   audit row lives (the retention, at least [`MIN_AUDIT_RETENTION_MS`]);
//!   older replays are refused by the caller's freshness check (24 h), so
//!   the pair is refused forever.
//! * **History runs** (see [`plan_run_update`]): per series
//!   `(product, condition)` the observations, ordered by `observed_at`,
//!   are cut into maximal runs of equal `(price, availability)`; one row per
//!   run holds `first_seen`, `last_seen`, `n`. Runs of one series never
//!   overlap. Late observations (up to 24 h) are merged into place, which
//!   can split a run; the split point is found from the audit rows.
//! * **Published offer**: one row per series, moved only by a report
//!   whose trust decision ([`crate::trust::decide`], applied as
//!   [`verify`] describes) publishes it, never by an observation older
//!   than the published one or than [`PUBLISH_MAX_AGE_MS`]. Held reports
//!   enter the history runs only once a crawl confirms them.
//! * Errors are [`StoreError`]; a unique-constraint violation that is not
//!   an expected outcome is `Conflict`, everything else `Database`.

pub mod history;
pub mod packed;
pub mod postgres;
pub mod sqlite;
mod trust_postgres;
mod trust_sqlite;
pub mod verify;

use crate::watch::{
    AlertRecord, DeliveryChannel, DeliveryState, EvalStats, NewWatch, PendingContact, Watch,
};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasm_core::types::{Availability, Condition, Seller};

/// Row id of a registered key.
pub type KeyId = i64;
/// Row id of a product (marketplace + ASIN).
pub type ProductId = i64;

/// Observations older than this (relative to receipt) never move the
/// published price (TRUST.md): they go into history only.
pub const PUBLISH_MAX_AGE_MS: i64 = 10 * 60 * 1000;

/// The audit retention is clamped to at least this, so that a late
/// observation (24 h at most) can always find the audit rows it needs to
/// split a run, and so that `(key, nonce)` stays unique across the whole
/// freshness window.
pub const MIN_AUDIT_RETENTION_MS: i64 = 2 * 24 * 3600 * 1000;

/// Errors of the storage layer. The HTTP layer maps them to status codes in
/// one place (`http::error`); details are logged, never sent to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken in a way the operation does not expect.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something the caller asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(String),
    /// The configuration (URL, options) is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

/// Result alias of the storage layer.
pub type StoreResult<T> = Result<T, StoreError>;

/// Stable small-integer codes of the wire enums, as stored on disk.
/// Where the stores stop counting a group's crawl triggers of the last day
/// (`LIMIT 16` in `GROUP_TRIGGER_COUNTS`): above every limit it is compared
/// with, so capping changes no decision.
pub(crate) const TRIGGER_COUNT_CAP: u32 = 16;
const _: () = assert!(
    crate::trust::limits::GROUP_CRAWLS_PER_DAY < TRIGGER_COUNT_CAP
        && crate::trust::limits::GROUP_OPEN_CRAWLS < TRIGGER_COUNT_CAP
);

pub mod code {
    use wasm_core::types::{Availability, Condition, Seller};

    /// `Condition` to its code.
    pub fn condition(c: Condition) -> i64 {
        match c {
            Condition::New => 0,
            Condition::Used => 1,
            Condition::Refurbished => 2,
        }
    }
    /// Code back to `Condition` (`None` for an unknown code).
    pub fn condition_from(v: i64) -> Option<Condition> {
        Some(match v {
            0 => Condition::New,
            1 => Condition::Used,
            2 => Condition::Refurbished,
            _ => return None,
        })
    }
    /// `Availability` to its code.
    pub fn availability(a: Availability) -> i64 {
        match a {
            Availability::InStock => 0,
            Availability::OutOfStock => 1,
            Availability::Preorder => 2,
            Availability::Unknown => 3,
        }
    }
    /// Code back to `Availability` (unknown codes read as `Unknown`).
    pub fn availability_from(v: i64) -> Availability {
        match v {
            0 => Availability::InStock,
            1 => Availability::OutOfStock,
            2 => Availability::Preorder,
            _ => Availability::Unknown,
        }
    }
    /// `Seller` to its code.
    pub fn seller(s: Seller) -> i64 {
        match s {
            Seller::Amazon => 0,
            Seller::ThirdParty => 1,
            Seller::Unknown => 2,
        }
    }
    /// Code back to `Seller` (unknown codes read as `Unknown`).
    pub fn seller_from(v: i64) -> Seller {
        match v {
            0 => Seller::Amazon,
            1 => Seller::ThirdParty,
            _ => Seller::Unknown,
        }
    }
}

/// Status of a published offer (API.md product summary `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferStatus {
    /// Published from collectors, not yet checked by a crawl.
    Provisional = 0,
    /// Observed by a trusted verifier.
    Verified = 1,
    /// Independent established reporters agree (trust issue).
    Confirmed = 2,
    /// A crawl refuted the last published value (trust issue).
    Corrected = 3,
}

impl OfferStatus {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Provisional => "provisional",
            OfferStatus::Verified => "verified",
            OfferStatus::Confirmed => "confirmed",
            OfferStatus::Corrected => "corrected",
        }
    }
    /// From the stored code.
    pub fn from_code(v: i64) -> Self {
        match v {
            1 => OfferStatus::Verified,
            2 => OfferStatus::Confirmed,
            3 => OfferStatus::Corrected,
            _ => OfferStatus::Provisional,
        }
    }
}

/// A registered key.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Row id.
    pub id: KeyId,
    /// Raw Ed25519 public key.
    pub public_key: [u8; 32],
    /// When it registered (ms).
    pub registered_at: i64,
    /// Beta reputation evidence (both 1.0 for a new key).
    pub alpha: f64,
    /// Beta reputation evidence (both 1.0 for a new key).
    pub beta: f64,
    /// Blocked keys are refused (403 `blocked_key`).
    pub blocked: bool,
    /// Set once the key erased its data; reports observed before it are
    /// refused.
    pub erased_at: Option<i64>,
}

impl KeyRecord {
    /// Trust score: lower bound of the Beta(alpha, beta) mean (TRUST.md),
    /// `max(0, mean - 1.28 sd)`. About 0.13 for a new key.
    pub fn trust(&self) -> f64 {
        let (a, b) = (self.alpha.max(1e-9), self.beta.max(1e-9));
        let s = a + b;
        let mean = a / s;
        let var = a * b / (s * s * (s + 1.0));
        (mean - 1.28 * var.sqrt()).max(0.0)
    }
}

/// Outcome of [`Storage::register_key`].
#[derive(Debug, Clone, PartialEq)]
pub enum Registered {
    /// First registration (HTTP 201).
    Created(KeyRecord),
    /// Already registered (HTTP 200, same body). An erased key re-registers
    /// as `Created` with its old row revived (erased_at kept).
    Existing(KeyRecord),
}

/// One signed, verified, grammar-checked report, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    /// Who signed it (already checked registered, not blocked).
    pub key_id: KeyId,
    /// The 16 nonce bytes.
    pub nonce: [u8; 16],
    /// Marketplace domain (`amazon.de`).
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Which offer.
    pub condition: Condition,
    /// Price in minor units, `None` when no price was offered.
    pub price_minor: Option<i64>,
    /// ISO 4217 currency.
    pub currency: String,
    /// Availability.
    pub availability: Availability,
    /// Seller.
    pub seller: Seller,
    /// Title (already folded and bounded by the protocol grammar).
    pub title: String,
    /// When the page was read (ms).
    pub observed_at: i64,
    /// Signed by a trusted verifier key (ground truth).
    pub trusted: bool,
    /// Keyed hash of the sender's network prefix (never the raw address).
    pub net_hash: Option<[u8; 16]>,
    /// The report JSON exactly as received, for the audit log.
    pub raw: String,
}

/// Per-report result of [`Storage::ingest`] (API.md `status` values this
/// issue can produce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored and published (or agrees with the published price).
    Accepted,
    /// Stored in history only (too old, or older than the published one).
    Stored,
    /// This `(key, nonce)` was seen before; nothing changed.
    Duplicate,
    /// Not stored: the currency does not match the product's currency.
    CurrencyMismatch,
    /// Published but flagged until a crawl verifies it; fires no alerts
    /// (trust issue).
    Provisional,
    /// Stored, not published; a verification crawl is queued or pending
    /// (trust issue).
    Held,
}

impl IngestOutcome {
    /// Code stored in `reports.status`.
    pub fn code(self) -> i64 {
        match self {
            IngestOutcome::Accepted => 0,
            IngestOutcome::Stored => 1,
            IngestOutcome::Duplicate => 2,
            IngestOutcome::CurrencyMismatch => 3,
            IngestOutcome::Provisional => verify::status::PROVISIONAL,
            IngestOutcome::Held => verify::status::HELD,
        }
    }
}

/// What the published offer currently is (input of [`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Price, `None` = no price offered.
    pub price_minor: Option<i64>,
    /// Availability.
    pub availability: Availability,
    /// Seller.
    pub seller: Seller,
    /// When the published observation was made.
    pub observed_at: i64,
    /// Provisional / verified / ...
    pub status: OfferStatus,
    /// Last time a trusted verifier observed this product (ms).
    pub last_verified_at: Option<i64>,
    /// Lowest price a verifier (or confirmed reports) published, and when.
    pub verified_low: Option<(i64, i64)>,
    /// The value the watch outbox last saw (price, availability); `None`
    /// before the first price that may alert. Provisional and held prices
    /// never reach the outbox (see [`verify`]).
    pub alerted: Option<(Option<i64>, Availability)>,
    /// The last reading a trusted verifier published for the series (price,
    /// availability), whatever is published now; `None` when none was
    /// (or before the columns existed). A waiting report's `before`
    /// ([`verify::waiting_before`]).
    pub verified_reading: Option<(Option<i64>, Availability)>,
}

/// One history run (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First observation time (ms).
    pub first_seen: i64,
    /// Last observation time (ms), `>= first_seen`.
    pub last_seen: i64,
    /// Price, `None` = no price offered.
    pub price_minor: Option<i64>,
    /// Availability.
    pub availability: Availability,
    /// Number of observations, `>= 1`.
    pub n: i64,
}

impl Run {
    /// Same value as an observation?
    pub fn same_value(&self, price: Option<i64>, availability: Availability) -> bool {
        self.price_minor == price && self.availability == availability
    }
}

/// What to do to the runs of a series for one new observation at `t` with
/// value `v`, given `prev` (the run with the greatest `first_seen <= t`)
/// and `next` (the run with the smallest `first_seen > t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPlan {
    /// `t` falls inside `prev` (`t <= prev.last_seen`) and the value is the
    /// same: `n += 1`. Also used, as a documented approximation, for a
    /// different value at exactly `prev.first_seen` (two values in the same
    /// millisecond of one series: the run keeps the first one).
    Count,
    /// Extend `prev`: `last_seen = t`, `n += 1`.
    ExtendPrev,
    /// Extend `prev` to `t` and merge `next` into it (same value on both
    /// sides): `last_seen = next.last_seen`, `n += next.n + 1`, delete
    /// `next`.
    MergeAll,
    /// Move `next`'s start back: `first_seen = t`, `n += 1`.
    ExtendNext,
    /// Insert a new run `[t, t]`, `n = 1`.
    Insert,
    /// `t` falls strictly inside `prev` (`prev.first_seen <= t <
    /// prev.last_seen`) with another value: split `prev`. The part after
    /// `t` holds the `k` observations of `prev` with `observed_at > t`
    /// (counted from the audit rows, which cover the whole 24 h lateness
    /// window): left `[prev.first_seen, max audit time <= t of prev's
    /// value]` with `n - k`, then `[t, t]` for the new value, then right
    /// `[min audit time > t, prev.last_seen]` with `k`. The left part's end
    /// falls back to `prev.first_seen` when no audit row of it is left.
    /// When `k == 0` (cannot happen while the retention is at least
    /// [`MIN_AUDIT_RETENTION_MS`]) the implementation does `Count`.
    Split,
}

/// Pure planner shared by every implementation (see [`RunPlan`]). Ties at
/// equal milliseconds: an observation at `t == prev.last_seen` with a
/// different value is treated as later than `prev` (arrival order), which
/// keeps runs disjoint when `first_seen` values differ.
pub fn plan_run_update(
    prev: Option<&Run>,
    next: Option<&Run>,
    t: i64,
    price: Option<i64>,
    availability: Availability,
) -> RunPlan {
    if let Some(p) = prev {
        if t <= p.last_seen {
            if p.same_value(price, availability) {
                return RunPlan::Count;
            }
            if p.first_seen == t {
                // Another value at the very millisecond `prev` starts: no
                // room for a run of its own; counted into `prev`
                // (approximation, documented on `RunPlan::Count`).
                return RunPlan::Count;
            }
            if t < p.last_seen {
                return RunPlan::Split;
            }
            // t == last_seen, other value: falls through as "after prev".
        } else if p.same_value(price, availability) {
            return match next {
                Some(nx) if nx.same_value(price, availability) => RunPlan::MergeAll,
                _ => RunPlan::ExtendPrev,
            };
        }
    }
    match next {
        Some(nx) if nx.same_value(price, availability) => RunPlan::ExtendNext,
        _ => RunPlan::Insert,
    }
}

/// A product and its published offers, for the summary endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductSummary {
    /// Row id.
    pub id: ProductId,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Latest non-empty title.
    pub title: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Number of watches (kept by the watches issue).
    pub watchers: i64,
    /// One entry per condition that has a published offer.
    pub offers: Vec<OfferSummary>,
}

/// One published offer with its all-time extremes.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferSummary {
    /// Which offer.
    pub condition: Condition,
    /// The published values.
    pub offer: Offer,
    /// Distinct keys that reported the current value since the current run
    /// began (within the audit retention).
    pub reporters: i64,
    /// All-time lowest price and the last time it was seen.
    pub lowest: Option<(i64, i64)>,
    /// All-time highest price and the last time it was seen.
    pub highest: Option<(i64, i64)>,
}

/// The identity of a product, without its offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInfo {
    /// Row id.
    pub id: ProductId,
    /// ISO 4217 currency.
    pub currency: String,
    /// Latest non-empty title.
    pub title: String,
}

/// What the history endpoint reads in one call
/// ([`Storage::product_history_with_corrections`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRead {
    /// The product.
    pub info: ProductInfo,
    /// Its runs, as [`Storage::history_runs`] gives them.
    pub runs: Vec<Run>,
    /// The series' corrections in the range, as [`Storage::corrections`].
    pub corrections: Vec<verify::CorrectionRow>,
}

/// A product as listed by search.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRef {
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
}

/// Counts returned by [`Storage::purge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeStats {
    /// Audit rows deleted.
    pub reports: u64,
    /// Expired request nonces deleted.
    pub request_nonces: u64,
    /// History runs packed (PostgreSQL's `history_packed`; 0 on SQLite).
    pub packed_runs: u64,
}

/// Sizes for the benchmarks and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes used by price history (runs table and its indexes).
    pub history_bytes: i64,
    /// Runs in the history (PostgreSQL: rows of `history_runs` plus the
    /// runs packed in `history_packed`).
    pub history_rows: i64,
    /// Bytes used by the audit log (reports table and its indexes).
    pub audit_bytes: i64,
    /// Observations represented by the history (sum of `n`).
    pub observations: i64,
}

/// Per-key counts for `GET /v1/me`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyActivity {
    /// Reports linked to the key (within the audit retention).
    pub reports: i64,
    /// Watches of the key (watches issue; 0 until then).
    pub watches: i64,
}

/// A batch of reports on its way to [`Storage::ingest`] (see
/// [`Storage::ingest_coming`]); it stops counting when dropped.
pub struct Coming(Option<Arc<AtomicUsize>>);

impl Coming {
    /// Counts one batch on `counter` until dropped.
    pub fn count(counter: &Arc<AtomicUsize>) -> Coming {
        counter.fetch_add(1, Ordering::AcqRel);
        Coming(Some(counter.clone()))
    }
}

impl Drop for Coming {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The storage trait. Implementations: [`sqlite::SqliteStore`]; the
/// PostgreSQL one lives in `store/postgres*`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip to the database (for `/healthz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The per-install secret (32 bytes) used to hash network prefixes;
    /// created on first call and stable afterwards.
    async fn install_secret(&self) -> StoreResult<[u8; 32]>;

    /// Registers `public_key` at `now`. Idempotent: an existing live key
    /// gives `Existing` and changes nothing. A tombstoned (erased) key is
    /// revived as `Created` with `registered_at = now`, keeping `erased_at`.
    async fn register_key(
        &self,
        public_key: &[u8; 32],
        now: i64,
        net_hash: Option<[u8; 16]>,
    ) -> StoreResult<Registered>;

    /// Looks keys up by public key. Returns one entry per input, in order
    /// (`None` = never registered). Tombstoned keys are returned too; the
    /// caller treats `erased_at` (see [`KeyRecord`]).
    async fn keys_by_public(&self, keys: &[[u8; 32]]) -> StoreResult<Vec<Option<KeyRecord>>>;

    /// Stores a batch of reports in one transaction and returns one outcome
    /// per report, in order (see the module docs for the guarantees). For
    /// each report: the product row is created or its title refreshed
    /// (non-empty titles only), the audit row is inserted (a `(key_id,
    /// nonce)` conflict gives `Duplicate` and nothing else changes), the
    /// trust decision ([`crate::trust::decide`], see [`verify`]) picks the
    /// outcome, whether the published offer moves (a trusted report
    /// publishes with status `Verified` and sets `last_verified_at`),
    /// whether the watch outbox hears of it, and whether a crawl is queued
    /// or the report attached to the pending one; the history runs are
    /// updated with [`plan_run_update`] unless the report is held.
    /// A report whose currency differs from the product's is
    /// `CurrencyMismatch` and leaves no trace.
    async fn ingest(&self, reports: &[NewReport], now: i64) -> StoreResult<Vec<IngestOutcome>>;

    /// Announces a batch that will reach [`Storage::ingest`] soon (taken
    /// before its signatures are verified, dropped after `ingest`
    /// returned or the batch was given up). The SQLite store lets "seen
    /// again" refreshes wait while more ingest is coming (`sqlite`'s
    /// `deferred` module); the default counts nothing.
    fn ingest_coming(&self) -> Coming {
        Coming(None)
    }

    /// Records the nonce of a signed request; `false` when `(key_id,
    /// nonce)` was already recorded and has not expired (a replay).
    async fn claim_request_nonce(
        &self,
        key_id: KeyId,
        nonce: &[u8],
        expires_at: i64,
    ) -> StoreResult<bool>;

    /// Counts for `GET /v1/me`.
    async fn key_activity(&self, key_id: KeyId) -> StoreResult<KeyActivity>;

    /// `DELETE /v1/me`: in one transaction, unlink the key's reports
    /// (`key_id = NULL`), delete its request nonces (and, once they exist,
    /// watches, alerts and contact addresses), and tombstone the key
    /// (`erased_at = now`, reputation reset).
    async fn erase_key(&self, key_id: KeyId, now: i64) -> StoreResult<()>;

    /// Id, currency and title of a product (no offers): the cheap lookup of
    /// the history endpoint. The default goes through
    /// [`Storage::product_summary`]; implementations should override it
    /// with one indexed query. (Added after the first version of the trait.)
    async fn product_info(
        &self,
        marketplace: &str,
        asin: &str,
    ) -> StoreResult<Option<ProductInfo>> {
        Ok(self
            .product_summary(marketplace, asin)
            .await?
            .map(|s| ProductInfo {
                id: s.id,
                currency: s.currency,
                title: s.title,
            }))
    }

    /// The product and its published offers; `None` when unknown.
    async fn product_summary(
        &self,
        marketplace: &str,
        asin: &str,
    ) -> StoreResult<Option<ProductSummary>>;

    /// The history runs of `(product, condition)` that overlap `[from,
    /// to]`, plus the run in effect just before `from` (the last run with
    /// `first_seen < from`, which may end before `from`), ordered by
    /// `first_seen`. Must use an index on `(product, condition,
    /// first_seen)`: this is the chart query.
    async fn history_runs(
        &self,
        product: ProductId,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<Run>>;

    /// [`Storage::product_info`] and then [`Storage::history_runs`] of that
    /// product, as the history endpoint needs them; `None` when the product
    /// is unknown. The default makes the two calls; a store where each
    /// call is a network round trip (PostgreSQL) answers with one query.
    /// (Added for issue 4's history benchmark.)
    async fn product_history(
        &self,
        marketplace: &str,
        asin: &str,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Option<(ProductInfo, Vec<Run>)>> {
        let Some(info) = self.product_info(marketplace, asin).await? else {
            return Ok(None);
        };
        let runs = self.history_runs(info.id, condition, from, to).await?;
        Ok(Some((info, runs)))
    }

    /// Everything the history endpoint reads: [`Storage::product_history`]
    /// and the series' [`Storage::corrections`] in `[from, to]`. The
    /// default makes the calls; PostgreSQL answers with one query (issue
    /// 4's history benchmark: on two shared cores a round trip costs more
    /// CPU than the query itself).
    async fn product_history_with_corrections(
        &self,
        marketplace: &str,
        asin: &str,
        condition: Condition,
        from: i64,
        to: i64,
    ) -> StoreResult<Option<HistoryRead>> {
        let Some((info, runs)) = self
            .product_history(marketplace, asin, condition, from, to)
            .await?
        else {
            return Ok(None);
        };
        let corrections = self.corrections(info.id, condition, from, to).await?;
        Ok(Some(HistoryRead {
            info,
            runs,
            corrections,
        }))
    }

    /// Title search (full-text; every word must match as a word prefix,
    /// case and diacritics folded; a query that is an ASIN matches the
    /// ASIN exactly). Optional marketplace filter.
    /// Returns a page of products, best match first, and the total count.
    async fn search(
        &self,
        query: &str,
        marketplace: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ProductRef>, i64)>;

    /// Deletes audit rows received before `audit_before` and request nonces
    /// that expired before `now`. Works in small chunks so that ingest is
    /// never blocked for long.
    async fn purge(&self, audit_before: i64, now: i64) -> StoreResult<PurgeStats>;

    /// Sizes of history and audit (benchmarks, metrics).
    async fn storage_stats(&self) -> StoreResult<StorageStats>;

    // ---- Watches and alerts (issue 5, see `crate::watch`). The defaults
    // refuse, so a backend without them still builds; SQLite implements
    // them all.

    /// Creates a watch and returns it. `NotFound` for an unknown product;
    /// `Conflict` for `drop_percent` without a published price.
    async fn create_watch(&self, _w: &NewWatch, _now: i64) -> StoreResult<Watch> {
        Err(watches_unsupported())
    }

    /// One watch of a key (`None` for another key's watch or no watch).
    async fn get_watch(&self, _key_id: KeyId, _id: i64) -> StoreResult<Option<Watch>> {
        Err(watches_unsupported())
    }

    /// The key's watches with each series' current price.
    async fn list_watches(&self, _key_id: KeyId) -> StoreResult<Vec<Watch>> {
        Err(watches_unsupported())
    }

    /// Replaces a watch of `w.key_id`; `None` when it is not theirs.
    async fn replace_watch(
        &self,
        _id: i64,
        _w: &NewWatch,
        _now: i64,
    ) -> StoreResult<Option<Watch>> {
        Err(watches_unsupported())
    }

    /// Deletes a watch of the key (and its alerts); `false` when not theirs.
    async fn delete_watch(&self, _key_id: KeyId, _id: i64) -> StoreResult<bool> {
        Err(watches_unsupported())
    }

    /// Processes up to `max` outbox events (see `crate::watch`).
    async fn process_outbox(&self, _now: i64, _max: i64) -> StoreResult<EvalStats> {
        Err(watches_unsupported())
    }

    /// Signalled after a commit that wrote outbox events (the worker's
    /// wake-up); `None` when the backend has no in-process signal.
    fn outbox_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// The extension feed: alerts of the key with `id > after`, oldest
    /// first, of the watches whose `channels.extension` is on.
    async fn alerts_after(
        &self,
        _key_id: KeyId,
        _after: i64,
        _limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        Err(watches_unsupported())
    }

    /// Alerts with a pending, due delivery on `channel`.
    async fn due_deliveries(
        &self,
        _channel: DeliveryChannel,
        _now: i64,
        _limit: i64,
    ) -> StoreResult<Vec<AlertRecord>> {
        Err(watches_unsupported())
    }

    /// Stores the result of a delivery attempt for `ids`.
    async fn record_delivery(
        &self,
        _ids: &[i64],
        _channel: DeliveryChannel,
        _state: DeliveryState,
        _attempts: i64,
        _next_at: Option<i64>,
    ) -> StoreResult<()> {
        Err(watches_unsupported())
    }

    /// Contacts waiting for their confirmation mail whose next attempt is
    /// due at `now`.
    async fn pending_contacts(&self, _now: i64, _limit: i64) -> StoreResult<Vec<PendingContact>> {
        Err(watches_unsupported())
    }

    /// Records a failed confirmation attempt to be retried at `next_at`
    /// (`attempts` made so far).
    async fn confirmation_retry(
        &self,
        _key_id: KeyId,
        _email: &str,
        _attempts: i64,
        _next_at: i64,
    ) -> StoreResult<()> {
        Err(watches_unsupported())
    }

    /// Marks a contact's confirmation mail as sent.
    async fn confirmation_sent(&self, _key_id: KeyId, _email: &str) -> StoreResult<()> {
        Err(watches_unsupported())
    }

    /// `created_at` of a contact (its derived tokens need it).
    async fn contact_created_at(&self, _key_id: KeyId, _email: &str) -> StoreResult<Option<i64>> {
        Err(watches_unsupported())
    }

    /// Confirms the contact whose confirmation token hash is `hash`.
    async fn confirm_contact(&self, _hash: &str, _now: i64) -> StoreResult<bool> {
        Err(watches_unsupported())
    }

    /// Unsubscribes the contact whose unsubscribe token hash is `hash`.
    async fn unsubscribe_contact(&self, _hash: &str, _now: i64) -> StoreResult<bool> {
        Err(watches_unsupported())
    }

    /// The correction function for the trust rules: a published price
    /// `refuted_price_minor` of the series was refuted (the verified price
    /// is `corrected_price_minor`); every alert that price fired since
    /// `since` gets a `correction` alert on the same channels. Returns the
    /// new alerts' ids (none twice: idempotent).
    async fn correct_published_price(
        &self,
        _product: ProductId,
        _condition: Condition,
        _refuted_price_minor: i64,
        _corrected_price_minor: Option<i64>,
        _since: i64,
        _now: i64,
    ) -> StoreResult<Vec<i64>> {
        Err(watches_unsupported())
    }

    // ---- Verification queue (trust issue, see `verify`). The defaults
    // refuse; SQLite and PostgreSQL implement them all.

    /// Leases up to `max` jobs to the verifier key `owner` for `lease_ms`:
    /// queued jobs due at `now` and jobs whose lease expired, by priority
    /// with [`crate::trust::pick_jobs`]'s reserved critical share.
    async fn lease_jobs(
        &self,
        _owner: KeyId,
        _max: u32,
        _lease_ms: i64,
        _now: i64,
    ) -> StoreResult<Vec<verify::LeasedJob>> {
        Err(trust_unsupported())
    }

    /// The product of job `id` (`None`: no such job).
    async fn job_target(&self, _id: i64) -> StoreResult<Option<verify::JobTarget>> {
        Err(trust_unsupported())
    }

    /// Applies a verifier's result to job `id` in one transaction
    /// ([`crate::trust::resolve`]): `observed` comes with the verifier's
    /// signed observation (already validated, `trusted`), which is
    /// ingested like any report. Idempotent: a finished job gives
    /// `AlreadyFinished` and changes nothing.
    async fn finish_job(
        &self,
        _id: i64,
        _outcome: verify::VerifierOutcome,
        _observation: Option<&NewReport>,
        _now: i64,
    ) -> StoreResult<verify::ResultApplied> {
        Err(trust_unsupported())
    }

    /// The periodic task of the queue (call it every few seconds to a
    /// minute): finishes jobs whose hold expired, queues scheduled refresh
    /// crawls of watched products no collector reported recently, and runs
    /// the drift check.
    async fn verification_tick(&self, _now: i64) -> StoreResult<verify::TickStats> {
        Err(trust_unsupported())
    }

    /// Open jobs by state and criticality (`/metrics`).
    async fn queue_depth(&self) -> StoreResult<verify::QueueDepth> {
        Err(trust_unsupported())
    }

    /// Corrections of a series made in `[from, to]`, oldest first.
    async fn corrections(
        &self,
        _product: ProductId,
        _condition: Condition,
        _from: i64,
        _to: i64,
    ) -> StoreResult<Vec<verify::CorrectionRow>> {
        Ok(Vec::new())
    }

    /// Seeds the random draws of the trust decisions (spot checks, rule 5's
    /// 20% crawl); by default they come from an OS-seeded generator.
    /// Tests use it to make decisions repeatable.
    fn seed_trust_rng(&self, _seed: u64) {}

    /// Waits until everything accepted so far is durable and stops
    /// background work (graceful shutdown).
    async fn close(&self);
}

fn trust_unsupported() -> StoreError {
    StoreError::Config("the verification queue is not available on this storage backend".into())
}

fn watches_unsupported() -> StoreError {
    StoreError::Config("watches are not available on this storage backend yet".into())
}

/// Opens the storage named by `url`: `sqlite://PATH` (the folder is created,
/// the file too) or `postgres://...`. Runs the migrations.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        let store = sqlite::SqliteStore::open(url).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url).await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL scheme in {:?}: use sqlite://PATH or postgres://...",
            redact_url(url)
        )))
    }
}

/// A URL with its password replaced by `***` (for error messages and logs).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: i64, last: i64, price: i64) -> Run {
        Run {
            first_seen: first,
            last_seen: last,
            price_minor: Some(price),
            availability: Availability::InStock,
            n: 2,
        }
    }

    #[test]
    fn planner_cases() {
        let a = Availability::InStock;
        let p = run(10, 20, 100);
        let n = run(30, 40, 200);
        let check = |prev: Option<&Run>, next: Option<&Run>, t, price, want| {
            assert_eq!(
                plan_run_update(prev, next, t, Some(price), a),
                want,
                "t={t} price={price}"
            );
        };
        check(None, None, 5, 100, RunPlan::Insert);
        check(Some(&p), None, 15, 100, RunPlan::Count);
        check(Some(&p), None, 20, 100, RunPlan::Count);
        check(Some(&p), None, 25, 100, RunPlan::ExtendPrev);
        check(Some(&p), None, 25, 300, RunPlan::Insert);
        check(Some(&p), None, 15, 300, RunPlan::Split);
        check(Some(&p), None, 20, 300, RunPlan::Insert);
        check(Some(&p), None, 10, 300, RunPlan::Count);
        check(Some(&p), Some(&n), 25, 200, RunPlan::ExtendNext);
        check(
            Some(&p),
            Some(&run(30, 40, 100)),
            25,
            100,
            RunPlan::MergeAll,
        );
        check(None, Some(&n), 5, 200, RunPlan::ExtendNext);
        check(None, Some(&n), 5, 100, RunPlan::Insert);
    }

    #[test]
    fn new_key_trust_is_low() {
        let k = KeyRecord {
            id: 1,
            public_key: [0; 32],
            registered_at: 0,
            alpha: 1.0,
            beta: 1.0,
            blocked: false,
            erased_at: None,
        };
        let t = k.trust();
        assert!((t - 0.1305).abs() < 0.001, "{t}");
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
