//! The break-glass procedure (issue 23) is written in four places a
//! responder may find first: `docs/break-glass.md` (the full page),
//! README.md's "Break-glass" section, `README.txt` at the volume's root
//! (`volume-layout/README.txt`), and the SSM documents' descriptions (which
//! point to the other two). The commands must be the same everywhere, in the
//! same order, so that they cannot drift apart; and the page must cover
//! what a responder needs before mounting anything. The VM bench's
//! `break-glass` scenario runs the page's commands as written
//! (`tests/vm/host/break_glass.py`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;

fn read(rel: &str) -> String {
    let path = fv_tests::workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A command line of the procedure: not blank, not a comment-only line.
fn is_command(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The command lines of the ```sh blocks of a Markdown text, with each
/// block's tag (`sh`, `sh nitro`, `sh xen`, `sh analyst`).
fn md_commands(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut tag: Option<String> = None;
    for line in text.lines() {
        match &tag {
            None => {
                if let Some(info) = line.strip_prefix("```sh") {
                    tag = Some(format!("sh{info}").trim().to_string());
                }
            }
            Some(t) => {
                if line.starts_with("```") {
                    tag = None;
                } else if is_command(line) {
                    out.push((t.clone(), line.trim_end().to_string()));
                }
            }
        }
    }
    assert!(tag.is_none(), "an unclosed ```sh block");
    out
}

/// The section of a Markdown text that starts with the heading `start`,
/// up to the next heading of the same level.
fn section<'a>(text: &'a str, start: &str) -> &'a str {
    let at = text
        .find(start)
        .unwrap_or_else(|| panic!("no section {start:?}"));
    let rest = &text[at + start.len()..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// README.txt's command lines: indented by exactly six spaces.
fn txt_commands(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("      ") && !l.starts_with("       "))
        .filter(|l| is_command(l))
        .map(|l| l.trim().to_string())
        .collect()
}

fn lines_only(v: &[(String, String)]) -> Vec<String> {
    v.iter().map(|(_, l)| l.trim().to_string()).collect()
}

#[test]
fn the_procedure_is_the_same_in_every_place() {
    let page = md_commands(&read("docs/break-glass.md"));
    let readme = md_commands(section(&read("README.md"), "## Break-glass"));
    let volume = txt_commands(&read("volume-layout/README.txt"));
    assert!(page.len() >= 14, "{page:#?}");
    assert_eq!(
        page, readme,
        "README.md's Break-glass section differs from docs/break-glass.md"
    );
    assert_eq!(
        lines_only(&page),
        volume,
        "volume-layout/README.txt differs from docs/break-glass.md"
    );
}

#[test]
fn the_procedure_covers_nitro_xen_digests_and_the_analyst() {
    let page = md_commands(&read("docs/break-glass.md"));
    let has = |tag: &str, needle: &str| page.iter().any(|(t, l)| t == tag && l.contains(needle));
    // Nitro: the serial is the volume ID without the dash.
    assert!(has(
        "sh nitro",
        "grep -l \"vol${VOL#vol-}\" /sys/block/nvme"
    ));
    assert!(has("sh nitro", "mount-helper\" mount --volume-id \"$VOL\""));
    // Xen: the requested name and the size are what identify it.
    assert!(has("sh xen", "--requested-device sdf --expect-size-gib"));
    // The stage-0 steps by hand, read-only, as the document's stage-0 does.
    assert!(has(
        "sh",
        "mount -t ext4 -o ro,noload,nosuid,nodev \"$DEV\" \"$MP\""
    ));
    // The toolkit check in a subshell: a shell left inside the read-only
    // mount keeps it busy (the old text's `cd /run/fv && sha256sum -c`).
    for (_, l) in &page {
        if l.contains("cd \"$MP\"") || l.contains("cd /run/") {
            assert!(
                l.trim_start().starts_with('('),
                "{l}: cd into the volume outside a subshell"
            );
        }
    }
    // The default mountpoint of the documents and the helpers.
    assert!(has("sh", "MP=/run/forensics-volume/$VOL"));
    // Unmount from outside the volume.
    let cd_root = page.iter().position(|(_, l)| l == "cd /").unwrap();
    let unmount = page
        .iter()
        .position(|(_, l)| l.contains("unmount-helper"))
        .unwrap();
    assert!(cd_root < unmount);
    // The analyst anchors the capture with the three digests.
    assert!(has(
        "sh analyst",
        "capture verify CAPTURE_DIR --expect-manifest-sha256 MANIFEST_SHA256 --expect-sha256 IMAGE_SHA256 --expect-lime-sha256 LIME_SHA256"
    ));
    let text = read("docs/break-glass.md");
    for needle in [
        "Ctrl-C",
        "suspect's own tools",
        "sha256 manifest.json=<64 hex> memory.lime.zst=<64 hex> lime=<64 hex>",
        "case ticket",
        "ANCHORED",
        "lockdown",
        "partial image",
    ] {
        assert!(
            text.contains(needle),
            "docs/break-glass.md does not say {needle:?}"
        );
    }
    let txt = read("volume-layout/README.txt");
    for needle in [
        "TAKE THE DIGESTS OFF THE VOLUME",
        "case ticket",
        "docs/break-glass.md",
        "Ctrl-C",
        "ANCHORED",
    ] {
        assert!(txt.contains(needle), "README.txt does not say {needle:?}");
    }
}

#[test]
fn the_ssm_documents_point_to_the_procedure() {
    for name in [
        "Forensics-MountVolume",
        "Forensics-CaptureMemory",
        "Forensics-UnmountVolume",
        "Forensics-CaptureInstanceMemory",
    ] {
        let rel = format!("deploy/documents/{name}.json");
        let doc: serde_json::Value = serde_json::from_str(&read(&rel)).unwrap();
        let d = doc["description"].as_str().unwrap();
        assert!(
            d.contains("docs/break-glass.md") && d.contains("README.txt at the volume's root"),
            "{rel}: the description does not point to the break-glass procedure: {d}"
        );
    }
    assert!(Path::new(&fv_tests::workspace_root().join("docs/break-glass.md")).is_file());
}
