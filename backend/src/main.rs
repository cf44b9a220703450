//! The `pricewatch` binary. Thin: parse the command line, hand over to
//! `backend::cli`.

fn main() -> std::process::ExitCode {
    backend::cli::main()
}
