//! Phase 5 of a capture, [`finalize`]: a stream that never produced a
//! record is no image; otherwise the partial path (recover, zero-fill,
//! record what is missing), the seek table, the sidecar, and the manifest
//! last and atomically. Its own file because it is the longest phase and
//! the one a reader checks for "what does a partial capture record".

// The phases share the parent's types (Plan, SourceState, OutputState,
// Acquired) and imports.
#[allow(clippy::wildcard_imports)]
use super::*;

/// Phase 5, finalization: a stream that never produced a record is no
/// image; otherwise the partial path (recover, zero-fill, record what is
/// missing), the seek table, the sidecar, and the manifest last and
/// atomically.
pub(super) fn finalize(
    args: &CaptureArgs,
    plan: Plan,
    source: SourceState,
    out: OutputState,
    acquired: Acquired,
) -> Result<Outcome, Error> {
    let Plan {
        start_wall,
        t0,
        roots,
        uname,
        root,
        mut warnings,
        ..
    } = plan;
    let SourceState {
        opened,
        attempts,
        imds,
        imds_status,
        host_ram,
        warnings: source_warnings,
        foreign,
        ..
    } = source;
    let OutputState {
        cdir,
        cname,
        image_path,
        mut writer,
        mut context,
        kind,
        location,
        detail,
        warnings: space_warnings,
        ..
    } = out;
    let Acquired {
        mut layout,
        mut copied,
        result,
    } = acquired;
    warnings.extend(source_warnings);
    warnings.extend(space_warnings);
    let (mut files, ctx_warnings) = context.wait();
    warnings.extend(ctx_warnings);
    let imds = imds.map(|id| {
        let (entries, w) = imds::keep_identity(&cdir, &id);
        files.extend(entries);
        warnings.extend(w);
        id.imds
    });

    // A stream that never produced a record is no image at all.
    if layout.is_empty()
        && let Err(stop) = &result
    {
        let _ = writer.finish();
        cleanup(&root.dir, &cdir, &cname);
        return Err(match stop {
            Stop::Source { error, .. } => Error::BadLime {
                location,
                source: clone_lime_error(error),
            },
            Stop::Signal(sig) => Error::Lime(LimeSourceError::Interrupted(stop::signal_name(*sig))),
            Stop::Sink(e) => Error::Io {
                what: format!("writing {}", image_path.display()),
                source: std::io::Error::other(e.to_string()),
            },
        });
    }

    // A stream of this host that ended cleanly without all of the host's
    // System RAM (at a record boundary, or a module that died between
    // ranges) is not complete: what it did not send is listed and the
    // capture is partial (security review S4).
    let short = match (&result, host_ram.as_deref()) {
        (Ok(()), Some(ram)) => {
            let covered: Vec<(u64, u64)> = layout.ranges.iter().map(|r| (r.start, r.end)).collect();
            let gaps = stream::ram_gaps(ram, &covered);
            (!gaps.is_empty()).then_some(gaps)
        }
        _ => None,
    };
    let partial = match result {
        Ok(()) => short.as_ref().map(|gaps| {
            let bytes = gaps
                .iter()
                .fold(0u64, |a, (s, e)| a.saturating_add((e - s).saturating_add(1)));
            PartialReason {
                cause: PartialCause::SourceTruncated,
                detail: format!(
                    "the LiME stream ended after {} record(s) without {} of this host's System RAM in {} span(s) (/proc/iomem)",
                    layout.ranges.len(),
                    human(bytes),
                    gaps.len()
                ),
            }
        }),
        Err(Stop::Signal(sig)) => Some(PartialReason {
            cause: PartialCause::Interrupted,
            detail: format!("interrupted by {}", stop::signal_name(sig)),
        }),
        Err(Stop::Sink(e)) => {
            output::release_reserve(&cdir);
            Some(PartialReason {
                cause: if e.is_no_space() {
                    PartialCause::NoSpace
                } else {
                    PartialCause::WriteError
                },
                detail: e.to_string(),
            })
        }
        Err(Stop::Source { cause, error }) => Some(PartialReason {
            cause,
            detail: error.to_string(),
        }),
    };
    let mut not_captured = Vec::new();
    let mut omitted = Vec::new();
    let mut remainder_unknown = None;
    if let (Some(gaps), Some(reason)) = (&short, &partial) {
        // The stream is whole up to its last record: nothing to recover or
        // zero-fill, only what it did not send to list.
        let last = layout.ranges.last().map(|r| r.end);
        omitted = gaps
            .iter()
            .map(|&(s, e)| Span {
                start: s,
                length: (e - s).saturating_add(1),
                error: if last.is_some_and(|l| s <= l) {
                    stream::NO_RECORD.to_string()
                } else {
                    "the LiME stream ended before sending this System RAM".to_string()
                },
            })
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "capture: warning: {}: the capture is PARTIAL; the manifest lists what is missing under omitted",
            reason.detail
        );
    } else if let Some(reason) = &partial {
        // The stream ends with the record the writer resumed in, completed
        // with zeros; later records are listed, not written (a stop costs
        // one record of zero-fill, not the rest of RAM).
        let full = layout.clone();
        let from = writer.recover().map_err(|source| Error::Finalize {
            dir: cdir.path().to_path_buf(),
            source,
        })?;
        let mut cut = stream::cut(&mut layout, from, &reason.detail);
        if let Err(first) = stream::fill_zeros(&mut writer, &layout, from) {
            // A second full disk while zero-filling: the reserve is gone
            // already; one more recovery, then give up.
            output::release_reserve(&cdir);
            let from2 = writer.recover().map_err(|_| Error::Finalize {
                dir: cdir.path().to_path_buf(),
                source: first,
            })?;
            layout = full.clone();
            cut = stream::cut(&mut layout, from2.min(from), &reason.detail);
            stream::fill_zeros(&mut writer, &layout, from2).map_err(|source| Error::Finalize {
                dir: cdir.path().to_path_buf(),
                source,
            })?;
        }
        not_captured = cut.not_captured;
        omitted = cut.omitted;
        let (rest, unknown) = source_remainder(
            &opened,
            host_ram.as_deref(),
            &full,
            &copied,
            &location,
            &reason.detail,
        );
        omitted.extend(rest);
        remainder_unknown = unknown;
        stream::clip_unreadable(&mut copied.unreadable, &not_captured);
        stream::clip_unreadable(&mut copied.unreadable, &omitted);
    }
    omitted.sort_unstable_by_key(|s| s.start);
    output::release_reserve(&cdir);
    let summary = writer.finish().map_err(|source| Error::Finalize {
        dir: cdir.path().to_path_buf(),
        source,
    })?;

    let module_line = match opened {
        Opened::Lime {
            module: Some(m), ..
        } => Some(m.finish(Duration::from_secs(30))),
        _ => None,
    };
    let detail = match (detail, module_line) {
        (Some(d), Some(m)) => Some(format!("{d}; {m}")),
        (d, m) => d.or(m),
    };

    // Sidecar, files list, manifest.
    let zst_hex = hex(&summary.zst_sha256);
    let sidecar = format!("{zst_hex}  {}\n", manifest::IMAGE_FILE);
    let sidecar_sha = output::write_atomic(&cdir, manifest::IMAGE_SHA256_FILE, sidecar.as_bytes())?;
    files.insert(
        0,
        FileEntry {
            path: manifest::IMAGE_FILE.into(),
            size: summary.zst_len,
            sha256: zst_hex.clone(),
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
    let end_wall = SystemTime::now();
    let elapsed = t0.elapsed();
    let (exe_path, exe_sha) = host::self_exe();
    let m = Manifest {
        schema: manifest::SCHEMA.into(),
        schema_version: manifest::SCHEMA_VERSION,
        tool: Tool {
            name: fv_core::build::TOOLKIT.into(),
            version: fv_core::build::VERSION.into(),
            git_commit: fv_core::build::GIT_COMMIT.into(),
            binary_path: exe_path.display().to_string(),
            binary_sha256: exe_sha,
        },
        command_line: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        host: match foreign {
            // Nothing of this host is the source's (item 4 of issue 22).
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
                boot_id: host::boot_id(&roots),
                imds,
                imds_status,
            },
        },
        case: Case {
            case_id: args.case_id.clone(),
            examiner: args.examiner.clone(),
            note: args.note.clone(),
        },
        source: Source {
            kind: kind.into(),
            location,
            requested: args.source.to_string(),
            detail,
            attempts,
        },
        ranges: layout.ranges.clone(),
        unreadable: copied.unreadable,
        not_captured,
        omitted,
        remainder_unknown,
        image: image_section(&summary),
        timing: Timing {
            start_utc: crate::utc::rfc3339(start_wall),
            end_utc: crate::utc::rfc3339(end_wall),
            duration_seconds: elapsed.as_secs_f64(),
            throughput_bytes_per_second: summary.lime_len as f64 / elapsed.as_secs_f64().max(1e-9),
        },
        peak_rss_bytes: host::peak_rss(),
        status: if partial.is_some() {
            Status::Partial
        } else {
            Status::Complete
        },
        partial_reason: partial,
        files,
        warnings,
    };
    cdir.sync().map_err(OutputError::from)?;
    let manifest_sha256 = output::write_atomic(&cdir, manifest::MANIFEST_FILE, &m.to_json()?)?;
    fv_evidence::inprogress::clear(&cdir).map_err(OutputError::from)?;
    root.dir.sync().map_err(OutputError::from)?;

    let code = match m.partial_reason.as_ref().map(|r| r.cause) {
        None => exit::OK,
        Some(PartialCause::Interrupted) => exit::PARTIAL_INTERRUPTED,
        Some(PartialCause::NoSpace) => exit::PARTIAL_NO_SPACE,
        Some(PartialCause::WriteError) => exit::PARTIAL_WRITE,
        Some(_) => exit::PARTIAL_SOURCE,
    };
    Ok(Outcome {
        exit: code,
        manifest: m,
        dir: cdir.path().to_path_buf(),
        manifest_sha256,
    })
}

