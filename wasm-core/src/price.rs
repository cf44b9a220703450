//! Prices: parsing what Amazon shows into integer minor units, and
//! formatting minor units the way each marketplace shows them.
//!
//! Invariant: no floating point anywhere. Decimal strings are read digit by
//! digit into `u64` minor units with checked arithmetic, and at most
//! [`MAX_DIGITS`] digits make a number.
//!
//! # How text is read
//!
//! 1. The text is normalised: full-width and Arabic-Indic digits become
//!    ASCII (with the full-width and Arabic separators), `￥` becomes `¥`,
//!    every kind of space (no-break, narrow no-break, thin, newlines) and
//!    the bidi marks of Arabic pages become one plain space, dashes and
//!    the minus sign become `-`.
//! 2. It is scanned for numbers (digits with grouping and decimal
//!    separators, including the spaced `9 . 98` that Amazon's split markup
//!    leaves in `textContent`) and currency markers (`$`, `US$`, `C$`, `€`,
//!    `EUR`, `R$`, `zł`, `kr`, `TL`, `₺`, ...). A number glued to letters
//!    (`330pt`, `B07G2L3JMM`) or followed by `%` is not an amount.
//! 3. Each number takes the currency marker right before or after it
//!    (whitespace between is fine). A marketplace's own symbol position is
//!    tried first. Bare `$` is the marketplace's dollar (USD, CAD, MXN,
//!    AUD, SGD); without a dollar marketplace it is ambiguous and the text
//!    has no price. An explicit foreign code or symbol (`EUR 12,99` on
//!    amazon.com) gives that currency.
//! 4. Each price is labelled by the words before it (`List Price:`, `Was:`,
//!    `De:`, `UVP`, `Sie sparen`, `Join Prime to buy this item at`, `from`,
//!    `Entrega`, ...), by a `/` or `per` after it (a unit price), or by a
//!    shipping word right after it (`+ ￥1,598 shipping`).
//!
//! # Judgement calls
//!
//! - Separators. With both `.` and `,`, the last one is the decimal
//!   separator. One separator repeated is grouping. One separator followed
//!   by one or two digits is decimal (`12,99`, `4.45`, `1234.5`). One
//!   separator followed by exactly three digits is ambiguous: the
//!   marketplace decides (`1.234 €` on amazon.de is 1234 EUR; `$1,234` on
//!   amazon.com is 1234 USD; `$1.234` on amazon.com would be three
//!   decimals, which USD does not have, so it is **no price**). Without a
//!   marketplace the currency's own convention decides where it has one
//!   (USD, GBP, INR: `.` is decimal; BRL, PLN, SEK, TRY: `,` is), and EUR,
//!   which has none, gives no price. JPY has no minor unit, so its
//!   separators are always grouping.
//! - Grouping must be well formed: groups of three (`1,234,567`) or Indian
//!   (`1,23,456`). A space may group only where the marketplace groups with
//!   a space (amazon.fr, .se, .pl) or when no marketplace is given.
//!   Elsewhere a number that reads as space-grouped is no price: on
//!   amazon.de `1 234,56 €` and `Pack of 3 129,99 €` give nothing rather
//!   than 234.56 or 3129.99.
//! - A text with one unlabelled price and other labelled prices (`$9.98
//!   List Price: $13.97`) is that one price: the labels say what the others
//!   are. Two different unlabelled prices that are not a range are no
//!   price: we never pick the first one. The same price repeated (Amazon
//!   renders an off-screen copy next to the visible one) counts once.
//! - Bare numbers (no currency marker anywhere in the text) count only
//!   when a marketplace gives the currency and the number looks like a
//!   price: it has exactly the currency's decimals (`Preis 12,99` on
//!   amazon.de), or it is the whole text and has a separator (`1.234` on
//!   amazon.de is 1234 EUR, `32,970` on amazon.co.jp is 32970 JPY). A plain
//!   integer without separator is never a price: `Only 4 left in stock`,
//!   `400` (Amazon points); structured numbers go through [`parse_decimal`].
//! - Negative amounts (`-$5.00`), more than [`MAX_DIGITS`] digits, malformed
//!   numbers next to a currency marker, and texts longer than
//!   [`MAX_TEXT_CHARS`] are no price.

use crate::marketplace::{Currency, Marketplace};

/// Most digits a number may have (whole and fraction together). Amazon's
/// dearest listings are below 10^9 in any currency; 15 digits stay far
/// from `u64` overflow and far above any real price.
pub const MAX_DIGITS: usize = 15;

/// Longest text `classify_price` reads; longer text is not "a price".
pub const MAX_TEXT_CHARS: usize = 4096;

/// An amount of money in the currency's minor unit (cents; yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Price {
    pub minor: u64,
    pub currency: Currency,
}

