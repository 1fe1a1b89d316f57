//! What the 2-D pooling ops share: their config, and the windows of every output
//! row and column, precomputed at build time (already clipped to the input, so the
//! loops never test for padding). Samples are [H, W, C] as stored: every loop's inner
//! dimension is the C contiguous channels of one pixel.

use super::config::Pair;
use crate::error::{Error, Result};
use serde::Deserialize;

/// `MaxPool2d` and `AvgPool2d`: kernelSize, stride (= kernelSize), padding (0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolConfig {
    /// Required (see `config::required`).
    #[serde(default)]
    pub kernel_size: Option<Pair>,
    #[serde(default)]
    pub stride: Option<Pair>,
    #[serde(default = "super::conv2d::pair_zero")]
    pub padding: Pair,
}

/// Input [C, H, W] and, per output row / column, its window's input rows / columns
/// start..end (clipped to the input).
#[derive(Debug, Clone)]
pub struct Windows {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub ys: Vec<(usize, usize)>,
    pub xs: Vec<(usize, usize)>,
}

impl Windows {
    pub fn ho(&self) -> usize {
        self.ys.len()
    }
    pub fn wo(&self) -> usize {
        self.xs.len()
    }
    /// Floats per input sample.
    pub fn in_size(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Floats per output sample.
    pub fn out_size(&self) -> usize {
        self.c * self.ho() * self.wo()
    }
    pub fn output_shape(&self) -> Vec<usize> {
        vec![self.c, self.ho(), self.wo()]
    }
}

/// The input [C, H, W] of a pooling node, or an error naming it.
pub fn input_chw(name: &str, kind: &str, shape: &[usize]) -> Result<(usize, usize, usize)> {
    match *shape {
        [c, h, w] => Ok((c, h, w)),
        _ => Err(Error::graph(
            name,
            format!("{name} ({kind}) takes [channels, height, width] per sample, got input shape {shape:?}"),
        )),
    }
}

/// Windows of size k, step s, padding p over n: PyTorch's floor((n + 2p − k)/s) + 1 outputs.
fn strided(n: usize, k: usize, s: usize, p: usize) -> Vec<(usize, usize)> {
    let out = (n + 2 * p - k) / s + 1;
    (0..out)
        .map(|i| {
            let start = (i * s) as isize - p as isize;
            let end = (start + k as isize).min(n as isize);
            (start.max(0) as usize, end as usize)
        })
        .collect()
}

/// PyTorch's adaptive bins: start = floor(i·n/out), end = ceil((i+1)·n/out).
pub fn adaptive(n: usize, out: usize) -> Vec<(usize, usize)> {
    (0..out).map(|i| (i * n / out, ((i + 1) * n).div_ceil(out))).collect()
}

/// Validates a MaxPool2d/AvgPool2d config against the input shape and lays out its windows.
pub fn build_windows(name: &str, kind: &str, c: &PoolConfig, shape: &[usize]) -> Result<Windows> {
    let field = |f: &str| format!("nodes[{name}].config.{f}");
    let k = super::config::required(name, kind, "kernelSize", c.kernel_size)?;
    let s = c.stride.unwrap_or(k);
    let p = c.padding;
    let show = super::conv2d::show;
    if k.0 == 0 || k.1 == 0 {
        return Err(Error::config(&field("kernelSize"), format!("must be > 0, got {}", show(k))));
    }
    if s.0 == 0 || s.1 == 0 {
        return Err(Error::config(&field("stride"), format!("must be > 0, got {}", show(s))));
    }
    if p.0 > k.0 / 2 || p.1 > k.1 / 2 {
        return Err(Error::config(
            &field("padding"),
            format!("{name} ({kind}): padding {} must be at most half the kernel {} (as in PyTorch)", show(p), show(k)),
        ));
    }
    let (ch, h, w) = input_chw(name, kind, shape)?;
    if h + 2 * p.0 < k.0 || w + 2 * p.1 < k.1 {
        return Err(Error::graph(
            name,
            format!(
                "{name} ({kind}): kernel {} with padding {} does not fit input {h}×{w} (input shape {shape:?})",
                show(k),
                show(p)
            ),
        ));
    }
    Ok(Windows {
        c: ch,
        h,
        w,
        ys: strided(h, k.0, s.0, p.0),
        xs: strided(w, k.1, s.1, p.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_pytorchs() {
        // 5 with k 3, s 2, p 1: outputs 3, windows -1..2, 1..4, 3..6 clipped.
        assert_eq!(strided(5, 3, 2, 1), vec![(0, 2), (1, 4), (3, 5)]);
        assert_eq!(strided(4, 2, 2, 0), vec![(0, 2), (2, 4)]);
        // Adaptive 5 → 3: [0,2), [1,4), [3,5).
        assert_eq!(adaptive(5, 3), vec![(0, 2), (1, 4), (3, 5)]);
        assert_eq!(adaptive(2, 4), vec![(0, 1), (0, 1), (1, 2), (1, 2)]);
    }
}
