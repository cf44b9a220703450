//! The storage side of "trust but verify" (issue 6, `../shared/design/TRUST.md`):
//! the types of the verification queue, the small codes stored with each
//! report, and the pure helpers both databases share. The decisions
//! themselves come from [`crate::trust`] (pure code); the SQL that applies
//! them lives in [`super::trust_sqlite`] and [`super::trust_postgres`].
//!
//! # Rules as the store applies them (judgement calls written down)
//! * **What enters the history runs.** Published reports (accepted,
//!   provisional) and reports stored for history only because they are
//!   older than 10 minutes. Held and attached reports enter the runs only
//!   when the crawl confirms them; refuted ones never do. Reports of a
//!   distrusted key that deviate from the published price are kept in the
//!   audit log only (they are exactly the reports that are not believed),
//!   and so are prices that read like a separator misread of the published
//!   one (`looks_misread`, [`crate::trust::decide`]'s rule 2b: a chart must
//!   not show a 1,106.18 EUR product at 1.11 EUR for an hour).
//! * **Alerts.** Only prices that may alert reach the watch outbox: the
//!   decision's `alert` flag (accepted on rule 6, verified crawls,
//!   confirmed prices). A provisional or held price writes no outbox
//!   event; the offer row remembers the last value the outbox saw
//!   (`alert_price_minor`, `alert_availability`), and the next alertable
//!   publish is compared with that, so a provisional price that a crawl
//!   confirms fires its alerts then.
//! * **Removing a refuted published price from history** (the cheaper
//!   exact method): a provisional report that a crawl refutes was counted
//!   into exactly one run (runs are maximal stretches of one value). The
//!   run loses those observations: `n` drops by their number, and when
//!   one of them was the run's first or last observation the boundary
//!   moves to the nearest remaining audit row of the run (audit rows of
//!   the run exist: refutations come within the hold time, far inside the
//!   audit retention). A run left empty is deleted and its neighbours are
//!   merged when they hold the same value. No span is rebuilt.
//! * **The reports behind a refuted published value.** When a crawl
//!   refutes the published price itself (a `provisional` or `confirmed`
//!   value from reports, [`crate::trust::Correction`]), the reports that
//!   published or corroborated it were usually not attached to that crawl,
//!   so nobody judged them; still, the correction says that value was
//!   false, and history must agree (API.md: points exclude observations
//!   verification proved false, and the summary's `lowest`/`highest` come
//!   from the same runs). Those of the refuted price observed within
//!   [`crate::trust::outcome::STALE_REPORT_MS`] before the result get the
//!   refuted status (reason `published_refuted`) and leave the runs the
//!   same way as above. Judgement calls: older ones stay (the price may
//!   have moved since, the rule `resolve` applies to stale attached
//!   reports; a refresh crawl a day later must not erase a day of
//!   history), and nobody's reputation changes (no crawl judged them).
//! * **Failed crawls** (`captcha`, `blocked`, `failed`) follow
//!   [`crate::trust::resolve`]: retried (the job is queued again, not
//!   before the retry time); once given up, the job stays open in state
//!   [`JobState::Holding`] (so later reports still attach to it and a
//!   swarm cannot buy a second crawl) until its hold expires, 30 minutes
//!   after it was queued; the tick then finishes it as `failed` and its
//!   held reports become `stored` (never published).
//! * **`not_found`** finishes the job at once; held reports stay
//!   unpublished (stored) and nobody is credited or penalised.
//! * **Leases.** A lease that expires returns the job to the queue (the
//!   lease query treats it as queued); it costs no attempt.
//! * **The decision context** ([`crate::trust::ReportContext`]) is built
//!   in the ingest transaction. The reporters' evidence is read once per
//!   batch (one query); `A` (armed price watches at or above the price,
//!   armed back-in-stock watches; cooldowns ignored, the safe side), the
//!   corroboration over the last 30 minutes' matching reports of
//!   established groups (this report included), and the crawl-trigger
//!   count are read only when the decision can depend on them, which a
//!   report agreeing with a non-provisional published price never does:
//!   the common case costs no extra query. `A` is one indexed count per
//!   deviating report; it is not cached (the watches change under it, and
//!   deviating reports are the rare ones).
//! * **Crawl-trigger limit** of a key on probation: at most one unresolved
//!   crawl and three a day that it triggered (`verification_jobs
//!   .trigger_key`); the simulation uses the same values.
//! * **Random draws** (spot checks, rule 5's 20%) come from a generator
//!   seeded from the OS (`Storage::seed_trust_rng` fixes it for tests).
//! * **Independence groups** for the summary's `reporters` and for
//!   corroboration: the key's network hash at registration plus its
//!   registration day ([`crate::trust::group_of`]); held and refuted
//!   reports do not back the current price.
//! * **Waiting reports** ([`trust::judge_waiting`]): a report stored only
//!   because its key was over its crawl-trigger limit (`crawl_limit`) or
//!   distrusted (`distrusted_key`), a distrusted key's spot check that
//!   may not queue a crawl (`spot_check_skipped`), and a spot check that
//!   waits for the next crawl instead of queueing one (`spot_check_waiting`,
//!   a key with no severe refutation inside the half-life; for both spot
//!   checks `before` is the published reading they agreed with,
//!   [`trust::WaitingReport::before_for`])
//!   ([`trust::Decision::waits`]) gets a row in `waiting_reports` in the
//!   ingest transaction ([`Waiting`]). When any job of its series finishes
//!   with an `observed` reading (whatever queued it), every waiting row of
//!   the series is judged in the same transaction, applied to its key's
//!   reputation like an attached report's, and deleted. A refuted one gets
//!   the refuted status (reason `crawl_refuted`) and, when it was counted
//!   into the runs (`crawl_limit` ones are, [`enters_history`]), leaves
//!   them like a refuted published report. A confirmed or unjudged one
//!   keeps its status. Judgement calls: refuted waiting reports write no
//!   corrections row and do not change the job's outcome (they were never
//!   published and never the job's reason; the row explains itself through
//!   the report's status and reason); `before` is the series' last
//!   verified reading, kept in the offer row (`verified_price_minor`,
//!   `verified_availability`, set whenever a verifier's observation is
//!   published as `verified`), whatever is published now: a collector's
//!   change published after the last crawl does not replace it. Offers
//!   written before those columns existed have none (no evidence until
//!   the next crawl). Only a *published* verifier reading counts: one
//!   older than the published offer (`older_than_published`) does not
//!   move it. Failed, given-up
//!   and not-found crawls judge nobody. Rows older than
//!   [`trust::outcome::WAITING_HORIZON_MS`] are deleted by the tick.
//! * **Privacy**: `DELETE /v1/me` removes the key's job links and waiting
//!   rows; finished
//!   jobs and their links are purged with the audit rows; corrections
//!   stay (history shows them, they name no key).

