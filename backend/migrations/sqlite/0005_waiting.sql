-- Waiting reports (issue 6, trust::outcome::judge_waiting): a report
-- stored only because its key was over its crawl-trigger limit
-- (`crawl_limit`) or distrusted (`distrusted_key`) waits for the next crawl
-- of its series (product, condition), whatever queued that crawl. The
-- crawl's observed reading judges every waiting report of the series, then
-- the rows go. Rows older than trust::outcome::WAITING_HORIZON_MS (by
-- observed_at) can no longer be judged: verification_tick deletes them.
-- DELETE /v1/me deletes the key's rows.
--
-- The values needed to judge are copied here (as in verification_reports)
-- so the judgement never depends on the audit retention; (key_id, nonce)
-- and received_at find the audit row for the status update.
-- before_*: the series' last verified reading when the report was decided
-- (offers.verified_*, below), whatever was published then;
-- before_availability NULL = none (before_price_minor may be NULL for a
-- verified "no price").
-- in_history: the report was counted into the history runs (crawl_limit
-- reports are; a distrusted key's deviating ones are not), so a refutation
-- removes its observation from the runs.
CREATE TABLE waiting_reports (
    product_id          INTEGER NOT NULL,
    condition           INTEGER NOT NULL,
    key_id              INTEGER NOT NULL,
    nonce               BLOB NOT NULL,
    received_at         INTEGER NOT NULL,
    observed_at         INTEGER NOT NULL,
    price_minor         INTEGER,
    availability        INTEGER NOT NULL,
    alerts              INTEGER NOT NULL,
    before_price_minor  INTEGER,
    before_availability INTEGER,
    in_history          INTEGER NOT NULL,
    -- "All of a series" is a prefix scan of the primary key.
    PRIMARY KEY (product_id, condition, key_id, nonce)
) WITHOUT ROWID;
-- Purge by time (the tick) and by key (erasure).
CREATE INDEX waiting_reports_observed ON waiting_reports (observed_at);
CREATE INDEX waiting_reports_key ON waiting_reports (key_id);

-- The series' last verified reading (a waiting report's `before`): set
-- whenever a trusted verifier's observation is published (offer status
-- verified) and kept while collectors' changes are published over it.
-- verified_availability NULL = never verified (verified_price_minor may be
-- NULL for a verified "no price"). Offers whose published value is a
-- crawl's (verified, or corrected, which shows the crawl's reading) start
-- with it; the others with none.
ALTER TABLE offers ADD COLUMN verified_price_minor INTEGER;
ALTER TABLE offers ADD COLUMN verified_availability INTEGER;
UPDATE offers SET verified_price_minor = price_minor, verified_availability = availability
    WHERE status IN (1, 3);
