//! Public reads: config, health, metrics, product summary, history, search.

use super::error::ApiError;
use super::AppState;
use crate::store::history::{self, Granularity, Stats};
use crate::store::verify::CorrectionRow;
use crate::store::{HistoryRead, OfferSummary, ProductInfo, ProductSummary};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{OBSERVATION_MAX_AGE_MS, REQUEST_CLOCK_SKEW_MS};
use wasm_core::types::Condition;

/// Query parameters as a map; a malformed query string is a 400 with our body.
pub type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub(crate) fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(m)| m)
        .map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))
}

/// Checks `{marketplace}/{asin}` path parameters.
pub(crate) fn product_path(marketplace: &str, asin: &str) -> Result<Marketplace, ApiError> {
    let m = Marketplace::from_domain(marketplace).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_marketplace",
            "not a marketplace domain of PROTOCOL.md",
        )
    })?;
    if m.domain() != marketplace {
        return Err(ApiError::bad_request(
            "invalid_marketplace",
            format!("use the canonical domain {}", m.domain()),
        ));
    }
    let asin_ok = asin.len() == 10
        && asin
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !asin_ok {
        return Err(ApiError::bad_request(
            "invalid_asin",
            "an ASIN is [0-9A-Z]{10}",
        ));
    }
    Ok(m)
}

/// `GET /healthz`.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(json!({"status": "ok", "database": state.store.backend()})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            ApiError::unavailable("the database is unreachable").into_response()
        }
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            // Alert delivery counters (deliveries, retries, dead letters
            // per channel) when the notifier's channels are set up.
            let mut text = state.metrics.render();
            // Queue depth is read from the store (shared by every process
            // on one PostgreSQL database); a failure only leaves it out.
            let depth = state.store.queue_depth().await.ok();
            text.push_str(&state.metrics.render_verification(depth.as_ref()));
            if let Some(ch) = &state.channels {
                text.push_str(&ch.metrics().render_prometheus());
            }
            text
        },
    )
        .into_response()
}

/// `GET /v1/config`.
pub async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "pow_difficulty": state.config.pow_difficulty,
        "max_batch": state.config.max_batch,
        "max_body_bytes": state.config.max_body_bytes,
        "observation_max_age_ms": OBSERVATION_MAX_AGE_MS,
        "clock_skew_ms": REQUEST_CLOCK_SKEW_MS,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn price_at(p: Option<(i64, i64)>) -> Value {
    match p {
        Some((price, at)) => json!({"price_minor": price, "at": at}),
        None => Value::Null,
    }
}

fn offer_json(o: &OfferSummary) -> Value {
    json!({
        "price_minor": o.offer.price_minor,
        "availability": o.offer.availability.as_str(),
        "seller": o.offer.seller.as_str(),
        "observed_at": o.offer.observed_at,
        "status": o.offer.status.as_str(),
        "reporters": o.reporters,
        "last_verified_at": o.offer.last_verified_at,
        "lowest": price_at(o.lowest),
        "highest": price_at(o.highest),
    })
}

/// The API.md product summary body.
pub fn summary_json(s: &ProductSummary) -> Value {
    let mut offers = Map::new();
    for o in &s.offers {
        offers.insert(o.condition.as_str().to_string(), offer_json(o));
    }
    json!({
        "asin": s.asin,
        "marketplace": s.marketplace,
        "title": s.title,
        "currency": s.currency,
        "watchers": s.watchers,
        "offers": offers,
    })
}

/// `GET /v1/products/{marketplace}/{asin}`.
pub async fn summary(
    State(state): State<AppState>,
    Path((marketplace, asin)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    product_path(&marketplace, &asin)?;
    let s = state
        .store
        .product_summary(&marketplace, &asin)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("unknown_product", "nothing is known about this product")
        })?;
    Ok(Json(summary_json(&s)))
}

