//! The stored layout of values: rank-3 samples [C, H, W] are kept channels-last,
//! [H, W, C]; every other rank as given. These convert whole batches between the
//! two (for inputs given in PyTorch's order and outputs read back in it).

/// Whether a per-sample shape is stored in another order than PyTorch's.
pub fn is_channels_last(shape: &[usize]) -> bool {
    shape.len() == 3 && shape[0] > 1
}

/// rows samples of `shape` in PyTorch's order → stored order.
pub fn to_stored(shape: &[usize], logical: &[f32], stored: &mut [f32]) {
    if !is_channels_last(shape) {
        stored.copy_from_slice(logical);
        return;
    }
    let (c, hw) = (shape[0], shape[1] * shape[2]);
    for (src, dst) in logical.chunks(c * hw).zip(stored.chunks_mut(c * hw)) {
        for ch in 0..c {
            for p in 0..hw {
                dst[p * c + ch] = src[ch * hw + p];
            }
        }
    }
}

/// rows samples of `shape` in stored order → PyTorch's order.
pub fn to_logical(shape: &[usize], stored: &[f32], logical: &mut [f32]) {
    if !is_channels_last(shape) {
        logical.copy_from_slice(stored);
        return;
    }
    let (c, hw) = (shape[0], shape[1] * shape[2]);
    for (src, dst) in stored.chunks(c * hw).zip(logical.chunks_mut(c * hw)) {
        for ch in 0..c {
            for p in 0..hw {
                dst[ch * hw + p] = src[p * c + ch];
            }
        }
    }
}
