//! A CSS selector engine for [`Document`], covering the subset the
//! extraction rules use: type selectors, `*`, `#id`, `.class` (several),
//! attribute selectors `[a]`, `[a=v]`, `[a^=v]`, `[a$=v]`, `[a*=v]`,
//! `[a~=v]`, `[a|=v]`, `:not(<compound>)`, the descendant and child (`>`)
//! combinators, and selector lists (`,`).
//!
//! Every selector accepted here means the same to a browser's
//! `querySelectorAll` (the rules run on both). Anything else (other
//! pseudo-classes, `+`/`~` combinators, namespaces) is rejected with a
//! [`SelectorError`] rather than guessed at.
//!
//! Case: tag and attribute names are ASCII case-insensitive, ids, classes
//! and attribute values case-sensitive (standards mode).

use super::{Document, NodeId};
use std::fmt;

/// Why a selector string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid selector {:?}: {}", self.selector, self.reason)
    }
}

impl std::error::Error for SelectorError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttrOp {
    Exists,
    Equals,
    Prefix,
    Suffix,
    Contains,
    Word,
    DashPrefix,
}

#[derive(Debug, Clone)]
struct AttrSel {
    name: String,
    op: AttrOp,
    value: String,
}

#[derive(Debug, Clone, Default)]
struct Compound {
    tag: Option<String>,
    ids: Vec<String>,
    classes: Vec<String>,
    attrs: Vec<AttrSel>,
    nots: Vec<Compound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Combinator {
    Descendant,
    Child,
}

/// One complex selector, stored right to left: `parts[0]` is the subject;
/// `parts[k].1` is how `parts[k]` relates to `parts[k + 1]`.
#[derive(Debug, Clone)]
pub(super) struct Complex {
    parts: Vec<(Compound, Combinator)>,
}

/// A parsed selector list.
#[derive(Debug, Clone)]
pub struct Selector {
    list: Vec<Complex>,
}

struct Parser<'a> {
    src: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: &'static str) -> SelectorError {
        SelectorError {
            selector: self.src.to_string(),
            reason,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn ident(&mut self) -> Result<String, SelectorError> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii() {
                out.push(c);
                self.pos += 1;
            } else if c == '\\' {
                self.pos += 1;
                match self.peek() {
                    Some(e) if !e.is_ascii_hexdigit() && e != '\n' => {
                        out.push(e);
                        self.pos += 1;
                    }
                    _ => return Err(self.err("unsupported escape")),
                }
            } else {
                break;
            }
        }
        if out.is_empty() {
            return Err(self.err("expected a name"));
        }
        if out.starts_with(|c: char| c.is_ascii_digit())
            || (out.starts_with('-') && out[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            return Err(self.err("a name cannot start with a digit"));
        }
        Ok(out)
    }

    fn string(&mut self, quote: char) -> Result<String, SelectorError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(e) if !e.is_ascii_hexdigit() && e != '\n' => {
                            out.push(e);
                            self.pos += 1;
                        }
                        _ => return Err(self.err("unsupported escape")),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn attr(&mut self) -> Result<AttrSel, SelectorError> {
        self.pos += 1; // '['
        self.skip_ws();
        let name = self.ident()?.to_ascii_lowercase();
        self.skip_ws();
        let op = match self.peek() {
            Some(']') => {
                self.pos += 1;
                return Ok(AttrSel {
                    name,
                    op: AttrOp::Exists,
                    value: String::new(),
                });
            }
            Some('=') => AttrOp::Equals,
            Some(c) => {
                let op = match c {
                    '^' => AttrOp::Prefix,
                    '$' => AttrOp::Suffix,
                    '*' => AttrOp::Contains,
                    '~' => AttrOp::Word,
                    '|' => AttrOp::DashPrefix,
                    _ => return Err(self.err("unknown attribute operator")),
                };
                self.pos += 1;
                if self.peek() != Some('=') {
                    return Err(self.err("unknown attribute operator"));
                }
                op
            }
            None => return Err(self.err("unterminated attribute selector")),
        };
        self.pos += 1; // '='
        self.skip_ws();
        let value = match self.peek() {
            Some(q @ ('"' | '\'')) => self.string(q)?,
            _ => self.ident()?,
        };
        self.skip_ws();
        if self.peek() != Some(']') {
            return Err(self.err("expected ']'"));
        }
        self.pos += 1;
        Ok(AttrSel { name, op, value })
    }

