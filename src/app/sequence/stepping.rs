//! The engine-facing part of a sequence run (D3PM words, multinomial DNA) in the app: start from the
//! prior, record one reverse step and submit it with its readbacks, poll them without waiting, and
//! fork from a host copy. Nothing here touches the UI; everything the app does with a sequence
//! model's sampling loop goes through [`SeqRun`].

use std::sync::Arc;

use super::super::worker::Stepping;
use crate::pipelines::sequence::run::SequenceRun;
use crate::pipelines::sequence::SequenceModel;
use crate::process::discrete::{Padding, Unmasking};
use crate::tensor::{Tensor, TensorReadback};

pub struct SeqFrame {
    pub ids: Vec<u32>,
    /// The distribution this step drew from, p(x_(t−1) | x_t), over every class at every position:
    /// `[n, L, K]` (none for x_T).
    pub probs: Option<Vec<f32>>,
    /// The model's prediction of the clean tokens at this step, p_θ(x0 | x_t), `[n, L, K]`.
    pub x0_probs: Option<Vec<f32>>,
}

impl SeqFrame {
    /// The probability of the token shown at flat position `i` (0 for x_T).
    pub fn prob_of_shown(&self, i: usize, k: usize) -> f32 {
        let id = self.ids.get(i).copied().unwrap_or(0) as usize;
        self.probs
            .as_ref()
            .and_then(|p| p.get(i * k + id))
            .copied()
            .unwrap_or(0.0)
    }
}

/// Readbacks in flight for one frame: the tokens and (after x_T) the step's two sets of logits, with
/// what has arrived so far.
struct PendingTokens {
    ids: TensorReadback,
    logits: Vec<TensorReadback>,
    got_ids: Option<Vec<u32>>,
    got: Vec<Option<Vec<f32>>>,
}

/// A frame's tokens and its logits (the step's, then the model's), once all have arrived.
type Arrived = (Vec<u32>, Vec<Vec<f32>>);

impl PendingTokens {
    fn new(ids: TensorReadback, logits: Vec<TensorReadback>) -> PendingTokens {
        let got = logits.iter().map(|_| None).collect();
        PendingTokens {
            ids,
            logits,
            got_ids: None,
            got,
        }
    }

    /// Everything, once it has all arrived.
    fn poll(&mut self) -> crate::Result<Option<Arrived>> {
        if self.got_ids.is_none() {
            if let Some(r) = self.ids.try_u32() {
                self.got_ids = Some(r?);
            }
        }
        for (rb, slot) in self.logits.iter_mut().zip(self.got.iter_mut()) {
            if slot.is_none() {
                if let Some(r) = rb.try_f32() {
                    *slot = Some(r?);
                }
            }
        }
        if self.got_ids.is_none() || self.got.iter().any(Option::is_none) {
            return Ok(None);
        }
        let ids = self.got_ids.take().unwrap_or_default();
        Ok(Some((ids, self.got.drain(..).flatten().collect())))
    }
}

/// A sequence run in the app: the engine's [`SequenceRun`] and every frame so far on the host.
pub struct SeqRun {
    pub n: usize,
    /// The state after the newest launched step.
    pub run: SequenceRun,
    /// A step computing off the UI thread (CPU backend): the run after it, with its readbacks.
    computing: Stepping<SequenceRun, PendingTokens>,
    pending: Option<PendingTokens>,
    pub frames: Vec<SeqFrame>,
    pub started: web_time::Instant,
}

impl SeqRun {
    pub fn start(
        m: &SequenceModel,
        n: usize,
        seed: u64,
        temperature: f32,
    ) -> crate::Result<SeqRun> {
        let run = SequenceRun::start(m, n, seed, temperature)?;
        let rx = run.state().read();
        Ok(SeqRun {
            n,
            run,
            computing: Stepping::default(),
            pending: Some(PendingTokens::new(rx, Vec::new())),
            frames: Vec::new(),
            started: web_time::Instant::now(),
        })
    }

