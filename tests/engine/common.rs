#![allow(dead_code)]
//! Shared test support: one GPU for the whole test process, seeded random data, closeness checks.

use diffscope::{Cpu, CpuOptions, Device, Gpu, GpuOptions};
use std::sync::OnceLock;

pub fn gpu() -> Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        Gpu::new(&GpuOptions::default())
            .expect("tests need a GPU adapter (install mesa-vulkan-drivers)")
    })
    .clone()
}

/// The shared GPU as a [`Device`] (what model loaders and pipelines take).
pub fn device() -> Device {
    Device::Gpu(gpu())
}

/// The CPU backend (one per test process).
pub fn cpu() -> Device {
    static CPU: OnceLock<Cpu> = OnceLock::new();
    Device::Cpu(CPU.get_or_init(|| Cpu::new(&CpuOptions::default())).clone())
}

/// Both backends: kernel and model tests run on each.
pub fn backends() -> [Device; 2] {
    [device(), cpu()]
}

/// Run a test body on each backend in turn, saying which on stderr (shown when the test fails).
pub fn on_each_backend(body: impl Fn(Device)) {
    for d in backends() {
        eprintln!("-- on {}", d.describe());
        body(d);
    }
}

/// A tiny deterministic generator for test data (not the product's Philox).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Elementwise closeness: |got − want| ≤ atol + rtol·|want| for every element, with a message that
/// names the worst element. A non-finite value matches only the same one: NaN where the reference
/// has NaN, +∞ where it has +∞, −∞ where it has −∞.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0usize, 0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !(g.is_finite() && w.is_finite()) {
            let same = (g.is_nan() && w.is_nan()) || g == w;
            assert!(same, "{what}: element {i} is {g}, want {w}");
            continue;
        }
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst.1 || (i == 0 && excess > 0.0) {
            worst = (i, excess);
        }
    }
    let (i, e) = worst;
    assert!(
        e <= 0.0,
        "{what}: element {i}: got {}, want {} (|diff| {:e} > atol {atol:e} + rtol {rtol:e}·|want|)",
        got[i],
        want[i],
        (got[i] - want[i]).abs()
    );
}

/// Relative L2 error ‖got − want‖ / ‖want‖ (for chains of matmuls and whole models).
pub fn rel_l2(got: &[f32], want: &[f32]) -> f64 {
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| ((g - w) as f64).powi(2))
        .sum();
    let den: f64 = want.iter().map(|&w| (w as f64).powi(2)).sum();
    (num / den.max(1e-30)).sqrt()
}

/// Shapes that are not multiples of any tile, plus degenerate ones.
pub const ODD_SIZES: &[usize] = &[1, 7, 13, 29, 64, 255, 257];

/// `[B, L, K]` shapes for the per-sequence sampling kernels (un-masking, the pad suffix): one
/// position, a words batch, long rows, sizes that are no tile multiple, many rows of few classes.
pub const SEQUENCE_SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 2),
    (3, 12, 28),
    (7, 50, 5),
    (33, 13, 29),
    (300, 7, 3),
    (2, 257, 11),
];
