//! Safetensors weights, checked before they reach the GPU: every tensor a model asks for must exist
//! with the expected shape and finite values, and nothing may be left unused. A truncated or lying
//! file, a wrong dtype or a NaN is an error that names the file and the tensor.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// A tensor on the host. Floating-point tensors are converted to f32 (`data`); integer tensors keep
/// their values in `ints` (and `data` holds them as f32 for callers that accept either).
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub ints: Option<Vec<i64>>,
}

pub struct Weights {
    file: String,
    tensors: BTreeMap<String, HostTensor>,
    /// Made-up weights (see [`Weights::synthetic`]): the seed.
    synthetic: Option<u64>,
}

impl Weights {
    /// Parse safetensors bytes; f32, f16 and bf16 are accepted (converted to f32).
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Weights> {
        let err = |detail: String| Error::Weights {
            file: file.to_string(),
            detail,
        };
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| err(format!("not a valid safetensors file ({e})")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let ints: Option<Vec<i64>> = match view.dtype() {
                Dtype::I64 => Some(
                    raw.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect(),
                ),
                Dtype::I32 => Some(
                    raw.chunks_exact(4)
                        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                        .collect(),
                ),
                Dtype::U32 => Some(
                    raw.chunks_exact(4)
                        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as i64)
                        .collect(),
                ),
                Dtype::I16 => Some(
                    raw.chunks_exact(2)
                        .map(|c| i16::from_le_bytes(c.try_into().expect("2 bytes")) as i64)
                        .collect(),
                ),
                Dtype::U8 => Some(raw.iter().map(|&b| b as i64).collect()),
                Dtype::I8 => Some(raw.iter().map(|&b| b as i8 as i64).collect()),
                _ => None,
            };
            if let Some(ints) = ints {
                tensors.insert(
                    name.clone(),
                    HostTensor {
                        shape: view.shape().to_vec(),
                        data: ints.iter().map(|&v| v as f32).collect(),
                        ints: Some(ints),
                    },
                );
                continue;
            }
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                    .collect(),
                other => {
                    return Err(err(format!(
                        "tensor \"{name}\" has dtype {other:?}; diffscope reads F32, F16, BF16 and integer tensors"
                    )))
                }
            };
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(err(format!(
                    "tensor \"{name}\" holds a non-finite value ({}) at element {i}",
                    data[i]
                )));
            }
            tensors.insert(
                name.clone(),
                HostTensor {
                    shape: view.shape().to_vec(),
                    data,
                    ints: None,
                },
            );
        }
        Ok(Weights {
            file: file.to_string(),
            tensors,
            synthetic: None,
        })
    }

    /// Weights that make up every floating-point tensor a model asks for, with the shape it asks for:
    /// deterministic uniforms in ±1/√fan_in (fan_in = all but the first axis), so activations stay
    /// O(1). For timing a model whose trained weights are not at hand (`diffscope bench`); the
    /// outputs mean nothing.
    pub fn synthetic(label: &str, seed: u64) -> Weights {
        Weights {
            file: label.to_string(),
            tensors: BTreeMap::new(),
            synthetic: Some(seed),
        }
    }

    fn made_up(seed: u64, name: &str, shape: &[usize]) -> HostTensor {
        // FNV-1a of the name, so each tensor gets its own numbers whatever order they are taken in.
        let key = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let a = 1.0 / (fan_in as f32).sqrt();
        let n: usize = shape.iter().product();
        let mut state = seed ^ key;
        let data = (0..n)
            .map(|_| {
                // splitmix64
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                let u = (z >> 40) as f32 / (1u64 << 24) as f32;
                a * (2.0 * u - 1.0)
            })
            .collect();
        HostTensor {
            shape: shape.to_vec(),
            data,
            ints: None,
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_file(path: &std::path::Path) -> Result<Weights> {
        let bytes = std::fs::read(path).map_err(|e| Error::Weights {
            file: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|s| s.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Remove and return floating-point tensor `name`, which must have exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.take_numbers(name, shape)?;
        if t.ints.is_some() {
            return Err(Error::Weights {
                file: self.file.clone(),
                detail: format!(
                    "tensor \"{name}\" is an integer tensor; a floating-point one is needed"
                ),
            });
        }
        Ok(t)
    }

    /// Remove and return the integer tensor `name` (any shape).
    pub fn take_ints(&mut self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let t = self.tensors.remove(name).ok_or_else(|| Error::Weights {
            file: self.file.clone(),
            detail: format!("missing tensor \"{name}\""),
        })?;
        match t.ints {
            Some(v) => Ok((t.shape, v)),
            None => Err(Error::Weights {
                file: self.file.clone(),
                detail: format!("tensor \"{name}\" must hold integers"),
            }),
        }
    }

    /// The shape of `name`, if present.
    pub fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.shape.as_slice())
    }

    /// Remove and return `name` (floating-point or integer, as f32), which must have exactly `shape`.
    pub fn take_numbers(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        if let (Some(seed), false) = (self.synthetic, self.tensors.contains_key(name)) {
            return Ok(Self::made_up(seed, name, shape));
        }
        let t = self.tensors.remove(name).ok_or_else(|| Error::Weights {
            file: self.file.clone(),
            detail: format!("missing tensor \"{name}\" (expected shape {shape:?})"),
        })?;
        if t.shape != shape {
            return Err(Error::Weights {
                file: self.file.clone(),
                detail: format!(
                    "tensor \"{name}\" has shape {:?}, the model config needs {shape:?}",
                    t.shape
                ),
            });
        }
        Ok(t)
    }

    /// The first of `names` that exists (for renamed parameters, e.g. `query` → `to_q`).
    pub fn take_any(&mut self, names: &[&str], shape: &[usize]) -> Result<HostTensor> {
        let found = names
            .iter()
            .find(|n| self.tensors.contains_key(**n))
            .or(self.synthetic.and(names.first()));
        match found {
            Some(n) => self.take(n, shape),
            None => Err(Error::Weights {
                file: self.file.clone(),
                detail: format!(
                    "missing tensor \"{}\" (expected shape {shape:?})",
                    names.join("\" or \"")
                ),
            }),
        }
    }

    /// `take` and upload to the GPU.
    pub fn upload(&mut self, gpu: &Gpu, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.take(name, shape)?;
        Tensor::from_f32(gpu, shape, &t.data)
    }

    pub fn upload_any(&mut self, gpu: &Gpu, names: &[&str], shape: &[usize]) -> Result<Tensor> {
        let t = self.take_any(names, shape)?;
        Tensor::from_f32(gpu, shape, &t.data)
    }

    /// Every tensor must have been taken: an extra tensor means the file is not for this config.
    pub fn finish(self) -> Result<()> {
        if self.tensors.is_empty() {
            return Ok(());
        }
        let extra: Vec<&str> = self.tensors.keys().map(|s| s.as_str()).take(5).collect();
        Err(Error::Weights {
            file: self.file,
            detail: format!(
                "{} tensor(s) the model config does not use, e.g. \"{}\"",
                self.tensors.len(),
                extra.join("\", \"")
            ),
        })
    }
}

/// IEEE half to single, exact (subnormals included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: value = f · 2^-24
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(n, d, s, b)| {
                (
                    n.to_string(),
                    safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_checks_and_names_problems() {
        let bytes = file(&[
            (
                "a",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
            ),
            ("b", Dtype::F16, vec![2], vec![0x00, 0x3c, 0x00, 0xc0]), // 1.0, -2.0
        ]);
        let mut w = Weights::from_bytes(&bytes, "m.safetensors").unwrap();
        assert_eq!(w.take("b", &[2]).unwrap().data, vec![1.0, -2.0]);
        let e = w.take("a", &[4]).unwrap_err().to_string();
        assert!(
            e.contains("\"a\" has shape [2, 2]") && e.contains("m.safetensors"),
            "{e}"
        );
        let e = w.take("zzz", &[1]).unwrap_err().to_string();
        assert!(e.contains("missing tensor \"zzz\""), "{e}");

        let mut w = Weights::from_bytes(&bytes, "m").unwrap();
        w.take("a", &[2, 2]).unwrap();
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("\"b\""), "{e}");
    }

    #[test]
    fn truncated_lying_nan_and_int_files_are_errors() {
        let good = file(&[("a", Dtype::F32, vec![3], f32_bytes(&[1.0, 2.0, 3.0]))]);
        for cut in [0, 7, 8, 20, good.len() - 1] {
            assert!(
                Weights::from_bytes(&good[..cut], "t").is_err(),
                "cut at {cut}"
            );
        }
        // A header that claims more data than the file has.
        let mut lying = good.clone();
        let hdr_len = u64::from_le_bytes(lying[..8].try_into().unwrap()) as usize;
        let hdr = String::from_utf8(lying[8..8 + hdr_len].to_vec()).unwrap();
        let bad = hdr.replace("[3]", "[9]");
        lying.splice(8..8 + hdr_len, bad.bytes());
        assert!(Weights::from_bytes(&lying, "t").is_err());
        let nan = file(&[("a", Dtype::F32, vec![2], f32_bytes(&[1.0, f32::NAN]))]);
        let e = Weights::from_bytes(&nan, "t").err().unwrap().to_string();
        assert!(e.contains("non-finite"), "{e}");
        let ints = file(&[("a", Dtype::I64, vec![1], vec![7, 0, 0, 0, 0, 0, 0, 0])]);
        let mut w = Weights::from_bytes(&ints, "t").unwrap();
        let e = w.take("a", &[1]).unwrap_err().to_string();
        assert!(e.contains("integer tensor"), "{e}");
        let mut w = Weights::from_bytes(&ints, "t").unwrap();
        assert_eq!(w.take_ints("a").unwrap(), (vec![1], vec![7]));
        let bools = file(&[("a", Dtype::BOOL, vec![1], vec![1])]);
        let e = Weights::from_bytes(&bools, "t").err().unwrap().to_string();
        assert!(e.contains("dtype BOOL"), "{e}");
    }

    #[test]
    fn half_conversion_is_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8000), -0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn synthetic_weights_have_the_asked_shape_and_stay_in_range() {
        let mut w = Weights::synthetic("bench", 3);
        let a = w.take("conv.weight", &[4, 3, 3, 3]).unwrap();
        assert_eq!(a.shape, [4, 3, 3, 3]);
        let bound = 1.0 / 27f32.sqrt();
        assert!(a.data.iter().all(|v| v.abs() <= bound));
        // Not constant, and the same name gives the same numbers.
        assert!(a.data.iter().any(|v| (v - a.data[0]).abs() > 1e-3));
        let again = Weights::synthetic("bench", 3)
            .take("conv.weight", &[4, 3, 3, 3])
            .unwrap();
        assert_eq!(a.data, again.data);
        let b = w.take_any(&["to_q.weight", "query.weight"], &[2]).unwrap();
        assert_eq!(b.shape, [2]);
        assert!(w.finish().is_ok());
    }
}
