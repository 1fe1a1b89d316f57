//! `AdaptiveAvgPool2d`: PyTorch's `nn.AdaptiveAvgPool2d(outputSize)`. Output row i
//! averages input rows floor(i·H/out) .. ceil((i+1)·H/out) (columns likewise), each
//! bin divided by its own size. The loops are AvgPool2d's.

use super::avgpool2d::{avg_backward, avg_forward};
use super::config::Pair;
use super::pool::{adaptive, input_chw, Windows};
use super::{expect_inputs, Backward, Forward, Op};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdaptiveAvgPool2dConfig {
    /// Required (see `config::required`).
    #[serde(default)]
    pub output_size: Option<Pair>,
}

#[derive(Debug, Clone)]
pub struct AdaptiveAvgPool2d {
    win: Windows,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "AdaptiveAvgPool2d", inputs, 1)?;
    let c: AdaptiveAvgPool2dConfig = super::config::parse(name, "AdaptiveAvgPool2d", config)?;
    let size = super::config::required(name, "AdaptiveAvgPool2d", "outputSize", c.output_size)?;
    let Pair(oh, ow) = size;
    if oh == 0 || ow == 0 {
        return Err(Error::config(
            &format!("nodes[{name}].config.outputSize"),
            format!("must be > 0, got {}", super::conv2d::show(size)),
        ));
    }
    let (ch, h, w) = input_chw(name, "AdaptiveAvgPool2d", &inputs[0])?;
    Ok(Box::new(AdaptiveAvgPool2d { win: Windows { c: ch, h, w, ys: adaptive(h, oh), xs: adaptive(w, ow) } }))
}

impl Op for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.win.output_shape()
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }
    fn forward(&mut self, cx: &Forward) {
        avg_forward(&self.win, None, cx.rows, cx.input(0), cx.output());
    }
    fn backward(&mut self, cx: &Backward) {
        avg_backward(&self.win, None, cx);
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
    fn forward_by_hand() {
        // 1..9 (3×3) → 2×2: bins rows [0,2), [1,3), same columns.
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let spec = sequential_spec(&[1, 3, 3], &[("AdaptiveAvgPool2d", json!({ "outputSize": 2 }))]);
        assert_eq!(forward_logical(&spec, &[], 1, &x), vec![3.0, 4.0, 6.0, 7.0]);
        // Global average pooling over 2 channels.
        let spec = sequential_spec(&[2, 3, 3], &[("AdaptiveAvgPool2d", json!({ "outputSize": 1 }))]);
        let x2: Vec<f32> = x.iter().chain(x.iter().map(|v| v * 0.0).collect::<Vec<_>>().iter()).copied().collect();
        assert_eq!(forward_logical(&spec, &[], 1, &x2), vec![5.0, 0.0]);
    }

    #[test]
    fn gradients() {
        for (shape, size) in [(vec![3, 5, 5], json!(3)), (vec![2, 4, 7], json!([3, 2])), (vec![2, 2, 3], json!([4, 5]))] {
            let op = ("AdaptiveAvgPool2d", json!({ "outputSize": size }));
            assert_gradients(&sequential_spec(&shape, std::slice::from_ref(&op)), &GradCheck::default());
            let conv = ("Conv2d", json!({ "outChannels": 3, "kernelSize": 1 }));
            assert_gradients(&fanout_spec(&shape, conv, op), &GradCheck::default());
        }
    }
}
