//! The CPU runtime: what the CPU backend needs to know about the host — how many threads the hot loops
//! may use and how large one tensor may be. It knows nothing of models or diffusion; the kernels
//! themselves are the `ops/<family>/cpu.rs` files, beside the GPU drivers.
//!
//! Natively an op on host tensors computes when it is called (the app runs a CPU step on a thread of
//! its own), so a "submission" is a no-op and a readback is ready at once. In the browser, where the
//! page has one thread, ops are recorded instead and run a slice per frame ([`queue`]).

pub mod alloc;
pub mod gemm;
pub mod math;
pub mod parallel;
pub(crate) mod queue;
#[cfg(not(target_arch = "wasm32"))]
pub mod transpose;

use std::sync::Arc;

/// How the CPU backend runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuOptions {
    /// Threads for the GEMM and the loops ([`parallel`]), one rayon pool for both; `None` = rayon's
    /// default (`RAYON_NUM_THREADS`, else every core the OS grants this process). The pool is
    /// process-wide: the first [`Cpu`] sizes it.
    pub threads: Option<usize>,
    /// Record ops and run them when their results are read, a slice per readback poll
    /// ([`queue`]), instead of computing each op when it is called. The page's default.
    pub deferred: bool,
}

// Derivable natively only: the page defers.
#[allow(clippy::derivable_impls)]
impl Default for CpuOptions {
    fn default() -> Self {
        CpuOptions {
            threads: None,
            deferred: cfg!(target_arch = "wasm32"),
        }
    }
}

struct Inner {
    threads: usize,
    /// Recorded ops, when deferred.
    queue: Option<queue::Queue>,
}

/// A handle to the CPU backend; cheap to clone.
#[derive(Clone)]
pub struct Cpu(Arc<Inner>);

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cpu({} threads)", self.0.threads)
    }
}

impl PartialEq for Cpu {
    fn eq(&self, other: &Cpu) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The largest tensor the CPU backend allocates, in bytes: kernels index with u32 (the same rule as
/// on the GPU, so a model that runs on one backend runs on the other).
pub const MAX_TENSOR_BYTES: u64 = 4 * (u32::MAX as u64);

impl Cpu {
    pub fn new(opts: &CpuOptions) -> Cpu {
        let threads = parallel::init_pool(opts.threads);
        Cpu(Arc::new(Inner {
            threads,
            queue: opts.deferred.then(queue::Queue::default),
        }))
    }

    /// Ops are recorded and run when read ([`CpuOptions::deferred`]).
    pub fn deferred(&self) -> bool {
        self.0.queue.is_some()
    }

    /// Run `job` now, or queue it when deferred.
    pub(crate) fn record(&self, job: queue::Job) -> crate::Result<()> {
        match &self.0.queue {
            Some(q) => q.push(job),
            None => (job.run)(),
        }
    }

    /// Run every recorded op (before host memory is read directly); reports a failed op once.
    pub fn flush(&self) -> crate::Result<()> {
        match &self.0.queue {
            Some(q) => q.flush(),
            None => Ok(()),
        }
    }

    /// Run one frame's share of the recorded ops (a readback poll); `Ok(true)` once none is left.
    pub fn run_slice(&self) -> crate::Result<bool> {
        match &self.0.queue {
            Some(q) => q.run_slice(),
            None => Ok(true),
        }
    }

    /// A new frame of the page begins: the next readback poll starts that frame's slice of the
    /// recorded ops ([`queue::Queue::run_slice`]).
    pub fn new_frame(&self) {
        if let Some(q) = &self.0.queue {
            q.new_frame();
        }
    }

    /// Run recorded ops for about `budget`; `Ok(true)` once none is left.
    pub fn run_for(&self, budget: web_time::Duration) -> crate::Result<bool> {
        match &self.0.queue {
            Some(q) => q.run_for(budget),
            None => Ok(true),
        }
    }

    /// Threads the hot loops may use.
    pub fn threads(&self) -> usize {
        self.0.threads
    }

    /// A one-line description for `info`, the app and bench records.
    pub fn describe(&self) -> String {
        format!(
            "CPU ({} {}, GEMM {}, {} thread{}{})",
            std::env::consts::ARCH,
            simd_name(),
            gemm::kernel_name(),
            self.0.threads,
            if self.0.threads == 1 { "" } else { "s" },
            if cfg!(target_arch = "wasm32") {
                ", WebAssembly"
            } else {
                ""
            }
        )
    }
}

/// The widest vector extension the GEMM can use on this machine (for the description only).
fn simd_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2+FMA";
        }
        "SSE2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(target_arch = "wasm32")]
    {
        if cfg!(target_feature = "simd128") {
            "SIMD128"
        } else {
            "scalar"
        }
    }
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "wasm32"
    )))]
    {
        "scalar"
    }
}