/// What a piece of price text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceText {
    /// One price: the price.
    Single(Price),
    /// `"$10.99 - $24.99"`: a variation still to choose.
    Range(Price, Price),
    /// `"($6.24 / Pack)"`, `"EUR 23,05 / kg"`.
    UnitPrice(Price),
    /// A price with a label that says it is not the price to pay.
    Labelled(PriceLabel, Price),
    /// No single price.
    NoPrice,
}

/// The kind of label in front of (or behind) a price that is not the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PriceLabel {
    /// List price, RRP, UVP, "Prix conseillé", print list price, M.R.P.
    ListPrice,
    /// A former price: "Was:", "De:", "Statt".
    Was,
    /// An amount saved: "You Save", "Sie sparen", "Você economiza".
    Savings,
    /// Any other price that is not the offer's price: member-only prices,
    /// shipping, "from" minimums, Subscribe & Save, coupons, instalments.
    Other,
}

// ---------------------------------------------------------------------
// Normalisation

fn normalize_char(c: char) -> char {
    match c {
        '\u{ff10}'..='\u{ff19}' => digit_char(c as u32 - 0xff10),
        '\u{0660}'..='\u{0669}' => digit_char(c as u32 - 0x0660),
        '\u{06f0}'..='\u{06f9}' => digit_char(c as u32 - 0x06f0),
        '\u{ffe5}' => '¥',
        '\u{ffe1}' => '£',
        '\u{ff04}' => '$',
        '\u{ff0c}' | '\u{066c}' => ',',
        '\u{ff0e}' | '\u{066b}' => '.',
        '\u{2019}' | '\u{02bc}' => '\'',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}' => '-',
        // Bidi marks and zero-width characters sit between the Arabic
        // currency signs and the number; they separate like a space.
        '\u{200b}'..='\u{200f}' | '\u{061c}' | '\u{2060}' | '\u{feff}' => ' ',
        c if c.is_whitespace() => ' ',
        c => c,
    }
}

fn digit_char(d: u32) -> char {
    char::from_digit(d, 10).unwrap_or('0')
}

// ---------------------------------------------------------------------
// Currency markers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sym {
    Fixed(Currency),
    /// A bare `$`: the marketplace's dollar.
    Dollar,
}

/// Currency markers, longest first where one is a prefix of another.
/// Markers starting with a letter only match as whole words.
const MARKERS: &[(&str, Sym)] = &[
    ("CDN$", Sym::Fixed(Currency::CAD)),
    ("US$", Sym::Fixed(Currency::USD)),
    ("CA$", Sym::Fixed(Currency::CAD)),
    ("AU$", Sym::Fixed(Currency::AUD)),
    ("MX$", Sym::Fixed(Currency::MXN)),
    ("SG$", Sym::Fixed(Currency::SGD)),
    ("C$", Sym::Fixed(Currency::CAD)),
    ("A$", Sym::Fixed(Currency::AUD)),
    ("S$", Sym::Fixed(Currency::SGD)),
    ("R$", Sym::Fixed(Currency::BRL)),
    ("E£", Sym::Fixed(Currency::EGP)),
    ("$", Sym::Dollar),
    ("€", Sym::Fixed(Currency::EUR)),
    ("£", Sym::Fixed(Currency::GBP)),
    ("¥", Sym::Fixed(Currency::JPY)),
    ("円", Sym::Fixed(Currency::JPY)),
    ("₹", Sym::Fixed(Currency::INR)),
    ("Rs.", Sym::Fixed(Currency::INR)),
    ("Rs", Sym::Fixed(Currency::INR)),
    ("₺", Sym::Fixed(Currency::TRY)),
    ("TL", Sym::Fixed(Currency::TRY)),
    ("zł", Sym::Fixed(Currency::PLN)),
    ("kr.", Sym::Fixed(Currency::SEK)),
    ("kr", Sym::Fixed(Currency::SEK)),
    ("د.إ.", Sym::Fixed(Currency::AED)),
    ("د.إ", Sym::Fixed(Currency::AED)),
    ("ر.س.", Sym::Fixed(Currency::SAR)),
    ("ر.س", Sym::Fixed(Currency::SAR)),
    ("ج.م", Sym::Fixed(Currency::EGP)),
];

/// A letter of a space-separated script. Numbers glued to such letters
/// (`330pt`, `B07G2L3JMM`) are not amounts; Japanese runs its words
/// together (`￥1,598税込`), so its scripts do not glue.
fn is_word_char(c: char) -> bool {
    c.is_alphabetic() && !is_cjk(c)
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' // hiragana, katakana
        | '\u{3400}'..='\u{4dbf}' // CJK extension A
        | '\u{4e00}'..='\u{9fff}' // CJK unified ideographs
        | '\u{f900}'..='\u{faff}' // CJK compatibility ideographs
        | '\u{ff66}'..='\u{ff9f}' // half-width katakana
    )
}

