//! PostgreSQL statements of the watches, the outbox and the alerts: the
//! SQLite statements of [`super::sqlite`] in PostgreSQL's dialect. Outbox
//! events are claimed with `FOR UPDATE SKIP LOCKED`, so several workers
//! (several backend processes on one database) share them safely: each
//! event is evaluated in the transaction that claimed it. Only the oldest
//! unprocessed event of a series can be claimed, so the events of one
//! series are evaluated in order (a re-arm never overtakes the drop before
//! it), while different series go in parallel.

use super::watch_from_row;
use super::{
    effective_threshold, kind_code, kind_from, utc_day, AlertRecord, DeliveryChannel,
    DeliveryState, EvalStats, NewWatch, PendingContact, Watch, WatchSpec, COOLDOWN_MS, DAILY_CAP,
};
use crate::notify::AlertKind;
use crate::store::{code, KeyId, ProductId, StoreError, StoreResult};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use wasm_core::types::{Availability, Condition};

const WATCH_COLS: &str = "w.id, w.key_id, w.condition, w.target_price_minor, w.drop_percent, \
    w.baseline_price_minor, w.back_in_stock, w.threshold, w.armed, w.ch_extension, w.email, \
    w.webhook_url, w.webhook_secret, w.created_at, p.marketplace, p.asin, p.currency, \
    o.price_minor AS cur_price, o.availability::bigint AS cur_avail, \
    (SELECT c.confirmed_at IS NOT NULL AND c.unsubscribed_at IS NULL FROM contacts c \
       WHERE c.key_id = w.key_id AND c.email = w.email) AS email_ok";

const WATCH_FROM: &str = "FROM watches w JOIN products p ON p.id = w.product_id \
    LEFT JOIN offers o ON o.product_id = w.product_id AND o.condition = w.condition";

