use crate::error::Result;
use crate::tensor::{Device, Tensor};

/// A network that denoises a batch: what a Gaussian or discrete process calls each reverse step.
/// It maps a noisy state, its timestep and an optional label to the network's output (ε, x0 or v
/// for Gaussian models, logits for discrete ones); the process never looks inside.
///
/// Natively a denoiser is `Send + Sync`, so the app can run a CPU-backend step on a worker thread;
/// in the browser wgpu's handles are not, and nothing needs them to be.
pub trait Denoiser: wgpu::WasmNotSendSync {
    /// `x`: `[N, ..data shape]`; `t`: f32 `[N]` (the training timestep index, as a float);
    /// `labels`: u32 `[N]` (the null label selects the unconditional branch), or `None` for an
    /// unconditional model. Records the forward pass; returns the output with `x`'s shape.
    fn forward(&self, x: &Tensor, t: &Tensor, labels: Option<&Tensor>) -> Result<Tensor>;
    /// The shape of one sample (e.g. `[2]` for points, `[1, 32, 32]` for images).
    fn sample_shape(&self) -> &[usize];
    /// Number of real labels (the null label is this index), if the model is conditional.
    fn num_labels(&self) -> Option<usize>;
    /// The device the weights live on.
    fn device(&self) -> &Device;
    /// What a forward pass at `batch` needs in memory, where the network can say before running
    /// (checked when a run starts; `None`: small enough not to matter).
    fn footprint(&self, _batch: usize) -> Option<super::Footprint> {
        None
    }
}
