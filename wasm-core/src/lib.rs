//! The pure core of pricewatch, shared by the extension (wasm32), the
//! verifier and the backend (native).
//!
//! Invariant: this crate does no IO. No files, no network, no clocks, no
//! randomness: callers pass in time, nonces and key seeds. It builds for
//! `wasm32-unknown-unknown` and natively. Browser bindings live behind the
//! `dom` feature.

pub mod asin;
#[cfg(all(feature = "dom", target_arch = "wasm32"))]
pub mod dom;
pub mod extract;
pub mod html;
pub mod marketplace;
pub mod page;
pub mod price;
pub mod protocol;
pub mod types;
