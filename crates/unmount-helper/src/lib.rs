//! `unmount-helper`: sync, unmount and flush the forensics volume.
//! The command line is in [`cli`], the documented exit codes in [`exit`].

pub mod cli;
pub mod exit;
