//! SQLite statements of the watches, the outbox and the alerts. The
//! `SqliteStore` methods call these with its writer connection (inside
//! `BEGIN IMMEDIATE`) or a read connection.

use super::watch_from_row;
use super::{
    effective_threshold, kind_code, kind_from, utc_day, AlertRecord, DeliveryChannel,
    DeliveryState, EvalStats, NewWatch, PendingContact, Watch, WatchSpec, COOLDOWN_MS, DAILY_CAP,
};
use crate::notify::AlertKind;
use crate::store::{code, KeyId, Offer, ProductId, StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::Row;
use std::collections::BTreeMap;
use wasm_core::types::{Availability, Condition};

/// Writes one outbox event per series whose published price or
/// availability changed in this batch. `before` holds each touched
/// series' published offer before the batch's first publish; `after` the
/// offers written. Returns the number of events.
///
/// Only series with at least one watch get events (performance: issue 4's
/// ingest load is thousands of unwatched products, each first publication
/// cost an event and its evaluation on the single writer). Exact on
/// SQLite: watches are created on the same single writer, so the check
/// and the event are in one serialised transaction.
pub async fn flush_outbox(
    conn: &mut SqliteConnection,
    before: &mut BTreeMap<(ProductId, i64), Option<Offer>>,
    after: &BTreeMap<(ProductId, i64), Offer>,
    now: i64,
) -> StoreResult<u64> {
    let mut n = 0;
    for (key, old) in before.iter() {
        let Some(new) = after.get(key) else { continue };
        let changed = match old {
            None => true,
            Some(o) => o.price_minor != new.price_minor || o.availability != new.availability,
        };
        if !changed {
            continue;
        }
        let res = sqlx::query(
            "INSERT INTO outbox (product_id, condition, old_price_minor, new_price_minor, \
               old_availability, new_availability, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS \
               (SELECT 1 FROM watches WHERE product_id = ?1 AND condition = ?2)",
        )
        .bind(key.0)
        .bind(key.1)
        .bind(old.as_ref().and_then(|o| o.price_minor))
        .bind(new.price_minor)
        .bind(old.as_ref().map(|o| code::availability(o.availability)))
        .bind(code::availability(new.availability))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        n += res.rows_affected();
    }
    before.clear();
    Ok(n)
}

const WATCH_COLS: &str = "w.id, w.key_id, w.condition, w.target_price_minor, w.drop_percent, \
    w.baseline_price_minor, w.back_in_stock, w.threshold, w.armed, w.ch_extension, w.email, \
    w.webhook_url, w.webhook_secret, w.created_at, p.marketplace, p.asin, p.currency, \
    o.price_minor AS cur_price, o.availability AS cur_avail, \
    (SELECT c.confirmed_at IS NOT NULL AND c.unsubscribed_at IS NULL FROM contacts c \
       WHERE c.key_id = w.key_id AND c.email = w.email) AS email_ok";

const WATCH_FROM: &str = "FROM watches w JOIN products p ON p.id = w.product_id \
    LEFT JOIN offers o ON o.product_id = w.product_id AND o.condition = w.condition";

/// One watch of `key_id`.
pub async fn get_watch(
    conn: &mut SqliteConnection,
    key_id: KeyId,
    id: i64,
) -> StoreResult<Option<Watch>> {
    let sql = format!("SELECT {WATCH_COLS} {WATCH_FROM} WHERE w.id = ?1 AND w.key_id = ?2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(key_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(watch_from_row).transpose()
}

/// The watches of `key_id`, oldest first.
pub async fn list_watches(conn: &mut SqliteConnection, key_id: KeyId) -> StoreResult<Vec<Watch>> {
    let sql = format!("SELECT {WATCH_COLS} {WATCH_FROM} WHERE w.key_id = ?1 ORDER BY w.id");
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
    conn: &mut SqliteConnection,
    product: ProductId,
    cond: i64,
    spec: &WatchSpec,
    keep_baseline: Option<Option<i64>>,
) -> StoreResult<Derived> {
    let cur = sqlx::query(
        "SELECT price_minor, availability FROM offers WHERE product_id = ?1 AND condition = ?2",
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
    conn: &mut SqliteConnection,
    marketplace: &str,
    asin: &str,
) -> StoreResult<ProductId> {
    sqlx::query_scalar("SELECT id FROM products WHERE marketplace = ?1 AND asin = ?2")
        .bind(marketplace)
        .bind(asin)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn ensure_contact(conn: &mut SqliteConnection, w: &NewWatch, now: i64) -> StoreResult<()> {
    if let (Some(email), Some((confirm, unsub))) = (&w.spec.email, &w.contact_hashes) {
        sqlx::query(
            "INSERT INTO contacts (key_id, email, confirm_hash, unsubscribe_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key_id, email) DO NOTHING",
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
pub async fn create_watch(conn: &mut SqliteConnection, w: &NewWatch, now: i64) -> StoreResult<i64> {
    let product = product_id(conn, &w.marketplace, &w.asin).await?;
    let cond = code::condition(w.condition);
    let d = derive(conn, product, cond, &w.spec, None).await?;
    ensure_contact(conn, w, now).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO watches (key_id, product_id, condition, target_price_minor, drop_percent, \
           baseline_price_minor, back_in_stock, threshold, armed, stock_armed, ch_extension, \
           email, webhook_url, webhook_secret, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12, ?13, ?14) RETURNING id",
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
    sqlx::query("UPDATE products SET watchers = watchers + 1 WHERE id = ?1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

/// Replaces a watch's thresholds and channels (same product and
/// condition; the drop baseline is kept). `false` when it is not a watch of
/// this key.
pub async fn replace_watch(
    conn: &mut SqliteConnection,
    id: i64,
    w: &NewWatch,
    now: i64,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT w.product_id, w.condition, w.baseline_price_minor FROM watches w \
         JOIN products p ON p.id = w.product_id \
         WHERE w.id = ?1 AND w.key_id = ?2 AND p.marketplace = ?3 AND p.asin = ?4",
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
        "UPDATE watches SET condition = ?1, target_price_minor = ?2, drop_percent = ?3, \
           baseline_price_minor = ?4, back_in_stock = ?5, threshold = ?6, armed = ?7, \
           stock_armed = 1, ch_extension = ?8, email = ?9, webhook_url = ?10, \
           webhook_secret = ?11 WHERE id = ?12",
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
    Ok(true)
}

/// Deletes a watch and its alerts; keeps the watcher count. `false` when
/// it is not a watch of this key.
pub async fn delete_watch(
    conn: &mut SqliteConnection,
    key_id: KeyId,
    id: i64,
) -> StoreResult<bool> {
    let product: Option<i64> = sqlx::query_scalar(
        "DELETE FROM watches WHERE id = ?1 AND key_id = ?2 RETURNING product_id",
    )
    .bind(id)
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(product) = product else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM alerts WHERE watch_id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE products SET watchers = max(watchers - 1, 0) WHERE id = ?1")
        .bind(product)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Erases everything of a key (DELETE /v1/me): watches (with the watcher
/// counts), alerts, contacts.
pub async fn erase_key(conn: &mut SqliteConnection, key_id: KeyId) -> StoreResult<()> {
    sqlx::query(
        "UPDATE products SET watchers = max(watchers - (SELECT count(*) FROM watches w \
           WHERE w.product_id = products.id AND w.key_id = ?1), 0) \
         WHERE id IN (SELECT product_id FROM watches WHERE key_id = ?1)",
    )
    .bind(key_id)
    .execute(&mut *conn)
    .await?;
    for sql in [
        "DELETE FROM watches WHERE key_id = ?1",
        "DELETE FROM alerts WHERE key_id = ?1",
        "DELETE FROM contacts WHERE key_id = ?1",
    ] {
        sqlx::query(sql).bind(key_id).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Watches of a key (for `/v1/me`).
pub async fn count_watches(conn: &mut SqliteConnection, key_id: KeyId) -> StoreResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM watches WHERE key_id = ?1")
            .bind(key_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Columns an alert copies from its watch for delivery.
const ALERT_CHANNELS: &str = "CASE WHEN c.key_id IS NOT NULL THEN w.email END, \
    CASE WHEN c.key_id IS NOT NULL THEN 1 ELSE 0 END, ?now, \
    w.webhook_url, w.webhook_secret, CASE WHEN w.webhook_url IS NOT NULL THEN 1 ELSE 0 END, ?now";

const ALERT_JOIN: &str = "FROM watches w LEFT JOIN contacts c ON c.key_id = w.key_id \
    AND c.email = w.email AND c.confirmed_at IS NOT NULL AND c.unsubscribed_at IS NULL";

/// Processes up to `max` outbox events in order (in the caller's
/// transaction): inserts the alerts that fire (idempotent), disarms what
/// fired, re-arms what the new price is above, marks the events.
pub async fn process_outbox(
    conn: &mut SqliteConnection,
    now: i64,
    max: i64,
) -> StoreResult<EvalStats> {
    let events = sqlx::query(
        "SELECT id, product_id, condition, old_price_minor, new_price_minor, old_availability, \
           new_availability FROM outbox WHERE processed_at IS NULL ORDER BY id LIMIT ?1",
    )
    .bind(max)
    .fetch_all(&mut *conn)
    .await?;
    let mut stats = EvalStats::default();
    let today = utc_day(now);
    let cut = now - COOLDOWN_MS;
    for ev in events {
        let id: i64 = ev.try_get(0)?;
        let product: i64 = ev.try_get(1)?;
        let cond: i64 = ev.try_get(2)?;
        let old_price: Option<i64> = ev.try_get(3)?;
        let new_price: Option<i64> = ev.try_get(4)?;
        let old_avail: Option<i64> = ev.try_get(5)?;
        let new_avail = code::availability_from(ev.try_get(6)?);
        let quiet = "(w.last_fired_at IS NULL OR w.last_fired_at <= ?cut) \
                     AND (w.day <> ?today OR w.day_count < ?cap)";
        let fired_update = "armed_col = 0, last_fired_at = ?now, \
             day_count = CASE WHEN day = ?today THEN day_count + 1 ELSE 1 END, day = ?today";
        // Judgement call: a price on an out-of-stock offer fires nothing.
        if let (Some(p), true) = (new_price, new_avail != Availability::OutOfStock) {
            let pred = format!(
                "w.product_id = ?pid AND w.condition = ?cond AND w.armed = 1 \
                 AND w.threshold >= ?price AND {quiet}"
            );
            let ins = format!(
                "INSERT OR IGNORE INTO alerts (watch_id, key_id, event_id, kind, product_id, \
                   condition, old_price_minor, new_price_minor, created_at, email, email_state, \
                   email_next_at, webhook_url, webhook_secret, webhook_state, webhook_next_at) \
                 SELECT w.id, w.key_id, ?ev, CASE WHEN w.target_price_minor IS NOT NULL AND \
                   ?price <= w.target_price_minor THEN 0 ELSE 1 END, w.product_id, w.condition, \
                   ?old, ?price, ?now, {ALERT_CHANNELS} {ALERT_JOIN} WHERE {pred}"
            );
            let upd = format!(
                "UPDATE watches AS w SET {} WHERE {pred}",
                fired_update.replace("armed_col", "armed")
            );
            stats.alerts += run(
                conn,
                &ins,
                id,
                product,
                cond,
                old_price,
                Some(p),
                now,
                today,
                cut,
            )
            .await?;
            run(
                conn,
                &upd,
                id,
                product,
                cond,
                old_price,
                Some(p),
                now,
                today,
                cut,
            )
            .await?;
            stats.rearmed += run(
                conn,
                "UPDATE watches AS w SET armed = 1 WHERE w.product_id = ?pid \
                 AND w.condition = ?cond AND w.armed = 0 AND w.threshold < ?price",
                id,
                product,
                cond,
                old_price,
                Some(p),
                now,
                today,
                cut,
            )
            .await?;
        }
        let was_in = old_avail.map(code::availability_from) == Some(Availability::InStock);
        if new_avail == Availability::InStock && !was_in {
            let pred = format!(
                "w.product_id = ?pid AND w.condition = ?cond AND w.back_in_stock = 1 \
                 AND w.stock_armed = 1 AND {quiet}"
            );
            let ins = format!(
                "INSERT OR IGNORE INTO alerts (watch_id, key_id, event_id, kind, product_id, \
                   condition, old_price_minor, new_price_minor, created_at, email, email_state, \
                   email_next_at, webhook_url, webhook_secret, webhook_state, webhook_next_at) \
                 SELECT w.id, w.key_id, ?ev, {}, w.product_id, w.condition, ?old, ?price, ?now, \
                   {ALERT_CHANNELS} {ALERT_JOIN} WHERE {pred}",
                kind_code(AlertKind::BackInStock)
            );
            let upd = format!(
                "UPDATE watches AS w SET {} WHERE {pred}",
                fired_update.replace("armed_col", "stock_armed")
            );
            stats.alerts += run(
                conn, &ins, id, product, cond, old_price, new_price, now, today, cut,
            )
            .await?;
            run(
                conn, &upd, id, product, cond, old_price, new_price, now, today, cut,
            )
            .await?;
        } else if new_avail != Availability::InStock {
            stats.rearmed += run(
                conn,
                "UPDATE watches AS w SET stock_armed = 1 WHERE w.product_id = ?pid \
                 AND w.condition = ?cond AND w.back_in_stock = 1 AND w.stock_armed = 0",
                id,
                product,
                cond,
                old_price,
                new_price,
                now,
                today,
                cut,
            )
            .await?;
        }
        sqlx::query("UPDATE outbox SET processed_at = ?1 WHERE id = ?2")
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        stats.events += 1;
    }
    Ok(stats)
}

/// Runs one evaluation statement with named parameters (`?ev`, `?pid`,
/// `?cond`, `?old`, `?price`, `?now`, `?today`, `?cut`, `?cap`) mapped to
/// numbered ones.
#[allow(clippy::too_many_arguments)]
async fn run(
    conn: &mut SqliteConnection,
    sql: &str,
    ev: i64,
    pid: i64,
    cond: i64,
    old: Option<i64>,
    price: Option<i64>,
    now: i64,
    today: i64,
    cut: i64,
) -> StoreResult<u64> {
    let sql = sql
        .replace("?ev", "?1")
        .replace("?pid", "?2")
        .replace("?cond", "?3")
        .replace("?old", "?4")
        .replace("?price", "?5")
        .replace("?now", "?6")
        .replace("?today", "?7")
        .replace("?cut", "?8")
        .replace("?cap", "?9");
    let res = sqlx::query(&sql)
        .bind(ev)
        .bind(pid)
        .bind(cond)
        .bind(old)
        .bind(price)
        .bind(now)
        .bind(today)
        .bind(cut)
        .bind(DAILY_CAP)
        .execute(&mut *conn)
        .await?;
    Ok(res.rows_affected())
}

/// Adds a `correction` alert, on the same channels, for every alert that
/// fired at `refuted_price_minor` on the series since `since` (and has no
/// correction yet). Returns the new alerts' ids.
pub async fn correct_published_price(
    conn: &mut SqliteConnection,
    product: ProductId,
    condition: Condition,
    refuted_price_minor: i64,
    corrected_price_minor: Option<i64>,
    since: i64,
    now: i64,
) -> StoreResult<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT OR IGNORE INTO alerts (watch_id, key_id, event_id, kind, product_id, condition, \
           old_price_minor, new_price_minor, created_at, email, email_state, email_next_at, \
           webhook_url, webhook_secret, webhook_state, webhook_next_at) \
         SELECT a.watch_id, a.key_id, a.event_id, ?1, a.product_id, a.condition, \
           a.new_price_minor, ?2, ?3, a.email, CASE WHEN a.email IS NOT NULL THEN 1 ELSE 0 END, ?3, \
           a.webhook_url, a.webhook_secret, CASE WHEN a.webhook_url IS NOT NULL THEN 1 ELSE 0 END, ?3 \
         FROM alerts a WHERE a.product_id = ?4 AND a.condition = ?5 AND a.new_price_minor = ?6 \
           AND a.kind <> ?1 AND a.created_at >= ?7 RETURNING id",
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

fn alert_from_row(row: &SqliteRow) -> StoreResult<AlertRecord> {
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
    conn: &mut SqliteConnection,
    key_id: KeyId,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<AlertRecord>> {
    let sql = format!(
        "{ALERT_SELECT} JOIN watches w ON w.id = a.watch_id WHERE a.key_id = ?1 \
         AND w.ch_extension = 1 AND a.id > ?2 ORDER BY a.id LIMIT ?3"
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
    conn: &mut SqliteConnection,
    channel: DeliveryChannel,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<AlertRecord>> {
    let (state, next) = match channel {
        DeliveryChannel::Email => ("a.email_state", "a.email_next_at"),
        DeliveryChannel::Webhook => ("a.webhook_state", "a.webhook_next_at"),
    };
    let sql =
        format!("{ALERT_SELECT} WHERE {state} = 1 AND {next} <= ?1 ORDER BY {next}, a.id LIMIT ?2");
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(alert_from_row).collect()
}

/// Stores a delivery attempt's result for some alerts.
pub async fn record_delivery(
    conn: &mut SqliteConnection,
    ids: &[i64],
    channel: DeliveryChannel,
    state: DeliveryState,
    attempts: i64,
    next_at: Option<i64>,
) -> StoreResult<()> {
    let sql = match channel {
        DeliveryChannel::Email => {
            "UPDATE alerts SET email_state = ?1, email_attempts = ?2, email_next_at = ?3 WHERE id = ?4"
        }
        DeliveryChannel::Webhook => {
            "UPDATE alerts SET webhook_state = ?1, webhook_attempts = ?2, webhook_next_at = ?3 \
             WHERE id = ?4"
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
    conn: &mut SqliteConnection,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<PendingContact>> {
    let rows = sqlx::query(
        "SELECT key_id, email, created_at, confirm_attempts FROM contacts \
         WHERE confirmation_sent = 0 AND confirmed_at IS NULL \
         AND (confirm_next_at IS NULL OR confirm_next_at <= ?1) \
         ORDER BY confirm_next_at, key_id LIMIT ?2",
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
    conn: &mut SqliteConnection,
    key_id: KeyId,
    email: &str,
    attempts: i64,
    next_at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE contacts SET confirm_attempts = ?1, confirm_next_at = ?2 \
         WHERE key_id = ?3 AND email = ?4",
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
    conn: &mut SqliteConnection,
    key_id: KeyId,
    email: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE contacts SET confirmation_sent = 1 WHERE key_id = ?1 AND email = ?2")
        .bind(key_id)
        .bind(email)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The `created_at` of a contact (part of its derived tokens).
pub async fn contact_created_at(
    conn: &mut SqliteConnection,
    key_id: KeyId,
    email: &str,
) -> StoreResult<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT created_at FROM contacts WHERE key_id = ?1 AND email = ?2")
            .bind(key_id)
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Confirms the contact whose confirmation token hashes to `hash`.
pub async fn confirm_contact(
    conn: &mut SqliteConnection,
    hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let res = sqlx::query(
        "UPDATE contacts SET confirmed_at = coalesce(confirmed_at, ?1), unsubscribed_at = NULL \
         WHERE confirm_hash = ?2",
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
    conn: &mut SqliteConnection,
    hash: &str,
    now: i64,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "UPDATE contacts SET unsubscribed_at = coalesce(unsubscribed_at, ?1) \
         WHERE unsubscribe_hash = ?2 RETURNING key_id, email",
    )
    .bind(now)
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let key_id: i64 = row.try_get(0)?;
    let email: String = row.try_get(1)?;
    sqlx::query(
        "UPDATE alerts SET email_state = 0 WHERE key_id = ?1 AND email = ?2 AND email_state = 1",
    )
    .bind(key_id)
    .bind(email)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
