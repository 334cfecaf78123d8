//! The output root: the forensics volume found by its marker file
//! ([`default_root`]) and checked before anything is created ([`open_root`]).

use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};

use fv_core::fs::{Dir, FsError};
use fv_core::volume::{CAPTURES_DIR, MARKER_FILE, MARKER_TOOLKIT};

use super::device::{check_volume_device, check_volume_id};
use super::error::OutputError;

/// The default output root: `<volume>/captures` for the volume holding
/// `exe` (the canonical path of the running binary).
///
/// # Errors
/// [`OutputError::NoVolume`].
pub fn default_root(exe: &Path) -> Result<PathBuf, OutputError> {
    for dir in exe.ancestors().skip(1) {
        if is_marker(&dir.join(MARKER_FILE)) {
            return Ok(dir.join(CAPTURES_DIR));
        }
    }
    Err(OutputError::NoVolume {
        exe: exe.to_path_buf(),
    })
}

/// Whether `path` is a regular file (not a symlink) holding our marker.
fn is_marker(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !meta.file_type().is_file() || meta.len() > 64 << 10 {
        return false;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("toolkit").and_then(|t| t.as_str()).map(str::to_owned))
        .is_some_and(|t| t == MARKER_TOOLKIT)
}

/// The checked output root.
#[derive(Debug)]
pub struct Root {
    /// The open root.
    pub dir: Dir,
    /// The volume root, if the output is on one.
    pub volume: Option<PathBuf>,
    /// What the volume check could not prove or was told to relax (a Xen
    /// disk, the test model override): recorded in the manifest.
    pub warnings: Vec<String>,
}

/// mount-helper's test override, read by capture too: one more NVMe model
/// (qemu's, and only that one, see [`fv_ebs::locate::test_model_admitted`])
/// for the VM bench. Reported whenever it is set.
pub const TEST_MODEL_ENV: &str = "FV_TEST_ACCEPT_NVME_MODEL";

/// Opens the output root (creating the last component if it is the
/// volume's `captures` folder and missing), refusing symlinks anywhere, and
/// checks it is on a forensics volume (same file system as the marker)
/// unless `allow_any`; with `volume_id` (and not `allow_any`), that it is
/// on that EBS volume ([`check_volume_id`]).
///
/// # Errors
/// [`OutputError`] naming the problem.
pub fn open_root(
    path: &Path,
    allow_any: bool,
    volume_id: Option<&fv_ebs::VolumeId>,
) -> Result<Root, OutputError> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(OutputError::ParentComponent {
            path: path.to_path_buf(),
        });
    }
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| OutputError::sys(path, "getcwd", e))?
            .join(path)
    };
    let volume = abs
        .ancestors()
        .find(|d| is_marker(&d.join(MARKER_FILE)))
        .map(Path::to_path_buf);
    // A missing root is said to be missing (not "not on a forensics
    // volume"), except the volume's own captures folder, made below.
    let is_volume_captures =
        volume.as_deref() == abs.parent() && abs.file_name() == Some(OsStr::new(CAPTURES_DIR));
    if !is_volume_captures
        && matches!(std::fs::symlink_metadata(&abs), Err(e) if e.kind() == io::ErrorKind::NotFound)
    {
        return Err(OutputError::Missing { path: abs });
    }
    let mut warnings = Vec::new();
    // Before anything is created: a marker file proves nothing (anyone who
    // can write a directory can plant one), the filesystem itself must be
    // the volume's.
    if !allow_any {
        let Some(vol) = &volume else {
            return Err(OutputError::NotOnVolume { path: abs });
        };
        check_volume_device(
            &Dir::open(vol)?,
            Path::new("/"),
            Path::new("/sys"),
            Path::new("/dev"),
        )
        .map_err(|why| OutputError::NotTheVolumeDevice {
            path: abs.clone(),
            why,
        })?;
        if let Some(id) = volume_id {
            let extra = std::env::var(TEST_MODEL_ENV).ok();
            warnings = check_volume_id(
                &Dir::open(vol)?,
                id,
                &fv_ebs::Roots::default(),
                extra.as_deref(),
                &fv_ebs::locate::KernelIdentify,
            )
            .map_err(|why| OutputError::NotTheVolumeId {
                path: abs.clone(),
                volume_id: id.to_string(),
                why,
            })?;
        }
    }
    let dir = match Dir::open(&abs) {
        Ok(d) => d,
        Err(FsError::Sys { source, .. })
            if source.raw_os_error() == Some(libc::ENOENT) && is_volume_captures =>
        {
            let parent = Dir::open(abs.parent().unwrap_or(Path::new("/")))?;
            parent.create_dir(OsStr::new(CAPTURES_DIR))?
        }
        Err(e) => return Err(e.into()),
    };
    if !allow_any {
        let Some(vol) = &volume else {
            return Err(OutputError::NotOnVolume { path: abs });
        };
        let vol_dir = Dir::open(vol)?;
        if vol_dir.stat()?.st_dev != dir.stat()?.st_dev {
            return Err(OutputError::OtherFilesystem {
                path: abs,
                volume: vol.clone(),
            });
        }
    }
    Ok(Root {
        dir,
        volume,
        warnings,
    })
}
