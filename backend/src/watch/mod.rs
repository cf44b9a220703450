//! Watches and alerts (issue 5): the domain types and rules, the SQLite
//! statements ([`sqlite`]), and the notifier worker ([`worker`]).
//!
//! # The rules (judgement calls written down)
//!
//! * A watch is on one series `(product, condition)` of a product the
//!   backend already knows (an unknown product is `404 unknown_product`:
//!   its currency is not known yet, so a target price would be ambiguous).
//! * **Thresholds.** `target_price_minor` fires when the published price is
//!   `<= target`. `drop_percent` (1..=99) fires when the price is `<=
//!   floor(baseline * (100 - p) / 100)`, where the baseline is the
//!   published price when the watch was made (stored; `drop_percent`
//!   without a published price is 422). With both, the effective threshold
//!   is the larger of the two (either condition fires); the alert's kind is
//!   `target_reached` when the target is met, else `price_drop`. The
//!   effective threshold is stored in the row, so evaluation is a range
//!   query on the index `(product, condition, armed, threshold)`.
//! * **Back in stock** is an explicit `back_in_stock: true` field of the
//!   watch (an addition to API.md's request shape); a watch without any
//!   threshold on a product that is currently not in stock gets it
//!   implicitly. It fires when the published availability changes from
//!   anything else to `in_stock`, and re-arms when it leaves `in_stock`.
//! * **Arming.** A new watch is armed unless the current price already
//!   meets its threshold (a price the user can see now is no news; it fires
//!   after the price has gone back above the threshold and fallen again).
//!   A fired watch is disarmed; it re-arms when a published price is above
//!   its threshold again.
//! * **Cooldown and daily cap.** A watch fires at most once per
//!   [`COOLDOWN_MS`] and at most [`DAILY_CAP`] times per UTC day. A change
//!   that meets the threshold during the cooldown or over the cap fires
//!   nothing and leaves the watch armed (so the next change after the
//!   cooldown can fire).
//! * **Only changes evaluate.** Ingest writes an outbox event in the same
//!   transaction whenever a series' published price or availability
//!   changes; the worker processes events in order, in one transaction per
//!   event (alerts inserted, watches disarmed/re-armed, the event marked),
//!   so a crash anywhere replays the event at most and the unique
//!   `(watch, event, kind)` makes that harmless.
//! * **Corrections**: [`crate::store::Storage::correct_published_price`]
//!   finds the alerts a refuted price fired and adds a `correction` alert
//!   for each on the same channels.

pub mod postgres;
pub mod sqlite;
pub mod worker;

use crate::notify::AlertKind;
use crate::store::{code, KeyId, ProductId, StoreError, StoreResult};
use wasm_core::types::Condition;

/// Least time between two alerts of one watch.
pub const COOLDOWN_MS: i64 = 3_600_000;
/// Most alerts per watch per UTC day.
pub const DAILY_CAP: i64 = 3;
/// Largest accepted price threshold (minor units).
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;
/// Most watches per key.
pub const MAX_WATCHES_PER_KEY: i64 = 1_000;

/// UTC day number of a Unix-ms time.
pub fn utc_day(t: i64) -> i64 {
    t.div_euclid(86_400_000)
}

/// Delivery state of one channel of an alert (stored as its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// The channel is not used for this alert.
    None = 0,
    /// Waiting for (another) attempt.
    Pending = 1,
    /// Accepted by the receiver.
    Delivered = 2,
    /// Given up (dead letter).
    Dead = 3,
}

impl DeliveryState {
    /// From the stored code.
    pub fn from_code(v: i64) -> Self {
        match v {
            1 => DeliveryState::Pending,
            2 => DeliveryState::Delivered,
            3 => DeliveryState::Dead,
            _ => DeliveryState::None,
        }
    }
    /// Wire spelling (the `delivery` field of the alerts API).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::None => "none",
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead_letter",
        }
    }
}

/// Stored code of an alert kind.
pub fn kind_code(k: AlertKind) -> i64 {
    match k {
        AlertKind::TargetReached => 0,
        AlertKind::PriceDrop => 1,
        AlertKind::BackInStock => 2,
        AlertKind::Correction => 3,
    }
}

