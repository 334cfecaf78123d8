//! `capture symbols`: a Volatility 3 symbol table (ISF) for a capture, made
//! from the context the capture saved of the live kernel (`context/btf/`,
//! `context/kallsyms`, `context/version`, `context/vmcoreinfo-kcore`), so
//! Volatility's Linux plugins run with nothing else: no debug package, no
//! dwarf2json. See [`fv_symbols`] for the table and its facts.
//!
//! Every context file used is checked against its SHA-256 in the manifest
//! first, and the banner the table is identified by must occur in the image
//! (read at `linux_banner`'s physical address, else searched for), so the
//! table provably belongs to this capture.
//!
//! The context files are the suspect's: each is opened as `verify` opens
//! what a manifest lists ([`Capture::open_file`]: relative to the capture
//! directory, never through a symlink, never blocking on a FIFO, regular
//! files only) and read only up to a cap for its kind, so neither a
//! `context/kallsyms -> /etc/passwd` link nor a FIFO nor a huge file gets
//! further than a clear error. Everything printed goes through
//! [`printable`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use fv_core::progress::Progress;
use fv_evidence::manifest::{CONTEXT_DIR, Manifest};
use fv_symbols::{Arch, kallsyms, vmcoreinfo};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::{Capture, Input};
use crate::output::{OutFile, identity};
use crate::text::printable;
use crate::{Exit, SymbolsArgs, hex};

mod image;

use image::{add_kallsyms_markers, find_banner, fit_taint_flags};

/// x86_64 link address of `_text` on every distro config checked
/// (`__START_KERNEL_map` + `CONFIG_PHYSICAL_START` 0x1000000): the fallback
/// slide is runtime `_text` minus this, used only without VMCOREINFO.
const X86_64_TEXT_LINK: u64 = 0xffff_ffff_8100_0000;
/// Most bytes of `context/btf/vmlinux` (Debian 12's 6.1 kernel: 4.4 MB).
const BTF_MAX: u64 = 64 << 20;
/// Most bytes of all `context/btf/<module>` files together.
const MODULES_MAX: u64 = 64 << 20;
/// Most bytes of `context/kallsyms` (Debian 12's 6.1 kernel: 4.2 MB).
const KALLSYMS_MAX: u64 = 32 << 20;
/// Most bytes of `context/version` (`/proc/version`, a line).
const VERSION_MAX: u64 = 64 << 10;
/// Most bytes of `context/vmcoreinfo-kcore` (the kernel keeps one page).
const VMCOREINFO_MAX: u64 = 1 << 20;
/// Volatility 3's stock hidden-module carving and the upstream defect that
/// makes it refuse this table (docs/analyst.md, "linux.hidden_modules").
const HIDDEN_MODULES_NOTE: &str = "Volatility's stock hidden-module carving (2.11.0 linux.hidden_modules, 2.28.2 linux.malware.hidden_modules) refuses every table dwarf2json did not make, this one included: its check is inverted twice (volatility3/framework/plugins/linux/malware/hidden_modules.py lines 34-36 in 2.28.2, linux/hidden_modules.py 235-237 in 2.11.0: the validator returns True for the tables it means to refuse, and the plugin raises when verify_table_versions reports no invalid table, which it reports for every table of another producer)";

/// The context a table is made from, checked against the manifest.
#[derive(Debug)]
pub struct Context {
    /// `context/btf/vmlinux`, if listed.
    pub vmlinux: Option<Vec<u8>>,
    /// SHA-256 of `vmlinux` (hex).
    pub vmlinux_sha256: String,
    /// `context/btf/<module>` files.
    pub modules: Vec<(String, Vec<u8>)>,
    /// `context/kallsyms`.
    pub kallsyms: Option<Vec<u8>>,
    /// `context/version`.
    pub version: Option<Vec<u8>>,
    /// `context/vmcoreinfo-kcore`, parsed.
    pub vmcoreinfo: Option<vmcoreinfo::VmcoreInfo>,
}

