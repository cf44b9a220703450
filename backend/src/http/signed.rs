//! Requests signed by a key (PROTOCOL.md §3): `/v1/me` and the verifier's
//! endpoints. Checks, in order: the four headers are present and well
//! formed (401), the timestamp is within 5 minutes (401 `clock_skew`), the
//! strict signature over the canonical request (401 `bad_signature`), the
//! key is registered and not erased (403), the nonce is new for this key
//! (409 `replay`; nonces are kept until the timestamp leaves the window).

use super::error::ApiError;
use super::ingest::client_ip;
use super::json::{body_bytes, parse};
use super::AppState;
use crate::store::KeyRecord;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wasm_core::protocol::{
    b64u_decode, check_request_time, verify_request, PublicKey, Report, REQUEST_CLOCK_SKEW_MS,
};

fn header<'a>(req: &'a Request, name: &str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_signature",
                format!("the {name} header is required"),
            )
        })?
        .to_str()
        .map_err(|_| {
            ApiError::unauthorized("bad_signature", format!("the {name} header is not text"))
        })
}

/// Verifies a signed request; returns the key and the body.
pub async fn verify_signed(state: &AppState, req: Request) -> Result<(KeyRecord, Bytes), ApiError> {
    state
        .limiters
        .ip_request(client_ip(&req))
        .map_err(ApiError::rate_limited)?;
    let key = header(&req, "x-pricewatch-key")?.to_string();
    let ts_text = header(&req, "x-pricewatch-timestamp")?;
    let timestamp: i64 = ts_text.parse().map_err(|_| {
        ApiError::unauthorized("bad_signature", "X-Pricewatch-Timestamp is not an integer")
    })?;
    let nonce = header(&req, "x-pricewatch-nonce")?.to_string();
    let sig = header(&req, "x-pricewatch-signature")?.to_string();
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let now = state.now();
    check_request_time(timestamp, now).map_err(|_| {
        ApiError::unauthorized(
            "clock_skew",
            "X-Pricewatch-Timestamp is more than 5 minutes off",
        )
    })?;
    let body = body_bytes(req).await?;
    verify_request(&key, &method, &path, timestamp, &nonce, &body, &sig).map_err(|_| {
        ApiError::unauthorized("bad_signature", "the request signature does not verify")
    })?;
    let pk = PublicKey::from_b64u(&key)
        .map_err(|_| ApiError::unauthorized("bad_signature", "unusable key"))?;
    let rec = state
        .store
        .keys_by_public(&[*pk.as_bytes()])
        .await?
        .into_iter()
        .next()
        .flatten()
        .filter(|r| r.erased_at.is_none_or(|e| r.registered_at > e))
        .ok_or_else(|| ApiError::forbidden("unregistered_key", "the key is not registered"))?;
    if rec.blocked {
        return Err(ApiError::forbidden("blocked_key", "the key is blocked"));
    }
    let nonce_bytes = b64u_decode(&nonce).map_err(|_| {
        ApiError::unauthorized("bad_signature", "X-Pricewatch-Nonce is not base64url")
    })?;
    let fresh = state
        .store
        .claim_request_nonce(
            rec.id,
            &nonce_bytes,
            timestamp.saturating_add(REQUEST_CLOCK_SKEW_MS),
        )
        .await?;
    if !fresh {
        return Err(ApiError::conflict(
            "replay",
            "this request nonce was already used",
        ));
    }
    Ok((rec, body))
}

/// `GET /v1/me`.
pub async fn me(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (rec, _) = verify_signed(&state, req).await?;
    let activity = state.store.key_activity(rec.id).await?;
    Ok(Json(json!({
        "key": wasm_core::protocol::b64u_encode(&rec.public_key),
        "trust": rec.trust(),
        "registered_at": rec.registered_at,
        "reports": activity.reports,
        "watches": activity.watches,
    }))
    .into_response())
}

/// `DELETE /v1/me`: 204 once everything tied to the key is erased.
pub async fn erase_me(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (rec, _) = verify_signed(&state, req).await?;
    state.store.erase_key(rec.id, state.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn verifier(state: &AppState, req: Request) -> Result<(KeyRecord, Bytes), ApiError> {
    let (rec, body) = verify_signed(state, req).await?;
    if !state.config.trusted_verifier_keys.contains(&rec.public_key) {
        return Err(ApiError::forbidden(
            "not_a_verifier",
            "this key is not a trusted verifier key",
        ));
    }
    Ok((rec, body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseRequest {
    max: u32,
    lease_ms: u64,
}

/// `POST /v1/verification/lease`: the queue arrives with the trust issue;
/// until then it is always empty.
pub async fn lease(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (_, body) = verifier(&state, req).await?;
    let l: LeaseRequest = parse(&body)?;
    if l.max == 0 || l.max > 1000 || l.lease_ms == 0 || l.lease_ms > 3_600_000 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "max is 1..=1000 and lease_ms 1..=3600000",
        ));
    }
    Ok(Json(json!({"jobs": []})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read once the verification queue exists
struct ResultRequest {
    outcome: String,
    #[serde(default)]
    report: Option<Report>,
}

/// `POST /v1/verification/{id}/result`: no job exists yet, so every id is
/// unknown (404) once the request itself is valid.
pub async fn result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (_, body) = verifier(&state, req).await?;
    let r: ResultRequest = parse(&body)?;
    if !["observed", "not_found", "captcha", "blocked", "failed"].contains(&r.outcome.as_str()) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "outcome is observed, not_found, captcha, blocked or failed",
        ));
    }
    Err(ApiError::not_found(
        "unknown_job",
        format!("no verification job {id:?}"),
    ))
}
