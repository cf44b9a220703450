//! Parsing of the command-line specs:
//! `--marketplace-base amazon.com=https://127.0.0.1:9443` and
//! `--rate amazon.de=1/s` (`*=2/s` sets the default for every other
//! marketplace).

use crate::rate::{Rate, RateConfig};
use std::collections::HashMap;
use wasm_core::marketplace::Marketplace;

/// A spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// No `=`.
    #[error("{0:?}: expected MARKETPLACE=VALUE")]
    Shape(String),
    /// Not a marketplace domain.
    #[error("{0:?} is not a marketplace domain (amazon.com, amazon.de, ...)")]
    Marketplace(String),
    /// The base URL is not `http(s)://host[:port]`.
    #[error("{0:?}: the base must be http:// or https:// with a host and no path")]
    Base(String),
    /// The rate does not parse.
    #[error(transparent)]
    Rate(#[from] crate::rate::RateError),
    /// The same marketplace twice.
    #[error("{0} is given twice")]
    Duplicate(String),
}

fn split(spec: &str) -> Result<(&str, &str), SpecError> {
    spec.split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .ok_or_else(|| SpecError::Shape(spec.to_string()))
}

fn marketplace(s: &str) -> Result<Marketplace, SpecError> {
    Marketplace::from_host(s).ok_or_else(|| SpecError::Marketplace(s.to_string()))
}

/// Parses `--marketplace-base` values into base URLs without a trailing slash.
pub fn parse_bases<S: AsRef<str>>(specs: &[S]) -> Result<HashMap<Marketplace, String>, SpecError> {
    let mut out = HashMap::new();
    for spec in specs {
        let spec = spec.as_ref();
        let (k, v) = split(spec)?;
        let m = marketplace(k)?;
        let base = v.trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or_else(|| SpecError::Base(spec.to_string()))?;
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ']) {
            return Err(SpecError::Base(spec.to_string()));
        }
        if out.insert(m, base.to_string()).is_some() {
            return Err(SpecError::Duplicate(m.domain().to_string()));
        }
    }
    Ok(out)
}

/// Parses `--rate` values over `default` (the rate for marketplaces not
/// named; `*=RATE` replaces it).
pub fn parse_rates<S: AsRef<str>>(
    specs: &[S],
    default: Option<Rate>,
) -> Result<RateConfig, SpecError> {
    let mut config = RateConfig {
        default,
        per_marketplace: HashMap::new(),
    };
    for spec in specs {
        let (k, v) = split(spec.as_ref())?;
        let rate: Rate = v.parse()?;
        if k == "*" {
            config.default = Some(rate);
            continue;
        }
        let m = marketplace(k)?;
        if config.per_marketplace.insert(m, rate).is_some() {
            return Err(SpecError::Duplicate(m.domain().to_string()));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases() {
        let b = parse_bases(&[
            "amazon.com=https://127.0.0.1:9443/",
            "www.amazon.de=http://localhost:8080",
        ])
        .expect("ok");
        assert_eq!(b[&Marketplace::AMAZON_COM], "https://127.0.0.1:9443");
        assert_eq!(b[&Marketplace::AMAZON_DE], "http://localhost:8080");
        for bad in [
            "amazon.com",
            "ebay.com=https://x",
            "amazon.com=ftp://x",
            "amazon.com=https://",
            "amazon.com=https://x/path",
        ] {
            assert!(parse_bases(&[bad]).is_err(), "{bad}");
        }
        assert_eq!(
            parse_bases(&["amazon.com=https://a", "amazon.com=https://b"]),
            Err(SpecError::Duplicate("amazon.com".into()))
        );
    }

    #[test]
    fn rates() {
        let r = parse_rates(&["amazon.de=1/s", "*=10/m"], None).expect("ok");
        assert_eq!(
            r.rate_for(Marketplace::AMAZON_DE).map(|r| r.per_ms),
            Some(1000)
        );
        assert_eq!(
            r.rate_for(Marketplace::AMAZON_COM).map(|r| r.tokens),
            Some(10)
        );
        let r = parse_rates::<&str>(&[], None).expect("ok");
        assert_eq!(r.rate_for(Marketplace::AMAZON_COM), None);
        assert!(parse_rates(&["amazon.de=fast"], None).is_err());
        assert!(parse_rates(&["amazon.xx=1/s"], None).is_err());
    }
}
