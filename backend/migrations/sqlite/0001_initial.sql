-- pricewatch SQLite schema, version 1 (append-only: later changes go in new files).
--
-- Size matters here: price history must cost under 8 bytes per observation.
-- Products get integer ids, enums are small integers (see store/mod.rs for
-- the codes), times are integer Unix milliseconds, and the history table is
-- WITHOUT ROWID so its primary key is the table itself.

-- Per-install settings (the secret for hashing network prefixes).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- Registered collector keys. An erased key (DELETE /v1/me) keeps its row as
-- a tombstone with erased_at set, so that its old reports can never be
-- replayed after a re-registration (reports observed before erased_at are
-- refused).
CREATE TABLE keys (
    id            INTEGER PRIMARY KEY,
    public_key    BLOB NOT NULL UNIQUE,       -- 32 raw bytes
    registered_at INTEGER NOT NULL,
    net_hash      BLOB,                       -- keyed hash of the /24 or /48 prefix at registration
    alpha         REAL NOT NULL DEFAULT 1.0,  -- Beta reputation evidence (trust issue)
    beta          REAL NOT NULL DEFAULT 1.0,
    blocked       INTEGER NOT NULL DEFAULT 0,
    erased_at     INTEGER
);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    marketplace TEXT NOT NULL,
    asin        TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    currency    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    watchers    INTEGER NOT NULL DEFAULT 0,   -- kept by the watches issue
    UNIQUE (marketplace, asin)
);

-- Title search. External-content FTS5 table kept in step by triggers.
CREATE VIRTUAL TABLE products_fts USING fts5(
    title,
    content = 'products',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER products_fts_ai AFTER INSERT ON products BEGIN
    INSERT INTO products_fts(rowid, title) VALUES (new.id, new.title);
END;
CREATE TRIGGER products_fts_ad AFTER DELETE ON products BEGIN
    INSERT INTO products_fts(products_fts, rowid, title) VALUES ('delete', old.id, old.title);
END;
CREATE TRIGGER products_fts_au AFTER UPDATE OF title ON products BEGIN
    INSERT INTO products_fts(products_fts, rowid, title) VALUES ('delete', old.id, old.title);
    INSERT INTO products_fts(rowid, title) VALUES (new.id, new.title);
END;

-- The published (current) offer per product and condition.
CREATE TABLE offers (
    product_id       INTEGER NOT NULL REFERENCES products(id),
    condition        INTEGER NOT NULL,
    price_minor      INTEGER,
    availability     INTEGER NOT NULL,
    seller           INTEGER NOT NULL,
    observed_at      INTEGER NOT NULL,
    status           INTEGER NOT NULL,
    last_verified_at INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (product_id, condition)
) WITHOUT ROWID;

-- Compact price history: one row per run of consecutive observations with
-- the same price and availability. Runs of one series never overlap.
CREATE TABLE history_runs (
    product_id   INTEGER NOT NULL,
    condition    INTEGER NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    price_minor  INTEGER,                     -- NULL: no price offered
    availability INTEGER NOT NULL,
    n            INTEGER NOT NULL,            -- observations in the run
    PRIMARY KEY (product_id, condition, first_seen)
) WITHOUT ROWID;

-- Audit log: every valid signed report as received, kept for the audit
-- retention (default 30 days), then purged. key_id is NULL once the key
-- erased its data. (key_id, nonce) is unique: a replay inside the
-- retention window hits this index; an older replay is refused by the 24 h
-- freshness rule before it gets here.
CREATE TABLE reports (
    id           INTEGER PRIMARY KEY,
    key_id       INTEGER,
    nonce        BLOB NOT NULL,               -- 16 raw bytes
    product_id   INTEGER NOT NULL,
    condition    INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    price_minor  INTEGER,
    availability INTEGER NOT NULL,
    status       INTEGER NOT NULL,
    net_hash     BLOB,
    raw          TEXT NOT NULL
);
CREATE UNIQUE INDEX reports_key_nonce ON reports (key_id, nonce);
CREATE INDEX reports_series_time ON reports (product_id, condition, observed_at);

-- Nonces of signed requests (PROTOCOL.md §3), remembered until they expire.
CREATE TABLE request_nonces (
    key_id     INTEGER NOT NULL,
    nonce      BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) WITHOUT ROWID;
CREATE INDEX request_nonces_expiry ON request_nonces (expires_at);
