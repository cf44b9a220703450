//! The backend's verifier endpoints (`API.md`, "Verifier"), signed with the
//! verifier's key (`PROTOCOL.md` §3 headers).

use crate::clock::unix_ms;
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::time::Duration;
use wasm_core::protocol::{b64u_encode, sign_request, Keypair, Report, NONCE_LEN};
use wasm_core::types::Condition;

/// A job's id. The API does not fix its type; numbers and strings are both
/// accepted and kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JobId, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(JobId(s)),
            serde_json::Value::Number(n) => Ok(JobId(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "job id must be a string or a number, not {other}"
            ))),
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One leased verification job. Unknown fields are ignored (the backend
/// may add some); the named ones are checked when the job is worked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Job {
    /// Job id.
    pub id: JobId,
    /// ASIN to check.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// Which offer.
    pub condition: Condition,
    /// Why the crawl was queued (informational).
    #[serde(default)]
    pub reason: Option<String>,
    /// Queue priority (informational; not a price).
    #[serde(default)]
    pub priority: Option<serde_json::Number>,
    /// When it was queued, Unix ms.
    #[serde(default)]
    pub enqueued_at: Option<i64>,
}

/// What the verifier found, as posted to `/v1/verification/{id}/result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The page was read; the signed observation.
    Observed(Box<Report>),
    /// Amazon says the product does not exist.
    NotFound,
    /// A robot check answered.
    Captcha,
    /// Amazon (or every proxy) refused us.
    Blocked,
    /// Anything else: network trouble after retries, an unreadable page.
    Failed,
}

impl JobOutcome {
    /// Wire spelling of `outcome`.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobOutcome::Observed(_) => "observed",
            JobOutcome::NotFound => "not_found",
            JobOutcome::Captcha => "captcha",
            JobOutcome::Blocked => "blocked",
            JobOutcome::Failed => "failed",
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            JobOutcome::Observed(report) => {
                serde_json::json!({"outcome": self.as_str(), "report": report})
            }
            _ => serde_json::json!({"outcome": self.as_str()}),
        }
    }
}

/// A backend call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Network or protocol trouble.
    #[error("backend request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// A non-success status, with the API error body when there is one.
    #[error("backend answered {status}: {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// `error.code`, or empty.
        code: String,
        /// `error.message`, or the start of the body.
        message: String,
    },
    /// The backend URL is not an `http(s)://` URL.
    #[error("invalid backend URL {0:?}: expected http://host[:port] or https://...")]
    InvalidBase(String),
    /// The body is not what `API.md` says.
    #[error("backend answered an unexpected body: {0}")]
    Body(String),
}

/// A client of the verifier endpoints.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    key: std::sync::Arc<Keypair>,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .field("key", &self.key.public_b64u())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LeaseResponse {
    jobs: Vec<Job>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl ApiClient {
    /// A client of the backend at `base` (`http://127.0.0.1:8787`).
    pub fn new(base: &str, key: std::sync::Arc<Keypair>) -> Result<ApiClient, ApiError> {
        let base = base.trim_end_matches('/');
        match reqwest::Url::parse(base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(ApiError::InvalidBase(base.to_string())),
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("pricewatch-verifier/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiClient {
            base: base.to_string(),
            http,
            key,
        })
    }

    /// `POST /v1/verification/lease`.
    pub async fn lease(&self, max: usize, lease_ms: u64) -> Result<Vec<Job>, ApiError> {
        let body = serde_json::json!({"max": max, "lease_ms": lease_ms});
        let bytes = self.post("/v1/verification/lease", &body).await?;
        let parsed: LeaseResponse =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Body(e.to_string()))?;
        Ok(parsed.jobs)
    }

    /// `POST /v1/verification/{id}/result`.
    pub async fn post_result(&self, id: &JobId, outcome: &JobOutcome) -> Result<(), ApiError> {
        let path = format!("/v1/verification/{}/result", encode_segment(&id.0));
        self.post(&path, &outcome.to_json()).await.map(drop)
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>, ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Body(e.to_string()))?;
        let ts = unix_ms();
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = b64u_encode(&nonce);
        let sig = sign_request(&self.key, "POST", path, ts, &nonce, &body);
        let resp = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .header("x-pricewatch-key", self.key.public_b64u())
            .header("x-pricewatch-timestamp", ts.to_string())
            .header("x-pricewatch-nonce", nonce)
            .header("x-pricewatch-signature", sig)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?.to_vec();
        if status.is_success() {
            return Ok(bytes);
        }
        let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => (e.error.code, e.error.message),
            Err(_) => (
                String::new(),
                String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            ),
        };
        Err(ApiError::Status {
            status: status.as_u16(),
            code,
            message,
        })
    }
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_may_be_numbers_or_strings() {
        let jobs: LeaseResponse = serde_json::from_str(
            r#"{"jobs":[
              {"id": 17, "asin": "B08N5WRWNW", "marketplace": "amazon.com", "condition": "new",
               "reason": "critical", "priority": 11.5, "enqueued_at": 1763800000000, "extra": true},
              {"id": "j-2", "asin": "3453319036", "marketplace": "amazon.de", "condition": "used"}]}"#,
        )
        .expect("parses");
        assert_eq!(jobs.jobs[0].id, JobId("17".into()));
        assert_eq!(jobs.jobs[0].reason.as_deref(), Some("critical"));
        assert_eq!(jobs.jobs[1].id, JobId("j-2".into()));
        assert_eq!(jobs.jobs[1].condition, Condition::Used);
        assert!(serde_json::from_str::<LeaseResponse>(
            r#"{"jobs":[{"id":null,"asin":"x","marketplace":"y","condition":"new"}]}"#
        )
        .is_err());
    }

    #[test]
    fn outcomes_serialise_per_api() {
        assert_eq!(
            JobOutcome::Captcha.to_json(),
            serde_json::json!({"outcome": "captcha"})
        );
        assert_eq!(JobOutcome::NotFound.as_str(), "not_found");
        assert_eq!(JobOutcome::Blocked.as_str(), "blocked");
        assert_eq!(JobOutcome::Failed.as_str(), "failed");
    }

    #[test]
    fn backend_urls_are_checked() {
        let key = std::sync::Arc::new(Keypair::from_seed(&[1; 32]));
        assert!(ApiClient::new("http://127.0.0.1:8787/", key.clone()).is_ok());
        assert!(ApiClient::new("https://prices.example.org", key.clone()).is_ok());
        for bad in ["", "127.0.0.1:8787", "ftp://x", "http://", "not a url"] {
            assert!(
                matches!(
                    ApiClient::new(bad, key.clone()),
                    Err(ApiError::InvalidBase(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(encode_segment("abc-12_3.~"), "abc-12_3.~");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
