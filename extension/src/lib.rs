//! The extension's Rust side, compiled to WebAssembly and loaded by the
//! content script (live-DOM extraction) and the service worker (HTML
//! extraction for pages whose CSP blocks wasm in the content script,
//! keys, proof of work, signing). The same module carries the UI
//! (`pricewatch-ui`'s `mount_overlay` and `mount_popup`, re-exported here)
//! for the overlay, its iframe fallback and the popup.
//!
//! Everything crosses the JS boundary as strings (JSON) and byte arrays:
//! the JS side stays thin and the shapes are tested natively here. No
//! function keeps state: the service worker holds the key seed in
//! IndexedDB and passes it in for each signature (it may be killed at any
//! time, so nothing may live in wasm memory between events).
//!
//! Errors are returned as `Err(String)` (a thrown JS string) with a
//! readable message; nothing here panics on input.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_core::marketplace::Marketplace;
use wasm_core::protocol::{
    b64u_encode, normalize_title, pow_solve, sign_request as core_sign_request, Keypair,
    Observation, Registration, Report, ReportMeta, KEY_LEN, NONCE_LEN,
};
use wasm_core::types::{Availability, Condition, Seller};

// The UI's entry points (pricewatch-ui, Leptos) live in this same wasm
// module: the overlay and the popup import `pkg/` too. One module instead
// of two keeps a single copy of std, serde_json, wasm-core and the
// wasm-bindgen runtime (the package's wasm budget is 300 KB gzipped).
#[cfg(target_arch = "wasm32")]
pub use pricewatch_ui::{mount_overlay, mount_popup};

/// The version of the extension's core, for the service worker's marker
/// and the `extractor` field of report metadata.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Runs the extraction rules on the live document of the current page
/// (content script, normal path) and returns the [`wasm_core::extract::Extraction`] as JSON.
/// `url` is `location.href`: it decides ASIN and marketplace.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
pub fn extract_live(url: &str) -> Result<String, String> {
    let page = wasm_core::dom::DomPage::current().ok_or("no document in this context")?;
    to_json(&wasm_core::extract::extract(&page, Some(url)))
}

/// A small product page in the layouts the rules read most (title, core
/// price block, availability, seller, buy box, structured prices), for
/// [`warm_up`].
#[cfg(target_arch = "wasm32")]
const WARM_UP_PAGE: &str = r#"<!doctype html><html><head><title>Warm-up</title>
<link rel="canonical" href="https://www.amazon.com/x/dp/B000000000"></head><body>
<div id="dp"><div id="centerCol"><span id="productTitle"> Warm-up kettle </span>
<div id="corePriceDisplay_desktop_feature_div"><span class="a-price priceToPay"><span class="a-offscreen">$12.34</span>
<span aria-hidden="true"><span class="a-price-symbol">$</span><span class="a-price-whole">12<span class="a-price-decimal">.</span></span><span class="a-price-fraction">34</span></span></span></div>
<span id="priceblock_ourprice">$12.34</span></div>
<div id="rightCol"><div id="buybox"><div id="availability"><span>In Stock</span><script>var a = 1;</script></div>
<div id="merchant-info">Ships from and sold by Amazon.com.</div>
<input type="hidden" id="attach-base-product-price" value="12.34">
<div class="twister-plus-buying-options-price-data">[{"displayPrice":"$12.34","integerValue":"12","fractionalValue":"34","buyingOptionType":"NEW"}]</div>
<input id="add-to-cart-button" type="submit"></div></div></div></body></html>"#;

/// Runs the live-DOM rules once on a small built-in page parsed into a
/// separate inert document, and returns how many offers they found. The
/// content script calls it right after the module is instantiated: the
/// browser compiles wasm functions lazily on their first call, and that
/// one-off cost belongs to module start, not to the first page's
/// extraction. (Judgement call: a separate document, so nothing of the
/// real page, its parsed-selector cache included, is touched or warmed.)
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen]
pub fn warm_up() -> Result<usize, String> {
    let page = wasm_core::dom::DomPage::parse(WARM_UP_PAGE).ok_or("DOMParser is not available")?;
    let extraction =
        wasm_core::extract::extract(&page, Some("https://www.amazon.com/dp/B000000000"));
    // Serialised as extract_live does, so that path is compiled too.
    to_json(&extraction)?;
    Ok(extraction.offers.len())
}

