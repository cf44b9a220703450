//! Price parsing, data-driven: one `check(input, marketplace, expected)`
//! per line. `expected` is the classification rendered as text:
//! `"EUR 1234.56"` (the price), `"range USD 10.99 .. USD 24.99"`,
//! `"unit USD 6.24"`, `"list|was|save|other USD 13.97"`, or `"none"`.

use wasm_core::marketplace::{Currency, Marketplace};
use wasm_core::price::{
    amount_string, classify_price, format_price, parse_decimal, parse_parts, parse_price, Price,
    PriceLabel, PriceText,
};

fn show(p: Price) -> String {
    format!(
        "{} {}",
        p.currency.code(),
        amount_string(p.minor, p.currency)
    )
}

fn render(t: PriceText) -> String {
    match t {
        PriceText::Single(p) => show(p),
        PriceText::Range(a, b) => format!("range {} .. {}", show(a), show(b)),
        PriceText::UnitPrice(p) => format!("unit {}", show(p)),
        PriceText::Labelled(l, p) => {
            let l = match l {
                PriceLabel::ListPrice => "list",
                PriceLabel::Was => "was",
                PriceLabel::Savings => "save",
                PriceLabel::Other => "other",
            };
            format!("{l} {}", show(p))
        }
        PriceText::NoPrice => "none".to_owned(),
    }
}

fn market(domain: &str) -> Option<Marketplace> {
    if domain.is_empty() {
        return None;
    }
    let m = Marketplace::from_domain(domain);
    assert!(m.is_some(), "unknown marketplace in test table: {domain}");
    m
}

#[track_caller]
fn check(input: &str, marketplace: &str, expected: &str) {
    let m = market(marketplace);
    let got = render(classify_price(input, m));
    assert_eq!(got, expected, "classify_price({input:?}, {marketplace:?})");
    // parse_price is Some exactly for a single price.
    let single = parse_price(input, m).map(show);
    let want_single = (!expected.contains(' ')
        || expected.split(' ').count() == 2
            && expected
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_uppercase()))
    .then(|| expected.to_owned())
    .filter(|e| e != "none");
    assert_eq!(
        single, want_single,
        "parse_price({input:?}, {marketplace:?})"
    );
}

#[test]
fn index_tsv_price_styles() {
    // Every `expected_price_as_shown` style in the fixture index.
    check("$29.99", "amazon.com", "USD 29.99");
    check("$12.48", "amazon.com", "USD 12.48");
    check("EUR 12,99", "amazon.de", "EUR 12.99");
    check("EUR 8,99", "amazon.de", "EUR 8.99");
    check("EUR 39,99", "amazon.de", "EUR 39.99");
    check("EUR 15,99", "amazon.de", "EUR 15.99");
    check("EUR 14,99", "amazon.de", "EUR 14.99");
    check("£4.45", "amazon.co.uk", "GBP 4.45");
    check("£13.53", "amazon.co.uk", "GBP 13.53");
    check("$8.99", "amazon.com", "USD 8.99");
    check("$10.99", "amazon.com", "USD 10.99");
    check("$9.99", "amazon.com", "USD 9.99");
    check("225,00 €", "amazon.es", "EUR 225.00");
    check("EUR 219,00", "amazon.es", "EUR 219.00");
    check("EUR 109,00", "amazon.de", "EUR 109.00");
    check("$45.99", "amazon.com", "USD 45.99");
    check("¥32,970", "amazon.co.jp", "JPY 32970");
    check("$ 9 . 98", "amazon.com", "USD 9.98");
    check("R$ 19,90", "amazon.com.br", "BRL 19.90");
    check("R$431,90", "amazon.com.br", "BRL 431.90");
    check("R$259,00", "amazon.com.br", "BRL 259.00");
    check("R$ 29,90", "amazon.com.br", "BRL 29.90");
    check("R$272,00", "amazon.com.br", "BRL 272.00");
    check("66,99€", "amazon.es", "EUR 66.99");
    check("EUR 2,99", "amazon.es", "EUR 2.99");
    check("39,99€", "amazon.es", "EUR 39.99");
    check(
        "R$169,00 - R$199,90",
        "amazon.com.br",
        "range BRL 169.00 .. BRL 199.90",
    );
    check("(none shown)", "amazon.es", "none");
}

