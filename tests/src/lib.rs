//! Harness shared by the end-to-end tests (`tests/tests/*.rs`): the real
//! `pricewatch` binary on a free loopback port with a temporary SQLite
//! database ([`server`]), a tiny HTTP client ([`http`]), and headless
//! Chromium with the built extension driven by Playwright scripts
//! ([`browser`], scripts in `tests/js/`).
//!
//! Everything here is synchronous std code: each test owns its processes,
//! and dropping a handle kills what it started.
//!
//! Environment the harness reads:
//! - `PRICEWATCH_BIN`: the `pricewatch` binary (default: the one cargo built
//!   next to the test executable's `deps/` folder).
//! - `PRICEWATCH_EXTENSION_DIR`: the unpacked extension (default
//!   `dist/extension` at the workspace root; `scripts/build-extension`).
//! - `PRICEWATCH_CHROMIUM`: the browser (default `/usr/lib/chromium/chromium`).
//! - `PRICEWATCH_NODE_MODULES`: where `playwright-core` is installed
//!   (default `scripts/node/node_modules`).
//! - `CI`: when set, a missing prerequisite fails a test instead of skipping it.

pub mod browser;
pub mod corpus;
pub mod env;
pub mod fake_amazon;
pub mod http;
pub mod server;
pub mod smtp_sink;
pub mod webhook_sink;

pub use browser::{BrowserRun, ExtensionBrowser};
pub use env::{ci, skip_or_fail, workspace_root};
pub use server::PricewatchServer;

use std::fmt;

/// A harness failure: what was being done and why it failed, with the
/// relevant process output, in one readable message.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The same error with `context` in front of it.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error(format!("{context}: {}", self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;
