//! Counters that benches and tests read to prove the runtime's promises (one submission per step, no
//! buffer creation in steady state, no readback unless a view asks).

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub submissions: AtomicU64,
    pub dispatches: AtomicU64,
    pub buffers_created: AtomicU64,
    pub bytes_uploaded: AtomicU64,
    pub bytes_read_back: AtomicU64,
    pub pipelines_created: AtomicU64,
    pub bind_groups_created: AtomicU64,
}

/// A snapshot of the runtime counters. Subtract two snapshots to count what happened in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CounterSnapshot {
    pub submissions: u64,
    pub dispatches: u64,
    pub buffers_created: u64,
    pub bytes_uploaded: u64,
    pub bytes_read_back: u64,
    pub pipelines_created: u64,
    pub bind_groups_created: u64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            submissions: g(&self.submissions),
            dispatches: g(&self.dispatches),
            buffers_created: g(&self.buffers_created),
            bytes_uploaded: g(&self.bytes_uploaded),
            bytes_read_back: g(&self.bytes_read_back),
            pipelines_created: g(&self.pipelines_created),
            bind_groups_created: g(&self.bind_groups_created),
        }
    }
}

impl CounterSnapshot {
    /// Each counter divided by `n` (rounded down): the cost of one of `n` equal steps.
    pub fn per_step(self, n: usize) -> CounterSnapshot {
        let per = |v: u64| v / n.max(1) as u64;
        CounterSnapshot {
            submissions: per(self.submissions),
            dispatches: per(self.dispatches),
            buffers_created: per(self.buffers_created),
            bytes_uploaded: per(self.bytes_uploaded),
            bytes_read_back: per(self.bytes_read_back),
            pipelines_created: per(self.pipelines_created),
            bind_groups_created: per(self.bind_groups_created),
        }
    }
}

impl std::ops::Sub for CounterSnapshot {
    type Output = CounterSnapshot;
    fn sub(self, o: Self) -> Self {
        CounterSnapshot {
            submissions: self.submissions - o.submissions,
            dispatches: self.dispatches - o.dispatches,
            buffers_created: self.buffers_created - o.buffers_created,
            bytes_uploaded: self.bytes_uploaded - o.bytes_uploaded,
            bytes_read_back: self.bytes_read_back - o.bytes_read_back,
            pipelines_created: self.pipelines_created - o.pipelines_created,
            bind_groups_created: self.bind_groups_created - o.bind_groups_created,
        }
    }
}
