//! Layers as plain forward/backward function pairs, one file per layer.
//! Buffers are passed in; nothing here allocates.

pub mod linear;
pub mod relu;
