//! `Flatten`: PyTorch's `nn.Flatten()` (start_dim 1): one [N] vector per sample. A
//! [C, H, W] input is stored [H, W, C] while PyTorch flattens in C, H, W order, so
//! forward transposes each sample HWC → CHW and backward transposes back. Other ranks
//! (and C = 1, where both orders agree) are a copy.

use super::relu::NoConfig;
use super::{expect_inputs, mask_by_input, Backward, Forward, Op, SharedMut};
use crate::error::Result;
use crate::graph::layout::is_channels_last;
use crate::team::run_parts;

#[derive(Debug, Clone)]
pub struct Flatten {
    shape: Vec<usize>,
    size: usize,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "Flatten", inputs, 1)?;
    super::config::parse::<NoConfig>(name, "Flatten", config)?;
    Ok(Box::new(Flatten { shape: inputs[0].clone(), size: super::numel(&inputs[0]) }))
}

impl Op for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![self.size]
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }
    fn forward(&mut self, cx: &Forward) {
        let (x, out, n) = (cx.input(0), cx.output(), self.size);
        if !is_channels_last(&self.shape) {
            out.copy_from_slice(x);
            return;
        }
        let (c, hw) = (self.shape[0], self.shape[1] * self.shape[2]);
        let shared = SharedMut::new(out);
        run_parts(cx.rows, &|s| {
            // out[ch·HW + p] = x[p·C + ch]
            let o = unsafe { shared.slice(s * n, n) };
            let xs = &x[s * n..][..n];
            for (ch, orow) in o.chunks_exact_mut(hw).enumerate() {
                for (v, px) in orow.iter_mut().zip(xs.chunks_exact(c)) {
                    *v = px[ch];
                }
            }
        });
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let (x, dout, n) = (cx.input(0), &*cx.dout(), self.size);
        let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
        let channels_last = is_channels_last(&self.shape);
        let (c, hw) = if channels_last { (self.shape[0], self.shape[1] * self.shape[2]) } else { (1, n) };
        let shared = SharedMut::new(dx);
        run_parts(cx.rows, &|s| {
            let d = unsafe { shared.slice(s * n, n) };
            let g = &dout[s * n..][..n];
            match (channels_last, accumulate) {
                (false, false) => d.copy_from_slice(g),
                (false, true) => d.iter_mut().zip(g).for_each(|(d, &g)| *d += g),
                // dx[p·C + ch] (+)= dout[ch·HW + p]
                (true, false) => {
                    for (ch, grow) in g.chunks_exact(hw).enumerate() {
                        for (px, &v) in d.chunks_exact_mut(c).zip(grow) {
                            px[ch] = v;
                        }
                    }
                }
                (true, true) => {
                    for (ch, grow) in g.chunks_exact(hw).enumerate() {
                        for (px, &v) in d.chunks_exact_mut(c).zip(grow) {
                            px[ch] += v;
                        }
                    }
                }
            }
            if mask {
                mask_by_input(d, &x[s * n..][..n]);
            }
        });
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{assert_gradients, fanout_spec, forward_logical, sequential_spec, GradCheck};
    use serde_json::json;

    #[test]
    fn emits_pytorchs_chw_order() {
        // Logical [2, 2, 3] in, flattened in the same (C, H, W) order out.
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let spec = sequential_spec(&[2, 2, 3], &[("Flatten", serde_json::Value::Null)]);
        assert_eq!(forward_logical(&spec, &[], 1, &x), x);
        let model = Model::from_json(&spec, 0).unwrap();
        assert_eq!(model.output_shape(), &[12]);
        // Rank 2 and rank 1 are copies.
        let spec = sequential_spec(&[3, 4], &[("Flatten", serde_json::Value::Null)]);
        assert_eq!(forward_logical(&spec, &[], 1, &x), x);
    }

    #[test]
    fn gradients() {
        for shape in [vec![3, 2, 4], vec![1, 3, 3]] {
            let spec = sequential_spec(&shape, &[("Flatten", serde_json::Value::Null), ("Linear", json!({ "outFeatures": 3 }))]);
            assert_gradients(&spec, &GradCheck::default());
            let conv = ("Conv2d", json!({ "outChannels": 3, "kernelSize": 1 }));
            assert_gradients(&fanout_spec(&shape, conv, ("Flatten", serde_json::Value::Null)), &GradCheck::default());
        }
        let spec = sequential_spec(&[6], &[("Linear", json!({ "outFeatures": 4 })), ("Flatten", serde_json::Value::Null)]);
        assert_gradients(&spec, &GradCheck::default());
        let spec = fanout_spec(&[2, 3], ("Linear", json!({ "outFeatures": 4 })), ("Flatten", serde_json::Value::Null));
        assert_gradients(&spec, &GradCheck::default());
    }
}
