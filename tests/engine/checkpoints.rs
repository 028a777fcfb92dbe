//! Bad checkpoints and configs, one table each: every input is refused with the typed error that names
//! the tensor or field at fault, and nothing panics. Run with `--nocapture` to print the table.

use crate::common::{device, Rng};
use diffscope::weights::{Weights, WeightsProblem as P};
use diffscope::Error;
use std::collections::BTreeMap;

/// A safetensors file from a header written by hand and raw data bytes.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.extend_from_slice(data);
    v
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn good() -> Vec<u8> {
    raw(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
        &f32s(&[1.0, 2.0, 3.0]),
    )
}

fn problem(r: Result<Weights, Error>) -> P {
    match r {
        Err(Error::Checkpoint { problem, .. }) => *problem,
        Err(other) => panic!("expected a checkpoint error, got {other}"),
        Ok(_) => panic!("expected a checkpoint error, the file was accepted"),
    }
}

type Check = fn(&P) -> bool;

/// Host tensors by name: (shape, values).
type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

#[test]
fn bad_checkpoint_bytes_are_typed_errors_naming_the_tensor() {
    let g = good();
    let one = |dtype: &str, shape: &str, end: usize, data: &[u8]| {
        raw(
            &format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[0,{end}]}}}}"#),
            data,
        )
    };
    let mut nonutf8 = raw(r#"{"a":1}"#, &[]);
    nonutf8[9] = 0xff;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("empty file", vec![], |p| {
            matches!(p, P::Truncated { bytes: 0 })
        }),
        ("5 bytes", vec![1, 2, 3, 4, 5], |p| {
            matches!(p, P::Truncated { .. })
        }),
        (
            "header length u64::MAX",
            {
                let mut v = g.clone();
                v[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                v
            },
            |p| matches!(p, P::HeaderLength { .. }),
        ),
        (
            "header length past the end",
            {
                let mut v = g.clone();
                v[..8].copy_from_slice(&(g.len() as u64).to_le_bytes());
                v
            },
            |p| matches!(p, P::HeaderLength { .. }),
        ),
        (
            "header length short by one",
            {
                let mut v = g.clone();
                let n = u64::from_le_bytes(v[..8].try_into().unwrap());
                v[..8].copy_from_slice(&(n - 1).to_le_bytes());
                v
            },
            |p| matches!(p, P::Header(_)),
        ),
        (
            "truncated data (last byte cut)",
            g[..g.len() - 1].to_vec(),
            |p| matches!(p, P::OutOfBounds { tensor, .. } if tensor == "b"),
        ),
        ("truncated in the header", g[..20].to_vec(), |p| {
            matches!(p, P::HeaderLength { .. })
        }),
        ("header is not JSON", raw("{abc", &[]), |p| {
            matches!(p, P::Header(_))
        }),
        ("header is a JSON array", raw("[1,2]", &[]), |p| {
            matches!(p, P::Header(_))
        }),
        ("header is not UTF-8", nonutf8, |p| {
            matches!(p, P::Header(_))
        }),
        (
            "offsets beyond the data",
            one("F32", "[2]", 1000, &f32s(&[1.0, 2.0])),
            |p| matches!(p, P::OutOfBounds { tensor, end: 1000, .. } if tensor == "w"),
        ),
        (
            "offsets end before start",
            raw(
                r#"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#,
                &f32s(&[1.0, 2.0]),
            ),
            |p| matches!(p, P::BadEntry { tensor, .. } if tensor == "w"),
        ),
        (
            "overlapping tensors",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &f32s(&[1.0, 2.0, 3.0]),
            ),
            |p| matches!(p, P::Overlap { first, second, .. } if first == "a" && second == "b"),
        ),
        (
            "a gap between tensors",
            raw(
                r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                &f32s(&[1.0, 2.0, 3.0]),
            ),
            |p| {
                matches!(
                    p,
                    P::Gap {
                        start: 4,
                        unused: 4
                    }
                )
            },
        ),
        (
            "trailing bytes",
            {
                let mut v = g.clone();
                v.extend_from_slice(&[0; 4]);
                v
            },
            |p| {
                matches!(
                    p,
                    P::Gap {
                        start: 12,
                        unused: 4
                    }
                )
            },
        ),
        (
            "shape disagrees with offsets",
            one("F32", "[3]", 8, &f32s(&[1.0, 2.0])),
            |p| matches!(p, P::SizeMismatch { tensor, bytes: 8, .. } if tensor == "w"),
        ),
        (
            "shape overflows 64 bits",
            one(
                "F32",
                "[1099511627776,1099511627776]",
                8,
                &f32s(&[1.0, 2.0]),
            ),
            |p| matches!(p, P::SizeMismatch { tensor, .. } if tensor == "w"),
        ),
        (
            "negative dimension",
            one("F32", "[-2]", 8, &f32s(&[1.0, 2.0])),
            |p| matches!(p, P::BadEntry { tensor, .. } if tensor == "w"),
        ),
        (
            "no shape field",
            raw(
                r#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#,
                &f32s(&[1.0]),
            ),
            |p| matches!(p, P::BadEntry { tensor, .. } if tensor == "w"),
        ),
        (
            "three data offsets",
            raw(
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}"#,
                &f32s(&[1.0]),
            ),
            |p| matches!(p, P::BadEntry { tensor, .. } if tensor == "w"),
        ),
        (
            "unknown dtype F99",
            one("F99", "[2]", 8, &f32s(&[1.0, 2.0])),
            |p| matches!(p, P::UnsupportedDtype { tensor, .. } if tensor == "w"),
        ),
        (
            "F64 (known, refused)",
            one("F64", "[1]", 8, &1.0f64.to_le_bytes()),
            |p| matches!(p, P::UnsupportedDtype { tensor, dtype } if tensor == "w" && dtype == "F64"),
        ),
        (
            "BOOL",
            one("BOOL", "[2]", 2, &[0, 1]),
            |p| matches!(p, P::UnsupportedDtype { tensor, .. } if tensor == "w"),
        ),
        (
            "F8_E4M3",
            one("F8_E4M3", "[2]", 2, &[0, 1]),
            |p| matches!(p, P::UnsupportedDtype { tensor, .. } if tensor == "w"),
        ),
        (
            "F4 with an odd count (half a byte)",
            one("F4", "[3]", 2, &[0, 1]),
            |p| matches!(p, P::SizeMismatch { tensor, .. } if tensor == "w"),
        ),
        (
            "NaN in F32",
            one("F32", "[3]", 12, &f32s(&[1.0, 2.0, f32::NAN])),
            |p| matches!(p, P::NonFinite { tensor, index: 2, .. } if tensor == "w"),
        ),
        (
            "+Inf in F16",
            one("F16", "[2]", 4, &[0x00, 0x3c, 0x00, 0x7c]),
            |p| matches!(p, P::NonFinite { tensor, index: 1, .. } if tensor == "w"),
        ),
        (
            "-Inf in BF16",
            one("BF16", "[1]", 2, &[0x80, 0xff]),
            |p| matches!(p, P::NonFinite { tensor, index: 0, .. } if tensor == "w"),
        ),
        (
            "NaN in F16",
            one("F16", "[1]", 2, &[0x01, 0x7e]),
            |p| matches!(p, P::NonFinite { tensor, .. } if tensor == "w"),
        ),
        (
            "U64 beyond i64",
            one("U64", "[1]", 8, &u64::MAX.to_le_bytes()),
            |p| matches!(p, P::IntegerRange { tensor, .. } if tensor == "w"),
        ),
        (
            "__metadata__ holds a number",
            raw(r#"{"__metadata__":{"x":1}}"#, &[]),
            |p| matches!(p, P::Header(_)),
        ),
        (
            "entry is a string",
            raw(r#"{"w":"F32"}"#, &[]),
            |p| matches!(p, P::BadEntry { tensor, .. } if tensor == "w"),
        ),
        (
            "empty tensor inside another",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#,
                &f32s(&[1.0, 2.0]),
            ),
            |p| matches!(p, P::BadEntry { .. }),
        ),
    ];
    eprintln!("| bad checkpoint | error |\n|---|---|");
    for (name, bytes, check) in &cases {
        let p = problem(Weights::from_bytes(bytes, "bad.safetensors"));
        eprintln!("| {name} | {p} |");
        assert!(check(&p), "{name}: unexpected {p:?}");
    }
    // The good file and the dtypes diffscope converts are accepted, with exact values.
    let mut w = Weights::from_bytes(&g, "good").unwrap();
    assert_eq!(w.take("a", &[2]).unwrap().data, vec![1.0, 2.0]);
    let mut w =
        Weights::from_bytes(&one("BF16", "[2]", 4, &[0x80, 0x3f, 0x40, 0xc0]), "bf16").unwrap();
    assert_eq!(w.take("w", &[2]).unwrap().data, vec![1.0, -3.0]);
    let mut w = Weights::from_bytes(&one("F16", "[1]", 2, &[0x00, 0x3c]), "f16").unwrap();
    assert_eq!(w.take("w", &[1]).unwrap().data, vec![1.0]);
}

