//! ferronet-core: the numerical heart of ferronet.
//!
//! Layers as ops, one file each with plain, explicit forward and backward functions
//! (`ops`); a model is a graph of them compiled into a plan over one activation arena
//! and one parameter store (`graph`, `params`); losses (`loss`), PyTorch-exact
//! optimizers (`optim`) and the whole epoch loop (`train`). Every matrix product goes
//! through our own SIMD GEMM (`gemm`, via [`matmul::matmul`]).
//!
//! This crate knows nothing of Node; `ferronet-node` translates it for JavaScript.

pub mod bench;
pub mod data;
pub mod error;
pub mod fastmath;
pub mod gan;
pub mod gemm;
pub mod generate;
pub mod graph;
pub mod io;
pub mod loss;
pub mod matmul;
pub mod ops;
pub mod optim;
pub mod params;
pub mod rng;
pub mod team;
pub mod train;

/// The model is the compiled graph.
pub mod model {
    pub use crate::graph::{LayerSpec, Model, Param};
}

pub use data::{DataView, Inputs, Labels, Targets};
pub use error::{Error, Result};
pub use graph::spec::GraphSpec;
pub use graph::{Explanation, LayerSpec, Model};
pub use loss::LossConfig;
pub use ops::Mode;
pub use optim::{Adam, AdamConfig, AdamW, AdamWConfig, Optimizer, OptimizerConfig, Rmsprop, RmspropConfig, Schedule, ScheduleConfig, Sgd, SgdConfig};
pub use loss::{LossTerm, Reduction, TermLoss};
pub use train::{EpochStats, EvalStats, TermValues, FitConfig, Metrics, Progress, TrainControl, Trainer, TrainerConfig, TrainerState};