/// A parsed history request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Which offer.
    pub condition: Condition,
    /// Range as spelled (`3m`).
    pub range: &'static str,
    /// Range length in ms (`None` = all).
    pub range_ms: Option<i64>,
    /// Requested granularity (`None` = auto).
    pub granularity: Option<Granularity>,
}

/// Parses `condition`, `range`, `granularity` with API.md's defaults.
pub fn history_query(p: &HashMap<String, String>) -> Result<HistoryQuery, ApiError> {
    let condition = match p.get("condition") {
        None => Condition::New,
        Some(c) => Condition::parse(c).ok_or_else(|| {
            ApiError::bad_request("invalid_query", "condition is new, used or refurbished")
        })?,
    };
    const RANGES: [&str; 6] = ["1d", "1w", "1m", "3m", "1y", "all"];
    let range_s = p.get("range").map(String::as_str).unwrap_or("3m");
    let range = RANGES
        .iter()
        .copied()
        .find(|r| *r == range_s)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_query", "range is 1d, 1w, 1m, 3m, 1y or all")
        })?;
    let range_ms = history::parse_range(range).map_err(|_| {
        ApiError::bad_request("invalid_query", "range is 1d, 1w, 1m, 3m, 1y or all")
    })?;
    let granularity =
        history::parse_granularity(p.get("granularity").map(String::as_str).unwrap_or("auto"))
            .map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    "granularity is auto, raw, hour, day or week",
                )
            })?;
    Ok(HistoryQuery {
        condition,
        range,
        range_ms,
        granularity,
    })
}

/// History of one product: points, stats and the granularity used.
pub struct HistoryData {
    /// The product.
    pub info: ProductInfo,
    /// Its offers (only when asked for: the HTML page shows them).
    pub summary: Option<ProductSummary>,
    /// Granularity actually used.
    pub granularity: Granularity,
    /// Points.
    pub points: Vec<history::Point>,
    /// Stats.
    pub stats: Stats,
    /// Range start (ms).
    pub from: i64,
    /// Range end (ms): now.
    pub to: i64,
    /// The series' corrections in the range, oldest first.
    pub corrections: Vec<CorrectionRow>,
}

/// Loads and computes a product's history (shared by the API and the page).
pub async fn load_history(
    state: &AppState,
    marketplace: &str,
    asin: &str,
    q: &HistoryQuery,
    with_summary: bool,
) -> Result<Option<HistoryData>, ApiError> {
    let to = state.now();
    let from = q.range_ms.map(|r| to.saturating_sub(r)).unwrap_or(0);
    // One store call (one round trip on PostgreSQL) for the product, its
    // runs and its corrections.
    let Some(HistoryRead {
        info,
        runs,
        corrections,
    }) = state
        .store
        .product_history_with_corrections(marketplace, asin, q.condition, from, to)
        .await?
    else {
        return Ok(None);
    };
    let summary = if with_summary {
        state.store.product_summary(marketplace, asin).await?
    } else {
        None
    };
    let granularity = history::choose_granularity(q.granularity, &runs, from, to);
    let points = history::points(&runs, from, to, granularity);
    let stats = history::stats(&runs, from, to);
    Ok(Some(HistoryData {
        info,
        summary,
        granularity,
        points,
        stats,
        from,
        to,
        corrections,
    }))
}

