//! `mount-helper`: locate an EBS volume by its ID and mount it safely.
//! The command line is in [`cli`], the documented exit codes in [`exit`].

pub mod cli;
pub mod exit;
