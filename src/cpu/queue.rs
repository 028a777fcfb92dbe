//! Recorded host ops, for a CPU backend that must not hold its thread for a whole step.
//!
//! In the browser the page has one thread: an op that computed when it was called would freeze the
//! page for the whole reverse step (a UNet step at batch 4 is ~200 ms there). So there the CPU backend
//! *records* ops as the GPU does — an op checks its inputs, makes its output tensor and queues a job —
//! and the frame loop's readback polls run the queue a slice at a time ([`Queue::run_for`]), so a step
//! spreads over frames and the page keeps drawing. Anything that reads host memory directly
//! (`Tensor::host`) first runs what is queued, so results are the same as computing at once.
//!
//! A job that fails leaves its outputs and every later job's outputs zero-filled (so no kernel ever
//! reads a buffer shorter than its shape) and the error is reported by the next flush or readback.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::sync::Mutex;
use web_time::{Duration, Instant};

/// A recorded op's kernel over the tensors it captured (`Send`, as the backend and models are).
pub(crate) type Run = Box<dyn FnOnce() -> Result<()> + Send>;

/// What a job does instead when it cannot run: zero-fill the outputs it would have made, so that
/// nothing reads a buffer shorter than its shape.
pub(crate) type Skip = Box<dyn FnOnce() + Send>;

/// One recorded op: what it runs, and what to do if it cannot run.
pub(crate) struct Job {
    pub run: Run,
    pub skip: Option<Skip>,
}

#[derive(Default)]
pub(crate) struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    /// Held while a job runs: jobs run one at a time in the order they were recorded, even when
    /// several threads read results (natively the backend is shared between threads), so no job
    /// starts before the ones recorded ahead of it have finished.
    turn: Mutex<()>,
    /// The first error since the last report.
    failed: Mutex<Option<Error>>,
    /// The frame's slice: when the last one ended, and until when this frame's may run.
    slice: Mutex<Slice>,
}

#[derive(Default)]
struct Slice {
    /// When the last [`Queue::run_slice`] ended.
    last_end: Option<Instant>,
    /// The end of this frame's slice, once one has started; cleared by [`Queue::new_frame`].
    deadline: Option<Instant>,
}

/// The frame period the page's slices aim at (30 frames a second while a step computes) ...
const FRAME: Duration = Duration::from_millis(33);
/// ... but a slice computes at least this long, and at least as long as the frame spent on
/// everything else, so a slow renderer (a software WebGL) costs the step at most half its pace ...
const MIN_SLICE: Duration = Duration::from_millis(8);
/// ... and at most this long.
const MAX_SLICE: Duration = Duration::from_millis(100);

/// How long the next slice runs, given how long the frame spent elsewhere since the last slice
/// (`None` when there was no recent slice); `None` when a slice already ran in this frame.
fn slice_budget(elsewhere: Option<Duration>) -> Option<Duration> {
    match elsewhere {
        // Several readbacks poll in one frame: the first one's slice is the frame's.
        Some(e) if e < Duration::from_millis(1) => None,
        Some(e) if e < Duration::from_secs(1) => {
            Some(FRAME.saturating_sub(e).max(e).clamp(MIN_SLICE, MAX_SLICE))
        }
        _ => Some(FRAME),
    }
}

impl Slice {
    /// How long a poll at `now` may run: the rest of this frame's slice, or a new slice's budget
    /// when none has started since [`Queue::new_frame`] (or the last one has ended).
    fn next(&mut self, now: Instant) -> Option<Duration> {
        match self.deadline {
            Some(end) if now < end => Some(end.duration_since(now)),
            _ => {
                let budget = slice_budget(self.last_end.map(|t| now.duration_since(t)));
                self.deadline = budget.map(|b| now + b);
                budget
            }
        }
    }

    fn new_frame(&mut self) {
        self.deadline = None;
    }
}

fn poisoned() -> Error {
    Error::Internal("the CPU backend's op queue was poisoned by a panic".into())
}

impl Queue {
    pub fn push(&self, job: Job) -> Result<()> {
        self.jobs.lock().map_err(|_| poisoned())?.push_back(job);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.lock().map(|q| q.is_empty()).unwrap_or(true)
    }

    /// Run one job; `Ok(false)` when there was none.
    fn run_one(&self) -> Result<bool> {
        let _turn = self.turn.lock().map_err(|_| poisoned())?;
        // The queue itself is free while the job runs (recording goes on from other threads).
        let Some(job) = self.jobs.lock().map_err(|_| poisoned())?.pop_front() else {
            return Ok(false);
        };
        let Job { run, skip } = job;
        if let Err(e) = run() {
            skip.into_iter().for_each(|s| s());
            // Every later job computes from this one's (zero) output: skip them all.
            let rest: Vec<Job> = self
                .jobs
                .lock()
                .map_err(|_| poisoned())?
                .drain(..)
                .collect();
            for j in rest {
                j.skip.into_iter().for_each(|s| s());
            }
            let mut failed = self.failed.lock().map_err(|_| poisoned())?;
            if failed.is_none() {
                *failed = Some(e);
            }
        }
        Ok(true)
    }