use super::KeyId;
use super::{NewReport, Offer, OfferStatus};
use crate::trust::{self, GroupId, Reading, ReportStatus, Reputation};
use std::collections::BTreeMap;
use wasm_core::types::Condition;

/// What the decisions need to know about a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct KeyRep {
    /// When it registered.
    pub registered_at: i64,
    /// Keyed hash of its network at registration.
    pub net_hash: Option<[u8; 16]>,
    /// Reputation evidence.
    pub rep: Reputation,
}

impl KeyRep {
    /// A key the store does not know (tests that skip registration):
    /// treated as registered now, with a new key's evidence.
    pub fn unknown(now: i64) -> Self {
        KeyRep {
            registered_at: now,
            net_hash: None,
            rep: Reputation::new(now),
        }
    }
    /// Its independence group.
    pub fn group(&self, key_id: KeyId) -> GroupId {
        trust::group_of(self.net_hash, self.registered_at, key_id)
    }
}

// ---- SQL shared by both databases, written once with SQLite's `?N`
// placeholders; PostgreSQL's text (`$N`) is derived by [`pg_placeholders`].

/// `sql` with every `?N` placeholder written `$N` (PostgreSQL). The shared
/// statements below hold no `?` anywhere else.
pub(crate) fn pg_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The group's crawl-trigger counts (`?1` network hash, `?2` registration
/// day, `?3` start of the last day). The day count stops at
/// [`super::TRIGGER_COUNT_CAP`] (16, in the SQL): every limit in
/// [`trust::limits`] is below it, so the decision is the same as with an
/// exact count, and a group that triggered thousands of crawls a day
/// (every key behind one NAT) costs no more to check than one with two.
pub(crate) const GROUP_TRIGGER_COUNTS: &str = "SELECT (SELECT count(*) FROM verification_jobs \
       WHERE trigger_net = ?1 AND trigger_cohort = ?2 AND enqueued_at > ?3 \
         AND reason <> 'spot_check' AND state <> 2) AS open, \
   (SELECT count(*) FROM (SELECT 1 FROM verification_jobs \
       WHERE trigger_net = ?1 AND trigger_cohort = ?2 AND enqueued_at > ?3 \
         AND reason <> 'spot_check' LIMIT 16) AS d) AS day";

