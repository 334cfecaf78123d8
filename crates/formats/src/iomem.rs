//! `/proc/iomem`: the kernel's physical resource tree, as text.
//!
//! Each line is `start-end : name`, hex, END INCLUSIVE, indented by two
//! spaces per level of nesting. Physical RAM is the set of top-level
//! `System RAM` entries; this is also what LiME walks (one record per busy
//! System RAM resource). Ranges need not be page aligned (firmware splits
//! them at odd offsets, e.g. `00001000-0009fbff`). Read without
//! `CAP_SYS_ADMIN` every address reads `0-0`: [`IomemError::Hidden`] says so.
//!
//! Sources: linux `kernel/resource.c` (`r_show`), LiME `src/main.c`.

use std::fmt;

/// Most lines accepted; a real iomem has a few hundred. Bounds memory on
/// hostile input.
pub const MAX_LINES: usize = 1 << 16;
/// Most characters in one line (names are short).
pub const MAX_LINE_LEN: usize = 4096;

/// The name of RAM resources.
pub const SYSTEM_RAM: &str = "System RAM";

/// One resource line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
    /// Nesting level (0 = top level).
    pub depth: usize,
    /// Resource name.
    pub name: String,
}

/// A top-level System RAM range, end inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RamRange {
    /// First physical address.
    pub start: u64,
    /// Last physical address (inclusive).
    pub end: u64,
}

impl RamRange {
    /// `end - start + 1` (ranges from the parser never span all 2^64).
    pub fn len(&self) -> u64 {
        (self.end - self.start).saturating_add(1)
    }

    /// Never empty (`end >= start`); present for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for RamRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end)
    }
}

/// What is wrong with an iomem text, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IomemError {
    /// A line is not `start-end : name`.
    #[error("/proc/iomem line {line}: malformed ({why}): {text:?}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: &'static str,
        /// The line (cut to 120 characters).
        text: String,
    },
    /// `end < start`.
    #[error("/proc/iomem line {line}: end {end:#x} is before start {start:#x}")]
    EndBeforeStart {
        /// 1-based line number.
        line: usize,
        /// Start.
        start: u64,
        /// End.
        end: u64,
    },
    /// Top-level System RAM ranges overlap or are out of order.
    #[error(
        "/proc/iomem line {line}: System RAM {start:#x}-{end:#x} overlaps or precedes the previous one ending at {previous_end:#x}"
    )]
    Unordered {
        /// 1-based line number.
        line: usize,
        /// Start.
        start: u64,
        /// End.
        end: u64,
        /// Previous range's end.
        previous_end: u64,
    },
    /// Too many lines or a line too long.
    #[error("/proc/iomem: more than {MAX_LINES} lines or a line over {MAX_LINE_LEN} bytes")]
    TooLarge,
    /// Every address is zero: the reader lacks CAP_SYS_ADMIN.
    #[error(
        "/proc/iomem shows every address as 0-0: the kernel hides addresses from processes without CAP_SYS_ADMIN (run as root)"
    )]
    Hidden,
    /// No top-level System RAM.
    #[error("/proc/iomem lists no top-level \"System RAM\" range")]
    NoRam,
    /// Not UTF-8.
    #[error("/proc/iomem is not text (invalid UTF-8 at byte {offset})")]
    NotText {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
}

fn malformed(line: usize, why: &'static str, text: &str) -> IomemError {
    IomemError::Malformed {
        line,
        why,
        text: text.chars().take(120).collect(),
    }
}

/// Parses the whole text into resources, in file order.
///
/// # Errors
/// [`IomemError::Malformed`], [`IomemError::EndBeforeStart`],
/// [`IomemError::TooLarge`], [`IomemError::NotText`].
pub fn parse(bytes: &[u8]) -> Result<Vec<Resource>, IomemError> {
    let text = std::str::from_utf8(bytes).map_err(|e| IomemError::NotText {
        offset: e.valid_up_to(),
    })?;
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if index >= MAX_LINES || raw.len() > MAX_LINE_LEN {
            return Err(IomemError::TooLarge);
        }
        if raw.trim().is_empty() {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        if indent % 2 != 0 {
            return Err(malformed(line, "odd indentation", raw));
        }
        let body = &raw[indent..];
        let (range, name) = body
            .split_once(" : ")
            .ok_or_else(|| malformed(line, "no \" : \" separator", raw))?;
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| malformed(line, "no '-' in the range", raw))?;
        let hex = |s: &str| {
            if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                None
            } else {
                u64::from_str_radix(s, 16).ok()
            }
        };
        let start = hex(start).ok_or_else(|| malformed(line, "start is not hex", raw))?;
        let end = hex(end).ok_or_else(|| malformed(line, "end is not hex", raw))?;
        if end < start {
            return Err(IomemError::EndBeforeStart { line, start, end });
        }
        out.push(Resource {
            start,
            end,
            depth: indent / 2,
            name: name.to_string(),
        });
    }
    Ok(out)
}

