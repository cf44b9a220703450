//! Ingest: `POST /v1/keys` (registration with proof of work) and
//! `POST /v1/reports` (batches of signed reports).
//!
//! Checks of one report, in this order (the first failure is its result):
//! 1. strict JSON of the report (unknown fields, duplicate keys, types) and
//!    the field grammar of PROTOCOL.md §1 -> `invalid_field`;
//! 2. freshness (§4) -> `stale` / `future`;
//! 3. strict Ed25519 signature -> `bad_signature`;
//! 4. registered key -> `unregistered_key`; blocked -> `blocked_key`; a
//!    report observed before its key erased its data -> `unregistered_key`;
//! 5. per-key rate limit (only now, after the signature) -> `rate_limited`;
//! 6. storage: `duplicate` for a seen `(key, nonce)`, else `accepted` or
//!    `stored`; a currency that differs from the product's -> `invalid_field`.
//!
//! Whole-request failures: a body over `max_body_bytes` is 413, a body
//! that is not `{"reports": [...]}` is 400, an empty or over-long batch 422,
//! the per-address limit 429 with `Retry-After`.
//!
//! **A batch of one** (PROTOCOL.md §4 "HTTP 409 for a single report"): when
//! its one report is not stored, the answer carries that failure's status
//! (409 `duplicate`, 401 `bad_signature`, 403 `unregistered_key` /
//! `blocked_key`, 422 `invalid_field` / `stale` / `future`, 429
//! `rate_limited`) with the error body *and* the usual `results` array, so
//! clients that only read `results` keep working.

use super::error::ApiError;
use super::json::{body_bytes, parse};
use super::AppState;
use crate::store::{IngestOutcome, NewReport, Registered};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use wasm_core::protocol::{b64u_decode, check_freshness, PublicKey, Registration, Report};