/// [`GROUP_TRIGGER_COUNTS`] for PostgreSQL.
pub(crate) static GROUP_TRIGGER_COUNTS_PG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| pg_placeholders(GROUP_TRIGGER_COUNTS));

/// The series a judge crawl goes to (`trust::schedule`): the one with the
/// most waiting reports observed between `?1` and `?2` (among the oldest
/// `?3`) of keys with no evidence and no other waiting report, and no open
/// job.
pub(crate) const JUDGE_SERIES: &str =
    "SELECT w.product_id, w.condition, count(*) AS n, min(w.observed_at) AS oldest \
         FROM (SELECT product_id, condition, key_id, observed_at FROM waiting_reports \
               WHERE observed_at >= ?1 AND observed_at <= ?2 \
               ORDER BY observed_at LIMIT ?3) w \
         JOIN keys k ON k.id = w.key_id \
         WHERE k.alpha = 1.0 AND k.beta = 1.0 \
           AND (SELECT count(*) FROM waiting_reports x WHERE x.key_id = w.key_id) = 1 \
           AND NOT EXISTS (SELECT 1 FROM verification_jobs j WHERE j.product_id = w.product_id \
               AND j.condition = w.condition AND j.state <> 2) \
         GROUP BY w.product_id, w.condition \
         ORDER BY n DESC, oldest, w.product_id, w.condition LIMIT 1";

/// [`JUDGE_SERIES`] for PostgreSQL.
pub(crate) static JUDGE_SERIES_PG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| pg_placeholders(JUDGE_SERIES));

/// The `keys` columns [`key_rep_from_row`] reads (both databases).
pub(crate) const KEY_REP_COLS: &str =
    "id, registered_at, net_hash, alpha, beta, evidence_at, severe_at, severe_prev_at";

/// A [`KeyRep`] from a row of either database, its columns named
/// `{prefix}registered_at`, ... (see [`KEY_REP_COLS`]).
pub(crate) fn key_rep_from_row<'r, R>(row: &'r R, prefix: &str) -> Result<KeyRep, sqlx::Error>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let col = |c: &str| format!("{prefix}{c}");
    let registered_at: i64 = row.try_get(col("registered_at").as_str())?;
    let net: Option<Vec<u8>> = row.try_get(col("net_hash").as_str())?;
    let evidence_at: Option<i64> = row.try_get(col("evidence_at").as_str())?;
    Ok(KeyRep {
        registered_at,
        net_hash: net.and_then(|n| <[u8; 16]>::try_from(n.as_slice()).ok()),
        rep: Reputation {
            alpha: row.try_get(col("alpha").as_str())?,
            beta: row.try_get(col("beta").as_str())?,
            evidence_at: evidence_at.unwrap_or(registered_at),
            severe_at: [
                row.try_get(col("severe_at").as_str())?,
                row.try_get(col("severe_prev_at").as_str())?,
            ],
        },
    })
}

/// The scheduled refresh looks at watched products whose last collector
/// report is older than their refresh interval; at most this many per tick.
pub const REFRESH_BATCH: i64 = 200;
/// The drift check examines at most this many recently reported series per
/// tick.
pub const DRIFT_BATCH: i64 = 200;

/// State of a verification job (stored code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for a verifier (or for its next attempt).
    Queued = 0,
    /// Leased by a verifier until `lease_expires_at`.
    Leased = 1,
    /// Done (see [`JobOutcome`]).
    Finished = 2,
    /// Retries used up: not leased again, holding its reports until the
    /// hold expires (the tick then finishes it as `failed`).
    Holding = 3,
}

impl JobState {
    /// From the stored code.
    pub fn from_code(v: i64) -> Self {
        match v {
            1 => JobState::Leased,
            2 => JobState::Finished,
            3 => JobState::Holding,
            _ => JobState::Queued,
        }
    }
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Finished => "finished",
            JobState::Holding => "holding",
        }
    }
}