/// One watch of `key_id`.
pub async fn get_watch(
    conn: &mut PgConnection,
    key_id: KeyId,
    id: i64,
) -> StoreResult<Option<Watch>> {
    let sql = format!("SELECT {WATCH_COLS} {WATCH_FROM} WHERE w.id = $1 AND w.key_id = $2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(key_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(watch_from_row).transpose()
}

/// The watches of `key_id`, oldest first.
pub async fn list_watches(conn: &mut PgConnection, key_id: KeyId) -> StoreResult<Vec<Watch>> {
    let sql = format!("SELECT {WATCH_COLS} {WATCH_FROM} WHERE w.key_id = $1 ORDER BY w.id");
    let rows = sqlx::query(&sql).bind(key_id).fetch_all(&mut *conn).await?;
    rows.iter().map(watch_from_row).collect()
}

/// Values computed from the series' current offer for a new/replaced
/// watch: (baseline, threshold, armed, back_in_stock, stock_armed).
struct Derived {
    baseline: Option<i64>,
    threshold: Option<i64>,
    armed: bool,
    back_in_stock: bool,
}

async fn derive(
    conn: &mut PgConnection,
    product: ProductId,
    cond: i64,
    spec: &WatchSpec,
    keep_baseline: Option<Option<i64>>,
) -> StoreResult<Derived> {
    let cur = sqlx::query(
        "SELECT price_minor, availability::bigint AS availability FROM offers \
         WHERE product_id = $1 AND condition = $2",
    )
    .bind(product)
    .bind(cond)
    .fetch_optional(&mut *conn)
    .await?;
    let (price, avail): (Option<i64>, Option<Availability>) = match cur {
        Some(r) => (
            r.try_get("price_minor")?,
            Some(code::availability_from(r.try_get("availability")?)),
        ),
        None => (None, None),
    };
    let baseline = match keep_baseline {
        Some(b) if b.is_some() => b,
        _ => price,
    };
    if spec.drop_percent.is_some() && baseline.is_none() {
        return Err(StoreError::Conflict(
            "drop_percent needs a published price".into(),
        ));
    }
    let threshold = effective_threshold(spec.target_price_minor, spec.drop_percent, baseline);
    let armed = match (threshold, price) {
        (Some(t), Some(p)) => p > t,
        _ => true,
    };
    let implicit_stock = threshold.is_none() && avail != Some(Availability::InStock);
    Ok(Derived {
        baseline,
        threshold,
        armed,
        back_in_stock: spec.back_in_stock || implicit_stock,
    })
}

async fn product_id(
    conn: &mut PgConnection,
    marketplace: &str,
    asin: &str,
) -> StoreResult<ProductId> {
    sqlx::query_scalar("SELECT id FROM products WHERE marketplace = $1 AND asin = $2")
        .bind(marketplace)
        .bind(asin)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn ensure_contact(conn: &mut PgConnection, w: &NewWatch, now: i64) -> StoreResult<()> {
    if let (Some(email), Some((confirm, unsub))) = (&w.spec.email, &w.contact_hashes) {
        sqlx::query(
            "INSERT INTO contacts (key_id, email, confirm_hash, unsubscribe_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, email) DO NOTHING",
        )
        .bind(w.key_id)
        .bind(email)
        .bind(confirm)
        .bind(unsub)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Creates a watch (in the caller's transaction); keeps the product's
/// watcher count. `NotFound` for an unknown product, `Conflict` for a
/// `drop_percent` without a published price.
pub async fn create_watch(conn: &mut PgConnection, w: &NewWatch, now: i64) -> StoreResult<i64> {
    lock_product(conn, &w.marketplace, &w.asin).await?;
    let product = product_id(conn, &w.marketplace, &w.asin).await?;
    let cond = code::condition(w.condition);
    let d = derive(conn, product, cond, &w.spec, None).await?;
    ensure_contact(conn, w, now).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO watches (key_id, product_id, condition, target_price_minor, drop_percent, \
           baseline_price_minor, back_in_stock, threshold, armed, stock_armed, ch_extension, \
           email, webhook_url, webhook_secret, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(w.key_id)
    .bind(product)
    .bind(cond)
    .bind(w.spec.target_price_minor)
    .bind(w.spec.drop_percent)
    .bind(d.baseline)
    .bind(d.back_in_stock as i64)
    .bind(d.threshold)
    .bind(d.armed as i64)
    .bind(w.spec.extension as i64)
    .bind(&w.spec.email)
    .bind(&w.spec.webhook)
    .bind(&w.webhook_secret)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE products SET watchers = watchers + 1 WHERE id = $1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    if let (false, Some(t)) = (d.armed, d.threshold) {
        lower_rearm_floor(conn, product, cond, t).await?;
    }
    Ok(id)
}

/// Replaces a watch's thresholds and channels (same product and
/// condition; the drop baseline is kept). `false` when it is not a watch of
/// this key.
pub async fn replace_watch(
    conn: &mut PgConnection,
    id: i64,
    w: &NewWatch,
    now: i64,
) -> StoreResult<bool> {
    lock_product(conn, &w.marketplace, &w.asin).await?;
    let row = sqlx::query(
        "SELECT w.product_id, w.condition, w.baseline_price_minor FROM watches w \
         JOIN products p ON p.id = w.product_id \
         WHERE w.id = $1 AND w.key_id = $2 AND p.marketplace = $3 AND p.asin = $4",
    )
    .bind(id)
    .bind(w.key_id)
    .bind(&w.marketplace)
    .bind(&w.asin)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let product: i64 = row.try_get(0)?;
    let old_cond: i64 = row.try_get(1)?;
    let baseline: Option<i64> = row.try_get(2)?;
    let cond = code::condition(w.condition);
    let keep = if cond == old_cond {
        Some(baseline)
    } else {
        None
    };
    let d = derive(conn, product, cond, &w.spec, keep).await?;
    ensure_contact(conn, w, now).await?;
    sqlx::query(
        "UPDATE watches SET condition = $1, target_price_minor = $2, drop_percent = $3, \
           baseline_price_minor = $4, back_in_stock = $5, threshold = $6, armed = $7, \
           stock_armed = 1, ch_extension = $8, email = $9, webhook_url = $10, \
           webhook_secret = $11 WHERE id = $12",
    )
    .bind(cond)
    .bind(w.spec.target_price_minor)
    .bind(w.spec.drop_percent)
    .bind(d.baseline)
    .bind(d.back_in_stock as i64)
    .bind(d.threshold)
    .bind(d.armed as i64)
    .bind(w.spec.extension as i64)
    .bind(&w.spec.email)
    .bind(&w.spec.webhook)
    .bind(&w.webhook_secret)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if let (false, Some(t)) = (d.armed, d.threshold) {
        lower_rearm_floor(conn, product, cond, t).await?;
    }
    Ok(true)
}

/// Deletes a watch and its alerts; keeps the watcher count. `false` when
/// it is not a watch of this key.
pub async fn delete_watch(conn: &mut PgConnection, key_id: KeyId, id: i64) -> StoreResult<bool> {
    let product: Option<i64> = sqlx::query_scalar(
        "DELETE FROM watches WHERE id = $1 AND key_id = $2 RETURNING product_id",
    )
    .bind(id)
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(product) = product else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM alerts WHERE watch_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE products SET watchers = GREATEST(watchers - 1, 0) WHERE id = $1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Erases everything of a key (DELETE /v1/me): watches (with the watcher
/// counts), alerts, contacts.
pub async fn erase_key(conn: &mut PgConnection, key_id: KeyId) -> StoreResult<()> {
    sqlx::query(
        "UPDATE products SET watchers = GREATEST(watchers - (SELECT count(*) FROM watches w \
           WHERE w.product_id = products.id AND w.key_id = $1), 0) \
         WHERE id IN (SELECT product_id FROM watches WHERE key_id = $1)",
    )
    .bind(key_id)
    .execute(&mut *conn)
    .await?;
    for sql in [
        "DELETE FROM watches WHERE key_id = $1",
        "DELETE FROM alerts WHERE key_id = $1",
        "DELETE FROM contacts WHERE key_id = $1",
    ] {
        sqlx::query(sql).bind(key_id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Watches of a key (for `/v1/me`).
pub async fn count_watches(conn: &mut PgConnection, key_id: KeyId) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM watches WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Takes the product's ingest lock for the rest of the transaction: ingest
/// writes an outbox event only for a series with watches (see
/// `store::postgres::write_outbox`), so a watch must not be created or
/// changed between an ingest's check and its commit.
async fn lock_product(conn: &mut PgConnection, marketplace: &str, asin: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::store::postgres::product_lock_key(marketplace, asin))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Statement that records the watches an event fires as alert batches
/// (one row per kind, the watch ids as an array): the armed, quiet watches
/// of the series that `pred` selects. Nothing else is written here: the
/// watches' own state (disarmed, cooldown, daily count) is applied with
/// their alert rows by [`fan_out`]. Returns one row per batch with the
/// number of watches in it.
fn fire_sql(pred: &str, kind: &str) -> String {
    format!(
        "INSERT INTO alert_batches (event_id, kind, product_id, condition, old_price_minor, \
           new_price_minor, created_at, watch_ids) \
         SELECT $7, kind, $1, $2, $8, $9, $3, array_agg(id ORDER BY id) FROM \
           (SELECT w.id, {kind} AS kind FROM watches w \
             WHERE w.product_id = $1 AND w.condition = $2 AND {pred} \
               AND (w.last_fired_at IS NULL OR w.last_fired_at <= $5) \
               AND (w.day <> $4 OR w.day_count < $6)) AS fired \
         GROUP BY kind RETURNING cardinality(watch_ids)::bigint"
    )
}

/// Runs a [`fire_sql`] statement; returns how many watches fired.
#[allow(clippy::too_many_arguments)]
async fn fire(
    conn: &mut PgConnection,
    sql: &str,
    ev: i64,
    product: i64,
    cond: i64,
    old_price: Option<i64>,
    new_price: Option<i64>,
    price_bind: Option<i64>,
    now: i64,
) -> StoreResult<u64> {
    let mut q = sqlx::query_scalar::<_, i64>(sql)
        .bind(product)
        .bind(cond)
        .bind(now)
        .bind(utc_day(now))
        .bind(now - COOLDOWN_MS)
        .bind(DAILY_CAP)
        .bind(ev)
        .bind(old_price)
        .bind(new_price);
    if let Some(p) = price_bind {
        q = q.bind(p);
    }
    let counts = q.fetch_all(&mut *conn).await?;
    Ok(counts.iter().map(|&n| u64::try_from(n).unwrap_or(0)).sum())
}

/// Locks the series' `watch_series` row (creating it, with no floor, the
/// first time) and returns its re-arm floor. Serialises evaluation with
/// [`lower_rearm_floor`] (see migration 0006).
async fn lock_rearm_floor(
    conn: &mut PgConnection,
    product: i64,
    cond: i64,
) -> StoreResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO watch_series (product_id, condition, rearm_floor) VALUES ($1, $2, NULL) \
         ON CONFLICT (product_id, condition) DO UPDATE SET rearm_floor = watch_series.rearm_floor \
         RETURNING rearm_floor",
    )
    .bind(product)
    .bind(cond)
    .fetch_one(&mut *conn)
    .await?)
}

/// A watch of the series starts disarmed with `threshold`: the re-arm
/// floor goes down to it (an unknown floor stays unknown; a series never
/// evaluated gets a row with an unknown floor, as other disarmed watches
/// may exist).
async fn lower_rearm_floor(
    conn: &mut PgConnection,
    product: i64,
    cond: i64,
    threshold: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO watch_series (product_id, condition, rearm_floor) VALUES ($1, $2, NULL) \
         ON CONFLICT (product_id, condition) DO UPDATE SET rearm_floor = CASE \
           WHEN watch_series.rearm_floor IS NULL THEN NULL \
           ELSE least(watch_series.rearm_floor, $3) END",
    )
    .bind(product)
    .bind(cond)
    .bind(threshold)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Evaluates up to `max` outbox events in order (in the caller's
/// transaction): records the watches that fire as alert batches, re-arms
/// what the new price is above, marks the events. [`fan_out`] then turns
/// the batches into alert rows and applies the fired watches' state.
///
/// Performance judgement calls (issue 5's benchmark: 25 % of 100,000
/// watches firing took 361 ms, about eleven WAL records per watch that
/// fired: a non-HOT watch update and an alert row with five indexes):
/// * the fired set is found with one range scan and recorded as one row
///   per (event, kind) holding the watch ids, in the evaluation's
///   transaction (durable and exact);
/// * the per-watch writes (alert row; disarm, cooldown and daily count of
///   the watch, a HOT update since `armed` is no longer indexed) follow in
///   [`fan_out`] chunks. Correctness: an event is only claimed when its
///   series has no batch left (see the claim query), so the next
///   evaluation of a series always sees the state of the previous one;
///   readers (the watch list) may see a fired watch still armed for the
///   moments the fan-out takes;
/// * re-arming only visits thresholds in `[rearm_floor, price)` (see
///   migration 0006), instead of relying on `armed` being indexed.
pub async fn process_outbox(conn: &mut PgConnection, now: i64, max: i64) -> StoreResult<EvalStats> {
    let events = sqlx::query(
        "SELECT id, product_id, condition, old_price_minor, new_price_minor, old_availability, \
           new_availability FROM outbox o WHERE processed_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.product_id = o.product_id \
             AND e.condition = o.condition AND e.processed_at IS NULL AND e.id < o.id) \
           AND NOT EXISTS (SELECT 1 FROM alert_batches b WHERE b.product_id = o.product_id \
             AND b.condition = o.condition) \
         ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(max)
    .fetch_all(&mut *conn)
    .await?;
    let mut stats = EvalStats::default();
    for ev in events {
        let id: i64 = ev.try_get(0)?;
        let product: i64 = ev.try_get(1)?;
        let cond: i64 = ev.try_get(2)?;
        let old_price: Option<i64> = ev.try_get(3)?;
        let new_price: Option<i64> = ev.try_get(4)?;
        let old_avail: Option<i64> = ev.try_get(5)?;
        let new_avail = code::availability_from(ev.try_get(6)?);
        // Judgement call: a price on an out-of-stock offer fires nothing.
        if let (Some(p), true) = (new_price, new_avail != Availability::OutOfStock) {
            let floor = lock_rearm_floor(conn, product, cond).await?;
            let sql = fire_sql(
                "w.armed = 1 AND w.threshold >= $10",
                "CASE WHEN w.target_price_minor IS NOT NULL AND $10 <= w.target_price_minor \
                 THEN 0 ELSE 1 END",
            );
            stats.alerts += fire(
                conn,
                &sql,
                id,
                product,
                cond,
                old_price,
                new_price,
                Some(p),
                now,
            )
            .await?;
            if floor.is_none_or(|f| f < p) {
                let res = sqlx::query(
                    "UPDATE watches AS w SET armed = 1 WHERE w.product_id = $1 \
                     AND w.condition = $2 AND w.threshold < $3 \
                     AND ($4::bigint IS NULL OR w.threshold >= $4) AND w.armed = 0",
                )
                .bind(product)
                .bind(cond)
                .bind(p)
                .bind(floor)
                .execute(&mut *conn)
                .await?;
                stats.rearmed += res.rows_affected();
            }
            // Every watch still disarmed, or just disarmed, has
            // threshold >= p.
            sqlx::query(
                "UPDATE watch_series SET rearm_floor = $3 WHERE product_id = $1 AND condition = $2",
            )
            .bind(product)
            .bind(cond)
            .bind(p)
            .execute(&mut *conn)
            .await?;
        }
        let was_in = old_avail.map(code::availability_from) == Some(Availability::InStock);
        if new_avail == Availability::InStock && !was_in {
            // A watch that fired on the price of this event does not fire
            // again on its availability (its cooldown has begun).
            let sql = fire_sql(
                "w.back_in_stock = 1 AND w.stock_armed = 1 AND NOT EXISTS \
                 (SELECT 1 FROM alert_batches b WHERE b.event_id = $7 \
                   AND w.id = ANY(b.watch_ids))",
                &kind_code(AlertKind::BackInStock).to_string(),
            );
            stats.alerts += fire(
                conn, &sql, id, product, cond, old_price, new_price, None, now,
            )
            .await?;
        } else if new_avail != Availability::InStock {
            let res = sqlx::query(
                "UPDATE watches AS w SET stock_armed = 1 WHERE w.product_id = $1 \
                 AND w.condition = $2 AND w.back_in_stock = 1 AND w.stock_armed = 0",
            )
            .bind(product)
            .bind(cond)
            .execute(&mut *conn)
            .await?;
            stats.rearmed += res.rows_affected();
        }
        sqlx::query("UPDATE outbox SET processed_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        stats.events += 1;
    }
    Ok(stats)
}

/// Turns up to `max_rows` watch ids of recorded alert batches into alert
/// rows and applies those watches' state, in the caller's transaction:
/// the oldest batch first, its first ids; the batch row keeps the rest,
/// or goes when it is done (so each chunk is applied exactly once). A
/// fired watch is disarmed (`armed`, or `stock_armed` for back in stock)
/// and its cooldown and daily count move on; its alert takes its channels
/// from the watch as it is now, its prices and time from the batch. A
/// watch deleted since it fired gets nothing; one whose threshold was
/// replaced by one the price no longer meets is left alone. Returns how
/// many watch ids were handled; 0 when no batch is left.
pub async fn fan_out(conn: &mut PgConnection, max_rows: i64) -> StoreResult<u64> {
    let batch = sqlx::query(
        "SELECT id, cardinality(watch_ids)::bigint AS n FROM alert_batches \
         ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(batch) = batch else { return Ok(0) };
    let id: i64 = batch.try_get("id")?;
    let n: i64 = batch.try_get("n")?;
    let take = n.min(max_rows.max(1));
    let stock = kind_code(AlertKind::BackInStock);
    sqlx::query(
        "WITH b AS (SELECT * FROM alert_batches WHERE id = $1), \
         ids AS (SELECT unnest(watch_ids[1:$2]) AS wid FROM b), \
         fired AS (UPDATE watches AS w SET \
             armed = CASE WHEN b.kind = $3 THEN w.armed ELSE 0 END, \
             stock_armed = CASE WHEN b.kind = $3 THEN 0 ELSE w.stock_armed END, \
             last_fired_at = b.created_at, \
             day_count = CASE WHEN w.day = b.created_at / $4 THEN w.day_count + 1 ELSE 1 END, \
             day = b.created_at / $4 \
           FROM b, ids WHERE w.id = ids.wid \
             AND (b.kind = $3 OR w.threshold >= b.new_price_minor) \
           RETURNING w.id, w.key_id, w.email, w.webhook_url, w.webhook_secret) \
         INSERT INTO alerts (watch_id, key_id, event_id, kind, product_id, condition, \
           old_price_minor, new_price_minor, created_at, email, email_state, email_next_at, \
           webhook_url, webhook_secret, webhook_state, webhook_next_at) \
         SELECT f.id, f.key_id, b.event_id, b.kind, b.product_id, b.condition, \
           b.old_price_minor, b.new_price_minor, b.created_at, \
           CASE WHEN c.key_id IS NOT NULL THEN f.email END, \
           CASE WHEN c.key_id IS NOT NULL THEN 1 ELSE 0 END, b.created_at, \
           f.webhook_url, f.webhook_secret, \
           CASE WHEN f.webhook_url IS NOT NULL THEN 1 ELSE 0 END, b.created_at \
         FROM fired f CROSS JOIN b \
         LEFT JOIN contacts c ON c.key_id = f.key_id AND c.email = f.email \
           AND c.confirmed_at IS NOT NULL AND c.unsubscribed_at IS NULL \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(take)
    .bind(stock)
    .bind(86_400_000i64)
    .execute(&mut *conn)
    .await?;
    if take >= n {
        sqlx::query("DELETE FROM alert_batches WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    } else {
        sqlx::query("UPDATE alert_batches SET watch_ids = watch_ids[$2 + 1:] WHERE id = $1")
            .bind(id)
            .bind(take)
            .execute(&mut *conn)
            .await?;
    }
    Ok(u64::try_from(take).unwrap_or(0))
}

/// Adds a `correction` alert, on the same channels, for every alert that
/// fired at `refuted_price_minor` on the series since `since` (and has no
/// correction yet). Returns the new alerts' ids.
pub async fn correct_published_price(
    conn: &mut PgConnection,
    product: ProductId,
    condition: Condition,
    refuted_price_minor: i64,
    corrected_price_minor: Option<i64>,
    since: i64,
    now: i64,
) -> StoreResult<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO alerts (watch_id, key_id, event_id, kind, product_id, condition, \
           old_price_minor, new_price_minor, created_at, email, email_state, email_next_at, \
           webhook_url, webhook_secret, webhook_state, webhook_next_at) \
         SELECT a.watch_id, a.key_id, a.event_id, $1, a.product_id, a.condition, \
           a.new_price_minor, $2, $3, a.email, CASE WHEN a.email IS NOT NULL THEN 1 ELSE 0 END, $3, \
           a.webhook_url, a.webhook_secret, CASE WHEN a.webhook_url IS NOT NULL THEN 1 ELSE 0 END, $3 \
         FROM alerts a WHERE a.product_id = $4 AND a.condition = $5 AND a.new_price_minor = $6 \
           AND a.kind <> $1 AND a.created_at >= $7 ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(kind_code(AlertKind::Correction))
    .bind(corrected_price_minor)
    .bind(now)
    .bind(product)
    .bind(code::condition(condition))
    .bind(refuted_price_minor)
    .bind(since)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids)
}

const ALERT_SELECT: &str =
    "SELECT a.id, a.watch_id, a.key_id, a.product_id, p.marketplace, p.asin, p.title, \
    a.condition, a.kind, a.old_price_minor, a.new_price_minor, p.currency, a.created_at, a.email, \
    a.email_state, a.email_attempts, a.webhook_url, a.webhook_secret, a.webhook_state, \
    a.webhook_attempts FROM alerts a JOIN products p ON p.id = a.product_id";

fn alert_from_row(row: &PgRow) -> StoreResult<AlertRecord> {
    let cond: i64 = row.try_get("condition")?;
    Ok(AlertRecord {
        id: row.try_get("id")?,
        watch_id: row.try_get("watch_id")?,
        key_id: row.try_get("key_id")?,
        product_id: row.try_get("product_id")?,
        marketplace: row.try_get("marketplace")?,
        asin: row.try_get("asin")?,
        title: row.try_get("title")?,
        condition: code::condition_from(cond)
            .ok_or_else(|| StoreError::Database(format!("bad condition code {cond}")))?,
        kind: kind_from(row.try_get("kind")?),
        old_price_minor: row.try_get("old_price_minor")?,
        new_price_minor: row.try_get("new_price_minor")?,
        currency: row.try_get("currency")?,
        created_at: row.try_get("created_at")?,
        email: row.try_get("email")?,
        email_state: DeliveryState::from_code(row.try_get("email_state")?),
        email_attempts: row.try_get("email_attempts")?,
        webhook_url: row.try_get("webhook_url")?,
        webhook_secret: row.try_get("webhook_secret")?,
        webhook_state: DeliveryState::from_code(row.try_get("webhook_state")?),
        webhook_attempts: row.try_get("webhook_attempts")?,
    })
}

/// The extension feed: alerts of a key with `id > after`, oldest first,
/// of the watches whose `channels.extension` is on (see `http::alerts`).
pub async fn alerts_after(
    conn: &mut PgConnection,
    key_id: KeyId,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<AlertRecord>> {
    let sql = format!(
        "{ALERT_SELECT} JOIN watches w ON w.id = a.watch_id WHERE a.key_id = $1 \
         AND w.ch_extension = 1 AND a.id > $2 ORDER BY a.id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(key_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(alert_from_row).collect()
}

/// Alerts whose delivery on `channel` is pending and due at `now`.
pub async fn due_deliveries(
    conn: &mut PgConnection,
    channel: DeliveryChannel,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<AlertRecord>> {
    let (state, next) = match channel {
        DeliveryChannel::Email => ("a.email_state", "a.email_next_at"),
        DeliveryChannel::Webhook => ("a.webhook_state", "a.webhook_next_at"),
    };
    let sql =
        format!("{ALERT_SELECT} WHERE {state} = 1 AND {next} <= $1 ORDER BY {next}, a.id LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(alert_from_row).collect()
}

/// Stores a delivery attempt's result for some alerts.
pub async fn record_delivery(
    conn: &mut PgConnection,
    ids: &[i64],
    channel: DeliveryChannel,
    state: DeliveryState,
    attempts: i64,
    next_at: Option<i64>,
) -> StoreResult<()> {
    let sql = match channel {
        DeliveryChannel::Email => {
            "UPDATE alerts SET email_state = $1, email_attempts = $2, email_next_at = $3 WHERE id = $4"
        }
        DeliveryChannel::Webhook => {
            "UPDATE alerts SET webhook_state = $1, webhook_attempts = $2, webhook_next_at = $3 \
             WHERE id = $4"
        }
    };
    for id in ids {
        sqlx::query(sql)
            .bind(state as i64)
            .bind(attempts)
            .bind(next_at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Contacts whose confirmation mail has not been sent and whose next
/// attempt is due at `now`, with the attempts made so far.
pub async fn pending_contacts(
    conn: &mut PgConnection,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<PendingContact>> {
    let rows = sqlx::query(
        "SELECT key_id, email, created_at, confirm_attempts FROM contacts \
         WHERE confirmation_sent = 0 AND confirmed_at IS NULL \
         AND (confirm_next_at IS NULL OR confirm_next_at <= $1) \
         ORDER BY confirm_next_at, key_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PendingContact {
                key_id: r.try_get(0)?,
                email: r.try_get(1)?,
                created_at: r.try_get(2)?,
                attempts: r.try_get(3)?,
            })
        })
        .collect()
}

/// Records a failed confirmation attempt that will be retried: the
/// attempts made so far and when the next one is due.
pub async fn confirmation_retry(
    conn: &mut PgConnection,
    key_id: KeyId,
    email: &str,
    attempts: i64,
    next_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE contacts SET confirm_attempts = $1, confirm_next_at = $2 \
         WHERE key_id = $3 AND email = $4",
    )
    .bind(attempts)
    .bind(next_at)
    .bind(key_id)
    .bind(email)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a contact's confirmation mail as sent (or given up).
pub async fn confirmation_sent(
    conn: &mut PgConnection,
    key_id: KeyId,
    email: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE contacts SET confirmation_sent = 1 WHERE key_id = $1 AND email = $2")
        .bind(key_id)
        .bind(email)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The `created_at` of a contact (part of its derived tokens).
pub async fn contact_created_at(
    conn: &mut PgConnection,
    key_id: KeyId,
    email: &str,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT created_at FROM contacts WHERE key_id = $1 AND email = $2")
            .bind(key_id)
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Confirms the contact whose confirmation token hashes to `hash`.
pub async fn confirm_contact(conn: &mut PgConnection, hash: &str, now: i64) -> StoreResult<bool> {
    let res = sqlx::query(
        "UPDATE contacts SET confirmed_at = coalesce(confirmed_at, $1), unsubscribed_at = NULL \
         WHERE confirm_hash = $2",
    )
    .bind(now)
    .bind(hash)
    .execute(&mut *conn)
    .await?;
    Ok(res.rows_affected() > 0)
}

/// Unsubscribes the contact whose unsubscribe token hashes to `hash`;
/// pending mail to it is dropped.
pub async fn unsubscribe_contact(
    conn: &mut PgConnection,
    hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "UPDATE contacts SET unsubscribed_at = coalesce(unsubscribed_at, $1) \
         WHERE unsubscribe_hash = $2 RETURNING key_id, email",
    )
    .bind(now)
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let key_id: i64 = row.try_get(0)?;
    let email: String = row.try_get(1)?;
    sqlx::query(
        "UPDATE alerts SET email_state = 0 WHERE key_id = $1 AND email = $2 AND email_state = 1",
    )
    .bind(key_id)
    .bind(email)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