/// The currency marker starting at `i`, with its length in chars.
fn marker_at(chars: &[char], i: usize) -> Option<(Sym, usize)> {
    let &first = chars.get(i)?;
    if first.is_ascii_digit() || first == ' ' {
        return None;
    }
    let prev_is_word = i > 0 && is_word_char(chars[i - 1]);
    // ISO codes: three upper-case ASCII letters that name a known currency.
    if !prev_is_word && i + 3 <= chars.len() && chars[i..i + 3].iter().all(char::is_ascii_uppercase)
    {
        let code: String = chars[i..i + 3].iter().collect();
        let next_is_word = chars.get(i + 3).is_some_and(|c| is_word_char(*c));
        if !next_is_word {
            if let Some(cur) = Currency::from_code(&code) {
                return Some((Sym::Fixed(cur), 3));
            }
        }
    }
    for (text, sym) in MARKERS {
        if !text.starts_with(first) {
            continue;
        }
        let n = text.chars().count();
        if i + n > chars.len() || !text.chars().eq(chars[i..i + n].iter().copied()) {
            continue;
        }
        let starts_word = text.chars().next().is_some_and(is_word_char);
        let ends_word = text.chars().last().is_some_and(is_word_char);
        if starts_word && prev_is_word {
            continue;
        }
        if ends_word && chars.get(i + n).is_some_and(|c| is_word_char(*c)) {
            continue;
        }
        return Some((*sym, n));
    }
    None
}

fn resolve(sym: Sym, marketplace: Option<Marketplace>) -> Option<Currency> {
    match sym {
        Sym::Fixed(c) => Some(c),
        Sym::Dollar => {
            let c = marketplace?.currency();
            [
                Currency::USD,
                Currency::CAD,
                Currency::MXN,
                Currency::AUD,
                Currency::SGD,
            ]
            .contains(&c)
            .then_some(c)
        }
    }
}

// ---------------------------------------------------------------------
// Numbers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// `.` or `,` between digits.
    Punct(char),
    /// `.` or `,` with a space on one or both sides (`9 . 98`): always the
    /// decimal separator, always last.
    Spaced(char),
    /// `'` (Swiss grouping).
    Apostrophe,
    /// A space before a group of three digits.
    Space,
}

/// A scanned number: digit groups and the separators between them.
#[derive(Debug, Clone, Default)]
struct RawNumber {
    /// `(separator before the group, digits of the group)`.
    groups: Vec<(Option<Sep>, String)>,
    end: usize,
}

impl RawNumber {
    fn digit_count(&self) -> usize {
        self.groups.iter().map(|(_, d)| d.len()).sum()
    }
}

fn digit_run(chars: &[char], mut i: usize) -> (String, usize) {
    let mut s = String::new();
    while let Some(c) = chars.get(i).filter(|c| c.is_ascii_digit()) {
        s.push(*c);
        i += 1;
    }
    (s, i)
}

fn is_digit_at(chars: &[char], i: usize) -> bool {
    chars.get(i).is_some_and(|c| c.is_ascii_digit())
}

/// Scans the number starting at `start` (a digit).
fn scan_number(chars: &[char], start: usize) -> RawNumber {
    let (first, mut i) = digit_run(chars, start);
    let mut num = RawNumber {
        groups: vec![(None, first)],
        end: i,
    };
    loop {
        let c = chars.get(i).copied();
        match c {
            Some(p @ ('.' | ',')) if is_digit_at(chars, i + 1) => {
                let (d, j) = digit_run(chars, i + 1);
                num.groups.push((Some(Sep::Punct(p)), d));
                i = j;
            }
            Some('\'') if is_digit_at(chars, i + 1) => {
                let (d, j) = digit_run(chars, i + 1);
                num.groups.push((Some(Sep::Apostrophe), d));
                i = j;
            }
            Some(' ' | '.' | ',') => {
                // A space before exactly three digits: grouping, unless
                // the number already has another separator ("$12.99 100").
                let only_spaces = num.groups[1..].iter().all(|(s, _)| *s == Some(Sep::Space));
                if c == Some(' ') && only_spaces {
                    let (d, j) = digit_run(chars, i + 1);
                    if d.len() == 3 {
                        num.groups.push((Some(Sep::Space), d));
                        i = j;
                        continue;
                    }
                }
                // Spaced decimal: at most one space, `.`/`,`, at most one
                // space (at least one space in all), then one or two digits
                // that end the number.
                let mut j = i;
                let mut spaces = 0;
                if chars.get(j) == Some(&' ') {
                    j += 1;
                    spaces += 1;
                }
                let Some(p @ ('.' | ',')) = chars.get(j).copied() else {
                    break;
                };
                j += 1;
                if chars.get(j) == Some(&' ') {
                    j += 1;
                    spaces += 1;
                }
                let (d, k) = digit_run(chars, j);
                let continues =
                    matches!(chars.get(k), Some('.' | ',' | '\'')) && is_digit_at(chars, k + 1);
                if spaces > 0 && (1..=2).contains(&d.len()) && !continues {
                    num.groups.push((Some(Sep::Spaced(p)), d));
                    i = k;
                }
                break;
            }
            _ => break,
        }
    }
    num.end = i;
    num
}

