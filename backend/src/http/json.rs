//! Our own JSON body extractor: strict (serde with `deny_unknown_fields`
//! and duplicate-key rejection on our types) and whose every rejection is
//! an [`ApiError`] with the API.md body, including 413 for a body over the
//! limit. The content type is not required (clients are scripts too).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::{Deserialize, DeserializeOwned};

/// A JSON body parsed strictly into `T`.
pub struct StrictJson<T>(pub T);

/// Reads the body (honouring the router's `DefaultBodyLimit`) with the
/// rejection mapped to our error type.
pub async fn body_bytes(req: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, &()).await.map_err(|rej| {
        if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the request body is larger than max_body_bytes (see /v1/config)")
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })
}

/// Parses `bytes` as `T`, mapping serde's errors to 400 with a message that
/// names the problem (unknown field, duplicate field, syntax).
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let code = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "malformed_json",
            Category::Data => {
                let text = e.to_string();
                if text.starts_with("unknown field") {
                    "unknown_field"
                } else if text.starts_with("duplicate field") {
                    "duplicate_field"
                } else {
                    "invalid_body"
                }
            }
        };
        ApiError::bad_request(code, format!("invalid JSON body: {e}"))
    })
}

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req).await?;
        Ok(StrictJson(parse(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: i64,
    }

    #[test]
    fn codes() {
        let code = |s: &str| parse::<T>(s.as_bytes()).err().map(|e| e.code);
        assert_eq!(code(r#"{"a":1}"#), None);
        assert_eq!(code(r#"{"a":1"#), Some("malformed_json"));
        assert_eq!(code(r#"{"a":1,"b":2}"#), Some("unknown_field"));
        assert_eq!(code(r#"{"a":1,"a":2}"#), Some("duplicate_field"));
        assert_eq!(code(r#"{"a":"x"}"#), Some("invalid_body"));
    }
}
