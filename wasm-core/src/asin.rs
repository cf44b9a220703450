//! ASINs (Amazon Standard Identification Numbers): ten characters from
//! `[0-9A-Z]`. Books keep their ISBN-10 as ASIN (digits, possibly ending in
//! `X`), everything else starts with `B0`.
//!
//! [`Asin::from_url`] reads the ASIN out of every product URL shape Amazon
//! uses. Reading it from a page (canonical link, hidden inputs) is the
//! extraction rules' job; they may hand a canonical `href` to `from_url`.

use crate::marketplace::split_url;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A valid ASIN. Always ten ASCII characters from `[0-9A-Z]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asin([u8; 10]);

impl Asin {
    /// Parses exactly ten characters from `[0-9A-Z]`, after trimming
    /// surrounding whitespace. Lower case is rejected: on the wire an ASIN
    /// is upper case (`PROTOCOL.md`: a lower-case ASIN is rejected, not
    /// repaired).
    pub fn parse(s: &str) -> Option<Asin> {
        Self::from_bytes(s.trim().as_bytes())
    }

    fn from_bytes(b: &[u8]) -> Option<Asin> {
        let bytes: [u8; 10] = b.try_into().ok()?;
        bytes
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            .then_some(Asin(bytes))
    }

    /// The ASIN as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored, so this cannot fail; the
        // fallback keeps the function total without a panic path.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The ASIN in an Amazon URL, whatever its shape:
    /// `/dp/ASIN`, `/<slug>/dp/ASIN`, `/-/en/dp/ASIN`, `/gp/product/ASIN`,
    /// `/gp/aw/d/ASIN`, `/product/ASIN`, `/gp/offer-listing/ASIN`,
    /// `/product-reviews/ASIN`, `/exec/obidos/ASIN/ASIN`, `/o/ASIN/ASIN`,
    /// the query parameter `asin=` (any case of the name: `ASIN=`), and a
    /// percent-encoded product path in a `url=` parameter (sponsored links).
    ///
    /// Judgement call on case: Amazon's product paths are case-insensitive
    /// in the ASIN (`/dp/b07g2l3jmm` redirects to `/dp/B07G2L3JMM`), so a
    /// lower-case ASIN in one of those path positions is upper-cased. The
    /// `asin=` query value is taken only as written, upper case: Amazon's
    /// handlers for it (offer listings, add-to-cart forms) do not fold case,
    /// so a lower-case value there does not name a product.
    ///
    /// The host is not checked (a path alone, `/dp/B0...`, works); callers
    /// who need an Amazon URL check [`crate::marketplace::Marketplace::from_url`].
    pub fn from_url(url: &str) -> Option<Asin> {
        let (_, rest) = split_url(url)?;
        let (before_fragment, _) = rest.split_once('#').unwrap_or((rest, ""));
        let (path, query) = before_fragment
            .split_once('?')
            .unwrap_or((before_fragment, ""));
        from_path(path).or_else(|| from_query(query))
    }
}

/// Path shapes: the segment(s) that announce an ASIN in the next segment.
const MARKERS: &[&[&str]] = &[
    &["dp"],
    &["gp", "product"],
    &["gp", "aw", "d"],
    &["gp", "aw", "ol"],
    &["gp", "offer-listing"],
    &["gp", "product-reviews"],
    &["product-reviews"],
    &["exec", "obidos", "asin"],
    &["exec", "obidos", "tg", "detail", "-"],
    &["o", "asin"],
    &["product"],
];

fn from_path(path: &str) -> Option<Asin> {
    let segments: Vec<&str> = path.split(['/', '\\']).filter(|s| !s.is_empty()).collect();
    // Amazon puts the marker after an arbitrary slug, so look everywhere;
    // the first marker followed by a valid ASIN wins.
    for i in 0..segments.len() {
        for marker in MARKERS {
            let Some(candidate) = segments.get(i + marker.len()) else {
                continue;
            };
            let matches = marker
                .iter()
                .zip(&segments[i..])
                .all(|(m, s)| s.eq_ignore_ascii_case(m));
            if matches {
                // `B07G2L3JMM;ref=...` and `B07G2L3JMM&psc=1` occur in old links.
                let candidate = candidate.split([';', '&']).next().unwrap_or("");
                if let Some(asin) = Asin::from_bytes(candidate.to_ascii_uppercase().as_bytes()) {
                    return Some(asin);
                }
            }
        }
    }
    None
}

fn from_query(query: &str) -> Option<Asin> {
    let pairs = || {
        query
            .split(['&', ';'])
            .filter_map(|pair| pair.split_once('='))
    };
    pairs()
        .filter(|(name, _)| name.eq_ignore_ascii_case("asin"))
        .find_map(|(_, value)| Asin::from_bytes(value.as_bytes()))
        .or_else(|| {
            // Sponsored and redirect links carry the product path
            // percent-encoded: `/sspa/click?...&url=%2FSlug%2Fdp%2FB0...`.
            // One level only: the decoded path is read, its query is not.
            pairs()
                .filter(|(name, _)| name.eq_ignore_ascii_case("url"))
                .find_map(|(_, value)| {
                    let decoded = percent_decode(value)?;
                    let path = decoded.split(['?', '#']).next().unwrap_or("");
                    from_path(path)
                })
        })
}

/// Decodes `%XX` escapes; `None` on a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for Asin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Asin {
    type Err = InvalidAsin;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Asin::parse(s).ok_or(InvalidAsin)
    }
}

/// The text is not an ASIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an ASIN: expected ten characters from [0-9A-Z]")]
pub struct InvalidAsin;

impl Serialize for Asin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Asin {
    /// Strict: exactly the ten characters, no surrounding whitespace.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Asin::from_bytes(s.as_bytes()).ok_or_else(|| serde::de::Error::custom(InvalidAsin))
    }
}
