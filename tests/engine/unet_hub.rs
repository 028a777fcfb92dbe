//! The published UNet2DModel checkpoints' exact `config.json`s (tests/fixtures/hub/, as on the hub):
//! google/ncsnpp-ffhq-1024 and ncsnpp-bedroom-256 (score-SDE NCSN++: skip blocks, FIR resampling,
//! Fourier time embedding) and google/ddpm-cat-256. diffusers 0.42.1 built each from its config with
//! hashed weights (65–115 M parameters: too big to commit, so each tensor is a hash of its index
//! that this file recomputes bit for bit — tools/fixtures_unet.py) and ran it on a hashed input at a
//! smaller resolution than the native one; diffscope's forward on the CPU backend must match it.

use crate::common::{cpu, rel_l2};
use diffscope::models::unet::{UNet2D, UNetConfig};
use diffscope::nn::Denoiser;
use diffscope::weights::Weights;
use diffscope::Tensor;

fn mix32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846C_A68B);
    x ^ (x >> 16)
}

/// Uniform [-0.5, 0.5) values of tensor `k` (tools/fixtures_unet.py's `hashed`).
pub fn hashed(k: u32, n: usize) -> impl Iterator<Item = f32> {
    let key = k.wrapping_mul(0x85EB_CA6B).wrapping_add(1);
    (0..n as u32).map(move |i| {
        let x = mix32(i.wrapping_mul(0x9E37_79B9).wrapping_add(key));
        (x >> 8) as f32 / 16_777_216.0 - 0.5
    })
}

/// Tensor `k` of a model (tools/fixtures_unet.py's `hashed_param`).
fn hashed_param(k: u32, name: &str, shape: &[usize]) -> Vec<f32> {
    let n = shape.iter().product();
    let u = hashed(k, n);
    if name == "time_proj.weight" {
        u.map(|v| v * 32.0).collect()
    } else if shape.len() >= 2 {
        let fan_in: usize = shape[1..].iter().product();
        let s = (12.0 / fan_in as f64).sqrt() as f32;
        u.map(|v| v * s).collect()
    } else if name.contains("norm") && name.ends_with(".weight") {
        u.map(|v| 1.0 + v * 0.2).collect()
    } else {
        u.map(|v| v * 0.2).collect()
    }
}

/// The safetensors file of hashed weights for a model's `params` (names and shapes in order), so
/// they load through the same checks as a real checkpoint.
pub fn hashed_checkpoint(params: &[(String, Vec<usize>)]) -> Vec<u8> {
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .iter()
        .enumerate()
        .map(|(k, (n, shape))| {
            let v = hashed_param(k as u32, n, shape);
            (n.clone(), shape.clone(), bytemuck::cast_slice(&v).to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The `params` list (and any other metadata) of a hub fixture's io.safetensors.
pub fn hub_metadata(io_bytes: &[u8]) -> std::collections::HashMap<String, String> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(io_bytes).unwrap();
    meta.metadata().clone().unwrap()
}

fn check(name: &str) {
    let d = format!("{}/tests/fixtures/hub/{name}", env!("CARGO_MANIFEST_DIR"));
    let io_bytes = std::fs::read(format!("{d}/io.safetensors")).unwrap();
    let meta = hub_metadata(&io_bytes);
    let params: Vec<(String, Vec<usize>)> = serde_json::from_str(&meta["params"]).unwrap();
    let side: usize = meta["side"].parse().unwrap();
    let bytes = hashed_checkpoint(&params);
    let g = cpu();
    let cfg = std::fs::read_to_string(format!("{d}/config.json")).unwrap();
    let cfg = UNetConfig::from_json(&cfg, "config.json").unwrap();
    let m = UNet2D::load(&g, cfg, Weights::from_bytes(&bytes, name).unwrap()).unwrap();
    drop(bytes);
    let mut io = Weights::from_bytes(&io_bytes, "io.safetensors").unwrap();
    let out_shape = io.shape_of("out").unwrap().to_vec();
    let n = out_shape[0];
    let t = io.take_numbers("t", &[n]).unwrap();
    let want = io.take("out", &out_shape).unwrap();
    let x_shape = [n, m.sample_shape()[0], side, side];
    let x: Vec<f32> = hashed(u32::MAX, x_shape.iter().product())
        .map(|v| v * 4.0)
        .collect();
    let xt = Tensor::from_f32(&g, &x_shape, &x).unwrap();
    let tt = Tensor::from_f32(&g, &[n], &t.data).unwrap();
    let got = m.forward(&xt, &tt, None).unwrap().to_f32().unwrap();
    let err = rel_l2(&got, &want.data);
    eprintln!(
        "{name}: {} parameters, at {side}×{side}: relative L2 error {err:.2e}",
        params
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum::<usize>()
    );
    assert!(err <= 1e-4, "{name}: relative L2 error {err:e}");
}

#[test]
fn unet_matches_diffusers_on_ncsnpp_ffhq_1024_config() {
    check("google__ncsnpp-ffhq-1024");
}

#[test]
fn unet_matches_diffusers_on_ncsnpp_bedroom_256_config() {
    check("google__ncsnpp-bedroom-256");
}

#[test]
fn unet_matches_diffusers_on_ddpm_cat_256_config() {
    check("google__ddpm-cat-256");
}
