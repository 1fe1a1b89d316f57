//! `MaxPool2d`: PyTorch's `nn.MaxPool2d` (kernelSize, stride = kernelSize, padding
//! counted as −∞). Ties go to the first maximum in window order and a NaN wins (the
//! last one), as in PyTorch.
//!
//! Forward takes, per output row, the elementwise maximum of the window's input rows
//! (whole contiguous [W·C] rows: vectorised) and then of the window's pixels in that
//! row. Backward finds each output's source again (the first window element equal to
//! the maximum) instead of forward keeping an argmax per element: tracking the index
//! made forward a per-channel scalar loop, 8% of a LeNet-5 epoch (1 thread) for the
//! first pool alone.

use super::pool::{build_windows, PoolConfig, Windows};
use super::{expect_inputs, Backward, Forward, Op, SharedMut};
use crate::error::Result;
use crate::team::run_parts;

#[derive(Debug)]
pub struct MaxPool2d {
    win: Windows,
    /// Per sample of a batch: one row of vertical maxima, [W·C].
    rows: Vec<f32>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "MaxPool2d", inputs, 1)?;
    let c: PoolConfig = super::config::parse(name, "MaxPool2d", config)?;
    let win = build_windows(name, "MaxPool2d", &c, &inputs[0])?;
    Ok(Box::new(MaxPool2d { win, rows: Vec::new() }))
}

/// max(a, v) with PyTorch's NaN rule (a NaN replaces whatever was there); branch-free.
#[inline(always)]
fn max_nan(a: f32, v: f32) -> f32 {
    #[allow(clippy::eq_op)]
    let take = (v > a) | (v != v);
    if take {
        v
    } else {
        a
    }
}

impl MaxPool2d {
    /// One sample: x [H, W, C] → out [Ho, Wo, C], with a row of scratch [W·C].
    fn forward_sample(win: &Windows, x: &[f32], out: &mut [f32], row: &mut [f32]) {
        let (c, rl) = (win.c, win.w * win.c);
        let mut o = 0;
        for &(y0, y1) in &win.ys {
            row.copy_from_slice(&x[y0 * rl..(y0 + 1) * rl]);
            for y in y0 + 1..y1 {
                for (r, &v) in row.iter_mut().zip(&x[y * rl..(y + 1) * rl]) {
                    *r = max_nan(*r, v);
                }
            }
            for &(x0, x1) in &win.xs {
                let best = &mut out[o..o + c];
                o += c;
                best.copy_from_slice(&row[x0 * c..(x0 + 1) * c]);
                for xx in x0 + 1..x1 {
                    for (b, &v) in best.iter_mut().zip(&row[xx * c..(xx + 1) * c]) {
                        *b = max_nan(*b, v);
                    }
                }
            }
        }
    }

    /// The input element (pixel·C + channel) that output element `ch` of window
    /// (ys, xs) came from: the first equal to the maximum, or the last NaN.
    #[inline]
    fn source(win: &Windows, x: &[f32], (y0, y1): (usize, usize), (x0, x1): (usize, usize), ch: usize, max: f32) -> usize {
        let (c, w) = (win.c, win.w);
        let mut found = usize::MAX;
        for y in y0..y1 {
            for xx in x0..x1 {
                let i = (y * w + xx) * c + ch;
                if max.is_nan() {
                    if x[i].is_nan() {
                        found = i;
                    }
                } else if x[i] == max {
                    return i;
                }
            }
        }
        found
    }

    /// `source` for 16 channels c0..c0+16 at once, branch-free (it vectorises): the
    /// route of a 64-channel pool's backward, where the per-channel scalar search was
    /// 6% of an epoch of the CNN.
    #[inline(always)]
    fn sources16(win: &Windows, x: &[f32], (y0, y1): (usize, usize), (x0, x1): (usize, usize), c0: usize, max: &[f32; 16]) -> [u32; 16] {
        let (c, w) = (win.c, win.w);
        let (mut first, mut found, mut nan) = ([u32::MAX; 16], [false; 16], [u32::MAX; 16]);
        for y in y0..y1 {
            for xx in x0..x1 {
                let base = (y * w + xx) * c + c0;
                let v: &[f32; 16] = x[base..base + 16].try_into().unwrap();
                for k in 0..16 {
                    let eq = v[k] == max[k];
                    first[k] = if eq & !found[k] { (base + k) as u32 } else { first[k] };
                    found[k] |= eq;
                    #[allow(clippy::eq_op)]
                    let is_nan = v[k] != v[k];
                    nan[k] = if is_nan { (base + k) as u32 } else { nan[k] };
                }
            }
        }
        let mut out = [0u32; 16];
        for k in 0..16 {
            #[allow(clippy::eq_op)]
            let max_nan = max[k] != max[k];
            out[k] = if max_nan { nan[k] } else { first[k] };
        }
        out
    }
}

