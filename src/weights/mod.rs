//! Safetensors weights, checked before they reach the GPU: every tensor a model asks for must exist
//! with the expected shape and finite values, and nothing may be left unused. Files are parsed with
//! the `safetensors` crate (never pickle); before that, the header is read on its own so that a
//! truncated or lying file, out-of-bounds or overlapping offsets or an unknown dtype is reported as a
//! [`WeightsProblem`] that names the tensor at fault. These checks are generic: every model family that
//! loads through [`Weights`] gets them.

pub mod config_json;
pub mod limits;

pub use crate::error::WeightsProblem;
use crate::error::{Error, Result};
use crate::tensor::{Device, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// The largest checkpoint diffscope reads (bytes). Larger files could not be bound on any device
/// diffscope targets, and reading them whole would exhaust memory first.
pub const MAX_FILE_BYTES: u64 = 4 << 30;

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

/// Bits per element of a dtype name the safetensors format defines.
fn dtype_bits(name: &str) -> Option<u64> {
    Some(match name {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" => 64,
        _ => return None,
    })
}

/// Read the header on its own and check the layout it describes, so that every inconsistency names
/// its tensor (the safetensors crate, which parses the file afterwards, reports some without names).
fn check_layout(bytes: &[u8]) -> std::result::Result<(), WeightsProblem> {
    use WeightsProblem::*;
    let total = bytes.len() as u64;
    let Some(len_bytes) = bytes.get(..8) else {
        return Err(Truncated { bytes: total });
    };
    let mut le = [0u8; 8];
    le.copy_from_slice(len_bytes);
    let claimed = u64::from_le_bytes(le);
    let available = total - 8;
    if claimed > available {
        return Err(HeaderLength { claimed, available });
    }
    let header = &bytes[8..8 + claimed as usize];
    let text = std::str::from_utf8(header).map_err(|e| Header(format!("not UTF-8: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Header(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Header("the header is not a JSON object".into()))?;
    let data_len = available - claimed;
    // (start, end, name) of every tensor.
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(obj.len());
    for (name, entry) in obj {
        if name == "__metadata__" {
            let strings = entry
                .as_object()
                .is_some_and(|m| m.values().all(|x| x.is_string()));
            if !strings {
                return Err(Header("__metadata__ must map names to strings".to_string()));
            }
            continue;
        }
        let bad = |detail: &str| BadEntry {
            tensor: name.clone(),
            detail: detail.to_string(),
        };
        let e = entry
            .as_object()
            .ok_or_else(|| bad("its header entry is not an object"))?;
        let dtype = e
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("no \"dtype\" string"))?;
        let bits = dtype_bits(dtype).ok_or_else(|| UnsupportedDtype {
            tensor: name.clone(),
            dtype: format!("\"{dtype}\" (not a safetensors dtype)"),
        })?;
        let shape: Vec<u64> = e
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect())
            .ok_or_else(|| bad("\"shape\" must be a list of non-negative integers"))?;
        let offsets: Vec<u64> = e
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect())
            .filter(|o: &Vec<u64>| o.len() == 2)
            .ok_or_else(|| bad("\"data_offsets\" must be two non-negative integers"))?;
        let (start, end) = (offsets[0], offsets[1]);
        if end < start {
            return Err(bad(&format!(
                "data_offsets [{start}, {end}] end before they start"
            )));
        }
        if end > data_len {
            return Err(OutOfBounds {
                tensor: name.clone(),
                start,
                end,
                len: data_len,
            });
        }
        let needed = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(bits))
            .filter(|b| b % 8 == 0)
            .map(|b| b / 8);
        if needed != Some(end - start) {
            return Err(SizeMismatch {
                tensor: name.clone(),
                dtype: dtype.to_string(),
                shape: shape.iter().map(|&d| d as usize).collect(),
                bytes: end - start,
                needed: match needed {
                    Some(n) => format!("{n} bytes"),
                    None => "more bytes than a file can hold (or a fraction of a byte)".into(),
                },
            });
        }
        spans.push((start, end, name));
    }
    spans.sort();
    let mut at = 0u64;
    let mut prev: Option<(u64, u64, &str)> = None;
    for &(start, end, name) in &spans {
        if let Some((ps, pe, pn)) = prev {
            if start < pe && start < end && ps < pe {
                return Err(Overlap {
                    first: pn.to_string(),
                    second: name.to_string(),
                    start,
                    end: pe.min(end),
                });
            }
        }
        if start > at {
            return Err(Gap {
                start: at,
                unused: start - at,
            });
        }
        at = at.max(end);
        if start < end {
            prev = Some((start, end, name));
        }
    }
    if at < data_len {
        return Err(Gap {
            start: at,
            unused: data_len - at,
        });
    }
    Ok(())
}

