//! A small, tolerant HTML parser: bytes of a saved page in, an arena tree
//! out. Written for extraction, not for rendering.
//!
//! What it does (and why it is enough): a tokenizer for start/end tags,
//! attributes (unquoted, single- and double-quoted; the first of duplicates
//! wins), text with character references, comments, doctypes and other
//! `<!...>`/`<?...>` junk (skipped), raw-text elements (`script`, `style`,
//! `noscript`, `xmp`, `iframe`, `noembed`, `noframes`, `plaintext`) and
//! escapable raw text (`textarea`, `title`), void elements, self-closing
//! tags inside `svg`/`math`. The tree builder closes what a browser would
//! close implicitly for the elements that matter on product pages (`p`,
//! `li`, `dt`, `dd`, `option`, `optgroup`, `tr`, `td`, `th`, table
//! sections), and an end tag closes the nearest open element of that name
//! within its scope (ignored when there is none). It does not run the
//! adoption agency algorithm, foster parenting or create implied
//! `html`/`head`/`body` elements: selectors over real pages do not depend
//! on them. One consequence to keep in mind when writing selectors: no
//! `tbody` is implied, so write `table tr` (descendant), never `table > tr`.
//! `template` content is dropped, as it is outside the DOM tree in a
//! browser (nested templates end at the first `</template>`).
//!
//! Invariant: nodes are stored in document (pre-)order, and every node
//! knows the index one past its last descendant (`end`). A subtree is
//! therefore the contiguous range `id..end`, which makes descendant
//! iteration and `textContent` a linear scan with no pointer chasing.
//!
//! The parser never panics, whatever the input (tested with random input).

mod entities;
pub mod select;

pub use entities::decode as decode_entities;
pub use select::{Selector, SelectorError};

use std::borrow::Cow;
use std::collections::HashMap;

/// Index of a node in a [`Document`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// Position in document order (the root is 0).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

const NONE: u32 = u32::MAX;

#[derive(Debug)]
enum Data {
    Document,
    Element {
        /// ASCII-lowercased tag name.
        name: Box<str>,
        /// ASCII-lowercased names, decoded values, source order, unique names.
        attrs: Box<[(Box<str>, Box<str>)]>,
    },
    Text(Box<str>),
}

#[derive(Debug)]
struct Node {
    parent: u32,
    end: u32,
    data: Data,
}

/// A parsed HTML document.
#[derive(Debug)]
pub struct Document {
    nodes: Vec<Node>,
    /// Elements by `id` attribute, in document order: selectors anchored
    /// on an id visit only those elements or their subtrees.
    ids: HashMap<Box<str>, Vec<u32>>,
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr", "basefont", "bgsound", "frame",
];

/// Raw text: content is not parsed and not entity-decoded. `noscript` is
/// raw because a browser with scripting enabled (the extension's case)
/// treats it so.
const RAW_TEXT: &[&str] = &[
    "script", "style", "noscript", "xmp", "iframe", "noembed", "noframes",
];

/// Escapable raw text: not parsed, but entities are decoded.
const RCDATA: &[&str] = &["textarea", "title"];

/// Start tags that close an open `p` (HTML's "close a p element").
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
    "li",
    "dd",
    "dt",
    "listing",
];

/// Elements that bound the default scope of an end tag search.
const SCOPE: &[&str] = &[
    "html", "table", "td", "th", "caption", "template", "applet", "marquee", "object",
];

/// Table-related names, searched for in table scope.
const TABLE_PARTS: &[&str] = &[
    "table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption",
];

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Finds `needle` in `hay` starting at byte `from`. Uses `str::find`
/// (vectorised) when `from` is a character boundary, which it always is
/// for the ASCII delimiters the tokenizer stops on; the byte-wise path
/// keeps the function total regardless.
fn find(hay: &str, from: usize, needle: &str) -> Option<usize> {
    match hay.get(from..) {
        Some(rest) => rest.find(needle).map(|p| p + from),
        None => hay
            .as_bytes()
            .get(from..)?
            .windows(needle.len().max(1))
            .position(|w| w == needle.as_bytes())
            .map(|p| p + from),
    }
}

