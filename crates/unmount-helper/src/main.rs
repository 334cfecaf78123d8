//! `unmount-helper`: flushes and unmounts the forensics volume, safe to detach.

use clap::Parser;

/// Flush and unmount the forensics volume so it is safe to detach.
#[derive(Debug, Parser)]
#[command(name = "unmount-helper", version = fv_core::build::LONG_VERSION)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
