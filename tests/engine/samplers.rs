//! diffusers' samplers (DPM-Solver++ 2M and its SDE form, Euler, Euler ancestral, Heun, UniPC, PNDM
//! with and without its Runge–Kutta warm-up) against diffusers 0.42.1 itself
//! (tools/fixtures_samplers.py), on both backends:
//! - replay: each scheduler alone, built from a scheduler file exactly as diffusers' `from_config`
//!   builds it, driven by fixed random model outputs (so the run is linear in them, not chaotic);
//!   every model input (the variance-preserving x_t), every model timestep and the final sample agree;
//! - trajectory: the briefly trained UNet of tests/fixtures/ddim_trajectory sampled for 20 steps by
//!   each sampler from the same x_T, plainly and with classifier-free guidance.

use crate::common::{backends, rel_l2};
use diffscope::error::Result;
use diffscope::nn::Denoiser;
use diffscope::ops::update::{Extras, Noise};
use diffscope::process::gaussian::solver::{Memory, Solver};
use diffscope::process::gaussian::{Gaussian, SampleSettings, Sampler, SchedulerConfig};
use diffscope::tensor::{Device, Tensor};
use diffscope::weights::Weights;
use std::sync::Mutex;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/samplers");

fn cases() -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{DIR}/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A "network" that returns the fixture's output for each evaluation in turn and keeps what it was fed.
struct Replay {
    outputs: Vec<Vec<f32>>,
    shape: Vec<usize>,
    device: Device,
    calls: Mutex<Vec<(Vec<f32>, f32)>>,
}

