-- Waiting reports (issue 6): the same table as
-- migrations/sqlite/0005_waiting.sql (see the comments there). 0007 is the
-- history helper's migration; sqlx applies every migration not yet applied,
-- so the gap (or 0007 arriving after 0008) is harmless: they are independent.
CREATE TABLE waiting_reports (
    product_id          bigint NOT NULL,
    condition           bigint NOT NULL,
    key_id              bigint NOT NULL,
    nonce               bytea NOT NULL,
    received_at         bigint NOT NULL,
    observed_at         bigint NOT NULL,
    price_minor         bigint,
    availability        bigint NOT NULL,
    alerts              bigint NOT NULL,
    before_price_minor  bigint,
    before_availability bigint,
    in_history          bigint NOT NULL,
    PRIMARY KEY (product_id, condition, key_id, nonce)
);
CREATE INDEX waiting_reports_observed ON waiting_reports (observed_at);
CREATE INDEX waiting_reports_key ON waiting_reports (key_id);

-- The series' last verified reading (see migrations/sqlite/0005_waiting.sql).
ALTER TABLE offers ADD COLUMN verified_price_minor bigint;
ALTER TABLE offers ADD COLUMN verified_availability smallint;
UPDATE offers SET verified_price_minor = price_minor, verified_availability = availability
    WHERE status IN (1, 3);
