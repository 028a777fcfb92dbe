//! `Tensor`: a shape, a dtype and its storage — a pooled GPU buffer or host memory, on the
//! [`Device`] it was made on. Contiguous, row-major; reshape shares storage.

mod device;
mod host;
mod readback;

pub use device::{Backend, Device, DeviceOptions, Opened};
pub(crate) use host::HostBuffer;
pub use host::{HostRead, HostWrite};
pub use readback::TensorReadback;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer};
pub(crate) use host::words_of_f32;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DType {
    F32,
    U32,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U32 => "u32",
        }
    }
    pub fn size(self) -> usize {
        4
    }
}

#[derive(Clone)]
enum Storage {
    Gpu(Arc<GpuBuffer>),
    Host(Arc<HostBuffer>),
}

#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    dtype: DType,
    device: Device,
    storage: Storage,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor({:?}, {}, {})",
            self.shape,
            self.dtype.name(),
            self.device.backend().name()
        )
    }
}

fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Invalid(format!("shape {shape:?} overflows")))
}

fn byte_size(shape: &[usize], dtype: DType) -> Result<u64> {
    Ok(numel(shape)?
        .checked_mul(dtype.size())
        .ok_or_else(|| Error::Invalid(format!("shape {shape:?} overflows")))? as u64)
}

fn check_len(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    let n = numel(shape)?;
    if n != len {
        return Err(Error::shape(
            op,
            format!("shape {shape:?} holds {n} elements but {len} were given"),
        ));
    }
    Ok(())
}

