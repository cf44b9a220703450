//! Command line: one clap subcommand per job. Each subcommand lives in its
//! own module and returns `anyhow::Result<()>`; errors print as one line.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod serve;

#[derive(Debug, Parser)]
#[command(name = "pricewatch", version, about = "Crowdsourced Amazon price history")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the backend HTTP server.
    Serve(serve::ServeArgs),
}

/// Entry point used by `main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pricewatch: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
