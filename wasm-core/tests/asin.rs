//! ASIN parsing and ASIN-from-URL, every URL shape.

use wasm_core::asin::Asin;

#[track_caller]
fn check_url(url: &str, expected: Option<&str>) {
    assert_eq!(
        Asin::from_url(url).map(|a| a.to_string()),
        expected.map(str::to_owned),
        "Asin::from_url({url:?})"
    );
}

#[test]
fn parse() {
    let a = Asin::parse("B08N5WRWNW").expect("valid");
    assert_eq!(a.as_str(), "B08N5WRWNW");
    assert_eq!(a.to_string(), "B08N5WRWNW");
    assert_eq!(
        Asin::parse("  B08N5WRWNW\n")
            .map(|a| a.to_string())
            .as_deref(),
        Some("B08N5WRWNW")
    );
    // ISBN-10 ASINs, with and without a check digit X.
    assert!(Asin::parse("0356510344").is_some());
    assert!(Asin::parse("8565042472").is_some());
    assert!(Asin::parse("080442957X").is_some());
    for bad in [
        "",
        "B08N5WRWN",
        "B08N5WRWNWX",
        "b08n5wrwnw",
        "B08N5WRWN!",
        "B08N5 WRWN",
        "B08N5WRWNＷ",
        "ＢＢＢＢＢＢＢＢＢＢ",
    ] {
        assert_eq!(Asin::parse(bad), None, "{bad:?}");
    }
    assert_eq!(
        "B08N5WRWNW"
            .parse::<Asin>()
            .map(|a| a.to_string())
            .ok()
            .as_deref(),
        Some("B08N5WRWNW")
    );
    assert!("nope".parse::<Asin>().is_err());
}

#[test]
fn ordering_and_serde() {
    let a = Asin::parse("B000LQXC2Q").expect("valid");
    let b = Asin::parse("B08N5WRWNW").expect("valid");
    assert!(a < b);
    assert_eq!(
        serde_json::to_string(&a).expect("serialise"),
        "\"B000LQXC2Q\""
    );
    let back: Asin = serde_json::from_str("\"B000LQXC2Q\"").expect("deserialise");
    assert_eq!(back, a);
    assert!(serde_json::from_str::<Asin>("\"b000lqxc2q\"").is_err());
    assert!(serde_json::from_str::<Asin>("\" B000LQXC2Q\"").is_err());
    assert!(serde_json::from_str::<Asin>("\"B000LQXC2\"").is_err());
    assert!(serde_json::from_str::<Asin>("42").is_err());
}

#[test]
fn url_shapes() {
    check_url("https://www.amazon.com/dp/B0057OC5O8", Some("B0057OC5O8"));
    check_url("https://www.amazon.com/dp/B0057OC5O8/", Some("B0057OC5O8"));
    check_url(
        "https://www.amazon.de/Gastroback-42429-Design-Wasserkocher-Advanced/dp/B000LQXC2Q/ref=sr_1_1?ie=UTF8&qid=1",
        Some("B000LQXC2Q"),
    );
    check_url(
        "https://www.amazon.co.jp/-/en/dp/B07WXL5YPW",
        Some("B07WXL5YPW"),
    );
    check_url(
        "https://www.amazon.co.jp/-/en/Nintendo-Switch/dp/B07WXL5YPW?th=1",
        Some("B07WXL5YPW"),
    );
    check_url(
        "https://www.amazon.com/gp/product/B0011UCPM4",
        Some("B0011UCPM4"),
    );
    check_url(
        "https://www.amazon.com/gp/product/B0011UCPM4/ref=ppx_yo_dt_b_asin_title",
        Some("B0011UCPM4"),
    );
    check_url(
        "https://www.amazon.com/gp/aw/d/B07G2L3JMM",
        Some("B07G2L3JMM"),
    );
    check_url(
        "https://m.amazon.de/gp/aw/d/B07JWMTL6G/ref=mp_s_a_1_1",
        Some("B07JWMTL6G"),
    );
    check_url(
        "https://www.amazon.com/gp/aw/ol/B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/product/B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/gp/offer-listing/B00N150YS4?condition=new",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/product-reviews/B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/exec/obidos/ASIN/B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/o/ASIN/B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/dp/B00N150YS4?psc=1#customerReviews",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/dp/B00N150YS4;ref=x",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/gp/cart/view.html?ASIN=B00N150YS4&qty=1",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/gp/offer-listing?ie=UTF8&asin=B00N150YS4",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.com/s?k=kettle&asin=B00N150YS4",
        Some("B00N150YS4"),
    );
    // ISBN-10 ASINs.
    check_url("https://www.amazon.co.uk/dp/1849757097", Some("1849757097"));
    check_url(
        "https://www.amazon.com.br/dp/8565042472/ref=x",
        Some("8565042472"),
    );
    check_url("https://www.amazon.com/dp/080442957x", Some("080442957X"));
    // Lower case in a product path: Amazon accepts it, so do we (upper-cased).
    check_url("https://www.amazon.com/dp/b07g2l3jmm", Some("B07G2L3JMM"));
    check_url(
        "https://www.amazon.com/GP/PRODUCT/b07g2l3jmm",
        Some("B07G2L3JMM"),
    );
    // ... but not in the asin= query value.
    check_url(
        "https://www.amazon.com/gp/cart/view.html?asin=b07g2l3jmm",
        None,
    );
    // Path wins over the query.
    check_url(
        "https://www.amazon.com/dp/B0057OC5O8?asin=B00N150YS4",
        Some("B0057OC5O8"),
    );
    // Relative and scheme-less URLs (canonical hrefs, amzn-r values).
    check_url(
        "/Ubiquiti-Security-Gateway-USG-PRO-4-Renewed/dp/B07MC83QR4/",
        Some("B07MC83QR4"),
    );
    check_url("www.amazon.com/dp/B07MC83QR4", Some("B07MC83QR4"));
    // No ASIN.
    check_url("https://www.amazon.com/", None);
    check_url("https://www.amazon.com/dp/", None);
    check_url("https://www.amazon.com/dp/B0057OC5O", None);
    check_url("https://www.amazon.com/dp/B0057OC5O8X", None);
    check_url("https://www.amazon.com/s?k=B0057OC5O8", None);
    check_url("https://www.amazon.com/B0057OC5O8", None);
    check_url("https://www.amazon.com/dp/B0057-OC5O8", None);
    check_url("https://amzn.to/3xYzAbC", None);
    check_url("ftp://www.amazon.com/dp/B0057OC5O8", None);
    check_url("", None);
    check_url("https://www.amazon.com/?asin=", None);
}