/// Alert kind from its stored code.
pub fn kind_from(v: i64) -> AlertKind {
    match v {
        0 => AlertKind::TargetReached,
        1 => AlertKind::PriceDrop,
        2 => AlertKind::BackInStock,
        _ => AlertKind::Correction,
    }
}

/// What a client asks for (validated by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSpec {
    /// Fire at or below this price.
    pub target_price_minor: Option<i64>,
    /// Fire on a drop of at least this many percent (1..=99).
    pub drop_percent: Option<i64>,
    /// Fire when the product comes back in stock.
    pub back_in_stock: bool,
    /// Show alerts in the extension feed.
    pub extension: bool,
    /// Email address (used only once confirmed).
    pub email: Option<String>,
    /// Webhook URL (checked by the HTTP layer).
    pub webhook: Option<String>,
}

/// A new or replaced watch as the store receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWatch {
    /// Owner.
    pub key_id: KeyId,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Which offer.
    pub condition: Condition,
    /// Thresholds and channels.
    pub spec: WatchSpec,
    /// Webhook signing secret (generated by the caller; kept on replace
    /// when the URL is unchanged).
    pub webhook_secret: Option<String>,
    /// Confirmation token hash and unsubscribe token hash for a new email
    /// address (ignored when the address is already known for this key).
    pub contact_hashes: Option<(String, String)>,
}

/// A stored watch with the product's current published price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Row id.
    pub id: i64,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Which offer.
    pub condition: Condition,
    /// Thresholds and channels as given.
    pub spec: WatchSpec,
    /// Published price when the watch was made (the drop baseline).
    pub baseline_price_minor: Option<i64>,
    /// Effective price threshold (see the module docs).
    pub threshold: Option<i64>,
    /// Price threshold armed.
    pub armed: bool,
    /// Whether the email address is confirmed.
    pub email_confirmed: bool,
    /// The webhook signing secret.
    pub webhook_secret: Option<String>,
    /// Created (ms).
    pub created_at: i64,
    /// Current published price of the series.
    pub current_price_minor: Option<i64>,
    /// Current published availability (wire spelling), if any.
    pub current_availability: Option<&'static str>,
    /// Product currency.
    pub currency: String,
}

/// The effective threshold (see the module docs); `None` when the watch
/// has no price threshold.
pub fn effective_threshold(
    target: Option<i64>,
    drop_percent: Option<i64>,
    baseline: Option<i64>,
) -> Option<i64> {
    let drop = match (drop_percent, baseline) {
        (Some(p), Some(b)) => Some(b.saturating_mul(100 - p).div_euclid(100)),
        _ => None,
    };
    match (target, drop) {
        (Some(t), Some(d)) => Some(t.max(d)),
        (t, d) => t.or(d),
    }
}

/// One alert of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// Row id (the feed cursor).
    pub id: i64,
    /// The watch (may have been deleted since).
    pub watch_id: i64,
    /// The key the alert is for.
    pub key_id: KeyId,
    /// Product id.
    pub product_id: ProductId,
    /// Marketplace domain.
    pub marketplace: String,
    /// ASIN.
    pub asin: String,
    /// Product title.
    pub title: String,
    /// Which offer.
    pub condition: Condition,
    /// Why it fired.
    pub kind: AlertKind,
    /// Price before (for a correction: the refuted price).
    pub old_price_minor: Option<i64>,
    /// Price now (for a correction: the corrected price).
    pub new_price_minor: Option<i64>,
    /// Product currency.
    pub currency: String,
    /// Created (ms).
    pub created_at: i64,
    /// Email address, when the alert goes by email.
    pub email: Option<String>,
    /// Email delivery state.
    pub email_state: DeliveryState,
    /// Email attempts made.
    pub email_attempts: i64,
    /// Webhook URL, when the alert goes by webhook.
    pub webhook_url: Option<String>,
    /// Webhook signing secret.
    pub webhook_secret: Option<String>,
    /// Webhook delivery state.
    pub webhook_state: DeliveryState,
    /// Webhook attempts made.
    pub webhook_attempts: i64,
}

/// What processing outbox events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EvalStats {
    /// Events processed.
    pub events: u64,
    /// Alerts created.
    pub alerts: u64,
    /// Watches re-armed.
    pub rearmed: u64,
}

