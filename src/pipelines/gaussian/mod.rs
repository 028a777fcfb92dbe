//! Gaussian models (DDPM/DDIM over images or points): a denoiser — the FiLM-MLP or diffusers'
//! UNet2DModel — paired with its diffusers scheduler config, loaded from the zoo, a folder or files a
//! user dropped. [`run`] steps it.

pub mod run;

use std::sync::Arc;

use super::zoo::{shipped_in, Family, Shipped};
use crate::error::{Error, Result};
use crate::models::film_mlp::FilmMlp;
use crate::models::unet::{TimeProjection, UNet2D, UNetConfig};
use crate::models::vae::LatentDecoder;
use crate::nn::Denoiser;
use crate::process::gaussian::{Gaussian, SchedulerConfig};
use crate::tensor::Device;
use crate::weights::Weights;

/// A loaded Gaussian model: its denoiser and its process.
#[derive(Clone)]
pub struct GaussianModel {
    pub name: String,
    /// Shared, so a copy with other process settings (the app's clip switch) costs no weights.
    pub denoiser: Arc<dyn Denoiser>,
    pub process: Gaussian,
    /// Display names of the labels (index = label id), if conditional.
    pub labels: Vec<String>,
    /// The data range samples live in (e.g. [-1, 1]).
    pub data_range: [f32; 2],
    /// Latent diffusion: the autoencoder that turns sampled latents into images (the samples and
    /// every x_t are then latents; `data_range` is the decoded images').
    pub decoder: Option<Arc<LatentDecoder>>,
}

impl GaussianModel {
    /// Floats in one sample.
    pub fn sample_len(&self) -> usize {
        self.denoiser.sample_shape().iter().product()
    }

    /// `[n, ..sample shape]`.
    pub fn batch_shape(&self, n: usize) -> Vec<usize> {
        let mut s = vec![n];
        s.extend_from_slice(self.denoiser.sample_shape());
        s
    }

    /// Host latents `[N, ..sample shape]` decoded to images (a latent model), with their shape; the
    /// samples themselves otherwise. Blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn decode_host(&self, latents: &[f32], shape: &[usize]) -> Result<(Vec<f32>, Vec<usize>)> {
        let Some(d) = &self.decoder else {
            return Ok((latents.to_vec(), shape.to_vec()));
        };
        let device = self.denoiser.device();
        let img = d.decode(&crate::tensor::Tensor::from_f32(device, shape, latents)?)?;
        let shape = img.shape().to_vec();
        let data = img.to_f32()?;
        device.check()?;
        Ok((data, shape))
    }
}

/// A shipped Gaussian model.
pub fn shipped(name: &str) -> Result<&'static Shipped> {
    shipped_in(Family::Gaussian, name)
}

/// Build a model from a config, a scheduler config and weights (whatever their source).
pub fn build(
    device: &Device,
    name: &str,
    config: &str,
    config_file: &str,
    scheduler: &str,
    scheduler_file: &str,
    weights: Weights,
) -> Result<GaussianModel> {
    let v: serde_json::Value = serde_json::from_str(config).map_err(|e| Error::Config {
        file: config_file.to_string(),
        detail: format!("not valid JSON ({e})"),
    })?;
    let process = Gaussian::new(SchedulerConfig::from_json(scheduler, scheduler_file)?)?;
    if v.get("architecture").and_then(|a| a.as_str()) == Some("film_mlp") {
        let cfg = FilmMlp::parse_config(config, config_file)?;
        let labels = cfg.labels.clone();
        let range = cfg.data_range.unwrap_or([-1.0, 1.0]);
        let m = FilmMlp::load(device, cfg, weights)?;
        return Ok(GaussianModel {
            name: name.to_string(),
            denoiser: Arc::new(m),
            process,
            labels,
            data_range: range,
            decoder: None,
        });
    }
    if v.get("_class_name").and_then(|a| a.as_str()) == Some("UNet2DModel") {
        let cfg = UNetConfig::from_json(config, config_file)?;
        let fourier = cfg.time_embedding == TimeProjection::Fourier;
        if fourier != process.is_ve() {
            return Err(Error::Config {
                file: scheduler_file.to_string(),
                detail: if fourier {
                    "the UNet embeds a noise level σ (time_embedding_type \"fourier\", a \
                     score-SDE model) but the scheduler is not a ScoreSdeVeScheduler"
                        .into()
                } else {
                    "a ScoreSdeVeScheduler drives score-SDE models, whose UNet embeds σ \
                     (time_embedding_type \"fourier\"); this UNet embeds integer timesteps"
                        .into()
                },
            });
        }
        let m = UNet2D::load(device, cfg, weights)?;
        // Labels by number, or by the names a config's `id2label` gives them (the convention
        // transformers and diffusers' class-conditional pipelines use).
        let names = v.get("id2label").and_then(|n| n.as_object());
        let labels = (0..m.num_labels().unwrap_or(0))
            .map(|i| {
                names
                    .and_then(|n| n.get(&i.to_string()))
                    .and_then(|n| n.as_str())
                    .map_or_else(|| i.to_string(), |n| format!("{i} {n}"))
            })
            .collect();
        return Ok(GaussianModel {
            name: name.to_string(),
            denoiser: Arc::new(m),
            process,
            labels,
            // ScoreSdeVePipeline's samples live in [0, 1] (it clamps to that range).
            data_range: if fourier { [0.0, 1.0] } else { [-1.0, 1.0] },
            decoder: None,
        });
    }
    let class = v
        .get("_class_name")
        .and_then(|a| a.as_str())
        .or_else(|| v.get("architecture").and_then(|a| a.as_str()))
        .unwrap_or("(none)");
    Err(Error::Config {
        file: config_file.to_string(),
        detail: format!("unsupported architecture \"{class}\" (supported: film_mlp, UNet2DModel)"),
    })
}

