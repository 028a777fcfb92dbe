//! Latent diffusion's decoders and pipeline against diffusers 0.42.1 (tools/fixtures_vae.py): small
//! random-weight VQModel and AutoencoderKL decoders on both backends, CompVis/ldm-celebahq-256's
//! exact vqvae config with hashed weights (55 M parameters) on the CPU, and a tiny LDM folder
//! (unet/, vqvae/, scheduler/) sampled end to end as diffusers' LDMPipeline samples it.

use crate::common::{backends, cpu, on_each_backend, rel_l2};
use crate::unet_hub::{hashed, hashed_checkpoint, hub_metadata};
use diffscope::models::vae::{LatentDecoder, VaeConfig};
use diffscope::pipelines::gaussian::{load_dir, run};
use diffscope::process::gaussian::{SampleSettings, Sampler};
use diffscope::weights::Weights;
use diffscope::{Device, Tensor};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn decoder(g: &Device, dir: &str, weights: Weights) -> LatentDecoder {
    let cfg = std::fs::read_to_string(format!("{dir}/config.json")).unwrap();
    LatentDecoder::load(
        g,
        VaeConfig::from_json(&cfg, "config.json").unwrap(),
        weights,
    )
    .unwrap()
}

fn check_small(name: &str) {
    on_each_backend(|g| {
        let d = format!("{FIX}/vae_{name}");
        let w = Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref())
            .unwrap();
        let m = decoder(&g, &d, w);
        let mut io = Weights::from_file(format!("{d}/io.safetensors").as_ref()).unwrap();
        let ls = io.shape_of("latents").unwrap().to_vec();
        let latents = io.take("latents", &ls).unwrap().data;
        let is = io.shape_of("image").unwrap().to_vec();
        let want = io.take("image", &is).unwrap().data;
        let got = m
            .decode(&Tensor::from_f32(&g, &ls, &latents).unwrap())
            .unwrap();
        assert_eq!(got.shape(), is);
        let e = rel_l2(&got.to_f32().unwrap(), &want);
        eprintln!("{name} on {}: relative L2 {e:.2e}", g.describe());
        assert!(e <= 1e-4, "{name}: relative L2 {e:e}");
    });
}

#[test]
fn vq_decoder_matches_diffusers() {
    check_small("vq_like");
}

#[test]
fn kl_decoder_matches_diffusers() {
    check_small("kl_like");
}

#[test]
fn vq_decoder_matches_diffusers_on_ldm_celebahq_256_config() {
    let d = format!("{FIX}/hub/CompVis__ldm-celebahq-256/vqvae");
    let io_bytes = std::fs::read(format!("{d}/io.safetensors")).unwrap();
    let params: Vec<(String, Vec<usize>)> =
        serde_json::from_str(&hub_metadata(&io_bytes)["params"]).unwrap();
    let g = cpu();
    let bytes = hashed_checkpoint(&params);
    let m = decoder(&g, &d, Weights::from_bytes(&bytes, "vqvae").unwrap());
    drop(bytes);
    let ls = [2, 3, 8, 8];
    let latents: Vec<f32> = hashed(u32::MAX, 2 * 3 * 64).map(|v| v * 2.0).collect();
    let mut io = Weights::from_bytes(&io_bytes, "io").unwrap();
    let want = io.take("image", &[2, 3, 32, 32]).unwrap().data;
    let got = m
        .decode(&Tensor::from_f32(&g, &ls, &latents).unwrap())
        .unwrap()
        .to_f32()
        .unwrap();
    let e = rel_l2(&got, &want);
    let count: usize = params
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    eprintln!("ldm-celebahq-256 vqvae ({count} parameters), 8×8 latents: relative L2 {e:.2e}");
    assert!(e <= 1e-4, "relative L2 {e:e}");
}

