//! `MaxPool2d`: PyTorch's `nn.MaxPool2d` (kernelSize, stride = kernelSize, padding
//! counted as −∞). Forward keeps, per output element, the input pixel of its maximum
//! (u32 scratch) (ties: the first in window order, and NaN wins, as PyTorch); backward
//! adds each output gradient at that index.

use super::pool::{build_windows, PoolConfig, Windows};
use super::{expect_inputs, mask_by_input, Backward, Forward, Op, SharedMut};
use crate::error::Result;
use crate::team::run_parts;

#[derive(Debug)]
pub struct MaxPool2d {
    win: Windows,
    /// Per output element of the last forward batch: the input pixel of its maximum.
    argmax: Vec<u32>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "MaxPool2d", inputs, 1)?;
    let c: PoolConfig = super::config::parse(name, "MaxPool2d", config)?;
    let win = build_windows(name, "MaxPool2d", &c, &inputs[0])?;
    if win.h * win.w > u32::MAX as usize {
        return Err(crate::error::Error::graph(name, format!("{name} (MaxPool2d): input too large")));
    }
    Ok(Box::new(MaxPool2d { win, argmax: Vec::new() }))
}

impl MaxPool2d {
    /// One sample: x [H, W, C] → out [Ho, Wo, C] and, per output element, the input
    /// pixel y·W + x of its maximum (the element is pixel·C + channel). Branch-free over
    /// the channels, so it vectorises.
    fn forward_sample(win: &Windows, x: &[f32], out: &mut [f32], idx: &mut [u32]) {
        let (c, w) = (win.c, win.w);
        let mut o = 0;
        for &(y0, y1) in &win.ys {
            for &(x0, x1) in &win.xs {
                let best = &mut out[o..o + c];
                let at = &mut idx[o..o + c];
                o += c;
                best.fill(f32::NEG_INFINITY);
                at.fill((y0 * w + x0) as u32);
                for y in y0..y1 {
                    for xx in x0..x1 {
                        let pix = y * w + xx;
                        let px = &x[pix * c..pix * c + c];
                        let pix = pix as u32;
                        for ((b, i), &v) in best.iter_mut().zip(at.iter_mut()).zip(px) {
                            #[allow(clippy::eq_op)]
                            let take = (v > *b) | (v != v); // NaN wins, as in PyTorch
                            *b = if take { v } else { *b };
                            *i = if take { pix } else { *i };
                        }
                    }
                }
            }
        }
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
        self.argmax.resize(capacity * self.win.out_size(), 0);
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }
    fn forward(&mut self, cx: &Forward) {
        let win = &self.win;
        let (per_in, per_out) = (win.in_size(), win.out_size());
        let x = cx.input(0);
        let out = SharedMut::new(cx.output());
        let idx = SharedMut::new(&mut self.argmax[..cx.rows * per_out]);
        run_parts(cx.rows, &|s| {
            let (o, i) = unsafe { (out.slice(s * per_out, per_out), idx.slice(s * per_out, per_out)) };
            Self::forward_sample(win, &x[s * per_in..][..per_in], o, i);
        });
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let (per_in, per_out, c) = (self.win.in_size(), self.win.out_size(), self.win.c);
        let (x, dout, idx) = (cx.input(0), &*cx.dout(), &self.argmax[..cx.rows * per_out]);
        let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
        let dx = SharedMut::new(dx);
        run_parts(cx.rows, &|s| {
            let dxs = unsafe { dx.slice(s * per_in, per_in) };
            if !accumulate {
                dxs.fill(0.0);
            }
            let idx = idx[s * per_out..][..per_out].chunks_exact(c);
            for (at, g) in idx.zip(dout[s * per_out..][..per_out].chunks_exact(c)) {
                for (k, (&pix, &g)) in at.iter().zip(g).enumerate() {
                    dxs[pix as usize * c + k] += g;
                }
            }
            if mask {
                mask_by_input(dxs, &x[s * per_in..][..per_in]);
            }
        });
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(MaxPool2d { win: self.win.clone(), argmax: Vec::new() })
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