#[test]
fn index_tsv_distractors() {
    // The distractor shapes named in the index's notes.
    check("($6.24 / Pack)", "amazon.com", "unit USD 6.24");
    check("$12.48 ($6.24 / Pack)", "amazon.com", "USD 12.48");
    check("($0.31$0.31 / Fl Oz)", "amazon.com", "unit USD 0.31");
    check("EUR 23,05 / kg", "amazon.de", "unit EUR 23.05");
    check("(EUR 23,05 / kg)", "amazon.de", "unit EUR 23.05");
    check("23,05 €/kg", "amazon.de", "unit EUR 23.05");
    check("Spar-Abo EUR 8,54", "amazon.de", "other EUR 8.54");
    check("List Price: $13.97", "amazon.com", "list USD 13.97");
    check("Print List Price: $10.00", "amazon.com", "list USD 10.00");
    check("RRP £16.99", "amazon.co.uk", "list GBP 16.99");
    check("RRP: £16.99", "amazon.co.uk", "list GBP 16.99");
    check("You Save £3.46", "amazon.co.uk", "save GBP 3.46");
    check("You Save: £3.46 (20%)", "amazon.co.uk", "save GBP 3.46");
    check("RRP £16.99, You Save £3.46 (20%)", "amazon.co.uk", "none");
    check("UVP: EUR 159,99", "amazon.de", "list EUR 159.99");
    check("Sie sparen: EUR 50,99 (32%)", "amazon.de", "save EUR 50.99");
    check("De: R$ 59,90", "amazon.com.br", "was BRL 59.90");
    check("De: R$479,90", "amazon.com.br", "was BRL 479.90");
    check("Você economiza: R$48,00", "amazon.com.br", "save BRL 48.00");
    check("Was: $20.00", "amazon.com", "was USD 20.00");
    check("Prix conseillé : 29,99 €", "amazon.fr", "list EUR 29.99");
    check("Poupe EUR 15,00", "amazon.es", "save EUR 15.00");
    check("RRP EUR 239,00", "amazon.es", "list EUR 239.00");
    check("Ahorras: EUR 20,00 (8%)", "amazon.es", "save EUR 20.00");
    check(
        "Join Prime to buy this item at $8.09",
        "amazon.com",
        "other USD 8.09",
    );
    check("Prime Member Price $35.99", "amazon.com", "other USD 35.99");
    check("$10.11 Shipping to Spain", "amazon.com", "other USD 10.11");
    check("Entrega 57,48 €", "amazon.es", "other EUR 57.48");
    check("+ £3.99 delivery", "amazon.co.uk", "other GBP 3.99");
    check(
        "EUR 219,00 Envío GRATIS . Ver detalles Ahorras: EUR 20,00 (8%)",
        "amazon.es",
        "EUR 219.00",
    );
    check("$8.99 Shipping: FREE", "amazon.com", "USD 8.99");
    check("EUR 3,00 Versand", "amazon.de", "other EUR 3.00");
    check(
        "Price: ¥32,970 + ￥1,598 shipping",
        "amazon.co.jp",
        "JPY 32970",
    );
    check("330pt (1%)", "amazon.co.jp", "none");
    check(
        "New & Used (15) from ¥28,800",
        "amazon.co.jp",
        "other JPY 28800",
    );
    check("-22%", "amazon.com", "none");
    check("$3.99 $2.99", "amazon.com", "none");
    check("$29.99 $3.99 $2.99", "amazon.com", "none");
    check("List: $25.99", "amazon.com", "list USD 25.99");
    check("Typical: $27.99", "amazon.com", "list USD 27.99");
    check("Total price: ¥39,958", "amazon.co.jp", "other JPY 39958");
    check("1 New from $29.99", "amazon.com", "other USD 29.99");
    check(
        "FREE Shipping on orders over $25",
        "amazon.com",
        "other USD 25.00",
    );
    check(
        "No Import Fees Deposit & $10.11 Shipping to Spain",
        "amazon.com",
        "other USD 10.11",
    );
    check("M.R.P.: ₹1,999.00", "amazon.in", "list INR 1999.00");
    check("Prezzo consigliato: 29,99 €", "amazon.it", "list EUR 29.99");
    check("Precio recomendado: 29,99 €", "amazon.es", "list EUR 29.99");
    check("Adviesprijs: € 29,99", "amazon.nl", "list EUR 29.99");
    check(
        "Unverb. Preisempf.: EUR 159,99",
        "amazon.de",
        "list EUR 159.99",
    );
    check("Risparmi: 5,00 €", "amazon.it", "save EUR 5.00");
    check("Économisez : 5,00\u{a0}€", "amazon.fr", "save EUR 5.00");
    check("Bespaar € 5,00", "amazon.nl", "save EUR 5.00");
    check("Oszczędzasz: 5,00 zł", "amazon.pl", "save PLN 5.00");
    check("Du sparar: 50,00 kr", "amazon.se", "save SEK 50.00");
    check("Niedrigster Preis: 12,99 €", "amazon.de", "was EUR 12.99");
    check("Statt: 19,99 €", "amazon.de", "was EUR 19.99");
    check("Vorher: 19,99 €", "amazon.de", "was EUR 19.99");
    check("$5.99 per month", "amazon.com", "unit USD 5.99");
    check("Save $5.00 with coupon", "amazon.com", "save USD 5.00");
    check("Coupon: Save $5.00", "amazon.com", "other USD 5.00");
    check("Subscribe & Save: $8.54", "amazon.com", "other USD 8.54");
    check("EMI starts at ₹1,234.00", "amazon.in", "other INR 1234.00");
    check(
        "Lieferung Fr. 12. Mai: 3,99 €",
        "amazon.de",
        "other EUR 3.99",
    );
    check("Kindle-Preis: EUR 15,99", "amazon.de", "EUR 15.99");
    check("Kindle Price: $9.99", "amazon.com", "USD 9.99");
    check("Buy New £13.53", "amazon.co.uk", "GBP 13.53");
    check("Buy used £4.45", "amazon.co.uk", "GBP 4.45");
    check("Comprar novo: R$ 19,90", "amazon.com.br", "BRL 19.90");
    check("Preço da oferta: R$431,90", "amazon.com.br", "BRL 431.90");
    check(
        "Por: R$169,00 - R$199,90",
        "amazon.com.br",
        "range BRL 169.00 .. BRL 199.90",
    );
    check("Preço Kindle EUR 2,99", "amazon.es", "EUR 2.99");
    // One unlabelled price beside labelled ones is the price.
    check("$9.98 List Price: $13.97", "amazon.com", "USD 9.98");
    check("-29% $9.98 List Price: $13.97", "amazon.com", "USD 9.98");
    check("$8.99$8.99", "amazon.com", "USD 8.99");
    check("$8.99 $ 8 . 99", "amazon.com", "USD 8.99");
    // Whole core price blocks as their text reads (2025 layouts).
    check(
        "$9.98 with 29 percent savings -29% $ 9 . 98 List Price: $13.97 List Price: $13.97 $13.97 \
         The List Price is the suggested retail price of a new product",
        "amazon.com",
        "USD 9.98",
    );
    check(
        "Unverb. Preisempf.: EUR 159,99 Preis: EUR 109,00 Kostenlose Lieferung. Details \
         Sie sparen: EUR 50,99 (32%) Alle Preisangaben inkl. MwSt.",
        "amazon.de",
        "EUR 109.00",
    );
    check(
        "De: R$479,90 R$479,90 Saiba mais Preço da oferta: R$431,90 R$431,90 \
         Você economiza: R$48,00 R$48,00 (10%)",
        "amazon.com.br",
        "BRL 431.90",
    );
    check(
        "Precio recomendado: 239,00 € Precio: 225,00 € Ahorras: 14,00 € (6%) \
         Precio final del producto Nuevos: 1 desde 225,00 € De 2ª mano: 236 desde 151,88 €",
        "amazon.es",
        "EUR 225.00",
    );
    check(
        "Buy used £4.45 £3.99 delivery 17 January - 7 February . Details",
        "amazon.co.uk",
        "GBP 4.45",
    );
    check(
        "Print List Price: $10.00 Kindle Price: $9.99 Sold by: Hachette Book Group",
        "amazon.com",
        "USD 9.99",
    );
    check(
        "Price: $8.99 Free Shipping for Prime Members FREE Shipping Get free shipping \
         Free 5-8 business-day shipping within the U.S. when you order $25 of eligible items",
        "amazon.com",
        "USD 8.99",
    );
    check(
        "-29% $ 9 . 98 with 29 percent savings List Price: $13.97",
        "amazon.com",
        "USD 9.98",
    );
    check("Only 4 left in stock - order soon.", "amazon.com", "none");
    check("Ships in 2-3 days", "amazon.com.br", "none");
}

