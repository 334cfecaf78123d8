//! NVMe Identify Controller data (NVMe base spec, Identify Controller data
//! structure; Amazon's vendor-specific area as read by amazon-ec2-utils
//! `ebsnvme-id`). Pure parsing over the 4096-byte response.

use serde::Serialize;

/// Length of the Identify Controller response.
pub const IDENTIFY_LEN: usize = 4096;
/// Offset of the serial number (20 bytes, space padded).
const SN: usize = 4;
/// Offset of the model number (40 bytes, space padded).
const MN: usize = 24;
/// Offset of the firmware revision (8 bytes).
const FR: usize = 64;
/// Offset of EBS's vendor-specific block device name (32 bytes, space
/// padded, e.g. `sdf` or `/dev/sdf`).
const VS_BDEV: usize = 3072;

/// The fields of Identify Controller that identify an EBS volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifyController {
    /// PCI vendor ID (0x1D0F for both EBS and instance store: not decisive).
    pub vendor_id: u16,
    /// Serial number, trimmed (`vol0123…` on EBS).
    pub serial: String,
    /// Model number, trimmed.
    pub model: String,
    /// Firmware revision, trimmed.
    pub firmware: String,
    /// The device name the volume was attached as, from the vendor-specific
    /// area, trimmed; empty when the controller does not provide one.
    pub attached_as: String,
}

/// The response was not a whole Identify Controller structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NVMe identify controller data is {0} bytes, expected {IDENTIFY_LEN}")]
pub struct ShortIdentify(pub usize);

/// Trims the space/NUL padding of an NVMe ASCII field.
pub fn trim_field(bytes: &[u8]) -> String {
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl IdentifyController {
    /// Parses the response.
    ///
    /// # Errors
    /// [`ShortIdentify`] unless `blob` is exactly [`IDENTIFY_LEN`] bytes.
    pub fn parse(blob: &[u8]) -> Result<Self, ShortIdentify> {
        if blob.len() != IDENTIFY_LEN {
            return Err(ShortIdentify(blob.len()));
        }
        Ok(Self {
            vendor_id: u16::from_le_bytes([blob[0], blob[1]]),
            serial: trim_field(&blob[SN..SN + 20]),
            model: trim_field(&blob[MN..MN + 40]),
            firmware: trim_field(&blob[FR..FR + 8]),
            attached_as: trim_field(&blob[VS_BDEV..VS_BDEV + 32]),
        })
    }
}

/// Builds an Identify Controller response, for tests (here and in callers).
pub fn build_blob(serial: &str, model: &str, attached_as: &str) -> Vec<u8> {
    let mut blob = vec![0u8; IDENTIFY_LEN];
    blob[0..2].copy_from_slice(&0x1d0f_u16.to_le_bytes());
    let mut put = |offset: usize, width: usize, text: &str| {
        let field = &mut blob[offset..offset + width];
        field.fill(b' ');
        let n = text.len().min(width);
        field[..n].copy_from_slice(&text.as_bytes()[..n]);
    };
    put(SN, 20, serial);
    put(MN, 40, model);
    put(FR, 8, "1.0");
    put(VS_BDEV, 32, attached_as);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ebs_identify_data() {
        let blob = build_blob("vol0123456789abcdef0", "Amazon Elastic Block Store", "sdf");
        let id = IdentifyController::parse(&blob).unwrap();
        assert_eq!(id.vendor_id, 0x1d0f);
        assert_eq!(id.serial, "vol0123456789abcdef0");
        assert_eq!(id.model, "Amazon Elastic Block Store");
        assert_eq!(id.firmware, "1.0");
        assert_eq!(id.attached_as, "sdf");
    }

    #[test]
    fn exact_offsets() {
        let mut blob = vec![0u8; IDENTIFY_LEN];
        blob[4..15].copy_from_slice(b"vol1a2b3c4d");
        blob[15..24].fill(b' ');
        blob[24..27].copy_from_slice(b"QEM");
        blob[3072..3080].copy_from_slice(b"/dev/sdg");
        let id = IdentifyController::parse(&blob).unwrap();
        assert_eq!(id.serial, "vol1a2b3c4d");
        assert_eq!(id.model, "QEM");
        assert_eq!(id.attached_as, "/dev/sdg");
        assert_eq!(id.firmware, "");
    }

    #[test]
    fn rejects_short_and_long_data() {
        assert_eq!(
            IdentifyController::parse(&[0; 4095]),
            Err(ShortIdentify(4095))
        );
        assert_eq!(
            IdentifyController::parse(&[0; 4097]),
            Err(ShortIdentify(4097))
        );
    }

    #[test]
    fn trims_spaces_and_nuls_only_at_the_end() {
        assert_eq!(
            trim_field(b"Amazon Elastic Block Store    \0\0"),
            "Amazon Elastic Block Store"
        );
        assert_eq!(trim_field(b"   "), "");
        assert_eq!(trim_field(b" a b "), " a b");
    }
}