/// Whether whole-part groups are well formed: groups of three, or Indian
/// grouping (1-2 digits, then twos, then a final three).
fn grouping_ok(groups: &[&str]) -> bool {
    let Some((first, rest)) = groups.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return !first.is_empty();
    }
    let western = (1..=3).contains(&first.len()) && rest.iter().all(|g| g.len() == 3);
    let indian = (1..=2).contains(&first.len())
        && rest.last().is_some_and(|g| g.len() == 3)
        && rest[..rest.len() - 1].iter().all(|g| g.len() == 2);
    western || indian
}

/// Appends decimal digits to `acc` with overflow checks.
fn push_digits(mut acc: u64, digits: &str) -> Option<u64> {
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(acc)
}

/// Minor units from a whole part and a fraction of at most `exp` digits.
fn to_minor(whole: &str, fraction: &str, exp: u8) -> Option<u64> {
    let exp = usize::from(exp);
    if fraction.len() > exp || whole.len() + exp > MAX_DIGITS + 2 {
        return None;
    }
    let acc = push_digits(0, whole)?;
    let acc = push_digits(acc, fraction)?;
    let missing = u32::try_from(exp - fraction.len()).ok()?;
    acc.checked_mul(10u64.checked_pow(missing)?)
}

/// Reads a scanned number as minor units of a currency with `exp` decimals.
/// `decimal_hint` is the locale's decimal separator, used only for the
/// ambiguous one-separator-then-three-digits case. `space_grouping`: whether
/// a space may group digits here.
fn interpret(
    num: &RawNumber,
    exp: u8,
    decimal_hint: Option<char>,
    space_grouping: bool,
) -> Option<u64> {
    if num.digit_count() > MAX_DIGITS {
        return None;
    }
    if !space_grouping && num.groups.iter().any(|(s, _)| *s == Some(Sep::Space)) {
        return None;
    }
    let seps: Vec<Sep> = num.groups.iter().filter_map(|(s, _)| *s).collect();
    let last_group = num.groups.last().map_or("", |(_, d)| d.as_str());
    let has_decimal = match seps.last() {
        None => false,
        Some(Sep::Spaced(_)) => true,
        Some(Sep::Punct(c)) => {
            let same = seps.iter().filter(|s| **s == Sep::Punct(*c)).count();
            if same > 1 {
                false
            } else if seps.len() > 1 || last_group.len() != 3 {
                true
            } else if exp == 0 {
                false
            } else {
                match decimal_hint {
                    Some(d) => d == *c,
                    None => return None,
                }
            }
        }
        Some(Sep::Apostrophe | Sep::Space) => false,
    };
    let (whole_groups, fraction) = if has_decimal {
        if exp == 0 {
            return None;
        }
        (&num.groups[..num.groups.len() - 1], last_group)
    } else {
        (&num.groups[..], "")
    };
    // All grouping separators must be one and the same.
    let group_seps: Vec<Sep> = whole_groups.iter().filter_map(|(s, _)| *s).collect();
    if let Some(first) = group_seps.first() {
        if matches!(first, Sep::Spaced(_)) || group_seps.iter().any(|s| s != first) {
            return None;
        }
        if let (Sep::Punct(g), Some((Some(Sep::Punct(d) | Sep::Spaced(d)), _))) =
            (first, num.groups.last())
        {
            if has_decimal && g == d {
                return None;
            }
        }
    }
    let digits: Vec<&str> = whole_groups.iter().map(|(_, d)| d.as_str()).collect();
    if !grouping_ok(&digits) {
        return None;
    }
    to_minor(&digits.concat(), fraction, exp)
}

// ---------------------------------------------------------------------
// Labels