/// How a job ended (stored code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The crawl agreed with the reports it judged (or there were none).
    Confirmed = 0,
    /// The crawl refuted at least one report it judged.
    Refuted = 1,
    /// The price moved between the reports and the crawl: no evidence.
    Inconclusive = 2,
    /// Retries used up and the hold expired.
    Failed = 3,
    /// The product page does not exist.
    NotFound = 4,
}

impl JobOutcome {
    /// From the stored code.
    pub fn from_code(v: i64) -> Self {
        match v {
            0 => JobOutcome::Confirmed,
            1 => JobOutcome::Refuted,
            2 => JobOutcome::Inconclusive,
            4 => JobOutcome::NotFound,
            _ => JobOutcome::Failed,
        }
    }
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Confirmed => "confirmed",
            JobOutcome::Refuted => "refuted",
            JobOutcome::Inconclusive => "inconclusive",
            JobOutcome::Failed => "failed",
            JobOutcome::NotFound => "not_found",
        }
    }
}

/// What a verifier says about a job (`outcome` of API.md's result body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierOutcome {
    /// The page was read; the signed observation comes with it.
    Observed,
    /// The product page does not exist.
    NotFound,
    /// A CAPTCHA page.
    Captcha,
    /// Blocked (robot check, 403, ...).
    Blocked,
    /// Anything else (network, 5xx, extraction failure).
    Failed,
}

impl VerifierOutcome {
    /// From the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "observed" => VerifierOutcome::Observed,
            "not_found" => VerifierOutcome::NotFound,
            "captcha" => VerifierOutcome::Captcha,
            "blocked" => VerifierOutcome::Blocked,
            "failed" => VerifierOutcome::Failed,
            _ => return None,
        })
    }
    /// Whether the job should be retried.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            VerifierOutcome::Captcha | VerifierOutcome::Blocked | VerifierOutcome::Failed
        )
    }
}

/// A job handed to a verifier by [`super::Storage::lease_jobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    /// Job id.
    pub id: i64,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Which offer.
    pub condition: Condition,
    /// Why it was queued (`critical`, `cold_start`, `refresh`, ...).
    pub reason: String,
    /// Priority (TRUST.md: `A * (1 - c) + 10 * critical + 1`).
    pub priority: f64,
    /// Whether it uses the reserved critical capacity.
    pub critical: bool,
    /// When it was queued (ms).
    pub enqueued_at: i64,
}

/// The product a job is about (to validate the verifier's observation).
#[derive(Debug, Clone, PartialEq)]
pub struct JobTarget {
    /// Job id.
    pub id: i64,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Which offer.
    pub condition: Condition,
    /// Product currency.
    pub currency: String,
    /// Already finished (a second result changes nothing).
    pub finished: bool,
}

/// What [`super::Storage::finish_job`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultApplied {
    /// No such job.
    Unknown,
    /// The job was already finished: nothing changed (idempotent results).
    AlreadyFinished,
    /// A failure; the job is queued again for attempt `attempts + 1` (or
    /// waits for its hold to expire when the retries are used up).
    Retrying {
        /// Failed attempts so far.
        attempts: i64,
    },
    /// The job is finished.
    Finished {
        /// How it ended.
        outcome: JobOutcome,
        /// Queue latency: result time minus enqueue time (ms).
        latency_ms: i64,
        /// Corrections rows written.
        corrections: usize,
        /// Correction alerts created.
        correction_alerts: usize,
    },
}

/// Counts of one periodic [`super::Storage::verification_tick`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Jobs whose hold expired (finished as `failed`).
    pub expired_holds: u64,
    /// Scheduled refresh jobs queued.
    pub refresh_queued: u64,
    /// Drift-check jobs queued.
    pub drift_queued: u64,
    /// Waiting reports past the horizon deleted unjudged.
    pub waiting_purged: u64,
    /// "Judge" crawls queued ([`crate::trust::schedule::judge_crawl_due`]).
    pub judge_queued: u64,
}

/// Queue depth for `/metrics`: open jobs by state and criticality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// `(state, critical, count)` of the open jobs (queued, leased).
    pub open: Vec<(JobState, bool, i64)>,
}

/// One row of the history's `corrections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrectionRow {
    /// When the correction was made (ms).
    pub at: i64,
    /// The refuted price.
    pub reported_price_minor: Option<i64>,
    /// The price the crawl saw.
    pub verified_price_minor: Option<i64>,
}

