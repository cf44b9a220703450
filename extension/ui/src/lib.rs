//! pricewatch-ui: the extension's user interface, Leptos (client-side
//! rendering) compiled to WebAssembly.
//!
//! # Architecture
//!
//! * **Separate module.** This crate builds its own wasm (`pkg/ui/`,
//!   `scripts/build-extension`), apart from the small extraction module
//!   (`extension/`) that runs on every product page: the UI's wasm loads
//!   only when the overlay shows.
//! * **No `chrome.*` here.** Every piece of data comes through a *bridge*,
//!   a JS object with `send(message) -> Promise<answer>` given by the
//!   loader (`content.js` in the page, `overlay.js` in the iframe
//!   fallback). The service worker answers (`extension/static/sw_data.js`
//!   documents the message contract), so the same UI runs inside the
//!   page's closed shadow root and inside the extension page
//!   `overlay.html`.
//! * **Surfaces and shared parts.** One `pub mod` per surface (`overlay`,
//!   `popup`), shared components in their own modules:
//!   [`format`] (prices as the marketplace writes them, dates), [`chart`]
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
pub mod overlay;

/// The overlay's style sheet (placed inside the shadow root or iframe).
pub const STYLE: &str = include_str!("overlay.css");
