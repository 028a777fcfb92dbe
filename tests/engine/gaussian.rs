//! DDPM and DDIM steps through `process::gaussian` and the fused update kernel, against diffusers
//! 0.42.1 with the noise injected (fixture from tools/fixtures_gaussian.py): every prediction type,
//! both fixed variances, clip on and off, linear and cosine schedules, leading and trailing spacing.

use crate::common::{assert_close, gpu, on_each_backend};
use diffscope::ops::update::{self, Extras, ModelOutput, Noise, StepOutput};
use diffscope::process::gaussian::{Gaussian, PlannedStep, Sampler, SchedulerConfig};
use diffscope::weights::Weights;
use diffscope::Device;
use diffscope::Tensor;

const FIX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scheduler_steps.safetensors"
);
const SHAPE: [usize; 3] = [3, 2, 5];
const EXTRAS: Extras = Extras {
    x0: true,
    eps: false,
};

/// One recorded diffusers step: its settings, inputs and outputs.
struct Case {
    config: serde_json::Value,
    sched: Gaussian,
    meta: Vec<i64>,
    x: Tensor,
    model_output: Tensor,
    noise: Tensor,
    prev_sample: Vec<f32>,
    pred_original_sample: Vec<f32>,
}

impl Case {
    fn take(w: &mut Weights, p: &str) -> Case {
        let g = gpu();
        let bytes: Vec<u8> = w
            .take_ints(&format!("{p}.config"))
            .unwrap()
            .1
            .iter()
            .map(|&b| b as u8)
            .collect();
        let config: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let mut c = serde_json::Map::new();
        for k in [
            "beta_schedule",
            "prediction_type",
            "variance_type",
            "clip_sample",
            "timestep_spacing",
        ] {
            if let Some(v) = config.get(k) {
                c.insert(k.into(), v.clone());
            }
        }
        let json = serde_json::Value::Object(c).to_string();
        let sched = Gaussian::new(SchedulerConfig::from_json(&json, "fixture").unwrap()).unwrap();
        let mut host = |name: &str| w.take(&format!("{p}.{name}"), &SHAPE).unwrap().data;
        let (x, mo, z) = (host("x"), host("model_output"), host("noise"));
        let (prev_sample, pred_original_sample) =
            (host("prev_sample"), host("pred_original_sample"));
        let up = |v: &[f32]| Tensor::from_f32(&g, &SHAPE, v).unwrap();
        Case {
            meta: w.take_ints(&format!("{p}.meta")).unwrap().1,
            x: up(&x),
            model_output: up(&mo),
            noise: up(&z),
            config,
            sched,
            prev_sample,
            pred_original_sample,
        }
    }

