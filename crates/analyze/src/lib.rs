//! The analyst's side of `capture`: `verify`, `extract` and `info`.
//!
//! They run on any Linux host, need no root, and never modify the evidence
//! they read (inputs are only opened read-only; outputs go to new files,
//! written under a temporary name and renamed when complete).
//!
//! - [`Command`]: the clap subcommands, wired into the `capture` binary;
//!   [`run`] executes one and returns an [`Exit`] code or an [`Error`] whose
//!   [`Error::exit_code`] is documented in [`exit`].
//! - [`input`]: what a path is — a capture directory (`manifest.json` +
//!   `memory.lime.zst`), a seekable zstd image, a plain zstd stream, or a
//!   plain LiME file — told apart by content, not by name.
//! - [`verify`]: recomputes every hash, checks the seek table frame by frame,
//!   the LiME records against the manifest, every listed file; names the
//!   frame and physical address range of any damage.
//! - [`extract`]: LiME (byte-identical to `zstd -d`), padded (sparse,
//!   physical address = file offset) or raw output, of the whole image or of
//!   a physical range, decompressing only the frames needed.
//! - [`info`]: a human or JSON summary, saying whether a Volatility symbol
//!   table can be made.
//! - [`symbols`]: the Volatility 3 symbol table (ISF) of a capture, from
//!   the kernel's own BTF and kallsyms the capture saved.
//! - [`text`]: every line of human output goes through
//!   [`text::printable`]: strings from the evidence cannot drive the
//!   terminal.
//!
//! Facts relied on (see `FACTS.md`): LiME headers are 32 bytes, end
//! inclusive, nothing after the last record (504ensicsLabs/LiME `lime.h`);
//! the seekable format's table is a skippable frame `zstd -d` ignores
//! (facebook/zstd `contrib/seekable_format`).

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;

pub mod anchor;
pub mod error;
pub mod exit;
pub mod extract;
pub mod info;
pub mod input;
pub mod lime_map;
pub mod output;
pub mod range;
pub mod scan;
pub mod sidecar;
pub mod symbols;
pub mod text;
pub mod verify;

pub use error::Error;

/// The outcome of a command that ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything checked out ([`exit::OK`]).
    Ok,
    /// Verification found problems, all reported ([`exit::EVIDENCE_BAD`]).
    EvidenceBad,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => exit::OK,
            Self::EvidenceBad => exit::EVIDENCE_BAD,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        Self::from(e.code())
    }
}

/// The analyst's subcommands of `capture`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Verify a capture: every hash, the seek table frame by frame, the LiME
    /// records against the manifest, every listed file. Also checks a plain
    /// LiME or zstd-compressed LiME file (structure, and a digest if given).
    Verify(VerifyArgs),
    /// Extract the memory image as LiME (identical to `zstd -d`), padded
    /// (physical address = file offset, sparse) or raw, whole or a physical
    /// address range.
    Extract(ExtractArgs),
    /// Summarise a capture (host, kernel, time, source, ranges, sizes, status).
    Info(InfoArgs),
    /// Make a Volatility 3 symbol table (ISF, .json.xz) for a capture from
    /// the kernel's own BTF and kallsyms it saved: Linux plugins then run
    /// with nothing else (no debug package, no dwarf2json).
    Symbols(SymbolsArgs),
}

/// `capture symbols CAPTURE_DIR [-o FILE] [--force] [--kernel-offset HEX]`.
#[derive(Debug, Clone, clap::Args)]
pub struct SymbolsArgs {
    /// A capture directory (or its manifest.json).
    pub path: PathBuf,
    /// Output file, ending in .json.xz (default) or .json. Default: in the
    /// current directory, linux-<release>-<machine>.json.xz.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// The KASLR slide (hex), for a capture without the VMCOREINFO note;
    /// overrides the note.
    #[arg(long, value_name = "HEX", value_parser = parse_hex)]
    pub kernel_offset: Option<u64>,
}

fn parse_hex(s: &str) -> Result<u64, String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s:?}: {e}"))
}