/// The shipped toy2d-mlp checkpoint, as editable host tensors.
fn toy2d_tensors() -> Tensors {
    let bytes = diffscope::pipelines::gaussian::shipped("toy2d-mlp")
        .unwrap()
        .weights()
        .unwrap();
    let mut w = Weights::from_bytes(&bytes, "toy2d").unwrap();
    let names: Vec<String> = w.names().map(String::from).collect();
    names
        .into_iter()
        .map(|n| {
            let shape = w.shape_of(&n).unwrap().to_vec();
            let t = w.take(&n, &shape).unwrap();
            (n, (shape, t.data))
        })
        .collect()
}

fn serialize(t: &Tensors, int_name: Option<&str>) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = t
        .iter()
        .map(|(n, (s, d))| {
            if Some(n.as_str()) == int_name {
                let b = d.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect();
                (n.clone(), s.clone(), b, safetensors::Dtype::I64)
            } else {
                (n.clone(), s.clone(), f32s(d), safetensors::Dtype::F32)
            }
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, s, b, dt)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*dt, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn build_toy2d(config: &str, scheduler: &str, weights: &[u8]) -> Result<(), Error> {
    let w = Weights::from_bytes(weights, "model.safetensors")?;
    diffscope::pipelines::gaussian::build(
        &device(),
        "toy",
        config,
        "config.json",
        scheduler,
        "scheduler_config.json",
        w,
    )
    .map(|_| ())
}

#[test]
fn wrong_tensors_and_absurd_configs_name_what_is_wrong() {
    let shipped = diffscope::pipelines::gaussian::shipped("toy2d-mlp").unwrap();
    let (cfg, sched) = (shipped.config, shipped.process);
    let tensors = toy2d_tensors();
    build_toy2d(cfg, sched, &shipped.weights().unwrap()).expect("the shipped model loads");

    let edit = |f: &dyn Fn(&mut Tensors)| {
        let mut t = tensors.clone();
        f(&mut t);
        serialize(&t, None)
    };
    let weight_cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "missing tensor out.bias",
            edit(&|t| {
                t.remove("out.bias");
            }),
            |p| matches!(p, P::Missing { tensor, .. } if tensor == "out.bias"),
        ),
        (
            "extra tensor",
            edit(&|t| {
                t.insert("junk.weight".into(), (vec![1], vec![0.0]));
            }),
            |p| matches!(p, P::Extra { names, count: 1 } if names == &["junk.weight"]),
        ),
        (
            "mis-shaped inp.weight",
            edit(&|t| {
                t.insert("inp.weight".into(), (vec![128, 3], vec![0.0; 384]));
            }),
            |p| matches!(p, P::WrongShape { tensor, got, .. } if tensor == "inp.weight" && got == &[128, 3]),
        ),
        (
            "transposed inp.weight",
            edit(&|t| {
                t.insert("inp.weight".into(), (vec![2, 128], vec![0.0; 256]));
            }),
            |p| matches!(p, P::WrongShape { tensor, .. } if tensor == "inp.weight"),
        ),
        (
            "integer tensor for a weight",
            serialize(&tensors, Some("out.bias")),
            |p| matches!(p, P::NotFloat { tensor } if tensor == "out.bias"),
        ),
    ];
    eprintln!("| bad model weights (toy2d-mlp) | error |\n|---|---|");
    for (name, bytes, check) in &weight_cases {
        let e = build_toy2d(cfg, sched, bytes).expect_err(name);
        eprintln!("| {name} | {e} |");
        match &e {
            Error::Checkpoint { problem, .. } => assert!(check(problem), "{name}: {problem:?}"),
            other => panic!("{name}: expected a checkpoint error, got {other}"),
        }
    }

    let with = |base: &str, key: &str, value: &str| -> String {
        let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        v.to_string()
    };
    // (what, config, scheduler, field the error must name)
    let config_cases: Vec<(&str, String, String, &str)> = vec![
        (
            "dim 2^40",
            with(cfg, "dim", "1099511627776"),
            sched.into(),
            "dim",
        ),
        (
            "dim u64::MAX",
            with(cfg, "dim", "18446744073709551615"),
            sched.into(),
            "dim",
        ),
        ("odd dim", with(cfg, "dim", "127"), sched.into(), "dim"),
        ("depth 0", with(cfg, "depth", "0"), sched.into(), "depth"),
        (
            "depth 10^9",
            with(cfg, "depth", "1000000000"),
            sched.into(),
            "depth",
        ),
        (
            "data_dim 0",
            with(cfg, "data_dim", "0"),
            sched.into(),
            "data_dim",
        ),
        (
            "num_labels 2^63",
            {
                let c = with(cfg, "num_labels", "9223372036854775808");
                with(&c, "null_label", "9223372036854775808")
            },
            sched.into(),
            "num_labels",
        ),
        (
            "null_label ≠ num_labels",
            with(cfg, "null_label", "3"),
            sched.into(),
            "null_label",
        ),
        (
            "labels list too short",
            with(cfg, "labels", r#"["a"]"#),
            sched.into(),
            "labels",
        ),
        (
            "data_range inverted",
            with(cfg, "data_range", "[1.0, -1.0]"),
            sched.into(),
            "data_range",
        ),
        (
            "num_train_timesteps 10^12",
            cfg.into(),
            with(sched, "num_train_timesteps", "1000000000000"),
            "num_train_timesteps",
        ),
        (
            "num_train_timesteps 0",
            cfg.into(),
            with(sched, "num_train_timesteps", "0"),
            "num_train_timesteps",
        ),
        (
            "beta_end 1.5",
            cfg.into(),
            with(sched, "beta_end", "1.5"),
            "beta_end",
        ),
        (
            "beta_start negative",
            cfg.into(),
            with(sched, "beta_start", "-0.1"),
            "beta_start",
        ),
        (
            "steps_offset past the end",
            cfg.into(),
            with(sched, "steps_offset", "18446744073709551615"),
            "steps_offset",
        ),
        (
            "clip_sample_range 0",
            cfg.into(),
            with(sched, "clip_sample_range", "0"),
            "clip_sample_range",
        ),
    ];
    eprintln!("| bad config | error |\n|---|---|");
    for (name, c, s, field) in &config_cases {
        let e = build_toy2d(c, s, &shipped.weights().unwrap()).expect_err(name);
        eprintln!("| {name} | {e} |");
        assert!(
            matches!(&e, Error::ConfigField { field: f, .. } if f == field),
            "{name}: expected field \"{field}\", got {e}"
        );
    }
    // Errors that are not about one size field still say what is wrong.
    let other_cases: Vec<(&str, String, String, &str)> = vec![
        (
            "config not JSON",
            "{".into(),
            sched.into(),
            "not valid JSON",
        ),
        (
            "unknown architecture",
            with(cfg, "architecture", "\"transformer9000\""),
            sched.into(),
            "transformer9000",
        ),
        (
            "unknown config field",
            with(cfg, "dropout", "0.1"),
            sched.into(),
            "dropout",
        ),
        (
            "dim as a string",
            with(cfg, "dim", "\"128\""),
            sched.into(),
            "dim",
        ),
        // Unknown scheduler fields are ignored, as diffusers' from_config ignores them; a known one
        // of the wrong type is an error naming it.
        (
            "scheduler field of the wrong type",
            cfg.into(),
            with(sched, "use_karras_sigmas", "\"yes\""),
            "use_karras_sigmas",
        ),
        (
            "ᾱ underflows to 0",
            cfg.into(),
            {
                let s = with(sched, "beta_start", "0.5");
                let s = with(&s, "beta_end", "0.9");
                with(&s, "num_train_timesteps", "5000")
            },
            "drives ᾱ_t to 0",
        ),
    ];
    for (name, c, s, needle) in &other_cases {
        let e = build_toy2d(c, s, &shipped.weights().unwrap())
            .expect_err(name)
            .to_string();
        eprintln!("| {name} | {e} |");
        assert!(e.contains(needle), "{name}: {e}");
    }
}

