//! The signed report protocol, exactly as `PROTOCOL.md` v1 defines it.
//!
//! - [`Observation`] / [`Report`]: what a collector saw, its canonical bytes
//!   (§1), field grammar validation and strict Ed25519 verification.
//! - [`Registration`]: key registration with a SHA-256 proof of work (§2),
//!   with a resumable solver ([`pow_solve`]) the extension runs in slices.
//! - [`request_canonical`] / [`verify_request`]: signed HTTP requests (§3).
//! - [`check_freshness`] / [`check_request_time`]: the time windows (§3, §4).
//!   The caller passes `now`: this crate reads no clock.
//! - [`b64u_encode`] / [`b64u_decode`]: base64url without padding, strict.
//!
//! Invariants:
//! - No randomness and no clock inside: keys come from caller-provided seeds,
//!   nonces and times from the caller.
//! - A value that breaks its grammar is rejected, never repaired:
//!   [`Observation::validate`] refuses a title that [`normalize_title`] would
//!   change. Producers normalise before signing; verifiers only check.
//! - Verification is strict: non-canonical `S`, small-order `R`, small-order
//!   or non-canonically encoded keys are all rejected.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

use crate::marketplace::Marketplace;
use crate::types::{Availability, Condition, Seller};

/// Length of an Ed25519 public key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIG_LEN: usize = 64;
/// Length of a nonce (observations and requests) in bytes.
pub const NONCE_LEN: usize = 16;
/// Longest proof-of-work string, in decoded bytes (§2: 1 to 32 bytes).
pub const POW_MAX_LEN: usize = 32;
/// Longest title, in Unicode scalar values (§1).
pub const TITLE_MAX_CHARS: usize = 400;

/// How far in the past an observation's `observed_at` may lie: 24 hours (§4).
pub const OBSERVATION_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;
/// How far in the future an observation's `observed_at` may lie: 5 minutes (§4).
pub const OBSERVATION_MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// How far a signed request's timestamp may be from the server clock, either
/// way: 5 minutes (§3).
pub const REQUEST_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// Default proof-of-work difficulty in leading zero bits (§2).
pub const DEFAULT_POW_DIFFICULTY: u32 = 20;

const OBS_DOMAIN: &str = "pricewatch/obs/v1\n";
const POW_DOMAIN: &str = "pricewatch/pow/v1\n";
const REGISTER_DOMAIN: &str = "pricewatch/register/v1\n";
const REQ_DOMAIN: &str = "pricewatch/req/v1\n";

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a protocol value (encoding, key, signature, proof of work, request)
/// was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not strict base64url without padding (bad alphabet, padding,
    /// non-canonical trailing bits, impossible length).
    #[error("not canonical base64url without padding")]
    BadBase64,
    /// Decoded to the wrong number of bytes.
    #[error("expected {expected} bytes, got {got}")]
    BadLength {
        /// What the grammar requires (for the proof of work: the maximum).
        expected: usize,
        /// What the input decoded to.
        got: usize,
    },
    /// The key is not a canonically encoded point of large order.
    #[error("public key is not a valid, canonical Ed25519 key of large order")]
    BadKey,
    /// The signature does not verify strictly over the message.
    #[error("signature does not verify")]
    BadSignature,
    /// The proof of work has fewer leading zero bits than required.
    #[error("proof of work has {got} leading zero bits, {need} required")]
    InsufficientWork {
        /// The difficulty asked for.
        need: u32,
        /// What the digest has.
        got: u32,
    },
    /// A signed request's own fields break their grammar (method, path,
    /// timestamp).
    #[error("invalid request field `{0}`")]
    BadRequestField(&'static str),
    /// The request timestamp is more than [`REQUEST_CLOCK_SKEW_MS`] from now.
    #[error("request timestamp is outside the allowed clock skew")]
    ClockSkew,
}

impl ProtocolError {
    /// A stable snake_case code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::BadBase64 | ProtocolError::BadLength { .. } => "invalid_encoding",
            ProtocolError::BadKey => "bad_key",
            ProtocolError::BadSignature => "bad_signature",
            ProtocolError::InsufficientWork { .. } => "insufficient_work",
            ProtocolError::BadRequestField(_) => "invalid_request",
            ProtocolError::ClockSkew => "clock_skew",
        }
    }
}

/// A field of an [`Observation`] that breaks its grammar (`PROTOCOL.md` §1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field `{field}`: {reason}")]
pub struct FieldError {
    /// The wire name of the field (`asin`, `title`, ...).
    pub field: &'static str,
    /// Human-readable reason.
    pub reason: &'static str,
}

