//! The driver's job progress: Spark's console progress bar on a terminal
//! (`[Stage 0:=====>     (45 + 4) / 100]`: done, running, total), plain log lines at every
//! tenth of a stage otherwise. Rendering is pure; [`Progress`] decides what to show.

use std::collections::BTreeMap;
use std::io::Write;

use super::message::StageId;
use super::scheduler::StageProgress;

/// Spark's bar for each stage, side by side in `width` columns (at most three stages).
pub fn render_bar(stages: &[StageProgress], width: usize) -> String {
    let stages = &stages[..stages.len().min(3)];
    if stages.is_empty() {
        return String::new();
    }
    let width = width / stages.len();
    let mut out = String::new();
    for s in stages {
        let total = s.total.max(1) as usize;
        let header = format!("[Stage {}:", s.stage);
        let tailer = format!("({} + {}) / {}]", s.done, s.running, s.total);
        let w = width.saturating_sub(header.len() + tailer.len());
        out.push_str(&header);
        if w > 0 {
            let percent = w * (s.done as usize).min(total) / total;
            for i in 0..w {
                out.push(match i.cmp(&percent) {
                    std::cmp::Ordering::Less => '=',
                    std::cmp::Ordering::Equal => '>',
                    std::cmp::Ordering::Greater => ' ',
                });
            }
        }
        out.push_str(&tailer);
    }
    out
}

/// The width of the bar: `COLUMNS` as Spark reads it, else stderr's terminal, else 80.
pub fn terminal_width() -> usize {
    if let Some(c) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
    {
        return c;
    }
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct; fd 2 is stderr.
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 0 {
        usize::from(ws.ws_col)
    } else {
        80
    }
}

/// Shows progress on stderr: a bar redrawn in place on a terminal, a log line per tenth
/// of each stage otherwise.
pub struct Progress {
    tty: bool,
    width: usize,
    /// Length of the bar currently on screen (0: none).
    shown: usize,
    /// Tenths already logged, per stage (plain mode).
    logged: BTreeMap<StageId, u32>,
}

impl Progress {
    pub fn new(tty: bool, width: usize) -> Self {
        Self {
            tty,
            width: width.max(20),
            shown: 0,
            logged: BTreeMap::new(),
        }
    }

    /// The plain-mode lines due for `stages` (each stage's tenths crossed since last time).
    pub fn plain_lines(&mut self, stages: &[StageProgress]) -> Vec<String> {
        let mut lines = Vec::new();
        for s in stages {
            let tenth = if s.total == 0 {
                10
            } else {
                (u64::from(s.done) * 10 / u64::from(s.total)) as u32
            };
            let last = self.logged.entry(s.stage).or_insert(0);
            if tenth > *last {
                *last = tenth;
                lines.push(format!(
                    "Stage {}: {}/{} tasks done, {} running",
                    s.stage, s.done, s.total, s.running
                ));
            }
        }
        let active: Vec<StageId> = stages.iter().map(|s| s.stage).collect();
        self.logged.retain(|id, _| active.contains(id));
        lines
    }

    /// Called periodically with the active stages.
    pub fn update(&mut self, stages: &[StageProgress]) {
        if !self.tty {
            for line in self.plain_lines(stages) {
                tracing::info!("{line}");
            }
            return;
        }
        if stages.is_empty() {
            self.clear();
            return;
        }
        let bar = render_bar(stages, self.width);
        let pad = self.shown.saturating_sub(bar.len());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{bar}{}", " ".repeat(pad));
        let _ = err.flush();
        self.shown = bar.len();
    }

    /// Erases the bar (before other output, and when no job runs).
    pub fn clear(&mut self) {
        if self.tty && self.shown > 0 {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(self.shown));
            let _ = err.flush();
            self.shown = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(stage: StageId, done: u32, running: u32, total: u32) -> StageProgress {
        StageProgress {
            stage,
            done,
            running,
            total,
        }
    }

    #[test]
    fn bar_looks_like_sparks() {
        let bar = render_bar(&[p(0, 45, 4, 100)], 80);
        assert_eq!(bar.len(), 80);
        assert!(
            bar.starts_with("[Stage 0:=========================>"),
            "{bar}"
        );
        assert!(bar.ends_with(" (45 + 4) / 100]"), "{bar}");
        assert_eq!(
            render_bar(&[p(3, 0, 2, 4)], 30),
            "[Stage 3:>        (0 + 2) / 4]"
        );
        assert_eq!(render_bar(&[p(0, 4, 0, 4)], 24), "[Stage 0:===(4 + 0) / 4]");
        // Too narrow: header and counts only.
        assert_eq!(render_bar(&[p(0, 1, 1, 4)], 5), "[Stage 0:(1 + 1) / 4]");
        assert_eq!(render_bar(&[], 80), "");
    }

    #[test]
    fn several_stages_share_the_width() {
        let bar = render_bar(&[p(0, 1, 1, 2), p(1, 0, 2, 2)], 80);
        assert_eq!(bar.len(), 80);
        assert!(bar.contains("(1 + 1) / 2][Stage 1:"), "{bar}");
    }

    #[test]
    fn plain_lines_every_tenth() {
        let mut pr = Progress::new(false, 80);
        assert!(pr.plain_lines(&[p(0, 0, 4, 100)]).is_empty());
        assert!(pr.plain_lines(&[p(0, 9, 4, 100)]).is_empty());
        assert_eq!(
            pr.plain_lines(&[p(0, 10, 4, 100)]),
            vec!["Stage 0: 10/100 tasks done, 4 running"]
        );
        assert!(pr.plain_lines(&[p(0, 15, 4, 100)]).is_empty());
        // A jump over several tenths logs once.
        assert_eq!(pr.plain_lines(&[p(0, 55, 4, 100)]).len(), 1);
        assert_eq!(
            pr.plain_lines(&[p(0, 3, 0, 3)]),
            vec!["Stage 0: 3/3 tasks done, 0 running"]
        );
    }
}
