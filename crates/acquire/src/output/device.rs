//! Whether the output's filesystem is the forensics volume by device
//! identity ([`check_volume_device`]: the label on a block device that is
//! not the root disk) and, with `--volume-id`, that very EBS volume
//! ([`check_volume_id`]).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fv_core::fs::Dir;

/// Whether the filesystem holding `dir` is the forensics volume by device
/// identity: a block device (not tmpfs, overlay or a network filesystem),
/// not the disk that holds `root`'s filesystem (the suspect's `/`), whose
/// superblock, read through a node of `dev_root` checked to be that very
/// device, carries the volume's label. The superblock is read, never
/// written (1 KiB at most of the device).
///
/// # Errors
/// Why it is not: the text says what the device is instead.
pub fn check_volume_device(
    dir: &Dir,
    root: &Path,
    sys: &Path,
    dev_root: &Path,
) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let st = dir.stat().map_err(|e| e.to_string())?;
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    let root_dev = std::fs::metadata(root)
        .map_err(|e| format!("stat {}: {e}", root.display()))?
        .dev();
    if root_dev == st.st_dev {
        return Err(format!(
            "it is the filesystem of {} ({major}:{minor})",
            root.display()
        ));
    }
    let node = sys.join(format!("dev/block/{major}:{minor}"));
    let uevent = std::fs::read_to_string(node.join("uevent"))
        .map_err(|_| format!("its filesystem ({major}:{minor}) is not on a block device"))?;
    let name = uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .filter(|n| !n.is_empty() && !n.contains(".."))
        .ok_or_else(|| format!("no device name for {major}:{minor} in {}", node.display()))?;
    let disk_of = |p: &Path| -> Option<PathBuf> {
        let real = std::fs::canonicalize(p).ok()?;
        if real.join("partition").exists() {
            real.parent().map(Path::to_path_buf)
        } else {
            Some(real)
        }
    };
    let root_node = sys.join(format!(
        "dev/block/{}:{}",
        libc::major(root_dev),
        libc::minor(root_dev)
    ));
    if let (Some(a), Some(b)) = (disk_of(&node), disk_of(&root_node))
        && a == b
    {
        return Err(format!(
            "{name} is on the disk that holds {}",
            root.display()
        ));
    }
    let path = dev_root.join(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() || meta.rdev() != st.st_dev {
        return Err(format!(
            "{} is not the device {major}:{minor}",
            path.display()
        ));
    }
    let sb = fv_ebs::superblock::read(&mut file).map_err(|e| format!("{}: {e}", path.display()))?;
    if sb.label != fv_core::volume::LABEL {
        return Err(format!(
            "{} is labelled {:?}, not {:?}",
            path.display(),
            sb.label,
            fv_core::volume::LABEL
        ));
    }
    Ok(())
}

/// Security review S12: whether the filesystem holding `dir` is on the EBS
/// volume `id` itself, not merely on some disk labelled FORENSICS: the disk
/// under it (`roots.sys`) must be the NVMe device whose serial is the
/// volume ID without the dash and whose model is EBS's, as fv-ebs's
/// resolution (the one mount-helper uses, with the NVMe identify data where
/// it can be read) finds it. `extra_model` is mount-helper's test override
/// (`FV_TEST_ACCEPT_NVME_MODEL`), which admits qemu's model only. A Xen
/// block device (`xvd*`, not NVMe) shows no volume ID in the guest: it is
/// accepted with a warning saying the ID was not checked. Returns the
/// warnings to record.
///
/// # Errors
/// Why it is not that volume, in a sentence.
pub fn check_volume_id(
    dir: &Dir,
    id: &fv_ebs::VolumeId,
    roots: &fv_ebs::Roots,
    extra_model: Option<&str>,
    identify: &dyn fv_ebs::locate::IdentifySource,
) -> Result<Vec<String>, String> {
    use fv_ebs::locate::{self, EBS_MODEL, Expectation, LocateOptions};
    let st = dir.stat().map_err(|e| e.to_string())?;
    let dev = fv_ebs::DevT {
        major: libc::major(st.st_dev),
        minor: libc::minor(st.st_dev),
    };
    let table = fv_ebs::sysfs::BlockTable::scan(&roots.sys).map_err(|e| e.to_string())?;
    let Some((disk, _)) = table.by_dev(dev) else {
        return Err(format!(
            "its filesystem ({}:{}) is on no block device, so not on EBS volume {id}",
            dev.major, dev.minor
        ));
    };
    let Some(nvme) = &disk.nvme else {
        if disk.name.starts_with("xvd") {
            return Ok(vec![format!(
                "the output is on {}, a Xen block device: the guest sees no volume ID there, so it was not checked to be {id} (only the FORENSICS label and that it is not the root disk)",
                disk.name
            )]);
        }
        return Err(format!(
            "it is on {}, which is not an NVMe device, so not EBS volume {id} (on Nitro every EBS volume is NVMe; a loop device or another disk labelled FORENSICS is not the volume)",
            disk.name
        ));
    };
    if nvme.model != EBS_MODEL && !locate::test_model_admitted(extra_model, &nvme.model) {
        return Err(format!(
            "it is on {}, NVMe model {:?}, not an EBS volume",
            disk.name, nvme.model
        ));
    }
    if nvme.serial != id.serial() {
        return Err(format!(
            "it is on {}, whose NVMe serial {:?} is {}, not {id}",
            disk.name,
            nvme.serial,
            fv_ebs::VolumeId::from_serial(&nvme.serial)
                .map_or_else(|| "no volume ID".to_string(), |v| format!("volume {v}"))
        ));
    }
    // The serial matches in sysfs: confirm with the whole resolution
    // (identify data, one device only, not the root disk).
    let expect = Expectation::default();
    let found = locate::locate_once(&LocateOptions {
        volume_id: id,
        requested: None,
        protect: &[],
        expect: &expect,
        extra_model,
        allow_mounted: true,
        identify,
        roots,
    })
    .map_err(|e| format!("{id} does not resolve to {}: {e}", disk.name))?;
    if found.dev != disk.dev {
        return Err(format!(
            "it is on {}, but {id} is {}",
            disk.name, found.device
        ));
    }
    Ok(found.warnings)
}
