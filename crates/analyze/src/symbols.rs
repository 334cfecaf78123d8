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
use fv_evidence::reader::SeekableReader;
use fv_symbols::{Arch, kallsyms, vmcoreinfo};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::input::{Capture, Input};
use crate::output::{OutFile, identity};
use crate::text::printable;
use crate::{Exit, SymbolsArgs, hex};

/// x86_64 `__START_KERNEL_map`: kernel-image VA − this + `phys_base` = physical.
const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
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
/// Most bytes of `taint_flags` read to fit its count (20 entries of 3
/// bytes in every kernel).
const TAINT_FLAGS_MAX: u64 = 64 << 10;

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
    let (kernel_offset, slide_source) = match (
        args.kernel_offset,
        ctx.vmcoreinfo.as_ref().and_then(|v| v.kernel_offset),
    ) {
        (Some(ko), _) => (ko, "--kernel-offset"),
        (None, Some(ko)) => (ko, "VMCOREINFO KERNELOFFSET"),
        (None, None) => {
            let text = kallsyms::parse(ks)
                .symbols
                .iter()
                .find(|s| s.name == "_text")
                .map(|s| s.address)
                .ok_or_else(|| why("no _text in context/kallsyms".into()))?;
            let _ = writeln!(
                err,
                "capture symbols: warning: no VMCOREINFO note in this capture; KASLR slide guessed as _text - {X86_64_TEXT_LINK:#x} (CONFIG_PHYSICAL_START 0x1000000); give --kernel-offset if that is wrong"
            );
            (text.wrapping_sub(X86_64_TEXT_LINK), "guessed from _text")
        }
    };
    let version = fv_core::build::VERSION;
    progress.stage("building the table: types from BTF, symbols from kallsyms");
    let (isf, report) = fv_symbols::generate_table(&fv_symbols::Inputs {
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
        producer_version: version,
    })
    .map_err(|source| Error::Symbols {
        path: c.dir.clone(),
        source,
    })?;
    let mut isf = isf;
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

    let inputs: Vec<(u64, u64)> = [identity(&c.image_path), identity(&c.manifest_path)]
        .into_iter()
        .flatten()
        .collect();
    let file = OutFile::create(&output, args.force, &inputs, std::slice::from_ref(&c.dir))?;
    let compressed = !output.to_string_lossy().ends_with(".json");
    progress.stage(&format!(
        "writing {}{}",
        crate::text::printable(&output.display().to_string()),
        if compressed { " (xz)" } else { "" }
    ));
    let written = if compressed {
        fv_symbols::write_xz(&isf, file.file())
    } else {
        fv_symbols::write_json(&isf, file.file())
    };
    written.map_err(|e| Error::Output {
        path: output.clone(),
        source: std::io::Error::other(e),
    })?;
    let size = file.file().metadata().map(|m| m.len()).unwrap_or(0);
    let path = file.commit()?;

    let mut s = String::new();
    // The kernel release, module file names and type names are the
    // suspect's: made printable, as info and verify do (M1, S7).
    let mut line = |k: &str, v: String| s.push_str(&format!("{k:<14} {}\n", printable(&v)));
    line(
        "symbols",
        format!(
            "{} ({size} bytes): {} structs/unions, {} enums, {} base types, {} symbols",
            path.display(),
            report.user_types,
            report.enums,
            report.base_types,
            report.symbols
        ),
    );
    line(
        "kernel",
        format!(
            "{} ({}), KASLR slide {kernel_offset:#x} ({slide_source}); symbols at link-time addresses",
            c.manifest.host.kernel_release, c.manifest.host.machine
        ),
    );
    line(
        "banner",
        format!("found in the image at physical {banner_at:#x}"),
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
    if let Some(n) = taint_flags {
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
    if let Some(m) = markers {
        line("kallsyms_markers", m);
    }
    if report.percpu_typed > 0 {
        line(
            "per-cpu typed",
            format!("{} (from BTF)", report.percpu_typed),
        );
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if ctx.vmcoreinfo.as_ref().is_some_and(|v| v.pgtable_l5) {
        line(
            "note",
            "the kernel ran with 5-level page tables (LA57): Volatility 3 through 2.28 translates only 4 levels".into(),
        );
    }
    if arch == Arch::X86_64 {
        line(
            "note",
            format!(
                "{HIDDEN_MODULES_NOTE}: run `vol -p <volume>/volatility -s {} -f memory.lime fv.hidden_modules`, the same carving with the check put right",
                dir.display()
            ),
        );
    }
    if arch == Arch::Aarch64 {
        line(
            "note",
            "upstream Volatility 3 has no Linux arm64 support yet (draft PR #1088); the table is for forks that do".into(),
        );
    }
    line(
        "next",
        format!(
            "capture extract {} -o memory.lime && vol -s {} -f memory.lime linux.pslist",
            c.dir.display(),
            dir.display()
        ),
    );
    out.write_all(s.as_bytes()).map_err(Error::Report)?;
    Ok(Exit::Ok)
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

/// Physical address of a kernel-image runtime VA (x86_64: VA −
/// `__START_KERNEL_map` + `phys_base`; arm64: VA − `kimage_voffset`), where
/// the VMCOREINFO note gives what it takes.
fn phys_of(arch: Arch, info: Option<&vmcoreinfo::VmcoreInfo>, va: u64) -> Option<u64> {
    match (arch, info) {
        (Arch::X86_64, Some(i)) => i
            .phys_base
            .map(|pb| va.wrapping_sub(START_KERNEL_MAP).wrapping_add(pb)),
        (Arch::Aarch64, Some(i)) => i.kimage_voffset.map(|v| va.wrapping_sub(v)),
        _ => None,
    }
}

/// Reads `len` bytes of kernel-image memory at runtime VA `va` from the
/// image; `None` when the address cannot be placed or was not captured.
fn read_kernel(
    c: &Capture,
    reader: &mut SeekableReader<std::fs::File>,
    phys: Option<u64>,
    len: usize,
) -> Result<Option<Vec<u8>>, Error> {
    let Some(p) = phys else { return Ok(None) };
    let Some(at) = c
        .manifest
        .ranges
        .iter()
        .find(|r| p >= r.start && p.saturating_add(len as u64) <= r.end.saturating_add(1))
        .map(|r| r.lime_offset + 32 + (p - r.start))
    else {
        return Ok(None);
    };
    let mut buf = vec![0u8; len];
    reader
        .read_exact_at(at, &mut buf)
        .map_err(|source| Error::Image {
            path: c.image_path.clone(),
            source,
        })?;
    Ok(Some(buf))
}

fn open_image(c: &Capture) -> Result<SeekableReader<std::fs::File>, Error> {
    // Relative to the capture directory, never through a symlink (as
    // verify opens it).
    let image = c
        .open_file(&c.manifest.image.file)
        .map_err(|e| Error::input_fs(&c.image_path, e))?;
    SeekableReader::open(image).map_err(|source| Error::Image {
        path: c.image_path.clone(),
        source,
    })
}

/// `taint_flags` (lsmod's taint letters) is an array whose length is a
/// `#define` (`TAINT_FLAGS_COUNT`, 18 to 20 by version), so the table first
/// sizes it by the gap to the next symbol; entries past the real ones would
/// print garbage letters. Cut the count to the entries the image holds:
/// `{c_true: 'A'-'Z', c_false: 'A'-'Z' or ' ', module: 0|1}`. Returns the
/// count kept, if the array was there to fit.
///
/// # Errors
/// [`Error::NoSymbols`] when the BTF makes the array larger than any
/// kernel's (its size times its count is checked, and capped at
/// [`TAINT_FLAGS_MAX`] bytes, before anything is allocated); image errors.
fn fit_taint_flags(
    c: &Capture,
    isf: &mut fv_symbols::Table,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    kernel_offset: u64,
) -> Result<Option<u64>, Error> {
    let size = isf
        .user_types
        .get("taint_flag")
        .and_then(|t| t["size"].as_u64())
        .unwrap_or(0);
    let Some(sym) = isf.symbols.get("taint_flags") else {
        return Ok(None);
    };
    let (link, Some(count)) = (
        sym.address,
        sym.ty.as_ref().and_then(|t| t["count"].as_u64()),
    ) else {
        return Ok(None);
    };
    if size < 3 {
        return Ok(None);
    }
    let len = taint_flags_len(size, count).ok_or_else(|| Error::NoSymbols {
            path: c.dir.clone(),
            reason: format!(
                "the BTF makes taint_flags {count} entries of {size} bytes, more than {TAINT_FLAGS_MAX} bytes: no kernel's is, so this BTF is not a kernel's"
            ),
        })?;
    let va = link.wrapping_add(kernel_offset);
    let mut reader = open_image(c)?;
    let Some(bytes) = read_kernel(c, &mut reader, phys_of(arch, info, va), len as usize)? else {
        return Ok(None);
    };
    let valid = bytes
        .chunks_exact(size as usize)
        .take_while(|e| {
            e[0].is_ascii_uppercase() && (e[1].is_ascii_uppercase() || e[1] == b' ') && e[2] <= 1
        })
        .count() as u64;
    if let Some(t) = isf
        .symbols
        .get_mut("taint_flags")
        .and_then(|s| s.ty.as_mut())
        .and_then(serde_json::Value::as_object_mut)
    {
        t.insert("count".into(), valid.into());
    }
    Ok(Some(valid))
}

/// The bytes `taint_flags` spans, `size` × `count` from the BTF, if no
/// larger than [`TAINT_FLAGS_MAX`]: both come from the evidence, and their
/// product sizes an allocation (security review S9: up to 2^48 bytes).
fn taint_flags_len(size: u64, count: u64) -> Option<u64> {
    size.checked_mul(count).filter(|&n| n <= TAINT_FLAGS_MAX)
}

/// `kallsyms_markers`, the one table of the kernel's own symbol table that
/// neither kallsyms nor VMCOREINFO lists (linux.kallsyms and
/// linux.pscallstack read it): `scripts/kallsyms.c` writes it right after
/// `kallsyms_names`, aligned to 8, so walking the names in the image
/// (`kallsyms_num_syms` of them) gives its address and its content. It is
/// added only when the image's table there equals the walk's, entry for
/// entry. Returns what happened, for the report.
fn add_kallsyms_markers(
    c: &Capture,
    isf: &mut fv_symbols::Table,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    kernel_offset: u64,
) -> Result<Option<String>, Error> {
    let syms = &isf.symbols;
    if syms.contains_key("kallsyms_markers") {
        return Ok(None);
    }
    let (Some(names), Some(num_at)) = (
        syms.get("kallsyms_names").map(|s| s.address),
        syms.get("kallsyms_num_syms").map(|s| s.address),
    ) else {
        return Ok(None);
    };
    let at = |link: u64| phys_of(arch, info, link.wrapping_add(kernel_offset));
    let mut reader = open_image(c)?;
    let Some(n) = read_kernel(c, &mut reader, at(num_at), 4)? else {
        return Ok(Some(
            "left out: kallsyms_num_syms is not in the image".into(),
        ));
    };
    let num = u32::from_le_bytes([n[0], n[1], n[2], n[3]]);
    if num == 0 || num > 4_000_000 {
        return Ok(Some(format!(
            "left out: kallsyms_num_syms reads {num} in the image"
        )));
    }
    // The names take ~13 bytes a symbol: read 1 MiB, then more, up to 64 MiB
    // or the end of the captured range.
    let mut len: u64 = 1 << 20;
    let walked = loop {
        let room = at(names).and_then(|p| {
            c.manifest
                .ranges
                .iter()
                .find(|r| p >= r.start && p <= r.end)
                .map(|r| r.end - p + 1)
        });
        let Some(room) = room else {
            return Ok(Some("left out: kallsyms_names is not in the image".into()));
        };
        let want = len.min(room);
        let Some(buf) = read_kernel(c, &mut reader, at(names), want as usize)? else {
            return Ok(Some("left out: kallsyms_names is not in the image".into()));
        };
        if let Some(w) = fv_symbols::kallsyms::walk_names(&buf, num) {
            break w;
        }
        if want < len || len >= 64 << 20 {
            return Ok(Some(format!(
                "left out: the {num} names of kallsyms_names do not end within {want} bytes of the image"
            )));
        }
        len *= 2;
    };
    let (end, want) = walked;
    let markers = (names + end as u64).next_multiple_of(8);
    let got = read_kernel(c, &mut reader, at(markers), want.len() * 4)?.map(|b| {
        b.chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect::<Vec<u32>>()
    });
    if got.as_ref() != Some(&want) {
        return Ok(Some(format!(
            "left out: the image's table after kallsyms_names ({markers:#x}) is not the {} markers of its {num} names",
            want.len()
        )));
    }
    isf.symbols.insert(
        "kallsyms_markers".into(),
        fv_symbols::Symbol {
            address: markers,
            ty: Some(serde_json::json!({"kind": "array", "count": want.len(),
                     "subtype": {"kind": "base", "name": "unsigned int"}})),
            constant_data: None,
        },
    );
    Ok(Some(format!(
        "{markers:#x}, after kallsyms_names: {} entries for {num} symbols, each equal to the image's",
        want.len()
    )))
}

/// Confirms the banner is in the image: first at `linux_banner`'s
/// physical address, else anywhere in captured memory. Returns the
/// physical address found.
fn find_banner(
    c: &Capture,
    arch: Arch,
    info: Option<&vmcoreinfo::VmcoreInfo>,
    banner_va: u64,
    banner: &[u8],
) -> Result<u64, Error> {
    let mut reader = open_image(c)?;
    let phys = phys_of(arch, info, banner_va);
    if let Some(got) = read_kernel(c, &mut reader, phys, banner.len())?
        && got == banner
        && let Some(p) = phys
    {
        return Ok(p);
    }
    let ranges = &c.manifest.ranges;
    let img_err = |source| Error::Image {
        path: c.image_path.clone(),
        source,
    };
    // Anywhere: range by range, in chunks overlapping by the banner's length.
    const CHUNK: usize = 8 << 20;
    let mut buf = vec![0u8; CHUNK + banner.len()];
    for r in ranges {
        let mut off = 0u64;
        while off < r.length {
            let n = (r.length - off).min(buf.len() as u64) as usize;
            reader
                .read_exact_at(r.lime_offset + 32 + off, &mut buf[..n])
                .map_err(img_err)?;
            if let Some(i) = find(&buf[..n], banner) {
                return Ok(r.start + off + i as u64);
            }
            if n < buf.len() {
                break;
            }
            off += CHUNK as u64;
        }
    }
    Err(Error::Mismatch {
        path: c.image_path.clone(),
        what: format!(
            "the banner of context/version ({:?}) does not occur in the captured memory: a symbol table identified by it would not match this image",
            String::from_utf8_lossy(&banner[..banner.len().min(80)])
        ),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        let i = hay[at..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        let p = at + i;
        if &hay[p + 1..p + needle.len()] == rest {
            return Some(p);
        }
        at = p + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{TAINT_FLAGS_MAX, find, taint_flags_len};

    /// S9: a BTF size and count from the evidence never size an allocation
    /// past the cap, nor wrap.
    #[test]
    fn taint_flags_len_is_capped_and_never_wraps() {
        assert_eq!(taint_flags_len(3, 20), Some(60));
        assert_eq!(taint_flags_len(1 << 32, 1 << 16), None);
        assert_eq!(taint_flags_len(u64::MAX, 2), None);
        assert_eq!(taint_flags_len(TAINT_FLAGS_MAX, 1), Some(TAINT_FLAGS_MAX));
        assert_eq!(taint_flags_len(TAINT_FLAGS_MAX + 1, 1), None);
    }

    #[test]
    fn find_locates_needles_at_edges() {
        assert_eq!(find(b"abcLinux", b"Linux"), Some(3));
        assert_eq!(find(b"Linuxabc", b"Linux"), Some(0));
        assert_eq!(find(b"LinuLinux", b"Linux"), Some(4));
        assert_eq!(find(b"Linu", b"Linux"), None);
        assert_eq!(find(b"", b"L"), None);
    }
}
