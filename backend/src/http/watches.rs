//! `POST/GET /v1/watches`, `PUT/DELETE /v1/watches/{id}` (API.md), signed
//! per PROTOCOL.md §3. Another key's watch answers 404 like a missing one
//! (no enumeration).
//!
//! Additions to API.md's request shape (documented judgement calls):
//! `back_in_stock` (bool, optional) asks for back-in-stock alerts; the
//! response carries `webhook_secret` (the HMAC key for the webhook
//! signature; shown on create and whenever the webhook URL changes, since
//! the user needs it to verify) and `email_confirmed`.

use super::error::ApiError;
use super::json::parse;
use super::signed::verify_signed;
use super::AppState;
use crate::notify::token::new_token;
use crate::notify::{ChannelConfig, Channels, RetryPolicy, WebhookConfig};
use crate::store::StoreError;
use crate::watch::worker::{confirm_hash, unsubscribe_hash};
use crate::watch::{NewWatch, Watch, WatchSpec, MAX_PRICE_MINOR, MAX_WATCHES_PER_KEY};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::OnceLock;
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;
use wasm_core::types::Condition;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    asin: String,
    marketplace: String,
    condition: String,
    #[serde(default)]
    target_price_minor: Option<i64>,
    #[serde(default)]
    drop_percent: Option<i64>,
    #[serde(default)]
    back_in_stock: Option<bool>,
    channels: ChannelsBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelsBody {
    #[serde(default)]
    extension: Option<bool>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_field", msg)
}

/// A plain address check: one `@`, a dotted domain, no spaces or controls,
/// at most 254 bytes (the confirmation mail is the real test).
fn valid_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// Checks webhook URLs with the deployment's channels, or with default
/// rules when none are set up.
fn check_webhook(state: &AppState, url: &str) -> Result<(), String> {
    if let Some(ch) = &state.channels {
        return ch.check_webhook_url(url);
    }
    static DEFAULT: OnceLock<Option<Channels>> = OnceLock::new();
    let ch = DEFAULT.get_or_init(|| {
        Channels::new(
            None,
            WebhookConfig::default(),
            ChannelConfig {
                public_url: "http://localhost".into(),
                retry: RetryPolicy::default(),
            },
        )
        .ok()
    });
    match ch {
        Some(c) => c.check_webhook_url(url),
        None => Err("webhooks are not available".into()),
    }
}

/// Validates a body into the store's input (tokens filled in later).
fn validate(state: &AppState, key_id: i64, b: WatchBody) -> Result<NewWatch, ApiError> {
    let asin = Asin::parse(&b.asin).ok_or_else(|| invalid("asin is not an ASIN"))?;
    let market = Marketplace::from_domain(&b.marketplace)
        .ok_or_else(|| invalid("marketplace is not a supported Amazon domain"))?;
    let condition = Condition::parse(&b.condition)
        .ok_or_else(|| invalid("condition is new|used|refurbished"))?;
    if let Some(t) = b.target_price_minor {
        if !(1..=MAX_PRICE_MINOR).contains(&t) {
            return Err(invalid(
                "target_price_minor must be a positive price in minor units",
            ));
        }
    }
    if let Some(p) = b.drop_percent {
        if !(1..=99).contains(&p) {
            return Err(invalid("drop_percent must be 1..=99"));
        }
    }
    let back_in_stock = b.back_in_stock.unwrap_or(false);
    let extension = b.channels.extension.unwrap_or(false);
    if let Some(e) = &b.channels.email {
        if !valid_email(e) {
            return Err(invalid("channels.email is not an email address"));
        }
    }
    if let Some(u) = &b.channels.webhook {
        check_webhook(state, u).map_err(|why| invalid(format!("channels.webhook: {why}")))?;
    }
    if !extension && b.channels.email.is_none() && b.channels.webhook.is_none() {
        return Err(invalid("at least one channel is required"));
    }
    Ok(NewWatch {
        key_id,
        marketplace: market.domain().to_string(),
        asin: asin.as_str().to_string(),
        condition,
        spec: WatchSpec {
            target_price_minor: b.target_price_minor,
            drop_percent: b.drop_percent,
            back_in_stock,
            extension,
            email: b.channels.email.map(|e| e.to_ascii_lowercase()),
            webhook: b.channels.webhook,
        },
        webhook_secret: None,
        contact_hashes: None,
    })
}