/// Words that mark the price after them as not the price to pay, by kind,
/// in priority order (the first kind with a match wins: "Subscribe & Save"
/// is `Other`, not `Savings`). Matched case-insensitively as whole words.
const PREFIX_LABELS: &[(PriceLabel, &[&str])] = &[
    (
        PriceLabel::Other,
        &[
            "join prime",
            "prime member",
            "prime members",
            "prime price",
            "prime-preis",
            "precio prime",
            "prix prime",
            "subscribe & save",
            "subscribe and save",
            "spar-abo",
            "abonnez-vous",
            "iscriviti e risparmia",
            "suscríbete y ahorra",
            "programe e poupe",
            "coupon",
            "gutschein",
            "cupón",
            "cupom",
            "kindle unlimited",
            "trade-in",
            "配送料",
            "送料",
            "total price",
            "total",
            "gesamtpreis",
            "prix total",
            "precio total",
            "prezzo totale",
            "preço total",
            "emi",
            "em até",
        ],
    ),
    (
        PriceLabel::ListPrice,
        &[
            "list price",
            "list",
            "typical",
            "listprice",
            "rrp",
            "uvp",
            "unverb. preisempf.",
            "unverbindliche preisempfehlung",
            "listenpreis",
            "prix conseillé",
            "prix de vente conseillé",
            "prezzo consigliato",
            "prezzo di listino",
            "precio recomendado",
            "precio de lista",
            "pvpr",
            "preço de lista",
            "adviesprijs",
            "cena katalogowa",
            "rekommenderat pris",
            "m.r.p",
            "mrp",
            "typical price",
            "liste fiyatı",
            "参考価格",
            "希望小売価格",
        ],
    ),
    (
        PriceLabel::Was,
        &[
            "was",
            "war",
            "statt",
            "vorher",
            "zuvor",
            "de:",
            "avant",
            "prima",
            "antes",
            "anteriormente",
            "previous price",
            "niedrigster preis",
            "lowest price",
        ],
    ),
    (
        PriceLabel::Savings,
        &[
            "you save",
            "save",
            "savings",
            "sie sparen",
            "sparen",
            "você economiza",
            "economize",
            "economiza",
            "économisez",
            "économie",
            "ahorras",
            "ahorra",
            "ahorro",
            "risparmi",
            "risparmio",
            "bespaar",
            "je bespaart",
            "oszczędzasz",
            "du sparar",
            "spara",
            "tasarruf",
            "poupe",
            "割引",
        ],
    ),
    (
        PriceLabel::Other,
        &[
            "from",
            "ab",
            "desde",
            "a partir de",
            "à partir de",
            "vanaf",
            "shipping",
            "delivery",
            "versand",
            "versandkosten",
            "lieferung",
            "livraison",
            "spedizione",
            "envío",
            "envio",
            "entrega",
            "frete",
            "verzending",
            "dostawa",
            "frakt",
            "kargo",
        ],
    ),
];

/// Words that, right after a price, mark it as not the price to pay
/// (`+ ￥1,598 shipping`, `$10.11 Shipping to Spain`).
const SUFFIX_LABELS: &[&str] = &[
    "shipping",
    "delivery",
    "versand",
    "versandkosten",
    "livraison",
    "spedizione",
    "envío",
    "envio",
    "de envío",
    "de frete",
    "frete",
    "verzendkosten",
    "dostawa",
    "frakt",
    "kargo",
    "points",
    "pt",
    "sem juros",
    "配送料",
    "送料",
    "ポイント",
    "割引",
    "off",
];

/// Whether `needle` occurs in `hay` as whole words, trying only the word
/// starts (byte offsets) given: every keyword starts with a letter, so a
/// whole-word match can only begin where a word begins. Much cheaper than a
/// substring search per keyword.
fn contains_word(hay: &str, word_starts: &[usize], needle: &str) -> bool {
    // Japanese has no spaces between words: its keywords match anywhere.
    if needle.chars().next().is_some_and(is_cjk) {
        return hay.contains(needle);
    }
    let needs_end = needle.chars().last().is_some_and(char::is_alphanumeric);
    word_starts.iter().any(|&i| {
        hay[i..].starts_with(needle)
            && (!needs_end
                || hay[i + needle.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric()))
    })
}

fn lowercase(chars: &[char]) -> Vec<char> {
    chars.iter().flat_map(|c| c.to_lowercase()).collect()
}

fn prefix_label(segment: &[char]) -> Option<PriceLabel> {
    if !segment.iter().any(|c| c.is_alphabetic()) {
        return None;
    }
    let mut seg: String = lowercase(segment).into_iter().collect();
    // "$9.98 with 29 percent savings": Amazon's accessible description of
    // the price before it, not a label of the price after it.
    for phrase in ["percent savings", "% savings", "percent off", "% off"] {
        if seg.contains(phrase) {
            seg = seg.replace(phrase, " ");
        }
    }
    let mut word_starts = Vec::new();
    let mut prev_alnum = false;
    for (i, c) in seg.char_indices() {
        let alnum = c.is_alphanumeric();
        if alnum && !prev_alnum {
            word_starts.push(i);
        }
        prev_alnum = alnum;
    }
    PREFIX_LABELS
        .iter()
        .find(|(_, words)| words.iter().any(|w| contains_word(&seg, &word_starts, w)))
        .map(|(label, _)| *label)
}

fn starts_with_word(seg: &[char], word: &str) -> bool {
    let n = word.chars().count();
    seg.len() >= n
        && word.chars().eq(seg[..n].iter().copied())
        && seg.get(n).is_none_or(|c| !c.is_alphanumeric())
}

/// What the text right after a price says about it.
fn suffix_kind(segment: &[char]) -> Suffix {
    // Only the start matters: the longest word looked for is short.
    let seg = lowercase(&segment[..segment.len().min(40)]);
    let start = seg
        .iter()
        .position(|c| !matches!(c, ' ' | '+' | '(' | ')'))
        .unwrap_or(seg.len());
    let seg = &seg[start..];
    if seg.first() == Some(&'/')
        || starts_with_word(seg, "per")
        || starts_with_word(seg, "pro")
        || starts_with_word(seg, "each")
    {
        return Suffix::Unit;
    }
    let Some(word) = SUFFIX_LABELS.iter().find(|w| starts_with_word(seg, w)) else {
        return Suffix::None;
    };
    // "EUR 219,00 Envío GRATIS": free shipping says nothing against the
    // price before it; "£3.99 delivery" makes it the delivery charge.
    let rest: String = seg[word.chars().count()..].iter().collect();
    let next = rest
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("");
    if FREE_WORDS.contains(&next) {
        Suffix::None
    } else {
        Suffix::Label
    }
}

