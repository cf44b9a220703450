//! A minimal cookie jar, one per marketplace.
//!
//! Judgement call: our own jar rather than reqwest's. reqwest's jar files
//! cookies under the request URL's host, so with a base-URL override
//! (`amazon.com=https://127.0.0.1:9443`) or a shared proxy every
//! marketplace would land in one bucket and Amazon's `Domain=.amazon.com`
//! cookies would be refused. Amazon's session cookies are plain
//! name/value pairs scoped to the whole store, so a jar per marketplace
//! that keeps name -> value, honours deletion (`Max-Age<=0`) and ignores
//! paths and expiry dates is what a browser effectively does there.

use std::collections::BTreeMap;

/// Longest cookie header we send; beyond it new cookies are dropped.
const MAX_JAR_BYTES: usize = 8 * 1024;

/// Cookies of one marketplace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: BTreeMap<String, String>,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// Takes in one `Set-Cookie` header value. Malformed values are ignored.
    pub fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let name = name.trim();
        let value = value.trim().trim_matches('"');
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
        };
        if !token(name)
            || !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            return;
        }
        let deleted = parts.any(|attr| {
            let attr = attr.trim();
            attr.get(..8)
                .is_some_and(|k| k.eq_ignore_ascii_case("max-age="))
                && attr[8..].trim().starts_with(['-', '0'])
        });
        if deleted {
            self.cookies.remove(name);
            return;
        }
        let size: usize = self
            .cookies
            .iter()
            .map(|(k, v)| k.len() + v.len() + 3)
            .sum();
        if !self.cookies.contains_key(name) && size + name.len() + value.len() + 3 > MAX_JAR_BYTES {
            return;
        }
        self.cookies.insert(name.to_string(), value.to_string());
    }

    /// The `Cookie` header to send, if any.
    pub fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        Some(
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// A cookie's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Number of cookies.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether the jar is empty.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_replaces_and_deletes() {
        let mut jar = CookieJar::new();
        jar.store("session-id=131-1234567-7654321; Domain=.amazon.com; Expires=Thu, 01 Jan 2099 00:00:00 GMT; Path=/; Secure");
        jar.store("i18n-prefs=USD; Domain=.amazon.com; Path=/");
        assert_eq!(
            jar.header().as_deref(),
            Some("i18n-prefs=USD; session-id=131-1234567-7654321")
        );
        jar.store("i18n-prefs=EUR; Path=/");
        assert_eq!(jar.get("i18n-prefs"), Some("EUR"));
        jar.store("i18n-prefs=; Max-Age=0; Path=/");
        assert_eq!(jar.get("i18n-prefs"), None);
        assert_eq!(jar.len(), 1);
    }

    #[test]
    fn ignores_malformed_cookies() {
        let mut jar = CookieJar::new();
        for bad in [
            "",
            "novalue",
            "=v",
            "a b=c",
            "x=a b",
            "x=a\r\nInjected: 1",
            "na;me=v",
        ] {
            jar.store(bad);
        }
        assert!(jar.is_empty(), "{:?}", jar.header());
        jar.store("quoted=\"abc\"");
        assert_eq!(jar.get("quoted"), Some("abc"));
    }

    #[test]
    fn jar_size_is_bounded() {
        let mut jar = CookieJar::new();
        for i in 0..1000 {
            jar.store(&format!("c{i}={}", "x".repeat(50)));
        }
        assert!(jar.header().map_or(0, |h| h.len()) <= MAX_JAR_BYTES);
        assert!(jar.len() > 100);
    }
}