#[test]
fn absurd_unet_configs_name_the_field() {
    use diffscope::models::unet::UNetConfig;
    let base = include_str!("../fixtures/unet_mnist_like/config.json");
    UNetConfig::from_json(base, "c").expect("fixture config parses");
    let with = |key: &str, value: &str| -> String {
        let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
        v[key] = serde_json::from_str(value).unwrap();
        v.to_string()
    };
    let cases = [
        ("sample_size", "0"),
        ("sample_size", "1000000000000"),
        ("sample_size", "[8, 16]"),
        ("sample_size", "10"),
        ("in_channels", "0"),
        ("in_channels", "100000"),
        ("block_out_channels", "[8, 16, 4000000000]"),
        ("block_out_channels", "[8,8,8,8,8,8,8,8,8]"),
        ("layers_per_block", "100000"),
        ("attention_head_dim", "0"),
        ("num_class_embeds", "1"),
        ("num_class_embeds", "0"),
        ("norm_num_groups", "0"),
        ("norm_eps", "0"),
        ("mid_block_scale_factor", "0"),
        ("downsample_padding", "7"),
    ];
    eprintln!("| bad UNet config | error |\n|---|---|");
    for (field, value) in cases {
        let e = match UNetConfig::from_json(&with(field, value), "config.json") {
            Ok(_) => panic!("{field} = {value} was accepted"),
            Err(e) => e,
        };
        eprintln!("| {field} = {value} | {e} |");
        assert!(e.to_string().contains(field), "{field} = {value}: {e}");
    }
}