/// The client address (from the listener; unspecified under `oneshot`
/// tests that set none).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `POST /v1/keys`.
pub async fn register(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&req);
    let body = body_bytes(req).await?;
    let reg: Registration = parse(&body)?;
    state
        .limiters
        .ip_registration(ip)
        .map_err(ApiError::rate_limited)?;
    let difficulty = state.config.pow_difficulty;
    let checked = {
        let reg = reg.clone();
        tokio::task::spawn_blocking(move || reg.verify(difficulty))
            .await
            .map_err(|_| ApiError::internal())?
    };
    if let Err(e) = checked {
        return Err(match e.code() {
            "insufficient_work" => ApiError::unprocessable(
                "insufficient_work",
                format!("the proof of work needs {difficulty} leading zero bits"),
            ),
            "bad_signature" => {
                ApiError::unauthorized("bad_signature", "the signature does not verify")
            }
            _ => ApiError::unprocessable("invalid_field", e.to_string()),
        });
    }
    let key = PublicKey::from_b64u(&reg.key)
        .map_err(|e| ApiError::unprocessable("invalid_field", e.to_string()))?;
    let net = super::limits::net_hash(&state.net_secret, ip);
    let outcome = state
        .store
        .register_key(key.as_bytes(), state.now(), Some(net))
        .await?;
    let (status, rec) = match outcome {
        Registered::Created(rec) => (StatusCode::CREATED, rec),
        Registered::Existing(rec) => (StatusCode::OK, rec),
    };
    Ok((status, Json(json!({"key": reg.key, "trust": rec.trust()}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    reports: Vec<&'a RawValue>,
}

/// One entry of `results`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportResult {
    /// API.md status.
    pub status: &'static str,
    /// Rejection reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl ReportResult {
    fn ok(status: &'static str) -> Self {
        ReportResult {
            status,
            reason: None,
        }
    }
    fn rejected(reason: &'static str) -> Self {
        ReportResult {
            status: "rejected",
            reason: Some(reason),
        }
    }
}

enum Slot {
    Done(ReportResult),
    /// Index into the list handed to the store.
    Stored(usize),
}

/// The per-report checks that need no database (grammar, freshness,
/// signature), run on a blocking thread: signatures are the costly part.
///
/// Signatures are checked with batch verification ([`batch_verifies`],
/// about twice as fast per signature as single checks) followed by the
/// checks `verify_strict` adds: the key is parsed by `wasm_core::protocol::PublicKey` (canonical,
/// not small order), `S` must be canonical (dalek rejects it in both
/// paths), and each `R` must be a canonical encoding of a point that is not
/// of small order. When a batch fails, every signature of it is checked
/// alone with the strict single verification, so a bad one is named.
///
/// Judgement call: batch verification is cofactorless, like `verify_strict`,
/// but its random linear combination can cancel a small-order component
/// that a *key holder* deliberately put into `R` (a mixed-order `R`). Such
/// a signature is one the holder could have made valid anyway; it cannot
/// forge another key's report, and `(key, nonce)` stays unique, so the
/// only effect would be an audit row whose signature a strict verifier
/// rejects. Measured here: see the loadgen figures in the issue note.
fn verify_all(raws: Vec<String>, now: i64) -> Vec<Result<(Report, String), &'static str>> {
    struct Candidate {
        idx: usize,
        msg: Vec<u8>,
        sig: ed25519_dalek::Signature,
        key: ed25519_dalek::VerifyingKey,
    }
    let mut keys: HashMap<String, Option<ed25519_dalek::VerifyingKey>> = HashMap::new();
    let mut out: Vec<Result<(Report, String), &'static str>> = Vec::with_capacity(raws.len());
    let mut candidates: Vec<Candidate> = Vec::with_capacity(raws.len());
    for raw in raws {
        let checked = (|| {
            let report = Report::from_json(&raw).map_err(|e| e.reason())?;
            let msg = report.obs.canonical_bytes().map_err(|_| "invalid_field")?;
            check_freshness(report.obs.observed_at, now).map_err(|e| e.reason())?;
            let key = keys
                .entry(report.obs.key.clone())
                .or_insert_with(|| {
                    PublicKey::from_b64u(&report.obs.key)
                        .ok()
                        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(k.as_bytes()).ok())
                })
                .ok_or("bad_signature")?;
            let sig_bytes = b64u_decode(&report.sig)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
                .ok_or("bad_signature")?;
            let r_bytes: [u8; 32] = sig_bytes[..32].try_into().map_err(|_| "bad_signature")?;
            if !strict_r(&r_bytes) {
                return Err("bad_signature");
            }
            Ok((
                report,
                msg,
                ed25519_dalek::Signature::from_bytes(&sig_bytes),
                key,
            ))
        })();
        match checked {
            Ok((report, msg, sig, key)) => {
                candidates.push(Candidate {
                    idx: out.len(),
                    msg,
                    sig,
                    key,
                });
                out.push(Ok((report, raw)));
            }
            Err(reason) => out.push(Err(reason)),
        }
    }
    for chunk in candidates.chunks(64) {
        let items: Vec<_> = chunk
            .iter()
            .map(|c| (c.msg.as_slice(), &c.sig, &c.key))
            .collect();
        if batch_verifies(&items) {
            continue;
        }
        for c in chunk {
            if c.key.verify_strict(&c.msg, &c.sig).is_err() {
                out[c.idx] = Err("bad_signature");
            }
        }
    }
    out
}

/// Randomized batch verification of `items` (message, signature, key):
/// ed25519-dalek's `verify_batch` equation, with each key's terms merged.
///
/// With random 128-bit `z_i`, `h_i = SHA-512(R_i || A_i || M_i) mod l`
/// and canonical `s_i`, it checks `-(sum z_i s_i) B + sum z_i R_i +
/// sum z_i h_i A_i == 0` (cofactorless, as dalek's). Performance (issue
/// 4's ingest benchmark): a batch mostly comes from one key, and
/// `sum z_i h_i A_i` is then `(sum z_i h_i) A`, one point in the
/// multiscalar multiplication instead of one per report: n + k + 1
/// points for n signatures of k keys instead of 2n + 1. The merge is exact
/// algebra, so the verdict is dalek's (but for the random `z_i`, drawn
/// here from the thread's CSPRNG instead of dalek's transcript).
fn batch_verifies(
    items: &[(
        &[u8],
        &ed25519_dalek::Signature,
        &ed25519_dalek::VerifyingKey,
    )],
) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use rand::Rng;
    use sha2::{Digest, Sha512};

    let mut rng = rand::thread_rng();
    // Position 0 is B (its coefficient is set at the end), then the R_i.
    let mut scalars: Vec<Scalar> = Vec::with_capacity(items.len() + 2);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(items.len() + 2);
    scalars.push(Scalar::ZERO);
    points.push(ED25519_BASEPOINT_POINT);
    // One term per distinct key.
    let mut key_bytes: Vec<[u8; 32]> = Vec::new();
    let mut key_scalars: Vec<Scalar> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut b = Scalar::ZERO;
    for (msg, sig, key) in items {
        let (r_bytes, s_bytes) = (sig.r_bytes(), sig.s_bytes());
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*s_bytes)) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(*r_bytes).decompress() else {
            return false;
        };
        let a = key.as_bytes();
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(a);
        h.update(msg);
        let hram = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let z = Scalar::from(rng.gen::<u128>());
        b += z * s;
        scalars.push(z);
        points.push(r);
        match key_bytes.iter().position(|k| k == a) {
            Some(at) => key_scalars[at] += z * hram,
            None => {
                key_bytes.push(*a);
                key_scalars.push(z * hram);
                key_points.push(key.to_edwards());
            }
        }
    }
    scalars[0] = -b;
    EdwardsPoint::vartime_multiscalar_mul(
        scalars.iter().chain(&key_scalars),
        points.iter().chain(&key_points),
    )
    .is_identity()
}

