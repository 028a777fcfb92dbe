//! The Gaussian models (images or points, any of diffusers' samplers) on the command line: `sample`
//! to safetensors or PNG with an optional trajectory, and `forward` (one denoiser evaluation on given
//! tensors, for parity checks with other implementations).

use crate::args::{ForwardArgs, ModelArgs, OnOff, SampleArgs, SamplerArg};
use crate::output::{
    check_output, ext, safetensors_bytes, write_file, write_image_grid, write_points_png,
};
use crate::progress::Progress;
use diffscope::pipelines::gaussian::{self, run, GaussianModel};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::weights::Weights;
use diffscope::{Device, DeviceOptions, Error, Result, Tensor};

/// The Gaussian model `--model` or `--model-dir` names.
pub fn load(device: &Device, m: &ModelArgs) -> Result<GaussianModel> {
    match (&m.model, &m.model_dir) {
        (Some(name), _) => gaussian::load_shipped(device, name),
        (None, Some(dir)) => gaussian::load_dir(device, dir),
        (None, None) => Err(Error::Invalid(
            "give --model NAME or --model-dir DIR".into(),
        )),
    }
}

pub fn sample(opts: &DeviceOptions, a: &SampleArgs) -> Result<()> {
    if a.temperature != 1.0 || a.unmask.is_some() || a.padding.is_some() {
        return Err(Error::Invalid(
            "--temperature, --unmask and --padding are for sequence (discrete) models".into(),
        ));
    }
    // Check everything cheap before touching the GPU.
    let out_ext = ext(&a.out);
    if !matches!(out_ext.as_str(), "safetensors" | "png") {
        return Err(Error::Invalid(format!(
            "--out {}: use a .safetensors or .png file",
            a.out.display()
        )));
    }
    check_output("--out", &a.out)?;
    if let Some(t) = &a.trajectory {
        if ext(t) != "safetensors" {
            return Err(Error::Invalid(format!(
                "--trajectory {}: use a .safetensors file",
                t.display()
            )));
        }
        check_output("--trajectory", t)?;
    }
    // Read the initial state now: a bad file is reported before the GPU starts.
    let mut init_weights = match &a.init {
        Some(p) => Some(Weights::from_file(p)?),
        None => None,
    };
    // --n defaults to the batch of --init.
    let init_n = init_weights
        .as_ref()
        .and_then(|w| w.shape_of("x"))
        .and_then(|s| s.first().copied());
    let n = a.n.or(init_n).unwrap_or(16);
    if n == 0 || n > 65536 {
        return Err(Error::Invalid(format!("--n {n} must be in 1..=65536")));
    }
    if !(a.cfg.is_finite() && a.cfg >= 0.0) {
        return Err(Error::Invalid(format!(
            "--cfg {} must be a finite number ≥ 0",
            a.cfg
        )));
    }
    if !(a.eta.is_finite() && a.eta >= 0.0) {
        return Err(Error::Invalid(format!(
            "--eta {} must be a finite number ≥ 0",
            a.eta
        )));
    }
    let device = Device::open(opts)?.device;
    let mut model = load(&device, &a.model)?;
    let arg = a.sampler.unwrap_or(if model.process.is_ve() {
        SamplerArg::SdeVe
    } else {
        SamplerArg::Ddpm
    });
    let sampler = Sampler::parse(arg.name(), a.eta, a.karras)?;
    if a.karras && !sampler.takes_karras() {
        return Err(Error::Invalid(format!(
            "--karras: {} has no Karras σ (dpm++2m, dpm++2m-sde, euler, heun and unipc do)",
            sampler.name()
        )));
    }
    if a.eta != 0.0 && arg != SamplerArg::Ddim {
        return Err(Error::Invalid("--eta is DDIM's (--sampler ddim)".into()));
    }
    if let Some(c) = a.clip_sample {
        model.process.config.clip_sample = c == OnOff::On;
    }
    let steps = a
        .steps
        .unwrap_or_else(|| sampler.default_steps(model.process.train_timesteps()));
    let labels = match model.denoiser.num_labels() {
        Some(k) => {
            if let Some(l) = a.label {
                if l as usize >= k {
                    return Err(Error::Invalid(format!(
                        "--label {l} is out of range: {} has labels 0..{} ({})",
                        model.name,
                        k - 1,
                        model.labels.join(", ")
                    )));
                }
            }
            Some(
                (0..n)
                    .map(|i| a.label.unwrap_or((i % k) as u32))
                    .collect::<Vec<u32>>(),
            )
        }
        None => {
            if a.label.is_some() || a.cfg != 1.0 {
                return Err(Error::Invalid(format!(
                    "{} is unconditional: no --label or --cfg",
                    model.name
                )));
            }
            None
        }
    };
    let init = match &mut init_weights {
        Some(w) => {
            let mut shape = vec![n];
            shape.extend_from_slice(model.denoiser.sample_shape());
            let x = w.take("x", &shape).map_err(|e| {
                Error::Invalid(format!(
                    "--init: {e} (x must be [--n, ..the model's sample shape {:?}])",
                    model.denoiser.sample_shape()
                ))
            })?;
            Some(x.data)
        }
        None => None,
    };
    let settings = SampleSettings {
        sampler,
        steps,
        seed: a.seed,
        labels: labels.clone(),
        guidance: (a.cfg != 1.0).then_some(a.cfg),
    };
    if a.profile {
        match device.gpu() {
            Some(g) => g.set_profiling(true),
            None => {
                return Err(Error::Invalid(
                    "--profile times GPU kernels; the CPU backend has none (use --backend gpu)"
                        .into(),
                ))
            }
        }
    }
    let t0 = std::time::Instant::now();
    let mut progress = Progress::new(format!("{} ({})", model.name, sampler.name()), 0);
    let traj = run::sample_observed(
        &model,
        &settings,
        n,
        init.as_deref(),
        a.trajectory.is_some(),
        |done, total| {
            progress.total = total;
            progress.update(done)
        },
    )?;
    eprintln!(
        "{n} samples from {} in {steps} {} steps ({} model evaluations): {:.2} s",
        model.name,
        sampler.name(),
        traj.plan.len(),
        t0.elapsed().as_secs_f64()
    );
    if a.profile {
        let rows = device.gpu().map(|g| g.profile_report()).unwrap_or_default();
        let total: f64 = rows.iter().map(|r| r.2).sum();
        eprintln!(
            "{:<40} {:>9} {:>10} {:>6}",
            "kernel", "dispatches", "ms", "share"
        );
        for (k, n, secs) in rows {
            eprintln!(
                "{k:<40} {n:>9} {:>10.1} {:>5.1}%",
                secs * 1e3,
                100.0 * secs / total.max(1e-12)
            );
        }
    }
    if let Some(p) = &a.trajectory {
        write_file(p, &traj.to_safetensors()?)?;
    }
    // A latent model's samples are its decoder's images (the latents are kept beside them).
    let latents = traj.final_state();
    let (decoded, shape) = model.decode_host(latents, &traj.shape)?;
    let samples = decoded.as_slice();
    match out_ext.as_str() {
        "png" => {
            if shape.len() == 2 && shape[1] == 2 {
                write_points_png(&a.out, samples, labels.as_deref(), model.data_range)?;
            } else if shape.len() == 4 && matches!(shape[1], 1 | 3) {
                write_image_grid(&a.out, samples, &shape, model.data_range)?;
            } else {
                return Err(Error::Invalid(format!(
                    "PNG output needs 2-D points or 1/3-channel images, not {shape:?}; use \
                     .safetensors"
                )));
            }
        }
        _ => {
            let bytes: Vec<u8> = samples.iter().flat_map(|f| f.to_le_bytes()).collect();
            let lbytes: Vec<u8> = labels
                .unwrap_or_default()
                .iter()
                .flat_map(|&l| (l as i64).to_le_bytes())
                .collect();
            let mut tensors = vec![("samples", safetensors::Dtype::F32, shape.clone(), bytes)];
            if model.decoder.is_some() {
                let lb: Vec<u8> = latents.iter().flat_map(|f| f.to_le_bytes()).collect();
                tensors.push(("latents", safetensors::Dtype::F32, traj.shape.clone(), lb));
            }
            if !lbytes.is_empty() {
                tensors.push(("labels", safetensors::Dtype::I64, vec![n], lbytes));
            }
            let data = safetensors_bytes(tensors)?;
            write_file(&a.out, &data)?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

pub fn forward(opts: &DeviceOptions, a: &ForwardArgs) -> Result<()> {
    if ext(&a.out) != "safetensors" {
        return Err(Error::Invalid(format!(
            "--out {}: use a .safetensors file",
            a.out.display()
        )));
    }
    check_output("--out", &a.out)?;
    let mut w = Weights::from_file(&a.inputs)?;
    let device = Device::open(opts)?.device;
    let model = load(&device, &a.model)?;
    let xs = w
        .shape_of("x")
        .ok_or_else(|| Error::Invalid(format!("{}: no tensor \"x\"", a.inputs.display())))?
        .to_vec();
    let n = xs.first().copied().unwrap_or(0);
    if n == 0 || n > 65536 {
        return Err(Error::Invalid(format!(
            "{}: tensor \"x\" has shape {xs:?}; its first dimension (the batch) must be in 1..=65536",
            a.inputs.display()
        )));
    }
    let mut want = vec![n];
    want.extend_from_slice(model.denoiser.sample_shape());
    let x = w.take("x", &want)?;
    let t = w.take_numbers("t", &[n])?;
    let labels = if w.contains("label") {
        let (shape, l) = w.take_ints("label")?;
        if shape != [n] {
            return Err(Error::Invalid(format!(
                "label has shape {shape:?}, expected [{n}]"
            )));
        }
        let k = model.denoiser.num_labels().unwrap_or(0) as i64;
        if let Some(bad) = l.iter().find(|&&v| v < 0 || v > k) {
            return Err(Error::Invalid(format!(
                "label {bad} is out of range 0..={k} ({k} = null label)"
            )));
        }
        Some(l.iter().map(|&v| v as u32).collect::<Vec<_>>())
    } else {
        None
    };
    let xt = Tensor::from_f32(&device, &want, &x.data)?;
    let tt = Tensor::from_f32(&device, &[n], &t.data)?;
    let lt = match (&labels, model.denoiser.num_labels()) {
        (Some(l), _) => Some(Tensor::from_u32(&device, &[n], l)?),
        (None, Some(k)) => Some(Tensor::from_u32(&device, &[n], &vec![k as u32; n])?),
        (None, None) => None,
    };
    let out = model.denoiser.forward(&xt, &tt, lt.as_ref())?.to_f32()?;
    let bytes: Vec<u8> = out.iter().flat_map(|f| f.to_le_bytes()).collect();
    let data = safetensors_bytes(vec![("out", safetensors::Dtype::F32, want, bytes)])?;
    write_file(&a.out, &data)?;
    Ok(())
}