impl Denoiser for Replay {
    fn forward(&self, x: &Tensor, t: &Tensor, _labels: Option<&Tensor>) -> Result<Tensor> {
        let mut calls = self.calls.lock().unwrap();
        let k = calls.len();
        calls.push((x.to_f32()?, t.to_f32()?[0]));
        Tensor::from_f32(&self.device, x.shape(), &self.outputs[k])
    }
    fn sample_shape(&self) -> &[usize] {
        &self.shape[1..]
    }
    fn num_labels(&self) -> Option<usize> {
        None
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

fn settings(
    sampler: Sampler,
    steps: usize,
    labels: Option<Vec<u32>>,
    guidance: Option<f32>,
) -> SampleSettings {
    SampleSettings {
        sampler,
        steps,
        seed: 0,
        labels,
        guidance,
    }
}

/// Drive `solver` through every evaluation from `x_T` (unit variance), injecting `noise[k]` where
/// given; returns the state before each evaluation and the final one.
fn drive(
    solver: &Solver,
    model: &dyn Denoiser,
    s: &SampleSettings,
    x_t: &[f32],
    shape: &[usize],
    noise: Option<&[Vec<f32>]>,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let dev = model.device();
    let scaled: Vec<f32> = x_t.iter().map(|v| v * solver.init_scale()).collect();
    let mut x = Tensor::from_f32(dev, shape, &scaled).unwrap();
    let mut memory = Memory::default();
    let mut states = Vec::new();
    for k in 0..solver.evals() {
        states.push(x.to_f32().unwrap());
        let z = noise.map(|n| Tensor::from_f32(dev, shape, &n[k]).unwrap());
        let (out, next) = solver
            .step(
                model,
                &x,
                k,
                s,
                &memory,
                z.as_ref().map(Noise::Injected),
                Extras::default(),
            )
            .unwrap_or_else(|e| panic!("evaluation {k}: {e}"));
        dev.submit();
        x = out.x_prev;
        memory = next;
    }
    (states, x.to_f32().unwrap())
}

fn per_eval(t: &diffscope::weights::HostTensor) -> Vec<Vec<f32>> {
    let per = t.data.len() / t.shape[0];
    t.data.chunks(per).map(<[f32]>::to_vec).collect()
}

#[test]
fn every_sampler_replays_diffusers_schedulers() {
    let meta = cases();
    for dev in backends() {
        let mut f = Weights::from_file(format!("{DIR}/replay.safetensors").as_ref()).unwrap();
        for c in meta["cases"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let what = format!("{name} on {}", dev.describe());
            let config = SchedulerConfig::from_json(&c["config"].to_string(), name).unwrap();
            let g = Gaussian::new(config).unwrap();
            let steps = c["steps"].as_u64().unwrap() as usize;
            let sampler = Sampler::parse(
                c["sampler"].as_str().unwrap(),
                0.0,
                c["karras"].as_bool().unwrap(),
            )
            .unwrap();
            let solver = Solver::new(&g, sampler, steps).unwrap().expect("a solver");
            let shape = [2, 3, 4];
            let outputs = f.take(&format!("{name}.outputs"), &[solver.evals(), 2, 3, 4]);
            let outputs =
                per_eval(&outputs.unwrap_or_else(|e| panic!("{what}: {e} (evaluations differ?)")));
            let x_t = f.take(&format!("{name}.x_T"), &shape).unwrap().data;
            let ts = f
                .take(&format!("{name}.timesteps"), &[solver.evals()])
                .unwrap()
                .data;
            let inputs = per_eval(
                &f.take(&format!("{name}.inputs"), &[solver.evals(), 2, 3, 4])
                    .unwrap(),
            );
            // diffusers' own bh1 UniPC ends in NaN (B(h) = h = −∞ at σ = 0 times a zero correction):
            // its inputs are compared, and diffscope's end must be finite.
            let final_ = f
                .contains(&format!("{name}.final"))
                .then(|| f.take(&format!("{name}.final"), &shape).unwrap().data);
            let noise = f.contains(&format!("{name}.noise")).then(|| {
                per_eval(
                    &f.take(&format!("{name}.noise"), &[solver.evals(), 2, 3, 4])
                        .unwrap(),
                )
            });
            for (k, &t) in ts.iter().enumerate() {
                assert!(
                    (solver.model_t(k) - t).abs() <= 1e-3 * t.abs().max(1.0),
                    "{what}: evaluation {k} sees t = {}, diffusers {t}",
                    solver.model_t(k)
                );
            }
            let model = Replay {
                outputs,
                shape: shape.to_vec(),
                device: dev.clone(),
                calls: Mutex::new(Vec::new()),
            };
            let s = settings(sampler, steps, None, None);
            let (_, got) = drive(&solver, &model, &s, &x_t, &shape, noise.as_deref());
            let calls = model.calls.into_inner().unwrap();
            let mut worst = 0.0f64;
            for (k, (fed, t)) in calls.iter().enumerate() {
                let e = rel_l2(fed, &inputs[k]);
                worst = worst.max(e);
                assert!(
                    e <= 1e-5,
                    "{what}: model input at evaluation {k} (t = {t}): relative L2 {e:e}"
                );
            }
            let e = match &final_ {
                Some(want) => rel_l2(&got, want),
                None => {
                    assert!(
                        got.iter().all(|v| v.is_finite()),
                        "{what}: final sample not finite"
                    );
                    0.0
                }
            };
            assert!(e <= 1e-5, "{what}: final sample: relative L2 {e:e}");
            eprintln!("{what}: worst input {worst:.1e}, final {e:.1e}");
        }
    }
}

#[test]
fn every_sampler_follows_diffusers_trajectory_on_a_trained_unet() {
    let meta = cases();
    let unet_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ddim_trajectory"
    );
    for dev in backends() {
        let m = diffscope::pipelines::gaussian::load_dir(&dev, unet_dir.as_ref()).unwrap();
        let mut f = Weights::from_file(format!("{DIR}/trajectory.safetensors").as_ref()).unwrap();
        let shape = [4, 1, 8, 8];
        let x_t = f.take("x_T", &shape).unwrap().data;
        let labels: Vec<u32> = f
            .take_ints("labels")
            .unwrap()
            .1
            .iter()
            .map(|&l| l as u32)
            .collect();
        let w = meta["guidance"].as_f64().unwrap() as f32;
        for run in meta["trajectory_runs"].as_array().unwrap() {
            let run = run.as_str().unwrap();
            let what = format!("{run} on {}", dev.describe());
            let (name, kind) = run.split_once('.').unwrap();
            let sampler = Sampler::parse(name, 0.0, false).unwrap();
            let solver = Solver::new(&m.process, sampler, 20).unwrap().unwrap();
            let n = solver.evals();
            let inputs = per_eval(&f.take(&format!("{run}.inputs"), &[n, 4, 1, 8, 8]).unwrap());
            let final_ = f.take(&format!("{run}.final"), &shape).unwrap().data;
            let noise = f
                .contains(&format!("{run}.noise"))
                .then(|| per_eval(&f.take(&format!("{run}.noise"), &[n, 4, 1, 8, 8]).unwrap()));
            let s = settings(
                sampler,
                20,
                Some(labels.clone()),
                (kind == "guided").then_some(w),
            );
            let (states, got) = drive(
                &solver,
                m.denoiser.as_ref(),
                &s,
                &x_t,
                &shape,
                noise.as_deref(),
            );
            let mut errs = Vec::new();
            for (k, st) in states.iter().enumerate() {
                let e = rel_l2(st, &inputs[k]);
                errs.push(e);
                assert!(
                    e <= 1e-3,
                    "{what}: state before evaluation {k}: relative L2 {e:e}"
                );
            }
            let e = rel_l2(&got, &final_);
            assert!(e <= 1e-3, "{what}: final sample: relative L2 {e:e}");
            eprintln!(
                "{what}: {n} evaluations, worst state {:.1e}, final {e:.1e}",
                errs.iter().cloned().fold(0.0, f64::max)
            );
        }
    }
}

/// Once settled, a solver step on the GPU creates no buffer or pipeline (and, but for PNDM, no bind
/// group), like a DDPM/DDIM step: the kept tensors rotate through the pool.
#[test]
fn solver_steps_create_nothing_once_settled() {
    // Its own device: the counters are per device, and other tests share the common one.
    let g = diffscope::Gpu::new(&Default::default()).unwrap();
    let dev = Device::Gpu(g.clone());
    let toy = diffscope::pipelines::gaussian::load_shipped(&dev, "toy2d-mlp").unwrap();
    // The score-SDE sampler on a score-SDE model (the NCSN++-layout UNet), every other on toy2d.
    let ve = diffscope::pipelines::gaussian::load_dir(
        &dev,
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/unet_ncsnpp_like"
        )
        .as_ref(),
    )
    .unwrap();
    for &name in Sampler::NAMES {
        let (m, n) = if name == "sde-ve" {
            (&ve, 2)
        } else {
            (&toy, 64)
        };
        let m = m.clone();
        let s = settings(
            Sampler::parse(name, 0.5, false).unwrap(),
            24,
            m.denoiser.num_labels().map(|_| vec![1; n]),
            None,
        );
        let mut run =
            diffscope::pipelines::gaussian::run::GaussianRun::start(&m, &s, n, None).unwrap();
        let mut counts = Vec::new();
        while !run.done() {
            let before = g.counters();
            let out = run.step(&m, Extras::default()).unwrap();
            dev.submit();
            let x = pollster::block_on(out.x_prev.read().f32()).unwrap();
            assert!(x.iter().all(|v| v.is_finite()), "{name}");
            counts.push(g.counters() - before);
        }
        // The last evaluation of a multistep sampler is first order (the final σ is 0): with no
        // history bound, its one bind group is new.
        let last = counts.len() - 1;
        // Settled: past the first half (PNDM's twelve Runge–Kutta evaluations are a phase of their own).
        for (k, c) in counts.iter().enumerate().take(last).skip(counts.len() / 2) {
            // PNDM keeps four outputs alive, which rotate through the pool with a period of their
            // own beside the state's: its bind-group pairings keep being new for longer (bounded by
            // the cache, never a buffer).
            let bind_groups_ok =
                c.bind_groups_created == 0 || name.starts_with("pndm") || name == "plms";
            assert!(
                c.buffers_created == 0 && c.pipelines_created == 0 && bind_groups_ok,
                "{name}: evaluation {k} created {c:?}"
            );
        }
    }
}

