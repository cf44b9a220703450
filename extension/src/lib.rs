//! The extension's Rust side, compiled to WebAssembly and loaded by the
//! content script and the service worker.

use wasm_bindgen::prelude::*;

/// The version of the extension's core, for the service worker's marker.
#[wasm_bindgen]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
