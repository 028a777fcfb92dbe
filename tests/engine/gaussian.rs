//! DDPM and DDIM steps through `process::gaussian` and the fused update kernel, against diffusers
//! 0.42.1 with the noise injected (fixture from tools/fixtures_gaussian.py): every prediction type,
//! both fixed variances, clip on and off, linear and cosine schedules, leading and trailing spacing.

use crate::common::{assert_close, gpu};
use diffscope::ops::update::{self, Extras, ModelOutput, Noise};
use diffscope::process::gaussian::{Gaussian, PlannedStep, Sampler, SchedulerConfig};
use diffscope::weights::Weights;
use diffscope::Tensor;

const FIX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scheduler_steps.safetensors"
);
const SHAPE: [usize; 3] = [3, 2, 5];

fn config(w: &mut Weights, p: &str) -> serde_json::Value {
    let bytes: Vec<u8> = w
        .take_ints(&format!("{p}.config"))
        .unwrap()
        .1
        .iter()
        .map(|&b| b as u8)
        .collect();
    serde_json::from_slice(&bytes).unwrap()
}

fn scheduler(cfg: &serde_json::Value) -> Gaussian {
    let mut c = serde_json::Map::new();
    for k in [
        "beta_schedule",
        "prediction_type",
        "variance_type",
        "clip_sample",
        "timestep_spacing",
    ] {
        if let Some(v) = cfg.get(k) {
            c.insert(k.into(), v.clone());
        }
    }
    let json = serde_json::Value::Object(c).to_string();
    Gaussian::new(SchedulerConfig::from_json(&json, "fixture").unwrap()).unwrap()
}

#[test]
fn ddpm_steps_match_diffusers() {
    let g = gpu();
    let mut w = Weights::from_file(FIX.as_ref()).unwrap();
    let mut i = 0;
    while w.contains(&format!("ddpm.{i}.x")) {
        let p = format!("ddpm.{i}");
        let cfg = config(&mut w, &p);
        let sched = scheduler(&cfg);
        let t = w.take_ints(&format!("{p}.meta")).unwrap().1[0] as usize;
        let x =
            Tensor::from_f32(&g, &SHAPE, &w.take(&format!("{p}.x"), &SHAPE).unwrap().data).unwrap();
        let mo = Tensor::from_f32(
            &g,
            &SHAPE,
            &w.take(&format!("{p}.model_output"), &SHAPE).unwrap().data,
        )
        .unwrap();
        let z = Tensor::from_f32(
            &g,
            &SHAPE,
            &w.take(&format!("{p}.noise"), &SHAPE).unwrap().data,
        )
        .unwrap();
        let want = w.take(&format!("{p}.prev_sample"), &SHAPE).unwrap().data;
        let want_x0 = w
            .take(&format!("{p}.pred_original_sample"), &SHAPE)
            .unwrap()
            .data;
        // Without set_timesteps, diffusers steps t → t−1.
        let params = sched.ddpm_params(PlannedStep {
            t,
            prev: t.checked_sub(1),
        });
        let out = update::ddpm_step(
            &x,
            ModelOutput::Plain(&mo),
            &params,
            Noise::Injected(&z),
            Extras {
                x0: true,
                eps: false,
            },
        )
        .unwrap();
        let what = format!("ddpm {i} t={t} {cfg}");
        assert_close(
            &format!("{what} prev"),
            &out.x_prev.to_f32().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        assert_close(
            &format!("{what} x0"),
            &out.x0.unwrap().to_f32().unwrap(),
            &want_x0,
            1e-5,
            1e-6,
        );
        i += 1;
    }
    assert_eq!(i, 96);
}

#[test]
fn ddim_steps_match_diffusers() {
    let g = gpu();
    let mut w = Weights::from_file(FIX.as_ref()).unwrap();
    let mut i = 0;
    while w.contains(&format!("ddim.{i}.x")) {
        let p = format!("ddim.{i}");
        let cfg = config(&mut w, &p);
        let sched = scheduler(&cfg);
        let meta = w.take_ints(&format!("{p}.meta")).unwrap().1;
        let (t, steps) = (meta[0] as usize, meta[1] as usize);
        let eta = cfg["eta"].as_f64().unwrap() as f32;
        let plan = sched.plan(Sampler::Ddim { eta }, steps).unwrap();
        let s = *plan
            .iter()
            .find(|s| s.t == t)
            .expect("fixture timestep is in the plan");
        let x =
            Tensor::from_f32(&g, &SHAPE, &w.take(&format!("{p}.x"), &SHAPE).unwrap().data).unwrap();
        let mo = Tensor::from_f32(
            &g,
            &SHAPE,
            &w.take(&format!("{p}.model_output"), &SHAPE).unwrap().data,
        )
        .unwrap();
        let z = Tensor::from_f32(
            &g,
            &SHAPE,
            &w.take(&format!("{p}.noise"), &SHAPE).unwrap().data,
        )
        .unwrap();
        let want = w.take(&format!("{p}.prev_sample"), &SHAPE).unwrap().data;
        let want_x0 = w
            .take(&format!("{p}.pred_original_sample"), &SHAPE)
            .unwrap()
            .data;
        let out = update::ddim_step(
            &x,
            ModelOutput::Plain(&mo),
            &sched.ddim_params(s, eta),
            Noise::Injected(&z),
            Extras {
                x0: true,
                eps: false,
            },
        )
        .unwrap();
        let what = format!("ddim {i} t={t}/{steps} {cfg}");
        assert_close(
            &format!("{what} prev"),
            &out.x_prev.to_f32().unwrap(),
            &want,
            1e-5,
            1e-6,
        );
        assert_close(
            &format!("{what} x0"),
            &out.x0.unwrap().to_f32().unwrap(),
            &want_x0,
            1e-5,
            1e-6,
        );
        i += 1;
    }
    assert_eq!(i, 72);
}
