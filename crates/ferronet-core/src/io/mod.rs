//! Model files and checkpoints, in the safetensors format PyTorch and the Hugging
//! Face tools read: tensors named and shaped as PyTorch's `state_dict`, the model's
//! graph spec (and, for checkpoints, the trainer's state) in the header's
//! `__metadata__`, so that a file alone rebuilds what saved it.
//!
//! - `safetensors_file`: bounds-checked reading (through the `safetensors` crate, plus
//!   the checks it leaves out) and encoding.
//! - `atomic`: temp file in the same folder, fsync, rename: a failed save leaves the
//!   previous file intact.
//! - `model_file`: a model's weights and spec.
//! - `checkpoint`: a model plus its trainer (optimizer state, schedule, random streams,
//!   epoch), so that a resumed run continues bit for bit.

pub mod atomic;
pub mod checkpoint;
pub mod model_file;
pub mod optimizer_state;
pub mod safetensors_file;

pub use checkpoint::{load_checkpoint, load_checkpoint_bytes, save_checkpoint, Checkpoint};
pub use model_file::{load_model, load_model_bytes, load_weights, load_weights_bytes, save_model, LoadOptions, Metadata};
