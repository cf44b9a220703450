//! Command line: one clap subcommand per job. Each subcommand lives in its
//! own module and returns `anyhow::Result<()>`; errors print as one line.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod extract;
mod loadgen;
mod parse_price;
mod serve;
mod simulate;
mod verifier;

#[derive(Debug, Parser)]
#[command(
    name = "pricewatch",
    version,
    about = "Crowdsourced Amazon price history"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the backend HTTP server.
    Serve(serve::ServeArgs),
    /// Ingest load against a running backend; last line is one JSON object.
    Loadgen(loadgen::LoadgenArgs),
    /// Extract offers from a saved Amazon page; prints one JSON object.
    Extract(extract::ExtractArgs),
    /// Parse price text the way the extension does; one JSON object per input.
    ParsePrice(parse_price::ParsePriceArgs),
    /// Run the verification crawler against a backend.
    Verifier(verifier::VerifierArgs),
    /// Adversarial trust simulation (TRUST.md) against the real decision code.
    Simulate(simulate::SimulateArgs),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Extract(args) => extract::run(args),
        Command::ParsePrice(args) => parse_price::run(args),
        Command::Verifier(args) => verifier::run(args),
        Command::Simulate(args) => simulate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pricewatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
