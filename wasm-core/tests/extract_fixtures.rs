//! The project's own small pages, one per layout family, each with the
//! distractors that trap naive extractors (list, strike-through, unit,
//! Subscribe & Save, member-only, shipping, used and other sellers'
//! prices). Written for this project, so a fresh clone tests extraction
//! without the shared corpus.

use wasm_core::extract::{extract_html, Extraction, PageKind};
use wasm_core::types::{Availability, Condition, Seller};

/// What one fixture must yield. `price` is `(minor, currency)` of the
/// first (buy-box) offer, `None` for no price.
struct Case {
    file: &'static str,
    url: Option<&'static str>,
    page: PageKind,
    asin: Option<&'static str>,
    marketplace: Option<&'static str>,
    price: Option<(u64, &'static str)>,
    availability: Availability,
    condition: Condition,
    seller: Seller,
    rule: &'static str,
}

fn load(file: &str) -> String {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn check(case: &Case) -> Result<(), String> {
    let got: Extraction = extract_html(&load(case.file), case.url);
    let mut bad = Vec::new();
    if got.page != case.page {
        bad.push(format!("page {:?}, want {:?}", got.page, case.page));
    }
    if got.asin.as_deref() != case.asin {
        bad.push(format!("asin {:?}, want {:?}", got.asin, case.asin));
    }
    if got.marketplace.as_deref() != case.marketplace {
        bad.push(format!(
            "marketplace {:?}, want {:?}",
            got.marketplace, case.marketplace
        ));
    }
    if case.page != PageKind::Product {
        if !got.offers.is_empty() {
            bad.push(format!("offers on a non-product page: {:?}", got.offers));
        }
    } else {
        match got.offers.first() {
            None => bad.push("no offer".into()),
            Some(o) => {
                let price = o.price_minor.zip(o.currency.clone());
                let want = case.price.map(|(m, c)| (m, c.to_string()));
                if price != want {
                    bad.push(format!("price {price:?}, want {want:?}"));
                }
                if o.availability != case.availability {
                    bad.push(format!(
                        "availability {:?}, want {:?}",
                        o.availability, case.availability
                    ));
                }
                if o.condition != case.condition {
                    bad.push(format!(
                        "condition {:?}, want {:?}",
                        o.condition, case.condition
                    ));
                }
                if o.seller != case.seller {
                    bad.push(format!("seller {:?}, want {:?}", o.seller, case.seller));
                }
                if o.rule != case.rule {
                    bad.push(format!("rule {:?}, want {:?}", o.rule, case.rule));
                }
            }
        }
        if got
            .title
            .as_deref()
            .is_none_or(|t| t.is_empty() || t.contains("  "))
        {
            bad.push(format!("title {:?} (missing or not folded)", got.title));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", case.file, bad.join("; ")))
    }
}

use Availability::*;

const CASES: &[Case] = &[
    // 2015-2019 price block; list price, shipping (full-width yen),
    // points and "New & Used from" are distractors.
    Case {
        file: "priceblock_2017_jp.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B07WXL5YPW"),
        marketplace: Some("amazon.co.jp"),
        price: Some((32970, "JPY")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "priceblock_ourprice",
    },
    // 2019 deal of the day; RRP, savings, unit and Subscribe & Save.
    Case {
        file: "deal_2019_it.html",
        url: Some("https://www.amazon.it/gp/product/B07JWMTL6G?th=1"),
        page: PageKind::Product,
        asin: Some("B07JWMTL6G"),
        marketplace: Some("amazon.it"),
        price: Some((899, "EUR")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "priceblock_dealprice",
    },
    // 2021 transitional; hidden input agrees with the visible price;
    // unit price, S&S and other sellers are distractors.
    Case {
        file: "transitional_2021.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B00N150YS4"),
        marketplace: Some("amazon.com"),
        price: Some((1248, "USD")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "attach_base_product_price",
    },
    // 2022 corePrice table: "De:" strike price and savings.
    Case {
        file: "coreprice_table_2022.html",
        url: Some("https://www.amazon.com.br/dp/B076QFXQK5"),
        page: PageKind::Product,
        asin: Some("B076QFXQK5"),
        marketplace: Some("amazon.com.br"),
        price: Some((43190, "BRL")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "core_price_apex",
    },
    // 2024 corePriceDisplay + apex + buying-options JSON; RRP, Prime
    // upsell, delivery price; a script in #availability says
    // "Currently unavailable" and must not count.
    Case {
        file: "coreprice_display_2024.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B0057OC5O8"),
        marketplace: Some("amazon.co.uk"),
        price: Some((899, "GBP")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "buying_options_json",
    },
    // 2025: empty .a-offscreen in priceToPay, list price offscreen present.
    Case {
        file: "price_to_pay_2025.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B09V366BDY"),
        marketplace: Some("amazon.com"),
        price: Some((998, "USD")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::ThirdParty,
        rule: "core_price_display",
    },
    // Book: buyNewSection; used price and format swatches are distractors.
    Case {
        file: "book_buynew.html",
        url: None,
        page: PageKind::Product,
        asin: Some("349803587X"),
        marketplace: Some("amazon.de"),
        price: Some((1299, "EUR")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "buy_new_offer_price",
    },
    // Kindle: the selected swatch shows Kindle Unlimited 0,00 €; print
    // list price and savings are distractors.
    Case {
        file: "kindle.html",
        url: Some("https://www.amazon.fr/dp/B08PBWPQ16"),
        page: PageKind::Product,
        asin: Some("B08PBWPQ16"),
        marketplace: Some("amazon.fr"),
        price: Some((999, "EUR")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::Amazon,
        rule: "kindle_price",
    },
    // Used-only buy box; delivery price is a distractor.
    Case {
        file: "used_only.html",
        url: None,
        page: PageKind::Product,
        asin: Some("1849757097"),
        marketplace: Some("amazon.co.uk"),
        price: Some((445, "GBP")),
        availability: InStock,
        condition: Condition::Used,
        seller: Seller::ThirdParty,
        rule: "used_only_buybox",
    },
    // New/used accordion with the used row first.
    Case {
        file: "new_used_accordion.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B01DQDZVCO"),
        marketplace: Some("amazon.de"),
        price: Some((1499, "EUR")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::ThirdParty,
        rule: "new_buybox_price",
    },
    // Out of stock: list price and recommendations must not be taken.
    Case {
        file: "out_of_stock.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B000COFFEE"),
        marketplace: Some("amazon.com"),
        price: None,
        availability: OutOfStock,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "out_of_stock",
    },
    // No featured offer: carousel prices must not be taken.
    Case {
        file: "no_featured_offer.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B01MUGXRT9"),
        marketplace: Some("amazon.es"),
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "no_featured_offer",
    },
    // Variation to choose: price range; page markers name the parent,
    // the URL (and ue_pti) the child: the URL wins.
    Case {
        file: "variation.html",
        url: Some("https://www.amazon.com.br/Polo/dp/B09B2SRTB3/ref=x?th=1"),
        page: PageKind::Product,
        asin: Some("B09B2SRTB3"),
        marketplace: Some("amazon.com.br"),
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "variation_to_choose",
    },
    // Without the URL, ue_pti names the requested child.
    Case {
        file: "variation.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B09B2SRTB3"),
        marketplace: Some("amazon.com.br"),
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "variation_to_choose",
    },
    // Prime member price beside the regular price: the regular price.
    Case {
        file: "prime_member.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B0DR8G428S"),
        marketplace: Some("amazon.com"),
        price: Some((4599, "USD")),
        availability: InStock,
        condition: Condition::New,
        seller: Seller::ThirdParty,
        rule: "regular_price_beside_prime",
    },
    // Renewed product on pre-order, thousands separator.
    Case {
        file: "renewed_preorder.html",
        url: None,
        page: PageKind::Product,
        asin: Some("B07MC83QR4"),
        marketplace: Some("amazon.ca"),
        price: Some((123456, "CAD")),
        availability: Preorder,
        condition: Condition::Refurbished,
        seller: Seller::ThirdParty,
        rule: "core_price_display",
    },
    Case {
        file: "captcha.html",
        url: None,
        page: PageKind::Captcha,
        asin: Some("B07MC83QR4"),
        marketplace: Some("amazon.com"),
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "",
    },
    Case {
        file: "not_found.html",
        url: Some("https://www.amazon.co.uk/dp/B0NOTFOUND"),
        page: PageKind::NotFound,
        asin: Some("B0NOTFOUND"),
        marketplace: Some("amazon.co.uk"),
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "",
    },
    Case {
        file: "non_amazon.html",
        url: Some("https://lamps.example/desk-lamp"),
        page: PageKind::Unknown,
        asin: None,
        marketplace: None,
        price: None,
        availability: Unknown,
        condition: Condition::New,
        seller: Seller::Unknown,
        rule: "",
    },
];

#[test]
fn own_fixtures_extract_as_expected() {
    let failures: Vec<String> = CASES.iter().filter_map(|c| check(c).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn price_range_without_partial_buy_box_is_no_price() {
    let html = r#"<span id="productTitle">Shirt</span>
        <div id="corePriceDisplay_desktop_feature_div"><span class="a-price priceToPay"><span class="a-offscreen">$10.99 - $24.99</span></span></div>"#;
    let got = extract_html(html, Some("https://www.amazon.com/dp/B000000001"));
    assert_eq!(got.offers.len(), 1);
    assert_eq!(got.offers[0].price_minor, None);
    assert_eq!(got.offers[0].rule, "variation_to_choose");
}

#[test]
fn structured_and_visible_disagree_visible_wins() {
    let html = r#"<span id="productTitle">Thing</span>
        <input type="hidden" id="attach-base-product-price" value="19.99">
        <span id="priceblock_ourprice">$17.49</span>"#;
    let got = extract_html(html, Some("https://www.amazon.com/dp/B000000001"));
    assert_eq!(got.offers[0].price_minor, Some(1749));
    assert_eq!(got.offers[0].rule, "priceblock_ourprice");
}

#[test]
fn integer_only_hidden_price_is_ignored_unless_no_minor_unit() {
    let html = r#"<span id="productTitle">Livro</span>
        <input type="hidden" id="twister-plus-price-data-price" value="1990">"#;
    let got = extract_html(html, Some("https://www.amazon.com.br/dp/8565042472"));
    assert_eq!(got.offers[0].price_minor, None);
    let got = extract_html(html, Some("https://www.amazon.co.jp/dp/B07WXL5YPW"));
    assert_eq!(got.offers[0].price_minor, Some(1990));
    assert_eq!(got.offers[0].currency.as_deref(), Some("JPY"));
}

#[test]
fn title_is_folded_and_capped() {
    let long = "word ".repeat(200);
    let html = format!("<span id=productTitle>\n  {long}\n</span>");
    let got = extract_html(&html, None);
    let title = got.title.expect("title");
    assert_eq!(title.chars().count(), 400);
    assert!(!title.contains("  "));
}

#[test]
fn json_serialisation_uses_wire_names() {
    let got = extract_html(&load("used_only.html"), None);
    let json = serde_json::to_value(&got).expect("serialisable");
    assert_eq!(json["page"], "product");
    assert_eq!(json["offers"][0]["condition"], "used");
    assert_eq!(json["offers"][0]["availability"], "in_stock");
    assert_eq!(json["offers"][0]["seller"], "third_party");
    assert_eq!(json["offers"][0]["price_minor"], 445);
    assert_eq!(json["offers"][0]["currency"], "GBP");
}

#[test]
fn used_row_is_listed_after_the_buy_box_offer() {
    let got = extract_html(&load("new_used_accordion.html"), None);
    assert_eq!(got.offers.len(), 2, "{:?}", got.offers);
    assert_eq!(got.offers[0].condition, Condition::New);
    assert_eq!(got.offers[0].price_minor, Some(1499));
    assert_eq!(got.offers[1].condition, Condition::Used);
    assert_eq!(got.offers[1].price_minor, Some(1342));
    assert_eq!(got.offers[1].currency.as_deref(), Some("EUR"));
    assert_eq!(got.offers[1].rule, "used_accordion_price");
    // A used-only buy box is not listed twice.
    let got = extract_html(&load("used_only.html"), None);
    assert_eq!(got.offers.len(), 1, "{:?}", got.offers);
}

#[test]
fn a_non_amazon_url_is_ignored_as_a_source() {
    let html = load("book_buynew.html");
    let got = extract_html(&html, Some("http://127.0.0.1:8080/dp/B000000001"));
    assert_eq!(got.page, PageKind::Product);
    assert_eq!(got.asin.as_deref(), Some("349803587X"));
    assert_eq!(got.marketplace.as_deref(), Some("amazon.de"));
    assert_eq!(got.offers[0].price_minor, Some(1299));
}

#[test]
fn scripts_inside_the_buy_box_do_not_count_as_text() {
    let html = r#"<span id="productTitle">T</span><div id="buybox">
        <script>var s = "Sold by Amazon"; var a = "Currently unavailable";</script>
        <span id="priceblock_ourprice">$5.00</span>
        <div id="availability"><script>x = "out of stock"</script>In Stock.</div>
        <div id="merchant-info"><style>.x{}</style>Sold by Widget Co</div></div>"#;
    let got = extract_html(html, Some("https://www.amazon.com/dp/B000000001"));
    let o = &got.offers[0];
    assert_eq!(o.price_minor, Some(500));
    assert_eq!(o.availability, Availability::InStock);
    assert_eq!(o.seller, Seller::ThirdParty);
}

#[test]
fn member_only_headline_price_without_a_regular_row_is_no_price() {
    let html = r#"<span id="productTitle">Charger</span>
        <div id="corePriceDisplay_desktop_feature_div"><span>Prime Member Price</span>
        <span class="a-price priceToPay"><span class="a-offscreen">$35.99</span></span></div>
        <input type="hidden" id="twister-plus-price-data-price" value="35.99">
        <div id="availability">In Stock</div><input id="add-to-cart-button" type="submit">"#;
    let got = extract_html(html, Some("https://www.amazon.com/dp/B0DR8G428S"));
    assert_eq!(got.offers[0].price_minor, None);
    assert_eq!(got.offers[0].rule, "prime_member_only");
}

#[test]
fn page_kinds_serialise_in_snake_case() {
    let got = extract_html(&load("not_found.html"), None);
    let json = serde_json::to_value(&got).expect("serialisable");
    assert_eq!(json["page"], "not_found");
    let got = extract_html(&load("non_amazon.html"), None);
    assert_eq!(serde_json::to_value(&got).expect("json")["page"], "unknown");
}
