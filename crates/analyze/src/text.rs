//! Text from the evidence, made safe for a terminal.
//!
//! Manifests, file names and error messages that quote them are written by
//! whoever had the volume last, and the hostname and kernel strings come from
//! the suspect's `uname` (a root attacker sets them without touching the
//! manifest). Printed raw, `ESC [2K`, `\r` and friends let such a string erase
//! the real `NOT VERIFIED` line and draw a forged `VERIFIED` one. Every line
//! of human output therefore goes through [`printable`], which escapes every
//! control character (C0, DEL, C1) and the Unicode format characters that
//! reorder or hide text (bidirectional overrides, zero-width characters).
//! JSON output needs none of this: serde escapes control characters, and the
//! reader is a program.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width, LRM, RLM
            | '\u{2028}'..='\u{202E}' // line/paragraph separators, embeddings, overrides
            | '\u{2060}'..='\u{2069}' // word joiner, invisible operators, isolates
            | '\u{FEFF}'              // zero-width no-break space
        )
}

/// `s` with every control or hiding character escaped: `\xNN` below U+0100
/// (so ESC shows as `\x1b`), `\u{NNNN}` above; a backslash is doubled so an
/// escape in the output cannot be mistaken for one in the input.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) && u32::from(c) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes `line` made [`printable`], then a newline.
///
/// # Errors
/// The writer's.
pub fn write_line(out: &mut dyn std::io::Write, line: &str) -> std::io::Result<()> {
    let safe = printable(line);
    out.write_all(safe.as_bytes())?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_hiding_characters_are_escaped() {
        assert_eq!(printable("ip-10-0-0-1"), "ip-10-0-0-1");
        assert_eq!(
            printable("x\u{1b}[2K\rVERIFIED\u{1b}[8m"),
            "x\\x1b[2K\\x0dVERIFIED\\x1b[8m"
        );
        assert_eq!(printable("a\u{7f}b\u{9b}c"), "a\\x7fb\\x9bc");
        assert_eq!(printable("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(printable("tab\there\nnl"), "tab\\x09here\\x0anl");
        assert_eq!(printable("back\\x1b"), "back\\\\x1b");
        // Ordinary non-ASCII text stays readable.
        assert_eq!(printable("hôte-東京"), "hôte-東京");
        for s in ["\u{1b}]0;title\u{7}", "\u{85}", "\u{2066}x\u{2069}"] {
            assert!(
                printable(s)
                    .chars()
                    .all(|c| !c.is_control() && !is_unsafe(c))
            );
        }
    }
}