impl Tensor {
    /// An uninitialised tensor (on the GPU its contents are whatever the pooled buffer held).
    pub fn empty(device: impl Into<Device>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let device = device.into();
        let bytes = byte_size(shape, dtype)?;
        let what = || format!("a {} tensor of shape {shape:?}", dtype.name());
        let storage = match &device {
            Device::Gpu(g) => Storage::Gpu(Arc::new(g.alloc(bytes, &what())?)),
            Device::Cpu(_) => {
                let limit = device.max_tensor_bytes();
                if bytes > limit {
                    return Err(Error::TooLarge {
                        what: what(),
                        bytes,
                        limit,
                    });
                }
                Storage::Host(Arc::new(HostBuffer::new(host_words(
                    (bytes / 4) as usize,
                    &what,
                )?)))
            }
        };
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            device,
            storage,
        })
    }

    pub fn zeros(device: impl Into<Device>, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let t = Self::empty(device, shape, dtype)?;
        if let (Storage::Gpu(b), Some(g)) = (&t.storage, t.device.gpu()) {
            g.clear(b);
        }
        // Host memory starts zeroed.
        Ok(t)
    }

    pub fn from_f32(device: impl Into<Device>, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Self::from_words(device, shape, DType::F32, bytemuck::cast_slice(data))
    }

    /// f32 data as blocks of whole rows (the first axis), each within the device's largest storage
    /// binding: one tensor where the whole fits, several for a weight too large for one binding. A
    /// single row too large is `TooLarge`, as for [`Tensor::from_f32`].
    pub fn from_f32_row_blocks(
        device: impl Into<Device>,
        shape: &[usize],
        data: &[f32],
    ) -> Result<Vec<Tensor>> {
        let device = device.into();
        let limit = match &device {
            Device::Gpu(g) => g.max_binding(),
            Device::Cpu(_) => u64::MAX,
        };
        let row: usize = shape.iter().skip(1).product();
        let rows = shape.first().copied().unwrap_or(1);
        if (data.len() as u64) * 4 <= limit || row == 0 || (row as u64) * 4 > limit {
            return Ok(vec![Tensor::from_f32(device, shape, data)?]);
        }
        let per = (limit / (row as u64 * 4)) as usize;
        (0..rows)
            .step_by(per)
            .map(|r0| {
                let n = per.min(rows - r0);
                let mut s = shape.to_vec();
                s[0] = n;
                Tensor::from_f32(device.clone(), &s, &data[r0 * row..(r0 + n) * row])
            })
            .collect()
    }

    pub fn from_u32(device: impl Into<Device>, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        Self::from_words(device, shape, DType::U32, data)
    }

    /// An f32 tensor that takes `data` over: no copy on the CPU backend (an op's output), one upload
    /// on a GPU.
    pub fn from_vec_f32(
        device: impl Into<Device>,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<Tensor> {
        let device = device.into();
        match device {
            Device::Cpu(_) => Self::new_host(device, shape, DType::F32, words_of_f32(data)),
            Device::Gpu(_) => Self::from_f32(device, shape, &data),
        }
    }

    /// A u32 tensor that takes `data` over (see [`Tensor::from_vec_f32`]).
    pub fn from_vec_u32(
        device: impl Into<Device>,
        shape: &[usize],
        data: Vec<u32>,
    ) -> Result<Tensor> {
        let device = device.into();
        match device {
            Device::Cpu(_) => Self::new_host(device, shape, DType::U32, data),
            Device::Gpu(_) => Self::from_u32(device, shape, &data),
        }
    }

    /// A tensor of `dtype` that takes its elements' 32-bit patterns over (layout ops, which move
    /// words whatever they mean).
    pub fn from_vec_words(
        device: impl Into<Device>,
        shape: &[usize],
        dtype: DType,
        words: Vec<u32>,
    ) -> Result<Tensor> {
        let device = device.into();
        match device {
            Device::Cpu(_) => Self::new_host(device, shape, dtype, words),
            Device::Gpu(_) => Self::from_words(device, shape, dtype, &words),
        }
    }

    fn new_host(device: Device, shape: &[usize], dtype: DType, words: Vec<u32>) -> Result<Tensor> {
        check_len("upload", shape, words.len())?;
        Self::host_of(device, shape, dtype, words)
    }

    /// A host tensor over `words` (all of its elements, or none yet), within the backend's size.
    fn host_of(device: Device, shape: &[usize], dtype: DType, words: Vec<u32>) -> Result<Tensor> {
        let bytes = byte_size(shape, dtype)?;
        let limit = device.max_tensor_bytes();
        if bytes > limit {
            return Err(Error::TooLarge {
                what: format!("a {} tensor of shape {shape:?}", dtype.name()),
                bytes,
                limit,
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            device,
            storage: Storage::Host(Arc::new(HostBuffer::new(words))),
        })
    }

    /// Upload indices after checking every one is below `bound` (e.g. a vocabulary size): the GPU
    /// cannot report a bad index, so bad input is refused here with the offending value.
    pub fn from_indices(
        device: impl Into<Device>,
        shape: &[usize],
        data: &[u32],
        bound: u32,
        what: &str,
    ) -> Result<Tensor> {
        if let Some(&bad) = data.iter().find(|&&v| v >= bound) {
            return Err(Error::IndexOutOfRange {
                what: what.to_string(),
                index: bad as u64,
                bound: bound as u64,
            });
        }
        Self::from_u32(device, shape, data)
    }

    fn from_words(
        device: impl Into<Device>,
        shape: &[usize],
        dtype: DType,
        words: &[u32],
    ) -> Result<Tensor> {
        let device = device.into();
        check_len("upload", shape, words.len())?;
        if let Device::Cpu(_) = device {
            return Self::new_host(device, shape, dtype, words.to_vec());
        }
        let t = Self::empty(device, shape, dtype)?;
        if let (Storage::Gpu(b), Some(g)) = (&t.storage, t.device.gpu()) {
            g.write_unrecorded(b, 0, bytemuck::cast_slice(words));
        }
        Ok(t)
    }

    fn write_words(&self, op: &'static str, dtype: DType, words: &[u32]) -> Result<()> {
        self.expect_dtype(op, dtype)?;
        if words.len() != self.len() {
            return Err(Error::shape(
                op,
                format!("tensor has {} elements, got {}", self.len(), words.len()),
            ));
        }
        match &self.storage {
            Storage::Gpu(b) => self.gpu()?.write(b, 0, bytemuck::cast_slice(words)),
            Storage::Host(h) => {
                self.flushed()?;
                h.write()?.u32().copy_from_slice(words)
            }
        }
        Ok(())
    }

    /// Overwrite the contents from the host (same number of elements).
    pub fn write_f32(&self, data: &[f32]) -> Result<()> {
        self.write_words("write_f32", DType::F32, bytemuck::cast_slice(data))
    }

    pub fn write_u32(&self, data: &[u32]) -> Result<()> {
        self.write_words("write_u32", DType::U32, data)
    }

    /// Same storage, new shape (same element count). No copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = numel(shape)?;
        if n != self.len() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "{:?} ({} elements) to {shape:?} ({n})",
                    self.shape,
                    self.len()
                ),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype: self.dtype,
            device: self.device.clone(),
            storage: self.storage.clone(),
        })
    }

    /// A new tensor with the same contents (a recorded copy on the GPU).
    pub fn deep_clone(&self) -> Result<Tensor> {
        match &self.storage {
            Storage::Gpu(b) => {
                let t = Self::empty(&self.device, &self.shape, self.dtype)?;
                self.gpu()?.copy(b, 0, t.buffer()?, 0, self.bytes());
                Ok(t)
            }
            Storage::Host(h) => match &self.device {
                // Recorded, so the copy holds what the tensor holds after the ops before it.
                Device::Cpu(c) if c.deferred() => {
                    let out = Self::unfilled_host(&self.device, &self.shape, self.dtype)?;
                    let (from, to) = (h.clone(), out.host_buffer()?);
                    let skip = to.zeros_on_skip(self.len());
                    c.record(crate::cpu::queue::Job {
                        run: Box::new(move || {
                            let words = from.read()?.u32().to_vec();
                            *to.write()?.u32_vec() = words;
                            Ok(())
                        }),
                        skip: Some(skip),
                    })?;
                    Ok(out)
                }
                _ => {
                    let words = h.read()?.u32().to_vec();
                    Self::new_host(self.device.clone(), &self.shape, self.dtype, words)
                }
            },
        }
    }

    /// Copy `other` (same shape, dtype and device) into `self` (a recorded copy on the GPU).
    pub fn copy_from(&self, other: &Tensor) -> Result<()> {
        if other.shape != self.shape || other.dtype != self.dtype {
            return Err(Error::shape(
                "copy_from",
                format!(
                    "{:?} {} into {:?} {}",
                    other.shape,
                    other.dtype.name(),
                    self.shape,
                    self.dtype.name()
                ),
            ));
        }
        same_device("copy_from", &[self, other])?;
        match (&self.storage, &other.storage) {
            (Storage::Gpu(dst), Storage::Gpu(src)) => {
                self.gpu()?.copy(src, 0, dst, 0, self.bytes());
            }
            (Storage::Host(dst), Storage::Host(src)) => {
                if !Arc::ptr_eq(dst, src) {
                    let words = src.read()?;
                    dst.write()?.u32().copy_from_slice(words.u32());
                }
            }
            _ => return Err(Error::Internal("copy_from across backends".into())),
        }
        Ok(())
    }

    /// This tensor on `device` (a copy; the same tensor when it is already there). Crossing
    /// backends reads back, so it blocks: tests, benches and the CLI (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device.same(device) {
            return Ok(self.clone());
        }
        let words = match self.dtype {
            DType::F32 => words_of_f32(self.to_f32()?),
            DType::U32 => self.to_u32()?,
        };
        Self::from_vec_words(device, &self.shape, self.dtype, words)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dims(&self) -> usize {
        self.shape.len()
    }
    pub fn dim(&self, i: usize) -> usize {
        self.shape[i]
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn bytes(&self) -> u64 {
        (self.len() * self.dtype.size()) as u64
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The device the tensor lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The wgpu device, for GPU kernels; an internal error for a host tensor (ops dispatch on
    /// [`Tensor::device`] first, so reaching this with one is a bug).
    pub fn gpu(&self) -> Result<&Gpu> {
        self.device.gpu().ok_or_else(|| mixed(self, "a GPU kernel"))
    }
    /// The GPU buffer, for binding (see [`Tensor::gpu`]).
    pub fn buffer(&self) -> Result<&GpuBuffer> {
        match &self.storage {
            Storage::Gpu(b) => Ok(b),
            Storage::Host(_) => Err(mixed(self, "a GPU kernel")),
        }
    }
    /// The elements of a host tensor, read-locked, for CPU kernels (after the ops recorded before
    /// have run, on a deferred CPU backend).
    pub fn host(&self) -> Result<HostRead<'_>> {
        self.flushed()?;
        self.host_now()
    }
    /// The elements of a host tensor, write-locked (ops that write a given output in place).
    pub fn host_mut(&self) -> Result<HostWrite<'_>> {
        self.flushed()?;
        self.host_now_mut()
    }
    /// [`Tensor::host`] without running recorded ops: for a recorded op itself, which runs after
    /// every op recorded before it.
    pub(crate) fn host_now(&self) -> Result<HostRead<'_>> {
        match &self.storage {
            Storage::Host(h) => h.read(),
            Storage::Gpu(_) => Err(mixed(self, "a CPU kernel")),
        }
    }
    pub(crate) fn host_now_mut(&self) -> Result<HostWrite<'_>> {
        match &self.storage {
            Storage::Host(h) => h.write(),
            Storage::Gpu(_) => Err(mixed(self, "a CPU kernel")),
        }
    }
    /// The host storage itself (a recorded op fills an output through it).
    pub(crate) fn host_buffer(&self) -> Result<Arc<HostBuffer>> {
        match &self.storage {
            Storage::Host(h) => Ok(h.clone()),
            Storage::Gpu(_) => Err(mixed(self, "a CPU kernel")),
        }
    }
    /// A host tensor whose storage a recorded op will fill (empty until then).
    pub(crate) fn unfilled_host(device: &Device, shape: &[usize], dtype: DType) -> Result<Tensor> {
        Self::host_of(device.clone(), shape, dtype, Vec::new())
    }
    /// Run the ops recorded on a deferred CPU backend (before host memory is touched directly).
    fn flushed(&self) -> Result<()> {
        match &self.device {
            Device::Cpu(c) => c.flush(),
            Device::Gpu(_) => Ok(()),
        }
    }

    pub(crate) fn expect_dtype(&self, op: &'static str, d: DType) -> Result<()> {
        if self.dtype != d {
            return Err(Error::DType {
                op,
                expected: d.name(),
                got: self.dtype.name(),
            });
        }
        Ok(())
    }

    /// Start reading the contents back (submits pending GPU work). Never blocks; a host tensor's
    /// readback is ready at once.
    pub fn read(&self) -> TensorReadback {
        match &self.storage {
            Storage::Gpu(b) => match self.gpu() {
                Ok(g) => TensorReadback::pending(g.read(b, self.bytes()), self.dtype),
                Err(e) => TensorReadback::ready(Err(e), self.dtype),
            },
            Storage::Host(h) => match &self.device {
                // A recorded copy (what the tensor holds now, as a GPU readback copies it
                // in order), which the readback's polls run a slice at a time.
                Device::Cpu(c) if c.deferred() => {
                    match self.deep_clone().and_then(|t| t.host_buffer()) {
                        Ok(copy) => {
                            TensorReadback::recorded(c.clone(), copy, self.len(), self.dtype)
                        }
                        Err(e) => TensorReadback::ready(Err(e), self.dtype),
                    }
                }
                _ => {
                    let bytes = h.read().map(|w| bytemuck::cast_slice(w.u32()).to_vec());
                    TensorReadback::ready(bytes, self.dtype)
                }
            },
        }
    }

    /// Start reading several tensors back with one GPU submission. Never blocks.
    pub fn read_many(tensors: &[&Tensor]) -> Vec<TensorReadback> {
        let Some(first) = tensors.first() else {
            return Vec::new();
        };
        let on_one_gpu = first.device.gpu().is_some()
            && same_device("read_many", tensors).is_ok()
            && tensors.iter().all(|t| matches!(t.storage, Storage::Gpu(_)));
        let Some(gpu) = first.device.gpu().filter(|_| on_one_gpu) else {
            return tensors.iter().map(|t| t.read()).collect();
        };
        let bufs: Vec<(&GpuBuffer, u64)> = tensors
            .iter()
            .filter_map(|t| match &t.storage {
                Storage::Gpu(b) => Some((&**b, t.bytes())),
                Storage::Host(_) => None,
            })
            .collect();
        gpu.read_many(&bufs)
            .into_iter()
            .zip(tensors)
            .map(|(inner, t)| TensorReadback::pending(inner, t.dtype))
            .collect()
    }

    /// Read back as f32, blocking (native: CLI, tests, benches).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.expect_dtype("to_f32", DType::F32)?;
        if let Storage::Host(h) = &self.storage {
            self.flushed()?;
            return Ok(h.read()?.f32().to_vec());
        }
        self.read().wait_f32()
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype("to_u32", DType::U32)?;
        if let Storage::Host(h) = &self.storage {
            self.flushed()?;
            return Ok(h.read()?.u32().to_vec());
        }
        self.read().wait_u32()
    }
}

/// An op dispatches on its first tensor's device; another tensor of a different device reaches the
/// kernel's binding (or host slice) and is refused here, with the same typed error as
/// [`same_device`].
fn mixed(t: &Tensor, kernel: &str) -> Error {
    Error::Invalid(format!(
        "{kernel} was given a tensor on {}: its tensors are on different devices; move them with \
         to_device",
        t.device.describe()
    ))
}

/// Zeroed host words, refusing (instead of aborting) when the allocator cannot provide them.
fn host_words(n: usize, what: &dyn Fn() -> String) -> Result<Vec<u32>> {
    crate::cpu::alloc::zeroed(n, what)
}

/// The device every tensor of one op shares; an op given tensors of two devices is refused.
pub fn same_device<'a>(op: &'static str, ts: &[&'a Tensor]) -> Result<&'a Device> {
    let Some(first) = ts.first() else {
        return Err(Error::Internal(format!("{op}: no tensors")));
    };
    for t in &ts[1..] {
        if !t.device.same(&first.device) {
            return Err(Error::Invalid(format!(
                "{op}: its tensors are on different devices ({} and {}); move them with to_device",
                first.device.describe(),
                t.device.describe()
            )));
        }
    }
    Ok(&first.device)
}