/// Reads a file the manifest lists, checking its size and SHA-256; at most
/// `max` bytes (a larger one is refused unread).
fn read_listed(c: &Capture, rel: &str, max: u64) -> Result<Option<(Vec<u8>, String)>, Error> {
    let Some(entry) = c.manifest.files.iter().find(|f| f.path == rel) else {
        return Ok(None);
    };
    let path = c.dir.join(rel);
    if entry.size > max {
        return Err(Error::Mismatch {
            path,
            what: format!(
                "the manifest lists {} bytes; no kernel's is larger than {max} bytes, so it is not read",
                entry.size
            ),
        });
    }
    // As verify opens it: a symlink or a FIFO is refused, not followed or
    // waited on.
    let file = c.open_file(rel).map_err(|e| Error::input_fs(&path, e))?;
    let mut data = Vec::new();
    file.take(entry.size + 1)
        .read_to_end(&mut data)
        .map_err(|source| Error::Input {
            path: path.clone(),
            source,
        })?;
    let sha = hex(&Sha256::digest(&data));
    if data.len() as u64 != entry.size || sha != entry.sha256 {
        return Err(Error::Mismatch {
            path,
            what: format!(
                "{} bytes with SHA-256 {sha}, but the manifest lists {} bytes with {} (run `capture verify`)",
                data.len(),
                entry.size,
                entry.sha256
            ),
        });
    }
    Ok(Some((data, sha)))
}

impl Context {
    /// Loads and checks the context files of a capture.
    ///
    /// # Errors
    /// [`Error::Input`] (unreadable), [`Error::InputFs`] (a symlink, FIFO
    /// or other non-regular file), [`Error::Mismatch`] (hash differs, or
    /// larger than any kernel's).
    pub fn load(c: &Capture) -> Result<Self, Error> {
        let btf_prefix = format!("{CONTEXT_DIR}/btf/");
        let (vmlinux, vmlinux_sha256) =
            match read_listed(c, &format!("{btf_prefix}vmlinux"), BTF_MAX)? {
                Some((d, s)) => (Some(d), s),
                None => (None, String::new()),
            };
        let mut names: Vec<String> = c
            .manifest
            .files
            .iter()
            .filter_map(|f| f.path.strip_prefix(&btf_prefix))
            .filter(|n| *n != "vmlinux" && crate::input::is_plain_name(n))
            .map(str::to_owned)
            .collect();
        names.sort();
        let mut modules = Vec::new();
        let mut left = MODULES_MAX;
        for n in names {
            let rel = format!("{btf_prefix}{n}");
            let listed = c.manifest.files.iter().find(|f| f.path == rel);
            if listed.is_some_and(|f| f.size > left) {
                return Err(Error::Mismatch {
                    path: c.dir.join(&rel),
                    what: format!(
                        "with it, the module BTF files come to more than {MODULES_MAX} bytes (no kernel's do), so it is not read"
                    ),
                });
            }
            if let Some((d, _)) = read_listed(c, &rel, left)? {
                left -= d.len() as u64;
                modules.push((n, d));
            }
        }
        let kallsyms =
            read_listed(c, &format!("{CONTEXT_DIR}/kallsyms"), KALLSYMS_MAX)?.map(|(d, _)| d);
        let version =
            read_listed(c, &format!("{CONTEXT_DIR}/version"), VERSION_MAX)?.map(|(d, _)| d);
        let vmcoreinfo = read_listed(
            c,
            &format!("{CONTEXT_DIR}/vmcoreinfo-kcore"),
            VMCOREINFO_MAX,
        )?
        .map(|(d, _)| vmcoreinfo::parse(&d));
        Ok(Self {
            vmlinux,
            vmlinux_sha256,
            modules,
            kallsyms,
            version,
            vmcoreinfo,
        })
    }

