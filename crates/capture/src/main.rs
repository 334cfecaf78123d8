//! `capture`: acquires physical memory into evidence on the forensics volume.

use clap::Parser;

/// Acquire physical memory into a hashed, seekable-zstd LiME image.
#[derive(Debug, Parser)]
#[command(name = "capture", version = fv_core::build::LONG_VERSION)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