/// Runs the same rules on a page's HTML text (service worker, fallback
/// path) and returns the [`wasm_core::extract::Extraction`] as JSON.
#[wasm_bindgen]
pub fn extract_page_html(html: &str, url: &str) -> Result<String, String> {
    let url = (!url.is_empty()).then_some(url);
    to_json(&wasm_core::extract::extract_html(html, url))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("serialising: {e}"))
}

fn keypair(seed: &[u8]) -> Result<Keypair, String> {
    let seed: [u8; KEY_LEN] = seed
        .try_into()
        .map_err(|_| format!("a key seed is {KEY_LEN} bytes, got {}", seed.len()))?;
    Ok(Keypair::from_seed(&seed))
}

fn nonce_b64u(nonce: &[u8]) -> Result<String, String> {
    if nonce.len() != NONCE_LEN {
        return Err(format!("a nonce is {NONCE_LEN} bytes, got {}", nonce.len()));
    }
    Ok(b64u_encode(nonce))
}

/// JS numbers carry times; they must be whole, non-negative and exact.
fn millis(t: f64) -> Result<i64, String> {
    if t.is_finite() && t >= 0.0 && t.fract() == 0.0 && t <= 9_007_199_254_740_991.0 {
        // Judgement call: the one float in this crate is the JS clock
        // (`Date.now()`, an integer-valued double); it is checked to be a
        // whole number in the exact range before the conversion.
        #[allow(clippy::cast_possible_truncation)]
        Ok(t as i64)
    } else {
        Err(format!("not a time in Unix milliseconds: {t}"))
    }
}

/// The public key (`b64u`) of a 32-byte seed.
#[wasm_bindgen]
pub fn public_key(seed: &[u8]) -> Result<String, String> {
    Ok(keypair(seed)?.public_b64u())
}

/// One slice of the proof of work: tries counters `start .. start + iters`
/// and returns the `pow` found, or `undefined`. The service worker calls it
/// in slices and yields between them, so it never freezes.
#[wasm_bindgen]
pub fn pow_slice(key: &str, difficulty: u32, start: u32, iters: u32) -> Option<String> {
    pow_solve(key, difficulty, u64::from(start), u64::from(iters))
}

/// The `POST /v1/keys` body for a solved `pow`, as JSON.
#[wasm_bindgen]
pub fn registration_json(seed: &[u8], pow: &str) -> Result<String, String> {
    to_json(&Registration::new(&keypair(seed)?, pow))
}

/// One offer to report, as the content script / fallback extraction found
/// it (field names as in [`Observation`]; no key, time or nonce yet).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    /// ASIN of the page.
    pub asin: String,
    /// Marketplace domain.
    pub marketplace: String,
    /// Offer condition.
    pub condition: Condition,
    /// Price in minor units, `null` when none.
    pub price_minor: Option<u64>,
    /// Currency code; `null` means the marketplace's own.
    #[serde(default)]
    pub currency: Option<String>,
    /// Availability.
    pub availability: Availability,
    /// Seller.
    pub seller: Seller,
    /// Title as shown (normalised here).
    #[serde(default)]
    pub title: Option<String>,
    /// The extraction rule (report meta).
    #[serde(default)]
    pub rule: Option<String>,
}

/// Builds and signs one report (PROTOCOL.md §1) from an [`OfferInput`]
/// JSON, the key seed, `observed_at` (`Date.now()`) and 16 random nonce
/// bytes. Returns the report JSON, meta `{"extractor","rule"}` included.
#[wasm_bindgen]
pub fn sign_report(
    seed: &[u8],
    offer_json: &str,
    observed_at: f64,
    nonce: &[u8],
) -> Result<String, String> {
    let kp = keypair(seed)?;
    let offer: OfferInput = serde_json::from_str(offer_json).map_err(|e| format!("offer: {e}"))?;
    let report = build_report(&kp, offer, millis(observed_at)?, &nonce_b64u(nonce)?)?;
    to_json(&report)
}

