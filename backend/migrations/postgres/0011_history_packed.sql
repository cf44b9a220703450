-- Packed history (issue 4, the history read). The closed runs of a
-- product's old periods move out of history_runs into one row per
-- (product, condition, 30-day period): the history read of a year then
-- visits ~13 rows instead of ~140, and PostgreSQL's cost is per row
-- visited. The byte format of `runs` is store::packed's (decoded by the
-- server process, never by SQL).
--
-- Invariant (store::postgres, "Packed history"): for each (product,
-- condition), the packed runs all begin before every run still in
-- history_runs. Packing (the maintenance hook) moves only whole periods
-- that end before the last run begun more than 7 days ago, so no fresh
-- observation can touch a packed run; a write that would (an observation
-- or a correction older than every run left in history_runs) first moves
-- the product's packed runs back into history_runs, under the product's
-- advisory lock.
--
-- period:       first_seen div 2 592 000 000 (30 days of ms), store::packed::PERIOD_MS
-- n_runs:       runs in the row
-- observations: sum of their n (storage figures without decoding)
-- lo_* / hi_*:  lowest and highest price of the row's runs and the latest
--               last_seen at that price (the summary's all-time extremes),
--               NULL when no run has a price
CREATE TABLE history_packed (
    product_id   bigint NOT NULL REFERENCES products (id),
    condition    smallint NOT NULL,
    period       bigint NOT NULL,
    runs         bytea NOT NULL,
    n_runs       integer NOT NULL,
    observations bigint NOT NULL,
    lo_price     bigint,
    lo_at        bigint,
    hi_price     bigint,
    hi_at        bigint,
    PRIMARY KEY (product_id, condition, period)
);