fn image_section(s: &ImageSummary) -> Image {
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

/// Removes what this run created in a capture directory that produced no
/// image (only names we create; nothing else is touched).
pub(super) fn cleanup(root: &Dir, cdir: &Dir, name: &str) {
    let ctx = manifest::CONTEXT_DIR;
    if let Ok(c) = cdir.open_dir(OsStr::new(ctx)) {
        for f in [
            "uname",
            "version",
            "cmdline",
            "modules",
            "kallsyms",
            "iomem",
            "cpuinfo",
            "meminfo",
            "uptime",
            "boot_id",
            "mountinfo",
            "vmcoreinfo",
            "kernel-notes",
            "lockdown",
            "tainted",
            "build-id",
            imds::IMDS_DOCUMENT_FILE,
            imds::IMDS_PKCS7_FILE,
        ] {
            let _ = c.remove_file(OsStr::new(f));
        }
        crate::symbols_context::remove(&c);
        let _ = cdir.remove_dir(OsStr::new(ctx));
    }
    for f in [
        manifest::IMAGE_FILE,
        output::RESERVE_FILE,
        fv_evidence::inprogress::INCOMPLETE_FILE,
    ] {
        let _ = cdir.remove_file(OsStr::new(f));
    }
    let _ = root.remove_dir(OsStr::new(name));
    let _ = root.sync();
}