/// A latent diffusion folder loads with its decoder and samples as diffusers' LDMPipeline does:
/// DDIM (η = 0) over the latents from the same x_T, then `vqvae.decode(latents / scaling_factor)`
/// and `(image / 2 + 0.5).clamp(0, 1)`.
#[test]
fn ldm_folder_samples_like_diffusers_ldm_pipeline() {
    let d = format!("{FIX}/ldm_tiny");
    for g in backends() {
        let m = load_dir(&g, d.as_ref()).unwrap();
        assert!(m.decoder.is_some());
        let mut io = Weights::from_file(format!("{d}/io.safetensors").as_ref()).unwrap();
        let x_t = io.take("x_T", &[2, 3, 8, 8]).unwrap().data;
        let want = io.take("images", &[2, 3, 16, 16]).unwrap().data;
        let settings = SampleSettings {
            sampler: Sampler::Ddim { eta: 0.0 },
            steps: 4,
            seed: 0,
            labels: None,
            guidance: None,
        };
        let traj = run::sample_observed(&m, &settings, 2, Some(&x_t), false, |_, _| {}).unwrap();
        let (img, shape) = m.decode_host(traj.final_state(), &traj.shape).unwrap();
        assert_eq!(shape, [2, 3, 16, 16]);
        let got: Vec<f32> = img
            .iter()
            .map(|v| (v / 2.0 + 0.5).clamp(0.0, 1.0))
            .collect();
        let e = rel_l2(&got, &want);
        eprintln!("ldm_tiny on {}: relative L2 {e:.2e}", g.describe());
        assert!(e <= 1e-4, "relative L2 {e:e}");
    }
}

/// Bad decoder configs are errors naming the field.
#[test]
fn vae_config_errors_name_the_field() {
    let cfg = std::fs::read_to_string(format!("{FIX}/vae_vq_like/config.json")).unwrap();
    for (from, to, needle) in [
        ("\"VQModel\"", "\"VQGAN\"", "_class_name"),
        ("\"group\"", "\"spatial\"", "norm_type"),
        (
            "\"UpDecoderBlock2D\"",
            "\"AttnUpDecoderBlock2D\"",
            "up_block_types",
        ),
        ("\"act_fn\"", "\"act_func\"", "unknown field \"act_func\""),
    ] {
        let bad = cfg.replacen(from, to, 1);
        assert_ne!(bad, cfg, "{from}");
        let e = VaeConfig::from_json(&bad, "c.json")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(needle), "{from}: {e}");
    }
}

/// On a GPU capped at 16 KB per binding, 20 latents whose feature maps (40 KB at once) would not fit
/// are decoded a few images at a time, and agree with the CPU backend's one-pass decode.
#[test]
fn a_batch_too_large_for_a_binding_is_decoded_in_chunks() {
    let d = format!("{FIX}/vae_vq_like");
    let load = |g: &Device| {
        let w = Weights::from_file(format!("{d}/diffusion_pytorch_model.safetensors").as_ref())
            .unwrap();
        decoder(g, &d, w)
    };
    let capped = diffscope::Gpu::new_capped(
        &Default::default(),
        diffscope::gpu::LimitCaps {
            max_storage_buffer_binding_size: Some(16 << 10),
            max_buffer_size: Some(16 << 10),
        },
    )
    .unwrap();
    let gpu = Device::Gpu(capped);
    let shape = [20, 3, 4, 4];
    let latents: Vec<f32> = hashed(7, 20 * 3 * 16).map(|v| v * 3.0).collect();
    let got = load(&gpu)
        .decode(&Tensor::from_f32(&gpu, &shape, &latents).unwrap())
        .unwrap();
    assert_eq!(got.shape(), [20, 3, 8, 8]);
    let c = cpu();
    let want = load(&c)
        .decode(&Tensor::from_f32(&c, &shape, &latents).unwrap())
        .unwrap()
        .to_f32()
        .unwrap();
    let e = rel_l2(&got.to_f32().unwrap(), &want);
    assert!(e <= 1e-5, "chunked decode vs one pass: relative L2 {e:e}");
}