impl FieldError {
    fn new(field: &'static str, reason: &'static str) -> Self {
        FieldError { field, reason }
    }
}

/// Why a [`Report`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not a well-formed JSON report (syntax, unknown or duplicate field,
    /// wrong type, negative price, unknown enum value).
    #[error("malformed report: {0}")]
    Malformed(String),
    /// Well-formed JSON, but a field breaks its grammar.
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    /// Grammar holds but the signature does not verify (or the key, or the
    /// signature encoding, is unusable).
    #[error("bad signature: {0}")]
    BadSignature(ProtocolError),
}

impl ReportError {
    /// The rejection reason as `API.md` spells it.
    pub fn reason(&self) -> &'static str {
        match self {
            ReportError::Malformed(_) | ReportError::InvalidField(_) => "invalid_field",
            ReportError::BadSignature(_) => "bad_signature",
        }
    }
}

/// An observation outside the accepted time window (`PROTOCOL.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FreshnessError {
    /// Older than [`OBSERVATION_MAX_AGE_MS`].
    #[error("observation is older than 24 hours")]
    Stale,
    /// More than [`OBSERVATION_MAX_FUTURE_MS`] in the future.
    #[error("observation is more than 5 minutes in the future")]
    Future,
}

impl FreshnessError {
    /// The rejection reason as `API.md` spells it (`stale`, `future`).
    pub fn reason(self) -> &'static str {
        match self {
            FreshnessError::Stale => "stale",
            FreshnessError::Future => "future",
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// base64url without padding (RFC 4648 §5).
pub fn b64u_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: rejects padding, `+`, `/`, whitespace, and
/// non-canonical trailing bits (so every byte string has exactly one
/// accepted spelling, and a signature cannot be re-spelled).
pub fn b64u_decode(s: &str) -> Result<Vec<u8>, ProtocolError> {
    // `URL_SAFE_NO_PAD` requires no padding and rejects non-zero trailing
    // bits (base64 0.22 defaults); both are what "strict" means here.
    URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| ProtocolError::BadBase64)
}

/// Decodes `s` and requires exactly `N` bytes.
fn b64u_decode_array<const N: usize>(s: &str) -> Result<[u8; N], ProtocolError> {
    // Cheap length gate before decoding: an N-byte value has one length.
    if s.len() != (N * 4).div_ceil(3) {
        return Err(match b64u_decode(s) {
            Ok(v) => ProtocolError::BadLength {
                expected: N,
                got: v.len(),
            },
            Err(e) => e,
        });
    }
    let v = b64u_decode(s)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| ProtocolError::BadLength {
        expected: N,
        got: v.len(),
    })
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

// ---------------------------------------------------------------------------
// Keys and signatures
// ---------------------------------------------------------------------------

/// An Ed25519 signing key pair derived from a 32-byte seed (RFC 8032 secret
/// key). wasm-core draws no randomness: the caller supplies the seed.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    // The secret never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public_b64u())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// The key pair whose RFC 8032 secret key is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The secret seed, for the caller to store (keep it private).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key bytes.
    pub fn public_bytes(&self) -> [u8; KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key as `b64u` (43 characters), the wire form of `key`.
    pub fn public_b64u(&self) -> String {
        b64u_encode(&self.public_bytes())
    }

    /// Signs `msg` and returns the signature as `b64u` (86 characters).
    pub fn sign(&self, msg: &[u8]) -> String {
        b64u_encode(&self.signing.sign(msg).to_bytes())
    }
}

/// A parsed and validated Ed25519 public key, reusable for many
/// verifications (parse once per key, not once per report).
///
/// Construction rejects encodings that are not canonical (a `y` coordinate
/// at or above the field prime) and keys of small order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.to_b64u()).finish()
    }
}

