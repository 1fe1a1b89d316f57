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

/// The stored per-sample shape: [H, W, C] for a rank-3 [C, H, W] (for C = 1 the two
/// orders are the same memory), the given shape otherwise.
pub fn stored_shape(shape: &[usize]) -> Vec<usize> {
    match *shape {
        [c, h, w] => vec![h, w, c],
        _ => shape.to_vec(),
    }
}

/// Where logical (PyTorch-order, per-sample) axis `axis` of `shape` lies in the stored
/// layout: one sample is [outer, n, inner] with n = shape[axis] (for rank 3, channels
/// are the last stored axis: axis 0 gives inner = 1).
pub fn stored_split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let stored = stored_shape(shape);
    let s = if shape.len() == 3 { [2, 0, 1][axis] } else { axis };
    (stored[..s].iter().product(), stored[s], stored[s + 1..].iter().product())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_split_maps_channels_to_the_last_axis() {
        assert_eq!(stored_split(&[3, 4, 5], 0), (20, 3, 1));
        assert_eq!(stored_split(&[3, 4, 5], 1), (1, 4, 15));
        assert_eq!(stored_split(&[3, 4, 5], 2), (4, 5, 3));
        assert_eq!(stored_split(&[3, 4], 0), (1, 3, 4));
        assert_eq!(stored_split(&[3, 4], 1), (3, 4, 1));
        assert_eq!(stored_split(&[7], 0), (1, 7, 1));
    }
}
