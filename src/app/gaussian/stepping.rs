//! The engine-facing part of a Gaussian run in the app: start from x_T, record one reverse step and
//! submit it with its readbacks, poll them without waiting, fork from a host copy, and resume on a new
//! device. Nothing here touches the UI; everything the app does with a Gaussian model's sampling loop
//! goes through [`Session`].

use std::sync::Arc;

use super::super::worker::Stepping;
use crate::pipelines::gaussian::run::GaussianRun;
use crate::pipelines::gaussian::GaussianModel;
use crate::process::gaussian::SampleSettings;
use crate::tensor::Device;
use crate::tensor::{Tensor, TensorReadback};
use crate::trajectory::{History, DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS};

/// The device a loaded model's tensors live on (the app's own).
pub(super) fn model_device(m: &GaussianModel) -> &Device {
    m.denoiser.device()
}

/// One recorded reverse step on the host: the state, and (for image models) what the network predicted
/// on the way there. Step 0 is x_T and has no prediction.
struct Frame {
    x: Vec<f32>,
    x0: Option<Vec<f32>>,
    eps: Option<Vec<f32>>,
}

impl Frame {
    /// One buffer for the history: x, then x0_pred and ε_pred when present (each as long as x).
    fn flatten(self) -> Vec<f32> {
        let mut v = self.x;
        v.extend(self.x0.unwrap_or_default());
        v.extend(self.eps.unwrap_or_default());
        v
    }
}

/// A history entry back as (x, x0_pred, ε_pred), given the length of x.
pub(super) fn split_frame(v: &[f32], per: usize) -> (&[f32], Option<&[f32]>, Option<&[f32]>) {
    let per = per.min(v.len()).max(1);
    let mut parts = v.chunks(per);
    (parts.next().unwrap_or(&[]), parts.next(), parts.next())
}

/// Readbacks of one step in flight; the frame is complete when all have arrived.
struct PendingFrame {
    index: usize,
    x: TensorReadback,
    x0: Option<TensorReadback>,
    eps: Option<TensorReadback>,
    got: [Option<Vec<f32>>; 3],
}

impl PendingFrame {
    /// Starts the readbacks, submitting the step recorded so far with them (one submission).
    fn new(index: usize, x: &Tensor, x0: Option<&Tensor>, eps: Option<&Tensor>) -> PendingFrame {
        let all: Vec<&Tensor> = [Some(x), x0, eps].into_iter().flatten().collect();
        let mut rbs = Tensor::read_many(&all).into_iter();
        let mut next = |want: bool| if want { rbs.next() } else { None };
        let x = next(true).expect("x is always read");
        let x0 = next(x0.is_some());
        let eps = next(eps.is_some());
        PendingFrame {
            index,
            x,
            x0,
            eps,
            got: [None, None, None],
        }
    }

