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

/// What `capture` says after clap's error when the command line looks like
/// AVML's (`avml OUTPUT.lime`, `avml --compress OUTPUT.lime.compressed`):
/// this tool takes a directory, not a file, and always compresses.
fn avml_hint(kind: clap::error::ErrorKind, args: &[std::ffi::OsString]) -> Option<String> {
    use clap::error::ErrorKind;
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let compress = args
        .iter()
        .any(|a| a == "--compress" || a.starts_with("--compress="));
    let positional = matches!(kind, ErrorKind::InvalidSubcommand)
        || (matches!(kind, ErrorKind::UnknownArgument)
            && args
                .iter()
                .any(|a| !a.starts_with('-') && a.contains(['.', '/'])));
    if !compress && !positional {
        return None;
    }
    let mut note = String::from(
        "note: capture is not AVML. It takes no output file: it writes into a new capture directory (memory.lime.zst, memory.lime.zst.sha256, manifest.json) inside the captures/ folder of the forensics volume it runs from, or inside an existing directory given with -o DIR.",
    );
    if compress {
        note.push_str(
            " There is no --compress: the image is always compressed, as seekable zstd (zstd -d or `capture extract` give the plain LiME stream).",
        );
    }
    note.push_str(" See `capture --help` and docs/capture.md.");
    Some(note)
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let hint = avml_hint(e.kind(), &args);
            let _ = e.print();
            if let Some(hint) = hint {
                eprintln!("{hint}");
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
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
    match fv_acquire::run(&cli.capture.plan()) {
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
