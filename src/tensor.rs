//! `Tensor`: a shape, a dtype and a pooled GPU buffer. Contiguous, row-major; reshape shares storage.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuBuffer, Readback};
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
pub struct Tensor {
    shape: Vec<usize>,
    dtype: DType,
    buf: Arc<GpuBuffer>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {})", self.shape, self.dtype.name())
    }
}

fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| Error::Invalid(format!("shape {shape:?} overflows")))
}

impl Tensor {
    /// An uninitialised tensor (contents are whatever the pooled buffer held).
    pub fn empty(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = numel(shape)?;
        let bytes = n
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::Invalid(format!("shape {shape:?} overflows")))?
            as u64;
        let buf = gpu.alloc(
            bytes,
            &format!("a {} tensor of shape {shape:?}", dtype.name()),
        )?;
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            buf: Arc::new(buf),
        })
    }

    pub fn zeros(gpu: &Gpu, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let t = Self::empty(gpu, shape, dtype)?;
        gpu.clear(&t.buf);
        Ok(t)
    }

    pub fn from_f32(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Self::from_bytes(
            gpu,
            shape,
            DType::F32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    pub fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        Self::from_bytes(
            gpu,
            shape,
            DType::U32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Upload indices after checking every one is below `bound` (e.g. a vocabulary size): the GPU
    /// cannot report a bad index, so bad input is refused here with the offending value.
    pub fn from_indices(
        gpu: &Gpu,
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
        Self::from_u32(gpu, shape, data)
    }

    fn from_bytes(
        gpu: &Gpu,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
        len: usize,
    ) -> Result<Tensor> {
        let n = numel(shape)?;
        if n != len {
            return Err(Error::shape(
                "upload",
                format!("shape {shape:?} holds {n} elements but {len} were given"),
            ));
        }
        let t = Self::empty(gpu, shape, dtype)?;
        gpu.write_unrecorded(&t.buf, 0, bytes);
        Ok(t)
    }

    /// Overwrite the contents from the host (same number of elements).
    pub fn write_f32(&self, data: &[f32]) -> Result<()> {
        self.expect_dtype("write_f32", DType::F32)?;
        if data.len() != self.len() {
            return Err(Error::shape(
                "write_f32",
                format!("tensor has {} elements, got {}", self.len(), data.len()),
            ));
        }
        self.gpu().write(&self.buf, 0, bytemuck::cast_slice(data));
        Ok(())
    }

    pub fn write_u32(&self, data: &[u32]) -> Result<()> {
        self.expect_dtype("write_u32", DType::U32)?;
        if data.len() != self.len() {
            return Err(Error::shape(
                "write_u32",
                format!("tensor has {} elements, got {}", self.len(), data.len()),
            ));
        }
        self.gpu().write(&self.buf, 0, bytemuck::cast_slice(data));
        Ok(())
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
            buf: self.buf.clone(),
        })
    }

    /// A new tensor with the same contents (recorded copy).
    pub fn deep_clone(&self) -> Result<Tensor> {
        let t = Self::empty(self.gpu(), &self.shape, self.dtype)?;
        self.gpu().copy(&self.buf, 0, &t.buf, 0, self.bytes());
        Ok(t)
    }

    /// Copy `other` (same shape and dtype) into `self` (recorded).
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
        self.gpu().copy(&other.buf, 0, &self.buf, 0, self.bytes());
        Ok(())
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
    pub fn gpu(&self) -> &Gpu {
        self.buf.gpu()
    }
    pub fn buffer(&self) -> &GpuBuffer {
        &self.buf
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

    /// Start reading the contents back (submits pending work). Never blocks.
    pub fn read(&self) -> TensorReadback {
        TensorReadback {
            inner: self.gpu().read(&self.buf, self.bytes()),
            dtype: self.dtype,
        }
    }

    /// Start reading several tensors back with one submission. Never blocks.
    pub fn read_many(tensors: &[&Tensor]) -> Vec<TensorReadback> {
        let Some(first) = tensors.first() else {
            return Vec::new();
        };
        let bufs: Vec<(&crate::gpu::GpuBuffer, u64)> =
            tensors.iter().map(|t| (&*t.buf, t.bytes())).collect();
        first
            .gpu()
            .read_many(&bufs)
            .into_iter()
            .zip(tensors)
            .map(|(inner, t)| TensorReadback {
                inner,
                dtype: t.dtype,
            })
            .collect()
    }

    /// Read back as f32, blocking (native: CLI, tests, benches).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_f32(&self) -> Result<Vec<f32>> {
        self.expect_dtype("to_f32", DType::F32)?;
        let b = self.read().inner.wait()?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_u32(&self) -> Result<Vec<u32>> {
        self.expect_dtype("to_u32", DType::U32)?;
        let b = self.read().inner.wait()?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }
}

/// A tensor's contents on their way back to the host.
pub struct TensorReadback {
    inner: Readback,
    dtype: DType,
}

impl TensorReadback {
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// f32 contents if ready (never blocks).
    pub fn try_f32(&mut self) -> Option<Result<Vec<f32>>> {
        self.inner
            .try_take()
            .map(|r| r.map(|b| bytemuck::pod_collect_to_vec(&b)))
    }
    pub fn try_u32(&mut self) -> Option<Result<Vec<u32>>> {
        self.try_f32()
            .map(|r| r.map(|v| v.into_iter().map(f32::to_bits).collect()))
    }
    pub async fn f32(self) -> Result<Vec<f32>> {
        let b = self.inner.await?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }
    pub async fn u32(self) -> Result<Vec<u32>> {
        let b = self.inner.await?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }
}
