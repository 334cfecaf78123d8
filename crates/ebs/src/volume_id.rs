//! EBS volume IDs and requested device names, validated before anything
//! touches a device.

use std::fmt;

/// A well-formed EBS volume ID: `vol-` and 17 (current) or 8 (legacy)
/// lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumeId(String);

/// Why a volume ID or device name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Not `vol-` followed by 17 or 8 lowercase hex digits.
    #[error(
        "malformed volume ID {0:?}: expected \"vol-\" and 17 (or legacy 8) lowercase hex digits, e.g. vol-0123456789abcdef0"
    )]
    VolumeId(String),
    /// Not `sdX`, `xvdX` (optionally with `/dev/`).
    #[error(
        "malformed requested device {0:?}: expected a name like sdf, /dev/sdf or xvdf (letters a-z, one or two)"
    )]
    DeviceName(String),
}

impl VolumeId {
    /// Parses `vol-…`.
    ///
    /// # Errors
    /// [`InputError::VolumeId`] for anything else (upper case, wrong length,
    /// missing dash, whitespace).
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let hex = text
            .strip_prefix("vol-")
            .ok_or_else(|| InputError::VolumeId(text.to_string()))?;
        let digits_ok = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !digits_ok || !(hex.len() == 17 || hex.len() == 8) {
            return Err(InputError::VolumeId(text.to_string()));
        }
        Ok(Self(text.to_string()))
    }

    /// Recovers a volume ID from an EBS NVMe serial (`vol0123…`, trimmed).
    pub fn from_serial(serial: &str) -> Option<Self> {
        let hex = serial.trim_end_matches([' ', '\0']).strip_prefix("vol")?;
        Self::parse(&format!("vol-{hex}")).ok()
    }

    /// The NVMe serial EBS reports for this volume: the ID without the dash.
    pub fn serial(&self) -> String {
        self.0.replacen('-', "", 1)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device name a volume was attached as (`/dev/sdf`), reduced to its
/// letters (`f`) plus the name as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedDevice {
    given: String,
    letters: String,
}

impl RequestedDevice {
    /// Parses `sdf`, `/dev/sdf`, `xvdf`, `/dev/xvdf` (one or two letters).
    ///
    /// # Errors
    /// [`InputError::DeviceName`].
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let bare = text.strip_prefix("/dev/").unwrap_or(text);
        let letters = bare
            .strip_prefix("xvd")
            .or_else(|| bare.strip_prefix("sd"))
            .ok_or_else(|| InputError::DeviceName(text.to_string()))?;
        if letters.is_empty()
            || letters.len() > 2
            || !letters.bytes().all(|b| b.is_ascii_lowercase())
        {
            return Err(InputError::DeviceName(text.to_string()));
        }
        Ok(Self {
            given: text.to_string(),
            letters: letters.to_string(),
        })
    }

    /// The letters after `sd`/`xvd`.
    pub fn letters(&self) -> &str {
        &self.letters
    }

    /// The name as the responder gave it.
    pub fn given(&self) -> &str {
        &self.given
    }

    /// Whether `name` (from the NVMe vendor data: `sdf` or `/dev/sdf`,
    /// sometimes `xvdf`) names the same attachment point.
    pub fn matches(&self, name: &str) -> bool {
        Self::parse(name.trim_end_matches([' ', '\0']))
            .is_ok_and(|other| other.letters == self.letters)
    }

    /// Block device names a Xen guest may show for this attachment, in order
    /// of likelihood: `xvdX`, `sdX`, and `xvd(X+4)` (old kernels shift
    /// single letters by four: `sda` -> `xvde`).
    pub fn xen_candidates(&self) -> Vec<String> {
        let mut names = vec![
            format!("xvd{}", self.letters),
            format!("sd{}", self.letters),
        ];
        if let [letter] = self.letters.as_bytes() {
            if let Some(shifted) = letter.checked_add(4).filter(|l| *l <= b'z') {
                names.push(format!("xvd{}", char::from(shifted)));
            }
        }
        names
    }
}

impl fmt::Display for RequestedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids() {
        let id = VolumeId::parse("vol-0123456789abcdef0").unwrap();
        assert_eq!(id.serial(), "vol0123456789abcdef0");
        assert_eq!(id.serial().len(), 20);
        let legacy = VolumeId::parse("vol-1a2b3c4d").unwrap();
        assert_eq!(legacy.serial(), "vol1a2b3c4d");
        for bad in [
            "",
            "vol-",
            "vol0123456789abcdef0",
            "vol-0123456789ABCDEF0",
            "vol-0123456789abcdef",
            "vol-0123456789abcdef01",
            "vol-1a2b3c4",
            "vol-1a2b3c4g",
            " vol-1a2b3c4d",
            "vol-1a2b3c4d\n",
            "vol-1a2b3c4d;reboot",
            "snap-0123456789abcdef0",
        ] {
            assert_eq!(
                VolumeId::parse(bad),
                Err(InputError::VolumeId(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serials_map_back_to_ids() {
        assert_eq!(
            VolumeId::from_serial("vol0123456789abcdef0")
                .unwrap()
                .as_str(),
            "vol-0123456789abcdef0"
        );
        assert_eq!(
            VolumeId::from_serial("vol1a2b3c4d         ")
                .unwrap()
                .as_str(),
            "vol-1a2b3c4d"
        );
        assert!(VolumeId::from_serial("AWS1234567890").is_none());
    }

    #[test]
    fn requested_devices() {
        let dev = RequestedDevice::parse("/dev/sdf").unwrap();
        assert_eq!(dev.letters(), "f");
        assert!(dev.matches("sdf"));
        assert!(dev.matches("/dev/sdf"));
        assert!(dev.matches("xvdf"));
        assert!(dev.matches("sdf                             "));
        assert!(!dev.matches("sdg"));
        assert!(!dev.matches(""));
        assert_eq!(dev.xen_candidates(), ["xvdf", "sdf", "xvdj"]);
        assert_eq!(
            RequestedDevice::parse("xvdz").unwrap().xen_candidates(),
            ["xvdz", "sdz"]
        );
        assert_eq!(
            RequestedDevice::parse("sdba").unwrap().xen_candidates(),
            ["xvdba", "sdba"]
        );
        for bad in [
            "",
            "sd",
            "/dev/",
            "nvme1n1",
            "sdF",
            "sdf1",
            "sdabc",
            "../sdf",
            "/dev/sdf ",
        ] {
            assert!(RequestedDevice::parse(bad).is_err(), "{bad:?}");
        }
    }
}
