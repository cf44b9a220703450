//! The webhook channel: an HMAC-signed JSON POST.
//!
//! # Signature (what a receiver checks)
//! Every POST carries
//! `X-Pricewatch-Signature: t=<unix ms>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
//! where `secret` is the watch's webhook secret (shown once when the watch
//! is made) and `body` the exact bytes received. To verify:
//! 1. split the header on `,`; take `t` and every `v1`;
//! 2. compute HMAC-SHA256 with the secret over the text of `t`, a `.`, and
//!    the raw body; hex-encode it (lowercase);
//! 3. accept if it equals one `v1` (compare in constant time) and `t` is
//!    within a few minutes of your clock (this stops replays).
//!
//! [`verify_signature`] does exactly this.
//!
//! # Transport rules
//! - `https://` only. `http://` only when [`WebhookConfig::allow_loopback_http`]
//!   is set *and* the host is loopback (`127.0.0.0/8`, `::1`, `localhost`):
//!   that exists for tests against a local receiver, never for users.
//! - Redirects are not followed (judgement call: a receiver that moved
//!   should have its URL updated, and following them would let a URL point
//!   the server anywhere); a 3xx is a permanent failure.
//! - 2xx: delivered. 408, 429, 5xx, timeouts, connection errors: retried;
//!   `Retry-After` (seconds or an HTTP date) is honoured on 429 and 503.
//!   Any other 4xx: permanent.
//! - Not done here: refusing https URLs that resolve to private addresses
//!   (SSRF); the watch API should check that when the URL is saved.

use super::retry::Failure;
use super::token::hex;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Pricewatch-Signature";

/// The header value for `body` sent at `t_ms`.
pub fn sign(secret: &[u8], body: &[u8], t_ms: i64) -> String {
    format!("t={t_ms},v1={}", hex(&mac(secret, t_ms, body)))
}

fn mac(secret: &[u8], t_ms: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; the fallback
    // keeps the function total.
    let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
        return Vec::new();
    };
    m.update(t_ms.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed signature header")]
    Malformed,
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Checks a signature header against the raw body, the secret and the
/// receiver's clock (`|now - t| <= tolerance_ms`; 300 000 is a good value).
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_ms: i64,
    tolerance_ms: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match k {
            "t" => t = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            "v1" => candidates.push(decode_hex(v).ok_or(VerifyError::Malformed)?),
            _ => {} // later schemes are ignored, as they should be
        }
    }
    let t = t.ok_or(VerifyError::Malformed)?;
    if candidates.is_empty() {
        return Err(VerifyError::Malformed);
    }
    if now_ms.abs_diff(t) > tolerance_ms.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    for candidate in candidates {
        let Ok(mut m) = HmacSha256::new_from_slice(secret) else {
            return Err(VerifyError::Mismatch);
        };
        m.update(t.to_string().as_bytes());
        m.update(b".");
        m.update(body);
        if m.verify_slice(&candidate).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Webhook transport settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The whole request, connect included.
    pub timeout: Duration,
    /// Allow `http://` to loopback hosts (tests only).
    pub allow_loopback_http: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            timeout: Duration::from_secs(10),
            allow_loopback_http: false,
        }
    }
}

/// POSTs signed bodies.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    config: WebhookConfig,
}

impl WebhookSender {
    /// Builds the HTTP client.
    pub fn new(config: WebhookConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pricewatch-webhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(WebhookSender { client, config })
    }

    /// Checks a webhook URL against the transport rules (also useful to
    /// the watch API when a URL is saved).
    pub fn check_url(&self, url: &str) -> Result<url::Url, String> {
        check_url(url, self.config.allow_loopback_http)
    }

