//! Opaque tokens for confirmation and unsubscribe links, and webhook
//! secrets.
//!
//! A token is 32 random bytes from the OS, base64url without padding (43
//! characters, safe in a URL query as is). Storage keeps only
//! [`token_hash`] (hex SHA-256) of a link token and finds the row by that
//! hash when the link is followed; the token itself exists only in the
//! mail. A webhook secret is made the same way but must be stored as is,
//! since signing needs it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The OS random source failed.
#[derive(Debug, thiserror::Error)]
#[error("no randomness from the operating system: {0}")]
pub struct RandomnessError(String);

/// A new random token (43 URL-safe characters).
pub fn new_token() -> Result<String, RandomnessError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| RandomnessError(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// What storage keeps of a link token: lowercase hex SHA-256 of its text.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
