//! Progress on stderr, shared by `capture` and its analyst subcommands
//! (`verify`, `extract`, `symbols`): on a terminal a bar with rate and ETA,
//! redrawn at most five times a second; without one (SSM, a pipe, a log) a
//! short line every 10 % (or every 8 GiB when the size is unknown, at most a
//! dozen lines), so a whole run prints well under SSM's 2,500-character
//! console cut. Never on stdout, which carries the result (and `--json`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where progress goes and how.
#[derive(Debug)]
pub struct Progress {
    label: &'static str,
    mode: Mode,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Instant,
    next_mark: u64,
    lines: u32,
    last_line_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Silent,
    Bar,
    Lines,
}

const LINE_STEP_UNKNOWN: u64 = 8 << 30;
const MAX_LINES: u32 = 12;

/// `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1h02m03s`, `2m03s`, `4.2s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s % 3600 / 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Progress {
    /// Nothing printed.
    pub fn silent() -> Self {
        Self::with("capture", Mode::Silent, None)
    }

    /// `capture`'s: a bar on a terminal or lines otherwise; `total` if known.
    pub fn new(quiet: bool, tty: bool, total: Option<u64>) -> Self {
        Self::labelled("capture", quiet, tty, total)
    }

    /// As [`Progress::new`], lines starting with `label:`.
    pub fn labelled(label: &'static str, quiet: bool, tty: bool, total: Option<u64>) -> Self {
        let mode = match (quiet, tty) {
            (true, _) => Mode::Silent,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Lines,
        };
        Self::with(label, mode, total)
    }

    /// As [`Progress::labelled`], a bar when the process's stderr is a
    /// terminal.
    pub fn on_stderr(label: &'static str, quiet: bool, total: Option<u64>) -> Self {
        Self::labelled(label, quiet, std::io::stderr().is_terminal(), total)
    }

    fn with(label: &'static str, mode: Mode, total: Option<u64>) -> Self {
        let now = Instant::now();
        let mut p = Self {
            label,
            mode,
            total,
            done: 0,
            started: now,
            last_draw: now,
            next_mark: 0,
            lines: 0,
            last_line_at: 0,
        };
        p.next_mark = p.step();
        p
    }

    fn step(&self) -> u64 {
        match self.total {
            Some(t) if t > 0 => t.div_ceil(10),
            _ => LINE_STEP_UNKNOWN,
        }
    }

    /// Bytes of stream produced so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Records `n` more bytes.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                if self.last_draw.elapsed() >= Duration::from_millis(200) {
                    self.last_draw = Instant::now();
                    self.draw_bar();
                }
            }
            Mode::Lines => {
                if self.done >= self.next_mark && self.lines < MAX_LINES {
                    self.lines += 1;
                    while self.next_mark <= self.done {
                        self.next_mark += self.step();
                    }
                    self.last_line_at = self.done;
                    let _ = writeln!(std::io::stderr(), "{}: {}", self.label, self.status());
                }
            }
        }
    }

    fn rate(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        }
    }

    fn status(&self) -> String {
        let rate = self.rate();
        match self.total {
            Some(t) if t > 0 => {
                let pct = (self.done.min(t) as f64 * 100.0 / t as f64).floor();
                let eta = if rate > 0.0 {
                    duration(Duration::from_secs_f64(
                        (t.saturating_sub(self.done)) as f64 / rate,
                    ))
                } else {
                    "?".into()
                };
                format!(
                    "{pct:3.0}% {} of {} at {}/s, ETA {eta}",
                    human(self.done),
                    human(t),
                    human(rate as u64)
                )
            }
            _ => format!("{} at {}/s", human(self.done), human(rate as u64)),
        }
    }

    fn draw_bar(&self) {
        let width = 30usize;
        let filled = match self.total {
            Some(t) if t > 0 => (self.done.min(t) as u128 * width as u128 / t as u128) as usize,
            _ => 0,
        };
        let bar: String = "#".repeat(filled) + &"-".repeat(width - filled);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K[{bar}] {}", self.status());
        let _ = err.flush();
    }

    /// Says which step of a run begins (for work not measured in bytes):
    /// one line `label: what`, unless silent.
    pub fn stage(&mut self, what: &str) {
        let mut err = std::io::stderr().lock();
        match self.mode {
            Mode::Silent => {}
            Mode::Bar => {
                let _ = writeln!(err, "\r\x1b[2K{}: {what}", self.label);
            }
            Mode::Lines => {
                let _ = writeln!(err, "{}: {what}", self.label);
            }
        }
    }

    /// Ends the bar line (a terminal) so the summary starts on its own
    /// line; without a terminal, says where it ended (`100% ...`) unless the
    /// last line already did.
    pub fn finish(&mut self) {
        match self.mode {
            Mode::Bar => {
                self.draw_bar();
                let _ = writeln!(std::io::stderr());
            }
            Mode::Lines if self.done > self.last_line_at => {
                self.last_line_at = self.done;
                let _ = writeln!(std::io::stderr(), "{}: {}", self.label, self.status());
            }
            Mode::Lines | Mode::Silent => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(16 << 30), "16.0 GiB");
        assert_eq!(duration(Duration::from_secs(3723)), "1h02m03s");
        assert_eq!(duration(Duration::from_secs(83)), "1m23s");
    }

    #[test]
    fn lines_are_bounded() {
        let mut p = Progress::with("capture", Mode::Silent, None);
        p.mode = Mode::Lines;
        for _ in 0..1000 {
            p.advance(1 << 30);
        }
        assert_eq!(p.lines, MAX_LINES);
    }
}
