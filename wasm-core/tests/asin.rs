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
    // Sponsored/redirect links: the product path percent-encoded in url=.
    check_url(
        "https://www.amazon.com/sspa/click?ie=UTF8&spc=MTo&url=%2FKettle-Stainless%2Fdp%2FB00N150YS4%2Fref%3Dsr_1_1_sspa%3Fpsc%3D1&sp_csd=d2lk",
        Some("B00N150YS4"),
    );
    check_url(
        "https://www.amazon.de/gp/slredirect/picassoRedirect.html?url=%2Fgp%2Fproduct%2FB07JWMTL6G",
        Some("B07JWMTL6G"),
    );
    check_url(
        "https://www.amazon.com/sspa/click?url=%2Fdp%2FB00N150YS4%ZZ",
        None,
    );
    check_url(
        "https://www.amazon.com/sspa/click?url=%2Fdp%2FB00N150YS4%2",
        None,
    );
    check_url("https://www.amazon.com/sspa/click?url=%E2%82", None);
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

#[cfg(not(target_arch = "wasm32"))]
mod prop {
    use proptest::prelude::*;
    use wasm_core::asin::Asin;
    use wasm_core::marketplace::Marketplace;

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = Asin::from_url(&s);
            let _ = Asin::parse(&s);
            let _ = Marketplace::from_url(&s);
            let _ = Marketplace::from_host(&s);
        }

        #[test]
        fn product_urls_round_trip(
            asin in "[0-9A-Z]{10}",
            slug in "[a-zA-Z0-9-]{0,24}",
            m in 0usize..21,
            shape in 0usize..4,
        ) {
            let host = format!("www.{}", Marketplace::all()[m].domain());
            let url = match shape {
                0 => format!("https://{host}/{slug}/dp/{asin}/ref=sr_1_1?th=1"),
                1 => format!("https://{host}/gp/product/{asin}?psc=1"),
                2 => format!("https://{host}/-/en/{slug}/dp/{asin}"),
                _ => format!("https://{host}/gp/aw/d/{asin}#reviews"),
            };
            prop_assert_eq!(Asin::from_url(&url).map(|a| a.to_string()), Some(asin), "{}", url);
            prop_assert_eq!(Marketplace::from_url(&url), Some(Marketplace::all()[m]));
        }
    }
}