/// Absurd sizes in a sequence model's config.json / process.json or a DiGress config name the field,
/// before anything is allocated.
#[test]
fn absurd_discrete_and_graph_configs_name_the_field() {
    use diffscope::models::seq_transformer::SeqTransformer;
    use diffscope::pipelines::graph::DigressModel;
    use diffscope::process::discrete::{Process, ProcessConfig};
    let with = |base: &str, key: &str, value: &str| -> String {
        let mut v: serde_json::Value = serde_json::from_str(base).unwrap();
        let mut at = &mut v;
        let mut keys = key.split('.').peekable();
        while let Some(k) = keys.next() {
            if keys.peek().is_none() {
                at[k] = serde_json::from_str(value).unwrap();
                break;
            }
            at = &mut at[k];
        }
        v.to_string()
    };
    let seq = include_str!("../../assets/words-absorb/config.json");
    let proc = include_str!("../../assets/words-absorb/process.json");
    let graph = include_str!("../../assets/planar-digress/config.json");
    SeqTransformer::parse_config(seq, "config.json").expect("shipped config parses");
    DigressModel::parse_config(graph, "config.json").expect("shipped config parses");
    let g = crate::common::device();
    let process = |json: &str| -> diffscope::Result<()> {
        let c: ProcessConfig = serde_json::from_str(json).unwrap();
        Process::from_config(&g, &c, "process.json").map(|_| ())
    };
    process(proc).expect("shipped process parses");
    eprintln!("| bad discrete or graph config | error |\n|---|---|");
    let check = |what: &str, field: &str, r: diffscope::Result<()>| {
        let e = r.expect_err(what);
        eprintln!("| {what} | {e} |");
        assert!(
            matches!(&e, diffscope::Error::ConfigField { field: f, .. } if f == field),
            "{what}: expected field {field}, got {e}"
        );
    };
    for (field, value) in [
        ("seq_len", "1000000000"),
        ("vocab", "1099511627776"),
        ("depth", "100000"),
        ("ff_mult", "100000"),
        ("out_classes", "1099511627776"),
    ] {
        let r = SeqTransformer::parse_config(&with(seq, field, value), "config.json").map(|_| ());
        check(&format!("config {field} = {value}"), field, r);
    }
    for (field, value) in [
        ("nsteps", "1000000000000"),
        ("num_classes", "1"),
        ("seq_len", "1000000000"),
        ("mask_token", "28"),
        ("pad_token", "4000000000"),
        ("last_time_idx", "1000000000000"),
    ] {
        let json = with(proc, field, value);
        let json = if field == "num_classes" {
            with(&with(&json, "vocab", "\"a\""), "mask_token", "0")
        } else {
            json
        };
        check(&format!("process {field} = {value}"), field, process(&json));
    }
    for (field, value) in [
        ("max_n_nodes", "100000"),
        ("n_layers", "100000"),
        ("diffusion_steps", "1000000000000"),
        ("hidden_dims.dx", "1099511627776"),
    ] {
        let r = DigressModel::parse_config(&with(graph, field, value), "config.json").map(|_| ());
        check(&format!("graph {field} = {value}"), field, r);
    }
}

