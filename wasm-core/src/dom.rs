//! [`Page`] over the live browser DOM (web-sys), for the extension's
//! content script. Only built with feature `dom` on wasm32.
//!
//! `querySelectorAll` does the matching; the rules only use selectors the
//! native engine accepts too, so both paths agree. `textContent` of a
//! `script` is its source, as in [`crate::html`].

use crate::html::SelectorError;
use crate::page::Page;
use wasm_bindgen::JsCast;
use web_sys::{Document, Element, NodeList};

/// The live document of the current page.
#[derive(Debug, Clone)]
pub struct DomPage {
    doc: Document,
}

impl DomPage {
    /// Wraps a document (e.g. `window.document()`).
    pub fn new(doc: Document) -> DomPage {
        DomPage { doc }
    }

    /// The current window's document, if there is one.
    pub fn current() -> Option<DomPage> {
        web_sys::window()?.document().map(DomPage::new)
    }
}

fn elements(list: NodeList) -> Vec<Element> {
    (0..list.length())
        .filter_map(|i| list.get(i))
        .filter_map(|n| n.dyn_into::<Element>().ok())
        .collect()
}

impl Page for DomPage {
    type Node = Element;

    fn select(
        &self,
        scope: Option<&Element>,
        selector: &str,
    ) -> Result<Vec<Element>, SelectorError> {
        let result = match scope {
            Some(el) => el.query_selector_all(selector),
            None => self.doc.query_selector_all(selector),
        };
        result.map(elements).map_err(|_| SelectorError {
            selector: selector.to_string(),
            reason: "rejected by querySelectorAll",
        })
    }

    fn text(&self, node: &Element) -> String {
        node.text_content().unwrap_or_default()
    }

    fn attr(&self, node: &Element, name: &str) -> Option<String> {
        node.get_attribute(name)
    }

    fn tag(&self, node: &Element) -> String {
        node.local_name().to_ascii_lowercase()
    }
}