    /// A run of `n` copies of `x0` (token ids of one sequence) from step `k`, the first at or below
    /// the input's timestep: each copy is `x0` through its own host draw of q(x_t | x0), and the
    /// frames before `k` show the forward process at their timesteps (no prediction), so the
    /// timeline scrubs back into noise as for a Gaussian input.
    pub fn from_input(
        m: &SequenceModel,
        n: usize,
        x0: &[u32],
        k: usize,
        seed: u64,
        temperature: f32,
    ) -> crate::Result<SeqRun> {
        let ts = m.process.timesteps();
        // One draw per copy and timestep: copy c of step j is keyed by (seed + c, t_j).
        let draw = |t: Option<usize>| -> Vec<u32> {
            (0..n as u64)
                .flat_map(|c| match t {
                    Some(t) => super::input::forward_on_host(
                        m,
                        x0,
                        super::input::alpha_bar(m, t),
                        seed.wrapping_add(c),
                        t,
                    ),
                    None => x0.to_vec(),
                })
                .collect()
        };
        let frames: Vec<SeqFrame> = (0..=k.min(ts.len()))
            .map(|j| SeqFrame {
                ids: draw(ts.get(j).copied()),
                probs: None,
                x0_probs: None,
            })
            .collect();
        let last = frames.last().map(|f| f.ids.clone()).unwrap_or_default();
        let run = SequenceRun::resume(m, &last, k.min(ts.len()), seed, temperature)?;
        Ok(SeqRun {
            n,
            run,
            computing: Stepping::default(),
            pending: None,
            frames,
            started: web_time::Instant::now(),
        })
    }

    /// The same run revealing masked positions in `order` (an error for a non-absorbing model) and
    /// holding padding where `padding` says.
    pub fn drawing(
        mut self,
        m: &SequenceModel,
        (order, padding): (Unmasking, Padding),
    ) -> crate::Result<SeqRun> {
        self.run = self.run.with_order(m, order)?.with_padding(padding);
        Ok(self)
    }

    pub fn total(&self) -> usize {
        self.run.steps() + 1
    }

    pub fn done(&self) -> bool {
        self.frames.len() >= self.total()
    }

    /// Steps started: recorded frames plus the one in flight.
    pub fn launched(&self) -> usize {
        self.frames.len() + (self.computing.busy() || self.pending.is_some()) as usize
    }

    /// Continue from frame `at` with `seed` on `m` (the open model, or the same one reloaded on a new
    /// device): later frames are dropped and the run goes on from that frame's tokens. A new seed
    /// draws a different future; the run's own seed continues it exactly. Changes nothing when it
    /// fails.
    pub fn fork(&mut self, m: &SequenceModel, at: usize, seed: u64) -> crate::Result<()> {
        let f = self
            .frames
            .get(at)
            .ok_or_else(|| crate::Error::NotReady(format!("no frame {at} to fork from")))?;
        self.run = SequenceRun::resume(m, &f.ids, at, seed, self.run.temperature)?
            .with_order(m, self.run.order)?
            .with_padding(self.run.padding);
        self.frames.truncate(at + 1);
        self.computing.clear();
        self.pending = None;
        self.started = web_time::Instant::now();
        Ok(())
    }

    /// The timestep the viewed frame is at (x_T is frame 0).
    pub fn t_of(&self, frame: usize) -> Option<usize> {
        self.run.t_of(frame)
    }

    pub fn pump(&mut self, m: &Arc<SequenceModel>, play: bool) -> crate::Result<()> {
        if self.computing.land(&mut self.run, &mut self.pending)? {
            return Ok(());
        }
        if let Some(p) = &mut self.pending {
            // A failed readback is dropped: polling it again would only say "already taken".
            let polled = p.poll();
            if polled.is_err() {
                self.pending = None;
            }
            let Some((ids, logits)) = polled? else {
                return Ok(());
            };
            let k = m.process.k();
            let mut probs = logits.iter().map(|l| softmax_rows(l, k));
            let (probs, x0_probs) = (probs.next(), probs.next());
            self.frames.push(SeqFrame {
                ids,
                probs,
                x0_probs,
            });
            self.pending = None;
        }
        if !play || self.done() {
            return Ok(());
        }
        debug_assert_eq!(self.run.steps_done(), self.frames.len() - 1);
        let (mut run, model) = (self.run.clone(), Arc::clone(m));
        let device = crate::nn::Denoiser::device(&m.denoiser).clone();
        let step = move || {
            let out = run.step(&model)?;
            let mut it = Tensor::read_many(&[run.state(), &out.logits, &out.x0_logits]).into_iter();
            let rx = it
                .next()
                .ok_or_else(|| crate::Error::Readback("no readback".into()))?;
            Ok((run, PendingTokens::new(rx, it.collect())))
        };
        self.computing
            .launch(&device, step, &mut self.run, &mut self.pending)
    }
}

/// Softmax of each `k`-wide row of logits.
fn softmax_rows(logits: &[f32], k: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(k.max(1)) {
        let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = row.iter().map(|v| (v - mx).exp()).sum();
        out.extend(row.iter().map(|v| (v - mx).exp() / z));
    }
    out
}
