//! `capture`: acquires physical memory into evidence on the forensics volume
//! (the default action, see docs/capture.md), and on the analyst's side
//! verifies, extracts and summarises captures (`verify`, `extract`, `info`,
//! see docs/analyst.md).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Acquire physical memory into a hashed, seekable-zstd LiME image with a
/// manifest; or, with a subcommand, verify/extract/summarise a capture.
#[derive(Debug, Parser)]
#[command(
    name = "capture",
    version = fv_core::build::LONG_VERSION,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<fv_analyze::Command>,
    #[command(flatten)]
    capture: fv_acquire::CaptureArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(cmd) = &cli.command {
        return match fv_analyze::run(cmd) {
            Ok(exit) => exit.into(),
            Err(e) => {
                // Messages quote names from the evidence: made printable.
                let msg = e.to_string();
                eprintln!("capture: error: {}", fv_analyze::text::printable(&msg));
                if cmd.json() {
                    let line = fv_analyze::failure_json(cmd.name(), e.exit_code(), e.kind(), &e);
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
                ExitCode::from(e.exit_code())
            }
        };
    }
    match fv_acquire::run(&cli.capture) {
        Ok(outcome) => {
            let line = if cli.capture.json {
                fv_acquire::run::summary_json(&outcome).to_string()
            } else {
                fv_acquire::run::summary_line(&outcome)
            };
            // The evidence and manifest are on disk already: a closed stdout
            // (EPIPE) must not turn success into a crash.
            let _ = writeln!(std::io::stdout(), "{line}");
            ExitCode::from(outcome.exit)
        }
        Err(e) => {
            eprintln!("capture: error: {e}");
            // --json: the same shape as the helpers' failures, on stdout.
            if cli.capture.json {
                let line = fv_analyze::failure_json("capture", e.exit_code(), e.kind(), &e);
                let _ = writeln!(std::io::stdout(), "{line}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