fn fill_tokens(state: &AppState, w: &mut NewWatch, now: i64) -> Result<(), ApiError> {
    if w.spec.webhook.is_some() && w.webhook_secret.is_none() {
        w.webhook_secret = Some(new_token().map_err(|_| ApiError::internal())?);
    }
    if let Some(email) = &w.spec.email {
        w.contact_hashes = Some((
            confirm_hash(&state.net_secret, w.key_id, email, now),
            unsubscribe_hash(&state.net_secret, w.key_id, email, now),
        ));
    }
    Ok(())
}

/// JSON of a watch (`with_secret`: include the webhook secret).
pub fn watch_json(w: &Watch, with_secret: bool) -> Value {
    let mut v = json!({
        "id": w.id,
        "asin": w.asin,
        "marketplace": w.marketplace,
        "condition": w.condition.as_str(),
        "target_price_minor": w.spec.target_price_minor,
        "drop_percent": w.spec.drop_percent,
        "back_in_stock": w.spec.back_in_stock,
        "baseline_price_minor": w.baseline_price_minor,
        "armed": w.armed,
        "channels": {
            "extension": w.spec.extension,
            "email": w.spec.email,
            "email_confirmed": w.email_confirmed,
            "webhook": w.spec.webhook,
        },
        "current_price_minor": w.current_price_minor,
        "availability": w.current_availability,
        "currency": w.currency,
        "created_at": w.created_at,
    });
    if with_secret {
        v["webhook_secret"] = json!(w.webhook_secret);
    }
    v
}

fn map_store(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => {
            ApiError::not_found("unknown_product", "no reports for this product yet")
        }
        StoreError::Conflict(m) if m.contains("drop_percent") => invalid(m),
        other => other.into(),
    }
}

fn watch_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::not_found("not_found", "no such watch"))
}

/// `POST /v1/watches`: 201 with the watch.
pub async fn create(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (rec, body) = verify_signed(&state, req).await?;
    let b: WatchBody = parse(&body)?;
    let mut w = validate(&state, rec.id, b)?;
    let now = state.now();
    if state.store.key_activity(rec.id).await?.watches >= MAX_WATCHES_PER_KEY {
        return Err(ApiError::unprocessable(
            "too_many_watches",
            format!("a key may have at most {MAX_WATCHES_PER_KEY} watches"),
        ));
    }
    fill_tokens(&state, &mut w, now)?;
    let created = state.store.create_watch(&w, now).await.map_err(map_store)?;
    Ok((StatusCode::CREATED, Json(watch_json(&created, true))).into_response())
}

/// `GET /v1/watches`.
pub async fn list(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (rec, _) = verify_signed(&state, req).await?;
    let watches = state.store.list_watches(rec.id).await?;
    let list: Vec<Value> = watches.iter().map(|w| watch_json(w, false)).collect();
    Ok(Json(json!({ "watches": list })).into_response())
}

/// `PUT /v1/watches/{id}`: the same body as create; the product cannot
/// change (another product is a new watch).
pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (rec, body) = verify_signed(&state, req).await?;
    let id = watch_id(&id)?;
    let b: WatchBody = parse(&body)?;
    let mut w = validate(&state, rec.id, b)?;
    let now = state.now();
    let old = state
        .store
        .get_watch(rec.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("not_found", "no such watch"))?;
    let new_url = w.spec.webhook != old.spec.webhook;
    if !new_url {
        w.webhook_secret = old.webhook_secret.clone();
    }
    fill_tokens(&state, &mut w, now)?;
    let replaced = state
        .store
        .replace_watch(id, &w, now)
        .await
        .map_err(map_store)?
        .ok_or_else(|| ApiError::not_found("not_found", "no such watch for this product"))?;
    Ok(Json(watch_json(&replaced, new_url)).into_response())
}

/// `DELETE /v1/watches/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (rec, _) = verify_signed(&state, req).await?;
    let id = watch_id(&id)?;
    if state.store.delete_watch(rec.id, id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("not_found", "no such watch"))
    }
}

#[cfg(test)]
mod tests {
    use super::valid_email;

    #[test]
    fn emails() {
        assert!(valid_email("a@b.c"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("@b.c"));
        assert!(!valid_email("a b@c.d"));
        assert!(!valid_email("a@@c.d"));
        assert!(!valid_email("a@.c"));
    }
}
