//! [`Page`] over the live browser DOM (web-sys), for the extension's
//! content script. Only built with feature `dom` on wasm32.
//!
//! `querySelectorAll` does the matching; the rules only use selectors the
//! native engine accepts too, so both paths agree. `textContent` of a
//! `script` is its source, as in [`crate::html`].
//!
//! Speed (issue 7: under 2 ms per extraction on real Amazon pages): a
//! selector *list* (`#a, #b`) makes Chromium walk the whole document and
//! match every element against every selector, about 0.5-0.9 ms on an
//! Amazon page each time, while a single selector naming an id is answered
//! from the id map (or inside that element's subtree). Profiled in
//! Chromium, such list queries were most of the extraction time. So a
//! list is split: each selector naming an id is queried alone, the others
//! together in one list (one walk), and the results merged in document
//! order without duplicates, which is exactly what `querySelectorAll` of
//! the whole list returns. `first` uses `querySelector`, which stops at
//! the first match, or `getElementById` for a bare `#id` on the whole
//! document (same answer, no selector to parse on each new page).
//!
//! Long texts (`textContent` of a buy box, 5-25 KB) are copied into wasm
//! memory by the browser's `TextEncoder.encodeInto` into a reused buffer
//! instead of wasm-bindgen's string glue, whose per-character JS loop runs
//! unoptimised on a page's first extraction (every page gets a fresh
//! content-script world) and was its largest single cost.

use crate::html::SelectorError;
use crate::page::{names_an_id, split_selector_list, Page};
use js_sys::{JsString, Uint8Array};
use std::cell::RefCell;
use std::cmp::Ordering;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, Node, NodeList};

#[wasm_bindgen]
extern "C" {
    /// A DOM node seen only for its text (an `Element` cast unchecked).
    type TextOf;

    /// `Node.textContent` as a JS value (a string or null), not copied.
    #[wasm_bindgen(method, getter, js_name = textContent)]
    fn text_content_value(this: &TextOf) -> JsValue;

    /// The browser's UTF-8 `TextEncoder`.
    #[wasm_bindgen(js_name = TextEncoder)]
    #[derive(Debug, Clone)]
    type Utf8Encoder;

    #[wasm_bindgen(constructor, js_class = TextEncoder)]
    fn new() -> Utf8Encoder;

    /// Encodes `source` into `destination`; what was done.
    #[wasm_bindgen(method, js_class = TextEncoder, js_name = encodeInto)]
    fn encode_into(this: &Utf8Encoder, source: &JsString, destination: &Uint8Array)
        -> EncodeResult;

    /// `{read, written}` of `encodeInto`.
    type EncodeResult;

    #[wasm_bindgen(method, getter)]
    fn written(this: &EncodeResult) -> u32;
}

/// Texts shorter than this (UTF-16 units) take wasm-bindgen's own string
/// path: the encoder's extra calls cost more than they save there.
const LONG_TEXT: u32 = 512;

/// The live document of the current page.
#[derive(Debug, Clone)]
pub struct DomPage {
    doc: Document,
    /// Encoder and buffer for long texts, made on first use and reused.
    long_text: RefCell<Option<(Utf8Encoder, Uint8Array)>>,
}

impl DomPage {
    /// Wraps a document (e.g. `window.document()`).
    pub fn new(doc: Document) -> DomPage {
        DomPage {
            doc,
            long_text: RefCell::new(None),
        }
    }

