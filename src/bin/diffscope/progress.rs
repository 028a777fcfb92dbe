//! A long command's progress on the terminal: one line rewritten in place — step k of N, steps per
//! second, time left — and nothing at all when stderr is not a terminal (a pipe or a log file), so
//! scripted runs stay quiet.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    /// Steps in all (a loop that learns it late may set it).
    pub total: usize,
    start: Instant,
    last: Option<Instant>,
    on: bool,
}

impl Progress {
    /// Progress of `total` steps of `what` (shown only on a terminal).
    pub fn new(what: impl Into<String>, total: usize) -> Progress {
        Progress {
            what: what.into(),
            total,
            start: Instant::now(),
            last: None,
            on: std::io::stderr().is_terminal(),
        }
    }

    /// `done` steps of the total are finished (redraws at most ten times a second, and at the end).
    pub fn update(&mut self, done: usize) {
        if !self.on {
            return;
        }
        let now = Instant::now();
        let finished = done >= self.total;
        if !finished
            && self
                .last
                .is_some_and(|l| now - l < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        let secs = (now - self.start).as_secs_f64();
        let rate = done as f64 / secs.max(1e-9);
        let left = if done > 0 {
            (self.total - done.min(self.total)) as f64 / rate
        } else {
            f64::NAN
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: step {done}/{} · {rate:.1} steps/s · {} left   ",
            self.what,
            self.total,
            clock(left)
        );
        if finished {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

/// m:ss, or "?" before the first step.
fn clock(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".into();
    }
    let s = secs.round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}
