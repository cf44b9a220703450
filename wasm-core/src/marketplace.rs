//! The Amazon marketplaces pricewatch knows (`PROTOCOL.md` §1), their
//! currencies (ISO 4217) and the way each one writes prices.
//!
//! Both [`Currency`] and [`Marketplace`] are small `Copy` handles into
//! static tables, so they cost nothing to pass around and cannot hold an
//! unknown value: the only ways to get one are the associated constants and
//! the `from_*` look-ups.
//!
//! Host names are matched strictly: a marketplace's registrable domain,
//! optionally behind one of the subdomains Amazon serves its retail store
//! on (`www.`, `smile.`, `m.`, `www.m.`). Anything else (`aws.amazon.com`,
//! `sellercentral.amazon.de`, `amazon.com.evil.example`) is not a
//! marketplace.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An ISO 4217 currency used by (or shown on) an Amazon marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(u8);

/// `(code, exponent, conventional decimal separator)`. The decimal
/// separator is only used when a price is parsed without a marketplace; it
/// is `None` where the currency has no single convention (EUR) or no minor
/// unit (JPY).
const CURRENCIES: &[(&str, u8, Option<char>)] = &[
    ("USD", 2, Some('.')),
    ("GBP", 2, Some('.')),
    ("EUR", 2, None),
    ("SEK", 2, Some(',')),
    ("PLN", 2, Some(',')),
    ("CAD", 2, Some('.')),
    ("MXN", 2, Some('.')),
    ("BRL", 2, Some(',')),
    ("JPY", 0, None),
    ("INR", 2, Some('.')),
    ("AUD", 2, Some('.')),
    ("SGD", 2, Some('.')),
    ("AED", 2, Some('.')),
    ("SAR", 2, Some('.')),
    ("TRY", 2, Some(',')),
    ("EGP", 2, Some('.')),
    // Not the currency of any marketplace, but Amazon shows prices in it
    // to Swiss visitors ("CHF 1'234.50"), so it parses.
    ("CHF", 2, Some('.')),
];

impl Currency {
    pub const USD: Currency = Currency(0);
    pub const GBP: Currency = Currency(1);
    pub const EUR: Currency = Currency(2);
    pub const SEK: Currency = Currency(3);
    pub const PLN: Currency = Currency(4);
    pub const CAD: Currency = Currency(5);
    pub const MXN: Currency = Currency(6);
    pub const BRL: Currency = Currency(7);
    pub const JPY: Currency = Currency(8);
    pub const INR: Currency = Currency(9);
    pub const AUD: Currency = Currency(10);
    pub const SGD: Currency = Currency(11);
    pub const AED: Currency = Currency(12);
    pub const SAR: Currency = Currency(13);
    pub const TRY: Currency = Currency(14);
    pub const EGP: Currency = Currency(15);
    pub const CHF: Currency = Currency(16);

    /// Every currency this crate knows.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..CURRENCIES.len()).map(|i| Currency(i as u8))
    }

    fn entry(self) -> (&'static str, u8, Option<char>) {
        CURRENCIES[usize::from(self.0)]
    }

    /// The ISO 4217 code, upper case: `"EUR"`.
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    /// Digits of the minor unit: 2 for EUR (cents), 0 for JPY.
    pub fn exponent(self) -> u8 {
        self.entry().1
    }

    /// The decimal separator this currency is conventionally written with,
    /// where there is one convention.
    pub fn conventional_decimal(self) -> Option<char> {
        self.entry().2
    }

    /// Looks up an ISO 4217 code. Exact, upper case: `"EUR"`, not `"eur"`.
    pub fn from_code(code: &str) -> Option<Currency> {
        CURRENCIES
            .iter()
            .position(|(c, _, _)| *c == code)
            .map(|i| Currency(i as u8))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Serialised as the ISO code (`"EUR"`); deserialising is exact.
impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Currency::from_code(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown currency {s:?}")))
    }
}

/// How a marketplace writes amounts: separators and where the currency
/// symbol goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumberFormat {
    /// Decimal separator: `'.'` or `','`.
    pub decimal: char,
    /// Grouping separator: `','`, `'.'`, or a space character (U+00A0 or
    /// U+202F).
    pub group: char,
    /// Indian grouping (`1,23,456`): groups of two above the thousands.
    pub indian_grouping: bool,
    /// The symbol as the marketplace shows it: `"$"`, `"€"`, `"R$"`.
    pub symbol: &'static str,
    /// Whether the symbol comes before the number.
    pub symbol_first: bool,
    /// What separates symbol and number: `""` or `"\u{a0}"`.
    pub symbol_space: &'static str,
}

impl NumberFormat {
    /// Whether the grouping separator is a kind of space.
    pub fn groups_with_space(&self) -> bool {
        self.group.is_whitespace()
    }
}

/// One Amazon retail store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Marketplace(u8);