impl PublicKey {
    /// Validates raw key bytes.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<PublicKey, ProtocolError> {
        let vk = VerifyingKey::from_bytes(bytes).map_err(|_| ProtocolError::BadKey)?;
        if vk.is_weak() {
            return Err(ProtocolError::BadKey);
        }
        // Decompression accepts a `y` coordinate at or above the field prime
        // p = 2^255 - 19 (a second spelling of the point y - p). One key, one
        // spelling: reject those. (The other non-canonical spelling, x = 0
        // with the sign bit set, only occurs for y = ±1, both small order
        // and already rejected above.) A byte test, cheaper than
        // re-compressing the point.
        if !is_canonical_field_element(bytes) {
            return Err(ProtocolError::BadKey);
        }
        Ok(PublicKey(vk))
    }

    /// Parses and validates a `b64u` key (32 bytes).
    pub fn from_b64u(s: &str) -> Result<PublicKey, ProtocolError> {
        PublicKey::from_bytes(&b64u_decode_array::<KEY_LEN>(s)?)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        self.0.as_bytes()
    }

    /// The key as `b64u`.
    pub fn to_b64u(&self) -> String {
        b64u_encode(self.0.as_bytes())
    }

    /// Strict verification of a `b64u` signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig_b64u: &str) -> Result<(), ProtocolError> {
        let sig = b64u_decode_array::<SIG_LEN>(sig_b64u)?;
        self.verify_bytes(msg, &sig)
    }

    /// Strict verification of raw signature bytes over `msg`: rejects
    /// non-canonical `S` and small-order `R` (ed25519-dalek `verify_strict`).
    pub fn verify_bytes(&self, msg: &[u8], sig: &[u8; SIG_LEN]) -> Result<(), ProtocolError> {
        let sig = Signature::from_bytes(sig);
        self.0
            .verify_strict(msg, &sig)
            .map_err(|_| ProtocolError::BadSignature)
    }
}

/// Whether the low 255 bits of `bytes` (little-endian) are below
/// p = 2^255 - 19: p - 1 is `0xec, 0xff * 30, 0x7f`.
fn is_canonical_field_element(bytes: &[u8; 32]) -> bool {
    let top_all_ones = bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff);
    !(top_all_ones && bytes[0] >= 0xed)
}

/// Parses `key_b64u` and strictly verifies `sig_b64u` over `msg`.
pub fn verify_strict(key_b64u: &str, msg: &[u8], sig_b64u: &str) -> Result<(), ProtocolError> {
    PublicKey::from_b64u(key_b64u)?.verify(msg, sig_b64u)
}

// ---------------------------------------------------------------------------
// Observations and reports (§1)
// ---------------------------------------------------------------------------

/// What a collector saw on a product page (`PROTOCOL.md` §1). Field order is
/// the canonical order; the JSON form uses the same names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// The reporter's public key, `b64u` of 32 bytes.
    pub key: String,
    /// `[0-9A-Z]{10}`.
    pub asin: String,
    /// A marketplace domain from `PROTOCOL.md` (`amazon.co.uk`).
    pub marketplace: String,
    /// Which offer the price belongs to.
    pub condition: Condition,
    /// Price in minor units; `None` (JSON `null`, empty in the canonical
    /// bytes) when no price is offered.
    ///
    /// Judgement call: the field must be present in JSON, even when null;
    /// a missing `price_minor` is malformed rather than silently "no price".
    #[serde(deserialize_with = "required_option")]
    pub price_minor: Option<u64>,
    /// ISO 4217 code, `[A-Z]{3}`.
    pub currency: String,
    /// Whether the offer can be bought.
    pub availability: Availability,
    /// Who sells the offer.
    pub seller: Seller,
    /// Normalised title (see [`normalize_title`]); may be empty.
    pub title: String,
    /// Unix milliseconds, `>= 0`.
    pub observed_at: i64,
    /// `b64u` of 16 bytes.
    pub nonce: String,
}

fn required_option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