    /// The frame once every readback has landed; never waits.
    fn poll(&mut self) -> Option<crate::Result<Frame>> {
        let slots = [Some(&mut self.x), self.x0.as_mut(), self.eps.as_mut()];
        for (slot, rb) in self.got.iter_mut().zip(slots) {
            if let (None, Some(rb)) = (&slot, rb) {
                match rb.try_f32()? {
                    Ok(v) => *slot = Some(v),
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        if self.got[0].is_none()
            || (self.x0.is_some() && self.got[1].is_none())
            || (self.eps.is_some() && self.got[2].is_none())
        {
            return None;
        }
        let [x, x0, eps] = std::mem::take(&mut self.got);
        Some(Ok(Frame {
            x: x.unwrap_or_default(),
            x0,
            eps,
        }))
    }
}

/// A reverse run in progress or finished: the engine's [`GaussianRun`] and host snapshots of every
/// state so far.
pub(super) struct Session {
    /// The state after the newest launched step, its plan and settings.
    pub run: GaussianRun,
    pub n: usize,
    /// A step computing off the UI thread (CPU backend): the run after it, with its readbacks.
    computing: Stepping<GaussianRun, PendingFrame>,
    /// Readbacks in flight: the state after step `index`.
    pending: Option<PendingFrame>,
    /// Host copies of every step's frame (x, then x0_pred and ε_pred when recorded, concatenated) under a
    /// memory cap: older steps are thinned (see `History`).
    pub states: History,
    pub started: web_time::Instant,
    /// Bumped whenever a new run starts, so cached views know they are stale.
    pub id: u64,
}

impl Session {
    /// A new trajectory from x_T with `settings`, for `n` samples; its first readback is in flight.
    pub fn start(
        m: &GaussianModel,
        settings: SampleSettings,
        n: usize,
        id: u64,
    ) -> crate::Result<Session> {
        Self::start_from(m, settings, n, id, None)
    }

    /// [`Self::start`] from a given x_T (`init`: host values, `[n, ..sample shape]`, unit variance;
    /// `None`: drawn from the settings' seed).
    pub fn start_from(
        m: &GaussianModel,
        settings: SampleSettings,
        n: usize,
        id: u64,
        init: Option<&[f32]>,
    ) -> crate::Result<Session> {
        let run = GaussianRun::start(m, &settings, n, init)?;
        let pending = Some(PendingFrame::new(0, run.state(), None, None));
        Ok(Session {
            run,
            n,
            computing: Stepping::default(),
            pending,
            states: History::new(DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS),
            started: web_time::Instant::now(),
            id,
        })
    }

    pub fn done(&self) -> bool {
        self.states.len() > self.run.plan.len()
    }

    /// Steps launched so far, recorded or in flight.
    pub fn launched(&self) -> usize {
        self.states.len() + self.in_flight() as usize
    }

    /// A step is computing or its readback is on its way.
    pub fn in_flight(&self) -> bool {
        self.computing.busy() || self.pending.is_some()
    }

    /// The run continued from the kept step nearest `view` with `seed`: a different future from the
    /// same present (`None` if no step is recorded yet).
    /// SDEdit: a run of `settings` that starts from `x0` (the user's input, `[n, ..]` host values)
    /// noised to the first planned timestep at most `t0`, at that step. The steps before it are
    /// recorded as the input noised to each of their timesteps (the forward process, with the
    /// forward explorer's ε), so the timeline shows the input dissolving as it is scrubbed back.
    pub fn from_input(
        m: &GaussianModel,
        settings: SampleSettings,
        n: usize,
        id: u64,
        x0: &[f32],
        (t0, keep): (usize, Option<&[f32]>),
    ) -> crate::Result<Session> {
        let plan = m.process.plan(settings.sampler, settings.steps)?;
        let k = plan.iter().position(|p| p.t <= t0).unwrap_or(plan.len());
        let mut states = History::new(DEFAULT_HISTORY_BYTES, DEFAULT_RECENT_STEPS);
        for p in &plan[..k] {
            let a = m.process.alphas_cumprod[p.t];
            states.push(super::input::forward_on_host(x0, a, settings.seed));
        }
        let start = match plan.get(k) {
            Some(p) => {
                super::input::forward_on_host(x0, m.process.alphas_cumprod[p.t], settings.seed)
            }
            None => x0.to_vec(),
        };
        let run = GaussianRun::resume(m, &settings, plan, k, &start)?;
        // Inpainting: the kept part of every copy is the drawing (noised to each step's t).
        let run = match keep {
            Some(mask) => run.with_inpaint(m, x0, mask)?,
            None => run,
        };
        states.push(start);
        Ok(Session {
            run,
            n,
            computing: Stepping::default(),
            pending: None,
            states,
            started: web_time::Instant::now(),
            id,
        })
    }

    pub fn forked(
        &self,
        m: &GaussianModel,
        view: usize,
        seed: u64,
        id: u64,
    ) -> crate::Result<Option<Session>> {
        let Some((k, state)) = self.states.nearest(view) else {
            return Ok(None);
        };
        let mut settings = self.run.settings.clone();
        settings.seed = seed;
        // Only the state itself (a frame may carry x0_pred and ε_pred after it).
        let per = self.n * m.sample_len();
        let x = split_frame(state, per).0;
        let earlier = |j: usize| self.states.get(j).map(|f| split_frame(f, per).0.to_vec());
        let run =
            GaussianRun::resume_replayed(m, &settings, self.run.plan.clone(), k, x, &earlier)?;
        Ok(Some(Session {
            run,
            n: self.n,
            computing: Stepping::default(),
            pending: None,
            states: self.states.truncated(k),
            started: web_time::Instant::now(),
            id,
        }))
    }

    /// This run moved onto `model` (reloaded on a new device), going on from its newest host state
    /// with its own settings — bit for bit the run it would have been (a multistep sampler's memory
    /// is replayed from the recorded states). `None` if nothing is recorded
    /// yet. Changes nothing when it fails.
    pub fn resumed_on(&self, model: &GaussianModel) -> crate::Result<Option<Session>> {
        if self.states.is_empty() {
            return Ok(None);
        }
        let (k, state) = self
            .states
            .nearest(self.states.len() - 1)
            .ok_or_else(|| crate::Error::NotReady("no recorded state to resume from".into()))?;
        let per = self.n * model.sample_len();
        let x = split_frame(state, per).0;
        // A multistep sampler's memory is rebuilt from the recorded states (k network evaluations).
        let earlier = |j: usize| self.states.get(j).map(|f| split_frame(f, per).0.to_vec());
        let run = GaussianRun::resume_replayed(
            model,
            &self.run.settings,
            self.run.plan.clone(),
            k,
            x,
            &earlier,
        )?;
        Ok(Some(Session {
            run,
            n: self.n,
            computing: Stepping::default(),
            pending: None,
            states: self.states.truncated(k),
            started: self.started,
            id: self.id,
        }))
    }

    /// Collect the step in flight if it has landed and, if `step`, record the next one with its
    /// readbacks. Never waits for the GPU.
    pub fn pump(&mut self, m: &Arc<GaussianModel>, step: bool) -> crate::Result<()> {
        let device = model_device(m).clone();
        if self.computing.land(&mut self.run, &mut self.pending)? {
            return Ok(());
        }
        if let Some(p) = &mut self.pending {
            // A state is recorded only if the device reported nothing wrong while computing it: a
            // validation error or a lost device would make it a wrong picture.
            match p.poll().map(|r| r.and_then(|f| device.check().map(|_| f))) {
                None => return Ok(()),
                Some(Ok(f)) => {
                    debug_assert_eq!(p.index, self.states.len());
                    self.states.push(f.flatten());
                    self.pending = None;
                }
                Some(Err(e)) => {
                    self.pending = None;
                    return Err(e);
                }
            }
        }
        if !step || self.done() {
            return Ok(());
        }
        debug_assert_eq!(self.run.steps_done(), self.states.len() - 1);
        // Image models show what the network predicted at every step; points show only the state.
        let images = m.denoiser.sample_shape().len() == 3;
        let extras = crate::ops::update::Extras {
            x0: images,
            eps: images,
        };
        let (mut run, model) = (self.run.clone(), Arc::clone(m));
        let step = move || {
            let o = run.step(&model, extras)?;
            let p = PendingFrame::new(run.steps_done(), run.state(), o.x0.as_ref(), o.eps.as_ref());
            Ok((run, p))
        };
        self.computing
            .launch(&device, step, &mut self.run, &mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::gaussian::Sampler;

    /// On the CPU backend the step computes on a worker thread: `pump` returns while it runs, and
    /// the state it lands is bit for bit the one the same step computed in place gives.
    #[test]
    fn a_cpu_step_computes_off_the_calling_thread_and_lands_the_same_state() {
        let device = Device::Cpu(crate::cpu::Cpu::new(&Default::default()));
        let m = Arc::new(crate::pipelines::gaussian::load_shipped(&device, "mnist-unet").unwrap());
        let settings = SampleSettings {
            sampler: Sampler::Ddim { eta: 0.0 },
            steps: 10,
            seed: 7,
            labels: Some(vec![3; 4]),
            guidance: Some(2.0),
        };
        let mut s = Session::start(&m, settings.clone(), 4, 1).unwrap();
        s.pump(&m, false).unwrap();
        assert_eq!(s.states.len(), 1, "x_T is recorded");
        s.pump(&m, true).unwrap();
        assert!(
            s.computing.busy(),
            "the step runs on a worker thread, not in pump"
        );
        assert_eq!(s.launched(), 2);
        while s.states.len() < 2 {
            std::thread::yield_now();
            s.pump(&m, false).unwrap();
        }
        let mut run = GaussianRun::start(&m, &settings, 4, None).unwrap();
        run.step(&m, Default::default()).unwrap();
        let want = run.state().to_f32().unwrap();
        let got = split_frame(s.states.get(1).unwrap(), want.len()).0;
        assert_eq!(got, &want[..]);
    }
}
