//! One error type for the core. Each variant names the problem and the place.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// A configuration value is out of range; `field` is the option's name.
    #[error("invalid option `{field}`: {reason}")]
    InvalidConfig { field: String, reason: String },

    /// A model spec that does not compile; `node` names the node at fault.
    #[error("{message}")]
    Graph { node: String, message: String },

    /// Arrays whose shapes do not fit together.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },

    /// A regression/multi-label target array whose width does not fit the model's output.
    #[error("targets have {got} values per sample but the network outputs {expected}")]
    TargetWidth { expected: usize, got: usize },

    /// A label outside `0..classes`.
    #[error(
        "label {label} of sample {index} is out of range for a network with {classes} outputs"
    )]
    LabelOutOfRange {
        index: usize,
        label: u32,
        classes: usize,
    },

    /// An input or target holding NaN or ±∞ (found as the batch was gathered, before
    /// anything was trained on it); epoch and batch are 0 outside a fit.
    #[error("the {what} of sample {sample} holds NaN or ±Infinity (epoch {epoch}, batch {batch}); nothing was trained on this batch: check the data, or whether it was changed after it was given to ferronet")]
    NonFiniteData { what: String, sample: usize, epoch: usize, batch: usize },

    /// A graph input value an op cannot take: an Embedding's id that is not an integer
    /// in 0..numEmbeddings. Found before the forward pass; `sample` counts in the data
    /// given, `position` within the sample (its flat index).
    #[error("{node} ({op}): input value {value} of sample {sample}, position {position} {reason}")]
    InvalidInput { node: String, op: String, sample: usize, position: usize, value: f32, reason: String },

    /// Training diverged: the loss is NaN or infinite.
    #[error("loss became {value} at epoch {epoch}, batch {batch}: lower the learning rate or check the inputs for NaN/Inf")]
    NonFiniteLoss {
        value: f32,
        epoch: usize,
        batch: usize,
    },

    /// A gradient became NaN or infinite while the loss was finite (an overflow in
    /// backward); no update was made. `param` names the first such tensor.
    /// `at` says where: "at epoch 1, batch 2 (the loss was finite)", "before optimizer.step()".
    #[error("the gradient of {param} became NaN or infinite {at}; no update was made. {hint}")]
    NonFiniteGradient {
        param: String,
        at: String,
        /// What to do about it, for where it happened.
        hint: String,
    },

    /// A model file or checkpoint that cannot be read or written: `path` names the
    /// file, `message` the problem (and the tensor or field when there is one).
    #[error("{path}: {message}")]
    ModelFile { path: String, message: String },

    /// A model (or its batch buffers) larger than this machine can allocate: an error
    /// before any work, instead of the abort Rust's allocator would end the process with.
    #[error("could not allocate {gib:.1} GiB for {what}: the model is too large for this machine's memory")]
    OutOfMemory { what: String, gib: f64 },

    /// The caller asked training to stop (AbortSignal); `steps` optimizer steps were done.
    #[error("training was aborted after {steps} steps")]
    Aborted { steps: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `NonFiniteGradient` for batch `batch` of epoch `epoch` of a training loop.
    pub fn gradient_in_batch(param: String, epoch: usize, batch: usize, hint: &str) -> Self {
        Error::NonFiniteGradient { param, at: format!("at epoch {epoch}, batch {batch} (the loss was finite)"), hint: hint.to_string() }
    }
    pub fn config(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
    pub fn graph(node: &str, message: impl Into<String>) -> Self {
        Error::Graph {
            node: node.to_string(),
            message: message.into(),
        }
    }
    pub fn model_file(path: &std::path::Path, message: impl Into<String>) -> Self {
        Error::ModelFile {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
    /// Tries to allocate `n` zeroed floats for `what`.
    pub fn try_zeros(n: usize, what: &str) -> Result<Vec<f32>> {
        let fail = || Error::OutOfMemory { what: what.to_string(), gib: n as f64 * 4.0 / (1u64 << 30) as f64 };
        let mut v: Vec<f32> = Vec::new();
        n.checked_mul(4).filter(|&b| b <= isize::MAX as usize).ok_or_else(fail)?;
        v.try_reserve_exact(n).map_err(|_| fail())?;
        v.resize(n, 0.0);
        Ok(v)
    }
    pub fn shape(what: &str, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