/// A contact address waiting for its confirmation mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingContact {
    /// Owner.
    pub key_id: KeyId,
    /// Address.
    pub email: String,
    /// Created (ms); part of the derived token.
    pub created_at: i64,
    /// Confirmation attempts made so far (failed ones; the retry
    /// policy's attempt number is this plus one).
    pub attempts: i64,
}

/// Which delivery channel (for [`crate::store::Storage::record_delivery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryChannel {
    /// SMTP.
    Email,
    /// Webhook.
    Webhook,
}

/// Derived tokens: the worker must put the unsubscribe (and confirmation)
/// link into mails, and storage keeps only hashes, so the raw tokens are
/// an HMAC of the install secret over the contact (judgement call: no raw
/// token is ever stored, and a database leak without the secret yields no
/// working link).
pub fn contact_token(
    secret: &[u8; 32],
    purpose: &str,
    key_id: KeyId,
    email: &str,
    created_at: i64,
) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(&key_id.to_be_bytes());
    mac.update(&created_at.to_be_bytes());
    mac.update(email.as_bytes());
    let out = mac.finalize().into_bytes();
    wasm_core::protocol::b64u_encode(&out)
}

/// Maps a row of the watch query (the same column list on both databases)
/// to a [`Watch`]. Generic over the sqlx row type so SQLite and PostgreSQL
/// share one mapping; only their SQL differs.
pub(crate) fn watch_from_row<'r, R>(row: &'r R) -> StoreResult<Watch>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let cond: i64 = row.try_get("condition")?;
    let avail: Option<i64> = row.try_get("cur_avail")?;
    let email_ok: Option<bool> = row.try_get("email_ok")?;
    Ok(Watch {
        id: row.try_get("id")?,
        marketplace: row.try_get("marketplace")?,
        asin: row.try_get("asin")?,
        condition: code::condition_from(cond)
            .ok_or_else(|| StoreError::Database(format!("bad condition code {cond}")))?,
        spec: WatchSpec {
            target_price_minor: row.try_get("target_price_minor")?,
            drop_percent: row.try_get("drop_percent")?,
            back_in_stock: row.try_get::<i64, _>("back_in_stock")? != 0,
            extension: row.try_get::<i64, _>("ch_extension")? != 0,
            email: row.try_get("email")?,
            webhook: row.try_get("webhook_url")?,
        },
        baseline_price_minor: row.try_get("baseline_price_minor")?,
        threshold: row.try_get("threshold")?,
        armed: row.try_get::<i64, _>("armed")? != 0,
        email_confirmed: email_ok.unwrap_or(false),
        webhook_secret: row.try_get("webhook_secret")?,
        created_at: row.try_get("created_at")?,
        current_price_minor: row.try_get("cur_price")?,
        current_availability: avail.map(|a| code::availability_from(a).as_str()),
        currency: row.try_get("currency")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(effective_threshold(Some(1000), None, None), Some(1000));
        assert_eq!(effective_threshold(None, Some(10), Some(4999)), Some(4499));
        assert_eq!(
            effective_threshold(Some(4000), Some(10), Some(4999)),
            Some(4499)
        );
        assert_eq!(
            effective_threshold(Some(4600), Some(10), Some(4999)),
            Some(4600)
        );
        assert_eq!(effective_threshold(None, Some(10), None), None);
        assert_eq!(effective_threshold(None, None, Some(5)), None);
    }

    #[test]
    fn days_and_codes() {
        assert_eq!(utc_day(86_400_000 * 3 + 5), 3);
        assert_eq!(utc_day(-1), -1);
        for k in [
            AlertKind::TargetReached,
            AlertKind::PriceDrop,
            AlertKind::BackInStock,
            AlertKind::Correction,
        ] {
            assert_eq!(kind_from(kind_code(k)), k);
        }
        assert_eq!(DeliveryState::from_code(3), DeliveryState::Dead);
    }

    #[test]
    fn tokens_are_stable_and_distinct() {
        let s = [7u8; 32];
        let a = contact_token(&s, "unsubscribe", 1, "a@b.c", 5);
        assert_eq!(a, contact_token(&s, "unsubscribe", 1, "a@b.c", 5));
        assert_ne!(a, contact_token(&s, "confirm", 1, "a@b.c", 5));
        assert_ne!(a, contact_token(&s, "unsubscribe", 2, "a@b.c", 5));
        assert_eq!(a.len(), 43);
    }
}