fn is_asin(s: &str) -> bool {
    s.len() == 10
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

fn is_currency(s: &str) -> bool {
    s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Whether `title` already satisfies §1: no whitespace other than single
/// spaces between non-space characters, at most 400 scalar values.
fn title_problem(title: &str) -> Option<&'static str> {
    let mut prev_space = true; // a leading space counts as a run start
    let mut count = 0usize;
    for c in title.chars() {
        count += 1;
        if count > TITLE_MAX_CHARS {
            return Some("longer than 400 Unicode scalar values");
        }
        if c == ' ' {
            if prev_space {
                return Some("leading space or a run of spaces");
            }
            prev_space = true;
        } else if c.is_whitespace() {
            return Some("whitespace other than a single space (newline, tab, ...)");
        } else {
            prev_space = false;
        }
    }
    if prev_space && !title.is_empty() {
        return Some("trailing space");
    }
    None
}

/// Normalises a title for producers: folds every run of Unicode whitespace
/// to one space, trims both ends, and cuts to at most 400 Unicode scalar
/// values (trimming again if the cut lands after a space).
///
/// [`Observation::validate`] rejects any title for which this function is
/// not the identity.
pub fn normalize_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(TITLE_MAX_CHARS * 4));
    let mut count = 0usize;
    for word in s.split_whitespace() {
        if count > 0 {
            if count + 1 >= TITLE_MAX_CHARS {
                // A separator would be the last char (then trimmed) or past the cut.
                break;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count == TITLE_MAX_CHARS {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

impl Observation {
    /// Checks every field grammar of `PROTOCOL.md` §1. The error names the
    /// first offending field, in canonical order.
    ///
    /// The key is checked for its encoding (32 bytes) only; whether it is a
    /// usable Ed25519 key is part of signature verification.
    pub fn validate(&self) -> Result<(), FieldError> {
        b64u_decode_array::<KEY_LEN>(&self.key)
            .map_err(|_| FieldError::new("key", "must be base64url (no padding) of 32 bytes"))?;
        if !is_asin(&self.asin) {
            return Err(FieldError::new("asin", "must match [0-9A-Z]{10}"));
        }
        // The exact wire spelling (lower case, no `www.`); hosts are the
        // extractor's business, not the protocol's.
        if Marketplace::from_domain(&self.marketplace).is_none() {
            return Err(FieldError::new(
                "marketplace",
                "not a marketplace domain listed in PROTOCOL.md",
            ));
        }
        if !is_currency(&self.currency) {
            return Err(FieldError::new("currency", "must match [A-Z]{3}"));
        }
        if let Some(reason) = title_problem(&self.title) {
            return Err(FieldError::new("title", reason));
        }
        if self.observed_at < 0 {
            return Err(FieldError::new("observed_at", "must be >= 0"));
        }
        b64u_decode_array::<NONCE_LEN>(&self.nonce)
            .map_err(|_| FieldError::new("nonce", "must be base64url (no padding) of 16 bytes"))?;
        Ok(())
    }

    /// The canonical bytes that are signed (validates first).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, FieldError> {
        self.validate()?;
        let price = self.price_minor.map(|p| p.to_string()).unwrap_or_default();
        let s = format!(
            "{OBS_DOMAIN}key={}\nasin={}\nmarketplace={}\ncondition={}\nprice_minor={}\ncurrency={}\navailability={}\nseller={}\ntitle={}\nobserved_at={}\nnonce={}\n",
            self.key,
            self.asin,
            self.marketplace,
            self.condition.as_str(),
            price,
            self.currency,
            self.availability.as_str(),
            self.seller.as_str(),
            self.title,
            self.observed_at,
            self.nonce,
        );
        Ok(s.into_bytes())
    }

    /// Signs the canonical bytes with `kp`, returning the `b64u` signature.
    ///
    /// Refuses (as an error on `key`) to sign when `self.key` is not `kp`'s
    /// public key: such a report could never verify.
    pub fn sign(&self, kp: &Keypair) -> Result<String, FieldError> {
        let bytes = self.canonical_bytes()?;
        if self.key != kp.public_b64u() {
            return Err(FieldError::new(
                "key",
                "is not the signing key's public key",
            ));
        }
        Ok(kp.sign(&bytes))
    }

    /// Builds the signed [`Report`] (no meta).
    pub fn into_report(self, kp: &Keypair) -> Result<Report, FieldError> {
        let sig = self.sign(kp)?;
        Ok(Report {
            obs: self,
            sig,
            meta: None,
        })
    }
}

/// One signed report: an observation, its signature, and unsigned metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The observation.
    pub obs: Observation,
    /// `b64u` Ed25519 signature over `obs.canonical_bytes()`.
    pub sig: String,
    /// Unsigned extraction metadata; never trusted for prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<ReportMeta>,
}

/// Which extractor version and rule produced the price. Not signed; used
/// only to watch extraction health.
///
/// Judgement call: no grammar is imposed here (PROTOCOL.md gives none); a
/// consumer that stores these should bound their length itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMeta {
    /// Extractor version.
    #[serde(default)]
    pub extractor: Option<String>,
    /// Rule id.
    #[serde(default)]
    pub rule: Option<String>,
}

impl Report {
    /// Parses one report from JSON, strictly: unknown fields, duplicate keys,
    /// wrong types, negative prices and unknown enum values are
    /// [`ReportError::Malformed`].
    pub fn from_json(json: &str) -> Result<Report, ReportError> {
        serde_json::from_str(json).map_err(|e| ReportError::Malformed(e.to_string()))
    }

    /// Checks the grammar, then strictly verifies the signature.
    ///
    /// A signature that is not `b64u` of 64 bytes, or a key that is not a
    /// usable Ed25519 key, is reported as [`ReportError::BadSignature`]:
    /// the grammar of §1 holds, but the report cannot be authenticated.
    pub fn verify(&self) -> Result<(), ReportError> {
        let bytes = self.obs.canonical_bytes()?;
        let key = PublicKey::from_b64u(&self.obs.key).map_err(ReportError::BadSignature)?;
        key.verify(&bytes, &self.sig)
            .map_err(ReportError::BadSignature)
    }

    /// Like [`Report::verify`] with an already parsed key (which must be the
    /// observation's key): saves re-validating a key seen many times.
    pub fn verify_with(&self, key: &PublicKey) -> Result<(), ReportError> {
        let bytes = self.obs.canonical_bytes()?;
        if key.to_b64u() != self.obs.key {
            return Err(ReportError::BadSignature(ProtocolError::BadKey));
        }
        key.verify(&bytes, &self.sig)
            .map_err(ReportError::BadSignature)
    }
}

/// Checks `observed_at` against `now_ms` (§4): at most 24 h old, at most
/// 5 min ahead. Both bounds are inclusive.
pub fn check_freshness(observed_at: i64, now_ms: i64) -> Result<(), FreshnessError> {
    if observed_at < now_ms.saturating_sub(OBSERVATION_MAX_AGE_MS) {
        Err(FreshnessError::Stale)
    } else if observed_at > now_ms.saturating_add(OBSERVATION_MAX_FUTURE_MS) {
        Err(FreshnessError::Future)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Registration and proof of work (§2)
// ---------------------------------------------------------------------------

/// A key registration: `{"key", "pow", "sig"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The key, `b64u` of 32 bytes.
    pub key: String,
    /// The proof of work, `b64u` of 1 to 32 bytes.
    pub pow: String,
    /// Signature over [`register_canonical`].
    pub sig: String,
}

/// The registration bytes the key signs.
pub fn register_canonical(key: &str, pow: &str) -> Vec<u8> {
    format!("{REGISTER_DOMAIN}key={key}\npow={pow}\n").into_bytes()
}

/// `SHA-256("pricewatch/pow/v1\nkey=<key>\npow=<pow>\n")`.
pub fn pow_digest(key: &str, pow: &str) -> [u8; 32] {
    let mut h = pow_prefix(key);
    h.update(pow.as_bytes());
    h.update(b"\n");
    h.finalize().into()
}

fn pow_prefix(key: &str) -> Sha256 {
    let mut h = Sha256::new();
    h.update(POW_DOMAIN.as_bytes());
    h.update(b"key=");
    h.update(key.as_bytes());
    h.update(b"\npow=");
    h
}

/// Number of leading zero bits of `digest` (all bits when it is all zero).
pub fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut n = 0;
    for &b in digest {
        if b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn check_pow_grammar(pow: &str) -> Result<(), ProtocolError> {
    let v = b64u_decode(pow)?;
    if v.is_empty() || v.len() > POW_MAX_LEN {
        return Err(ProtocolError::BadLength {
            expected: POW_MAX_LEN,
            got: v.len(),
        });
    }
    Ok(())
}

/// Checks that `pow` is `b64u` of 1..=32 bytes and that its digest has at
/// least `difficulty` leading zero bits.
pub fn pow_check(key: &str, pow: &str, difficulty: u32) -> Result<(), ProtocolError> {
    check_pow_grammar(pow)?;
    let got = leading_zero_bits(&pow_digest(key, pow));
    if got < difficulty {
        return Err(ProtocolError::InsufficientWork {
            need: difficulty,
            got,
        });
    }
    Ok(())
}

/// Resumable solver: tries counters `start .. start + max_iters` (each
/// spelled as `b64u` of its 8 big-endian bytes, the form of the vectors)
/// and returns the first `pow` that meets `difficulty`, or `None`.
///
/// Callers run it in slices (`start` advancing by `max_iters`) so a service
/// worker never blocks for long. Expected work is `2^difficulty` hashes.
pub fn pow_solve(key: &str, difficulty: u32, start: u64, max_iters: u64) -> Option<String> {
    if difficulty > 256 {
        return None;
    }
    let prefix = pow_prefix(key);
    let end = start.saturating_add(max_iters);
    let mut counter = start;
    while counter < end {
        let pow = b64u_encode(&counter.to_be_bytes());
        let mut h = prefix.clone();
        h.update(pow.as_bytes());
        h.update(b"\n");
        let digest: [u8; 32] = h.finalize().into();
        if leading_zero_bits(&digest) >= difficulty {
            return Some(pow);
        }
        counter += 1;
    }
    None
}

impl Registration {
    /// Builds a signed registration for `kp` with an already solved `pow`.
    pub fn new(kp: &Keypair, pow: &str) -> Registration {
        let key = kp.public_b64u();
        let sig = kp.sign(&register_canonical(&key, pow));
        Registration {
            key,
            pow: pow.to_owned(),
            sig,
        }
    }

    /// Verifies key grammar and validity, the proof of work (checked before
    /// the signature: it is one hash, the signature is the costly part), and
    /// the strict signature over [`register_canonical`].
    pub fn verify(&self, difficulty: u32) -> Result<(), ProtocolError> {
        let key = PublicKey::from_b64u(&self.key)?;
        pow_check(&self.key, &self.pow, difficulty)?;
        key.verify(&register_canonical(&self.key, &self.pow), &self.sig)
    }
}

// ---------------------------------------------------------------------------
// Signed requests (§3)
// ---------------------------------------------------------------------------

/// The canonical request bytes of §3. The body hash is of `body` (empty
/// slice when there is no body).
pub fn request_canonical(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    format!(
        "{REQ_DOMAIN}{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{}\n",
        sha256_hex(body)
    )
    .into_bytes()
}

/// Checks the grammar of a signed request's fields, so that no two
/// different requests share canonical bytes: method is upper-case ASCII
/// letters, the path starts with `/` and holds only visible ASCII,
/// the timestamp is `>= 0`, the nonce is `b64u` of 16 bytes.
fn check_request_fields(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
) -> Result<(), ProtocolError> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ProtocolError::BadRequestField("method"));
    }
    if !path_and_query.starts_with('/') || !path_and_query.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProtocolError::BadRequestField("path"));
    }
    if timestamp < 0 {
        return Err(ProtocolError::BadRequestField("timestamp"));
    }
    b64u_decode_array::<NONCE_LEN>(nonce).map_err(|_| ProtocolError::BadRequestField("nonce"))?;
    Ok(())
}