/// "Free" in the marketplaces' languages, lower case.
const FREE_WORDS: &[&str] = &[
    "free",
    "gratis",
    "gratuit",
    "gratuite",
    "gratuito",
    "gratuita",
    "grátis",
    "kostenlos",
    "kostenlose",
    "darmowa",
    "ücretsiz",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suffix {
    None,
    Unit,
    Label,
}

fn is_range_connector(segment: &[char]) -> bool {
    let seg: String = lowercase(segment).into_iter().collect();
    matches!(
        seg.trim(),
        "-" | "~" | "to" | "bis" | "a" | "à" | "até" | "al" | "tot" | "till" | "do"
    )
}

// ---------------------------------------------------------------------
// Classification

/// One price found in the text.
#[derive(Debug, Clone, Copy)]
struct Found {
    start: usize,
    end: usize,
    /// `None`: a currency marker was attached but the amount is not valid.
    price: Option<Price>,
}

/// Finds the prices in normalised text. `Err(())` when something next to
/// a currency marker is not a valid amount (the whole text is then no
/// price: a malformed price must not let another one win).
fn find_prices(chars: &[char], marketplace: Option<Marketplace>) -> Result<Vec<Found>, ()> {
    let space_grouping = marketplace.is_none_or(|m| m.number_format().groups_with_space());
    let symbol_first = marketplace.is_none_or(|m| m.number_format().symbol_first);

    // Pass 1: tokens.
    let mut markers: Vec<(usize, usize, Sym)> = Vec::new();
    let mut numbers: Vec<(usize, RawNumber)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let glued_before =
                i > 0 && is_word_char(chars[i - 1]) && markers.last().is_none_or(|m| m.1 != i);
            let num = scan_number(chars, i);
            let end = num.end;
            let glued_after =
                chars.get(end).is_some_and(|c| is_word_char(*c)) && marker_at(chars, end).is_none();
            let mut k = end;
            while chars.get(k) == Some(&' ') {
                k += 1;
            }
            let percent = chars.get(k) == Some(&'%');
            if !glued_before && !glued_after && !percent {
                numbers.push((i, num));
            }
            i = end.max(i + 1);
            continue;
        }
        if let Some((sym, n)) = marker_at(chars, i) {
            markers.push((i, i + n, sym));
            i += n;
            continue;
        }
        i += 1;
    }

    // Pass 2: attach markers, the marketplace's own side first.
    let mut used = vec![false; markers.len()];
    let mut attached: Vec<Option<(usize, Sym, usize)>> = vec![None; numbers.len()];
    for prefix_pass in [symbol_first, !symbol_first] {
        for (n_idx, (start, num)) in numbers.iter().enumerate() {
            if attached[n_idx].is_some() {
                continue;
            }
            let found = if prefix_pass {
                let mut k = *start;
                while k > 0 && chars[k - 1] == ' ' {
                    k -= 1;
                }
                markers.iter().position(|m| m.1 == k)
            } else {
                let mut k = num.end;
                while chars.get(k) == Some(&' ') {
                    k += 1;
                }
                markers.iter().position(|m| m.0 == k)
            };
            if let Some(m_idx) = found.filter(|m| !used[*m]) {
                used[m_idx] = true;
                let (ms, me, sym) = markers[m_idx];
                let span = if prefix_pass { ms } else { me };
                attached[n_idx] = Some((m_idx, sym, span));
            }
        }
    }

    let any_attached = attached.iter().any(Option::is_some);
    let mut found = Vec::new();
    for ((start, num), att) in numbers.iter().zip(&attached) {
        match att {
            Some((_, sym, span)) => {
                let (s, e) = if *span < *start {
                    (*span, num.end)
                } else {
                    (*start, *span)
                };
                // A minus sign right before (not after a digit, which makes it
                // a range dash as in "$10-$20").
                let negative = s > 0
                    && chars[s - 1] == '-'
                    && (s < 2
                        || !(chars[s - 2].is_ascii_digit()
                            || markers.iter().any(|m| m.1 == s - 1)));
                let currency = resolve(*sym, marketplace).ok_or(())?;
                if negative {
                    return Err(());
                }
                let hint = marketplace
                    .map(|m| m.number_format().decimal)
                    .or(currency.conventional_decimal());
                let minor = interpret(num, currency.exponent(), hint, space_grouping).ok_or(())?;
                found.push(Found {
                    start: s,
                    end: e,
                    price: Some(Price { minor, currency }),
                });
            }
            None if !any_attached => {
                // Bare number: only with a marketplace, only price-shaped:
                // exactly the currency's decimals ("Preis 12,99"), or the
                // whole text is one number with a separator ("1.234" on
                // amazon.de). A plain integer is a count, points or a
                // rating total ("Total Points: 400", "400").
                let Some(m) = marketplace else { continue };
                let currency = m.currency();
                let exp = currency.exponent();
                let has_exact_decimals = exp > 0
                    && num.groups.len() > 1
                    && num
                        .groups
                        .last()
                        .is_some_and(|(_, d)| d.len() == usize::from(exp));
                let whole_text = num.groups.len() > 1
                    && chars[..*start].iter().all(|c| *c == ' ')
                    && chars[num.end..].iter().all(|c| *c == ' ');
                if !(has_exact_decimals || whole_text) {
                    continue;
                }
                if *start > 0 && chars[*start - 1] == '-' {
                    return Err(());
                }
                if let Some(minor) =
                    interpret(num, exp, Some(m.number_format().decimal), space_grouping)
                {
                    found.push(Found {
                        start: *start,
                        end: num.end,
                        price: Some(Price { minor, currency }),
                    });
                }
            }
            None => {}
        }
    }
    Ok(found)
}