    fn check(&self, what: &str, out: StepOutput) {
        let what = format!("{what} {}", self.config);
        assert_close(
            &format!("{what} prev"),
            &out.x_prev.to_f32().unwrap(),
            &self.prev_sample,
            1e-5,
            1e-6,
        );
        let x0 = out.x0.unwrap().to_f32().unwrap();
        assert_close(
            &format!("{what} x0"),
            &x0,
            &self.pred_original_sample,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn ddpm_steps_match_diffusers() {
    let mut w = Weights::from_file(FIX.as_ref()).unwrap();
    let mut i = 0;
    while w.contains(&format!("ddpm.{i}.x")) {
        let c = Case::take(&mut w, &format!("ddpm.{i}"));
        let t = c.meta[0] as usize;
        // Without set_timesteps, diffusers steps t → t−1.
        let params = c.sched.ddpm_params(PlannedStep {
            t,
            prev: t.checked_sub(1),
        });
        let out = update::ddpm_step(
            &c.x,
            ModelOutput::Plain(&c.model_output),
            &params,
            Noise::Injected(&c.noise),
            EXTRAS,
        )
        .unwrap();
        c.check(&format!("ddpm {i} t={t}"), out);
        i += 1;
    }
    assert_eq!(i, 96);
}

#[test]
fn ddim_steps_match_diffusers() {
    let mut w = Weights::from_file(FIX.as_ref()).unwrap();
    let mut i = 0;
    while w.contains(&format!("ddim.{i}.x")) {
        let c = Case::take(&mut w, &format!("ddim.{i}"));
        let (t, steps) = (c.meta[0] as usize, c.meta[1] as usize);
        let eta = c.config["eta"].as_f64().unwrap() as f32;
        let plan = c.sched.plan(Sampler::Ddim { eta }, steps).unwrap();
        let s = *plan
            .iter()
            .find(|s| s.t == t)
            .expect("fixture timestep is in the plan");
        let params = c.sched.ddim_params(s, eta);
        let out = update::ddim_step(
            &c.x,
            ModelOutput::Plain(&c.model_output),
            &params,
            Noise::Injected(&c.noise),
            EXTRAS,
        )
        .unwrap();
        c.check(&format!("ddim {i} t={t}/{steps}"), out);
        i += 1;
    }
    assert_eq!(i, 72);
}

/// labml's `DenoiseDiffusion.p_sample` (labml-nn 0.5.1, tools/fixtures_labml.py) with its ε model's
/// output and its noise injected, at t = 999 … 0: our DDPM step configured as labml.
#[test]
fn ddpm_steps_match_labml() {
    on_each_backend(ddpm_steps_match_labml_on);
}

fn ddpm_steps_match_labml_on(g: Device) {
    let mut w = Weights::from_file(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/labml_steps.safetensors"
        )
        .as_ref(),
    )
    .unwrap();
    let sched = Gaussian::new(SchedulerConfig::labml(1000)).unwrap();
    // labml's float32 tables. torch's CPU linspace is SIMD-vectorised and its last bit differs
    // from the scalar definition in ~20% of entries (1 ulp), so the tables agree to rounding only.
    let beta = w.take("beta", &[1000]).unwrap().data;
    let alpha_bar = w.take("alpha_bar", &[1000]).unwrap().data;
    assert_close("labml β", &sched.betas, &beta, 1e-6, 0.0);
    assert_close("labml ᾱ", &sched.alphas_cumprod, &alpha_bar, 1e-6, 0.0);

    let plan = sched.plan(Sampler::Ddpm, 1000).unwrap();
    let shape = [3, 1, 4, 5];
    let mut seen = Vec::new();
    let mut i = 0;
    while w.contains(&format!("labml.{i}.x")) {
        let p = format!("labml.{i}");
        let t = w.take_ints(&format!("{p}.meta")).unwrap().1[0] as usize;
        let mut host = |n: &str| w.take(&format!("{p}.{n}"), &shape).unwrap().data;
        let (x, eps, z, want) = (
            host("x"),
            host("eps_theta"),
            host("noise"),
            host("prev_sample"),
        );
        let s = *plan.iter().find(|s| s.t == t).unwrap();
        let params = sched.ddpm_params(s);
        if t == 0 {
            // labml adds √β_0 noise at the last step, which diffusers does not.
            assert_eq!(params.sigma, 1e-4f32.sqrt());
        }
        let up = |v: &[f32]| Tensor::from_f32(&g, &shape, v).unwrap();
        let (x, eps, z) = (up(&x), up(&eps), up(&z));
        let out = update::ddpm_step(
            &x,
            ModelOutput::Plain(&eps),
            &params,
            Noise::Injected(&z),
            Extras::default(),
        )
        .unwrap();
        assert_close(
            &format!("labml p_sample t={t}"),
            &out.x_prev.to_f32().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        seen.push(t);
        i += 1;
    }
    assert_eq!(seen, [999, 998, 500, 37, 1, 0]);
    // The diffusers style would not add noise at t = 0: the option is what makes the difference.
    let diffusers = Gaussian::new(SchedulerConfig {
        variance: diffscope::process::gaussian::Variance::FixedLarge,
        clip_sample: false,
        ..SchedulerConfig::default()
    })
    .unwrap();
    assert_eq!(diffusers.ddpm_params(plan[999]).sigma, 0.0);
}
