//! ferronet-core: the numerical heart of ferronet.
//!
//! Plain, explicit forward and backward functions per layer (`layers`), a fused
//! softmax cross-entropy (`loss`), PyTorch-exact optimizers (`optim`), a sequential
//! model that owns its parameters and workspaces (`model`), and the whole epoch
//! loop (`train`). Every matrix product goes through [`matmul::matmul`], the one
//! function our own SIMD GEMM will replace.
//!
//! This crate knows nothing of Node; `ferronet-node` translates it for JavaScript.

pub mod bench;
pub mod data;
pub mod error;
pub mod gemm;
pub mod layers;
pub mod loss;
pub mod matmul;
pub mod model;
pub mod optim;
pub mod rng;
pub mod team;
pub mod train;

pub use data::{DataView, Inputs};
pub use error::{Error, Result};
pub use model::{LayerSpec, Model};
pub use optim::{Adam, AdamConfig, Optimizer, OptimizerConfig, Sgd, SgdConfig};
pub use train::{EpochStats, EvalStats, FitConfig, Progress, TrainControl, Trainer};