#[test]
fn every_locale() {
    check("$1,234.56", "amazon.com", "USD 1234.56");
    check("1.234,56 €", "amazon.de", "EUR 1234.56");
    check("1.234,56\u{a0}€", "amazon.it", "EUR 1234.56");
    check("12,99€", "amazon.de", "EUR 12.99");
    check("￥1,598", "amazon.co.jp", "JPY 1598");
    check("￥１，５９８", "amazon.co.jp", "JPY 1598");
    check("1,598円", "amazon.co.jp", "JPY 1598");
    check("1,598円です", "amazon.co.jp", "JPY 1598");
    check("￥1,598税込", "amazon.co.jp", "JPY 1598");
    check("価格: ￥1,598 (税込)", "amazon.co.jp", "JPY 1598");
    check("￥32,970 + ￥410 配送料", "amazon.co.jp", "JPY 32970");
    check("￥32,970 配送料無料", "amazon.co.jp", "JPY 32970");
    check(
        "メーカー希望小売価格: ￥2,000",
        "amazon.co.jp",
        "list JPY 2000",
    );
    check("参考価格: ￥2,000", "amazon.co.jp", "list JPY 2000");
    check("￥500 割引", "amazon.co.jp", "other JPY 500");
    check("$5.00 off", "amazon.com", "other USD 5.00");
    check("$5.00 off. Details", "amazon.com", "other USD 5.00");
    check("割引: ￥500", "amazon.co.jp", "save JPY 500");
    check("330ポイント(1%)", "amazon.co.jp", "none");
    check("R$ 1.234,90", "amazon.com.br", "BRL 1234.90");
    check("₹1,23,456.00", "amazon.in", "INR 123456.00");
    check("₹ 1,23,45,678", "amazon.in", "INR 12345678.00");
    check("CHF 1'234.50", "", "CHF 1234.50");
    check("CHF 1’234.50", "amazon.de", "CHF 1234.50");
    check("1 234,56 zł", "amazon.pl", "PLN 1234.56");
    check("1\u{a0}234,56\u{a0}zł", "amazon.pl", "PLN 1234.56");
    check("1\u{202f}234,56\u{a0}zł", "amazon.pl", "PLN 1234.56");
    check("1\u{202f}234,56\u{a0}€", "amazon.fr", "EUR 1234.56");
    check("1 234,56 kr", "amazon.se", "SEK 1234.56");
    check("249 kr", "amazon.se", "SEK 249.00");
    check("1.234,56 TL", "amazon.com.tr", "TRY 1234.56");
    check("₺1.234,56", "amazon.com.tr", "TRY 1234.56");
    check("AED 1,234.56", "amazon.ae", "AED 1234.56");
    check("SAR 99.00", "amazon.sa", "SAR 99.00");
    check("EGP 1,499.00", "amazon.eg", "EGP 1499.00");
    check("S$1,234.56", "amazon.sg", "SGD 1234.56");
    check("A$49.95", "", "AUD 49.95");
    check("C$49.95", "", "CAD 49.95");
    check("CDN$ 49.95", "amazon.ca", "CAD 49.95");
    check("MX$1,299.00", "", "MXN 1299.00");
    check("US$12.00", "amazon.com.mx", "USD 12.00");
    check("€ 1.234,56", "amazon.nl", "EUR 1234.56");
    check("19,99 €", "amazon.com.be", "EUR 19.99");
    check("$1,234.56", "amazon.com.mx", "MXN 1234.56");
    check("$1,234.56", "amazon.ca", "CAD 1234.56");
    check("$1,234.56", "amazon.com.au", "AUD 1234.56");
    check("$ 1,234 . 56", "amazon.com", "USD 1234.56");
    check("  \n  $29.99\n  ", "amazon.com", "USD 29.99");
    check("Price: $29.99 & FREE Returns", "amazon.com", "USD 29.99");
    check("Preis: 1.234,56 € inkl. MwSt.", "amazon.de", "EUR 1234.56");
    check("EUR12,99", "amazon.de", "EUR 12.99");
    check("12,99 EUR", "amazon.de", "EUR 12.99");
    check("£0.99", "amazon.co.uk", "GBP 0.99");
    check("$12.5", "amazon.com", "USD 12.50");
    check("Rs. 1,299.00", "amazon.in", "INR 1299.00");
    check("Deal of the Day: ₹999.00", "amazon.in", "INR 999.00");
    check("Precio: 12,99 €", "amazon.es", "EUR 12.99");
    check("Prezzo: 1.299,00 €", "amazon.it", "EUR 1299.00");
    check("Prix : 1\u{202f}299,00\u{a0}€", "amazon.fr", "EUR 1299.00");
    check("Prijs: € 12,99", "amazon.nl", "EUR 12.99");
    check("Cena: 1 234,56 zł", "amazon.pl", "PLN 1234.56");
    check("Pris: 1 234,56 kr", "amazon.se", "SEK 1234.56");
    check("Fiyat: 1.234,56 TL", "amazon.com.tr", "TRY 1234.56");
    check("Precio: $1,299.00", "amazon.com.mx", "MXN 1299.00");
    check("Price: S$ 45.90", "amazon.sg", "SGD 45.90");
    check("Price: AED 99.00", "amazon.ae", "AED 99.00");
    check("EGP 1,234.50", "amazon.eg", "EGP 1234.50");
    // Arabic UI: Arabic-Indic digits, Arabic decimal separator, bidi marks.
    check("\u{200f}٣٤٫٩٩ ر.س.\u{200f}", "amazon.sa", "SAR 34.99");
    check("د.إ.\u{200f} ١٬٢٣٤٫٥٠", "amazon.ae", "AED 1234.50");
    check("١٬٢٣٤٫٥٠ ج.م", "amazon.eg", "EGP 1234.50");
}