/// The `y` coordinates (little-endian, sign bit clear) of the eight points
/// of small order: 1 (the identity), p - 1 (order 2), 0 (order 4) and the
/// two order-8 values `y8` and `p - y8`. A test checks this list against
/// curve25519-dalek's `EIGHT_TORSION`.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Batches being verified right now (by [`verify_spread`]).
static VERIFYING: AtomicUsize = AtomicUsize::new(0);

/// Smallest batch that [`verify_spread`] splits in two.
const SPLIT_MIN: usize = 32;

/// Decrements [`VERIFYING`] when a verification ends, however it ends.
struct InFlight;

impl InFlight {
    fn enter() -> (Self, usize) {
        (InFlight, VERIFYING.fetch_add(1, Ordering::AcqRel))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        VERIFYING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`verify_all`] on the blocking pool. A batch of at least [`SPLIT_MIN`]
/// reports that arrives while no other batch is being verified is split
/// in two halves verified on two blocking threads, so one batch alone
/// uses both cores and its latency halves. Under load (another batch
/// already verifying) the cores are busy anyway and splitting would only
/// add overhead, so the batch stays whole. Results keep the batch order.
async fn verify_spread(
    mut raws: Vec<String>,
    now: i64,
) -> Result<Vec<Result<(Report, String), &'static str>>, ApiError> {
    let (_guard, others) = InFlight::enter();
    if raws.len() < SPLIT_MIN || others > 0 {
        return tokio::task::spawn_blocking(move || verify_all(raws, now))
            .await
            .map_err(|_| ApiError::internal());
    }
    let second = raws.split_off(raws.len() / 2);
    let a = tokio::task::spawn_blocking(move || verify_all(raws, now));
    let b = tokio::task::spawn_blocking(move || verify_all(second, now));
    let (a, b) = tokio::join!(a, b);
    let mut out = a.map_err(|_| ApiError::internal())?;
    out.extend(b.map_err(|_| ApiError::internal())?);
    Ok(out)
}

/// `R` (the first half of a signature) as `verify_strict` needs it: a
/// canonical encoding (y below p; the other non-canonical spelling only
/// exists for small-order points) of a curve point not of small order.
///
/// Performance: decompressing `R` costs a field exponentiation, and the
/// batch check decompresses it again; so only an `R` whose `y` is one of
/// the five small-order values is decompressed here (exactly). Any other
/// `R` is either a point not of small order or no point at all, and the
/// latter fails the batch check and then the single strict check, so the
/// verdict is the same as decompressing everything here.
fn strict_r(r: &[u8; 32]) -> bool {
    let top_all_ones = r[31] & 0x7f == 0x7f && r[1..31].iter().all(|&b| b == 0xff);
    if top_all_ones && r[0] >= 0xed {
        return false;
    }
    let mut y = *r;
    y[31] &= 0x7f;
    if !SMALL_ORDER_Y.contains(&y) {
        return true;
    }
    match ed25519_dalek::VerifyingKey::from_bytes(r) {
        Ok(point) => !point.is_weak(),
        Err(_) => false,
    }
}

