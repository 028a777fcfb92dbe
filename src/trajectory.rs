//! A recorded reverse run: the settings that determine it and, per step, the state x_t and what the
//! model predicted (x̂0, ε̂). A trajectory is a pure function of (model, settings, initial state), so
//! replaying it — or re-running from step k with the same seed — gives the same bits on one backend.

use crate::error::{Error, Result};
#[cfg(not(target_arch = "wasm32"))]
use crate::models::zoo::GaussianModel;
#[cfg(not(target_arch = "wasm32"))]
use crate::ops::update::Extras;
use crate::process::gaussian::{PlannedStep, SampleSettings};
#[cfg(not(target_arch = "wasm32"))]
use crate::tensor::Tensor;

/// Host copies of one trajectory.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub settings: SampleSettings,
    /// `[N, ..sample shape]`.
    pub shape: Vec<usize>,
    pub plan: Vec<PlannedStep>,
    /// `states[k]` is x after k reverse steps (`states[0]` = x_T).
    pub states: Vec<Vec<f32>>,
    /// `x0[k]`, `eps[k]`: the model's view at step k (from `states[k]`).
    pub x0: Vec<Vec<f32>>,
    pub eps: Vec<Vec<f32>>,
}

impl Trajectory {
    pub fn final_state(&self) -> &[f32] {
        self.states.last().map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Serialise as safetensors: `x_t` `[S+1, N, ..]`, `x0` and `eps` `[S, N, ..]`, `timesteps` `[S]`.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = Vec::new();
        let stack = |v: &[Vec<f32>]| -> (Vec<usize>, Vec<u8>) {
            let mut shape = vec![v.len()];
            shape.extend_from_slice(&self.shape);
            (
                shape,
                v.iter().flatten().flat_map(|f| f.to_le_bytes()).collect(),
            )
        };
        for (name, v) in [("x_t", &self.states), ("x0", &self.x0), ("eps", &self.eps)] {
            if !v.is_empty() {
                let (s, b) = stack(v);
                tensors.push((name.into(), s, b, safetensors::Dtype::F32));
            }
        }
        let ts: Vec<u8> = self
            .plan
            .iter()
            .flat_map(|p| (p.t as i64).to_le_bytes())
            .collect();
        tensors.push((
            "timesteps".into(),
            vec![self.plan.len()],
            ts,
            safetensors::Dtype::I64,
        ));
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, s, b, d)| {
                safetensors::tensor::TensorView::new(*d, s.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::Invalid(format!("trajectory tensor {n}: {e}")))
            })
            .collect::<Result<_>>()?;
        let mut meta = std::collections::HashMap::new();
        meta.insert(
            "settings".to_string(),
            serde_json::to_string(&self.settings).unwrap_or_default(),
        );
        safetensors::serialize(views, Some(meta))
            .map_err(|e| Error::Invalid(format!("writing trajectory: {e}")))
    }
}

/// Run a whole reverse trajectory, waiting for each step (native: CLI and tests). With `record`,
/// every state and prediction is read back; otherwise only the final state is.
#[cfg(not(target_arch = "wasm32"))]
pub fn sample_blocking(
    model: &GaussianModel,
    settings: &SampleSettings,
    n: usize,
    init: Option<&[f32]>,
    record: bool,
) -> Result<Trajectory> {
    let gpu_shape = {
        let mut s = vec![n];
        s.extend_from_slice(model.denoiser.sample_shape());
        s
    };
    let plan = model.process.plan(settings.sampler, settings.steps)?;
    let gpu = crate::gpu::Gpu::clone(model_gpu(model)?);
    let mut x = match init {
        Some(v) => Tensor::from_f32(&gpu, &gpu_shape, v)?,
        None => model
            .process
            .initial(&gpu, n, model.denoiser.sample_shape(), settings.seed)?,
    };
    let mut traj = Trajectory {
        settings: settings.clone(),
        shape: gpu_shape,
        plan: plan.clone(),
        states: Vec::new(),
        x0: Vec::new(),
        eps: Vec::new(),
    };
    if record {
        traj.states.push(x.to_f32()?);
    }
    let extras = Extras {
        x0: record,
        eps: record,
    };
    for k in 0..plan.len() {
        let out = model
            .process
            .step(model.denoiser.as_ref(), &x, &plan, k, settings, extras)?;
        gpu.submit();
        // A validation error or a lost device makes every later state wrong: stop at once.
        gpu.check()?;
        x = out.x_prev;
        if record {
            traj.states.push(x.to_f32()?);
            if let Some(t) = out.x0 {
                traj.x0.push(t.to_f32()?);
            }
            if let Some(t) = out.eps {
                traj.eps.push(t.to_f32()?);
            }
        }
    }
    if !record {
        traj.states.push(x.to_f32()?);
    }
    gpu.check()?;
    Ok(traj)
}

#[cfg(not(target_arch = "wasm32"))]
fn model_gpu(model: &GaussianModel) -> Result<&crate::gpu::Gpu> {
    model
        .denoiser
        .gpu()
        .ok_or_else(|| Error::Invalid("model has no GPU".into()))
}