/// Report status codes stored in `reports.status` (extending
/// [`super::IngestOutcome::code`]: 0 accepted, 1 stored, 2 duplicate, 3
/// currency mismatch).
pub mod status {
    /// Published as provisional.
    pub const PROVISIONAL: i64 = 4;
    /// Held (or attached) for a crawl.
    pub const HELD: i64 = 5;
    /// A crawl refuted it (set afterwards; excluded from history).
    pub const REFUTED: i64 = 6;
    /// A crawl confirmed a held report (set afterwards).
    pub const CONFIRMED: i64 = 7;
}

/// Stable small codes of the decision reasons (`reports.reason`).
pub mod reason {
    /// Code of a reason string (0 for one this table does not know).
    pub fn code(reason: &str) -> i64 {
        NAMES
            .iter()
            .position(|n| *n == reason)
            .map(|i| i as i64 + 1)
            .unwrap_or(0)
    }
    /// Reason string of a code.
    pub fn name(code: i64) -> &'static str {
        usize::try_from(code - 1)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("unknown")
    }
    /// The reasons in code order (append only: the codes are on disk).
    /// The first ones are [`crate::trust::decide`]'s, then the reasons a
    /// crawl result writes over a held report's.
    pub const NAMES: [&str; 29] = [
        "too_old",
        "verifier",
        "agrees",
        "corroborated",
        "spot_check",
        "spot_check_verified",
        "older_than_published",
        "distrusted_key",
        "attached_to_crawl",
        "cold_start",
        "critical_drop",
        "below_verified_low",
        "many_watchers",
        "young_key_alerting",
        "low_impact",
        "safe_to_alert",
        "unsafe_to_alert",
        "crawl_confirmed",
        "crawl_refuted",
        "hold_expired",
        "not_found",
        "crawl_no_evidence",
        "crawl_gave_up",
        "other",
        "crawl_limit",
        "published_refuted",
        "spot_check_skipped",
        "spot_check_waiting",
        "looks_misread",
    ];
}

/// Whether a decided report waits for its series' next crawl (see the
/// module docs): stored only, with no crawl of its own.
pub fn waits(d: &trust::Decision) -> bool {
    d.waits()
}

/// A waiting report (row of `waiting_reports`, see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Waiting {
    /// The report's key.
    pub key_id: KeyId,
    /// The report's nonce (with `key_id`, the audit row).
    pub nonce: [u8; 16],
    /// When it was received (PostgreSQL's audit partitions).
    pub received_at: i64,
    /// What it said, when, `A`, and the verified reading before it.
    pub report: trust::WaitingReport,
    /// It was counted into the history runs.
    pub in_history: bool,
}

impl Waiting {
    /// The `waiting_reports` columns [`Waiting::from_row`] reads (both
    /// databases).
    pub const COLS: &'static str = "key_id, nonce, received_at, observed_at, price_minor, \
         availability, alerts, before_price_minor, before_availability, in_history";

    /// A waiting report from a row of either database (columns
    /// [`Waiting::COLS`]).
    pub fn from_row<'r, R>(row: &'r R) -> Result<Waiting, sqlx::Error>
    where
        R: sqlx::Row,
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let nonce: Vec<u8> = row.try_get("nonce")?;
        let before_avail: Option<i64> = row.try_get("before_availability")?;
        let before = match before_avail {
            Some(a) => Some(Reading {
                price: row.try_get("before_price_minor")?,
                availability: super::code::availability_from(a),
            }),
            None => None,
        };
        Ok(Waiting {
            key_id: row.try_get("key_id")?,
            nonce: <[u8; 16]>::try_from(nonce.as_slice())
                .map_err(|_| sqlx::Error::Protocol("stored nonce is not 16 bytes".into()))?,
            received_at: row.try_get("received_at")?,
            report: trust::WaitingReport {
                reading: Reading {
                    price: row.try_get("price_minor")?,
                    availability: super::code::availability_from(row.try_get("availability")?),
                },
                observed_at: row.try_get("observed_at")?,
                alerts: u32::try_from(row.try_get::<i64, _>("alerts")?).unwrap_or(u32::MAX),
                before,
            },
            in_history: row.try_get::<i64, _>("in_history")? != 0,
        })
    }

    /// The row for report `r` decided as `d` against the published offer
    /// `current` (before the decision), with `A` = `alerts`.
    pub fn of(
        r: &NewReport,
        d: &trust::Decision,
        current: Option<&Offer>,
        alerts: u32,
        now: i64,
    ) -> Self {
        Waiting {
            key_id: r.key_id,
            nonce: r.nonce,
            received_at: now,
            report: trust::WaitingReport {
                reading: Reading {
                    price: r.price_minor,
                    availability: r.availability,
                },
                observed_at: r.observed_at,
                alerts,
                before: trust::WaitingReport::before_for(
                    d,
                    waiting_before(current),
                    current.map(|o| Reading {
                        price: o.price_minor,
                        availability: o.availability,
                    }),
                ),
            },
            in_history: enters_history(d),
        }
    }
}