#[test]
fn marketplace_resolves_ambiguity() {
    // One separator before exactly three digits.
    check("1.234 €", "amazon.de", "EUR 1234.00");
    check("1,234 €", "amazon.de", "none");
    check("$1,234", "amazon.com", "USD 1234.00");
    check("$1.234", "amazon.com", "none");
    check("1.234", "amazon.de", "EUR 1234.00");
    check("1,234", "amazon.de", "none");
    check("1,234", "amazon.com", "USD 1234.00");
    check("1.234", "amazon.com", "none");
    check("1.23", "amazon.com", "USD 1.23");
    check("$1.23", "amazon.com", "USD 1.23");
    check("32,970", "amazon.co.jp", "JPY 32970");
    check("Total: 1.234", "amazon.de", "none");
    check("€1.234", "", "none");
    check("£1,234", "", "GBP 1234.00");
    check("¥1.598", "", "JPY 1598");
    // Bare $ needs a dollar marketplace.
    check("$12.99", "", "none");
    check("$12.99", "amazon.de", "none");
    check("$12.99", "amazon.sg", "SGD 12.99");
    // An explicit foreign currency wins over the marketplace's.
    check("EUR 12,99", "amazon.com", "EUR 12.99");
    check("EUR 1,234.56", "amazon.com", "EUR 1234.56");
    check("£4.45", "amazon.de", "GBP 4.45");
    // Bare numbers: the marketplace's currency, only when price-shaped.
    check("12,99", "amazon.de", "EUR 12.99");
    check("Preis 12,99", "amazon.de", "EUR 12.99");
    check("32970", "amazon.co.jp", "none");
    check("Total Points: 400", "amazon.co.jp", "none");
    check("400", "amazon.co.jp", "none");
    check("1299", "amazon.com", "none");
    check("12,99", "", "none");
    check("Only 4 left", "amazon.de", "none");
    // A space grouping where the marketplace does not group with spaces.
    check("1 234,56 €", "amazon.de", "none");
    check("Pack of 3 129,99 €", "amazon.de", "none");
    check("Pack of 3: 129,99 €", "amazon.de", "EUR 129.99");
    check("$12.99 100 left", "amazon.com", "USD 12.99");
    check("1 234,56 zł 100 szt.", "amazon.pl", "PLN 1234.56");
}