/// `capture verify PATH [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// A capture directory, its manifest.json, a seekable image, or a plain
    /// LiME / zstd-compressed LiME file.
    pub path: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Expected SHA-256 (hex) of the file or of its decompressed LiME stream,
    /// e.g. from a chain-of-custody form; either may match.
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Capture-time SHA-256 of manifest.json (from capture's final line, the
    /// runbook's outputs or the custody record): VERIFIED only if it matches.
    #[arg(long, value_name = "HEX")]
    pub expect_manifest_sha256: Option<String>,
    /// Capture-time SHA-256 of the compressed image file (memory.lime.zst).
    #[arg(long, value_name = "HEX")]
    pub expect_sha256: Option<String>,
    /// Capture-time SHA-256 of the decompressed LiME stream.
    #[arg(long, value_name = "HEX")]
    pub expect_lime_sha256: Option<String>,
    /// A custody record (JSON written by the runbook into the security
    /// account's bucket): its capture digests are expected, as above.
    #[arg(long, value_name = "FILE")]
    pub custody_record: Option<PathBuf>,
    /// The custody record's versions listing (`aws s3api
    /// list-object-versions --bucket B --prefix KEY --output json`, the
    /// command verify prints): the record must be its key's first and only
    /// version, the file that version.
    #[arg(long, value_name = "FILE", requires = "custody_record")]
    pub custody_versions: Option<PathBuf>,
    /// Decompression threads (default: all CPUs).
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
}

/// Output formats of `extract`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The LiME stream: headers keep the address map (Volatility 3 reads it).
    Lime,
    /// The ranges concatenated: addresses are lost.
    Raw,
    /// Physical address = file offset; gaps are holes of a sparse file.
    Padded,
}

impl Format {
    /// Lowercase name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Lime => "lime",
            Self::Raw => "raw",
            Self::Padded => "padded",
        }
    }
}

/// `capture extract IMAGE [-o OUT] [--format lime|raw|padded] [--range START-END] [--force]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExtractArgs {
    /// A seekable image, a capture directory or its manifest.json, or a plain
    /// LiME file.
    pub image: PathBuf,
    /// Output file (`-` for stdout, lime and raw only). Default: in the
    /// current directory, named after the image, format and range.
    #[arg(short = 'o', long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Lime)]
    pub format: Format,
    /// Physical address range START-END, END inclusive (as in iomem and
    /// LiME), hex with 0x or decimal, e.g. 0x100000-0x1fffff.
    #[arg(long, value_name = "START-END", value_parser = range::parse)]
    pub range: Option<range::PhysRange>,
    /// Replace OUT if it exists (never the evidence itself).
    #[arg(long)]
    pub force: bool,
    /// Decompression threads (default: all CPUs).
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
}

/// `capture info PATH [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct InfoArgs {
    /// A capture directory, its manifest.json, a seekable image, or a plain
    /// LiME / zstd-compressed LiME file.
    pub path: PathBuf,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Command {
    /// The subcommand's name (`verify`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Verify(_) => "verify",
            Self::Extract(_) => "extract",
            Self::Info(_) => "info",
            Self::Symbols(_) => "symbols",
        }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            Self::Verify(a) => a.json,
            Self::Info(a) => a.json,
            Self::Extract(_) | Self::Symbols(_) => false,
        }
    }
}

/// The one JSON shape of a failure, the helpers' (`mount-helper`,
/// `unmount-helper`) and `capture`'s alike: `{"ok": false, "command",
/// "exit_code", "error_kind", "error"}`; `error` is the message with its
/// causes, made printable.
pub fn failure_json(command: &str, exit_code: u8, kind: &str, e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    serde_json::json!({
        "ok": false,
        "command": command,
        "exit_code": exit_code,
        "error_kind": kind,
        "error": text::printable(&text),
    })
    .to_string()
}

/// Runs one subcommand, printing to the process's stdout and stderr.
///
/// # Errors
/// An [`Error`] when the command could not run to the end; its
/// [`Error::exit_code`] is the process exit code.
pub fn run(cmd: &Command) -> Result<Exit, Error> {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    run_with(cmd, &mut stdout.lock(), &mut stderr.lock())
}

/// [`run`] with explicit output streams (tests capture them).
///
/// # Errors
/// As [`run`].
pub fn run_with(cmd: &Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<Exit, Error> {
    match cmd {
        Command::Verify(a) => verify::run(a, out, err),
        Command::Extract(a) => extract::run(a, out, err),
        Command::Info(a) => info::run(a, out, err),
        Command::Symbols(a) => symbols::run(a, out, err),
    }
}

/// Threads to use: the flag, else every CPU.
pub(crate) fn threads(flag: Option<NonZeroUsize>) -> usize {
    flag.or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
}

/// Lowercase hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
