//! Phase 1, the preflight: root, signals, writer options, the output root
//! and its lock. The output is checked before the source is touched: a
//! refused output must leave the machine exactly as it was.

use std::io::Write;
use std::time::{Instant, SystemTime};

use fv_evidence::writer::{self, WriterOptions};

use super::state::Preflight;
use crate::error::Error;
use crate::host::{self, identity::canonical_exe};
use crate::output;
use crate::plan::{OutputPlan, WriterPlan};
use crate::stop;

/// The writer's options from the plan, and a warning when the memory bound
/// takes threads away.
fn writer_options(plan: &WriterPlan) -> Result<(WriterOptions, Option<String>), Error> {
    let mut opts = WriterOptions::default();
    if let Some(l) = plan.level {
        if !(-7..=22).contains(&l) {
            return Err(Error::Usage(format!(
                "--level {l} is out of range (-7 to 22; 1 is the default, 0 adaptive)"
            )));
        }
        opts.level = l;
    }
    if let Some(t) = plan.threads {
        opts.threads = t.get().min(fv_evidence::writer::MAX_THREADS);
    }
    if let Some(f) = plan.frame_size {
        opts.frame_size = f;
    }
    // Peak RSS stays under 64 MiB whatever the level and the CPU count:
    // high levels get fewer threads, as do machines with many CPUs.
    let fit = writer::threads_within(&opts, writer::MEMORY_BUDGET);
    let mut note = None;
    if fit < opts.threads {
        let asked = if plan.threads.is_some() {
            "asked for"
        } else {
            "one per CPU"
        };
        let level = if opts.level == writer::ADAPTIVE_LEVEL {
            format!("the adaptive level (up to {})", writer::ADAPTIVE_MAX)
        } else {
            format!("zstd level {}", opts.level)
        };
        note = Some(format!(
            "{fit} compression thread(s) instead of {} ({asked}): at {level} more would need over {} MiB, past the memory bound",
            opts.threads,
            writer::MEMORY_BUDGET >> 20
        ));
        opts.threads = fit;
    }
    Ok((opts, note))
}

/// Phase 1: root, signals, writer options, the output root and its lock.
pub(super) fn preflight(writer: &WriterPlan, out: &OutputPlan) -> Result<Preflight, Error> {
    let uid = nix::unistd::geteuid();
    if !uid.is_root() {
        return Err(Error::NotRoot { uid: uid.as_raw() });
    }
    let start_wall = SystemTime::now();
    let t0 = Instant::now();
    stop::install().map_err(Error::Signals)?;
    let (opts, threads_note) = writer_options(writer)?;
    let uname = host::uname();
    let root_path = match &out.root {
        Some(p) => p.clone(),
        None => output::default_root(&canonical_exe())?,
    };
    let root = output::open_root(&root_path, out.allow_any, out.volume_id.as_ref())?;
    let lock = output::lock(&root.dir)?;
    let mut warnings: Vec<String> = threads_note.into_iter().collect();
    for w in &root.warnings {
        let _ = writeln!(std::io::stderr(), "capture: warning: {w}");
    }
    warnings.extend(root.warnings.iter().cloned());
    Ok(Preflight {
        start_wall,
        t0,
        opts,
        uname,
        root,
        _lock: lock,
        warnings,
    })
}
