//! One error type for the whole engine. Every variant names what went wrong in words a user can act on;
//! nothing in the library panics on bad input.

mod checkpoint;

pub use checkpoint::WeightsProblem;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(String),
    #[error("the GPU adapter \"{adapter}\" lacks what diffscope needs: {what}")]
    Unsupported { adapter: String, what: String },
    #[error("could not open the GPU device: {0}")]
    Device(String),
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },
    #[error("dtype mismatch in {op}: expected {expected}, got {got}")]
    DType {
        op: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error(
        "{what} holds {bytes} bytes, more than this device allows in one binding ({limit} bytes)"
    )]
    TooLarge {
        what: String,
        bytes: u64,
        limit: u64,
    },
    #[error("index out of range in {what}: {index} is not below {bound}")]
    IndexOutOfRange {
        what: String,
        index: u64,
        bound: u64,
    },
    #[error("weights {file}: {detail}")]
    Weights { file: String, detail: String },
    /// A checkpoint that cannot be used as it is; `problem` says what and names the tensor.
    #[error("weights {file}: {problem}")]
    Checkpoint {
        file: String,
        problem: Box<WeightsProblem>,
    },
    /// A config field outside what diffscope accepts (wrong type, absurd size, inconsistent).
    #[error("model config {file}: field \"{field}\": {detail}")]
    ConfigField {
        file: String,
        field: String,
        detail: String,
    },
    /// The device was lost (driver reset, GPU removed, out of memory, or destroyed): everything on it
    /// is gone; open a new `Gpu` (see `Gpu::recreate`) and reload.
    #[error("the GPU device was lost ({0}); diffscope can open a new one and carry on")]
    DeviceLost(String),
    #[error("model config {file}: {detail}")]
    Config { file: String, detail: String },
    /// An argument out of what the operation accepts (a CLI flag, a sampling setting, a shape or
    /// size handed to an op): the caller should change what it asked for.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// No shipped model of that name (in that family): `shipped` lists the ones there are.
    #[error("no shipped {family}model \"{name}\"; shipped {family}models: {}", shipped.join(", "))]
    UnknownModel {
        name: String,
        /// "" for any family, else e.g. "sequence " (how messages name the family).
        family: &'static str,
        shipped: Vec<String>,
    },
    /// A user's data (graphs, sequences, examples read from a file or handed over) that the model
    /// cannot take: `what` names the data and where in it the problem is.
    #[error("{what}: {detail}")]
    Data { what: String, detail: String },
    /// Not possible in the run's present state (nothing recorded yet, a step past the end): try
    /// again later or on another run.
    #[error("not possible now: {0}")]
    NotReady(String),
    /// Host memory for a result could not be allocated (the CPU backend allocates fallibly, so a
    /// size computed from a config is an error, not an abort).
    #[error("{what} needs {bytes} bytes of host memory, which could not be allocated")]
    OutOfMemory { what: String, bytes: u64 },
    /// A broken internal invariant: a bug in diffscope, reported instead of a panic.
    #[error("internal error (a bug; please report it): {0}")]
    Internal(String),
    /// Writing a result in a file format failed (PNG, JSON, safetensors): a bug or an impossible
    /// size, not the user's input.
    #[error("could not encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("GPU readback failed: {0}")]
    Readback(String),
    #[error("GPU validation error: {0}")]
    Validation(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op,
            detail: detail.into(),
        }
    }
}
