//! `pricewatch simulate`: the adversarial benchmark of TRUST.md, run
//! against the real decision code (`backend::trust`) with a simulated
//! clock (work in progress).

use clap::Args;

/// Flags of `simulate`.
#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// RNG seed: the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the simulation.
pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    println!("seed {}", args.seed);
    Ok(())
}