fn status_of(outcome: IngestOutcome) -> ReportResult {
    match outcome {
        IngestOutcome::Accepted => ReportResult::ok("accepted"),
        IngestOutcome::Stored => ReportResult::ok("stored"),
        IngestOutcome::Duplicate => ReportResult::ok("duplicate"),
        IngestOutcome::CurrencyMismatch => ReportResult::rejected("invalid_field"),
        IngestOutcome::Provisional => ReportResult::ok("provisional"),
        IngestOutcome::Held => ReportResult::ok("held"),
    }
}

fn single_failure(r: &ReportResult) -> Option<ApiError> {
    let e = match (r.status, r.reason) {
        ("duplicate", _) => ApiError::conflict("duplicate", "this (key, nonce) was seen before"),
        (_, Some("bad_signature")) => {
            ApiError::unauthorized("bad_signature", "the signature does not verify")
        }
        (_, Some("unregistered_key")) => {
            ApiError::forbidden("unregistered_key", "the key is not registered")
        }
        (_, Some("blocked_key")) => ApiError::forbidden("blocked_key", "the key is blocked"),
        (_, Some("stale")) => {
            ApiError::unprocessable("stale", "observed_at is more than 24 hours old")
        }
        (_, Some("future")) => {
            ApiError::unprocessable("future", "observed_at is more than 5 minutes ahead")
        }
        (_, Some("rate_limited")) => ApiError::rate_limited(60),
        (_, Some(reason)) => {
            ApiError::unprocessable("invalid_field", format!("report rejected: {reason}"))
        }
        _ => return None,
    };
    Some(e)
}

/// `POST /v1/reports`.
pub async fn reports(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let result = reports_inner(&state, req).await;
    state.metrics.ingest_latency(started.elapsed());
    result
}