pub fn load_shipped(device: &Device, name: &str) -> Result<GaussianModel> {
    let m = shipped(name)?;
    let w = Weights::from_bytes(&m.weights()?, &format!("{name}/model.safetensors"))?;
    build(
        device,
        name,
        m.config,
        &format!("{name}/config.json"),
        m.process,
        &format!("{name}/scheduler_config.json"),
        w,
    )
}

/// Build a model from files a user handed over (dropped on the window, or picked in the browser):
/// `config.json`, `scheduler_config.json` and one `.safetensors` weights file, by file name.
pub fn load_files(
    device: &Device,
    name: &str,
    files: &[(String, Vec<u8>)],
) -> Result<GaussianModel> {
    let base = |f: &str| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string();
    let find = |want: &str| files.iter().find(|(f, _)| base(f) == want);
    let text = |want: &str| -> Result<String> {
        let (f, b) = find(want).ok_or_else(|| Error::Config {
            file: want.to_string(),
            detail: format!(
                "missing: a model needs config.json, scheduler_config.json and one .safetensors file \
                 (got {})",
                files.iter().map(|(f, _)| base(f)).collect::<Vec<_>>().join(", ")
            ),
        })?;
        String::from_utf8(b.clone()).map_err(|_| Error::Config {
            file: f.clone(),
            detail: "not UTF-8 text".into(),
        })
    };
    let config = text("config.json")?;
    let scheduler = text("scheduler_config.json")?;
    let st: Vec<&(String, Vec<u8>)> = files
        .iter()
        .filter(|(f, _)| f.ends_with(".safetensors") && !base(f).starts_with("examples"))
        .collect();
    let (wf, wb) = match st.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::Config {
                file: name.to_string(),
                detail: "no .safetensors weights among the files (pickled .bin files are not read)"
                    .into(),
            })
        }
        many => {
            return Err(Error::Config {
                file: name.to_string(),
                detail: format!("{} .safetensors files; expected one", many.len()),
            })
        }
    };
    let w = Weights::from_bytes(wb, wf)?;
    build(
        device,
        name,
        &config,
        "config.json",
        &scheduler,
        "scheduler_config.json",
        w,
    )
}

/// Load a model folder: `config.json`, `scheduler_config.json` (or `scheduler/scheduler_config.json`,
/// as in diffusers pipelines; `unet/` subfolders too) and the weights: `diffusion_pytorch_model.
/// safetensors` where there is one, else the folder's only `.safetensors` file.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_dir(device: &Device, dir: &std::path::Path) -> Result<GaussianModel> {
    use std::path::PathBuf;
    let io = |p: &std::path::Path, e: std::io::Error| Error::Config {
        file: p.display().to_string(),
        detail: e.to_string(),
    };
    let model_dir: PathBuf = if dir.join("unet/config.json").exists() {
        dir.join("unet")
    } else {
        dir.to_path_buf()
    };
    let cfg_path = model_dir.join("config.json");
    let config = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    let sched_path = [
        dir.join("scheduler_config.json"),
        dir.join("scheduler/scheduler_config.json"),
        model_dir.join("scheduler_config.json"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| Error::Config {
        file: dir.display().to_string(),
        detail: "no scheduler_config.json (or scheduler/scheduler_config.json) in the folder"
            .into(),
    })?;
    let scheduler = std::fs::read_to_string(&sched_path).map_err(|e| io(&sched_path, e))?;
    let mut st: Vec<PathBuf> = std::fs::read_dir(&model_dir)
        .map_err(|e| io(&model_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("examples"))
        })
        .collect();
    st.sort();
    // diffusers' own weights name wins over other files beside it (a `.fp16` variant, inputs).
    let canonical = model_dir.join("diffusion_pytorch_model.safetensors");
    if st.contains(&canonical) {
        st = vec![canonical];
    }
    let weights_path = match st.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Config {
                file: model_dir.display().to_string(),
                detail: "no .safetensors weights in the folder (pickled .bin files are not read)"
                    .into(),
            })
        }
        many => {
            return Err(Error::Config {
                file: model_dir.display().to_string(),
                detail: format!("{} .safetensors files; expected one", many.len()),
            })
        }
    };
    let w = Weights::from_file(&weights_path)?;
    let name = super::folder_name(dir);
    let mut model = build(
        device,
        &name,
        &config,
        &cfg_path.display().to_string(),
        &scheduler,
        &sched_path.display().to_string(),
        w,
    )?;
    // A latent diffusion folder (diffusers' LDMPipeline and its kin): the UNet samples latents that
    // `vqvae/` or `vae/` decodes.
    if let Some(vae_dir) = ["vqvae", "vae"]
        .iter()
        .map(|d| dir.join(d))
        .find(|d| d.join("config.json").exists())
    {
        model.decoder = Some(Arc::new(load_decoder(device, &vae_dir)?));
        model.data_range = [-1.0, 1.0];
    }
    Ok(model)
}

/// The autoencoder of a latent diffusion folder: `config.json` and its weights.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_decoder(device: &Device, dir: &std::path::Path) -> Result<LatentDecoder> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::Config {
        file: cfg_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let config = crate::models::vae::VaeConfig::from_json(&text, &cfg_path.display().to_string())?;
    let weights = dir.join("diffusion_pytorch_model.safetensors");
    if !weights.exists() {
        return Err(Error::Config {
            file: dir.display().to_string(),
            detail: "no diffusion_pytorch_model.safetensors (pickled .bin files are not read)"
                .into(),
        });
    }
    LatentDecoder::load(device, config, Weights::from_file(&weights)?)
}
