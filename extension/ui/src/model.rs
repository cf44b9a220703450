//! Wire types of the data the UI shows: the service worker's answers
//! (`{ok: true, data}` / `{ok: false, error: {code, message}}`) around the
//! API.md product summary, history and watches. Unknown fields are
//! ignored; every field the backend may leave out or send as `null` is an
//! `Option` or has a default, so a newer backend cannot break the overlay.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An error answer of the bridge (`error` of `{ok: false, error}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BridgeError {
    /// `not_found`, `unreachable`, `no_consent`, `bad_request`,
    /// `http_<status>`, or `bridge` when the answer itself was unusable.
    pub code: String,
    /// Human text (the backend's message when it sent one).
    #[serde(default)]
    pub message: String,
}

impl BridgeError {
    /// An error made on this side (no usable answer).
    pub fn local(message: impl Into<String>) -> Self {
        BridgeError {
            code: "bridge".into(),
            message: message.into(),
        }
    }
}

/// The envelope of every bridge answer.
#[derive(Debug, Clone, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Decodes a bridge answer (JSON text) into `T`.
pub fn decode<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, BridgeError> {
    let env: Envelope = serde_json::from_str(json)
        .map_err(|e| BridgeError::local(format!("unreadable answer: {e}")))?;
    if env.ok {
        return serde_json::from_value(env.data)
            .map_err(|e| BridgeError::local(format!("unexpected data: {e}")));
    }
    Err(match env.error {
        Some(serde_json::Value::String(message)) => BridgeError {
            code: "error".into(),
            message,
        },
        Some(v) => serde_json::from_value(v)
            .unwrap_or_else(|_| BridgeError::local("an error without a code")),
        None => BridgeError::local("an error without details"),
    })
}

/// A price and when it was seen (`lowest`, `highest` of an offer).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PriceAt {
    /// Minor units.
    pub price_minor: i64,
    /// Unix ms.
    pub at: i64,
}

/// One published offer of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Offer {
    /// Minor units; `None` when no price is offered.
    #[serde(default)]
    pub price_minor: Option<i64>,
    /// `in_stock`, `out_of_stock`, ...
    #[serde(default)]
    pub availability: String,
    /// When the published price was read (ms).
    #[serde(default)]
    pub observed_at: Option<i64>,
    /// `verified`, `confirmed`, `provisional`, `corrected`.
    #[serde(default)]
    pub status: String,
    /// Independent reporters behind the price.
    #[serde(default)]
    pub reporters: i64,
    /// The last verification crawl (ms).
    #[serde(default)]
    pub last_verified_at: Option<i64>,
    /// All-time lowest.
    #[serde(default)]
    pub lowest: Option<PriceAt>,
    /// All-time highest.
    #[serde(default)]
    pub highest: Option<PriceAt>,
}

/// API.md product summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Summary {
    /// ASIN.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// Title (may be empty).
    #[serde(default)]
    pub title: Option<String>,
    /// ISO 4217.
    #[serde(default)]
    pub currency: String,
    /// Offers by condition (`new`, `used`, ...).
    #[serde(default)]
    pub offers: BTreeMap<String, Offer>,
}

/// One chart point of the history (API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Point {
    /// Bucket start (ms).
    pub t: i64,
    /// Last price in the bucket (minor units): the step's level.
    pub close: i64,
    /// Lowest in the bucket.
    #[serde(default)]
    pub low: i64,
    /// Highest in the bucket.
    #[serde(default)]
    pub high: i64,
}

/// History stats (API.md); every price is `None` on an empty range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Stats {
    /// Latest price.
    #[serde(default)]
    pub current: Option<i64>,
    /// Lowest in range.
    #[serde(default)]
    pub lowest: Option<i64>,
    /// When (ms).
    #[serde(default)]
    pub lowest_at: Option<i64>,
    /// Highest in range.
    #[serde(default)]
    pub highest: Option<i64>,
    /// When (ms).
    #[serde(default)]
    pub highest_at: Option<i64>,
    /// Time-weighted average.
    #[serde(default)]
    pub average: Option<i64>,
}