#[test]
fn ranges() {
    check(
        "$10.99 - $24.99",
        "amazon.com",
        "range USD 10.99 .. USD 24.99",
    );
    check(
        "$10.99 – $24.99",
        "amazon.com",
        "range USD 10.99 .. USD 24.99",
    );
    check("$10-$20", "amazon.com", "range USD 10.00 .. USD 20.00");
    check(
        "12,99 € - 24,99 €",
        "amazon.de",
        "range EUR 12.99 .. EUR 24.99",
    );
    check("$10.99 and $24.99", "amazon.com", "none");
    check("$10.99 - €24.99", "amazon.com", "none");
    check(
        "12,99 € bis 24,99 €",
        "amazon.de",
        "range EUR 12.99 .. EUR 24.99",
    );
    check("$12.99 - $12.99", "amazon.com", "USD 12.99");
}

#[test]
fn bad_input_is_no_price() {
    check("", "amazon.com", "none");
    check("   ", "amazon.com", "none");
    check("-$5.00", "amazon.com", "none");
    check("−5,00 €", "amazon.de", "none");
    check("(-5,00 €)", "amazon.de", "none");
    check("$99999999999999999999.99", "amazon.com", "none");
    check("$1234567890123456", "amazon.com", "none");
    check("$123456789012.34", "amazon.com", "USD 123456789012.34");
    check("$1,2,3", "amazon.com", "none");
    check("$1,23.45", "amazon.com", "none");
    check("$12.345", "amazon.com", "none");
    check("€12.34.56", "amazon.de", "none");
    check("$1.234,567", "amazon.com", "none");
    check("¥1,598.50", "amazon.co.jp", "none");
    check("free", "amazon.com", "none");
    check("$", "amazon.com", "none");
    check("B07G2L3JMM", "amazon.com", "none");
    check(&"$1".repeat(5000), "amazon.com", "none");
    check(&"9".repeat(100_000), "amazon.com", "none");
}

