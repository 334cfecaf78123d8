//! The analyst's subcommands on their own, exactly as `capture` runs them:
//! `fv-analyze verify|extract|info ...`. For the benchmark (`bench/verify.sh`)
//! and for trying the library without the acquisition side.

use std::process::ExitCode;

use clap::Parser;

/// Verify, extract and summarise forensics-volume memory captures.
#[derive(Debug, Parser)]
#[command(name = "fv-analyze", version = fv_core::build::LONG_VERSION)]
struct Args {
    #[command(subcommand)]
    command: fv_analyze::Command,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match fv_analyze::run(&args.command) {
        Ok(exit) => exit.into(),
        Err(e) => {
            let msg = e.to_string();
            eprintln!("fv-analyze: {}", fv_analyze::text::printable(&msg));
            ExitCode::from(e.exit_code())
        }
    }
}
