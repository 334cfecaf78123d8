//! The capture manifest: what was captured, from where, by which build, with
//! which result, and the hashes that prove it. `capture` writes it last and
//! atomically as `manifest.json`; `capture verify`/`info` read it.
//!
//! The schema is versioned ([`SCHEMA`], [`SCHEMA_VERSION`]) and documented in
//! `docs/manifest.md`. Readers refuse a manifest whose `schema` is not ours or
//! whose `schema_version` is newer than they know; adding an optional field
//! does not bump the version, changing or removing one does.
//!
//! Conventions: physical addresses and sizes are JSON integers (u64, exact in
//! serde_json; every real physical address is below 2^53 so `jq` reads them
//! exactly too); ends are INCLUSIVE, as in `/proc/iomem` and LiME headers;
//! times are UTC RFC 3339 with a `Z` suffix; digests are lowercase hex SHA-256.

use serde::{Deserialize, Serialize};

/// The `schema` value of every capture manifest.
pub const SCHEMA: &str = "forensics-volume/capture-manifest";
/// The current schema version.
pub const SCHEMA_VERSION: u32 = 1;
/// File name of the manifest in a capture directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the compressed LiME image in a capture directory.
pub const IMAGE_FILE: &str = "memory.lime.zst";
/// File name of the `sha256sum -c` sidecar of the image.
pub const IMAGE_SHA256_FILE: &str = "memory.lime.zst.sha256";
/// Folder (inside the capture directory) holding the kernel context files.
pub const CONTEXT_DIR: &str = "context";

/// Why a manifest cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or JSON of another shape.
    #[error("manifest is not valid JSON of the capture-manifest schema: {0}")]
    Json(#[from] serde_json::Error),
    /// The `schema` field names another document type.
    #[error("manifest schema is {found:?}, expected {SCHEMA:?}")]
    WrongSchema {
        /// The schema found.
        found: String,
    },
    /// A newer schema version than this build understands.
    #[error(
        "manifest schema version {found} is newer than this build understands ({SCHEMA_VERSION}); use a newer capture"
    )]
    NewerVersion {
        /// The version found.
        found: u32,
    },
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: u32,
    /// The build that produced the capture.
    pub tool: Tool,
    /// `argv` as given (lossy UTF-8 per argument).
    pub command_line: Vec<String>,
    /// The captured machine.
    pub host: Host,
    /// Case bookkeeping given on the command line.
    pub case: Case,
    /// The memory source used and why the others were not.
    pub source: Source,
    /// Physical ranges in the LiME stream, in stream order (ascending).
    pub ranges: Vec<Range>,
    /// Spans that could not be read: written as zeros in the stream.
    pub unreadable: Vec<Span>,
    /// Spans the run did not reach (partial captures only): written as zeros
    /// in the stream so it stays a complete, valid LiME stream.
    pub not_captured: Vec<Span>,
    /// RAM the run did not reach and wrote no record for (partial captures
    /// only): a stop completes the current record with zeros and leaves the
    /// later ones out, so it costs one record of zero-fill whatever the RAM
    /// size. Records carry their addresses, so the stream is valid LiME
    /// without them. Absent in older manifests (they zero-filled instead).
    #[serde(default)]
    pub omitted: Vec<Span>,
    /// Set (partial captures only) when what the source still held is not
    /// known, so `omitted` may be incomplete: a LiME stream from another host
    /// that stopped early, or a LiME file that no longer parses. Says why.
    #[serde(default)]
    pub remainder_unknown: Option<String>,
    /// The image file, its hashes and compression.
    pub image: Image,
    /// Start, end and rate.
    pub timing: Timing,
    /// Peak resident memory of the capture process, in bytes (`VmHWM`).
    pub peak_rss_bytes: Option<u64>,
    /// `complete` or `partial`.
    pub status: Status,
    /// Why the capture is partial (absent when complete).
    pub partial_reason: Option<PartialReason>,
    /// Every file written in the capture directory except the manifest itself.
    pub files: Vec<FileEntry>,
    /// Things the examiner should know that did not stop the capture
    /// (context file unreadable, IMDS did not answer, ...).
    pub warnings: Vec<String>,
}

