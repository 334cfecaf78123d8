//! The `sha256sum -c` sidecar (`memory.lime.zst.sha256`): lines of
//! `<64 hex digits><space><space or *><file name>`.

/// One line of a sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowercase hex digest.
    pub sha256: String,
    /// The file name as written.
    pub name: String,
}

/// Parses a sidecar. Blank lines are skipped.
///
/// # Errors
/// A message naming the first line that is not `sha256sum` output.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || format!("line {}: not `sha256sum` output: {line:?}", i + 1);
        let (digest, rest) = line.split_at_checked(64).ok_or_else(bad)?;
        if !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let name = rest
            .strip_prefix("  ")
            .or_else(|| rest.strip_prefix(" *"))
            .ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        out.push(Entry {
            sha256: digest.to_ascii_lowercase(),
            name: name.to_string(),
        });
    }
    if out.is_empty() {
        return Err("no digest line".into());
    }
    Ok(out)
}

/// Normalises a user-given hex digest, or says why it is not one.
///
/// # Errors
/// A message for anything but 64 hex digits.
pub fn normalise_digest(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not a SHA-256 digest (64 hex digits)"));
    }
    Ok(t.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sha256sum_output() {
        let d = "ab".repeat(32);
        let text = format!("{d}  memory.lime.zst\n\n{} *other\n", "CD".repeat(32));
        let e = parse(&text).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            Entry {
                sha256: d,
                name: "memory.lime.zst".into()
            }
        );
        assert_eq!(e[1].sha256, "cd".repeat(32));
        assert_eq!(e[1].name, "other");
    }

    #[test]
    fn refuses_other_text() {
        assert!(parse("").is_err());
        assert!(parse("hello  world").is_err());
        assert!(parse(&format!("{} x", "ab".repeat(32))).is_err());
        assert!(parse(&format!("{}  ", "zz".repeat(32))).is_err());
        assert!(normalise_digest("abc").is_err());
        assert_eq!(normalise_digest(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
    }
}