    /// Whether a table can be made, and why not: the checks that need no
    /// type conversion (what `capture info` reports).
    pub fn availability(&self, manifest: &Manifest) -> Result<String, String> {
        let arch = arch_of(manifest)?;
        if self.vmlinux.is_none() {
            return Err("no context/btf/vmlinux: the kernel exposes no BTF (before 5.4, or built without CONFIG_DEBUG_INFO_BTF), or the capture predates BTF collection".into());
        }
        let Some(k) = &self.kallsyms else {
            return Err("no context/kallsyms".into());
        };
        if self.version.is_none() {
            return Err("no context/version (the kernel banner)".into());
        }
        let h = kallsyms::health(k);
        if let Some(w) = h.warnings().into_iter().next() {
            return Err(w);
        }
        let slide = match self.vmcoreinfo.as_ref().and_then(|v| v.kernel_offset) {
            Some(ko) => format!("KASLR slide {ko:#x} from VMCOREINFO"),
            None if arch == Arch::X86_64 => {
                "KASLR slide guessed from _text (no VMCOREINFO note)".into()
            }
            None => {
                return Err(
                    "no KERNELOFFSET (context/vmcoreinfo-kcore) and no safe guess on aarch64: give --kernel-offset".into(),
                );
            }
        };
        let arm = if arch == Arch::Aarch64 {
            "; note: upstream Volatility 3 has no Linux arm64 support yet"
        } else if self.vmcoreinfo.as_ref().is_some_and(|v| v.pgtable_l5) {
            "; note: the kernel ran with 5-level page tables, which Volatility 3 (through 2.28) cannot translate"
        } else {
            ""
        };
        Ok(format!(
            "yes (BTF with {} module file(s), {} kallsyms symbols of which {} data, {slide}){arm}",
            self.modules.len(),
            h.symbols,
            h.data
        ))
    }
}

fn arch_of(m: &Manifest) -> Result<Arch, String> {
    match m.host.machine.as_str() {
        "x86_64" => Ok(Arch::X86_64),
        "aarch64" => Ok(Arch::Aarch64),
        other => Err(format!(
            "architecture {other:?}: only x86_64 and aarch64 are supported"
        )),
    }
}