/// The running build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Toolkit name (`forensics-volume`).
    pub name: String,
    /// Toolkit version.
    pub version: String,
    /// Git commit of the build (`unknown` outside `build.sh`).
    pub git_commit: String,
    /// Path of the running binary (`/proc/self/exe`).
    pub binary_path: String,
    /// SHA-256 of the running binary, read through `/proc/self/exe`.
    pub binary_sha256: Option<String>,
}

/// Host identity: the machine whose memory this is. For a LiME dump from
/// another host ([`Host::foreign`] set) nothing of the host that packaged it
/// is recorded here: the strings are `unknown`, the rest null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Set when the memory is not the capturing host's (a LiME file, or a
    /// stream with `--foreign-lime`): says so and why. Every other field is
    /// then `unknown` or null, never the packaging host's. Absent in
    /// manifests of older builds (which recorded the packaging host's
    /// identity for such dumps too) and for memory of the capturing host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign: Option<String>,
    /// `uname` nodename.
    pub hostname: String,
    /// `uname -r`.
    pub kernel_release: String,
    /// `uname -v`.
    pub kernel_version: String,
    /// `uname -m`.
    pub machine: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: Option<String>,
    /// Instance identity from IMDSv2, when asked and it answered.
    pub imds: Option<Imds>,
    /// `answered`, `skipped (--no-imds)`, or why it did not answer.
    pub imds_status: String,
}

/// Instance identity from IMDSv2 (`/latest/dynamic/instance-identity/document`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imds {
    /// `i-...`.
    pub instance_id: Option<String>,
    /// Account ID.
    pub account_id: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// Instance type.
    pub instance_type: Option<String>,
    /// AMI ID.
    pub image_id: Option<String>,
    /// Architecture as IMDS reports it.
    pub architecture: Option<String>,
    /// Private IP as IMDS reports it.
    pub private_ip: Option<String>,
}

/// Case bookkeeping (`--case-id`, `--examiner`, `--note`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// `--case-id`.
    pub case_id: Option<String>,
    /// `--examiner`.
    pub examiner: Option<String>,
    /// `--note`.
    pub note: Option<String>,
}

/// The source used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `kcore`, `crash`, `mem`, `lime-file`, `lime-stdin`, `lime-tcp`,
    /// `lime-module`.
    pub kind: String,
    /// What was read: a path, `HOST:PORT`, or `-`.
    pub location: String,
    /// The `--source` value as given (`auto`, `kcore`, `lime:PATH`, ...).
    pub requested: String,
    /// How addresses were mapped, when it matters (kcore: `p_paddr` or the
    /// pre-4.11 `p_vaddr - PAGE_OFFSET` fallback with the value used).
    pub detail: Option<String>,
    /// Every source tried, in order, with what happened.
    pub attempts: Vec<Attempt>,
}

/// One source tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Source kind.
    pub kind: String,
    /// `used` or `failed`.
    pub outcome: String,
    /// Why it failed (absent when used).
    pub reason: Option<String>,
}

/// One physical range: one LiME record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// First physical address.
    pub start: u64,
    /// Last physical address (inclusive).
    pub end: u64,
    /// `end - start + 1`.
    pub length: u64,
    /// Offset of the record's 32-byte LiME header in the LiME stream; the
    /// payload starts 32 bytes later.
    pub lime_offset: u64,
}

/// A span of physical memory with why it is zeros in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First physical address.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// The error or reason (e.g. `EIO`, `interrupted by SIGTERM`).
    pub error: String,
}

/// The image and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// File name in the capture directory ([`IMAGE_FILE`]).
    pub file: String,
    /// Always `lime`.
    pub format: String,
    /// Length of the uncompressed LiME stream.
    pub lime_length: u64,
    /// SHA-256 of the uncompressed LiME stream.
    pub lime_sha256: String,
    /// Length of the compressed file.
    pub compressed_length: u64,
    /// SHA-256 of the compressed file (as in the `.sha256` sidecar).
    pub compressed_sha256: String,
    /// How it was compressed.
    pub compression: Compression,
}

