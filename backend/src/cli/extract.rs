//! `pricewatch extract [--url <page URL>] <file.html>`: runs the core's
//! Amazon extraction rules on a saved page and prints the result as one
//! JSON object:
//! `{"page","asin","marketplace","title","offers":[{"condition","price_minor","currency","availability","seller","rule"}]}`.
//!
//! Exit code 0 whenever the file was read, whatever the page turned out to
//! be (a CAPTCHA page, a 404, no price). A missing or unreadable file is a
//! one-line error and a non-zero exit. Bytes that are not UTF-8 are
//! replaced (U+FFFD) rather than rejected: saved pages are sometimes
//! Latin-1, and the markup and prices we read are ASCII or survive it.

use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The page's address (decides marketplace and ASIN when given).
    #[arg(long)]
    pub url: Option<String>,
    /// The saved HTML page.
    pub file: PathBuf,
}

pub fn run(args: ExtractArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let html = String::from_utf8_lossy(&bytes);
    let extraction = wasm_core::extract::extract_html(&html, args.url.as_deref());
    let json = serde_json::to_string(&extraction).context("serialising the extraction")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").context("writing to stdout")?;
    Ok(())
}