async fn reports_inner(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let ip = client_ip(&req);
    let body = body_bytes(req).await?;
    let batch: Batch<'_> = parse(&body)?;
    let n = batch.reports.len();
    if n == 0 {
        return Err(ApiError::unprocessable(
            "empty_batch",
            "send at least one report",
        ));
    }
    if n > state.config.max_batch {
        return Err(ApiError::unprocessable(
            "batch_too_large",
            format!("at most {} reports per batch", state.config.max_batch),
        ));
    }
    state
        .limiters
        .ip_reports(ip, u32::try_from(n).unwrap_or(u32::MAX))
        .map_err(ApiError::rate_limited)?;
    let now = state.now();
    let raws: Vec<String> = batch.reports.iter().map(|r| r.get().to_string()).collect();
    // Announced to the store until this handler ends (see `ingest_coming`).
    let _coming = state.store.ingest_coming();
    let verified = verify_spread(raws, now).await?;

    // Registered keys, one lookup per distinct key.
    let mut distinct: Vec<[u8; 32]> = Vec::new();
    let mut raw_keys: Vec<Option<[u8; 32]>> = Vec::with_capacity(n);
    for v in &verified {
        let k = v
            .as_ref()
            .ok()
            .and_then(|(r, _)| b64u_decode(&r.obs.key).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
        if let Some(k) = k {
            if !distinct.contains(&k) {
                distinct.push(k);
            }
        }
        raw_keys.push(k);
    }
    let records = state.store.keys_by_public(&distinct).await?;
    let by_key: HashMap<[u8; 32], _> = distinct.iter().copied().zip(records).collect();
    let net = super::limits::net_hash(&state.net_secret, ip);

    let mut slots = Vec::with_capacity(n);
    let mut to_store: Vec<NewReport> = Vec::new();
    for (v, k) in verified.into_iter().zip(raw_keys) {
        let (report, raw) = match v {
            Err(reason) => {
                slots.push(Slot::Done(ReportResult::rejected(reason)));
                continue;
            }
            Ok(x) => x,
        };
        let Some(k) = k else {
            slots.push(Slot::Done(ReportResult::rejected("bad_signature")));
            continue;
        };
        let rec = match by_key.get(&k).cloned().flatten() {
            None => {
                slots.push(Slot::Done(ReportResult::rejected("unregistered_key")));
                continue;
            }
            Some(rec) => rec,
        };
        if rec.blocked {
            slots.push(Slot::Done(ReportResult::rejected("blocked_key")));
            continue;
        }
        if rec
            .erased_at
            .is_some_and(|e| rec.registered_at <= e || report.obs.observed_at <= e)
        {
            slots.push(Slot::Done(ReportResult::rejected("unregistered_key")));
            continue;
        }
        let trusted = state.config.trusted_verifier_keys.contains(&k);
        if !trusted && state.limiters.key_report(&k).is_err() {
            slots.push(Slot::Done(ReportResult::rejected("rate_limited")));
            continue;
        }
        let nonce = b64u_decode(&report.obs.nonce)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok());
        let (Some(nonce), Some(price)) = (
            nonce,
            report.obs.price_minor.map(i64::try_from).transpose().ok(),
        ) else {
            slots.push(Slot::Done(ReportResult::rejected("invalid_field")));
            continue;
        };
        let o = report.obs;
        slots.push(Slot::Stored(to_store.len()));
        to_store.push(NewReport {
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
            trusted,
            net_hash: Some(net),
            raw,
        });
    }
    let outcomes = if to_store.is_empty() {
        Vec::new()
    } else {
        state.store.ingest(&to_store, now).await?
    };
    // A stored report changes its product's history: drop cached charts.
    for (r, o) in to_store.iter().zip(&outcomes) {
        if matches!(
            o,
            IngestOutcome::Accepted
                | IngestOutcome::Stored
                | IngestOutcome::Provisional
                | IngestOutcome::Held
        ) {
            state.history_cache.invalidate(&r.marketplace, &r.asin);
        }
    }
    let results: Vec<ReportResult> = slots
        .into_iter()
        .map(|s| match s {
            Slot::Done(r) => r,
            Slot::Stored(i) => outcomes
                .get(i)
                .copied()
                .map(status_of)
                .unwrap_or(ReportResult::rejected("invalid_field")),
        })
        .collect();
    for r in &results {
        state.metrics.report(r.status, r.reason.unwrap_or(""));
    }
    let body = json!({ "results": results });
    if let [only] = results.as_slice() {
        if let Some(err) = single_failure(only) {
            return Err(err.with_extra("results", body["results"].clone()));
        }
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_core::protocol::{b64u_encode, Keypair, Observation};
    use wasm_core::types::{Availability, Condition, Seller};

    const NOW: i64 = 1_763_800_000_000;

    fn report(kp: &Keypair, n: u8) -> Report {
        Observation {
            key: kp.public_b64u(),
            asin: "B08N5WRWNW".into(),
            marketplace: "amazon.com".into(),
            condition: Condition::New,
            price_minor: Some(1000 + u64::from(n)),
            currency: "USD".into(),
            availability: Availability::InStock,
            seller: Seller::Amazon,
            title: "t".into(),
            observed_at: NOW,
            nonce: b64u_encode(&[n; 16]),
        }
        .into_report(kp)
        .expect("sign")
    }

    fn verdicts(reports: &[Report]) -> Vec<bool> {
        let raws = reports
            .iter()
            .map(|r| serde_json::to_string(r).expect("json"))
            .collect();
        verify_all(raws, NOW).iter().map(Result::is_ok).collect()
    }

    #[test]
    fn batch_path_agrees_with_strict_single_verification() {
        let kp = Keypair::from_seed(&[5; 32]);
        let good = report(&kp, 1);
        let sig = b64u_decode(&good.sig).expect("sig");
        // Every single-bit change of the signature: the batch path must say
        // exactly what wasm-core's strict verification says.
        let mut tampered = Vec::new();
        for byte in 0..64 {
            for bit in [0u8, 3, 7] {
                let mut s = sig.clone();
                s[byte] ^= 1 << bit;
                tampered.push(Report {
                    sig: b64u_encode(&s),
                    ..good.clone()
                });
            }
        }
        let want: Vec<bool> = tampered.iter().map(|r| r.verify().is_ok()).collect();
        assert!(want.iter().all(|ok| !ok));
        assert_eq!(verdicts(&tampered), want);
        // A batch of 70 with one bad report names exactly that one.
        let mut batch: Vec<Report> = (0..70).map(|n| report(&kp, n)).collect();
        batch[33] = tampered[5].clone();
        let v = verdicts(&batch);
        assert_eq!(v.iter().filter(|ok| !**ok).count(), 1);
        assert!(!v[33]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn split_verification_keeps_the_batch_order() {
        let kp = Keypair::from_seed(&[7; 32]);
        let mut batch: Vec<Report> = (0..80).map(|n| report(&kp, n)).collect();
        let mut sig = b64u_decode(&batch[61].sig).expect("sig");
        sig[40] ^= 1;
        batch[61].sig = b64u_encode(&sig);
        let raws: Vec<String> = batch
            .iter()
            .map(|r| serde_json::to_string(r).expect("json"))
            .collect();
        let out = verify_spread(raws.clone(), NOW).await.expect("verify");
        assert_eq!(out.len(), 80);
        for (i, (v, raw)) in out.iter().zip(&raws).enumerate() {
            match v {
                Ok((_, r)) => assert_eq!(r, raw, "report {i} out of order"),
                Err(reason) => {
                    assert_eq!(i, 61);
                    assert_eq!(*reason, "bad_signature");
                }
            }
        }
        assert!(out[61].is_err());
    }

    #[test]
    fn batches_of_several_keys_name_the_bad_report() {
        // Interleaved keys: each key's terms are merged in the batch check.
        let kps: Vec<Keypair> = (1u8..=3).map(|i| Keypair::from_seed(&[i; 32])).collect();
        let mut batch: Vec<Report> = (0..60u8).map(|n| report(&kps[n as usize % 3], n)).collect();
        assert!(verdicts(&batch).iter().all(|ok| *ok));
        // A report signed by one key but claiming another's: its key's
        // merged term no longer balances.
        let mut forged = report(&kps[0], 200);
        forged.obs.key = kps[1].public_b64u();
        assert!(forged.verify().is_err());
        batch[40] = forged;
        let v = verdicts(&batch);
        assert_eq!(v.iter().filter(|ok| !**ok).count(), 1);
        assert!(!v[40]);
        // The signatures of two reports of one key swapped: both refused.
        let mut swapped: Vec<Report> = (0..20u8).map(|n| report(&kps[n as usize % 2], n)).collect();
        let (a, b) = (swapped[2].sig.clone(), swapped[4].sig.clone());
        swapped[2].sig = b;
        swapped[4].sig = a;
        let v = verdicts(&swapped);
        assert_eq!(v.iter().filter(|ok| !**ok).count(), 2);
        assert!(!v[2] && !v[4]);
    }

    #[test]
    fn small_order_y_list_covers_the_eight_torsion() {
        for point in curve25519_dalek::constants::EIGHT_TORSION {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            assert!(SMALL_ORDER_Y.contains(&y), "{y:02x?}");
        }
        // Every listed y, with either sign bit, that decodes is refused.
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut r = y;
                r[31] |= sign;
                assert!(!strict_r(&r), "{r:02x?}");
            }
        }
    }

    #[test]
    fn r_that_is_no_point_fails_through_the_batch_path() {
        let kp = Keypair::from_seed(&[6; 32]);
        let good = report(&kp, 2);
        let mut sig = b64u_decode(&good.sig).expect("sig");
        // Find a y (below p) that is not on the curve: the fast check lets
        // it through, the batch and single checks must refuse it.
        let mut found = false;
        for b in 2u8..=255 {
            let mut r = [0u8; 32];
            r[0] = b;
            if ed25519_dalek::VerifyingKey::from_bytes(&r).is_err() {
                assert!(strict_r(&r));
                sig[..32].copy_from_slice(&r);
                found = true;
                break;
            }
        }
        assert!(found);
        let bad = Report {
            sig: b64u_encode(&sig),
            ..good.clone()
        };
        assert!(bad.verify().is_err());
        let mut batch: Vec<Report> = (10..20).map(|n| report(&kp, n)).collect();
        batch.insert(4, bad);
        let v = verdicts(&batch);
        assert_eq!(v.iter().filter(|ok| !**ok).count(), 1);
        assert!(!v[4]);
    }

    #[test]
    fn small_order_and_non_canonical_r_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!strict_r(&identity), "identity point is small order");
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        assert!(!strict_r(&non_canonical), "y >= p");
        let kp = Keypair::from_seed(&[5; 32]);
        let good = report(&kp, 1);
        let sig = b64u_decode(&good.sig).expect("sig");
        let r: [u8; 32] = sig[..32].try_into().expect("R");
        assert!(strict_r(&r));
        // S + l (non-canonical S) is refused.
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut s = sig.clone();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[32 + i]) + u16::from(l[i]) + carry;
            s[32 + i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        let bumped = Report {
            sig: b64u_encode(&s),
            ..good.clone()
        };
        assert!(bumped.verify().is_err());
        assert_eq!(verdicts(&[good, bumped]), vec![true, false]);
    }
}
