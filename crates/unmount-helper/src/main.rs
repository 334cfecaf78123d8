//! `unmount-helper`: flushes and unmounts the forensics volume, safe to detach.

use clap::Parser;
use unmount_helper::cli::Args;

fn main() {
    let args = Args::parse();
    std::process::exit(unmount_helper::main_with(&args));
}