    /// A long text copied by `encodeInto` into the reused buffer (grown to
    /// three bytes per UTF-16 unit, UTF-8's worst case), then into Rust.
    fn long_text(&self, text: &JsString) -> String {
        let needed = text.length().saturating_mul(3);
        let mut slot = self.long_text.borrow_mut();
        let (encoder, buffer) =
            slot.get_or_insert_with(|| (Utf8Encoder::new(), Uint8Array::new_with_length(0)));
        if buffer.length() < needed {
            *buffer = Uint8Array::new_with_length(needed.max(64 * 1024));
        }
        let written = encoder.encode_into(text, buffer).written();
        let bytes = buffer.subarray(0, written).to_vec();
        // encodeInto writes well-formed UTF-8 (lone surrogates become
        // U+FFFD, as in wasm-bindgen's own path); the check stays cheap.
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// The current window's document, if there is one.
    pub fn current() -> Option<DomPage> {
        web_sys::window()?.document().map(DomPage::new)
    }

    /// A new inert document parsed from `html` by the browser's
    /// `DOMParser` (no scripts run, nothing loads). The extension runs the
    /// rules once on such a page when its module starts, so the page's
    /// first extraction does not pay the one-off compilation of the code.
    pub fn parse(html: &str) -> Option<DomPage> {
        let parser = web_sys::DomParser::new().ok()?;
        parser
            .parse_from_string(html, web_sys::SupportedType::TextHtml)
            .ok()
            .map(DomPage::new)
    }

    fn query_all(
        &self,
        scope: Option<&Element>,
        selector: &str,
    ) -> Result<Vec<Element>, SelectorError> {
        let result = match scope {
            Some(el) => el.query_selector_all(selector),
            None => self.doc.query_selector_all(selector),
        };
        result.map(elements).map_err(|_| rejected(selector))
    }

    fn query_one(
        &self,
        scope: Option<&Element>,
        selector: &str,
    ) -> Result<Option<Element>, SelectorError> {
        let result = match scope {
            Some(el) => el.query_selector(selector),
            // The first element with that id in tree order: what
            // querySelector answers too, without parsing a selector.
            None => match plain_id(selector) {
                Some(id) => Ok(self.doc.get_element_by_id(id)),
                None => self.doc.query_selector(selector),
            },
        };
        result.map_err(|_| rejected(selector))
    }
}

fn rejected(selector: &str) -> SelectorError {
    SelectorError {
        selector: selector.to_string(),
        reason: "rejected by querySelectorAll",
    }
}

fn elements(list: NodeList) -> Vec<Element> {
    (0..list.length())
        .filter_map(|i| list.get(i))
        .filter_map(|n| n.dyn_into::<Element>().ok())
        .collect()
}

/// `x` of a selector that is only `#x` with a plain identifier (no
/// escapes; not starting with a digit, which querySelector rejects).
fn plain_id(selector: &str) -> Option<&str> {
    let id = selector.strip_prefix('#')?;
    let mut chars = id.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')).then_some(id)
}

/// The queries answering `selector`: one per selector of the list that
/// names an id, then one list of all the others. `None` when the list is
/// best queried as it is (a single selector, or nothing to gain).
fn plan(selector: &str) -> Option<Vec<String>> {
    let parts = split_selector_list(selector);
    if parts.len() < 2 {
        return None;
    }
    let (with_id, rest): (Vec<&str>, Vec<&str>) = parts.into_iter().partition(|p| names_an_id(p));
    if with_id.is_empty() {
        return None;
    }
    let mut queries: Vec<String> = with_id.into_iter().map(str::to_string).collect();
    if !rest.is_empty() {
        queries.push(rest.join(", "));
    }
    Some(queries)
}

/// Document order (elements of one document).
fn document_order(a: &Element, b: &Element) -> Ordering {
    let position = a.compare_document_position(b);
    if position & Node::DOCUMENT_POSITION_FOLLOWING != 0 {
        Ordering::Less
    } else if position & Node::DOCUMENT_POSITION_PRECEDING != 0 {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

impl Page for DomPage {
    type Node = Element;

    fn select(
        &self,
        scope: Option<&Element>,
        selector: &str,
    ) -> Result<Vec<Element>, SelectorError> {
        let Some(queries) = plan(selector) else {
            return self.query_all(scope, selector);
        };
        let mut found: Vec<Element> = Vec::new();
        let mut sources = 0;
        for query in &queries {
            let part = self
                .query_all(scope, query)
                .map_err(|_| rejected(selector))?;
            if !part.is_empty() {
                sources += 1;
                found.extend(part);
            }
        }
        if sources > 1 {
            found.sort_by(document_order);
            found.dedup_by(|a, b| a.is_same_node(Some(b)));
        }
        Ok(found)
    }

    fn first(
        &self,
        scope: Option<&Element>,
        selector: &str,
    ) -> Result<Option<Element>, SelectorError> {
        let Some(queries) = plan(selector) else {
            return self.query_one(scope, selector);
        };
        let mut best: Option<Element> = None;
        for query in &queries {
            let Some(el) = self
                .query_one(scope, query)
                .map_err(|_| rejected(selector))?
            else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|b| document_order(&el, b) == Ordering::Less)
            {
                best = Some(el);
            }
        }
        Ok(best)
    }

    fn text(&self, node: &Element) -> String {
        let value = node.unchecked_ref::<TextOf>().text_content_value();
        match value.dyn_ref::<JsString>() {
            Some(text) if text.length() >= LONG_TEXT => self.long_text(text),
            Some(text) => String::from(text),
            None => String::new(),
        }
    }

    fn attr(&self, node: &Element, name: &str) -> Option<String> {
        node.get_attribute(name)
    }

    fn tag(&self, node: &Element) -> String {
        node.local_name().to_ascii_lowercase()
    }
}