struct Builder {
    nodes: Vec<Node>,
    /// Open elements, innermost last. Index 0 is the document node.
    stack: Vec<u32>,
    seen_html: bool,
    seen_head: bool,
    seen_body: bool,
}

impl Builder {
    fn name_of(&self, idx: u32) -> &str {
        match self.nodes.get(idx as usize).map(|n| &n.data) {
            Some(Data::Element { name, .. }) => name,
            _ => "",
        }
    }

    fn current(&self) -> u32 {
        self.stack.last().copied().unwrap_or(0)
    }

    fn push_node(&mut self, data: Data) -> u32 {
        let idx = self.nodes.len() as u32;
        let parent = self.current();
        self.nodes.push(Node {
            parent,
            end: idx + 1,
            data,
        });
        idx
    }

    fn text(&mut self, raw: &str, decode: bool) {
        if raw.is_empty() {
            return;
        }
        let text: Cow<str> = if decode && raw.contains('&') {
            Cow::Owned(entities::decode(raw, false))
        } else {
            Cow::Borrowed(raw)
        };
        // Merge adjacent text (a skipped comment between two runs).
        let last = self.nodes.len().wrapping_sub(1);
        if let Some(node) = self.nodes.get_mut(last) {
            if node.parent == self.stack.last().copied().unwrap_or(0) {
                if let Data::Text(t) = &mut node.data {
                    let mut s = String::with_capacity(t.len() + text.len());
                    s.push_str(t);
                    s.push_str(&text);
                    *t = s.into_boxed_str();
                    return;
                }
            }
        }
        self.push_node(Data::Text(text.into_owned().into_boxed_str()));
    }

    /// Pops open elements down to and including stack position `pos`.
    fn pop_to(&mut self, pos: usize) {
        let end = self.nodes.len() as u32;
        while self.stack.len() > pos.max(1) {
            if let Some(idx) = self.stack.pop() {
                if let Some(n) = self.nodes.get_mut(idx as usize) {
                    n.end = end;
                }
            }
        }
    }

    /// Stack position of the innermost open `targets` element found before
    /// any `stop` element (searching outwards).
    fn find_open(&self, targets: &[&str], stop: &[&str]) -> Option<usize> {
        for pos in (1..self.stack.len()).rev() {
            let name = self.name_of(self.stack[pos]);
            if targets.contains(&name) {
                return Some(pos);
            }
            if stop.contains(&name) {
                return None;
            }
        }
        None
    }

    fn close_implied(&mut self, name: &str) {
        if CLOSES_P.contains(&name) {
            let mut stop: Vec<&str> = SCOPE.to_vec();
            stop.push("button");
            if let Some(pos) = self.find_open(&["p"], &stop) {
                self.pop_to(pos);
            }
        }
        match name {
            "li" => {
                let stop = [
                    "ul", "ol", "menu", "table", "td", "th", "tr", "body", "html", "template",
                    "select", "dl", "button",
                ];
                if let Some(pos) = self.find_open(&["li"], &stop) {
                    self.pop_to(pos);
                }
            }
            "dt" | "dd" => {
                let stop = [
                    "dl", "ul", "ol", "table", "td", "th", "tr", "body", "html", "template",
                    "select", "button",
                ];
                if let Some(pos) = self.find_open(&["dt", "dd"], &stop) {
                    self.pop_to(pos);
                }
            }
            "option" | "optgroup" => {
                if self.name_of(self.current()) == "option" {
                    self.pop_to(self.stack.len() - 1);
                }
                if name == "optgroup" && self.name_of(self.current()) == "optgroup" {
                    self.pop_to(self.stack.len() - 1);
                }
            }
            "tr" => {
                let stop = ["table", "tbody", "thead", "tfoot", "html", "template"];
                if let Some(pos) = self.find_open(&["tr"], &stop) {
                    self.pop_to(pos);
                }
            }
            "td" | "th" => {
                let stop = ["tr", "table", "tbody", "thead", "tfoot", "html", "template"];
                if let Some(pos) = self.find_open(&["td", "th"], &stop) {
                    self.pop_to(pos);
                }
            }
            "tbody" | "thead" | "tfoot" => {
                let stop = ["table", "html", "template"];
                if let Some(pos) = self.find_open(&["tbody", "thead", "tfoot"], &stop) {
                    self.pop_to(pos);
                }
            }
            _ => {}
        }
    }

