//! The FiLM-MLP against PyTorch (fixture from tools/fixtures_gaussian.py: random weights, inputs and
//! the reference output).

use crate::common::{on_each_backend, rel_l2};
use diffscope::models::film_mlp::FilmMlp;
use diffscope::nn::Denoiser;
use diffscope::weights::Weights;
use diffscope::Device;
use diffscope::Tensor;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/film_mlp");

fn load(g: &Device) -> FilmMlp {
    let cfg = std::fs::read_to_string(format!("{DIR}/config.json")).unwrap();
    let cfg = FilmMlp::parse_config(&cfg, "config.json").unwrap();
    let w = Weights::from_file(format!("{DIR}/model.safetensors").as_ref()).unwrap();
    FilmMlp::load(g, cfg, w).unwrap()
}

#[test]
fn film_mlp_matches_pytorch() {
    on_each_backend(film_mlp_matches_pytorch_on);
}

fn film_mlp_matches_pytorch_on(g: Device) {
    let m = load(&g);
    let mut io = Weights::from_file(format!("{DIR}/io.safetensors").as_ref()).unwrap();
    let x = io.take("x", &[7, 2]).unwrap();
    let t = io.take("t", &[7]).unwrap();
    let labels: Vec<u32> = io
        .take_ints("label")
        .unwrap()
        .1
        .iter()
        .map(|&v| v as u32)
        .collect();
    let want = io.take("out", &[7, 2]).unwrap();
    let xt = Tensor::from_f32(&g, &[7, 2], &x.data).unwrap();
    let tt = Tensor::from_f32(&g, &[7], &t.data).unwrap();
    let lt = Tensor::from_u32(&g, &[7], &labels).unwrap();
    let got = m.forward(&xt, &tt, Some(&lt)).unwrap().to_f32().unwrap();
    let err = rel_l2(&got, &want.data);
    assert!(
        err <= 1e-4,
        "relative L2 error {err:e}\ngot  {got:?}\nwant {:?}",
        want.data
    );
}

#[test]
fn film_mlp_rejects_bad_inputs_and_configs() {
    on_each_backend(film_mlp_rejects_bad_inputs_and_configs_on);
}

fn film_mlp_rejects_bad_inputs_and_configs_on(g: Device) {
    let m = load(&g);
    let x = Tensor::from_f32(&g, &[3, 5], &[0.0; 15]).unwrap();
    let t = Tensor::from_f32(&g, &[3], &[0.0; 3]).unwrap();
    let l = Tensor::from_u32(&g, &[3], &[0; 3]).unwrap();
    assert!(matches!(
        m.forward(&x, &t, Some(&l)),
        Err(diffscope::Error::Shape { op: "film_mlp", .. })
    ));
    let e = FilmMlp::parse_config(r#"{"architecture":"film_mlp","data_dim":2,"dim":16,"depth":2,"num_labels":3,"null_label":3,"bogus":1}"#, "c.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
    // Weights for another config: a clear error naming the tensor.
    let cfg = FilmMlp::parse_config(r#"{"architecture":"film_mlp","data_dim":2,"dim":32,"depth":2,"num_labels":3,"null_label":3}"#, "c.json").unwrap();
    let w = Weights::from_file(format!("{DIR}/model.safetensors").as_ref()).unwrap();
    let e = FilmMlp::load(&g, cfg, w).err().unwrap().to_string();
    assert!(
        e.contains("time_mlp.0.weight") && e.contains("[32, 32]"),
        "{e}"
    );
}
