-- Trust but verify (issue 6, ../shared/design/TRUST.md): key reputation,
-- the decision stored with each report, the verified all-time low of each
-- offer, the durable verification queue, the reports held by or attached to
-- a crawl, and corrections. See backend/src/store/trust_sql.rs.

-- Reputation: alpha/beta (migration 0001) are the Beta evidence decayed to
-- evidence_at (30-day half-life, applied lazily on every update); the two
-- latest severe refutations (two inside the half-life distrust the key).
ALTER TABLE keys ADD COLUMN evidence_at INTEGER;
ALTER TABLE keys ADD COLUMN severe_at INTEGER;
ALTER TABLE keys ADD COLUMN severe_prev_at INTEGER;

-- Why each report got its status: a small code (store::trust_sql::reason),
-- one byte in SQLite's record format; NULL for reports stored before this.
ALTER TABLE reports ADD COLUMN reason INTEGER;

-- Per offer: the verified all-time low (only crawls and confirmed prices
-- set it) and the value the watch outbox last saw (alerts are evaluated
-- only for prices that may alert: a provisional or held price writes no
-- outbox event; when it is later confirmed the event is written against
-- these). `status` (0001) is the offer status of store::OfferStatus.
ALTER TABLE offers ADD COLUMN verified_low INTEGER;
ALTER TABLE offers ADD COLUMN verified_low_at INTEGER;
ALTER TABLE offers ADD COLUMN alert_price_minor INTEGER;
ALTER TABLE offers ADD COLUMN alert_availability INTEGER;
UPDATE offers SET alert_price_minor = price_minor, alert_availability = availability;

-- The verification queue. state: 0 queued, 1 leased, 2 finished, 3 given
-- up (retries used) and holding its reports until hold_expires_at; every
-- state but 2 is open (one open job per series).
-- outcome (when finished): 0 confirmed, 1 refuted, 2 inconclusive,
-- 3 failed (retries used up / hold expired), 4 not_found.
-- reason is short text (cold_start, critical, confirm, low_impact,
-- spot_check, refresh, drift): jobs are few next to reports.
CREATE TABLE verification_jobs (
    id               INTEGER PRIMARY KEY,
    product_id       INTEGER NOT NULL REFERENCES products(id),
    condition        INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    priority         REAL NOT NULL,
    critical         INTEGER NOT NULL,
    state            INTEGER NOT NULL DEFAULT 0,
    enqueued_at      INTEGER NOT NULL,
    lease_owner      INTEGER,
    lease_expires_at INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    hold_expires_at  INTEGER,
    finished_at      INTEGER,
    outcome          INTEGER,
    verified_price_minor INTEGER,
    trigger_key      INTEGER
);
-- One open job per series: later reports attach to it.
CREATE UNIQUE INDEX verification_jobs_open ON verification_jobs (product_id, condition)
    WHERE state <> 2;
CREATE INDEX verification_jobs_queue ON verification_jobs (priority, id)
    WHERE state IN (0, 1);
CREATE INDEX verification_jobs_finished ON verification_jobs (finished_at) WHERE state = 2;
-- A key on probation may trigger few crawls (rule 5's crawl-trigger limit).
CREATE INDEX verification_jobs_trigger ON verification_jobs (trigger_key, enqueued_at)
    WHERE trigger_key IS NOT NULL;

-- Reports judged by a job: held (not published) or attached reports, and
-- published provisional ones the crawl checks. The audit row is found by
-- (key_id, nonce); the values needed to judge are copied here so the
-- judgement never depends on the audit retention.
CREATE TABLE verification_reports (
    job_id       INTEGER NOT NULL,
    key_id       INTEGER NOT NULL,
    nonce        BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    price_minor  INTEGER,
    availability INTEGER NOT NULL,
    held         INTEGER NOT NULL,   -- 1: not published; 0: published
    alerts       INTEGER NOT NULL,   -- A when it was decided
    agreed_verified INTEGER NOT NULL, -- it matched a verified published reading
    PRIMARY KEY (job_id, key_id, nonce)
) WITHOUT ROWID;

-- A published or held price that a crawl refuted.
CREATE TABLE corrections (
    id                   INTEGER PRIMARY KEY,
    product_id           INTEGER NOT NULL,
    condition            INTEGER NOT NULL,
    at                   INTEGER NOT NULL,
    reported_price_minor INTEGER,
    verified_price_minor INTEGER,
    job_id               INTEGER
);
CREATE INDEX corrections_series ON corrections (product_id, condition, at);
