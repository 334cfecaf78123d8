//! `mount-helper`: finds an EBS volume by its ID and mounts it safely.

use clap::Parser;
use mount_helper::cli::Args;

fn main() {
    let args = Args::parse();
    eprintln!("mount-helper: {:?}: not implemented yet", args.command);
    std::process::exit(mount_helper::exit::FAILURE);
}
