//! Marketplaces from domains, hosts and URLs; their currencies.

use wasm_core::marketplace::{Currency, Marketplace};

#[track_caller]
fn check_host(host: &str, expected: Option<&str>) {
    assert_eq!(
        Marketplace::from_host(host).map(Marketplace::domain),
        expected,
        "from_host({host:?})"
    );
}

#[track_caller]
fn check_url(url: &str, expected: Option<&str>) {
    assert_eq!(
        Marketplace::from_url(url).map(Marketplace::domain),
        expected,
        "from_url({url:?})"
    );
}

#[test]
fn every_protocol_marketplace_with_its_currency() {
    let expected = [
        ("amazon.com", "USD", 2),
        ("amazon.co.uk", "GBP", 2),
        ("amazon.de", "EUR", 2),
        ("amazon.fr", "EUR", 2),
        ("amazon.it", "EUR", 2),
        ("amazon.es", "EUR", 2),
        ("amazon.nl", "EUR", 2),
        ("amazon.se", "SEK", 2),
        ("amazon.pl", "PLN", 2),
        ("amazon.com.be", "EUR", 2),
        ("amazon.ca", "CAD", 2),
        ("amazon.com.mx", "MXN", 2),
        ("amazon.com.br", "BRL", 2),
        ("amazon.co.jp", "JPY", 0),
        ("amazon.in", "INR", 2),
        ("amazon.com.au", "AUD", 2),
        ("amazon.sg", "SGD", 2),
        ("amazon.ae", "AED", 2),
        ("amazon.sa", "SAR", 2),
        ("amazon.com.tr", "TRY", 2),
        ("amazon.eg", "EGP", 2),
    ];
    let all: Vec<&str> = Marketplace::all().iter().map(|m| m.domain()).collect();
    let want: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(all, want);
    for (domain, code, exp) in expected {
        let m = Marketplace::from_domain(domain).expect(domain);
        assert_eq!(m.domain(), domain);
        assert_eq!(m.to_string(), domain);
        assert_eq!(m.currency().code(), code, "{domain}");
        assert_eq!(m.currency().exponent(), exp, "{domain}");
        assert_eq!(Currency::from_code(code), Some(m.currency()));
    }
}

#[test]
fn currency_codes() {
    assert_eq!(Currency::from_code("EUR"), Some(Currency::EUR));
    assert_eq!(Currency::from_code("CHF").map(Currency::exponent), Some(2));
    assert_eq!(Currency::from_code("eur"), None);
    assert_eq!(Currency::from_code("XXX"), None);
    assert_eq!(Currency::JPY.exponent(), 0);
    assert_eq!(Currency::EUR.to_string(), "EUR");
}

#[test]
fn domains_are_exact() {
    assert_eq!(
        Marketplace::from_domain("amazon.co.uk"),
        Some(Marketplace::AMAZON_CO_UK)
    );
    assert_eq!(Marketplace::from_domain("www.amazon.co.uk"), None);
    assert_eq!(Marketplace::from_domain("Amazon.co.uk"), None);
    assert_eq!(Marketplace::from_domain("amazon.co.uk."), None);
    assert_eq!(Marketplace::from_domain(""), None);
}

#[test]
fn hosts() {
    check_host("www.amazon.co.uk", Some("amazon.co.uk"));
    check_host("amazon.co.uk", Some("amazon.co.uk"));
    check_host("smile.amazon.com", Some("amazon.com"));
    check_host("amazon.de", Some("amazon.de"));
    check_host("m.amazon.de", Some("amazon.de"));
    check_host("www.m.amazon.co.jp", Some("amazon.co.jp"));
    check_host("AMAZON.DE.", Some("amazon.de"));
    check_host("WWW.Amazon.Com.Br", Some("amazon.com.br"));
    check_host("www.amazon.com:443", Some("amazon.com"));
    check_host("amazon.de.:8080", Some("amazon.de"));
    check_host(" www.amazon.in ", Some("amazon.in"));
    check_host("www.amazon.com.au", Some("amazon.com.au"));
    check_host("www.amazon.com.tr", Some("amazon.com.tr"));
    check_host("www.amazon.eg", Some("amazon.eg"));
    check_host("amazon.com.be", Some("amazon.com.be"));
    // Not retail stores, or not Amazon at all.
    check_host("aws.amazon.com", None);
    check_host("sellercentral.amazon.de", None);
    check_host("amazon.com.evil.example", None);
    check_host("evilamazon.com", None);
    check_host("www.amazon.cn", None);
    check_host("amazon", None);
    check_host("", None);
    check_host(":443", None);
    check_host("www.amazon.com:https", None);
    check_host("ｗｗｗ.amazon.com", None);
}

