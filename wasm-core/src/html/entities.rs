//! Character references: the named ones Amazon pages (and most of the web)
//! actually use, plus decimal and hexadecimal numeric references.
//!
//! Judgement call: the full HTML5 table has 2,231 names; carrying it would
//! cost the extension ~40 KB of wasm for names that never occur in a price,
//! a title or an attribute we read. Unknown names are left verbatim, which
//! is also what browsers do with unknown names.

/// Named references, sorted by name (binary search). The value is the
/// replacement text.
const NAMED: &[(&str, &str)] = &[
    ("AElig", "\u{c6}"),
    ("Aacute", "\u{c1}"),
    ("Acirc", "\u{c2}"),
    ("Agrave", "\u{c0}"),
    ("Aring", "\u{c5}"),
    ("Atilde", "\u{c3}"),
    ("Auml", "\u{c4}"),
    ("Ccedil", "\u{c7}"),
    ("Eacute", "\u{c9}"),
    ("Ecirc", "\u{ca}"),
    ("Egrave", "\u{c8}"),
    ("Euml", "\u{cb}"),
    ("Iacute", "\u{cd}"),
    ("Icirc", "\u{ce}"),
    ("Igrave", "\u{cc}"),
    ("Iuml", "\u{cf}"),
    ("Ntilde", "\u{d1}"),
    ("Oacute", "\u{d3}"),
    ("Ocirc", "\u{d4}"),
    ("Ograve", "\u{d2}"),
    ("Oslash", "\u{d8}"),
    ("Otilde", "\u{d5}"),
    ("Ouml", "\u{d6}"),
    ("Uacute", "\u{da}"),
    ("Ucirc", "\u{db}"),
    ("Ugrave", "\u{d9}"),
    ("Uuml", "\u{dc}"),
    ("Yacute", "\u{dd}"),
    ("aacute", "\u{e1}"),
    ("acirc", "\u{e2}"),
    ("acute", "\u{b4}"),
    ("aelig", "\u{e6}"),
    ("agrave", "\u{e0}"),
    ("amp", "&"),
    ("apos", "'"),
    ("aring", "\u{e5}"),
    ("atilde", "\u{e3}"),
    ("auml", "\u{e4}"),
    ("bdquo", "\u{201e}"),
    ("brvbar", "\u{a6}"),
    ("bull", "\u{2022}"),
    ("ccedil", "\u{e7}"),
    ("cedil", "\u{b8}"),
    ("cent", "\u{a2}"),
    ("copy", "\u{a9}"),
    ("curren", "\u{a4}"),
    ("dagger", "\u{2020}"),
    ("deg", "\u{b0}"),
    ("divide", "\u{f7}"),
    ("eacute", "\u{e9}"),
    ("ecirc", "\u{ea}"),
    ("egrave", "\u{e8}"),
    ("emsp", "\u{2003}"),
    ("ensp", "\u{2002}"),
    ("eth", "\u{f0}"),
    ("euml", "\u{eb}"),
    ("euro", "\u{20ac}"),
    ("frac12", "\u{bd}"),
    ("frac14", "\u{bc}"),
    ("frac34", "\u{be}"),
    ("gt", ">"),
    ("hellip", "\u{2026}"),
    ("iacute", "\u{ed}"),
    ("icirc", "\u{ee}"),
    ("iexcl", "\u{a1}"),
    ("igrave", "\u{ec}"),
    ("iquest", "\u{bf}"),
    ("iuml", "\u{ef}"),
    ("laquo", "\u{ab}"),
    ("ldquo", "\u{201c}"),
    ("lrm", "\u{200e}"),
    ("lsaquo", "\u{2039}"),
    ("lsquo", "\u{2018}"),
    ("lt", "<"),
    ("macr", "\u{af}"),
    ("mdash", "\u{2014}"),
    ("micro", "\u{b5}"),
    ("middot", "\u{b7}"),
    ("nbsp", "\u{a0}"),
    ("ndash", "\u{2013}"),
    ("not", "\u{ac}"),
    ("ntilde", "\u{f1}"),
    ("oacute", "\u{f3}"),
    ("ocirc", "\u{f4}"),
    ("ograve", "\u{f2}"),
    ("ordf", "\u{aa}"),
    ("ordm", "\u{ba}"),
    ("oslash", "\u{f8}"),
    ("otilde", "\u{f5}"),
    ("ouml", "\u{f6}"),
    ("para", "\u{b6}"),
    ("permil", "\u{2030}"),
    ("plusmn", "\u{b1}"),
    ("pound", "\u{a3}"),
    ("quot", "\""),
    ("raquo", "\u{bb}"),
    ("rdquo", "\u{201d}"),
    ("reg", "\u{ae}"),
    ("rlm", "\u{200f}"),
    ("rsaquo", "\u{203a}"),
    ("rsquo", "\u{2019}"),
    ("sbquo", "\u{201a}"),
    ("sect", "\u{a7}"),
    ("shy", "\u{ad}"),
    ("sup1", "\u{b9}"),
    ("sup2", "\u{b2}"),
    ("sup3", "\u{b3}"),
    ("szlig", "\u{df}"),
    ("thinsp", "\u{2009}"),
    ("thorn", "\u{fe}"),
    ("times", "\u{d7}"),
    ("trade", "\u{2122}"),
    ("uacute", "\u{fa}"),
    ("ucirc", "\u{fb}"),
    ("ugrave", "\u{f9}"),
    ("uml", "\u{a8}"),
    ("uuml", "\u{fc}"),
    ("yacute", "\u{fd}"),
    ("yen", "\u{a5}"),
    ("yuml", "\u{ff}"),
    ("zwj", "\u{200d}"),
    ("zwnj", "\u{200c}"),
];