/// Classifies price text. See the module docs for the judgement calls.
pub fn classify_price(text: &str, marketplace: Option<Marketplace>) -> PriceText {
    let chars: Vec<char> = text
        .chars()
        .take(MAX_TEXT_CHARS + 1)
        .map(normalize_char)
        .collect();
    if chars.len() > MAX_TEXT_CHARS {
        return PriceText::NoPrice;
    }
    let Ok(found) = find_prices(&chars, marketplace) else {
        return PriceText::NoPrice;
    };

    // Merge a price repeated back to back ("$8.99$8.99": off-screen copy
    // and visible copy).
    let mut merged: Vec<(usize, usize, Price)> = Vec::new();
    for f in &found {
        let Some(price) = f.price else {
            return PriceText::NoPrice;
        };
        if let Some(last) = merged.last_mut() {
            if last.2 == price && chars[last.1..f.start].iter().all(|c| *c == ' ') {
                last.1 = f.end;
                continue;
            }
        }
        merged.push((f.start, f.end, price));
    }

    // Role of each price.
    let mut main: Vec<usize> = Vec::new();
    let mut labelled: Vec<(PriceLabel, Price)> = Vec::new();
    let mut units: Vec<Price> = Vec::new();
    for (idx, (start, end, price)) in merged.iter().enumerate() {
        let seg_start = if idx == 0 { 0 } else { merged[idx - 1].1 };
        let seg_end = merged.get(idx + 1).map_or(chars.len(), |n| n.0);
        match suffix_kind(&chars[*end..seg_end]) {
            Suffix::Unit => {
                units.push(*price);
                continue;
            }
            Suffix::Label => {
                labelled.push((PriceLabel::Other, *price));
                continue;
            }
            Suffix::None => {}
        }
        match prefix_label(&chars[seg_start..*start]) {
            Some(label) => labelled.push((label, *price)),
            None => main.push(idx),
        }
    }

    let mut distinct_main: Vec<Price> = Vec::new();
    for idx in &main {
        if !distinct_main.contains(&merged[*idx].2) {
            distinct_main.push(merged[*idx].2);
        }
    }
    match distinct_main.len() {
        1 => PriceText::Single(distinct_main[0]),
        2 if main.len() == 2 => {
            let (a, b) = (merged[main[0]], merged[main[1]]);
            if a.2.currency == b.2.currency
                && main[1] == main[0] + 1
                && is_range_connector(&chars[a.1..b.0])
            {
                PriceText::Range(a.2, b.2)
            } else {
                PriceText::NoPrice
            }
        }
        0 => {
            labelled.dedup();
            units.dedup();
            match (labelled.as_slice(), units.as_slice()) {
                ([(label, price)], _) => PriceText::Labelled(*label, *price),
                ([], [price]) => PriceText::UnitPrice(*price),
                _ => PriceText::NoPrice,
            }
        }
        _ => PriceText::NoPrice,
    }
}

/// The price in `text`, only when the text is one single price
/// ([`PriceText::Single`]).
pub fn parse_price(text: &str, marketplace: Option<Marketplace>) -> Option<Price> {
    match classify_price(text, marketplace) {
        PriceText::Single(p) => Some(p),
        _ => None,
    }
}

