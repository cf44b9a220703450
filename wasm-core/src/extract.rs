//! Amazon product-page extraction rules, run over any [`Page`].
//!
//! Output: the page kind, ASIN, marketplace, title and the offers found,
//! the buy-box offer first. Every offer names the rule that produced it,
//! so a layout change shows up as a rule that stops matching.
//!
//! The quality rule: a missing price is bad, a wrong price is much worse.
//! Hence: structured data (buying-options JSON, hidden inputs holding the
//! numeric price) is preferred over visible text; visible-text rules are
//! scoped to elements that only ever hold the buy-box price (never a bare
//! `.a-offscreen` or `.a-color-price` search, which finds list prices,
//! strike-through prices, other sellers, coupons, Subscribe & Save, unit,
//! shipping and add-on prices); price text goes through
//! [`classify_price`], which rejects ranges, unit prices and labelled
//! prices (`List Price:`, `Was:`, ...); and whenever the page says there is
//! no single price to pay (out of stock, no featured offer, a variation
//! still to choose, a member-only price with no regular offer) the offer
//! carries no price.
//!
//! Judgement calls (each also noted where it is made):
//! - ASIN: the URL wins over the page. On a variation page the page's own
//!   markers disagree (canonical link and `input#ASIN` name the parent,
//!   `ue_pti` the requested child); the URL is what the user opened and
//!   what a report is about. Without a URL, `ue_pti` (the requested ASIN)
//!   comes first, then canonical link, `input#ASIN`, `og:url`, `data-asin`
//!   on the product container and the CAPTCHA form's return path.
//! - Marketplace: from the URL; without a URL (or a non-Amazon one) from
//!   the canonical link, `og:url`, `ue_sn` (host), `ue_mid` (marketplace
//!   id), and last from the currency of the price found, when exactly one
//!   marketplace uses that currency (GBP, JPY, BRL, ...; not EUR or USD).
//! - Prime: where a member-only (Prime) price is shown beside a regular
//!   offer, the price everyone pays is the price (the regular offer's).
//!   Member-only with no regular offer: no price.
//! - Variation still to choose (partial buy box, a price range): no price.
//! - Structured data vs visible text: both are read; if both give a price
//!   and they differ, the visible buy-box price is reported with the
//!   structured rule noted as disagreeing (`rule` names the visible
//!   rule). Hidden inputs can lag behind the rendered buy box (deals,
//!   member pricing), the visible buy box is what the buyer pays.
//! - Integer-only structured numbers (`twister-plus-price-data-price` =
//!   `"1990"` on amazon.com.br for R$ 19,90) are ambiguous between major
//!   and minor units; they are used only for currencies without a minor
//!   unit (JPY).
//! - Temporarily out of stock but orderable: availability `out_of_stock`,
//!   the buy-box price kept (it is the price an order is charged).
//! - Kindle e-books: availability `in_stock` (digitally available now).
//! - A URL that is not an Amazon store's is ignored as a source (the page
//!   decides marketplace and ASIN).
//! - Offers after the first: only the used offer of a new/used buy box
//!   (its row header price), seller `unknown`. "New & used from" minimums,
//!   other sellers' lists and carousels are never offers.
//! - Seller: `amazon` when the buy box says the offer is sold by Amazon in
//!   any locale (shipped-by-Amazon alone is fulfilment, not sale),
//!   `third_party` when another merchant sells it, else `unknown`.

use crate::asin::Asin;
use crate::marketplace::{Currency, Marketplace};
use crate::page::{HtmlPage, Page};
use crate::price::{classify_price, parse_decimal, parse_parts, Price, PriceText};
use crate::types::{Availability, Condition, Seller};
use serde::Serialize;

/// What kind of page this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A product detail page.
    Product,
    /// Amazon's robot check.
    Captcha,
    /// Amazon's 404 ("dogs of Amazon") page.
    NotFound,
    /// Anything else.
    Unknown,
}

impl PageKind {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Product => "product",
            PageKind::Captcha => "captcha",
            PageKind::NotFound => "not_found",
            PageKind::Unknown => "unknown",
        }
    }
}

/// One offer on the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    pub condition: Condition,
    /// Price in the currency's minor unit; `None` when the page shows no
    /// single price to pay.
    pub price_minor: Option<u64>,
    /// ISO 4217 code of `price_minor`.
    pub currency: Option<String>,
    pub availability: Availability,
    pub seller: Seller,
    /// Id of the rule that produced the offer.
    pub rule: &'static str,
}

/// Everything extracted from one page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extraction {
    pub page: PageKind,
    pub asin: Option<String>,
    /// Marketplace domain, e.g. `"amazon.de"`.
    pub marketplace: Option<String>,
    pub title: Option<String>,
    /// The buy-box offer first.
    pub offers: Vec<Offer>,
}

/// Parses `html` with [`crate::html`] and runs [`extract`].
pub fn extract_html(html: &str, url: Option<&str>) -> Extraction {
    extract(&HtmlPage::parse(html), url)
}

