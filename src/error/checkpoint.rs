//! What is wrong with a checkpoint file, tensor by tensor. It lives beside [`super::Error`] (which
//! carries it as `Error::Checkpoint`) so that the error type depends on nothing above it;
//! `crate::weights` produces these and re-exports the type.

/// What is wrong with a checkpoint. Each variant names the tensor (or the part of the file) at fault.
#[derive(Clone, Debug, thiserror::Error)]
pub enum WeightsProblem {
    #[error("could not read the file ({0})")]
    Read(String),
    #[error("the file is {bytes} bytes, more than diffscope loads ({limit} bytes)")]
    FileTooLarge { bytes: u64, limit: u64 },
    #[error("the file is {bytes} bytes, too short for a safetensors header (truncated?)")]
    Truncated { bytes: u64 },
    #[error(
        "the header length field says {claimed} bytes but only {available} follow (truncated, or \
         not a safetensors file)"
    )]
    HeaderLength { claimed: u64, available: u64 },
    #[error("the header is not valid safetensors JSON ({0})")]
    Header(String),
    #[error("tensor \"{tensor}\": {detail}")]
    BadEntry { tensor: String, detail: String },
    #[error(
        "tensor \"{tensor}\" has dtype {dtype}; diffscope reads F32, F16 and BF16 (converted to \
         F32) and integer tensors"
    )]
    UnsupportedDtype { tensor: String, dtype: String },
    #[error(
        "tensor \"{tensor}\" claims bytes {start}..{end} but the data section holds {len} bytes \
         (truncated file, or a header that lies)"
    )]
    OutOfBounds {
        tensor: String,
        start: u64,
        end: u64,
        len: u64,
    },
    #[error("tensors \"{first}\" and \"{second}\" overlap in the file (bytes {start}..{end})")]
    Overlap {
        first: String,
        second: String,
        start: u64,
        end: u64,
    },
    #[error("tensor \"{tensor}\" is stored in {bytes} bytes, but shape {shape:?} of {dtype} needs {needed}")]
    SizeMismatch {
        tensor: String,
        dtype: String,
        shape: Vec<usize>,
        bytes: u64,
        needed: String,
    },
    #[error("{unused} bytes of the data section (from byte {start}) belong to no tensor")]
    Gap { start: u64, unused: u64 },
    #[error("tensor \"{tensor}\" holds a non-finite value ({value}) at element {index}")]
    NonFinite {
        tensor: String,
        index: usize,
        value: f32,
    },
    #[error("missing tensor \"{tensor}\" (expected shape {shape:?})")]
    Missing { tensor: String, shape: Vec<usize> },
    #[error("tensor \"{tensor}\" has shape {got:?}, the model config needs {want:?}")]
    WrongShape {
        tensor: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("tensor \"{tensor}\" is an integer tensor; a floating-point one is needed")]
    NotFloat { tensor: String },
    #[error("tensor \"{tensor}\" must hold integers")]
    NotInteger { tensor: String },
    #[error("tensor \"{tensor}\" holds {value}, beyond the integer range diffscope reads")]
    IntegerRange { tensor: String, value: u64 },
    #[error(
        "{count} tensor(s) the model config does not use, e.g. \"{}\" (is this file for another config?)",
        names.join("\", \"")
    )]
    Extra { count: usize, names: Vec<String> },
}

impl WeightsProblem {
    /// The tensor at fault, if the problem is about one tensor.
    pub fn tensor(&self) -> Option<&str> {
        use WeightsProblem::*;
        match self {
            BadEntry { tensor, .. }
            | UnsupportedDtype { tensor, .. }
            | OutOfBounds { tensor, .. }
            | SizeMismatch { tensor, .. }
            | NonFinite { tensor, .. }
            | Missing { tensor, .. }
            | WrongShape { tensor, .. }
            | NotFloat { tensor }
            | NotInteger { tensor }
            | IntegerRange { tensor, .. } => Some(tensor),
            Overlap { first, .. } => Some(first),
            _ => None,
        }
    }
}
