//! `--source` values.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A memory source as named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// kcore, then crash, then mem.
    Auto,
    /// `/proc/kcore`.
    Kcore,
    /// `/dev/crash`.
    Crash,
    /// `/dev/mem`.
    Mem,
    /// A LiME file or FIFO.
    LimeFile(PathBuf),
    /// A LiME stream on stdin.
    LimeStdin,
    /// A LiME module listening in TCP mode.
    LimeTcp {
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// Load this `lime.ko` (`None`: the volume's `modules/<uname -r>/lime.ko`).
    LimeModule(Option<PathBuf>),
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Kcore => f.write_str("kcore"),
            Self::Crash => f.write_str("crash"),
            Self::Mem => f.write_str("mem"),
            Self::LimeFile(p) => write!(f, "lime:{}", p.display()),
            Self::LimeStdin => f.write_str("lime:-"),
            Self::LimeTcp { host, port } => write!(f, "lime-tcp:{host}:{port}"),
            Self::LimeModule(Some(p)) => write!(f, "lime-module:{}", p.display()),
            Self::LimeModule(None) => f.write_str("lime-module:auto"),
        }
    }
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => Self::Auto,
            "kcore" => Self::Kcore,
            "crash" => Self::Crash,
            "mem" => Self::Mem,
            "lime:-" => Self::LimeStdin,
            "lime-module:auto" => Self::LimeModule(None),
            _ => {
                if let Some(p) = s.strip_prefix("lime:") {
                    if p.is_empty() {
                        return Err("lime: needs a path (or - for stdin)".into());
                    }
                    Self::LimeFile(PathBuf::from(p))
                } else if let Some(hp) = s.strip_prefix("lime-tcp:") {
                    let (host, port) = hp
                        .rsplit_once(':')
                        .ok_or("lime-tcp: needs ADDR:PORT, e.g. lime-tcp:127.0.0.1:4444")?;
                    let port: u16 = port
                        .parse()
                        .map_err(|_| format!("lime-tcp: port {port:?} is not a number 1-65535"))?;
                    if port == 0 || host.is_empty() {
                        return Err("lime-tcp: needs a host and a port 1-65535".into());
                    }
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    // Numeric loopback only: a name is resolved through the
                    // suspect's /etc/hosts, and LiME listens on loopback.
                    match host.parse::<std::net::IpAddr>() {
                        Ok(ip) if ip.is_loopback() => {}
                        _ => {
                            return Err(format!(
                                "lime-tcp: {host:?} is not a numeric loopback address; use 127.0.0.1 or ::1 (a name would be resolved through the suspect's /etc/hosts)"
                            ));
                        }
                    }
                    Self::LimeTcp {
                        host: host.to_string(),
                        port,
                    }
                } else if let Some(p) = s.strip_prefix("lime-module:") {
                    if p.is_empty() {
                        return Err("lime-module: needs the path of lime.ko (or auto)".into());
                    }
                    Self::LimeModule(Some(PathBuf::from(p)))
                } else {
                    return Err(format!(
                        "unknown source {s:?}: use auto, kcore, crash, mem, lime:PATH, lime:-, lime-tcp:ADDR:PORT (numeric loopback) or lime-module:PATH"
                    ));
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review S10: every Source value the SSM documents allow is
    /// one capture takes, as capture.sh passes it (`lime-module` becomes
    /// `lime-module:<volume>/modules/<release>/lime.ko`), so no run gets as
    /// far as a created, attached and mounted volume to be refused by
    /// capture's own parser. The documents must give a closed list
    /// (`allowedValues`) for this to be checked exhaustively;
    /// deploy/tools/check_scripts.py checks capture.sh takes exactly that
    /// list. None is lime-tcp (S1).
    #[test]
    fn every_source_the_documents_allow_is_one_capture_takes() {
        let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/documents");
        let mut lists = Vec::new();
        for name in ["Forensics-CaptureMemory", "Forensics-CaptureInstanceMemory"] {
            let text = std::fs::read_to_string(format!("{docs}/{name}.json")).unwrap();
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            let spec = &doc["parameters"]["Source"];
            assert!(
                spec.get("allowedPattern").is_none(),
                "{name}.Source has an allowedPattern: list its values (allowedValues) so they can be compared with capture's"
            );
            let values: Vec<String> = spec["allowedValues"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}.Source has no allowedValues"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            for v in &values {
                let passed = if v == "lime-module" {
                    "lime-module:/run/forensics-volume/vol-0123456789abcdef0/modules/6.1.0-18-amd64/lime.ko".to_string()
                } else {
                    v.clone()
                };
                let parsed = passed.parse::<SourceSpec>();
                assert!(
                    parsed.is_ok(),
                    "{name}.Source allows {v:?}, capture refuses {passed:?}: {parsed:?}"
                );
                assert!(
                    !matches!(parsed, Ok(SourceSpec::LimeTcp { .. })),
                    "{name}.Source offers LiME over TCP ({v:?}): any local user can feed or take the dump (S1)"
                );
            }
            lists.push(values);
        }
        assert_eq!(
            lists[0], lists[1],
            "the two documents allow different sources"
        );
    }

    #[test]
    fn parses_every_form() {
        assert_eq!("auto".parse(), Ok(SourceSpec::Auto));
        assert_eq!("lime:-".parse(), Ok(SourceSpec::LimeStdin));
        assert_eq!(
            "lime:/x/y.lime".parse(),
            Ok(SourceSpec::LimeFile("/x/y.lime".into()))
        );
        assert_eq!(
            "lime-tcp:127.0.0.1:4444".parse(),
            Ok(SourceSpec::LimeTcp {
                host: "127.0.0.1".into(),
                port: 4444
            })
        );
        assert_eq!(
            "lime-tcp:[::1]:4444".parse(),
            Ok(SourceSpec::LimeTcp {
                host: "::1".into(),
                port: 4444
            })
        );
        assert_eq!("lime-module:auto".parse(), Ok(SourceSpec::LimeModule(None)));
        assert!("lime-tcp:host".parse::<SourceSpec>().is_err());
        assert!("lime-tcp:host:0".parse::<SourceSpec>().is_err());
        assert!("lime-tcp:localhost:4444".parse::<SourceSpec>().is_err());
        assert!("lime-tcp:192.0.2.1:4444".parse::<SourceSpec>().is_err());
        assert!("disk".parse::<SourceSpec>().is_err());
        assert!("lime:".parse::<SourceSpec>().is_err());
        for s in [
            "auto",
            "kcore",
            "lime:-",
            "lime-tcp:127.0.0.1:1",
            "lime-module:/m/lime.ko",
        ] {
            assert_eq!(s.parse::<SourceSpec>().unwrap().to_string(), s);
        }
    }
}
