//! Requests signed by a key (PROTOCOL.md §3): `/v1/me` and the verifier's
//! endpoints. Checks, in order: the four headers are present and well
//! formed (401), the timestamp is within 5 minutes (401 `clock_skew`), the
//! strict signature over the canonical request (401 `bad_signature`), the
//! key is registered and not erased (403), the nonce is new for this key
//! (409 `replay`; nonces are kept until the timestamp leaves the window).
//! The per-address limit on signed requests (429) comes first, except for
//! requests that verify as a trusted verifier key's ([`verify_signed`]).
//!
//! The verifier endpoints work the verification queue of the trust issue
//! (`store::verify`): a result's observation must be signed by the same
//! verifier key, strictly valid, fresh, and about the job's product;
//! then it is stored like any trusted report.

use super::error::ApiError;
use super::ingest::client_ip;
use super::json::{body_bytes, parse};
use super::AppState;
use crate::store::verify::{JobTarget, ResultApplied, VerifierOutcome};
use crate::store::{KeyRecord, NewReport};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use wasm_core::protocol::{
    b64u_decode, check_freshness, check_request_time, verify_request, PublicKey, Report,
    REQUEST_CLOCK_SKEW_MS,
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
///
/// The per-address limit on signed requests (`http::limits`) is charged
/// before anything else, except for a request that names a trusted
/// verifier key: the embedded verifier calls over loopback, and behind a
/// reverse proxy on the same host every client has the proxy's address,
/// so collectors' traffic would rate-limit the verifier (and the
/// reverse). Such a request is exempt only once it fully verified
/// (signature, time, registered key, fresh nonce); when any check fails
/// it is charged after all and answers 429 when over the limit, so an
/// unverified claim to be a verifier is never exempt. Judgement call: a
/// flood of forged verifier claims costs one signature check each before
/// it is limited (cheap next to the database work the limit protects).
pub async fn verify_signed(state: &AppState, req: Request) -> Result<(KeyRecord, Bytes), ApiError> {
    let ip = client_ip(&req);
    let claims_verifier = req
        .headers()
        .get("x-pricewatch-key")
        .and_then(|v| v.to_str().ok())
        .and_then(|k| PublicKey::from_b64u(k).ok())
        .is_some_and(|pk| state.config.trusted_verifier_keys.contains(pk.as_bytes()));
    if !claims_verifier {
        state
            .limiters
            .ip_request(ip)
            .map_err(ApiError::rate_limited)?;
        return verify_unlimited(state, req).await;
    }
    match verify_unlimited(state, req).await {
        Ok(verified) => Ok(verified),
        Err(e) => {
            state
                .limiters
                .ip_request(ip)
                .map_err(ApiError::rate_limited)?;
            Err(e)
        }
    }
}

/// [`verify_signed`] without the per-address limit.
async fn verify_unlimited(state: &AppState, req: Request) -> Result<(KeyRecord, Bytes), ApiError> {
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

/// `POST /v1/verification/lease`: up to `max` jobs by priority (20% of
/// the capacity reserved for critical jobs, see `trust::pick_jobs`),
/// leased to the requesting verifier for `lease_ms`.
pub async fn lease(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (rec, body) = verifier(&state, req).await?;
    let l: LeaseRequest = parse(&body)?;
    if l.max == 0 || l.max > 1000 || l.lease_ms == 0 || l.lease_ms > 3_600_000 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "max is 1..=1000 and lease_ms 1..=3600000",
        ));
    }
    let lease_ms = i64::try_from(l.lease_ms).unwrap_or(3_600_000);
    let jobs = state
        .store
        .lease_jobs(rec.id, l.max, lease_ms, state.now())
        .await?;
    state.metrics.jobs_leased(jobs.len());
    let jobs: Vec<_> = jobs
        .iter()
        .map(|j| {
            json!({
                "id": j.id,
                "asin": j.asin,
                "marketplace": j.marketplace,
                "condition": j.condition.as_str(),
                "reason": j.reason,
                "priority": j.priority,
                "critical": j.critical,
                "enqueued_at": j.enqueued_at,
            })
        })
        .collect();
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultRequest {
    outcome: String,
    #[serde(default)]
    report: Option<Report>,
}