impl Op for MaxPool2d {
    fn kind(&self) -> &'static str {
        "MaxPool2d"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.win.output_shape()
    }
    fn prepare(&mut self, capacity: usize) {
        self.rows.resize(capacity * self.win.w * self.win.c, 0.0);
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }
    fn forward(&mut self, cx: &Forward) {
        let win = &self.win;
        let (per_in, per_out, rl) = (win.in_size(), win.out_size(), win.w * win.c);
        let x = cx.input(0);
        let out = SharedMut::new(cx.output());
        let rows = SharedMut::new(&mut self.rows[..cx.rows * rl]);
        run_parts(cx.rows, &|s| {
            let (o, r) = unsafe { (out.slice(s * per_out, per_out), rows.slice(s * rl, rl)) };
            Self::forward_sample(win, &x[s * per_in..][..per_in], o, r);
        });
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let win = &self.win;
        let (per_in, per_out, c) = (win.in_size(), win.out_size(), win.c);
        let (x, out, dout) = (cx.input(0), cx.output(), &*cx.dout());
        let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
        let dx = SharedMut::new(dx);
        run_parts(cx.rows, &|s| {
            let dxs = unsafe { dx.slice(s * per_in, per_in) };
            if !accumulate {
                dxs.fill(0.0);
            }
            let (xs, outs, douts) = (&x[s * per_in..][..per_in], &out[s * per_out..][..per_out], &dout[s * per_out..][..per_out]);
            let mut o = 0;
            for &ywin in &win.ys {
                for &xwin in &win.xs {
                    if c % 16 == 0 {
                        for c0 in (0..c).step_by(16) {
                            let max: &[f32; 16] = outs[o + c0..o + c0 + 16].try_into().unwrap();
                            let src = Self::sources16(win, xs, ywin, xwin, c0, max);
                            for (k, &i) in src.iter().enumerate() {
                                // The input's ReLU mask, at the source only: zero where max ≤ 0.
                                if i != u32::MAX && !(mask && max[k] <= 0.0) {
                                    dxs[i as usize] += douts[o + c0 + k];
                                }
                            }
                        }
                    } else {
                        for ch in 0..c {
                            let max = outs[o + ch];
                            if mask && max <= 0.0 {
                                continue;
                            }
                            let i = Self::source(win, xs, ywin, xwin, ch, max);
                            if i != usize::MAX {
                                dxs[i] += douts[o + ch];
                            }
                        }
                    }
                    o += c;
                }
            }
            // With `mask`, the input's ReLU backward was applied above at each source
            // (zero where its value ≤ 0): dx is zero elsewhere, so no pass over all of it.
            // A separate pass made this backward memory-bound (3 passes over each sample).
        });
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(MaxPool2d { win: self.win.clone(), rows: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{assert_gradients, fanout_spec, forward_logical, sequential_spec, GradCheck};
    use serde_json::json;

    #[test]
    fn forward_by_hand() {
        // 2 channels of 4×4; kernel 2: the max of each 2×2 block.
        let c0: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let c1: Vec<f32> = c0.iter().map(|v| -v).collect();
        let x: Vec<f32> = c0.iter().chain(&c1).copied().collect();
        let spec = sequential_spec(&[2, 4, 4], &[("MaxPool2d", json!({ "kernelSize": 2 }))]);
        assert_eq!(forward_logical(&spec, &[], 1, &x), vec![6.0, 8.0, 14.0, 16.0, -1.0, -3.0, -9.0, -11.0]);
        // Padding 1 counts as −∞: all-negative inputs keep their own maxima.
        let spec = sequential_spec(&[1, 3, 3], &[("MaxPool2d", json!({ "kernelSize": 3, "stride": 2, "padding": 1 }))]);
        let x: Vec<f32> = (1..=9).map(|v| -(v as f32)).collect();
        assert_eq!(forward_logical(&spec, &[], 1, &x), vec![-1.0, -2.0, -4.0, -5.0]);
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum() {
        let spec = sequential_spec(&[1, 2, 2], &[("MaxPool2d", json!({ "kernelSize": 2 }))]);
        let mut model = Model::from_json(&spec, 0).unwrap();
        model.set_input_grad(true);
        model.set_input(1, &[1.0, 3.0, 3.0, 2.0]);
        model.forward(1);
        model.set_output_grad(1, &[5.0]);
        model.backward(1);
        assert_eq!(model.input_grad_logical(1).unwrap(), vec![0.0, 5.0, 0.0, 0.0]);
    }

    #[test]
    fn gradients() {
        // A small step: a max's kink (two window values within 2h) breaks the finite difference.
        let o = GradCheck { h: 2e-4, tol: 3e-2, ..GradCheck::default() };
        for (shape, config) in [
            (vec![3, 4, 4], json!({ "kernelSize": 2 })),
            (vec![2, 5, 6], json!({ "kernelSize": 3, "stride": 2, "padding": 1 })),
            (vec![2, 5, 5], json!({ "kernelSize": [2, 3], "stride": [1, 2] })),
        ] {
            assert_gradients(&sequential_spec(&shape, &[("MaxPool2d", config.clone())]), &o);
            let conv = ("Conv2d", json!({ "outChannels": 3, "kernelSize": 1 }));
            assert_gradients(&fanout_spec(&shape, conv, ("MaxPool2d", config)), &o);
        }
    }

    #[test]
    fn errors() {
        let err = |shape: &[usize], config: serde_json::Value| {
            Model::from_json(&sequential_spec(shape, &[("MaxPool2d", config)]), 0).unwrap_err().to_string()
        };
        let e = err(&[1, 1, 1], json!({ "kernelSize": 2 }));
        assert!(e.contains("0 (MaxPool2d): kernel 2 with padding 0 does not fit input 1×1"), "{e}");
        let e = err(&[1, 8, 8], json!({ "kernelSize": 2, "padding": 2 }));
        assert!(e.contains("at most half"), "{e}");
        let e = err(&[8], json!({ "kernelSize": 2 }));
        assert!(e.contains("got input shape [8]"), "{e}");
    }
}