/// Amazon's split markup:
/// `<span class="a-price-symbol">$</span><span class="a-price-whole">1,234<span class="a-price-decimal">.</span></span><span class="a-price-fraction">56</span>`.
///
/// `whole` may end in the decimal separator (the decimal span sits inside
/// the whole span). The symbol must be one currency marker and nothing
/// else; without a symbol the marketplace's currency is used. A currency
/// without minor unit (JPY) takes no fraction.
pub fn parse_parts(
    symbol: Option<&str>,
    whole: &str,
    fraction: Option<&str>,
    marketplace: Option<Marketplace>,
) -> Option<Price> {
    let currency = match symbol.map(str::trim).filter(|s| !s.is_empty()) {
        Some(sym) => {
            let chars: Vec<char> = sym.chars().map(normalize_char).collect();
            let (s, n) = marker_at(&chars, 0)?;
            if n != chars.len() {
                return None;
            }
            resolve(s, marketplace)?
        }
        None => marketplace?.currency(),
    };
    let whole: Vec<char> = whole.chars().map(normalize_char).collect();
    let mut whole: &[char] = &whole;
    while let Some((last, rest)) = whole.split_last() {
        if matches!(last, ' ' | '.' | ',') {
            whole = rest;
        } else {
            break;
        }
    }
    while let Some((' ', rest)) = whole.split_first() {
        whole = rest;
    }
    // Grouping: one kind of separator between groups.
    let mut groups: Vec<String> = vec![String::new()];
    let mut sep: Option<char> = None;
    for c in whole {
        if c.is_ascii_digit() {
            groups.last_mut()?.push(*c);
        } else if matches!(c, '.' | ',' | '\'' | ' ') && sep.is_none_or(|s| s == *c) {
            sep = Some(*c);
            groups.push(String::new());
        } else {
            return None;
        }
    }
    let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
    if !grouping_ok(&group_refs) || group_refs.iter().any(|g| g.is_empty()) {
        return None;
    }
    let fraction: Vec<char> = fraction.unwrap_or("").chars().map(normalize_char).collect();
    let fraction: String = fraction.into_iter().filter(|c| *c != ' ').collect();
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = group_refs.concat();
    if digits.len() + fraction.len() > MAX_DIGITS {
        return None;
    }
    let minor = to_minor(&digits, &fraction, currency.exponent())?;
    Some(Price { minor, currency })
}

/// A machine number from structured data (`"12.48"`, `"1234.5"`,
/// `"32970"`) in the currency's minor unit. Plain ASCII digits with at most
/// one `.`; no sign, no grouping, no exponent. Digits past the minor unit
/// are accepted only when they are zeros (`"32970.00"` JPY, `"12.480"`).
pub fn parse_decimal(number: &str, currency: Currency) -> Option<u64> {
    let number = number.trim();
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (number.contains('.') && frac.is_empty()) {
        return None;
    }
    let exp = usize::from(currency.exponent());
    let (kept, dropped) = frac.split_at(frac.len().min(exp));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() + kept.len() > MAX_DIGITS {
        return None;
    }
    to_minor(whole, kept, currency.exponent())
}

/// Formats minor units the way the marketplace shows prices: `$1,234.56`,
/// `1.234,56 €`, `￥1,598`, `₹1,23,456.00`, `R$ 1.234,90`, `1 234,56 zł`.
/// Spaces are the no-break kinds the stores use (U+00A0; U+202F for
/// grouping on amazon.fr).
pub fn format_price(minor: u64, marketplace: Marketplace) -> String {
    let f = marketplace.number_format();
    let exp = u32::from(marketplace.currency().exponent());
    let scale = 10u64.pow(exp);
    let whole = (minor / scale).to_string();
    let mut number = String::new();
    let len = whole.len();
    for (i, c) in whole.chars().enumerate() {
        let left = len - i;
        let boundary = if f.indian_grouping {
            left >= 3 && (left - 3) % 2 == 0
        } else {
            left % 3 == 0
        };
        if i > 0 && boundary {
            number.push(f.group);
        }
        number.push(c);
    }
    if exp > 0 {
        number.push(f.decimal);
        number.push_str(&format!("{:0width$}", minor % scale, width = exp as usize));
    }
    if f.symbol_first {
        format!("{}{}{}", f.symbol, f.symbol_space, number)
    } else {
        format!("{}{}{}", number, f.symbol_space, f.symbol)
    }
}

/// The decimal string of an amount: 123456 EUR -> `"1234.56"`; 32970 JPY ->
/// `"32970"`.
pub fn amount_string(minor: u64, currency: Currency) -> String {
    let exp = u32::from(currency.exponent());
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(exp);
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = exp as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_shapes() {
        assert!(grouping_ok(&["1", "234", "567"]));
        assert!(grouping_ok(&["1", "23", "456"]));
        assert!(grouping_ok(&["12", "34", "56", "789"]));
        assert!(!grouping_ok(&["1234", "567"]));
        assert!(!grouping_ok(&["1", "23"]));
    }

    #[test]
    fn indian_format_boundaries() {
        let m = Marketplace::AMAZON_IN;
        assert_eq!(format_price(12345600, m), "₹1,23,456.00");
        assert_eq!(format_price(99900, m), "₹999.00");
        assert_eq!(format_price(100000, m), "₹1,000.00");
        assert_eq!(format_price(1234567800, m), "₹1,23,45,678.00");
    }
}
