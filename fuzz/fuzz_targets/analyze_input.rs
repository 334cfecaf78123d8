//! Hands arbitrary bytes to `capture verify` and `capture info` as a file
//! (whatever it is taken for: seekable image, plain zstd, plain LiME): every
//! path through input detection, the scans, the header walk and the report
//! must end in a report or a named error, never a panic or a hang.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use fv_analyze::input::Input;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("fv-fuzz-analyze-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("input");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(input) = Input::open(&path) else {
        return;
    };
    if let Ok(report) = fv_analyze::verify::verify(&input, &path, None, 2) {
        // Whatever was found, a report that says "verified" has no problem.
        assert_eq!(report.verified, report.problems.is_empty());
    }
    let args = fv_analyze::InfoArgs {
        path: path.clone(),
        json: true,
    };
    let _ = fv_analyze::run_with(
        &fv_analyze::Command::Info(args),
        &mut std::io::sink(),
        &mut std::io::sink(),
    );
});
