//! pricewatch-ui: the extension's user interface, Leptos (client-side
//! rendering) compiled to WebAssembly.
//!
//! # Architecture
//!
//! * **One module with the extraction.** The `extension` crate links this
//!   crate on wasm32 and re-exports `mount_overlay` and `mount_popup`,
//!   so the package ships a single wasm (`pkg/pricewatch_ext_bg.wasm`,
//!   built by `scripts/build-extension`). Judgement call: two modules
//!   each carried their own std, `core::fmt`, serde_json, wasm-core and
//!   wasm-bindgen runtime, which put the package over its 300 KB gzipped
//!   budget; the content script instantiates the module once and the
//!   overlay reuses that instance, and the browser compiles wasm functions
//!   lazily, so the UI code costs the extraction nothing until it runs.
//! * **No `chrome.*` here.** Every piece of data comes through a *bridge*,
//!   a JS object with `send(message) -> Promise<answer>` given by the
//!   loader: `extension/static/overlay_mount.js` in the page (a content
//!   script; `content.js` calls it after each extraction), `overlay.js` in
//!   the iframe fallback `overlay.html`, `popup.js` in the popup. The
//!   service worker answers (`extension/static/sw_data.js` documents the
//!   overlay's message contract), so the same UI runs inside the page's
//!   closed shadow root and inside an extension page.
//! * **Placement (overlay).** The loader appends one `<pricewatch-overlay>`
//!   host to `<body>`, inline `all: initial`, absolutely positioned just
//!   below the buy box (`#desktop_buybox`, `#buybox`, `#rightCol`, ...;
//!   a fixed corner when there is none): it takes no space from the
//!   page's layout. When the page's CSP blocks WebAssembly the host holds
//!   an `<iframe>` of `overlay.html` instead (product in the fragment,
//!   height from the UI's `postMessage`s).
//! * **Surfaces and shared parts.** One `pub mod` per surface (`overlay`,
//!   `popup`), shared components in their own modules:
//!   [`format`](mod@format) (prices as the marketplace writes them, dates), [`chart`]
//!   (step chart geometry), [`verdict`] (the deal sentence), [`model`]
//!   (wire types of the bridge's answers).
//! * **wasm32 only views.** The Leptos views, the bridge and the entry
//!   points compile for wasm32 only; the pure modules compile everywhere
//!   and are tested natively (`cargo test -p pricewatch-ui`). This keeps
//!   Leptos out of the native workspace build.
//! * **Styles and isolation.** The loader gives a mount element inside a
//!   closed shadow root (or the iframe's body); all CSS is the
//!   [`STYLE`] sheet, placed inside that root by the entry point.
//! * **Leptos without `delegation`**: delegated events are attached to the
//!   document and never see clicks inside a closed shadow root.

pub mod chart;
pub mod format;
pub mod model;
// The toolbar popup (its own surface; pure texts native, view wasm32 only).
pub mod popup;
pub mod verdict;

#[cfg(target_arch = "wasm32")]
pub mod bridge;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
pub use entry::mount_overlay;
#[cfg(target_arch = "wasm32")]
pub use popup::mount_popup;
#[cfg(target_arch = "wasm32")]
pub mod overlay;

/// The overlay's style sheet (placed inside the shadow root or iframe).
pub const STYLE: &str = include_str!("overlay.css");
