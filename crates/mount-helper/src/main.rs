//! `mount-helper`: finds an EBS volume by its ID and mounts it safely.

use clap::Parser;
use mount_helper::cli::Args;

fn main() {
    let args = Args::parse();
    std::process::exit(mount_helper::main_with(&args));
}