/// A multistep run resumed from host states (a fork with the same seed, a run moved to another
/// device) continues bit for bit as the uninterrupted one: the memory is rebuilt by replaying the
/// solver over the recorded states. Without the replay it warms up afresh and drifts.
#[test]
fn a_resumed_multistep_run_continues_exactly() {
    use diffscope::pipelines::gaussian::run::{self as gaussian_run, GaussianRun};
    for dev in backends() {
        let m = diffscope::pipelines::gaussian::load_shipped(&dev, "toy2d-mlp").unwrap();
        for name in ["dpm++2m", "unipc", "heun", "pndm", "plms", "dpm++2m-sde"] {
            let s = settings(
                Sampler::parse(name, 0.0, false).unwrap(),
                12,
                Some(vec![2; 32]),
                None,
            );
            let full = gaussian_run::sample(&m, &s, 32, None, true).unwrap();
            // Odd: mid-step for Heun, whose memory lives only between its two evaluations.
            let k = (full.states.len() / 2) | 1;
            let earlier = |j: usize| full.states.get(j).cloned();
            let mut run = GaussianRun::resume_replayed(
                &m,
                &s,
                full.plan.clone(),
                k,
                &full.states[k],
                &earlier,
            )
            .unwrap();
            while !run.done() {
                run.step(&m, Extras::default()).unwrap();
                dev.submit();
            }
            let got = run.state().to_f32().unwrap();
            let want = full.final_state();
            let differ = got
                .iter()
                .zip(want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ,
                0,
                "{name} on {}: {differ} values differ",
                dev.describe()
            );
            // The plain resume warms up again: a valid run, but not the same one.
            let mut warm =
                GaussianRun::resume(&m, &s, full.plan.clone(), k, &full.states[k]).unwrap();
            while !warm.done() {
                warm.step(&m, Extras::default()).unwrap();
                dev.submit();
            }
            let w = warm.state().to_f32().unwrap();
            assert!(w.iter().all(|v| v.is_finite()), "{name}");
            assert_ne!(
                w, want,
                "{name}: a warm restart should differ (memory matters)"
            );
        }
    }
}