/// Verifies a signed request (§3): field grammar, key, then the strict
/// signature over [`request_canonical`]. The clock window and nonce replay
/// are the server's to check ([`check_request_time`]).
pub fn verify_request(
    key: &str,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
    sig: &str,
) -> Result<(), ProtocolError> {
    check_request_fields(method, path_and_query, timestamp, nonce)?;
    let key = PublicKey::from_b64u(key)?;
    key.verify(
        &request_canonical(method, path_and_query, timestamp, nonce, body),
        sig,
    )
}

/// Signs a request with `kp`; returns the `b64u` signature for the
/// `X-Pricewatch-Signature` header.
pub fn sign_request(
    kp: &Keypair,
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    kp.sign(&request_canonical(
        method,
        path_and_query,
        timestamp,
        nonce,
        body,
    ))
}

/// Checks a request timestamp against `now_ms`: at most
/// [`REQUEST_CLOCK_SKEW_MS`] either way (inclusive).
pub fn check_request_time(timestamp: i64, now_ms: i64) -> Result<(), ProtocolError> {
    if timestamp.abs_diff(now_ms) > REQUEST_CLOCK_SKEW_MS.unsigned_abs() {
        Err(ProtocolError::ClockSkew)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_title_folds_trims_and_cuts() {
        assert_eq!(normalize_title("  a \t\n b  "), "a b");
        assert_eq!(normalize_title(""), "");
        assert_eq!(normalize_title(" \u{3000} "), "");
        let long = "x".repeat(399) + " yz";
        assert_eq!(normalize_title(&long), "x".repeat(399));
        let exact = "x".repeat(398) + " y";
        assert_eq!(normalize_title(&exact), exact);
        assert_eq!(normalize_title(&"é".repeat(500)).chars().count(), 400);
    }

    #[test]
    fn title_problem_matches_normalize() {
        for t in ["a  b", " a", "a ", "a\nb", "a\u{a0}b", "ok title", ""] {
            assert_eq!(
                title_problem(t).is_none(),
                normalize_title(t) == t,
                "title {t:?}"
            );
        }
    }

    #[test]
    fn leading_zero_bits_counts() {
        assert_eq!(leading_zero_bits(&[0, 0x0f, 0xff]), 12);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
        assert_eq!(leading_zero_bits(&[]), 0);
    }
}