const NBSP: &str = "\u{a0}";

const fn fmt_prefix(symbol: &'static str, space: &'static str) -> NumberFormat {
    NumberFormat {
        decimal: '.',
        group: ',',
        indian_grouping: false,
        symbol,
        symbol_first: true,
        symbol_space: space,
    }
}

const fn fmt_suffix(symbol: &'static str, decimal: char, group: char) -> NumberFormat {
    NumberFormat {
        decimal,
        group,
        indian_grouping: false,
        symbol,
        symbol_first: false,
        symbol_space: NBSP,
    }
}

/// The marketplace table, in `PROTOCOL.md` order. Formats are what each
/// store shows in its own language today (judgement calls noted):
/// - amazon.fr groups with U+202F (narrow no-break space), as French
///   typography and the store do; amazon.se and amazon.pl with U+00A0.
/// - amazon.co.jp shows the full-width yen sign `￥` in current layouts
///   (older English-UI pages show `¥`; both parse).
/// - amazon.nl writes the euro sign first (`€ 12,99`), amazon.com.be
///   (French UI by default) after the number.
/// - amazon.ae/.sa/.eg: the English UI's ISO-code prefix (`AED 1,234.56`).
const MARKETPLACES: &[(&str, Currency, NumberFormat)] = &[
    ("amazon.com", Currency::USD, fmt_prefix("$", "")),
    ("amazon.co.uk", Currency::GBP, fmt_prefix("£", "")),
    ("amazon.de", Currency::EUR, fmt_suffix("€", ',', '.')),
    ("amazon.fr", Currency::EUR, fmt_suffix("€", ',', '\u{202f}')),
    ("amazon.it", Currency::EUR, fmt_suffix("€", ',', '.')),
    ("amazon.es", Currency::EUR, fmt_suffix("€", ',', '.')),
    (
        "amazon.nl",
        Currency::EUR,
        NumberFormat {
            decimal: ',',
            group: '.',
            indian_grouping: false,
            symbol: "€",
            symbol_first: true,
            symbol_space: NBSP,
        },
    ),
    ("amazon.se", Currency::SEK, fmt_suffix("kr", ',', '\u{a0}')),
    ("amazon.pl", Currency::PLN, fmt_suffix("zł", ',', '\u{a0}')),
    ("amazon.com.be", Currency::EUR, fmt_suffix("€", ',', '.')),
    ("amazon.ca", Currency::CAD, fmt_prefix("$", "")),
    ("amazon.com.mx", Currency::MXN, fmt_prefix("$", "")),
    (
        "amazon.com.br",
        Currency::BRL,
        NumberFormat {
            decimal: ',',
            group: '.',
            indian_grouping: false,
            symbol: "R$",
            symbol_first: true,
            symbol_space: NBSP,
        },
    ),
    ("amazon.co.jp", Currency::JPY, fmt_prefix("￥", "")),
    (
        "amazon.in",
        Currency::INR,
        NumberFormat {
            decimal: '.',
            group: ',',
            indian_grouping: true,
            symbol: "₹",
            symbol_first: true,
            symbol_space: "",
        },
    ),
    ("amazon.com.au", Currency::AUD, fmt_prefix("$", "")),
    ("amazon.sg", Currency::SGD, fmt_prefix("S$", "")),
    ("amazon.ae", Currency::AED, fmt_prefix("AED", NBSP)),
    ("amazon.sa", Currency::SAR, fmt_prefix("SAR", NBSP)),
    ("amazon.com.tr", Currency::TRY, fmt_suffix("TL", ',', '.')),
    ("amazon.eg", Currency::EGP, fmt_prefix("EGP", NBSP)),
];

/// The subdomains Amazon serves a retail store on.
const STORE_SUBDOMAINS: &[&str] = &["www.", "smile.", "m.", "www.m."];

impl Marketplace {
    pub const AMAZON_COM: Marketplace = Marketplace(0);
    pub const AMAZON_CO_UK: Marketplace = Marketplace(1);
    pub const AMAZON_DE: Marketplace = Marketplace(2);
    pub const AMAZON_FR: Marketplace = Marketplace(3);
    pub const AMAZON_IT: Marketplace = Marketplace(4);
    pub const AMAZON_ES: Marketplace = Marketplace(5);
    pub const AMAZON_NL: Marketplace = Marketplace(6);
    pub const AMAZON_SE: Marketplace = Marketplace(7);
    pub const AMAZON_PL: Marketplace = Marketplace(8);
    pub const AMAZON_COM_BE: Marketplace = Marketplace(9);
    pub const AMAZON_CA: Marketplace = Marketplace(10);
    pub const AMAZON_COM_MX: Marketplace = Marketplace(11);
    pub const AMAZON_COM_BR: Marketplace = Marketplace(12);
    pub const AMAZON_CO_JP: Marketplace = Marketplace(13);
    pub const AMAZON_IN: Marketplace = Marketplace(14);
    pub const AMAZON_COM_AU: Marketplace = Marketplace(15);
    pub const AMAZON_SG: Marketplace = Marketplace(16);
    pub const AMAZON_AE: Marketplace = Marketplace(17);
    pub const AMAZON_SA: Marketplace = Marketplace(18);
    pub const AMAZON_COM_TR: Marketplace = Marketplace(19);
    pub const AMAZON_EG: Marketplace = Marketplace(20);