/// Compression settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    /// Always `zstd-seekable`.
    pub format: String,
    /// zstd level asked for (0: the adaptive level).
    pub level: i32,
    /// Lowest and highest zstd level of the frames compressed (all-zero
    /// frames are written precompressed and do not count); they differ
    /// only with the adaptive level. Absent in manifests that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub levels_used: Option<[i32; 2]>,
    /// Compression threads.
    pub threads: u32,
    /// Uncompressed bytes per frame (the last frame may be shorter).
    pub frame_size: u64,
    /// Number of zstd data frames.
    pub frames: u64,
    /// Whether the seek table carries per-frame checksums.
    pub checksums: bool,
}

/// When and how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// UTC start, RFC 3339.
    pub start_utc: String,
    /// UTC end, RFC 3339.
    pub end_utc: String,
    /// Wall-clock duration in seconds.
    pub duration_seconds: f64,
    /// Uncompressed LiME bytes per second.
    pub throughput_bytes_per_second: f64,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every range was read (unreadable pages aside, which are listed).
    Complete,
    /// The run stopped early; `not_captured` lists what is missing.
    Partial,
}

/// Why a capture is partial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialReason {
    /// Machine-readable cause.
    pub cause: PartialCause,
    /// Human detail (signal name, error text).
    pub detail: String,
}

/// Machine-readable cause of a partial capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartialCause {
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// The output filesystem filled up.
    NoSpace,
    /// Writing the output failed otherwise.
    WriteError,
    /// The source ended before the announced data (LiME truncated, peer
    /// closed early).
    SourceTruncated,
    /// The source stopped sending within the timeout.
    SourceStalled,
    /// The source failed otherwise after data had been captured.
    SourceError,
}

impl PartialCause {
    /// The name the manifest uses (`source_truncated`), for messages: what
    /// the analyst reads is what `partial_reason.cause` says.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interrupted => "interrupted",
            Self::NoSpace => "no_space",
            Self::WriteError => "write_error",
            Self::SourceTruncated => "source_truncated",
            Self::SourceStalled => "source_stalled",
            Self::SourceError => "source_error",
        }
    }
}

impl std::fmt::Display for PartialCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file written in the capture directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the capture directory (`/`-separated).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: String,
}

impl Manifest {
    /// Parses and checks the schema name and version.
    ///
    /// # Errors
    /// [`ManifestError::Json`], [`ManifestError::WrongSchema`],
    /// [`ManifestError::NewerVersion`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        // Look at the schema before the full shape so a future version gets
        // the clear "newer" message rather than a missing-field error.
        #[derive(Deserialize)]
        struct Head {
            schema: String,
            schema_version: u32,
        }
        let head: Head = serde_json::from_slice(bytes)?;
        if head.schema != SCHEMA {
            return Err(ManifestError::WrongSchema { found: head.schema });
        }
        if head.schema_version > SCHEMA_VERSION {
            return Err(ManifestError::NewerVersion {
                found: head.schema_version,
            });
        }
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Pretty JSON with a final newline.
    ///
    /// # Errors
    /// [`ManifestError::Json`] (only if a float is not finite).
    pub fn to_json(&self) -> Result<Vec<u8>, ManifestError> {
        let mut out = serde_json::to_vec_pretty(self)?;
        out.push(b'\n');
        Ok(out)
    }