#[test]
fn urls() {
    check_url(
        "https://www.amazon.de/Gastroback-42429/dp/B000LQXC2Q/ref=sr_1_1",
        Some("amazon.de"),
    );
    check_url(
        "http://amazon.co.jp/-/en/dp/B07WXL5YPW",
        Some("amazon.co.jp"),
    );
    check_url("HTTPS://WWW.AMAZON.COM/dp/B0057OC5O8", Some("amazon.com"));
    check_url(
        "https://smile.amazon.com/gp/product/B0011UCPM4",
        Some("amazon.com"),
    );
    check_url("https://www.amazon.com.br?tag=x", Some("amazon.com.br"));
    check_url("https://www.amazon.es#top", Some("amazon.es"));
    check_url("https://www.amazon.fr:443/dp/B01MUGXRT9", Some("amazon.fr"));
    check_url(
        "https://user:pw@www.amazon.it/dp/B01MUGXRT9",
        Some("amazon.it"),
    );
    check_url("//www.amazon.nl/dp/B01MUGXRT9", Some("amazon.nl"));
    check_url("www.amazon.se/dp/B01MUGXRT9", Some("amazon.se"));
    check_url("amazon.pl", Some("amazon.pl"));
    // The host is what counts, not text elsewhere in the URL.
    check_url("https://evil.example/www.amazon.com/dp/B0057OC5O8", None);
    check_url("https://www.amazon.com.evil.example/dp/B0057OC5O8", None);
    check_url("https://evil.example@", None);
    check_url("https://www.amazon.com@evil.example/dp/B0057OC5O8", None);
    check_url("https://evil.example#@www.amazon.com/", None);
    check_url("https://evil.example?@www.amazon.com/", None);
    // Browsers read a backslash as a slash in http(s) URLs.
    check_url("https://www.amazon.com\\@evil.example/", Some("amazon.com"));
    check_url("ftp://www.amazon.com/dp/B0057OC5O8", None);
    check_url("javascript:alert(1)//www.amazon.com", None);
    check_url("mailto:someone@amazon.de", None);
    check_url("/dp/B0057OC5O8", None);
    check_url("", None);
    check_url("https://", None);
}

#[test]
fn serde_as_wire_strings() {
    let m = Marketplace::AMAZON_CO_UK;
    assert_eq!(
        serde_json::to_string(&m).expect("serialise"),
        "\"amazon.co.uk\""
    );
    let back: Marketplace = serde_json::from_str("\"amazon.co.uk\"").expect("deserialise");
    assert_eq!(back, m);
    assert!(serde_json::from_str::<Marketplace>("\"www.amazon.co.uk\"").is_err());
    assert!(serde_json::from_str::<Marketplace>("\"Amazon.co.uk\"").is_err());
    assert_eq!(
        serde_json::to_string(&Currency::JPY).expect("serialise"),
        "\"JPY\""
    );
    let c: Currency = serde_json::from_str("\"BRL\"").expect("deserialise");
    assert_eq!(c, Currency::BRL);
    assert!(serde_json::from_str::<Currency>("\"brl\"").is_err());
}

#[test]
fn number_formats_are_consistent() {
    for m in Marketplace::all() {
        let f = m.number_format();
        assert_ne!(f.decimal, f.group, "{m}");
        assert!(matches!(f.decimal, '.' | ','), "{m}");
        assert!(!f.symbol.is_empty(), "{m}");
    }
    assert!(Marketplace::AMAZON_IN.number_format().indian_grouping);
    assert!(Marketplace::AMAZON_FR.number_format().groups_with_space());
    assert!(!Marketplace::AMAZON_DE.number_format().groups_with_space());
}