/// Runs `symbols`.
///
/// # Errors
/// [`Error`]: not a capture, context files missing or not matching the
/// manifest, the table cannot be made ([`Error::Symbols`],
/// [`Error::NoSymbols`]), the banner is not in the image, the output
/// cannot be written.
pub fn run(args: &SymbolsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<Exit, Error> {
    let Input::Capture(c) = Input::open(&args.path)? else {
        return Err(Error::Usage(format!(
            "{}: `capture symbols` needs a capture directory (its manifest and context/ files)",
            args.path.display()
        )));
    };
    let output = output_path(args, &c.manifest)?;
    crate::output::not_in_evidence(&output, std::slice::from_ref(&c.dir))?;
    // Steps on stderr: the run takes seconds (BTF, xz) with nothing else shown.
    let mut progress = Progress::on_stderr("capture symbols", false, None);
    progress.stage("reading context/ (the kernel's BTF, kallsyms, banner, VMCOREINFO)");
    let ctx = Context::load(&c)?;
    let why = |reason: String| Error::NoSymbols {
        path: c.dir.clone(),
        reason,
    };
    if args.kernel_offset.is_none() {
        ctx.availability(&c.manifest).map_err(why)?;
    }
    let arch = arch_of(&c.manifest).map_err(why)?;
    let (Some(vmlinux), Some(ks), Some(banner)) = (&ctx.vmlinux, &ctx.kallsyms, &ctx.version)
    else {
        return Err(why(ctx.availability(&c.manifest).err().unwrap_or_default()));
    };
    let (kernel_offset, slide_source) = kernel_offset(args, &ctx, ks, err).map_err(why)?;
    progress.stage("building the table: types from BTF, symbols from kallsyms");
    let (mut isf, report) = fv_symbols::generate_table(&fv_symbols::Inputs {
        vmlinux,
        modules: &ctx.modules,
        kallsyms: ks,
        extra_symbols: ctx
            .vmcoreinfo
            .as_ref()
            .map_or(&[][..], |v| v.symbols.as_slice()),
        banner,
        kernel_offset,
        arch,
        producer_version: fv_core::build::VERSION,
    })
    .map_err(|source| Error::Symbols {
        path: c.dir.clone(),
        source,
    })?;
    let taint_flags = fit_taint_flags(&c, &mut isf, arch, ctx.vmcoreinfo.as_ref(), kernel_offset)?;
    let markers = add_kallsyms_markers(&c, &mut isf, arch, ctx.vmcoreinfo.as_ref(), kernel_offset)?;
    progress.stage("finding the banner in the image");
    let banner_at = find_banner(
        &c,
        arch,
        ctx.vmcoreinfo.as_ref(),
        report.linux_banner_runtime,
        banner,
    )?;
    let (path, size) = write_table(&c, args, &output, &isf, &mut progress)?;
    let text = report_text(&Made {
        c: &c,
        ctx: &ctx,
        report: &report,
        arch,
        path: &path,
        size,
        kernel_offset,
        slide_source,
        banner_at,
        taint_flags,
        markers,
    });
    out.write_all(text.as_bytes()).map_err(Error::Report)?;
    Ok(Exit::Ok)
}

/// The KASLR slide and where it came from: `--kernel-offset`, else
/// VMCOREINFO's `KERNELOFFSET`, else (x86_64, said on `err`) guessed from
/// `_text`. `Err` is the reason no slide can be had.
fn kernel_offset(
    args: &SymbolsArgs,
    ctx: &Context,
    ks: &[u8],
    err: &mut dyn Write,
) -> Result<(u64, &'static str), String> {
    match (
        args.kernel_offset,
        ctx.vmcoreinfo.as_ref().and_then(|v| v.kernel_offset),
    ) {
        (Some(ko), _) => Ok((ko, "--kernel-offset")),
        (None, Some(ko)) => Ok((ko, "VMCOREINFO KERNELOFFSET")),
        (None, None) => {
            let text = kallsyms::parse(ks)
                .symbols
                .iter()
                .find(|s| s.name == "_text")
                .map(|s| s.address)
                .ok_or_else(|| "no _text in context/kallsyms".to_owned())?;
            let _ = writeln!(
                err,
                "capture symbols: warning: no VMCOREINFO note in this capture; KASLR slide guessed as _text - {X86_64_TEXT_LINK:#x} (CONFIG_PHYSICAL_START 0x1000000); give --kernel-offset if that is wrong"
            );
            Ok((text.wrapping_sub(X86_64_TEXT_LINK), "guessed from _text"))
        }
    }
}

/// Writes the table to `output` (xz unless it ends in `.json`), never over
/// the capture's own files; returns the path committed and its size.
fn write_table(
    c: &Capture,
    args: &SymbolsArgs,
    output: &Path,
    isf: &fv_symbols::Table,
    progress: &mut Progress,
) -> Result<(PathBuf, u64), Error> {
    let inputs: Vec<(u64, u64)> = [identity(&c.image_path), identity(&c.manifest_path)]
        .into_iter()
        .flatten()
        .collect();
    let file = OutFile::create(output, args.force, &inputs, std::slice::from_ref(&c.dir))?;
    let compressed = !output.to_string_lossy().ends_with(".json");
    progress.stage(&format!(
        "writing {}{}",
        crate::text::printable(&output.display().to_string()),
        if compressed { " (xz)" } else { "" }
    ));
    let written = if compressed {
        fv_symbols::write_xz(isf, file.file())
    } else {
        fv_symbols::write_json(isf, file.file())
    };
    written.map_err(|e| Error::Output {
        path: output.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let size = file.file().metadata().map(|m| m.len()).unwrap_or(0);
    Ok((file.commit()?, size))
}

/// What a run made, for its report.
struct Made<'a> {
    c: &'a Capture,
    ctx: &'a Context,
    report: &'a fv_symbols::Report,
    arch: Arch,
    path: &'a Path,
    size: u64,
    kernel_offset: u64,
    slide_source: &'static str,
    banner_at: u64,
    taint_flags: Option<u64>,
    markers: Option<String>,
}

/// The report `capture symbols` prints: one `key value` line each.
fn report_text(m: &Made<'_>) -> String {
    let (report, ctx) = (m.report, m.ctx);
    let mut s = String::new();
    // The kernel release, module file names and type names are the
    // suspect's: made printable, as info and verify do (M1, S7).
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<14} {}\n", printable(&v)));
    line(
        "symbols",
        format!(
            "{} ({} bytes): {} structs/unions, {} enums, {} base types, {} symbols",
            m.path.display(),
            m.size,
            report.user_types,
            report.enums,
            report.base_types,
            report.symbols
        ),
    );
    line(
        "kernel",
        format!(
            "{} ({}), KASLR slide {:#x} ({}); symbols at link-time addresses",
            m.c.manifest.host.kernel_release,
            m.c.manifest.host.machine,
            m.kernel_offset,
            m.slide_source
        ),
    );
    line(
        "banner",
        format!("found in the image at physical {:#x}", m.banner_at),
    );
    line(
        "btf",
        format!(
            "vmlinux {} + {} module(s){}",
            &ctx.vmlinux_sha256[..ctx.vmlinux_sha256.len().min(16)],
            ctx.modules.len() - report.modules_skipped.len(),
            if report.type_collisions > 0 {
                format!(", {} same-named types (first kept)", report.type_collisions)
            } else {
                String::new()
            }
        ),
    );
    for (m, e) in &report.modules_skipped {
        line("module skipped", format!("{m}: {e}"));
    }
    let typed: Vec<String> = report
        .typed
        .iter()
        .map(|(n, t)| format!("{n} ({t})"))
        .collect();
    line("typed", typed.join(", "));
    for (n, why) in &report.untyped {
        line("untyped", format!("{n}: {why}"));
    }
    if let Some(n) = m.taint_flags {
        line("taint_flags", format!("{n} entries read from the image"));
    }
    if !report.extra_symbols.is_empty() {
        line(
            "from vmcoreinfo",
            format!(
                "{} (not in kallsyms: the kallsyms tables)",
                report.extra_symbols.join(", ")
            ),
        );
    }
    if let Some(k) = &m.markers {
        line("kallsyms_markers", k.clone());
    }
    if report.percpu_typed > 0 {
        line(
            "per-cpu typed",
            format!("{} (from BTF)", report.percpu_typed),
        );
    }
    let dir = m
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    for note in notes(m.arch, ctx, dir) {
        line("note", note);
    }
    line(
        "next",
        format!(
            "capture extract {} -o memory.lime && vol -s {} -f memory.lime linux.pslist",
            m.c.dir.display(),
            dir.display()
        ),
    );
    s
}

/// The report's notes: what stock Volatility cannot do with this table,
/// and what to run instead. `dir` is the table's directory (`vol -s`).
fn notes(arch: Arch, ctx: &Context, dir: &Path) -> Vec<String> {
    let mut n = Vec::new();
    if ctx.vmcoreinfo.as_ref().is_some_and(|v| v.pgtable_l5) {
        n.push("the kernel ran with 5-level page tables (LA57): Volatility 3 through 2.28 translates only 4 levels".into());
    }
    if arch == Arch::X86_64 {
        n.push(format!(
            "{HIDDEN_MODULES_NOTE}: run `vol -p <volume>/volatility -s {} -f memory.lime fv.hidden_modules`, the same carving with the check put right",
            dir.display()
        ));
    }
    if arch == Arch::Aarch64 {
        n.push("upstream Volatility 3 has no Linux arm64 support yet (draft PR #1088); the table is for forks that do".into());
    }
    n
}

/// `-o`, or `linux-<release>-<arch>.json.xz` in the current directory.
fn output_path(args: &SymbolsArgs, m: &Manifest) -> Result<PathBuf, Error> {
    if let Some(o) = &args.output {
        let s = o.to_string_lossy();
        if !(s.ends_with(".json.xz") || s.ends_with(".json")) {
            return Err(Error::Usage(format!(
                "{}: the output must end in .json.xz or .json (the names Volatility 3 loads)",
                o.display()
            )));
        }
        return Ok(o.clone());
    }
    let release: String = m
        .host
        .kernel_release
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(PathBuf::from(format!(
        "linux-{release}-{}.json.xz",
        m.host.machine
    )))
}
