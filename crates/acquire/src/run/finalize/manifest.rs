//! The manifest's sections that finalization assembles: the tool, the
//! host (or what is unknown of a foreign one), the image, the timing; the
//! image's sidecar and file entries; the manifest written last and
//! atomically; the exit code its status maps to.

use std::time::{Instant, SystemTime};

use fv_core::fs::Dir;
use fv_evidence::manifest::{
    self, Compression, FileEntry, Host, Image, Imds, Manifest, PartialCause, Timing, Tool,
};
use fv_evidence::writer::ImageSummary;

use crate::error::Error;
use crate::exit;
use crate::hex::hex;
use crate::host::{self, Uname};
use crate::output::{self, OutputError};
use crate::roots::Roots;

/// `host.*` strings of a capture whose memory is from another host.
pub const UNKNOWN: &str = "unknown";

/// The running tool: name, version, commit, binary path and hash.
pub(super) fn tool() -> Tool {
    let (exe_path, exe_sha) = host::self_exe();
    Tool {
        name: fv_core::build::TOOLKIT.into(),
        version: fv_core::build::VERSION.into(),
        git_commit: fv_core::build::GIT_COMMIT.into(),
        binary_path: exe_path.display().to_string(),
        binary_sha256: exe_sha,
    }
}

/// The host section: this host's identity, or, for memory from another
/// host (`foreign`: why), nothing of this host (item 4 of issue 22).
pub(super) fn host_section(
    foreign: Option<String>,
    uname: &Uname,
    roots: &Roots,
    imds: Option<Imds>,
    imds_status: String,
) -> Host {
    match foreign {
        Some(why) => Host {
            foreign: Some(format!(
                "the memory is from another host: {why}; its hostname, kernel, boot ID and instance are unknown to capture"
            )),
            hostname: UNKNOWN.into(),
            kernel_release: UNKNOWN.into(),
            kernel_version: UNKNOWN.into(),
            machine: UNKNOWN.into(),
            boot_id: None,
            imds: None,
            imds_status,
        },
        None => Host {
            foreign: None,
            hostname: uname.nodename.clone(),
            kernel_release: uname.release.clone(),
            kernel_version: uname.version.clone(),
            machine: uname.machine.clone(),
            boot_id: host::boot_id(roots),
            imds,
            imds_status,
        },
    }
}

/// Start, end (now), duration and throughput of the run.
pub(super) fn timing(start_wall: SystemTime, t0: Instant, s: &ImageSummary) -> Timing {
    let end_wall = SystemTime::now();
    let elapsed = t0.elapsed();
    Timing {
        start_utc: crate::utc::rfc3339(start_wall),
        end_utc: crate::utc::rfc3339(end_wall),
        duration_seconds: elapsed.as_secs_f64(),
        throughput_bytes_per_second: s.lime_len as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

pub(super) fn image_section(s: &ImageSummary) -> Image {
    Image {
        file: manifest::IMAGE_FILE.into(),
        format: "lime".into(),
        lime_length: s.lime_len,
        lime_sha256: hex(&s.lime_sha256),
        compressed_length: s.zst_len,
        compressed_sha256: hex(&s.zst_sha256),
        compression: Compression {
            format: "zstd-seekable".into(),
            level: s.level,
            levels_used: Some([s.level_min, s.level_max]),
            threads: u32::try_from(s.threads).unwrap_or(u32::MAX),
            frame_size: u64::from(s.frame_size),
            frames: s.frames,
            checksums: true,
        },
    }
}

/// Writes the image's sidecar and puts the image and sidecar first in
/// `files`.
///
/// # Errors
/// [`Error::Output`] when the sidecar cannot be written.
pub(super) fn add_image_files(
    cdir: &Dir,
    summary: &ImageSummary,
    files: &mut Vec<FileEntry>,
) -> Result<(), Error> {
    let zst_hex = hex(&summary.zst_sha256);
    let sidecar = format!("{zst_hex}  {}\n", manifest::IMAGE_FILE);
    let sidecar_sha = output::write_atomic(cdir, manifest::IMAGE_SHA256_FILE, sidecar.as_bytes())?;
    files.insert(
        0,
        FileEntry {
            path: manifest::IMAGE_FILE.into(),
            size: summary.zst_len,
            sha256: zst_hex,
        },
    );
    files.insert(
        1,
        FileEntry {
            path: manifest::IMAGE_SHA256_FILE.into(),
            size: sidecar.len() as u64,
            sha256: sidecar_sha,
        },
    );
    Ok(())
}

/// Writes the manifest last and atomically, then clears the in-progress
/// mark; returns the manifest's SHA-256.
///
/// # Errors
/// [`Error::Output`] or [`Error::Manifest`].
pub(super) fn write(cdir: &Dir, root: &Dir, m: &Manifest) -> Result<String, Error> {
    cdir.sync().map_err(OutputError::from)?;
    let manifest_sha256 = output::write_atomic(cdir, manifest::MANIFEST_FILE, &m.to_json()?)?;
    fv_evidence::inprogress::clear(cdir).map_err(OutputError::from)?;
    root.sync().map_err(OutputError::from)?;
    Ok(manifest_sha256)
}

/// The documented exit code of a finished capture.
pub(super) fn exit_code(m: &Manifest) -> u8 {
    match m.partial_reason.as_ref().map(|r| r.cause) {
        None => exit::OK,
        Some(PartialCause::Interrupted) => exit::PARTIAL_INTERRUPTED,
        Some(PartialCause::NoSpace) => exit::PARTIAL_NO_SPACE,
        Some(PartialCause::WriteError) => exit::PARTIAL_WRITE,
        Some(_) => exit::PARTIAL_SOURCE,
    }
}