#[test]
fn split_markup_parts() {
    let us = Marketplace::from_domain("amazon.com");
    let de = Marketplace::from_domain("amazon.de");
    let jp = Marketplace::from_domain("amazon.co.jp");
    let p = |minor, currency| Some(Price { minor, currency });
    assert_eq!(
        parse_parts(Some("$"), "1,234.", Some("56"), us),
        p(123456, Currency::USD)
    );
    assert_eq!(
        parse_parts(Some("$"), "9.", Some("98"), us),
        p(998, Currency::USD)
    );
    assert_eq!(
        parse_parts(Some("€"), "1.234,", Some("56"), de),
        p(123456, Currency::EUR)
    );
    assert_eq!(
        parse_parts(None, "39,", Some("99"), de),
        p(3999, Currency::EUR)
    );
    assert_eq!(
        parse_parts(Some("￥"), "1,598", None, jp),
        p(1598, Currency::JPY)
    );
    assert_eq!(
        parse_parts(Some("R$"), "431,", Some("90"), None),
        p(43190, Currency::BRL)
    );
    assert_eq!(parse_parts(Some("$"), "9.", Some("98"), None), None);
    assert_eq!(parse_parts(Some("$x"), "9.", Some("98"), us), None);
    assert_eq!(parse_parts(Some("$"), "", Some("98"), us), None);
    assert_eq!(parse_parts(Some("$"), "1,23", Some("98"), us), None);
    assert_eq!(parse_parts(Some("$"), "12", Some("987"), us), None);
    assert_eq!(parse_parts(Some("$"), "-12", Some("98"), us), None);
    assert_eq!(parse_parts(Some("￥"), "1,598", Some("00"), jp), None);
    assert_eq!(parse_parts(Some("$"), &"9".repeat(40), None, us), None);
}