    const ALL: [Marketplace; 21] = {
        let mut all = [Marketplace(0); 21];
        let mut i = 0;
        while i < 21 {
            all[i] = Marketplace(i as u8);
            i += 1;
        }
        all
    };

    /// Every marketplace, in `PROTOCOL.md` order.
    pub fn all() -> &'static [Marketplace] {
        &Self::ALL
    }

    fn entry(self) -> &'static (&'static str, Currency, NumberFormat) {
        &MARKETPLACES[usize::from(self.0)]
    }

    /// Exactly the wire spelling: `"amazon.co.uk"` (lower case, no `www.`).
    pub fn from_domain(domain: &str) -> Option<Marketplace> {
        MARKETPLACES
            .iter()
            .position(|(d, _, _)| *d == domain)
            .map(|i| Marketplace(i as u8))
    }

    /// A host as found in a URL or a `Host` header: case-insensitive, may
    /// end in a dot, may carry a port, may have a store subdomain
    /// (`www.`, `smile.`, `m.`). `"AMAZON.DE.:443"` is amazon.de.
    pub fn from_host(host: &str) -> Option<Marketplace> {
        let host = host.trim();
        // Strip a port: the host names we accept never contain ':'.
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > 64 || !host.is_ascii() {
            return None;
        }
        let host = host.to_ascii_lowercase();
        if let Some(m) = Self::from_domain(&host) {
            return Some(m);
        }
        STORE_SUBDOMAINS
            .iter()
            .find_map(|sub| host.strip_prefix(sub).and_then(Self::from_domain))
    }

    /// The marketplace of any URL string: `https://www.amazon.de/dp/...`,
    /// scheme-less `www.amazon.de/...`, protocol-relative `//amazon.de/`.
    /// Only `http` and `https` URLs count. No `url` crate: we need the host
    /// and nothing else.
    pub fn from_url(url: &str) -> Option<Marketplace> {
        Self::from_host(url_host(url)?)
    }

    /// The registrable domain, lower case: `"amazon.co.uk"`.
    pub fn domain(self) -> &'static str {
        self.entry().0
    }

    /// The currency the store sells in.
    pub fn currency(self) -> Currency {
        self.entry().1
    }

    /// How the store writes prices.
    pub fn number_format(self) -> &'static NumberFormat {
        &self.entry().2
    }
}

impl fmt::Display for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.domain())
    }
}

/// Serialised as the wire domain (`"amazon.co.uk"`); deserialising is
/// exact (no `www.`, lower case), as `PROTOCOL.md` requires.
impl Serialize for Marketplace {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.domain())
    }
}

impl<'de> Deserialize<'de> for Marketplace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Marketplace::from_domain(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown marketplace {s:?}")))
    }
}

/// Splits a URL string into its authority's host (with port, without
/// userinfo) and the rest (path, query, fragment). Used by
/// [`Marketplace::from_url`] and [`crate::asin::Asin::from_url`].
pub(crate) fn split_url(url: &str) -> Option<(&str, &str)> {
    let url = url.trim();
    let after_scheme = match url.find("://") {
        Some(i) => {
            let scheme = &url[..i];
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
                return None;
            }
            &url[i + 3..]
        }
        None => match url.strip_prefix("//") {
            Some(rest) => rest,
            // A path without an authority: no host.
            None if url.starts_with('/') => return Some(("", url)),
            None => url,
        },
    };
    let end = after_scheme
        .find(['/', '?', '#', '\\'])
        .unwrap_or(after_scheme.len());
    let authority = &after_scheme[..end];
    let rest = &after_scheme[end..];
    let host = match authority.rsplit_once('@') {
        // Userinfo only exists after a scheme; `mailto:x@amazon.de` is no URL of ours.
        Some(_) if !url.contains("://") => return None,
        Some((_, h)) => h,
        None => authority,
    };
    Some((host, rest))
}

fn url_host(url: &str) -> Option<&str> {
    let (host, _) = split_url(url)?;
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_with_constants() {
        assert_eq!(Marketplace::all().len(), MARKETPLACES.len());
        assert_eq!(Marketplace::AMAZON_EG.domain(), "amazon.eg");
        assert_eq!(Marketplace::AMAZON_CO_JP.currency(), Currency::JPY);
        assert_eq!(Currency::CHF.code(), "CHF");
        assert_eq!(Currency::all().count(), CURRENCIES.len());
    }
}
