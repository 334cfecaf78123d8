//! Drives the image writer alone on a LiME file (no parsing, no manifest):
//! `fv-bench-write IN OUT [LEVEL [THREADS [FRAME_SIZE]]]`. For tuning the
//! writer; the benchmark proper runs the real `capture`.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use fv_evidence::writer::{ImageWriter, WriterOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: fv-bench-write IN OUT [LEVEL [THREADS [FRAME_SIZE]]]");
        return ExitCode::from(2);
    }
    let mut opts = WriterOptions::default();
    if let Some(l) = args.get(2) {
        opts.level = l.parse().unwrap_or(opts.level);
    }
    if let Some(t) = args.get(3) {
        opts.threads = t.parse().unwrap_or(opts.threads);
    }
    if let Some(f) = args.get(4) {
        opts.frame_size = f.parse().unwrap_or(opts.frame_size);
    }
    match run(&args[0], &args[1], opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fv-bench-write: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(input: &str, output: &str, opts: WriterOptions) -> Result<(), Box<dyn std::error::Error>> {
    let out = Path::new(output);
    let dir = fv_core_dir(out.parent().unwrap_or(Path::new(".")))?;
    let file = dir.create_file(out.file_name().unwrap_or(OsStr::new("out")))?;
    let start = std::time::Instant::now();
    let mut w = ImageWriter::new(file, out.to_path_buf(), opts)?;
    let mut inp = std::fs::File::open(input)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = inp.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write(&buf[..n])?;
    }
    let s = w.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    println!(
        "{} bytes -> {} bytes ({:.1} %), {} frames, level {} (used {}..={}), {} threads, {:.2} s, {:.0} MiB/s\nlime {}\nzst  {}",
        s.lime_len,
        s.zst_len,
        100.0 * s.zst_len as f64 / s.lime_len.max(1) as f64,
        s.frames,
        s.level,
        s.level_min,
        s.level_max,
        s.threads,
        secs,
        s.lime_len as f64 / 1048576.0 / secs,
        hex(&s.lime_sha256),
        hex(&s.zst_sha256)
    );
    Ok(())
}

fn fv_core_dir(p: &Path) -> Result<fv_core::fs::Dir, fv_core::fs::FsError> {
    fv_core::fs::Dir::open(p)
}
