//! `GET /v1/alerts?after={id}&limit={n}` (API.md), signed: the key's
//! alerts oldest first.
//!
//! Addition to API.md's alert shape (documented): `delivery`, the state of
//! each channel the alert goes to: `{"email": s, "webhook": s}` with `s`
//! one of `none`, `pending`, `delivered`, `dead_letter` (a dead letter is
//! final: `/metrics` counts it too).
//!
//! The feed honours the watch's `channels.extension` flag: alerts of a
//! watch saved with `"extension": false` (an email- or webhook-only watch)
//! are not in it, since the feed is the extension's channel. Judgement
//! calls: the flag is read from the watch as it is now (turning it on later
//! shows that watch's earlier alerts too; a watch's alerts go when it is
//! deleted), and the delivery state of such a watch's alerts is then seen
//! only through `/metrics` (dead letters) and the mail/webhook itself.

use super::error::ApiError;
use super::signed::verify_signed;
use super::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Most alerts per page (and the default).
const PAGE: i64 = 100;

fn query_i64(query: &str, name: &str) -> Result<Option<i64>, ApiError> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            return v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request("invalid_query", format!("{name} must be an integer"))
            });
        }
    }
    Ok(None)
}

/// `GET /v1/alerts`.
pub async fn feed(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let query = req.uri().query().unwrap_or("").to_string();
    let (rec, _) = verify_signed(&state, req).await?;
    let after = query_i64(&query, "after")?.unwrap_or(0).max(0);
    let limit = query_i64(&query, "limit")?.unwrap_or(PAGE).clamp(1, PAGE);
    let alerts = state.store.alerts_after(rec.id, after, limit).await?;
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "watch_id": a.watch_id,
                "asin": a.asin,
                "marketplace": a.marketplace,
                "condition": a.condition.as_str(),
                "kind": a.kind.as_str(),
                "old_price_minor": a.old_price_minor,
                "new_price_minor": a.new_price_minor,
                "currency": a.currency,
                "created_at": a.created_at,
                "delivery": {
                    "email": a.email_state.as_str(),
                    "webhook": a.webhook_state.as_str(),
                },
            })
        })
        .collect();
    Ok(Json(json!({ "alerts": list })).into_response())
}