    fn in_foreign(&self) -> bool {
        self.stack
            .iter()
            .any(|&i| matches!(self.name_of(i), "svg" | "math"))
    }

    /// Opens an element; returns whether it stays open (has content).
    fn start(
        &mut self,
        name: String,
        attrs: Vec<(Box<str>, Box<str>)>,
        self_closing: bool,
    ) -> bool {
        match name.as_str() {
            // Browsers merge repeated html/head/body into the first one.
            "html" if self.seen_html => return false,
            "head" if self.seen_head || self.seen_body => return false,
            "body" if self.seen_body => return false,
            "html" => self.seen_html = true,
            "head" => self.seen_head = true,
            "body" => self.seen_body = true,
            _ => {}
        }
        self.close_implied(&name);
        let void = VOID.contains(&name.as_str());
        let foreign_close = self_closing && (self.in_foreign() || name == "svg" || name == "math");
        let idx = self.push_node(Data::Element {
            name: name.into_boxed_str(),
            attrs: attrs.into_boxed_slice(),
        });
        if void || foreign_close {
            false
        } else {
            self.stack.push(idx);
            true
        }
    }

    fn end(&mut self, name: &str) {
        // `</body>`/`</html>` do not close anything in a browser either:
        // later content still lands in the body.
        if matches!(name, "body" | "html" | "br") {
            return;
        }
        let stop: &[&str] = if TABLE_PARTS.contains(&name) {
            &["table", "html", "template"]
        } else if self.in_foreign() && !matches!(name, "svg" | "math") {
            &[]
        } else {
            SCOPE
        };
        if let Some(pos) = self.find_open(&[name], stop) {
            self.pop_to(pos);
        }
    }
}

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl Document {
    /// Parses `html`. Never fails: broken markup is repaired the way the
    /// module docs describe.
    pub fn parse(html: &str) -> Document {
        let mut b = Builder {
            nodes: Vec::with_capacity(html.len() / 40 + 16),
            stack: vec![0],
            seen_html: false,
            seen_head: false,
            seen_body: false,
        };
        b.nodes.push(Node {
            parent: NONE,
            end: 1,
            data: Data::Document,
        });
        let bytes = html.as_bytes();
        let len = bytes.len();
        let mut i = 0;
        let mut text_start = 0;
        while i < len {
            let Some(p) = find(html, i, "<") else {
                break;
            };
            let next = bytes.get(p + 1).copied().unwrap_or(0);
            if next.is_ascii_alphabetic() {
                b.text(&html[text_start..p], true);
                let (name, attrs, self_closing, after) = parse_tag(html, p + 1);
                i = after;
                text_start = after;
                let is_template = name == "template";
                let is_raw =
                    RAW_TEXT.contains(&name.as_str()) || name == "plaintext" || is_template;
                let is_rcdata = RCDATA.contains(&name.as_str());
                let open = b.start(name.clone(), attrs, self_closing);
                if open && (is_raw || is_rcdata) {
                    let (content_end, resume) = if name == "plaintext" {
                        (len, len)
                    } else {
                        raw_text_end(html, after, &name)
                    };
                    // A template's content lives in a separate fragment
                    // in the DOM: invisible to `querySelectorAll` and
                    // `textContent`, so it is dropped here too.
                    if !is_template {
                        b.text(&html[after..content_end], is_rcdata);
                    }
                    b.end(&name);
                    i = resume;
                    text_start = resume;
                }
            } else if next == b'/' {
                let n2 = bytes.get(p + 2).copied().unwrap_or(0);
                b.text(&html[text_start..p], true);
                if n2.is_ascii_alphabetic() {
                    let (name, _, _, after) = parse_tag(html, p + 2);
                    b.end(&name);
                    i = after;
                } else {
                    // `</>` is dropped; `</3...>` is a bogus comment.
                    i = find(html, p + 2, ">").map_or(len, |e| e + 1);
                }
                text_start = i;
            } else if next == b'!' {
                b.text(&html[text_start..p], true);
                i = if bytes.get(p..p + 4) == Some(b"<!--") {
                    // `<!-->` and `<!--->` are complete (empty) comments.
                    if bytes.get(p + 4) == Some(&b'>') {
                        p + 5
                    } else if bytes.get(p + 4..p + 6) == Some(b"->") {
                        p + 6
                    } else {
                        find(html, p + 4, "-->").map_or(len, |e| e + 3)
                    }
                } else if bytes.get(p..p + 9) == Some(b"<![CDATA[") {
                    find(html, p + 9, "]]>").map_or(len, |e| e + 3)
                } else {
                    find(html, p + 2, ">").map_or(len, |e| e + 1)
                };
                text_start = i;
            } else if next == b'?' {
                b.text(&html[text_start..p], true);
                i = find(html, p + 2, ">").map_or(len, |e| e + 1);
                text_start = i;
            } else {
                // A lone `<` is text.
                i = p + 1;
            }
        }
        if text_start < len {
            b.text(&html[text_start..], true);
        }
        b.pop_to(1);
        let total = b.nodes.len() as u32;
        if let Some(root) = b.nodes.first_mut() {
            root.end = total;
        }
        let mut ids: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for (i, node) in b.nodes.iter().enumerate() {
            if let Data::Element { attrs, .. } = &node.data {
                if let Some((_, id)) = attrs.iter().find(|(n, _)| n.as_ref() == "id") {
                    ids.entry(id.clone()).or_default().push(i as u32);
                }
            }
        }
        Document {
            nodes: b.nodes,
            ids,
        }
    }

    /// The document node (the parent of the top-level elements).
    pub fn root(&self) -> NodeId {
        NodeId(0)
    }

    /// Number of nodes (document, elements and text).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the document has no nodes besides the root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// Lowercase tag name, `None` for the document and text nodes.
    pub fn tag(&self, id: NodeId) -> Option<&str> {
        match &self.node(id)?.data {
            Data::Element { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether `id` is an element.
    pub fn is_element(&self, id: NodeId) -> bool {
        self.tag(id).is_some()
    }

    /// Attribute value (entity-decoded); `name` must be lowercase.
    pub fn attr(&self, id: NodeId, name: &str) -> Option<&str> {
        match &self.node(id)?.data {
            Data::Element { attrs, .. } => attrs
                .iter()
                .find(|(n, _)| n.as_ref() == name)
                .map(|(_, v)| v.as_ref()),
            _ => None,
        }
    }

    /// All attributes of an element, in source order.
    pub fn attrs(&self, id: NodeId) -> impl Iterator<Item = (&str, &str)> {
        let attrs: &[(Box<str>, Box<str>)] = match self.node(id).map(|n| &n.data) {
            Some(Data::Element { attrs, .. }) => attrs,
            _ => &[],
        };
        attrs.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// Parent node, `None` for the root.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        let p = self.node(id)?.parent;
        (p != NONE).then_some(NodeId(p))
    }

    /// The text of a text node.
    pub fn text_of(&self, id: NodeId) -> Option<&str> {
        match &self.node(id)?.data {
            Data::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Direct children, in order.
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let end = self.node(id).map_or(0, |n| n.end);
        let mut next = id.0.saturating_add(1);
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let cur = next;
            next = self.nodes.get(cur as usize).map_or(end, |n| n.end);
            Some(NodeId(cur))
        })
    }

    /// Descendants (elements and text) in document order, excluding `id`.
    pub fn descendants(&self, id: NodeId) -> impl Iterator<Item = NodeId> {
        let end = self.node(id).map_or(0, |n| n.end);
        (id.0.saturating_add(1)..end).map(NodeId)
    }

    /// Whether `ancestor` contains `id` (strictly).
    pub fn contains(&self, ancestor: NodeId, id: NodeId) -> bool {
        self.node(ancestor)
            .is_some_and(|n| id.0 > ancestor.0 && id.0 < n.end)
    }

    /// The DOM's `textContent`: all descendant text concatenated (for a
    /// `script`, its source).
    pub fn text_content(&self, id: NodeId) -> String {
        if let Some(t) = self.text_of(id) {
            return t.to_string();
        }
        let mut out = String::new();
        for d in self.descendants(id) {
            if let Some(t) = self.text_of(d) {
                out.push_str(t);
            }
        }
        out
    }

    /// All elements matching `selector` under `scope` (the whole document
    /// when `None`), in document order. As with `querySelectorAll`, the
    /// selector is matched against the whole document: ancestors named in
    /// it may lie outside `scope`.
    pub fn select(&self, scope: Option<NodeId>, selector: &Selector) -> Vec<NodeId> {
        let scope = scope.unwrap_or(self.root());
        let scope_end = self.node(scope).map_or(0, |n| n.end);
        let in_scope = |i: u32| i > scope.0 && i < scope_end;
        let mut out: Vec<NodeId> = Vec::new();
        for complex in selector.complexes() {
            let matches = |i: u32| complex.matches(self, NodeId(i), 0);
            match complex.anchor() {
                // The subject has an id: only those elements can match.
                select::Anchor::Subject(id) => {
                    let hits = self.ids.get(id).map_or(&[][..], |v| v.as_slice());
                    out.extend(
                        hits.iter()
                            .copied()
                            .filter(|&i| in_scope(i) && matches(i))
                            .map(NodeId),
                    );
                }
                // The leftmost compound has an id: every match lies
                // inside one of those elements.
                select::Anchor::Ancestor(id) => {
                    let roots = self.ids.get(id).map_or(&[][..], |v| v.as_slice());
                    let mut done_until = 0u32;
                    for &root in roots {
                        let root_end = self.nodes.get(root as usize).map_or(0, |n| n.end);
                        let start = (root + 1).max(scope.0 + 1).max(done_until);
                        let end = root_end.min(scope_end);
                        out.extend((start..end).filter(|&i| matches(i)).map(NodeId));
                        done_until = done_until.max(end);
                    }
                }
                select::Anchor::None => {
                    out.extend((scope.0 + 1..scope_end).filter(|&i| matches(i)).map(NodeId));
                }
            }
        }
        if selector.complexes().len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Parses `selector` and runs [`Document::select`].
    pub fn query(
        &self,
        scope: Option<NodeId>,
        selector: &str,
    ) -> Result<Vec<NodeId>, SelectorError> {
        Ok(self.select(scope, &Selector::parse(selector)?))
    }
}

/// Finds where raw text of `name` ends: the start of `</name` followed by
/// whitespace, `/` or `>`. Returns (content end, resume position after the
/// end tag); unterminated raw text runs to the end of input.
fn raw_text_end(html: &str, from: usize, name: &str) -> (usize, usize) {
    let bytes = html.as_bytes();
    let n = name.len();
    let mut i = from;
    while let Some(p) = find(html, i, "</") {
        let cand = bytes.get(p + 2..p + 2 + n);
        let after = bytes.get(p + 2 + n).copied();
        if cand.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
            && matches!(
                after,
                None | Some(b'>' | b'/') | Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
            )
        {
            let resume = find(html, p + 2 + n, ">").map_or(bytes.len(), |e| e + 1);
            return (p, resume);
        }
        i = p + 2;
    }
    (bytes.len(), bytes.len())
}

type Attrs = Vec<(Box<str>, Box<str>)>;

/// Parses a tag from `start` (the first letter of its name) up to and
/// including `>`. Returns (lowercase name, attributes, self-closing flag,
/// position after the tag).
fn parse_tag(html: &str, start: usize) -> (String, Attrs, bool, usize) {
    let bytes = html.as_bytes();
    let len = bytes.len();
    let mut i = start;
    while i < len && !is_ws(bytes[i]) && bytes[i] != b'/' && bytes[i] != b'>' {
        i += 1;
    }
    let name = lower(&html[start..i]);
    let mut attrs: Attrs = Vec::new();
    let mut self_closing = false;
    loop {
        while i < len && is_ws(bytes[i]) {
            i += 1;
        }
        if i >= len {
            return (name, attrs, self_closing, len);
        }
        match bytes[i] {
            b'>' => return (name, attrs, self_closing, i + 1),
            b'/' => {
                i += 1;
                self_closing = bytes.get(i) == Some(&b'>');
                continue;
            }
            _ => {}
        }
        self_closing = false;
        // Attribute name (a leading `=` belongs to the name, as in HTML).
        let name_start = i;
        i += 1;
        while i < len && !is_ws(bytes[i]) && !matches!(bytes[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr_name = lower(&html[name_start..i]);
        while i < len && is_ws(bytes[i]) {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < len && is_ws(bytes[i]) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    let v_start = i + 1;
                    let v_end = bytes[v_start..]
                        .iter()
                        .position(|&c| c == q)
                        .map_or(len, |o| v_start + o);
                    value = decode_attr(&html[v_start..v_end]);
                    i = (v_end + 1).min(len);
                }
                Some(_) => {
                    let v_start = i;
                    while i < len && !is_ws(bytes[i]) && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = decode_attr(&html[v_start..i]);
                }
                None => {}
            }
        }
        if !attrs.iter().any(|(n, _)| n.as_ref() == attr_name) {
            attrs.push((attr_name.into_boxed_str(), value.into_boxed_str()));
        }
    }
}

fn decode_attr(raw: &str) -> String {
    if raw.contains('&') {
        entities::decode(raw, true)
    } else {
        raw.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(doc: &Document, sel: &str) -> NodeId {
        let found = doc.query(None, sel).expect("valid selector");
        assert_eq!(found.len(), 1, "{sel}: {found:?}");
        found[0]
    }

    #[test]
    fn elements_attributes_text() {
        let doc = Document::parse(
            "<!DOCTYPE html><html><body><div id=a class='x y' data-v=\"1 &amp; 2\" id=b>Hi &euro;5<br>there</div></body></html>",
        );
        let div = one(&doc, "div");
        assert_eq!(doc.attr(div, "id"), Some("a"));
        assert_eq!(doc.attr(div, "class"), Some("x y"));
        assert_eq!(doc.attr(div, "data-v"), Some("1 & 2"));
        assert_eq!(doc.text_content(div), "Hi \u{20ac}5there");
        assert_eq!(doc.tag(doc.parent(div).expect("parent")), Some("body"));
    }

    #[test]
    fn raw_text_is_not_parsed() {
        let doc = Document::parse(
            "<script>if (a<b && c) { x = '<div id=z>'; }</script><style>p>i{}</style><title>A &amp; B</title><noscript><div id=n></div></noscript><div id=after></div>",
        );
        assert_eq!(doc.query(None, "#z").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "#n").expect("ok").len(), 0);
        let script = one(&doc, "script");
        assert_eq!(
            doc.text_content(script),
            "if (a<b && c) { x = '<div id=z>'; }"
        );
        assert_eq!(doc.text_content(one(&doc, "title")), "A & B");
        one(&doc, "#after");
    }

    #[test]
    fn template_content_is_not_in_the_tree() {
        let doc = Document::parse("<div id=a>x<template><span id=t>y</span></template>z</div>");
        assert_eq!(doc.query(None, "#t").expect("ok").len(), 0);
        assert_eq!(doc.text_content(one(&doc, "#a")), "xz");
        assert_eq!(doc.query(None, "#a > template").expect("ok").len(), 1);
    }

    #[test]
    fn unterminated_script_runs_to_end() {
        let doc = Document::parse("<script>var a = '</scrip'; <div>");
        assert_eq!(doc.query(None, "div").expect("ok").len(), 0);
    }

    #[test]
    fn implied_end_tags() {
        let doc = Document::parse(
            "<ul><li>one<li>two</ul><p>a<p>b<div>c</div><table><tr><td>1<td>2<tr><td>3</table><select><option>x<option>y</select><dl><dt>t<dd>d</dl>",
        );
        assert_eq!(doc.query(None, "li").expect("ok").len(), 2);
        assert_eq!(doc.query(None, "li li").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "p p").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "p div").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "td td").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "tr tr").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "tr > td").expect("ok").len(), 3);
        assert_eq!(doc.query(None, "option option").expect("ok").len(), 0);
        assert_eq!(doc.query(None, "dt dd").expect("ok").len(), 0);
    }

    #[test]
    fn stray_end_tags_are_ignored() {
        let doc = Document::parse("<div id=a><span>x</b></i></span></div><div id=b></div>");
        let a = one(&doc, "#a");
        let b = one(&doc, "#b");
        assert_eq!(doc.parent(b), doc.parent(a));
        assert_eq!(doc.query(None, "#a > span").expect("ok").len(), 1);
    }

    #[test]
    fn end_tag_closes_nearest_open() {
        let doc = Document::parse("<div id=a><span><em>x</div><div id=b></div>");
        assert_eq!(doc.parent(one(&doc, "#b")), doc.parent(one(&doc, "#a")));
    }

    #[test]
    fn comments_doctype_cdata_junk() {
        let doc = Document::parse(
            "<!doctype html><!-- <div id=c> --><?xml x?><![CDATA[ <div id=d> ]]><!--><div id=e>a<!---->b</div><!-- open",
        );
        assert_eq!(doc.query(None, "#c, #d").expect("ok").len(), 0);
        assert_eq!(doc.text_content(one(&doc, "#e")), "ab");
    }

    #[test]
    fn void_and_svg_self_closing() {
        let doc = Document::parse(
            "<div><img src=a><input value=1><svg><path d=x /><path/></svg><span id=s></span></div>",
        );
        assert_eq!(doc.query(None, "div > span").expect("ok").len(), 1);
        assert_eq!(
            doc.query(None, "img input, path path").expect("ok").len(),
            0
        );
        assert_eq!(doc.query(None, "svg > path").expect("ok").len(), 2);
    }

    #[test]
    fn html_self_closing_div_is_a_start_tag() {
        // As in a browser: `/>` on a non-void HTML element is ignored.
        let doc = Document::parse("<div id=\"a\"/><span></span>");
        assert_eq!(doc.query(None, "#a > span").expect("ok").len(), 1);
    }

    #[test]
    fn attribute_forms() {
        let doc = Document::parse(
            "<a href=/dp/X?a=1&b=2 title='it&apos;s' data-x data-y = \"q\" class=z>t</a>",
        );
        let a = one(&doc, "a");
        assert_eq!(doc.attr(a, "href"), Some("/dp/X?a=1&b=2"));
        assert_eq!(doc.attr(a, "title"), Some("it's"));
        assert_eq!(doc.attr(a, "data-x"), Some(""));
        assert_eq!(doc.attr(a, "data-y"), Some("q"));
        assert_eq!(doc.attr(a, "class"), Some("z"));
    }

    #[test]
    fn repeated_body_is_merged() {
        let doc =
            Document::parse("<html><body><div id=a></div></body><body><div id=b></div></html>");
        assert_eq!(doc.query(None, "body").expect("ok").len(), 1);
        assert_eq!(doc.query(None, "body > div").expect("ok").len(), 2);
    }

    #[test]
    fn truncated_input() {
        for s in [
            "<",
            "<a",
            "<a href",
            "<a href=\"x",
            "</",
            "</a",
            "<!",
            "<!--",
            "&",
            "&#",
            "&#x",
            "<p>&am",
        ] {
            let doc = Document::parse(s);
            assert!(doc.descendants(doc.root()).all(|n| doc.parent(n).is_some()));
        }
        let doc = Document::parse("<p>x &lt");
        assert_eq!(doc.text_content(doc.root()), "x <");
    }
}