/// Runs the rules over `page`. `url` is the page's address when known.
pub fn extract<P: Page>(page: &P, url: Option<&str>) -> Extraction {
    let url_mp = url.and_then(Marketplace::from_url);
    // Judgement call: a URL that is not an Amazon store's (a saved copy
    // served from elsewhere, a test server) is ignored as a source;
    // marketplace and ASIN then come from the page, like with no URL.
    let kind = page_kind(page);
    let mut mp = url_mp.or_else(|| marketplace_from_page(page));
    let asin = url
        .filter(|_| url_mp.is_some())
        .and_then(Asin::from_url)
        .or_else(|| asin_from_page(page));
    let (title, offers) = match kind {
        PageKind::Product => {
            let title = title(page);
            let offers = offers(page, mp, title.as_deref());
            (title, offers)
        }
        _ => (None, Vec::new()),
    };
    if mp.is_none() {
        mp = offers
            .iter()
            .filter_map(|o| o.currency.as_deref())
            .find_map(|c| Currency::from_code(c).and_then(marketplace_for_currency));
    }
    Extraction {
        page: kind,
        asin: asin.map(|a| a.as_str().to_string()),
        marketplace: mp.map(|m| m.domain().to_string()),
        title,
        offers,
    }
}

// ---------------------------------------------------------------------
// Small helpers over `Page`.

/// Selects; a selector error is a bug in this file's constants (every one
/// is exercised by the tests), never a consequence of input.
fn sel<P: Page>(page: &P, scope: Option<&P::Node>, selector: &str) -> Vec<P::Node> {
    match page.select(scope, selector) {
        Ok(v) => v,
        Err(e) => {
            debug_assert!(false, "{e}");
            Vec::new()
        }
    }
}

/// The first match ([`Page::first`]: the live DOM stops at it).
fn first<P: Page>(page: &P, scope: Option<&P::Node>, selector: &str) -> Option<P::Node> {
    match page.first(scope, selector) {
        Ok(v) => v,
        Err(e) => {
            debug_assert!(false, "{e}");
            None
        }
    }
}

fn exists<P: Page>(page: &P, scope: Option<&P::Node>, selector: &str) -> bool {
    first(page, scope, selector).is_some()
}

/// Collapses runs of whitespace (including no-break spaces) to one space
/// and trims.
pub fn fold_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Text of `node` without the source of scripts and styles inside it,
/// whitespace folded.
fn visible_text<P: Page>(page: &P, node: &P::Node) -> String {
    let full = page.text(node);
    // Scripts and styles appear in `full` in document order: cut each one
    // out with a single forward pass (linear in the text's length).
    let mut out = String::with_capacity(full.len());
    let mut cursor = 0;
    for hidden in sel(page, Some(node), "script, style") {
        let t = page.text(&hidden);
        if t.is_empty() {
            continue;
        }
        let Some(rest) = full.get(cursor..) else {
            break;
        };
        if let Some(pos) = rest.find(&t) {
            out.push_str(&rest[..pos]);
            out.push(' ');
            cursor += pos + t.len();
        }
    }
    out.push_str(full.get(cursor..).unwrap_or(""));
    fold_ws(&out)
}

// ---------------------------------------------------------------------
// Page kind.

fn page_kind<P: Page>(page: &P) -> PageKind {
    if exists(
        page,
        None,
        "form[action*=validateCaptcha], form[action*=captcha] input[name=amzn-r], #captchacharacters",
    ) {
        return PageKind::Captcha;
    }
    if exists(
        page,
        None,
        "#productTitle, #ebooksProductTitle, #dp-container, #ppd, input#ASIN, #buybox, #centerCol",
    ) {
        return PageKind::Product;
    }
    if exists(
        page,
        None,
        "img[alt*='Dogs of Amazon'], a[href*=cs_404], img[src*='/error/']",
    ) {
        return PageKind::NotFound;
    }
    let title = first(page, None, "title").map(|t| fold_ws(&page.text(&t)).to_lowercase());
    let body = first(page, None, "body").map(|b| visible_text(page, &b).to_lowercase());
    let head_scripts = sel(page, None, "head script")
        .iter()
        .map(|s| page.text(s))
        .collect::<String>();
    let body = body.unwrap_or_default();
    if body.contains("enter the characters you see below")
        || body.contains("geben sie die unten angezeigten zeichen ein")
        || head_scripts.contains("opfcaptcha")
    {
        return PageKind::Captcha;
    }
    let title = title.unwrap_or_default();
    if title.contains("page not found")
        || title.contains("seite wurde nicht gefunden")
        || body.contains("not a functioning page on our site")
        || body.contains("keine funktionsfähige seite")
    {
        return PageKind::NotFound;
    }
    PageKind::Unknown
}

// ---------------------------------------------------------------------
// Identity: ASIN, marketplace, title.