/// `GET /v1/products/{marketplace}/{asin}/history`.
pub async fn history(
    State(state): State<AppState>,
    Path((marketplace, asin)): Path<(String, String)>,
    query: Params,
) -> Result<Response, ApiError> {
    product_path(&marketplace, &asin)?;
    let q = history_query(&params(query)?)?;
    let key = (
        q.condition.as_str(),
        q.range,
        q.granularity.map(Granularity::as_str).unwrap_or("auto"),
    );
    let body = state
        .history_cache
        .get_or_compute(&marketplace, &asin, key, state.now(), || {
            history_body(&state, &marketplace, &asin, &q)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The JSON body of a history answer (what [`history`] caches).
async fn history_body(
    state: &AppState,
    marketplace: &str,
    asin: &str,
    q: &HistoryQuery,
) -> Result<Bytes, ApiError> {
    let h = load_history(state, marketplace, asin, q, false)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("unknown_product", "nothing is known about this product")
        })?;
    let s = h.stats;
    // Typed serialisation: a year of day points is ~370 objects, cheaper
    // without building a `serde_json::Value` tree.
    let body = HistoryBody {
        asin,
        marketplace,
        condition: q.condition.as_str(),
        currency: &h.info.currency,
        range: q.range,
        granularity: h.granularity.as_str(),
        points: h
            .points
            .iter()
            .map(|p| PointBody {
                t: p.t,
                open: p.open,
                high: p.high,
                low: p.low,
                close: p.close,
                n: p.n,
            })
            .collect(),
        stats: StatsBody {
            current: s.current,
            lowest: s.lowest,
            lowest_at: s.lowest_at,
            highest: s.highest,
            highest_at: s.highest_at,
            average: s.average,
            drops: s.drops,
            increases: s.increases,
        },
        corrections: h
            .corrections
            .iter()
            .map(|c| CorrectionBody {
                at: c.at,
                reported_price_minor: c.reported_price_minor,
                verified_price_minor: c.verified_price_minor,
            })
            .collect(),
    };
    // Sized up front (a point is ~75 bytes of JSON): growing the buffer
    // by doubling copied it ~12 times per year of points.
    let mut out = Vec::with_capacity(512 + 80 * (body.points.len() + body.corrections.len()));
    serde_json::to_writer(&mut out, &body).map_err(|_| ApiError::internal())?;
    Ok(Bytes::from(out))
}

#[derive(Serialize)]
struct PointBody {
    t: i64,
    open: i64,
    high: i64,
    low: i64,
    close: i64,
    n: i64,
}

#[derive(Serialize)]
struct StatsBody {
    current: Option<i64>,
    lowest: Option<i64>,
    lowest_at: Option<i64>,
    highest: Option<i64>,
    highest_at: Option<i64>,
    average: Option<i64>,
    drops: i64,
    increases: i64,
}

#[derive(Serialize)]
struct HistoryBody<'a> {
    asin: &'a str,
    marketplace: &'a str,
    condition: &'static str,
    currency: &'a str,
    range: &'static str,
    granularity: &'static str,
    points: Vec<PointBody>,
    stats: StatsBody,
    corrections: Vec<CorrectionBody>,
}

#[derive(Serialize)]
struct CorrectionBody {
    at: i64,
    reported_price_minor: Option<i64>,
    verified_price_minor: Option<i64>,
}

fn int_param(
    p: &HashMap<String, String>,
    name: &str,
    default: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match p.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=max).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name} is an integer from 0 to {max}"),
                )
            }),
    }
}

/// `GET /v1/products/search?q=&marketplace=&limit=&offset=`.
pub async fn search(State(state): State<AppState>, query: Params) -> Result<Json<Value>, ApiError> {
    let p = params(query)?;
    let q = p
        .get("q")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid_query", "q is required"))?;
    if q.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "q is at most 200 characters",
        ));
    }
    let marketplace = match p
        .get("marketplace")
        .map(String::as_str)
        .filter(|m| !m.is_empty())
    {
        None => None,
        Some(m) => Some(
            Marketplace::from_domain(m)
                .filter(|mk| mk.domain() == m)
                .map(|mk| mk.domain())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_marketplace",
                        "not a marketplace domain of PROTOCOL.md",
                    )
                })?,
        ),
    };
    let limit = int_param(&p, "limit", 20, 100)?.max(1);
    let offset = int_param(&p, "offset", 0, 10_000)?;
    let (refs, total) = state.store.search(q, marketplace, limit, offset).await?;
    let mut products = Vec::with_capacity(refs.len());
    for r in refs {
        if let Some(s) = state.store.product_summary(&r.marketplace, &r.asin).await? {
            products.push(summary_json(&s));
        }
    }
    Ok(Json(json!({"products": products, "total": total})))
}