/// The `before` of a waiting report: the last reading the verifier
/// published for the series (`offers.verified_price_minor`,
/// `verified_availability`), whatever is published now (also when a
/// collector's change was published as provisional or confirmed after the
/// last crawl). Offers written before those columns existed have none.
pub fn waiting_before(current: Option<&Offer>) -> Option<Reading> {
    current
        .and_then(|o| o.verified_reading)
        .map(|(price, availability)| Reading {
            price,
            availability,
        })
}

/// Whether a judgement refutes (the report's status becomes `refuted`).
pub fn refutes(j: trust::Judgement) -> bool {
    matches!(
        j,
        trust::Judgement::Refuted | trust::Judgement::SevereRefuted
    )
}

/// Whether a decided report enters the history runs (see
/// the module docs): not held, not a distrusted key's, and not a price
/// that reads like a separator misread of the published one.
pub fn enters_history(d: &trust::Decision) -> bool {
    d.status != ReportStatus::Held && !matches!(d.reason, "distrusted_key" | "looks_misread")
}

/// The published offer after a decision that publishes or refreshes.
pub fn next_offer(current: Option<&Offer>, r: &NewReport, d: &trust::Decision) -> Offer {
    let reading_price = r.price_minor;
    match (d.publish, current) {
        (None, Some(o)) => {
            // Rule 1: "last seen" refreshed, value and status kept.
            let mut o = o.clone();
            if r.observed_at > o.observed_at {
                o.observed_at = r.observed_at;
                o.seller = r.seller;
            }
            o
        }
        (status, _) => {
            let status = status.unwrap_or(OfferStatus::Provisional);
            let verified = status == OfferStatus::Verified;
            let mut low = current.and_then(|o| o.verified_low);
            if matches!(status, OfferStatus::Verified | OfferStatus::Confirmed) {
                if let Some(p) = reading_price {
                    if low.is_none_or(|(l, _)| p <= l) {
                        low = Some((p, r.observed_at));
                    }
                }
            }
            let same = current.is_some_and(|o| {
                o.price_minor == r.price_minor && o.availability == r.availability
            });
            Offer {
                price_minor: r.price_minor,
                availability: r.availability,
                seller: r.seller,
                observed_at: match current {
                    Some(o) if same => o.observed_at.max(r.observed_at),
                    _ => r.observed_at,
                },
                status,
                last_verified_at: if verified {
                    Some(r.observed_at)
                } else {
                    current.and_then(|o| o.last_verified_at)
                },
                verified_low: low,
                alerted: if d.alert {
                    Some((r.price_minor, r.availability))
                } else {
                    current.and_then(|o| o.alerted)
                },
                verified_reading: if verified {
                    Some((r.price_minor, r.availability))
                } else {
                    current.and_then(|o| o.verified_reading)
                },
            }
        }
    }
}

/// The value the watch outbox saw, as an offer (`flush_outbox` compares
/// price and availability).
pub fn alert_view(o: &Offer) -> Option<Offer> {
    o.alerted.map(|(price, availability)| Offer {
        price_minor: price,
        availability,
        ..o.clone()
    })
}

/// The decision core's view of a published offer.
pub fn published_of(o: &Offer) -> trust::Published {
    trust::Published {
        reading: Reading {
            price: o.price_minor,
            availability: o.availability,
        },
        status: o.status,
        observed_at: o.observed_at,
        last_verified_at: o.last_verified_at,
    }
}