/// The stable-toolchain stand-in for the fuzzer: deterministic mutations (bit flips, byte overwrites,
/// truncations, splices, length-field lies) of the fuzz corpus through the loader and the config
/// parsers. Anything but `Ok` or a typed error — a panic — fails the test.
#[test]
fn mutated_corpus_never_panics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let read_dir = |d: &str| -> Vec<Vec<u8>> {
        let mut v: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(root.join(d))
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v.into_iter().map(|(_, b)| b).collect()
    };
    let weights = read_dir("weights");
    let configs = read_dir("config");
    assert!(
        weights.len() >= 4 && configs.len() >= 4,
        "fuzz corpus missing"
    );
    let mut rng = Rng::new(20260520);
    let mutate = |rng: &mut Rng, seed: &[u8]| -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = [0, 0xff, b'9', b'-', b'"', b'[', b'}'][rng.below(7)];
                }
                2 if !v.is_empty() => {
                    let n = rng.below(v.len());
                    v.truncate(n);
                }
                3 if v.len() >= 8 => {
                    let lie = [0u64, 1, 7, u64::MAX, (v.len() as u64) * 2][rng.below(5)];
                    v[..8].copy_from_slice(&lie.to_le_bytes());
                }
                4 if !v.is_empty() => {
                    // Replace a digit run with a huge number: absurd shapes, offsets and sizes.
                    let i = rng.below(v.len());
                    if v[i].is_ascii_digit() {
                        let big = ["18446744073709551615", "4294967296", "99999999999", "0"];
                        let mut j = i;
                        while j < v.len() && v[j].is_ascii_digit() {
                            j += 1;
                        }
                        v.splice(i..j, big[rng.below(big.len())].bytes());
                    }
                }
                _ => {
                    let i = rng.below(v.len() + 1);
                    v.insert(i, rng.next_u64() as u8);
                }
            }
        }
        v
    };
    use diffscope::models::film_mlp::FilmMlp;
    use diffscope::models::unet::UNetConfig;
    use diffscope::process::gaussian::{Gaussian, Sampler, SchedulerConfig};
    let (mut ok, mut refused) = (0, 0);
    // DIFFSCOPE_FUZZ_SECS=600 turns this into a long stable-toolchain fuzzing run (at least the
    // usual 20,000 iterations either way).
    let secs: u64 = std::env::var("DIFFSCOPE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = std::time::Instant::now();
    let mut i = 0usize;
    while i < 20_000 || start.elapsed().as_secs() < secs {
        i += 1;
        let b = mutate(&mut rng, &weights[i % weights.len()]);
        match Weights::from_bytes(&b, "m") {
            Ok(mut w) => {
                ok += 1;
                let names: Vec<String> = w.names().map(String::from).collect();
                for n in names {
                    let s = w.shape_of(&n).unwrap().to_vec();
                    let _ = w.take_numbers(&n, &s);
                }
            }
            Err(Error::Checkpoint { .. }) => refused += 1,
            Err(e) => panic!("untyped error {e}"),
        }
        let c = mutate(&mut rng, &configs[i % configs.len()]);
        if let Some((&which, rest)) = c.split_first() {
            let text = String::from_utf8_lossy(rest);
            match which % 3 {
                0 => drop(FilmMlp::parse_config(&text, "c")),
                1 => drop(UNetConfig::from_json(&text, "c")),
                _ => {
                    if let Ok(g) = SchedulerConfig::from_json(&text, "s").and_then(Gaussian::new) {
                        let t = g.train_timesteps();
                        for steps in [1, t / 3, t] {
                            let _ = g.plan(Sampler::Ddpm, steps);
                            let _ = g.plan(Sampler::Ddim { eta: 0.0 }, steps);
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "mutated corpus: {i} iterations in {:.1} s: {ok} checkpoints accepted, {refused} refused \
         with typed errors, {i} configs parsed",
        start.elapsed().as_secs_f64()
    );
    assert!(
        ok > 0 && refused > 0,
        "the mutations must exercise both paths"
    );
}
