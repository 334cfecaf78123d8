//! `--range START-END`: a physical address range, END inclusive (as in
//! `/proc/iomem` and LiME headers), each bound hex with `0x` or decimal.

use std::fmt;

/// A physical address range `[start, end]`, end inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PhysRange {
    /// First address.
    pub start: u64,
    /// Last address (inclusive).
    pub end: u64,
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end)
    }
}

impl PhysRange {
    /// The intersection with `[start, end]`, if any.
    pub fn intersect(&self, start: u64, end: u64) -> Option<Self> {
        let s = self.start.max(start);
        let e = self.end.min(end);
        (s <= e).then_some(Self { start: s, end: e })
    }
}

fn number(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else {
        t.parse::<u64>()
    };
    parsed.map_err(|e| format!("{t:?} is not an address (hex with 0x, or decimal): {e}"))
}

/// Parses `START-END`.
///
/// # Errors
/// A message naming the bad part (clap shows it with the argument).
pub fn parse(s: &str) -> Result<PhysRange, String> {
    let (a, b) = s.split_once('-').ok_or_else(|| {
        format!("{s:?}: expected START-END, e.g. 0x100000-0x1fffff (END inclusive)")
    })?;
    let start = number(a)?;
    let end = number(b)?;
    if end < start {
        return Err(format!(
            "{s:?}: END {end:#x} is before START {start:#x} (END is inclusive)"
        ));
    }
    Ok(PhysRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_decimal_end_inclusive() {
        assert_eq!(
            parse("0x1000-0x1fff").unwrap(),
            PhysRange {
                start: 0x1000,
                end: 0x1fff
            }
        );
        assert_eq!(
            parse("4096-8191").unwrap(),
            PhysRange {
                start: 4096,
                end: 8191
            }
        );
        assert_eq!(parse("0X10-16").unwrap(), PhysRange { start: 16, end: 16 });
        assert_eq!(parse("0x1000-0x1fff").unwrap().to_string(), "0x1000-0x1fff");
    }

    #[test]
    fn bad_ranges_are_named() {
        assert!(parse("0x1000").unwrap_err().contains("START-END"));
        assert!(parse("0x2000-0x1000").unwrap_err().contains("before START"));
        assert!(parse("zz-0x10").unwrap_err().contains("\"zz\""));
        assert!(parse("0x1-0x10000000000000000").is_err());
        assert!(parse("-1-5").is_err());
    }

    #[test]
    fn intersection() {
        let r = PhysRange { start: 10, end: 20 };
        assert_eq!(r.intersect(15, 30), Some(PhysRange { start: 15, end: 20 }));
        assert_eq!(r.intersect(21, 30), None);
        assert_eq!(r.intersect(0, 10), Some(PhysRange { start: 10, end: 10 }));
    }
}