/// The drift check over recent reports `(key, group, trust, reading,
/// observed_at)` of a series: each key's latest priced report, then
/// [`trust::drift`] against the published price `p`.
pub fn drift_of(recent: &[(i64, trust::GroupId, f64, Reading, i64)], p: i64) -> Option<i64> {
    let mut latest: std::collections::BTreeMap<i64, (trust::GroupId, f64, i64, i64)> =
        std::collections::BTreeMap::new();
    for (key, g, t, reading, at) in recent {
        if let Some(x) = reading.price {
            let e = latest.entry(*key).or_insert((*g, *t, x, *at));
            if *at >= e.3 {
                *e = (*g, *t, x, *at);
            }
        }
    }
    let pts: Vec<(trust::GroupId, f64, i64)> =
        latest.values().map(|&(g, t, x, _)| (g, t, x)).collect();
    trust::drift(&pts, p)
}

/// Trust decisions taken by this process, by status and reason
/// (`/metrics`); counted after the ingest transaction committed.
static DECISIONS: std::sync::Mutex<BTreeMap<(&'static str, &'static str), u64>> =
    std::sync::Mutex::new(BTreeMap::new());

/// Counts committed decisions.
pub fn count_decisions(d: &[(&'static str, &'static str)]) {
    if d.is_empty() {
        return;
    }
    if let Ok(mut m) = DECISIONS.lock() {
        for k in d {
            *m.entry(*k).or_default() += 1;
        }
    }
}

/// The decision counters so far.
pub fn decision_counts() -> Vec<((&'static str, &'static str), u64)> {
    DECISIONS
        .lock()
        .map(|m| m.iter().map(|(k, v)| (*k, *v)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn shared_sql_gets_postgres_placeholders() {
        assert_eq!(
            pg_placeholders("a = ?1 AND b > ?12 OR c ? d"),
            "a = $1 AND b > $12 OR c ? d"
        );
        for (sqlite, pg) in [
            (GROUP_TRIGGER_COUNTS, GROUP_TRIGGER_COUNTS_PG.as_str()),
            (JUDGE_SERIES, JUDGE_SERIES_PG.as_str()),
        ] {
            assert!(!pg.contains('?'), "{pg}");
            assert_eq!(pg.replace('$', "?"), sqlite);
        }
        assert!(
            GROUP_TRIGGER_COUNTS.contains(&format!("LIMIT {}", super::super::TRIGGER_COUNT_CAP))
        );
    }

    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, n) in reason::NAMES.iter().enumerate() {
            assert_eq!(reason::code(n), i as i64 + 1);
            assert_eq!(reason::name(i as i64 + 1), *n);
        }
        assert_eq!(reason::code("nope"), 0);
        assert_eq!(reason::name(0), "unknown");
        for o in [
            JobOutcome::Confirmed,
            JobOutcome::Refuted,
            JobOutcome::Inconclusive,
            JobOutcome::Failed,
            JobOutcome::NotFound,
        ] {
            assert_eq!(JobOutcome::from_code(o as i64), o);
        }
        assert_eq!(
            VerifierOutcome::parse("captcha"),
            Some(VerifierOutcome::Captcha)
        );
        assert!(VerifierOutcome::Blocked.is_failure());
        assert!(!VerifierOutcome::Observed.is_failure());
        assert_eq!(VerifierOutcome::parse("x"), None);
    }

    #[test]
    fn drift_uses_each_keys_latest_report() {
        let g = |n: u8| trust::GroupId::Net {
            net: [n; 16],
            day: 1,
        };
        let at = |p: i64| Reading::in_stock(p);
        // Two established groups agree on 4800 against a published 5000.
        let recent = vec![(1, g(1), 0.9, at(4800), 10), (2, g(2), 0.9, at(4800), 11)];
        assert_eq!(drift_of(&recent, 5000), Some(4800));
        // One group is not a consensus.
        assert_eq!(drift_of(&recent[..1], 5000), None);
        // Key 2's latest report agrees with the published price again.
        let mut moved = recent.clone();
        moved.push((2, g(2), 0.9, at(5000), 12));
        moved.push((3, g(3), 0.9, at(5000), 12));
        assert_eq!(drift_of(&moved, 5000), None);
        // Keys on probation do not count.
        let weak = vec![(1, g(1), 0.2, at(4800), 10), (2, g(2), 0.2, at(4800), 11)];
        assert_eq!(drift_of(&weak, 5000), None);
    }
}