/// Value of `var <name> = '...'` / `"..."` in inline scripts.
fn script_var<P: Page>(page: &P, name: &str) -> Option<String> {
    for script in sel(page, None, "script:not([src])") {
        let src = page.text(&script);
        let mut rest = src.as_str();
        while let Some(pos) = rest.find(name) {
            let before = rest[..pos].chars().next_back();
            let after = &rest[pos + name.len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let t = after.trim_start();
            let Some(t) = t.strip_prefix('=').or_else(|| t.strip_prefix(':')) else {
                continue;
            };
            let t = t.trim_start();
            let Some(q) = t.chars().next().filter(|c| *c == '\'' || *c == '"') else {
                continue;
            };
            let body = &t[1..];
            if let Some(end) = body.find(q) {
                let v = &body[..end];
                if !v.is_empty() && v.len() < 200 {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

fn canonical_href<P: Page>(page: &P) -> Option<String> {
    first(page, None, "link[rel=canonical]").and_then(|l| page.attr(&l, "href"))
}

fn og_url<P: Page>(page: &P) -> Option<String> {
    first(page, None, "meta[property='og:url']").and_then(|m| page.attr(&m, "content"))
}

/// Amazon's marketplace ids (`ue_mid`, `obfuscatedMarketplaceId`).
const MARKETPLACE_IDS: &[(&str, &str)] = &[
    ("ATVPDKIKX0DER", "amazon.com"),
    ("A1F83G8C2ARO7P", "amazon.co.uk"),
    ("A1PA6795UKMFR9", "amazon.de"),
    ("A13V1IB3VIYZZH", "amazon.fr"),
    ("APJ6JRA9NG5V4", "amazon.it"),
    ("A1RKKUPIHCS9HS", "amazon.es"),
    ("A1805IZSGTT6HS", "amazon.nl"),
    ("A2NODRKZP88ZB9", "amazon.se"),
    ("A1C3SOZRARQ6R3", "amazon.pl"),
    ("AMEN7PMS3EDWL", "amazon.com.be"),
    ("A2EUQ1WTGCTBG2", "amazon.ca"),
    ("A1AM78C64UM0Y8", "amazon.com.mx"),
    ("A2Q3Y263D00KWC", "amazon.com.br"),
    ("A1VC38T7YXB528", "amazon.co.jp"),
    ("A21TJRUUN4KGV", "amazon.in"),
    ("A39IBJ37TRP1C6", "amazon.com.au"),
    ("A19VAU5U5O7RUS", "amazon.sg"),
    ("A2VIGQ35RCS4UG", "amazon.ae"),
    ("A17E79C6D8DWNP", "amazon.sa"),
    ("A33AVAJ2PDY3EV", "amazon.com.tr"),
    ("ARBP9OOSHTCHU", "amazon.eg"),
];

fn marketplace_from_page<P: Page>(page: &P) -> Option<Marketplace> {
    canonical_href(page)
        .and_then(|h| Marketplace::from_url(&h))
        .or_else(|| og_url(page).and_then(|h| Marketplace::from_url(&h)))
        .or_else(|| script_var(page, "ue_sn").and_then(|h| Marketplace::from_host(&h)))
        .or_else(|| {
            let mid = script_var(page, "ue_mid")?;
            let (_, domain) = MARKETPLACE_IDS.iter().find(|(id, _)| *id == mid)?;
            Marketplace::from_domain(domain)
        })
}

/// The one marketplace selling in `currency`, if only one does.
fn marketplace_for_currency(currency: Currency) -> Option<Marketplace> {
    let mut found = Marketplace::all()
        .iter()
        .filter(|m| m.currency() == currency);
    let one = *found.next()?;
    found.next().is_none().then_some(one)
}

fn asin_from_page<P: Page>(page: &P) -> Option<Asin> {
    if let Some(a) = script_var(page, "ue_pti").and_then(|v| Asin::parse(&v)) {
        return Some(a);
    }
    if let Some(a) = canonical_href(page).and_then(|h| Asin::from_url(&h)) {
        return Some(a);
    }
    if let Some(a) = first(page, None, "input#ASIN")
        .and_then(|i| page.attr(&i, "value"))
        .and_then(|v| Asin::parse(&v))
    {
        return Some(a);
    }
    if let Some(a) = og_url(page).and_then(|h| Asin::from_url(&h)) {
        return Some(a);
    }
    if let Some(a) = first(
        page,
        None,
        "#dp[data-asin], #ppd[data-asin], #dp-container[data-asin]",
    )
    .and_then(|n| page.attr(&n, "data-asin"))
    .and_then(|v| Asin::parse(&v))
    {
        return Some(a);
    }
    // CAPTCHA page: the form returns to the product path afterwards.
    first(page, None, "input[name=amzn-r]")
        .and_then(|i| page.attr(&i, "value"))
        .and_then(|v| Asin::from_url(&format!("https://www.amazon.com{v}")))
}

const MAX_TITLE_CHARS: usize = 400;

fn title<P: Page>(page: &P) -> Option<String> {
    let from_ids = sel(page, None, "#productTitle, #ebooksProductTitle")
        .iter()
        .map(|n| fold_ws(&page.text(n)))
        .find(|t| !t.is_empty());
    let t = from_ids.or_else(|| {
        let t = fold_ws(&page.text(&first(page, None, "title")?));
        (!t.is_empty()).then_some(t)
    })?;
    Some(t.chars().take(MAX_TITLE_CHARS).collect())
}

// ---------------------------------------------------------------------
// Prices.

enum Read {
    Price(Price),
    Range,
    Nothing,
}

fn currency_ok(p: &Price, mp: Option<Marketplace>) -> bool {
    mp.is_none_or(|m| m.currency() == p.currency)
}

fn read_text(text: &str, mp: Option<Marketplace>) -> Read {
    let text = fold_ws(text);
    if text.is_empty() {
        return Read::Nothing;
    }
    match classify_price(&text, mp) {
        PriceText::Single(p) if currency_ok(&p, mp) => Read::Price(p),
        PriceText::Range(..) => Read::Range,
        _ => Read::Nothing,
    }
}

/// Reads an Amazon `.a-price` block: its `.a-offscreen` text when it has
/// any, else the symbol/whole/fraction spans (2025 pages leave
/// `.a-offscreen` empty).
fn read_a_price<P: Page>(page: &P, node: &P::Node, mp: Option<Marketplace>) -> Read {
    if let Some(off) = first(page, Some(node), ".a-offscreen") {
        let t = page.text(&off);
        if !t.trim().is_empty() {
            return read_text(&t, mp);
        }
    }
    if let Some(whole) = first(page, Some(node), ".a-price-whole") {
        let whole = fold_ws(&page.text(&whole));
        let fraction =
            first(page, Some(node), ".a-price-fraction").map(|f| fold_ws(&page.text(&f)));
        let symbol = first(page, Some(node), ".a-price-symbol").map(|s| fold_ws(&page.text(&s)));
        return match parse_parts(symbol.as_deref(), &whole, fraction.as_deref(), mp) {
            Some(p) if currency_ok(&p, mp) => Read::Price(p),
            _ => Read::Nothing,
        };
    }
    read_text(&visible_text(page, node), mp)
}

#[derive(Clone, Copy)]
enum How {
    /// An `.a-price` block (see [`read_a_price`]).
    APrice,
    /// Plain text holding one price.
    Text,
}

/// Visible buy-box price rules, most specific first. Each selector only
/// ever holds the buy-box price of the page's own offer.
const TEXT_RULES: &[(&str, &str, How)] = &[
    // 2022-2025: the price to pay in the core price block.
    (
        "core_price_display",
        "#corePriceDisplay_desktop_feature_div .priceToPay",
        How::APrice,
    ),
    // 2022 table layout ("Preço da oferta:"); two of them is a range.
    (
        "core_price_apex",
        "#corePrice_desktop .apexPriceToPay, #corePrice_feature_div .apexPriceToPay",
        How::APrice,
    ),
    (
        "core_price_to_pay",
        "#corePrice_feature_div .priceToPay, #apex_desktop .priceToPay",
        How::APrice,
    ),
    // 2015-2021 price block: deal and sale prices replace "our price".
    ("priceblock_dealprice", "#priceblock_dealprice", How::Text),
    ("priceblock_saleprice", "#priceblock_saleprice", How::Text),
    ("priceblock_ourprice", "#priceblock_ourprice", How::Text),
    ("new_buybox_price", "#newBuyBoxPrice", How::Text),
    ("price_inside_buybox", "#price_inside_buybox", How::Text),
    // Books: "Buy New" section of the buy box.
    (
        "buy_new_offer_price",
        "#buyNewSection .offer-price",
        How::Text,
    ),
];

/// The apex price block of the regular (non-member) accordion row.
const REGULAR_ROW_APEX: &[(&str, &str, How)] = &[(
    "regular_row_apex",
    "#apex_desktop_newAccordionRow .priceToPay",
    How::APrice,
)];

/// The price in an accordion row's header (scoped to that row).
const ROW_HEADER_PRICE: &[(&str, &str, How)] = &[(
    "row_header_price",
    "#corePrice_feature_div .a-price",
    How::APrice,
)];

/// Kindle price rules (the book's digital offer).
const KINDLE_RULES: &[(&str, &str, How)] = &[
    ("kindle_price", "#kindle-price", How::Text),
    (
        "kindle_price_row",
        "#buybox tr.kindle-price .a-color-price",
        How::Text,
    ),
];

enum Found {
    Price(Price, &'static str),
    Range,
    None,
}

fn run_rules<P: Page>(
    page: &P,
    scope: Option<&P::Node>,
    rules: &[(&'static str, &str, How)],
    mp: Option<Marketplace>,
) -> Found {
    for &(id, selector, how) in rules {
        let nodes = sel(page, scope, selector);
        let mut prices: Vec<Price> = Vec::new();
        for node in &nodes {
            let read = match how {
                How::APrice => read_a_price(page, node, mp),
                How::Text => read_text(&page.text(node), mp),
            };
            match read {
                Read::Price(p) => {
                    if !prices.contains(&p) {
                        prices.push(p);
                    }
                }
                Read::Range => return Found::Range,
                Read::Nothing => {}
            }
            // The first readable match of a text rule is the price; apex
            // blocks are all read because two of them form a range.
            if matches!(how, How::Text) && !prices.is_empty() {
                break;
            }
            if id != "core_price_apex" && !prices.is_empty() {
                break;
            }
        }
        match prices.as_slice() {
            [] => continue,
            [p] => return Found::Price(*p, id),
            _ => return Found::Range,
        }
    }
    Found::None
}

/// Buying-options JSON (`.twister-plus-buying-options-price-data`): an
/// array of options, or an object of arrays keyed by buy-box group.
fn buying_options_json<P: Page>(page: &P, mp: Option<Marketplace>) -> Option<Price> {
    let node = first(page, None, ".twister-plus-buying-options-price-data")?;
    let value: serde_json::Value = serde_json::from_str(page.text(&node).trim()).ok()?;
    let options: Vec<&serde_json::Value> = match &value {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Object(groups) => {
            // The first buy-box group is the featured offer.
            let mut keys: Vec<&String> = groups.keys().collect();
            keys.sort();
            keys.iter()
                .filter_map(|k| groups.get(k.as_str()))
                .filter_map(|v| v.as_array())
                .flatten()
                .collect()
        }
        _ => return None,
    };
    let option = options.into_iter().find(|o| {
        o.get("buyingOptionType")
            .and_then(|t| t.as_str())
            .is_none_or(|t| t == "NEW")
    })?;
    let display = option
        .get("displayPrice")
        .and_then(|d| d.as_str())
        .and_then(|d| match read_text(d, mp) {
            Read::Price(p) => Some(p),
            _ => None,
        });
    // integerValue/fractionalValue with the currency of the display price
    // (or the marketplace's): must agree with the display price.
    let currency = display.map(|p| p.currency).or(mp.map(|m| m.currency()));
    let parts = match (
        option.get("integerValue").and_then(|v| v.as_str()),
        option.get("fractionalValue").and_then(|v| v.as_str()),
        currency,
    ) {
        (Some(int), frac, Some(cur)) => {
            let int: String = int.chars().filter(|c| c.is_ascii_digit()).collect();
            let number = match frac.filter(|f| !f.is_empty()) {
                Some(f) => format!("{int}.{f}"),
                None => int,
            };
            parse_decimal(&number, cur).map(|minor| Price {
                minor,
                currency: cur,
            })
        }
        _ => None,
    };
    match (display, parts) {
        (Some(d), Some(p)) if d == p => Some(d),
        (Some(_), Some(_)) => None,
        (d, p) => d.or(p),
    }
}

/// Hidden inputs holding the numeric price of the featured offer.
fn hidden_input_price<P: Page>(page: &P, selector: &str, mp: Option<Marketplace>) -> Option<Price> {
    let currency = mp?.currency();
    let value = page.attr(&first(page, None, selector)?, "value")?;
    let value = value.trim();
    // Integer-only numbers are ambiguous (major or minor units?) unless
    // the currency has no minor unit.
    if !value.contains('.') && currency.exponent() != 0 {
        return None;
    }
    let minor = parse_decimal(value, currency)?;
    (minor > 0).then_some(Price { minor, currency })
}

fn structured_price<P: Page>(page: &P, mp: Option<Marketplace>) -> Option<(Price, &'static str)> {
    if let Some(p) = buying_options_json(page, mp) {
        return Some((p, "buying_options_json"));
    }
    if let Some(p) = hidden_input_price(page, "#attach-base-product-price", mp) {
        return Some((p, "attach_base_product_price"));
    }
    hidden_input_price(page, "#twister-plus-price-data-price", mp)
        .map(|p| (p, "twister_plus_price"))
}

// ---------------------------------------------------------------------
// Availability, seller, condition.

const PREORDER: &[&str] = &[
    "pre-order",
    "preorder",
    "erscheint am",
    "vorbestell",
    "précommande",
    "precommande",
    "disponible para reserva",
    "reserva ya",
    "pré-venda",
    "pre-venda",
    "prenotazione",
    "予約",
];
const OUT_OF_STOCK: &[&str] = &[
    "currently unavailable",
    "out of stock",
    "derzeit nicht verfügbar",
    "nicht auf lager",
    "no disponible",
    "actuellement indisponible",
    "non disponibile",
    "não disponível",
    "indisponível",
    "在庫切れ",
    "現在お取り扱いできません",
];
const IN_STOCK: &[&str] = &[
    "in stock",
    "auf lager",
    "en stock",
    "em estoque",
    "em stock",
    "disponibile",
    "disponible",
    "在庫あり",
    "only ",
    "nur noch",
    "queda",
    "estimativa de envio",
    "usually ships",
    "ships within",
    "usually dispatched",
    "dispatched within",
    "versandfertig",
    "expédié sous",
    "envío en",
    "spedizione in",
    "disponível",
    "disponibilità immediata",
];

fn availability_from_text(text: &str) -> Availability {
    let t = text.to_lowercase();
    if PREORDER.iter().any(|k| t.contains(k)) {
        Availability::Preorder
    } else if OUT_OF_STOCK.iter().any(|k| t.contains(k)) {
        Availability::OutOfStock
    } else if IN_STOCK.iter().any(|k| t.contains(k)) {
        Availability::InStock
    } else {
        Availability::Unknown
    }
}

fn availability<P: Page>(page: &P, scope: Option<&P::Node>) -> Availability {
    let text = first(page, scope, "#availability")
        .or_else(|| first(page, None, "#availability"))
        .map(|n| visible_text(page, &n))
        .unwrap_or_default();
    availability_from_text(&text)
}

/// "Sold by" in the locales Amazon uses, lower case. What follows names
/// the seller. (`Versand durch Amazon` alone is fulfilment, not sale.)
const SOLD_BY: &[&str] = &[
    "sold by",
    "verkauf und versand durch",
    "verkauf durch",
    "verkauft von",
    "vendido y enviado por",
    "vendido por",
    "expédié et vendu par",
    "vendu et expédié par",
    "vendu par",
    "venduto e spedito da",
    "venduto da",
    "verkocht door",
    "säljs av",
    "sprzedawany przez",
    "satıcı",
];

fn seller_from_text(text: &str) -> Seller {
    let t = text.to_lowercase();
    // Japanese: "Amazon.co.jp が販売、発送します" / "販売元: X".
    if t.contains("amazon.co.jp が販売") {
        return Seller::Amazon;
    }
    let mut best: Option<(usize, &str)> = None;
    for phrase in SOLD_BY {
        if let Some(pos) = t.find(phrase) {
            if best.is_none_or(|(b, _)| pos < b) {
                best = Some((pos, phrase));
            }
        }
    }
    let Some((pos, phrase)) = best else {
        return Seller::Unknown;
    };
    let after = t[pos + phrase.len()..].trim_start_matches([':', ' ']);
    if after.is_empty() {
        return Seller::Unknown;
    }
    let is_amazon = after.starts_with("amazon")
        && !after["amazon".len()..].starts_with(|c: char| c.is_alphabetic());
    if is_amazon {
        Seller::Amazon
    } else {
        Seller::ThirdParty
    }
}

fn seller<P: Page>(page: &P, scope: Option<&P::Node>) -> Seller {
    for selector in [
        "#merchant-info",
        "#tabular-buybox",
        "#merchantInfoFeature_feature_div",
    ] {
        if let Some(n) = first(page, scope, selector) {
            let s = seller_from_text(&visible_text(page, &n));
            if s != Seller::Unknown {
                return s;
            }
        }
    }
    if let Some(n) = first(page, scope, "#sellerProfileTriggerId") {
        if !fold_ws(&page.text(&n)).is_empty() {
            return Seller::ThirdParty;
        }
    }
    first(page, scope, "#buybox")
        .map(|b| seller_from_text(&visible_text(page, &b)))
        .unwrap_or(Seller::Unknown)
}

/// Renewed (refurbished) products are their own ASINs, marked in the title.
const RENEWED: &[&str] = &[
    "(renewed",
    "(generalüberholt",
    "(reacondicionado",
    "(reconditionné",
    "(ricondizionato",
    "(recondicionado",
    "(整備済み品",
    "(gereviseerd",
    "(odnowiony",
    "(yenilenmiş",
];

fn is_renewed(title: Option<&str>) -> bool {
    title.is_some_and(|t| {
        let t = t.to_lowercase();
        RENEWED.iter().any(|k| t.contains(k))
    })
}

/// Text marking a price as member-only (Prime). "Join Prime to buy this
/// item at ..." is not: it sits beside the price everyone pays.
const MEMBER_ONLY: &[&str] = &[
    "prime member price",
    "exclusively for amazon prime members",
    "exclusively for prime members",
];

fn is_member_only(text: &str) -> bool {
    let t = text.to_lowercase();
    MEMBER_ONLY.iter().any(|k| t.contains(k))
}

// ---------------------------------------------------------------------
// Offers.

fn no_price(rule: &'static str, availability: Availability, seller: Seller) -> Offer {
    Offer {
        condition: Condition::New,
        price_minor: None,
        currency: None,
        availability,
        seller,
        rule,
    }
}

fn priced(
    price: Price,
    rule: &'static str,
    condition: Condition,
    availability: Availability,
    seller: Seller,
) -> Offer {
    Offer {
        condition,
        price_minor: Some(price.minor),
        currency: Some(price.currency.code().to_string()),
        availability,
        seller,
        rule,
    }
}

/// Secondary offers: the used offer of a new/used buy box (the price in
/// its own row header). Listed after the buy-box offer, never instead of
/// it. Seller `unknown`: the row names Amazon Warehouse and marketplace
/// sellers alike and we do not need to tell them apart here.
const USED_OFFER_RULES: &[(&str, &str, How)] = &[
    (
        "used_accordion_price",
        "[data-a-accordion-row-name=usedAccordionRow] #usedPrice",
        How::Text,
    ),
    (
        "used_buy_section",
        "#usedBuySection .offer-price",
        How::Text,
    ),
];

fn offers<P: Page>(page: &P, mp: Option<Marketplace>, title: Option<&str>) -> Vec<Offer> {
    let mut offers = buy_box_offers(page, mp, title);
    let primary_is_used = offers.iter().any(|o| o.condition != Condition::New);
    if !primary_is_used {
        if let Found::Price(p, rule) = run_rules(page, None, USED_OFFER_RULES, mp) {
            offers.push(priced(
                p,
                rule,
                Condition::Used,
                Availability::InStock,
                Seller::Unknown,
            ));
        }
    }
    offers
}

fn buy_box_offers<P: Page>(page: &P, mp: Option<Marketplace>, title: Option<&str>) -> Vec<Offer> {
    let condition = if is_renewed(title) {
        Condition::Refurbished
    } else {
        Condition::New
    };

    // A variation still to choose: the buy box asks for a size/colour.
    if exists(page, None, "#partialStateBuybox") {
        return vec![no_price(
            "variation_to_choose",
            Availability::Unknown,
            Seller::Unknown,
        )];
    }
    // No featured offer: only "see all buying options".
    if exists(page, None, "#unqualifiedBuyBox") {
        return vec![no_price(
            "no_featured_offer",
            Availability::Unknown,
            Seller::Unknown,
        )];
    }
    // Out of stock with no buy box to order from.
    if exists(page, None, "#outOfStock") && !exists(page, None, "#add-to-cart-button") {
        return vec![no_price(
            "out_of_stock",
            Availability::OutOfStock,
            Seller::Unknown,
        )];
    }
    // Used-only buy box: the offer is a used (or renewed) one.
    if let Some(used) = first(page, None, "#usedOnlyBuybox") {
        let text = visible_text(page, &used).to_lowercase();
        let cond = if [
            "renewed",
            "refurbished",
            "reacondicionado",
            "generalüberholt",
            "reconditionné",
        ]
        .iter()
        .any(|k| text.contains(k))
        {
            Condition::Refurbished
        } else {
            Condition::Used
        };
        let seller = seller(page, Some(&used));
        for node in sel(page, Some(&used), ".offer-price, .a-price") {
            let read = if page
                .attr(&node, "class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == "a-price"))
            {
                read_a_price(page, &node, mp)
            } else {
                read_text(&page.text(&node), mp)
            };
            if let Read::Price(p) = read {
                return vec![priced(
                    p,
                    "used_only_buybox",
                    cond,
                    Availability::InStock,
                    seller,
                )];
            }
        }
        return vec![no_price("used_only_buybox", Availability::Unknown, seller)];
    }

    // Prime: a member-only price row beside the regular offer. The price
    // everyone pays is the price: read only inside the regular row, and
    // skip page-level structured data (it carries the member price).
    let member_row = sel(page, None, "[data-a-accordion-row-name]")
        .into_iter()
        .find(|row| {
            page.attr(row, "data-a-accordion-row-name").as_deref()
                == Some("primeSavingsUpsellAccordionRow")
                || is_member_only(&visible_text(page, row))
        });
    if member_row.is_some() {
        let regular = first(page, None, "[data-a-accordion-row-name=newAccordionRow]");
        let Some(regular) = regular else {
            return vec![no_price(
                "prime_member_only",
                Availability::Unknown,
                Seller::Unknown,
            )];
        };
        let avail = availability(page, Some(&regular));
        let seller = seller(page, Some(&regular));
        // The regular row's own apex block (page level, named after the
        // row), then the buy-box rules inside the row, then the row's
        // header price. Page-level structured data is skipped: it carries
        // the member price.
        if let Found::Price(p, _) = run_rules(page, None, REGULAR_ROW_APEX, mp) {
            return vec![priced(
                p,
                "regular_price_beside_prime",
                condition,
                avail,
                seller,
            )];
        }
        let found = match run_rules(page, Some(&regular), TEXT_RULES, mp) {
            Found::None => run_rules(page, Some(&regular), ROW_HEADER_PRICE, mp),
            found => found,
        };
        return match found {
            Found::Price(p, _) => vec![priced(
                p,
                "regular_price_beside_prime",
                condition,
                avail,
                seller,
            )],
            Found::Range => vec![no_price(
                "variation_to_choose",
                Availability::Unknown,
                seller,
            )],
            Found::None => vec![no_price("prime_member_only", avail, seller)],
        };
    }

    // A member-only price shown as the headline price with no regular
    // row to read instead: no price rather than the member price.
    let headline = sel(
        page,
        None,
        "#corePriceDisplay_desktop_feature_div, #corePrice_feature_div, #apex_desktop",
    );
    if headline
        .iter()
        .any(|n| is_member_only(&visible_text(page, n)))
    {
        return vec![no_price(
            "prime_member_only",
            Availability::Unknown,
            Seller::Unknown,
        )];
    }

    let avail = availability(page, None);
    let seller = seller(page, None);
    let add_to_cart = exists(page, None, "#add-to-cart-button, #buy-now-button");
    let visible = run_rules(page, None, TEXT_RULES, mp);
    if let Found::Range = visible {
        return vec![no_price(
            "variation_to_choose",
            Availability::Unknown,
            seller,
        )];
    }
    if avail == Availability::OutOfStock && !add_to_cart {
        return vec![no_price("out_of_stock", avail, seller)];
    }
    let structured = structured_price(page, mp);
    let in_stock_if_buyable = |a: Availability| {
        if a == Availability::Unknown && add_to_cart {
            Availability::InStock
        } else {
            a
        }
    };
    match (structured, visible) {
        (Some((s, rule)), Found::Price(v, _)) if s == v => {
            return vec![priced(
                s,
                rule,
                condition,
                in_stock_if_buyable(avail),
                seller,
            )];
        }
        // Disagreement: the visible buy box wins (see module docs).
        (_, Found::Price(v, rule)) => {
            return vec![priced(
                v,
                rule,
                condition,
                in_stock_if_buyable(avail),
                seller,
            )];
        }
        (Some((s, rule)), _) => {
            return vec![priced(
                s,
                rule,
                condition,
                in_stock_if_buyable(avail),
                seller,
            )];
        }
        _ => {}
    }
    // Kindle: the digital offer is available now.
    match run_rules(page, None, KINDLE_RULES, mp) {
        Found::Price(p, rule) => {
            let avail = if avail == Availability::Preorder {
                avail
            } else {
                Availability::InStock
            };
            vec![priced(p, rule, Condition::New, avail, seller)]
        }
        _ => vec![no_price("no_price_found", avail, seller)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seller_phrases() {
        assert_eq!(
            seller_from_text("Ships from and sold by Amazon.com."),
            Seller::Amazon
        );
        assert_eq!(
            seller_from_text("Verkauf und Versand durch Amazon. Geschenk"),
            Seller::Amazon
        );
        assert_eq!(
            seller_from_text("Verkauf durch Benchra und Versand durch Amazon."),
            Seller::ThirdParty
        );
        assert_eq!(
            seller_from_text("Vendido y enviado por NFBRICOLAJE."),
            Seller::ThirdParty
        );
        assert_eq!(
            seller_from_text("Ships from and sold by Amazon.co.jp."),
            Seller::Amazon
        );
        assert_eq!(
            seller_from_text("Ships from Amazon Sold by Chen Ying Ke Ji"),
            Seller::ThirdParty
        );
        assert_eq!(
            seller_from_text("Sold by Amazonas Trading"),
            Seller::ThirdParty
        );
        assert_eq!(seller_from_text("Gift-wrap available."), Seller::Unknown);
    }

    #[test]
    fn availability_phrases() {
        assert_eq!(availability_from_text("Auf Lager."), Availability::InStock);
        assert_eq!(
            availability_from_text(
                "Dieser Artikel erscheint am 28. März 2019. Bestellen Sie jetzt."
            ),
            Availability::Preorder
        );
        assert_eq!(
            availability_from_text("Currently unavailable."),
            Availability::OutOfStock
        );
        assert_eq!(
            availability_from_text("Estimativa de envio de 2 a 3 dias."),
            Availability::InStock
        );
        assert_eq!(availability_from_text(""), Availability::Unknown);
    }

    #[test]
    fn every_rule_selector_is_valid() {
        for (_, s, _) in TEXT_RULES
            .iter()
            .chain(KINDLE_RULES)
            .chain(REGULAR_ROW_APEX)
            .chain(ROW_HEADER_PRICE)
            .chain(USED_OFFER_RULES)
        {
            assert!(crate::html::Selector::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn marketplace_by_unique_currency() {
        let gbp = Marketplace::from_domain("amazon.co.uk").map(|m| m.currency());
        assert_eq!(
            gbp.and_then(marketplace_for_currency).map(|m| m.domain()),
            Some("amazon.co.uk")
        );
        let eur = Marketplace::from_domain("amazon.de").map(|m| m.currency());
        assert_eq!(eur.and_then(marketplace_for_currency), None);
    }
}