    fn compound(&mut self, in_not: bool) -> Result<Compound, SelectorError> {
        let mut c = Compound::default();
        let mut any = false;
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                any = true;
            }
            Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == '\\' || !ch.is_ascii() => {
                c.tag = Some(self.ident()?.to_ascii_lowercase());
                any = true;
            }
            _ => {}
        }
        loop {
            match self.peek() {
                Some('#') => {
                    self.pos += 1;
                    c.ids.push(self.ident()?);
                }
                Some('.') => {
                    self.pos += 1;
                    c.classes.push(self.ident()?);
                }
                Some('[') => c.attrs.push(self.attr()?),
                Some(':') => {
                    self.pos += 1;
                    let name = self.ident()?.to_ascii_lowercase();
                    if name != "not" || self.peek() != Some('(') {
                        return Err(self.err("unsupported pseudo-class"));
                    }
                    if in_not {
                        return Err(self.err("nested :not() is not supported"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let inner = self.compound(true)?;
                    self.skip_ws();
                    if self.peek() != Some(')') {
                        return Err(self.err("expected ')' after :not(simple selector)"));
                    }
                    self.pos += 1;
                    c.nots.push(inner);
                }
                _ => break,
            }
            any = true;
        }
        if !any {
            return Err(self.err("expected a selector"));
        }
        Ok(c)
    }

    fn complex(&mut self) -> Result<Complex, SelectorError> {
        self.skip_ws();
        let mut left_to_right: Vec<(Combinator, Compound)> = Vec::new();
        let mut comb = Combinator::Descendant;
        loop {
            let compound = self.compound(false)?;
            left_to_right.push((comb, compound));
            let had_ws = self.skip_ws();
            match self.peek() {
                None | Some(',') => break,
                Some('>') => {
                    self.pos += 1;
                    self.skip_ws();
                    comb = Combinator::Child;
                }
                Some('+' | '~') => return Err(self.err("sibling combinators are not supported")),
                Some(_) if had_ws => comb = Combinator::Descendant,
                Some(_) => return Err(self.err("unexpected character")),
            }
        }
        // Reverse: the combinator stored with each compound says how it
        // relates to the compound on its left.
        let n = left_to_right.len();
        let mut parts = Vec::with_capacity(n);
        for k in (0..n).rev() {
            let comb_to_left = left_to_right[k].0;
            parts.push((left_to_right[k].1.clone(), comb_to_left));
        }
        Ok(Complex { parts })
    }
}

impl Selector {
    /// Parses a selector list.
    pub fn parse(src: &str) -> Result<Selector, SelectorError> {
        let mut p = Parser {
            src,
            chars: src.chars().collect(),
            pos: 0,
        };
        let mut list = Vec::new();
        loop {
            list.push(p.complex()?);
            match p.peek() {
                Some(',') => p.pos += 1,
                None => break,
                Some(_) => return Err(p.err("unexpected character")),
            }
        }
        Ok(Selector { list })
    }

    /// Whether element `node` of `doc` matches.
    pub fn matches(&self, doc: &Document, node: NodeId) -> bool {
        self.list.iter().any(|c| c.matches(doc, node, 0))
    }
}

/// Where matching a complex selector can start.
pub(super) enum Anchor<'a> {
    /// The subject compound requires this id.
    Subject(&'a str),
    /// The leftmost compound requires this id: matches are descendants.
    Ancestor(&'a str),
    /// Scan everything in scope.
    None,
}

impl Selector {
    pub(super) fn complexes(&self) -> &[Complex] {
        &self.list
    }
}

impl Complex {
    pub(super) fn anchor(&self) -> Anchor<'_> {
        if let Some(id) = self.parts.first().and_then(|(c, _)| c.ids.first()) {
            return Anchor::Subject(id);
        }
        if self.parts.len() > 1 {
            if let Some(id) = self.parts.last().and_then(|(c, _)| c.ids.first()) {
                return Anchor::Ancestor(id);
            }
        }
        Anchor::None
    }

    pub(super) fn matches(&self, doc: &Document, node: NodeId, k: usize) -> bool {
        let Some((compound, comb)) = self.parts.get(k) else {
            return false;
        };
        if !compound.matches(doc, node) {
            return false;
        }
        if k + 1 == self.parts.len() {
            return true;
        }
        let mut cur = doc.parent(node);
        while let Some(p) = cur {
            if !doc.is_element(p) {
                return false;
            }
            if self.matches(doc, p, k + 1) {
                return true;
            }
            if *comb == Combinator::Child {
                return false;
            }
            cur = doc.parent(p);
        }
        false
    }
}

fn has_word(list: &str, word: &str) -> bool {
    list.split(|c: char| c.is_ascii_whitespace())
        .any(|w| w == word)
}

impl Compound {
    fn matches(&self, doc: &Document, node: NodeId) -> bool {
        let Some(tag) = doc.tag(node) else {
            return false;
        };
        if self.tag.as_deref().is_some_and(|t| t != tag) {
            return false;
        }
        if !self.ids.is_empty() {
            let id = doc.attr(node, "id");
            if !self.ids.iter().all(|want| id == Some(want.as_str())) {
                return false;
            }
        }
        if !self.classes.is_empty() {
            let Some(class) = doc.attr(node, "class") else {
                return false;
            };
            if !self.classes.iter().all(|c| has_word(class, c)) {
                return false;
            }
        }
        for a in &self.attrs {
            let Some(v) = doc.attr(node, &a.name) else {
                return false;
            };
            let want = a.value.as_str();
            let ok = match a.op {
                AttrOp::Exists => true,
                AttrOp::Equals => v == want,
                AttrOp::Prefix => !want.is_empty() && v.starts_with(want),
                AttrOp::Suffix => !want.is_empty() && v.ends_with(want),
                AttrOp::Contains => !want.is_empty() && v.contains(want),
                AttrOp::Word => {
                    !want.is_empty()
                        && !want.contains(|c: char| c.is_ascii_whitespace())
                        && has_word(v, want)
                }
                AttrOp::DashPrefix => {
                    v == want || (v.starts_with(want) && v[want.len()..].starts_with('-'))
                }
            };
            if !ok {
                return false;
            }
        }
        self.nots.iter().all(|n| !n.matches(doc, node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML: &str = r#"<div id="main" class="box wide"><p class="a b">one <span class="price" data-p="12.99">x</span></p>
        <section><p class="a">two</p><span data-asin="B000" lang="en-US">y</span></section>
        <ul><li><a href="https://www.amazon.de/dp/B0" rel="canonical nofollow">l</a></li></ul></div>
        <span id="out" class="price">z</span>"#;

    fn ids(sel: &str) -> Vec<String> {
        let doc = Document::parse(HTML);
        doc.query(None, sel)
            .expect("valid")
            .into_iter()
            .map(|n| {
                format!(
                    "{}:{}",
                    doc.tag(n).unwrap_or("?"),
                    doc.text_content(n).trim()
                )
            })
            .collect()
    }

    #[test]
    fn simple_selectors() {
        assert_eq!(ids("#out"), ["span:z"]);
        assert_eq!(ids("p.a"), ["p:one x", "p:two"]);
        assert_eq!(ids(".a.b"), ["p:one x"]);
        assert_eq!(ids("DIV#main.box.wide > UL a"), ["a:l"]);
        assert_eq!(ids("[data-asin]"), ["span:y"]);
        assert_eq!(ids("[data-p='12.99']"), ["span:x"]);
        assert_eq!(ids("a[href^=\"https://www.amazon\"]"), ["a:l"]);
        assert_eq!(ids("a[href$=B0]"), ["a:l"]);
        assert_eq!(ids("a[href*='/dp/']"), ["a:l"]);
        assert_eq!(ids("a[rel~=canonical]"), ["a:l"]);
        assert_eq!(ids("[lang|=en]"), ["span:y"]);
        assert_eq!(ids("a[href*='']").len(), 0);
        assert_eq!(ids("*").len(), 10);
    }

    #[test]
    fn combinators_and_lists() {
        assert_eq!(ids("#main .price"), ["span:x"]);
        assert_eq!(ids("div > .price").len(), 0);
        assert_eq!(ids("p > span"), ["span:x"]);
        assert_eq!(ids("#main section > span"), ["span:y"]);
        assert_eq!(ids("#out, p.b"), ["p:one x", "span:z"]);
        assert_eq!(ids("span:not(.price)"), ["span:y"]);
        assert_eq!(ids("div p span"), ["span:x"]);
    }

    #[test]
    fn scoped_select_matches_against_whole_document() {
        let doc = Document::parse(HTML);
        let section = doc.query(None, "section").expect("valid")[0];
        // Like querySelectorAll: `div` is outside the scope, still matches.
        assert_eq!(
            doc.query(Some(section), "div span").expect("valid").len(),
            1
        );
        assert_eq!(doc.query(Some(section), "p").expect("valid").len(), 1);
    }

    #[test]
    fn id_anchored_selection_matches_a_full_scan() {
        // Duplicate and nested ids, as real pages have them.
        let html = r#"<div id=x><p id=y class=c>1</p><div id=x><span class=c>2</span></div></div>
            <p class=c>3</p><div id=x><b><i class=c>4</i></b></div><span id=y>5</span>"#;
        let doc = Document::parse(html);
        for sel in [
            "#x .c",
            "#x > .c",
            "#y",
            "p#y.c",
            "#x #y",
            "#x b .c",
            "div#x span, #y",
            "#nope .c",
            "#x div .c",
            ".c, #x .c",
        ] {
            let parsed = Selector::parse(sel).expect("valid");
            let fast = doc.select(None, &parsed);
            let slow: Vec<NodeId> = doc
                .descendants(doc.root())
                .filter(|&n| parsed.matches(&doc, n))
                .collect();
            assert_eq!(fast, slow, "{sel}");
            let scope = doc.query(None, "div").expect("valid")[1];
            let fast = doc.select(Some(scope), &parsed);
            let slow: Vec<NodeId> = doc
                .descendants(scope)
                .filter(|&n| parsed.matches(&doc, n))
                .collect();
            assert_eq!(fast, slow, "{sel} scoped");
        }
    }

    #[test]
    fn invalid_selectors_are_errors() {
        for bad in [
            "",
            " ",
            "#",
            ".",
            "[",
            "[a",
            "[a=]",
            "[a=\"x]",
            "a >",
            "> a",
            "a,",
            ",a",
            "a + b",
            "a ~ b",
            ":hover",
            "a:first-child",
            "::before",
            "[a!=b]",
            "#1a",
            "a)",
            ":not(a b)",
            ":not(:not(a))",
            "a|b",
            "\\",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
