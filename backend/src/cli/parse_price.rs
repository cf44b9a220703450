//! `pricewatch parse-price`: runs the core's price parser on text given on
//! the command line or on standard input, and prints one JSON object per
//! input: `{"input", "amount", "minor", "currency"}`. `amount`, `minor` and
//! `currency` are `null` when the text holds no single price (a range, a
//! unit price, a list price, two prices, no price).

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use std::io::{BufRead, BufWriter, Write};
use wasm_core::marketplace::Marketplace;
use wasm_core::price::{amount_string, parse_price};

#[derive(Debug, Args)]
pub struct ParsePriceArgs {
    /// The store the text comes from (`amazon.de`, or a host such as
    /// `www.amazon.de`). It decides the currency of `$` and of bare numbers
    /// and settles `1.234`-style ambiguity.
    #[arg(long, value_parser = parse_marketplace)]
    pub marketplace: Option<Marketplace>,
    /// Read inputs from standard input, one per line.
    #[arg(long, conflicts_with = "text")]
    pub stdin: bool,
    /// The price text, e.g. "1.234,56 €".
    #[arg(required_unless_present = "stdin")]
    pub text: Option<String>,
}

fn parse_marketplace(s: &str) -> Result<Marketplace, String> {
    Marketplace::from_host(s).ok_or_else(|| {
        let known: Vec<&str> = Marketplace::all().iter().map(|m| m.domain()).collect();
        format!(
            "unknown marketplace {s:?}; expected one of {}",
            known.join(", ")
        )
    })
}

/// One output line.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ParsedPrice<'a> {
    pub input: &'a str,
    pub amount: Option<String>,
    pub minor: Option<u64>,
    pub currency: Option<&'static str>,
}

/// Parses one input into its output record.
pub fn parse_one(input: &str, marketplace: Option<Marketplace>) -> ParsedPrice<'_> {
    match parse_price(input, marketplace) {
        Some(p) => ParsedPrice {
            input,
            amount: Some(amount_string(p.minor, p.currency)),
            minor: Some(p.minor),
            currency: Some(p.currency.code()),
        },
        None => ParsedPrice {
            input,
            amount: None,
            minor: None,
            currency: None,
        },
    }
}

fn emit(out: &mut impl Write, input: &str, marketplace: Option<Marketplace>) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, &parse_one(input, marketplace))?;
    out.write_all(b"\n")?;
    Ok(())
}

pub fn run(args: ParsePriceArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.stdin {
        // Lines are read as bytes: invalid UTF-8 is replaced (U+FFFD) rather
        // than aborting the whole batch; a trailing "\r" (CRLF input) is not
        // part of the input.
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .context("reading standard input")?;
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.strip_suffix('\n').unwrap_or(&text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            emit(&mut out, text, args.marketplace)?;
        }
    } else if let Some(text) = &args.text {
        emit(&mut out, text, args.marketplace)?;
    }
    out.flush().context("writing standard output")?;
    Ok(())
}