fn le_ints<const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> i64) -> Vec<i64> {
    raw.chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

impl Weights {
    /// Parse safetensors bytes; f32, f16 and bf16 are accepted (converted to f32), integer tensors are
    /// kept as integers, anything else is refused. Every float must be finite.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Weights> {
        let err = |problem: WeightsProblem| Error::Checkpoint {
            file: file.to_string(),
            problem: Box::new(problem),
        };
        check_layout(bytes).map_err(err)?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| {
            err(match e {
                safetensors::SafeTensorError::InvalidOffset(tensor) => WeightsProblem::BadEntry {
                    tensor,
                    detail: "its data_offsets do not follow the previous tensor's".into(),
                },
                other => WeightsProblem::Header(other.to_string()),
            })
        })?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let ints: Option<Vec<i64>> = match view.dtype() {
                Dtype::I64 => Some(le_ints::<8>(raw, i64::from_le_bytes)),
                Dtype::U64 => {
                    let v = le_ints::<8>(raw, |b| u64::from_le_bytes(b) as i64);
                    if let Some(&bad) = v.iter().find(|&&x| x < 0) {
                        return Err(err(WeightsProblem::IntegerRange {
                            tensor: name,
                            value: bad as u64,
                        }));
                    }
                    Some(v)
                }
                Dtype::I32 => Some(le_ints::<4>(raw, |b| i32::from_le_bytes(b) as i64)),
                Dtype::U32 => Some(le_ints::<4>(raw, |b| u32::from_le_bytes(b) as i64)),
                Dtype::I16 => Some(le_ints::<2>(raw, |b| i16::from_le_bytes(b) as i64)),
                Dtype::U16 => Some(le_ints::<2>(raw, |b| u16::from_le_bytes(b) as i64)),
                Dtype::U8 => Some(raw.iter().map(|&b| b as i64).collect()),
                Dtype::I8 => Some(raw.iter().map(|&b| b as i8 as i64).collect()),
                _ => None,
            };
            if let Some(ints) = ints {
                tensors.insert(
                    name,
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
                    return Err(err(WeightsProblem::UnsupportedDtype {
                        tensor: name,
                        dtype: format!("{other:?}"),
                    }))
                }
            };
            if let Some(index) = data.iter().position(|v| !v.is_finite()) {
                return Err(err(WeightsProblem::NonFinite {
                    tensor: name,
                    index,
                    value: data[index],
                }));
            }
            tensors.insert(
                name,
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
        let file = path.display().to_string();
        let err = |problem: WeightsProblem| Error::Checkpoint {
            file: file.clone(),
            problem: Box::new(problem),
        };
        let read = |e: std::io::Error| err(WeightsProblem::Read(e.to_string()));
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.is_dir() {
            return Err(err(WeightsProblem::Read(
                "it is a directory, not a .safetensors file".into(),
            )));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(err(WeightsProblem::FileTooLarge {
                bytes: meta.len(),
                limit: MAX_FILE_BYTES,
            }));
        }
        let bytes = std::fs::read(path).map_err(read)?;
        Self::from_bytes(&bytes, &file)
    }

    fn problem(&self, problem: WeightsProblem) -> Error {
        Error::Checkpoint {
            file: self.file.clone(),
            problem: Box::new(problem),
        }
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
            return Err(self.problem(WeightsProblem::NotFloat {
                tensor: name.to_string(),
            }));
        }
        Ok(t)
    }

    /// Remove and return the integer tensor `name` (any shape).
    pub fn take_ints(&mut self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let Some(t) = self.tensors.remove(name) else {
            return Err(self.problem(WeightsProblem::Missing {
                tensor: name.to_string(),
                shape: Vec::new(),
            }));
        };
        match t.ints {
            Some(v) => Ok((t.shape, v)),
            None => Err(self.problem(WeightsProblem::NotInteger {
                tensor: name.to_string(),
            })),
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
        let Some(t) = self.tensors.remove(name) else {
            return Err(self.problem(WeightsProblem::Missing {
                tensor: name.to_string(),
                shape: shape.to_vec(),
            }));
        };
        if t.shape != shape {
            return Err(self.problem(WeightsProblem::WrongShape {
                tensor: name.to_string(),
                got: t.shape,
                want: shape.to_vec(),
            }));
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
            None => Err(self.problem(WeightsProblem::Missing {
                tensor: names.join("\" or \""),
                shape: shape.to_vec(),
            })),
        }
    }

    /// Upload a host tensor, naming it when it is too large for one binding on this device.
    fn to_gpu(
        &self,
        device: &Device,
        name: &str,
        shape: &[usize],
        t: HostTensor,
    ) -> Result<Tensor> {
        Tensor::from_f32(device, shape, &t.data).map_err(|e| match e {
            Error::TooLarge { bytes, limit, .. } => Error::TooLarge {
                what: format!("tensor \"{name}\" of {}", self.file),
                bytes,
                limit,
            },
            other => other,
        })
    }

    /// `take` the first of `names` and upload it as blocks of whole rows (its first axis), each
    /// within the device's largest storage binding: one block where it fits, several for a weight too
    /// large for one binding (split, not refused; a single row too large is still an error).
    pub fn upload_rows(
        &mut self,
        device: &Device,
        names: &[&str],
        shape: &[usize],
    ) -> Result<Vec<Tensor>> {
        let t = self.take_any(names, shape)?;
        let name = names.join("\" / \"");
        Tensor::from_f32_row_blocks(device, shape, &t.data).map_err(|e| match e {
            Error::TooLarge { bytes, limit, .. } => Error::TooLarge {
                what: format!("tensor \"{name}\" of {}", self.file),
                bytes,
                limit,
            },
            other => other,
        })
    }

    /// `take` and upload to the GPU.
    pub fn upload(&mut self, device: &Device, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.take(name, shape)?;
        self.to_gpu(device, name, shape, t)
    }

    pub fn upload_any(
        &mut self,
        device: &Device,
        names: &[&str],
        shape: &[usize],
    ) -> Result<Tensor> {
        let t = self.take_any(names, shape)?;
        self.to_gpu(device, &names.join("\" / \""), shape, t)
    }

    /// Every tensor must have been taken: an extra tensor means the file is not for this config.
    pub fn finish(self) -> Result<()> {
        if self.tensors.is_empty() {
            return Ok(());
        }
        let names = self.tensors.keys().take(5).cloned().collect();
        Err(Error::Checkpoint {
            file: self.file,
            problem: Box::new(WeightsProblem::Extra {
                count: self.tensors.len(),
                names,
            }),
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
