//! How smooth the UI is: the interval between frames and the time the app's own work takes in each
//! (building the UI, collecting readbacks, recording the next step — never waiting for the GPU), over
//! the last few hundred frames. Shown in the UI and in the status JSON the self-checks print.

use std::collections::VecDeque;
use web_time::Instant;

const KEEP: usize = 240;

#[derive(Default)]
pub struct FrameStats {
    /// Milliseconds between the starts of consecutive frames.
    intervals: VecDeque<f32>,
    /// Milliseconds the app spent in each frame.
    work: VecDeque<f32>,
    /// When the last frame started, if a run was going (the next one was asked for at once).
    last_busy_start: Option<Instant>,
}

/// Median, 95th percentile and maximum, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub p50: f32,
    pub p95: f32,
    pub max: f32,
}

fn push(q: &mut VecDeque<f32>, v: f32) {
    if q.len() == KEEP {
        q.pop_front();
    }
    q.push_back(v);
}

fn spread(q: &VecDeque<f32>) -> Option<Spread> {
    if q.is_empty() {
        return None;
    }
    let mut v: Vec<f32> = q.iter().copied().collect();
    v.sort_by(f32::total_cmp);
    let at = |p: f32| v[((v.len() - 1) as f32 * p).round() as usize];
    Some(Spread {
        p50: at(0.5),
        p95: at(0.95),
        max: v[v.len() - 1],
    })
}

impl FrameStats {
    /// A frame starts: returns its start time for [`FrameStats::end`].
    pub fn begin(&mut self) -> Instant {
        let now = Instant::now();
        // Only intervals after a busy frame count: an idle UI repaints only on input, and the wait
        // for it is not a slow frame.
        if let Some(prev) = self.last_busy_start.take() {
            push(
                &mut self.intervals,
                now.duration_since(prev).as_secs_f32() * 1e3,
            );
        }
        now
    }

    /// The frame that started at `started` is done; `busy`: a run is going, so the next frame follows
    /// at once.
    pub fn end(&mut self, started: Instant, busy: bool) {
        push(&mut self.work, started.elapsed().as_secs_f32() * 1e3);
        self.last_busy_start = busy.then_some(started);
    }

    pub fn interval(&self) -> Option<Spread> {
        spread(&self.intervals)
    }

    pub fn work(&self) -> Option<Spread> {
        spread(&self.work)
    }

    pub fn json(&self) -> serde_json::Value {
        let s = |x: Option<Spread>| {
            x.map_or(
                serde_json::Value::Null,
                |s| serde_json::json!({"p50_ms": s.p50, "p95_ms": s.p95, "max_ms": s.max}),
            )
        };
        serde_json::json!({
            "frames": self.work.len(),
            "interval": s(self.interval()),
            "app_work": s(self.work()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_are_order_statistics_of_the_last_frames() {
        let mut q = VecDeque::new();
        for v in 1..=100 {
            push(&mut q, v as f32);
        }
        assert_eq!(
            spread(&q),
            Some(Spread {
                p50: 51.0,
                p95: 95.0,
                max: 100.0
            })
        );
        for _ in 0..KEEP {
            push(&mut q, 2.0);
        }
        assert_eq!(q.len(), KEEP);
        assert_eq!(spread(&q).map(|s| s.max), Some(2.0));
        assert_eq!(spread(&VecDeque::new()), None);
    }
}
