-- Watches, the outbox of published-offer changes, alerts and their
-- delivery state, and contact addresses (issue 5). See backend/src/watch.

-- One watch of a key on a (product, condition) series.
-- threshold is the effective price threshold (a price <= threshold fires):
-- the larger of target_price_minor and the drop_percent price computed from
-- baseline_price_minor (the published price when the watch was made);
-- NULL when the watch has no price threshold (back-in-stock only).
CREATE TABLE watches (
    id                   INTEGER PRIMARY KEY,
    key_id               INTEGER NOT NULL,
    product_id           INTEGER NOT NULL REFERENCES products(id),
    condition            INTEGER NOT NULL,
    target_price_minor   INTEGER,
    drop_percent         INTEGER,
    baseline_price_minor INTEGER,
    back_in_stock        INTEGER NOT NULL,
    threshold            INTEGER,
    armed                INTEGER NOT NULL,
    stock_armed          INTEGER NOT NULL,
    ch_extension         INTEGER NOT NULL,
    email                TEXT,
    webhook_url          TEXT,
    webhook_secret       TEXT,
    created_at           INTEGER NOT NULL,
    last_fired_at        INTEGER,
    day                  INTEGER NOT NULL DEFAULT 0,
    day_count            INTEGER NOT NULL DEFAULT 0
);
-- Evaluation by threshold: a price change selects the armed watches that
-- fire (threshold >= price) and the disarmed ones that re-arm
-- (threshold < price) with range scans of this index.
CREATE INDEX watches_eval ON watches (product_id, condition, armed, threshold);
CREATE INDEX watches_stock ON watches (product_id, condition, stock_armed) WHERE back_in_stock = 1;
CREATE INDEX watches_key ON watches (key_id);

-- A change of a published offer's price or availability, written in the
-- ingest transaction that made it; processed_at is set by the notifier in
-- the transaction that records the alerts it fired.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    product_id       INTEGER NOT NULL,
    condition        INTEGER NOT NULL,
    old_price_minor  INTEGER,
    new_price_minor  INTEGER,
    old_availability INTEGER,
    new_availability INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    processed_at     INTEGER
);
CREATE INDEX outbox_pending ON outbox (id) WHERE processed_at IS NULL;

-- Alerts: one per (watch, event, kind) whatever the retries.
-- Delivery states: 0 none, 1 pending, 2 delivered, 3 dead letter.
CREATE TABLE alerts (
    id               INTEGER PRIMARY KEY,
    watch_id         INTEGER NOT NULL,
    key_id           INTEGER NOT NULL,
    event_id         INTEGER NOT NULL,
    kind             INTEGER NOT NULL,
    product_id       INTEGER NOT NULL,
    condition        INTEGER NOT NULL,
    old_price_minor  INTEGER,
    new_price_minor  INTEGER,
    created_at       INTEGER NOT NULL,
    email            TEXT,
    email_state      INTEGER NOT NULL DEFAULT 0,
    email_attempts   INTEGER NOT NULL DEFAULT 0,
    email_next_at    INTEGER,
    webhook_url      TEXT,
    webhook_secret   TEXT,
    webhook_state    INTEGER NOT NULL DEFAULT 0,
    webhook_attempts INTEGER NOT NULL DEFAULT 0,
    webhook_next_at  INTEGER,
    UNIQUE (watch_id, event_id, kind)
);
CREATE INDEX alerts_key ON alerts (key_id, id);
CREATE INDEX alerts_series ON alerts (product_id, condition, new_price_minor);
CREATE INDEX alerts_email_due ON alerts (email_next_at) WHERE email_state = 1;
CREATE INDEX alerts_webhook_due ON alerts (webhook_next_at) WHERE webhook_state = 1;

-- Email addresses of a key. Only token hashes are stored.
CREATE TABLE contacts (
    key_id           INTEGER NOT NULL,
    email            TEXT NOT NULL,
    confirm_hash     TEXT NOT NULL UNIQUE,
    unsubscribe_hash TEXT NOT NULL UNIQUE,
    created_at       INTEGER NOT NULL,
    confirmed_at     INTEGER,
    unsubscribed_at  INTEGER,
    confirmation_sent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, email)
);
