//! `diffscope bench`'s sampler rows: what each sampler's update costs per model evaluation on its own,
//! with a "network" that costs nothing (it hands back one fixed output), on mnist-unet's batch-16
//! state (16×1×28×28). Beside a network evaluation this should be negligible; the rows show it is,
//! and what the multistep samplers' kept tensors add.

use diffscope::nn::Denoiser;
use diffscope::pipelines::gaussian::run::GaussianRun;
use diffscope::pipelines::gaussian::GaussianModel;
use diffscope::process::gaussian::{Gaussian, SampleSettings, Sampler, SchedulerConfig};
use diffscope::{Device, Result, Tensor};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// A denoiser that returns the same output whatever it is given.
struct Fixed {
    out: Tensor,
    shape: Vec<usize>,
    device: Device,
}

impl Denoiser for Fixed {
    fn forward(&self, _x: &Tensor, _t: &Tensor, _labels: Option<&Tensor>) -> Result<Tensor> {
        Ok(self.out.clone())
    }
    fn sample_shape(&self) -> &[usize] {
        &self.shape
    }
    fn num_labels(&self) -> Option<usize> {
        None
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

/// Milliseconds per model evaluation of each sampler's update over a 20-step run (median of `reps`).
pub fn sampler_updates(device: &Device, reps: usize, print: bool) -> Result<serde_json::Value> {
    let shape = [16usize, 1, 28, 28];
    let n: usize = shape.iter().product();
    let out: Vec<f32> = (0..n).map(|i| ((i % 97) as f32) * 0.02 - 1.0).collect();
    let model = GaussianModel {
        name: "fixed".into(),
        denoiser: Arc::new(Fixed {
            out: Tensor::from_f32(device, &shape, &out)?,
            shape: shape[1..].to_vec(),
            device: device.clone(),
        }),
        process: Gaussian::new(SchedulerConfig::default())?,
        labels: Vec::new(),
        data_range: [-1.0, 1.0],
        decoder: None,
    };
    // The score-SDE sampler runs on a score-SDE process (google/ncsnpp-ffhq-1024's scheduler).
    let ve = GaussianModel {
        process: Gaussian::new(SchedulerConfig::from_json(
            r#"{"_class_name": "ScoreSdeVeScheduler", "correct_steps": 1, "sigma_max": 1348,
                "sigma_min": 0.01, "snr": 0.15, "sampling_eps": 1e-5}"#,
            "ScoreSdeVeScheduler",
        )?)?,
        ..model.clone()
    };
    let mut rows = Vec::new();
    let all = Sampler::names_for(&model.process)
        .into_iter()
        .map(|n| (n, &model))
        .chain(
            Sampler::names_for(&ve.process)
                .into_iter()
                .map(|n| (n, &ve)),
        );
    for (name, model) in all {
        let settings = SampleSettings {
            sampler: Sampler::parse(name, 0.5, false)?,
            steps: 20,
            seed: 0,
            labels: None,
            guidance: None,
        };
        let mut times = Vec::new();
        let mut evals = 0;
        for _ in 0..reps.max(1) + 1 {
            let mut run = GaussianRun::start(model, &settings, shape[0], None)?;
            device.wait_idle()?;
            let t = Instant::now();
            while !run.done() {
                run.step(model, Default::default())?;
                device.submit();
            }
            device.wait_idle()?;
            evals = run.plan.len();
            times.push(t.elapsed().as_secs_f64() / evals as f64);
        }
        times.remove(0);
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2] * 1e3;
        if print {
            eprintln!(
                "sampler {name:<12} update: {ms:.3} ms per model evaluation ({evals} in 20 steps)"
            );
        }
        rows.push(
            json!({"sampler": name, "evaluations_per_20_steps": evals, "ms_per_evaluation": ms}),
        );
    }
    Ok(json!({"state": shape, "rows": rows}))
}