    /// POSTs `body` signed at `now_ms`. `Ok` on 2xx.
    pub async fn post(
        &self,
        url: &str,
        secret: &[u8],
        body: &str,
        now_ms: i64,
    ) -> Result<(), Failure> {
        let url = self
            .check_url(url)
            .map_err(|reason| Failure::Permanent { reason })?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(secret, body.as_bytes(), now_ms))
            .body(body.to_string())
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return Err(Failure::Permanent {
                    reason: format!("webhook request: {e}"),
                })
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "failed"
                };
                return Err(Failure::Transient {
                    reason: format!("webhook {what}: {e}"),
                    retry_after_ms: None,
                });
            }
        };
        let status = response.status();
        let code = status.as_u16();
        if status.is_success() {
            return Ok(());
        }
        let reason = format!("webhook answered {status}");
        if code == 429 || code == 503 {
            let retry_after_ms = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now_ms));
            return Err(Failure::Transient {
                reason,
                retry_after_ms,
            });
        }
        if code == 408 || status.is_server_error() || status.is_informational() {
            return Err(Failure::Transient {
                reason,
                retry_after_ms: None,
            });
        }
        // 3xx (not followed) and every other 4xx.
        Err(Failure::Permanent { reason })
    }
}

/// The transport rules for a URL (see the module docs).
pub fn check_url(url: &str, allow_loopback_http: bool) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid webhook URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => return Err("webhook URL has no host".into()),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_loopback_http && loopback => Ok(parsed),
        "http" => Err("webhook URL must be https".into()),
        other => Err(format!("webhook URL scheme {other:?} is not https")),
    }
}

/// `Retry-After` as milliseconds from `now_ms`: delta-seconds or an HTTP
/// date. `None` if unparsable.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    let when_ms = i64::try_from(when.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(when_ms.saturating_sub(now_ms).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // HMAC-SHA256("key", "1000.{}") computed independently (Python hmac).
        assert_eq!(
            sign(b"key", b"{}", 1000),
            "t=1000,v1=c32de42341dece79a1511c9e7f74a2734112edcfcf48943c976faf07047065db"
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let body = br#"{"content":"x"}"#;
        let header = sign(b"secret", body, 5_000);
        assert_eq!(
            verify_signature(b"secret", &header, body, 6_000, 300_000),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"other", &header, body, 6_000, 300_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"secret", &header, b"{\"content\":\"y\"}", 6_000, 300_000),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"secret", &header, body, 400_000, 300_000),
            Err(VerifyError::Stale)
        );
        // Rotation: any v1 may match; unknown schemes are ignored.
        let v1 = header.split("v1=").nth(1).unwrap();
        let two = format!("t=5000,v0=zz,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(verify_signature(b"secret", &two, body, 5_000, 0), Ok(()));
        for bad in [
            "",
            "t=5000",
            "v1=00",
            "t=x,v1=00",
            "t=5000,v1=0g",
            "garbage",
        ] {
            assert_eq!(
                verify_signature(b"secret", bad, body, 5_000, 300_000),
                Err(VerifyError::Malformed),
                "{bad:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_signature_round_trips_and_any_change_breaks_it(
            secret in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
            body in proptest::collection::vec(proptest::num::u8::ANY, 1..400),
            t in 0i64..4_000_000_000_000,
            flip in proptest::num::usize::ANY,
        ) {
            let header = sign(&secret, &body, t);
            proptest::prop_assert_eq!(verify_signature(&secret, &header, &body, t, 0), Ok(()));
            let mut changed = body.clone();
            let i = flip % changed.len();
            changed[i] ^= 0x01;
            proptest::prop_assert_eq!(
                verify_signature(&secret, &header, &changed, t, 0),
                Err(VerifyError::Mismatch)
            );
            let mut other = secret.clone();
            // Not a zero byte: HMAC pads short keys with zeros, so [] and [0]
            // are the same key.
            other.push(1);
            proptest::prop_assert_eq!(
                verify_signature(&other, &header, &body, t, 0),
                Err(VerifyError::Mismatch)
            );
        }

        #[test]
        fn verify_never_panics(header in ".{0,200}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..50)) {
            let _ = verify_signature(b"k", &header, &body, 0, 1000);
        }
    }

    #[test]
    fn url_rules() {
        assert!(check_url("https://discord.com/api/webhooks/1/x", false).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", false).is_err());
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_url("http://[::1]:9/x", true).is_ok());
        assert!(check_url("http://localhost:9/x", true).is_ok());
        assert!(check_url("http://example.com/x", true).is_err());
        assert!(check_url("ftp://127.0.0.1/x", true).is_err());
        assert!(check_url("nonsense", true).is_err());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777 s
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777_000 - 5_000),
            Some(5_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777_000 + 5_000),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-3", 0), None);
    }
}