    /// The error of a failed job since the last report, once.
    fn report(&self) -> Result<()> {
        match self.failed.lock().map_err(|_| poisoned())?.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Run every queued job.
    pub fn flush(&self) -> Result<()> {
        while self.run_one()? {}
        self.report()
    }

    /// One frame's share of the queued jobs (the readback polls' pace: see [`slice_budget`]);
    /// `Ok(true)` once the queue is empty. The first poll of a frame starts its slice; later polls
    /// in the frame go on until the slice's end, so when one step's jobs finish early, the next
    /// step recorded in the same frame gets the rest of it (a quick model is not held to one step
    /// per frame by a slow renderer).
    pub fn run_slice(&self) -> Result<bool> {
        let budget = self
            .slice
            .lock()
            .map_err(|_| poisoned())?
            .next(Instant::now());
        let Some(budget) = budget else {
            return Ok(self.is_empty());
        };
        let done = self.run_for(budget);
        self.slice.lock().map_err(|_| poisoned())?.last_end = Some(Instant::now());
        done
    }

    /// A new frame begins: its first poll starts a new slice (see [`Queue::run_slice`]).
    pub fn new_frame(&self) {
        if let Ok(mut s) = self.slice.lock() {
            s.new_frame();
        }
    }

    /// Run queued jobs for about `budget` (at least one); `Ok(true)` once the queue is empty.
    pub fn run_for(&self, budget: Duration) -> Result<bool> {
        let start = Instant::now();
        loop {
            if !self.run_one()? {
                self.report()?;
                return Ok(true);
            }
            if start.elapsed() >= budget {
                self.report()?;
                return Ok(self.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_fill_the_frame_and_keep_half_of_a_slow_one() {
        let ms = Duration::from_millis;
        // A fast renderer: the slice fills the frame up to 33 ms.
        assert_eq!(slice_budget(Some(ms(4))), Some(ms(29)));
        // A slow one: as long as the rest of the frame (half the pace), within 8..100 ms.
        assert_eq!(slice_budget(Some(ms(60))), Some(ms(60)));
        assert_eq!(slice_budget(Some(ms(300))), Some(ms(100)));
        assert_eq!(slice_budget(Some(ms(20))), Some(ms(20)));
        // A second poll in the same frame runs nothing; after a pause, one frame's worth.
        assert_eq!(slice_budget(Some(Duration::from_micros(200))), None);
        assert_eq!(slice_budget(None), Some(FRAME));
        assert_eq!(slice_budget(Some(ms(5000))), Some(FRAME));
    }

    /// Later polls in a frame go on until its slice's end and then run nothing; the next frame
    /// starts a new slice.
    #[test]
    fn polls_in_one_frame_share_its_slice() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut s = Slice {
            last_end: Some(t0),
            deadline: None,
        };
        // The frame spent 60 ms elsewhere: a 60 ms slice from 60 to 120 ms.
        assert_eq!(s.next(t0 + ms(60)), Some(ms(60)));
        // A step's jobs ended at 100 ms; the next step's poll at 101 ms gets the 19 left.
        s.last_end = Some(t0 + ms(100));
        assert_eq!(s.next(t0 + ms(101)), Some(ms(19)));
        // Past the slice's end, a poll in the same frame runs nothing.
        s.last_end = Some(t0 + ms(121));
        assert_eq!(s.next(t0 + ms(121) + Duration::from_micros(300)), None);
        // The next frame, after 70 ms of drawing, starts a slice of its own ...
        assert_eq!(s.next(t0 + ms(191)), Some(ms(70)));
        // ... and so does a frame that begins while the last slice would still run.
        s.last_end = Some(t0 + ms(200));
        s.new_frame();
        assert_eq!(s.next(t0 + ms(205)), Some(ms(28)));
    }

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A failed job skips itself and every job after it (their skips run, their bodies do not), the
    /// error is reported once, and the queue works again afterwards.
    #[test]
    fn a_failed_job_skips_the_rest_and_reports_once() {
        let q = Queue::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let skipped = Arc::new(AtomicUsize::new(0));
        let job = |fail: bool| {
            let (r, s) = (ran.clone(), skipped.clone());
            Job {
                run: Box::new(move || {
                    if fail {
                        return Err(Error::Invalid("bad input".into()));
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }),
                skip: Some(Box::new(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                })),
            }
        };
        for fail in [false, true, false, false] {
            q.push(job(fail)).unwrap();
        }
        let e = q.flush().unwrap_err();
        assert!(e.to_string().contains("bad input"), "{e}");
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(skipped.load(Ordering::SeqCst), 3);
        assert!(q.is_empty());
        q.flush().unwrap();
        q.push(job(false)).unwrap();
        assert!(q.run_for(Duration::ZERO).unwrap());
        assert_eq!(ran.load(Ordering::SeqCst), 2);
    }
}