fn build_report(
    kp: &Keypair,
    offer: OfferInput,
    observed_at: i64,
    nonce: &str,
) -> Result<Report, String> {
    let currency = match offer.currency {
        Some(c) => c,
        None => Marketplace::from_domain(&offer.marketplace)
            .map(|m| m.currency().code().to_string())
            .ok_or_else(|| format!("unknown marketplace {:?}", offer.marketplace))?,
    };
    let obs = Observation {
        key: kp.public_b64u(),
        asin: offer.asin,
        marketplace: offer.marketplace,
        condition: offer.condition,
        price_minor: offer.price_minor,
        currency,
        availability: offer.availability,
        seller: offer.seller,
        title: normalize_title(offer.title.as_deref().unwrap_or_default()),
        observed_at,
        nonce: nonce.to_string(),
    };
    let mut report = obs
        .into_report(kp)
        .map_err(|e| format!("observation: {e}"))?;
    report.meta = Some(ReportMeta {
        extractor: Some(core_version()),
        rule: offer.rule,
    });
    Ok(report)
}

/// The four PROTOCOL.md §3 headers of a signed request, as a JSON object
/// (header name to value).
#[wasm_bindgen]
pub fn sign_request(
    seed: &[u8],
    method: &str,
    path_and_query: &str,
    timestamp: f64,
    nonce: &[u8],
    body: &[u8],
) -> Result<String, String> {
    let kp = keypair(seed)?;
    let timestamp = millis(timestamp)?;
    let nonce = nonce_b64u(nonce)?;
    let sig = core_sign_request(&kp, method, path_and_query, timestamp, &nonce, body);
    to_json(&serde_json::json!({
        "X-Pricewatch-Key": kp.public_b64u(),
        "X-Pricewatch-Timestamp": timestamp.to_string(),
        "X-Pricewatch-Nonce": nonce,
        "X-Pricewatch-Signature": sig,
    }))
}

/// The offers of an extraction JSON (as [`extract_page_html`] returns it)
/// that can be reported, as a JSON array of [`OfferInput`]-shaped objects:
/// only product pages with an ASIN and a marketplace; each offer with the
/// page's title. Kept in Rust so both paths report alike.
#[wasm_bindgen]
pub fn reportable_offers(extraction_json: &str) -> Result<String, String> {
    let ex: ExtractionIn =
        serde_json::from_str(extraction_json).map_err(|e| format!("extraction: {e}"))?;
    to_json(&offers_of(&ex))
}

/// The parts of an [`wasm_core::extract::Extraction`] JSON that reporting reads.
#[derive(Debug, Deserialize)]
struct ExtractionIn {
    page: String,
    asin: Option<String>,
    marketplace: Option<String>,
    title: Option<String>,
    offers: Vec<OfferIn>,
}

#[derive(Debug, Deserialize)]
struct OfferIn {
    condition: Condition,
    price_minor: Option<u64>,
    currency: Option<String>,
    availability: Availability,
    seller: Seller,
    rule: String,
}

#[derive(Debug, Serialize)]
struct OfferOut<'a> {
    asin: &'a str,
    marketplace: &'a str,
    condition: Condition,
    price_minor: Option<u64>,
    currency: Option<&'a str>,
    availability: Availability,
    seller: Seller,
    title: Option<&'a str>,
    rule: &'a str,
}

