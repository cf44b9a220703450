//! The parser, the selector engine and the extraction rules never panic,
//! whatever the input: random bytes, random strings, and random sequences
//! of HTML-ish fragments (which reach far more tokenizer and tree-builder
//! states than uniform noise). Native only (proptest does not build for
//! wasm32 here).

#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use wasm_core::extract::extract_html;
use wasm_core::html::{Document, Selector};

/// Fragments chosen to hit edge cases: truncated tags and references,
/// raw-text elements, implied end tags, foreign content, Amazon ids.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<!--",
    "-->",
    "<!",
    "<?",
    "<![CDATA[",
    "]]>",
    "&",
    "&#",
    "&#x",
    "&amp",
    "&euro;",
    "&#128;",
    "&#xD800;",
    "&#99999999999999;",
    ";",
    "=",
    "\"",
    "'",
    " ",
    "\n",
    "<div",
    "<div id=a>",
    "</div>",
    "<p>",
    "<li>",
    "<td>",
    "<tr>",
    "<table>",
    "</table>",
    "<option>",
    "<dd>",
    "<script>",
    "</script>",
    "<style>",
    "</style",
    "<title>",
    "<textarea>",
    "<noscript>",
    "<plaintext>",
    "<svg>",
    "<path/>",
    "</svg>",
    "<body>",
    "</body>",
    "<html>",
    "<br/>",
    "<input type=hidden id=ASIN value=B000000001>",
    "<span id=productTitle>",
    "<span id=priceblock_ourprice>",
    "$12.99",
    "EUR 1.234,56",
    "¥32,970",
    "R$ 19,90",
    "€",
    "<div id=corePriceDisplay_desktop_feature_div><span class='a-price priceToPay'>",
    "<span class=a-offscreen>",
    "<span class=a-price-whole>",
    "9.",
    "<span class=a-price-fraction>",
    "<div id=usedOnlyBuybox>",
    "<div id=partialStateBuybox>",
    "<div id=unqualifiedBuyBox>",
    "<div class=twister-plus-buying-options-price-data>",
    "{\"displayPrice\":",
    "[{",
    "}]",
    "<form action=/errors/validateCaptcha>",
    "<link rel=canonical href=https://www.amazon.de/dp/B0>",
    "<script>var ue_pti = '",
    "ue_sn = \"www.amazon.com\"",
    "é",
    "😀",
    "\u{0}",
];

fn html_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => (0..FRAGMENTS.len()).prop_map(|i| FRAGMENTS[i].to_string()),
            1 => ".{0,8}",
        ],
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_and_extract_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let text = String::from_utf8_lossy(&bytes);
        let doc = Document::parse(&text);
        let _ = doc.text_content(doc.root());
        let _ = extract_html(&text, Some("https://www.amazon.com/dp/B000000001"));
    }

    #[test]
    fn parse_and_extract_html_like(html in html_like(), url in prop::option::of(".{0,40}")) {
        let doc = Document::parse(&html);
        // Tree invariants: every node's parent precedes it and contains it.
        for n in doc.descendants(doc.root()) {
            let p = doc.parent(n).expect("non-root nodes have a parent");
            prop_assert!(p < n);
            prop_assert!(doc.contains(p, n));
        }
        let got = extract_html(&html, url.as_deref());
        if let Some(t) = &got.title {
            prop_assert!(t.chars().count() <= 400);
        }
    }

    #[test]
    fn selector_parser_never_panics(s in ".{0,40}", scope_html in html_like()) {
        if let Ok(sel) = Selector::parse(&s) {
            let doc = Document::parse(&scope_html);
            let _ = doc.select(None, &sel);
        }
    }

    #[test]
    fn selector_fragments_never_panic(parts in prop::collection::vec(
        prop::sample::select(vec!["div", "#a", ".b", "[c]", "[d=e]", "[f^='g']", "[h*=\"i\"]",
            "[j$=k]", "[l~=m]", "*", " ", ">", ",", ":not(", ")", "[", "]", "\\", "'", "+", ":"]),
        0..12,
    )) {
        let s = parts.concat();
        let doc = Document::parse("<div id=a class=b c d=e><p f=gg h=xiy j=kk l='m n'></p></div>");
        if let Ok(sel) = Selector::parse(&s) {
            let _ = doc.select(None, &sel);
        }
    }
}