    /// Total bytes of physical memory the ranges cover.
    pub fn total_range_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.length).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: messages name a partial capture's cause as the manifest
    /// does (`source_truncated`), never by the Rust variant (`SourceTruncated`).
    #[test]
    fn partial_cause_is_named_as_in_the_manifest() {
        use PartialCause::*;
        for c in [
            Interrupted,
            NoSpace,
            WriteError,
            SourceTruncated,
            SourceStalled,
            SourceError,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
            assert_eq!(c.to_string(), c.as_str());
            assert!(!c.to_string().chars().any(|ch| ch.is_ascii_uppercase()));
        }
    }

    pub(crate) fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA.into(),
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "forensics-volume".into(),
                version: "0.1.0".into(),
                git_commit: "unknown".into(),
                binary_path: "/mnt/fv/bin/x86_64/capture".into(),
                binary_sha256: Some("00".repeat(32)),
            },
            command_line: vec!["capture".into(), "--source".into(), "kcore".into()],
            host: Host {
                foreign: None,
                hostname: "ip-10-0-0-1".into(),
                kernel_release: "6.1.0-18-amd64".into(),
                kernel_version: "#1 SMP".into(),
                machine: "x86_64".into(),
                boot_id: Some("0d0e0f".into()),
                imds: Some(Imds {
                    instance_id: Some("i-0123456789abcdef0".into()),
                    account_id: Some("123456789012".into()),
                    region: Some("eu-west-1".into()),
                    availability_zone: Some("eu-west-1a".into()),
                    instance_type: Some("m5.large".into()),
                    image_id: Some("ami-0123".into()),
                    architecture: Some("x86_64".into()),
                    private_ip: None,
                }),
                imds_status: "answered".into(),
            },
            case: Case {
                case_id: Some("IR-1".into()),
                examiner: None,
                note: None,
            },
            source: Source {
                kind: "kcore".into(),
                location: "/proc/kcore".into(),
                requested: "auto".into(),
                detail: Some("p_paddr".into()),
                attempts: vec![Attempt {
                    kind: "kcore".into(),
                    outcome: "used".into(),
                    reason: None,
                }],
            },
            ranges: vec![Range {
                start: 0x1000,
                end: 0x9fbff,
                length: 0x9ec00,
                lime_offset: 0,
            }],
            unreadable: vec![],
            not_captured: vec![],
            omitted: vec![],
            remainder_unknown: None,
            image: Image {
                file: IMAGE_FILE.into(),
                format: "lime".into(),
                lime_length: 0x9ec20,
                lime_sha256: "11".repeat(32),
                compressed_length: 1234,
                compressed_sha256: "22".repeat(32),
                compression: Compression {
                    format: "zstd-seekable".into(),
                    level: 3,
                    levels_used: Some([3, 3]),
                    threads: 2,
                    frame_size: 1 << 20,
                    frames: 1,
                    checksums: true,
                },
            },
            timing: Timing {
                start_utc: "2026-01-01T00:00:00Z".into(),
                end_utc: "2026-01-01T00:00:01Z".into(),
                duration_seconds: 1.0,
                throughput_bytes_per_second: 650_272.0,
            },
            peak_rss_bytes: Some(20 << 20),
            status: Status::Partial,
            partial_reason: Some(PartialReason {
                cause: PartialCause::NoSpace,
                detail: "ENOSPC".into(),
            }),
            files: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn round_trips_and_uses_documented_spellings() {
        let m = sample();
        let json = m.to_json().unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"status\": \"partial\""), "{text}");
        assert!(text.contains("\"cause\": \"no_space\""), "{text}");
        assert!(text.contains("\"schema\": \"forensics-volume/capture-manifest\""));
        assert_eq!(Manifest::from_json(&json).unwrap(), m);
        assert_eq!(m.total_range_bytes(), 0x9ec00);
    }

    #[test]
    fn refuses_other_schemas_and_newer_versions() {
        let mut v: serde_json::Value = serde_json::to_value(sample()).unwrap();
        v["schema_version"] = (SCHEMA_VERSION + 1).into();
        let err = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, ManifestError::NewerVersion { .. }), "{err}");
        v["schema"] = "something-else".into();
        let err = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, ManifestError::WrongSchema { .. }), "{err}");
        let err = Manifest::from_json(b"{").unwrap_err();
        assert!(matches!(err, ManifestError::Json(_)), "{err}");
    }
}