/// The top-level System RAM ranges, ascending, checked: not hidden (`0-0`),
/// not empty, not overlapping. Adjacent ranges stay separate, as LiME keeps
/// them (one record per resource).
///
/// # Errors
/// Everything [`parse`] returns, [`IomemError::Hidden`], [`IomemError::NoRam`],
/// [`IomemError::Unordered`].
pub fn system_ram(bytes: &[u8]) -> Result<Vec<RamRange>, IomemError> {
    let resources = parse(bytes)?;
    if !resources.is_empty() && resources.iter().all(|r| r.start == 0 && r.end == 0) {
        return Err(IomemError::Hidden);
    }
    let mut ram: Vec<(usize, RamRange)> = Vec::new();
    // Line numbers for messages: recount, since blank lines were skipped.
    let mut line_of = Vec::with_capacity(resources.len());
    let text = String::from_utf8_lossy(bytes);
    for (i, l) in text.lines().enumerate() {
        if !l.trim().is_empty() {
            line_of.push(i + 1);
        }
    }
    for (i, r) in resources.iter().enumerate() {
        if r.depth == 0 && r.name == SYSTEM_RAM {
            ram.push((
                line_of.get(i).copied().unwrap_or(0),
                RamRange {
                    start: r.start,
                    end: r.end,
                },
            ));
        }
    }
    if ram.is_empty() {
        return Err(IomemError::NoRam);
    }
    // The kernel prints siblings in address order; anything else is not a
    // real iomem and guessing an order would hide the problem.
    for pair in ram.windows(2) {
        let (_, prev) = pair[0];
        let (line, cur) = pair[1];
        if cur.start <= prev.end {
            return Err(IomemError::Unordered {
                line,
                start: cur.start,
                end: cur.end,
                previous_end: prev.end,
            });
        }
    }
    Ok(ram.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN_1G: &str = "\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
0009fc00-0009ffff : Reserved
000a0000-000bffff : PCI Bus 0000:00
000f0000-000fffff : Reserved
  000f0000-000fffff : System ROM
00100000-3ffd4fff : System RAM
  2a000000-2ac02fff : Kernel code
  2ac03000-2b0fffff : Kernel rodata
3ffd5000-3fffffff : Reserved
fffc0000-ffffffff : Reserved
";

    #[test]
    fn top_level_ram_only_end_inclusive() {
        let ram = system_ram(DEBIAN_1G.as_bytes()).unwrap();
        assert_eq!(
            ram,
            vec![
                RamRange {
                    start: 0x1000,
                    end: 0x9fbff
                },
                RamRange {
                    start: 0x100000,
                    end: 0x3ffd4fff
                },
            ]
        );
        assert_eq!(ram[0].len(), 0x9ec00);
        let all = parse(DEBIAN_1G.as_bytes()).unwrap();
        assert_eq!(all[5].depth, 1);
        assert_eq!(all[5].name, "System ROM");
    }

    #[test]
    fn nested_system_ram_is_not_top_level() {
        let text = "00000000-0fffffff : PCI\n  00001000-00001fff : System RAM\n";
        assert_eq!(system_ram(text.as_bytes()), Err(IomemError::NoRam));
    }

    #[test]
    fn hidden_addresses_are_named() {
        let text = "00000000-00000000 : Reserved\n00000000-00000000 : System RAM\n  00000000-00000000 : Kernel code\n";
        assert_eq!(system_ram(text.as_bytes()), Err(IomemError::Hidden));
    }

    #[test]
    fn malformations_name_the_line() {
        let cases: &[(&str, usize)] = &[
            ("00001000-0009fbff System RAM\n", 1),
            (
                "00000000-00000fff : Reserved\n0000g000-0009fbff : System RAM\n",
                2,
            ),
            ("00001000 : System RAM\n", 1),
            (" 00001000-00001fff : System RAM\n", 1),
            ("00001000-00001fff1234567890abcdef : System RAM\n", 1),
        ];
        for (text, line) in cases {
            match system_ram(text.as_bytes()) {
                Err(IomemError::Malformed { line: l, .. }) => assert_eq!(l, *line, "{text}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert!(matches!(
            system_ram(b"00002000-00001000 : System RAM\n"),
            Err(IomemError::EndBeforeStart { line: 1, .. })
        ));
        assert!(matches!(
            system_ram(b"\xff\xfe"),
            Err(IomemError::NotText { offset: 0 })
        ));
    }

    #[test]
    fn overlapping_or_unordered_ram_is_refused() {
        let text = "00100000-001fffff : System RAM\n00001000-00001fff : System RAM\n";
        assert!(matches!(
            system_ram(text.as_bytes()),
            Err(IomemError::Unordered { line: 2, .. })
        ));
        let adjacent = "00001000-00001fff : System RAM\n00002000-00002fff : System RAM\n";
        assert_eq!(system_ram(adjacent.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn bounded_on_hostile_input() {
        let long = format!("00000000-00000fff : {}\n", "x".repeat(MAX_LINE_LEN));
        assert_eq!(system_ram(long.as_bytes()), Err(IomemError::TooLarge));
    }
}