/// A report that verification proved false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Correction {
    /// When (ms).
    pub at: i64,
    /// What was reported.
    #[serde(default)]
    pub reported_price_minor: Option<i64>,
    /// What the crawl found.
    #[serde(default)]
    pub verified_price_minor: Option<i64>,
}

/// API.md history answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct History {
    /// The range asked for.
    #[serde(default)]
    pub range: String,
    /// ISO 4217.
    #[serde(default)]
    pub currency: String,
    /// Chart points, oldest first.
    #[serde(default)]
    pub points: Vec<Point>,
    /// Stats over the range.
    #[serde(default)]
    pub stats: Stats,
    /// Corrections in the range.
    #[serde(default)]
    pub corrections: Vec<Correction>,
}

/// A watch's channels (request and answer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
pub struct Channels {
    /// Extension notification.
    #[serde(default)]
    pub extension: bool,
    /// Email address (confirmed by a link before use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// A watch as the backend lists it (the fields the overlay and the popup use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Watch {
    /// Row id.
    pub id: i64,
    /// ASIN.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// Condition.
    #[serde(default)]
    pub condition: String,
    /// Target price (minor units).
    #[serde(default)]
    pub target_price_minor: Option<i64>,
    /// Drop percentage.
    #[serde(default)]
    pub drop_percent: Option<i64>,
    /// Channels.
    #[serde(default)]
    pub channels: Channels,
    /// Alert when it comes back in stock.
    #[serde(default)]
    pub back_in_stock: Option<bool>,
    /// The product's published price now (the popup shows it).
    #[serde(default)]
    pub current_price_minor: Option<i64>,
    /// `in_stock`, `out_of_stock`, ...
    #[serde(default)]
    pub availability: Option<String>,
    /// False after it fired, until the price goes back above the target.
    #[serde(default = "armed_default")]
    pub armed: bool,
}

fn armed_default() -> bool {
    true
}

/// `{watches}` of the `watches` message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Watches {
    /// The key's watches.
    #[serde(default)]
    pub watches: Vec<Watch>,
}

/// The body of `watch_create` / `watch_update` (API.md `POST /v1/watches`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchRequest {
    /// ASIN.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// Condition.
    pub condition: String,
    /// Target price, or
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_price_minor: Option<i64>,
    /// a drop percentage (exactly one of the two is set by the form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_percent: Option<i64>,
    /// Channels.
    pub channels: Channels,
}

/// `ui_pref_get` / `ui_pref_set` answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct UiPrefs {
    /// The overlay shows as a badge.
    #[serde(default)]
    pub collapsed: bool,
    /// The backend URL (for the shareable link).
    #[serde(default)]
    pub backend: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_data_and_errors() {
        let ok: Result<UiPrefs, _> = decode(r#"{"ok":true,"data":{"collapsed":true}}"#);
        assert_eq!(ok.map(|p| p.collapsed), Ok(true));
        let err: Result<Summary, _> =
            decode(r#"{"ok":false,"error":{"code":"not_found","message":"nothing"}}"#);
        assert_eq!(err.map_err(|e| e.code), Err("not_found".to_string()));
        let junk: Result<Summary, _> = decode("not json");
        assert_eq!(junk.map_err(|e| e.code), Err("bridge".to_string()));
    }

    #[test]
    fn history_with_nulls_decodes() {
        let h: History = serde_json::from_str(
            r#"{"range":"1m","points":[],"stats":{"current":null,"lowest":null,"lowest_at":null,
                "highest":null,"highest_at":null,"average":null,"drops":0,"increases":0},
                "corrections":[]}"#,
        )
        .expect("history");
        assert_eq!(h.stats, Stats::default());
    }
}
