//! `AvgPool2d`: PyTorch's `nn.AvgPool2d` (kernelSize, stride = kernelSize, padding)
//! with count_include_pad = true: every window divides by kh·kw, padding included.
//! The averaging loops are shared with `AdaptiveAvgPool2d`.

use super::pool::{build_windows, PoolConfig, Windows};
use super::{expect_inputs, mask_by_input, Backward, Forward, Op, SharedMut};
use crate::error::Result;
use crate::team::run_parts;

#[derive(Debug, Clone)]
pub struct AvgPool2d {
    win: Windows,
    /// kh·kw (count_include_pad).
    divisor: usize,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "AvgPool2d", inputs, 1)?;
    let c: PoolConfig = super::config::parse(name, "AvgPool2d", config)?;
    let win = build_windows(name, "AvgPool2d", &c, &inputs[0])?;
    let k = c.kernel_size.expect("checked by build_windows");
    Ok(Box::new(AvgPool2d { win, divisor: k.0 * k.1 }))
}

/// Each window's divisor: a fixed one, or (None) its own size (adaptive bins).
pub(crate) fn divisor(fixed: Option<usize>, y: (usize, usize), x: (usize, usize)) -> f32 {
    fixed.unwrap_or((y.1 - y.0) * (x.1 - x.0)) as f32
}

/// out[rows, Ho, Wo, C] = window sums of x[rows, H, W, C] / divisor, one sample per part.
pub(crate) fn avg_forward(win: &Windows, fixed: Option<usize>, rows: usize, x: &[f32], out: &mut [f32]) {
    let (per_in, per_out, c, w) = (win.in_size(), win.out_size(), win.c, win.w);
    let out = SharedMut::new(out);
    run_parts(rows, &|s| {
        let xs = &x[s * per_in..][..per_in];
        let mut os = unsafe { out.slice(s * per_out, per_out) }.chunks_exact_mut(c);
        for &yr in &win.ys {
            for &xr in &win.xs {
                let o = os.next().unwrap();
                o.fill(0.0);
                for y in yr.0..yr.1 {
                    for px in xs[(y * w + xr.0) * c..(y * w + xr.1) * c].chunks_exact(c) {
                        o.iter_mut().zip(px).for_each(|(o, &v)| *o += v);
                    }
                }
                let d = divisor(fixed, yr, xr);
                o.iter_mut().for_each(|o| *o /= d);
            }
        }
    });
}

/// dx (+)= each output gradient / divisor spread over its window (then the input's
/// ReLU mask if asked), one sample per part.
pub(crate) fn avg_backward(win: &Windows, fixed: Option<usize>, cx: &Backward) {
    let Some(dx) = cx.dinput(0) else { return };
    let (per_in, per_out, c, w) = (win.in_size(), win.out_size(), win.c, win.w);
    let (x, dout) = (cx.input(0), &*cx.dout());
    let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
    let dx = SharedMut::new(dx);
    run_parts(cx.rows, &|s| {
        let dxs = unsafe { dx.slice(s * per_in, per_in) };
        if !accumulate {
            dxs.fill(0.0);
        }
        let mut gs = dout[s * per_out..][..per_out].chunks_exact(c);
        for &yr in &win.ys {
            for &xr in &win.xs {
                let g = gs.next().unwrap();
                let d = divisor(fixed, yr, xr);
                for y in yr.0..yr.1 {
                    for px in dxs[(y * w + xr.0) * c..(y * w + xr.1) * c].chunks_exact_mut(c) {
                        px.iter_mut().zip(g).for_each(|(p, &g)| *p += g / d);
                    }
                }
            }
        }
        if mask {
            mask_by_input(dxs, &x[s * per_in..][..per_in]);
        }
    });
}

impl Op for AvgPool2d {
    fn kind(&self) -> &'static str {
        "AvgPool2d"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.win.output_shape()
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }
    fn forward(&mut self, cx: &Forward) {
        avg_forward(&self.win, Some(self.divisor), cx.rows, cx.input(0), cx.output());
    }
    fn backward(&mut self, cx: &Backward) {
        avg_backward(&self.win, Some(self.divisor), cx);
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{assert_gradients, fanout_spec, forward_logical, sequential_spec, GradCheck};
    use serde_json::json;

    #[test]
    fn forward_by_hand_counts_the_padding() {
        let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let spec = sequential_spec(&[1, 4, 4], &[("AvgPool2d", json!({ "kernelSize": 2 }))]);
        assert_eq!(forward_logical(&spec, &[], 1, &x), vec![3.5, 5.5, 11.5, 13.5]);
        // Padding 1, kernel 3, stride 2 on 1..9 (3×3): corner windows hold 4 inputs, divided by 9.
        let spec = sequential_spec(&[1, 3, 3], &[("AvgPool2d", json!({ "kernelSize": 3, "stride": 2, "padding": 1 }))]);
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        assert_eq!(
            forward_logical(&spec, &[], 1, &x),
            vec![12.0 / 9.0, 16.0 / 9.0, 24.0 / 9.0, 28.0 / 9.0]
        );
    }

    #[test]
    fn gradients() {
        for (shape, config) in [
            (vec![3, 4, 4], json!({ "kernelSize": 2 })),
            (vec![2, 5, 6], json!({ "kernelSize": 3, "stride": 2, "padding": 1 })),
            (vec![2, 5, 5], json!({ "kernelSize": [2, 3], "stride": [1, 2], "padding": [1, 0] })),
        ] {
            assert_gradients(&sequential_spec(&shape, &[("AvgPool2d", config.clone())]), &GradCheck::default());
            let conv = ("Conv2d", json!({ "outChannels": 3, "kernelSize": 1 }));
            assert_gradients(&fanout_spec(&shape, conv, ("AvgPool2d", config)), &GradCheck::default());
        }
    }
}
