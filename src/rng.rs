//! Philox4x32-10, the counter-based generator behind every random draw in diffscope.
//!
//! A draw is a pure function of (seed, stream, substream, index): no state, no order dependence. The
//! same function runs in WGSL (`shaders/philox.wgsl`) and gives the same bits, so a trajectory replays
//! exactly on any device and can be checked on the CPU. By convention `stream` is the reverse-step
//! index and `substream` says what the draw is for ([`Substream`]); `index` is the element.
//!
//! Floats: `uniform = ((x >> 9) + 0.5) · 2⁻²³`, so u ∈ (0, 1) strictly and both `log u` and
//! `log(−log u)` are finite. Normals use Box–Muller on words 0 and 1; Gumbel is `−log(−log u)` on word 0.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// What a draw is for; keeps, say, the initial noise and the step noise of step 0 independent.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Substream {
    /// The initial state x_T (Gaussian noise or a prior draw).
    Init = 0,
    /// The noise added by a reverse step.
    StepNoise = 1,
    /// Gumbel noise for categorical sampling.
    Gumbel = 2,
    /// The forward process q(x_t | x0) in the explorer.
    Forward = 3,
    /// Anything else a caller needs (tests, benches).
    Other = 4,
    /// The coins that say how many masked positions a confidence-ordered step reveals.
    Reveal = 5,
    /// The noise that takes an inpainting run's known region to each step's timestep.
    Inpaint = 6,
    /// The Gumbel noise on a step's confidences that decides which masked positions it reveals
    /// (the annealed un-masking order).
    Choice = 7,
}

/// The Philox4x32 block function with 10 rounds.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for r in 0..10 {
        if r > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let p0 = (M0 as u64) * (c[0] as u64);
        let p1 = (M1 as u64) * (c[2] as u64);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// A keyed generator: `seed` picks the key, `(stream, substream)` a family of counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox {
    pub seed: u64,
    pub stream: u32,
    pub substream: u32,
}

impl Philox {
    pub fn new(seed: u64, stream: u32, substream: Substream) -> Self {
        Philox {
            seed,
            stream,
            substream: substream as u32,
        }
    }

    /// The Philox key `[seed_lo, seed_hi]`; every kernel's parameter block takes it from here, so the
    /// CPU and GPU split the seed the same way.
    pub fn key(&self) -> [u32; 2] {
        [self.seed as u32, (self.seed >> 32) as u32]
    }

    /// The four raw words for element `index`.
    pub fn words(&self, index: u32) -> [u32; 4] {
        philox4x32_10([index, self.stream, self.substream, 0], self.key())
    }

    pub fn uniform(&self, index: u32) -> f32 {
        to_uniform(self.words(index)[0])
    }

    pub fn normal(&self, index: u32) -> f32 {
        let w = self.words(index);
        box_muller(to_uniform(w[0]), to_uniform(w[1]))
    }

    pub fn gumbel(&self, index: u32) -> f32 {
        let u = self.uniform(index);
        -(-u.ln()).ln()
    }

    pub fn uniforms(&self, n: usize) -> Vec<f32> {
        (0..n as u32).map(|i| self.uniform(i)).collect()
    }
    pub fn normals(&self, n: usize) -> Vec<f32> {
        (0..n as u32).map(|i| self.normal(i)).collect()
    }
}

/// 23 high bits to a float strictly inside (0, 1), exactly representable, identical in WGSL.
pub fn to_uniform(x: u32) -> f32 {
    ((x >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

pub fn box_muller(u0: f32, u1: f32) -> f32 {
    (-2.0 * u0.ln()).sqrt() * (std::f32::consts::TAU * u1).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors from Random123 (kat_vectors, philox4x32 with 10 rounds).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniform_is_open_interval() {
        assert!(to_uniform(0) > 0.0);
        assert!(to_uniform(u32::MAX) < 1.0);
    }
}
