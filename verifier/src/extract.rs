//! The extraction seam. The fetcher hands every page to an [`Extractor`];
//! the real one is `wasm-core`'s rules ([`WasmCoreExtractor`]), the same
//! code the extension runs, so the verifier and the collectors read pages
//! identically. Tests may plug in their own.

use wasm_core::extract::Extraction;

/// Turns a page into an [`Extraction`].
pub trait Extractor: Send + Sync + 'static {
    /// Extracts `html`, fetched from the store URL `url`.
    fn extract(&self, html: &str, url: &str) -> Extraction;
}

/// `wasm_core::extract::extract_html`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmCoreExtractor;

impl Extractor for WasmCoreExtractor {
    fn extract(&self, html: &str, url: &str) -> Extraction {
        wasm_core::extract::extract_html(html, Some(url))
    }
}

impl<F> Extractor for F
where
    F: Fn(&str, &str) -> Extraction + Send + Sync + 'static,
{
    fn extract(&self, html: &str, url: &str) -> Extraction {
        self(html, url)
    }
}