/// Legacy names a browser also accepts without the trailing `;`.
const LEGACY_NO_SEMICOLON: &[&str] = &["amp", "gt", "lt", "nbsp", "quot", "copy", "reg"];

/// Windows-1252 remapping of numeric references 0x80..=0x9F, as the HTML
/// standard prescribes (`&#128;` is `€`).
const CP1252: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

fn lookup(name: &str) -> Option<&'static str> {
    NAMED
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .and_then(|i| NAMED.get(i).map(|(_, v)| *v))
}

/// Decodes character references in `s`. `in_attribute` applies the
/// standard's attribute rule: a legacy reference without `;` followed by an
/// alphanumeric or `=` is left alone (`?a=1&copy=2` stays as written).
pub fn decode(s: &str, in_attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match decode_one(after, in_attribute) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &after[used..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decodes one reference at the start of `s` (just after the `&`). Returns
/// the replacement and the number of bytes consumed.
fn decode_one(s: &str, in_attribute: bool) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'#') {
        let (hex, start) = match bytes.get(1) {
            Some(b'x' | b'X') => (true, 2),
            _ => (false, 1),
        };
        let digits = bytes[start..]
            .iter()
            .take_while(|b| {
                if hex {
                    b.is_ascii_hexdigit()
                } else {
                    b.is_ascii_digit()
                }
            })
            .count();
        if digits == 0 {
            return None;
        }
        let mut end = start + digits;
        let text = &s[start..end];
        let radix = if hex { 16 } else { 10 };
        // Overlong numbers saturate to an invalid code point.
        let value = u32::from_str_radix(text, radix).unwrap_or(0x110000);
        if bytes.get(end) == Some(&b';') {
            end += 1;
        }
        let value = match value {
            0x80..=0x9F => CP1252[(value - 0x80) as usize],
            v => v,
        };
        let c = match value {
            0 => '\u{FFFD}',
            v => char::from_u32(v).unwrap_or('\u{FFFD}'),
        };
        return Some((c.to_string(), end));
    }
    let name_len = bytes
        .iter()
        .take(32)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if name_len == 0 {
        return None;
    }
    let name = &s[..name_len];
    if bytes.get(name_len) == Some(&b';') {
        if let Some(v) = lookup(name) {
            return Some((v.to_string(), name_len + 1));
        }
    }
    // Legacy form without semicolon: longest legacy prefix of the name.
    for legacy in LEGACY_NO_SEMICOLON {
        if name.starts_with(legacy) {
            let next = bytes.get(legacy.len()).copied();
            if in_attribute && matches!(next, Some(b) if b.is_ascii_alphanumeric() || b == b'=') {
                return None;
            }
            let v = lookup(legacy)?;
            return Some((v.to_string(), legacy.len()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted() {
        for pair in NAMED.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} !< {}", pair[0].0, pair[1].0);
        }
    }

    #[test]
    fn decodes() {
        assert_eq!(decode("a &amp; b", false), "a & b");
        assert_eq!(decode("&euro;12&nbsp;x", false), "\u{20ac}12\u{a0}x");
        assert_eq!(decode("&#36;5 &#x24;6 &#128;", false), "$5 $6 \u{20ac}");
        assert_eq!(
            decode("&#0; &#xD800; &#99999999999;", false),
            "\u{fffd} \u{fffd} \u{fffd}"
        );
        assert_eq!(decode("&unknown; & &", false), "&unknown; & &");
        assert_eq!(decode("&ampx", false), "&x");
        assert_eq!(decode("?a=1&copy=2", true), "?a=1&copy=2");
        assert_eq!(decode("&pound;4", false), "\u{a3}4");
    }
}