#[test]
fn machine_decimals() {
    assert_eq!(parse_decimal("12.48", Currency::USD), Some(1248));
    assert_eq!(parse_decimal("1234.5", Currency::EUR), Some(123450));
    assert_eq!(parse_decimal("32970", Currency::JPY), Some(32970));
    assert_eq!(parse_decimal("32970.00", Currency::JPY), Some(32970));
    assert_eq!(parse_decimal("9.98", Currency::USD), Some(998));
    assert_eq!(parse_decimal("12.480", Currency::USD), Some(1248));
    assert_eq!(parse_decimal(" 0.99 ", Currency::GBP), Some(99));
    assert_eq!(parse_decimal("12.489", Currency::USD), None);
    assert_eq!(parse_decimal("32970.5", Currency::JPY), None);
    assert_eq!(parse_decimal("-1.00", Currency::USD), None);
    assert_eq!(parse_decimal("1e3", Currency::USD), None);
    assert_eq!(parse_decimal("1,234.56", Currency::USD), None);
    assert_eq!(parse_decimal(".5", Currency::USD), None);
    assert_eq!(parse_decimal("5.", Currency::USD), None);
    assert_eq!(parse_decimal("", Currency::USD), None);
    assert_eq!(parse_decimal("99999999999999999999", Currency::USD), None);
}

#[test]
fn formats_as_each_store_shows() {
    let f = |minor, d: &str| format_price(minor, market(d).unwrap_or(Marketplace::AMAZON_COM));
    assert_eq!(f(123456, "amazon.com"), "$1,234.56");
    assert_eq!(f(123456, "amazon.de"), "1.234,56\u{a0}€");
    assert_eq!(f(123456, "amazon.fr"), "1\u{202f}234,56\u{a0}€");
    assert_eq!(f(1598, "amazon.co.jp"), "￥1,598");
    assert_eq!(f(12345600, "amazon.in"), "₹1,23,456.00");
    assert_eq!(f(123490, "amazon.com.br"), "R$\u{a0}1.234,90");
    assert_eq!(f(123456, "amazon.pl"), "1\u{a0}234,56\u{a0}zł");
    assert_eq!(f(5, "amazon.co.uk"), "£0.05");
    assert_eq!(f(0, "amazon.co.jp"), "￥0");
    assert_eq!(f(123456, "amazon.ae"), "AED\u{a0}1,234.56");
    assert_eq!(f(100000000, "amazon.com.tr"), "1.000.000,00\u{a0}TL");
    assert_eq!(amount_string(123456, Currency::EUR), "1234.56");
    assert_eq!(amount_string(32970, Currency::JPY), "32970");
    assert_eq!(amount_string(5, Currency::USD), "0.05");
}