fn offers_of(ex: &ExtractionIn) -> Vec<OfferOut<'_>> {
    let (Some(asin), Some(marketplace)) = (ex.asin.as_deref(), ex.marketplace.as_deref()) else {
        return Vec::new();
    };
    if ex.page != "product" {
        return Vec::new();
    }
    ex.offers
        .iter()
        .map(|o| OfferOut {
            asin,
            marketplace,
            condition: o.condition,
            price_minor: o.price_minor,
            currency: o.currency.as_deref(),
            availability: o.availability,
            seller: o.seller,
            title: ex.title.as_deref(),
            rule: &o.rule,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [7; 32];

    fn offer(price: Option<u64>) -> String {
        serde_json::json!({
            "asin": "B0PWTEST01", "marketplace": "amazon.de", "condition": "new",
            "price_minor": price, "currency": null, "availability": "in_stock",
            "seller": "amazon", "title": "  Echo \n Dot ", "rule": "core_price"
        })
        .to_string()
    }

    #[test]
    fn signed_report_verifies_and_carries_meta() {
        let json =
            sign_report(&SEED, &offer(Some(4999)), 1_763_800_000_000.0, &[1; 16]).expect("signs");
        let report = Report::from_json(&json).expect("parses strictly");
        report.verify().expect("signature verifies");
        assert_eq!(report.obs.key, public_key(&SEED).expect("key"));
        assert_eq!(report.obs.price_minor, Some(4999));
        assert_eq!(report.obs.currency, "EUR");
        assert_eq!(report.obs.title, "Echo Dot");
        assert_eq!(report.obs.observed_at, 1_763_800_000_000);
        let meta = report.meta.expect("meta");
        assert_eq!(meta.rule.as_deref(), Some("core_price"));
        assert_eq!(meta.extractor.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn no_price_is_null() {
        let json = sign_report(&SEED, &offer(None), 1.0, &[2; 16]).expect("signs");
        let v: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert!(v["obs"]["price_minor"].is_null());
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        assert!(sign_report(&[1; 31], &offer(Some(1)), 1.0, &[0; 16]).is_err());
        assert!(sign_report(&SEED, &offer(Some(1)), 1.0, &[0; 15]).is_err());
        assert!(sign_report(&SEED, &offer(Some(1)), 1.5, &[0; 16]).is_err());
        assert!(sign_report(&SEED, &offer(Some(1)), -1.0, &[0; 16]).is_err());
        assert!(sign_report(&SEED, &offer(Some(1)), f64::NAN, &[0; 16]).is_err());
        assert!(sign_report(&SEED, "{}", 1.0, &[0; 16]).is_err());
        let bad_asin = offer(Some(1)).replace("B0PWTEST01", "b0pwtest01");
        assert!(sign_report(&SEED, &bad_asin, 1.0, &[0; 16]).is_err());
        assert!(reportable_offers("nope").is_err());
    }

    #[test]
    fn proof_of_work_and_registration_verify() {
        let key = public_key(&SEED).expect("key");
        let mut start = 0;
        let pow = loop {
            if let Some(p) = pow_slice(&key, 8, start, 64) {
                break p;
            }
            start += 64;
            assert!(start < 1 << 20, "no solution found");
        };
        let reg: Registration =
            serde_json::from_str(&registration_json(&SEED, &pow).expect("json")).expect("parses");
        reg.verify(8).expect("registration verifies");
    }

    #[test]
    fn signed_request_headers_verify() {
        let headers: serde_json::Value = serde_json::from_str(
            &sign_request(&SEED, "DELETE", "/v1/me", 1_000.0, &[3; 16], b"").expect("signs"),
        )
        .expect("json");
        let h = |n: &str| headers[n].as_str().expect("header").to_string();
        wasm_core::protocol::verify_request(
            &h("X-Pricewatch-Key"),
            "DELETE",
            "/v1/me",
            1_000,
            &h("X-Pricewatch-Nonce"),
            b"",
            &h("X-Pricewatch-Signature"),
        )
        .expect("verifies");
        assert_eq!(h("X-Pricewatch-Timestamp"), "1000");
    }

    #[test]
    fn reportable_offers_come_from_product_pages_only() {
        let html = r#"<html><head><link rel="canonical" href="https://www.amazon.de/x/dp/B0PWTEST01"></head><body><div id="dp"><span id="productTitle">Echo</span>
<div id="corePriceDisplay_desktop_feature_div"><span class="a-price priceToPay"><span class="a-offscreen">49,99 €</span></span></div>
<div id="availability"><span>Auf Lager</span></div></div></body></html>"#;
        let ex = extract_page_html(html, "https://www.amazon.de/dp/B0PWTEST01").expect("runs");
        let offers: serde_json::Value =
            serde_json::from_str(&reportable_offers(&ex).expect("offers")).expect("json");
        assert_eq!(offers[0]["asin"], "B0PWTEST01", "{ex}");
        assert_eq!(offers[0]["marketplace"], "amazon.de");
        assert_eq!(offers[0]["price_minor"], 4999, "{ex}");
        // The offer JSON is what sign_report takes.
        let report = sign_report(&SEED, &offers[0].to_string(), 5.0, &[4; 16]).expect("signs");
        Report::from_json(&report)
            .expect("parses")
            .verify()
            .expect("verifies");

        let captcha = extract_page_html(
            "<html><body><form action=\"/errors/validateCaptcha\"><input id=captchacharacters></form></body></html>",
            "https://www.amazon.de/dp/B0PWTEST01",
        )
        .expect("runs");
        assert_eq!(reportable_offers(&captcha).expect("offers"), "[]");
    }
}