fn unknown_job(id: &str) -> ApiError {
    ApiError::not_found("unknown_job", format!("no verification job {id:?}"))
}

/// The verifier's observation as a report to store: signed by the
/// requesting verifier key, strictly valid, fresh, about the job's product
/// and in its currency.
fn observation(
    state: &AppState,
    rec: &KeyRecord,
    target: &JobTarget,
    report: Report,
    now: i64,
) -> Result<NewReport, ApiError> {
    let invalid = |m: &str| ApiError::unprocessable("invalid_report", m.to_string());
    report
        .obs
        .canonical_bytes()
        .map_err(|e| ApiError::unprocessable("invalid_field", e.to_string()))?;
    check_freshness(report.obs.observed_at, now)
        .map_err(|e| ApiError::unprocessable(e.reason(), "observed_at is out of range"))?;
    if b64u_decode(&report.obs.key).ok().as_deref() != Some(&rec.public_key[..]) {
        return Err(invalid(
            "the observation is not signed by the requesting verifier key",
        ));
    }
    report.verify().map_err(|_| {
        ApiError::unauthorized(
            "bad_signature",
            "the observation's signature does not verify",
        )
    })?;
    if report.obs.asin != target.asin
        || report.obs.marketplace != target.marketplace
        || report.obs.condition != target.condition
    {
        return Err(invalid("the observation is not about the job's product"));
    }
    if report.obs.currency != target.currency {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "the observation's currency is not the product's",
        ));
    }
    let nonce = b64u_decode(&report.obs.nonce)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| ApiError::unprocessable("invalid_field", "nonce is not 16 bytes"))?;
    let price = report
        .obs
        .price_minor
        .map(i64::try_from)
        .transpose()
        .map_err(|_| ApiError::unprocessable("invalid_field", "price_minor is too large"))?;
    let raw = serde_json::to_string(&report).map_err(|_| ApiError::internal())?;
    let _ = state;
    let o = report.obs;
    Ok(NewReport {
        key_id: rec.id,
        nonce,
        marketplace: o.marketplace,
        asin: o.asin,
        condition: o.condition,
        price_minor: price,
        currency: o.currency,
        availability: o.availability,
        seller: o.seller,
        title: o.title,
        observed_at: o.observed_at,
        trusted: true,
        net_hash: None,
        raw,
    })
}

/// `POST /v1/verification/{id}/result`: 204 once applied (see
/// `Storage::finish_job`); a second result for a finished job is 204 and
/// changes nothing; an unknown id is 404.
pub async fn result(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (rec, body) = verifier(&state, req).await?;
    let r: ResultRequest = parse(&body)?;
    let Some(outcome) = VerifierOutcome::parse(&r.outcome) else {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "outcome is observed, not_found, captcha, blocked or failed",
        ));
    };
    let job_id = id.parse::<i64>().map_err(|_| unknown_job(&id))?;
    let target = state
        .store
        .job_target(job_id)
        .await?
        .ok_or_else(|| unknown_job(&id))?;
    if target.finished {
        state.metrics.job_result("duplicate", None);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let now = state.now();
    let obs = match (outcome, r.report) {
        (VerifierOutcome::Observed, Some(report)) => {
            Some(observation(&state, &rec, &target, report, now)?)
        }
        (VerifierOutcome::Observed, None) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                "an observed result needs the signed report",
            ))
        }
        _ => None,
    };
    let applied = state
        .store
        .finish_job(job_id, outcome, obs.as_ref(), now)
        .await?;
    match applied {
        ResultApplied::Unknown => return Err(unknown_job(&id)),
        ResultApplied::AlreadyFinished => state.metrics.job_result("duplicate", None),
        ResultApplied::Retrying { .. } => state.metrics.job_result("retry", None),
        ResultApplied::Finished {
            outcome,
            latency_ms,
            ..
        } => {
            state.metrics.job_result(outcome.as_str(), Some(latency_ms));
            state
                .history_cache
                .invalidate(&target.marketplace, &target.asin);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
