//! The small abstraction the extraction rules run on: select elements by
//! CSS, read their text and attributes.
//!
//! Two implementations: [`HtmlPage`] over this crate's own parser (native
//! and wasm32: the verifier, the backend's `extract` command, and the
//! extension's fallback when a page's CSP blocks wasm in the content
//! script), and `dom::DomPage` over the live browser DOM (feature `dom`,
//! wasm32 only). The selector strings the rules use are restricted to
//! the subset [`crate::html::Selector`] accepts, which means the same to
//! `querySelectorAll`; `text` is the DOM's `textContent` (a script's
//! source included), so both implementations see the same page.

use crate::html::{Document, NodeId, Selector, SelectorError};

/// A page the extraction rules can query.
pub trait Page {
    /// A handle on one element.
    type Node: Clone;

    /// Elements matching `selector` under `scope` (the whole document when
    /// `None`), in document order, with `querySelectorAll` semantics.
    fn select(
        &self,
        scope: Option<&Self::Node>,
        selector: &str,
    ) -> Result<Vec<Self::Node>, SelectorError>;

    /// The element's `textContent`.
    fn text(&self, node: &Self::Node) -> String;

    /// An attribute's value; `name` is lowercase.
    fn attr(&self, node: &Self::Node, name: &str) -> Option<String>;

    /// Lowercase tag name.
    fn tag(&self, node: &Self::Node) -> String;

    /// The first match, if any.
    fn first(
        &self,
        scope: Option<&Self::Node>,
        selector: &str,
    ) -> Result<Option<Self::Node>, SelectorError> {
        Ok(self.select(scope, selector)?.into_iter().next())
    }
}

/// The selectors of a selector list (`a, b > c`), split at its top-level
/// commas (not inside quotes, brackets or parentheses) and trimmed. A
/// list without commas comes back as one part; empty parts stay (the
/// selector engine rejects them, as it rejects the whole list).
pub fn split_selector_list(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in list.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, ',') if depth == 0 => {
                parts.push(list[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(list[start..].trim());
    parts
}

/// Whether one selector (no top-level comma) names an id outside
/// brackets, quotes and parentheses (`#buybox .price`, `input#ASIN`).
/// Browsers answer such a selector from their id map or within that
/// element's subtree instead of walking the whole document.
pub fn names_an_id(selector: &str) -> bool {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for c in selector.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, '#') if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// A page parsed from HTML text.
#[derive(Debug)]
pub struct HtmlPage {
    doc: Document,
}

impl HtmlPage {
    /// Parses `html` (never fails; see [`crate::html`]).
    pub fn parse(html: &str) -> HtmlPage {
        HtmlPage {
            doc: Document::parse(html),
        }
    }

    /// The parsed document.
    pub fn document(&self) -> &Document {
        &self.doc
    }
}

impl Page for HtmlPage {
    type Node = NodeId;

    fn select(&self, scope: Option<&NodeId>, selector: &str) -> Result<Vec<NodeId>, SelectorError> {
        let sel = Selector::parse(selector)?;
        Ok(self.doc.select(scope.copied(), &sel))
    }

    fn text(&self, node: &NodeId) -> String {
        self.doc.text_content(*node)
    }

    fn attr(&self, node: &NodeId, name: &str) -> Option<String> {
        self.doc.attr(*node, name).map(str::to_string)
    }

    fn tag(&self, node: &NodeId) -> String {
        self.doc.tag(*node).unwrap_or_default().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_page_answers_queries() {
        let page = HtmlPage::parse("<div id=a class=x><b title=t>1</b><b>2</b></div>");
        let div = page.first(None, "#a").expect("valid").expect("found");
        assert_eq!(page.tag(&div), "div");
        let bs = page.select(Some(&div), "b").expect("valid");
        assert_eq!(bs.len(), 2);
        assert_eq!(page.attr(&bs[0], "title").as_deref(), Some("t"));
        assert_eq!(page.text(&div), "12");
        assert!(page.select(None, "b:hover").is_err());
    }

    #[test]
    fn selector_lists_split_at_top_level_commas_only() {
        assert_eq!(split_selector_list("#a"), vec!["#a"]);
        assert_eq!(
            split_selector_list("#a .b, input#ASIN ,c[x='1,2'] d"),
            vec!["#a .b", "input#ASIN", "c[x='1,2'] d"]
        );
        assert_eq!(
            split_selector_list("a:not(b, c), d[t=\"x,]\"]"),
            vec!["a:not(b, c)", "d[t=\"x,]\"]"]
        );
        assert_eq!(split_selector_list("a,"), vec!["a", ""]);
    }

    #[test]
    fn ids_are_found_outside_brackets_and_quotes_only() {
        assert!(names_an_id("#buybox tr.kindle-price .a-color-price"));
        assert!(names_an_id("[data-a=x] #usedPrice"));
        assert!(names_an_id("input#ASIN"));
        assert!(!names_an_id("a[href*='#top']"));
        assert!(!names_an_id("form[action*=captcha] input[name=amzn-r]"));
        assert!(!names_an_id("a:not(#x)"));
    }
}
