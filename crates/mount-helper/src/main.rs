//! `mount-helper`: finds an EBS volume by its ID and mounts it safely.

use clap::Parser;

/// Locate an EBS volume by its volume ID and mount it safely.
#[derive(Debug, Parser)]
#[command(name = "mount-helper", version = fv_core::build::LONG_VERSION)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
