//! `BatchNorm1d` and `BatchNorm2d`: PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d`.
//!
//! Parameters in `state_dict` order: weight [C] (1), bias [C] (0) when affine, then the
//! buffers running_mean [C] (0), running_var [C] (1) and num_batches_tracked [] (0,
//! one more per train-mode forward; int64 in model files, as in PyTorch).
//!
//! Every input is seen as [outer, C, inner] in its stored layout:
//! - BatchNorm1d on [F]:       outer = rows,        C = F, inner = 1
//! - BatchNorm1d on [C, L]:    outer = rows,        C,     inner = L
//! - BatchNorm2d on [C, H, W]: stored [H, W, C], so outer = rows·H·W, C, inner = 1
//!   (the channel is the last, contiguous axis: the loops run over C innermost).
//!
//! Statistics are reduced over outer·inner = n values per channel, in f64 and in two
//! passes (mean, then the mean squared deviation), so large means do not cancel.
//! Train mode normalises with the biased batch variance and moves the running
//! statistics with PyTorch's rule, running = (1 − momentum)·running + momentum·stat,
//! using the unbiased variance (·n/(n−1)) for running_var. Eval mode normalises with
//! the running statistics. Forward keeps mean and rstd = 1/√(var + eps) per channel
//! (llm.c's layernorm_forward(out, mean, rstd, ...) style) for the backward, which
//! recomputes x̂ = (x − mean)·rstd from the input rather than storing it.
//!
//! Eval-mode fold: in eval mode BN is the per-channel affine map y = x·scale + shift
//! with scale = weight/√(running_var + eps), shift = bias − running_mean·scale
//! ([`eval_scale_shift`]); a later fusion rule can fold it into the weights and bias of
//! a preceding Conv2d/Linear (weight[o, ..] ·= scale[o], bias[o] = bias[o]·scale[o] + shift[o]).

use super::config::{default_true, parse};
use super::{expect_inputs, Backward, Forward, Init, Mode, Op, ParamDecl};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BatchNormConfig {
    #[serde(default = "default_eps")]
    pub eps: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_true")]
    pub affine: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_momentum() -> f64 {
    0.1
}

#[derive(Debug, Clone)]
pub struct BatchNorm {
    kind: &'static str,
    shape: Vec<usize>,
    channels: usize,
    /// Stored elements per channel per sample before / after the channel axis.
    outer: usize,
    inner: usize,
    eps: f64,
    momentum: f64,
    affine: bool,
    /// Per channel, from the last forward: the mean and 1/√(var + eps) it normalised with.
    mean: Vec<f32>,
    rstd: Vec<f32>,
    /// Whether the last forward used batch statistics (train) or the running ones (eval).
    batch_stats: bool,
    /// f64 accumulators per channel (forward statistics, backward sums).
    acc: Vec<f64>,
    acc2: Vec<f64>,
}

pub fn build_1d(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    build(name, "BatchNorm1d", config, inputs)
}

pub fn build_2d(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    build(name, "BatchNorm2d", config, inputs)
}

fn build(name: &str, kind: &'static str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, kind, inputs, 1)?;
    let c: BatchNormConfig = parse(name, kind, config)?;
    if !(c.eps > 0.0 && c.eps.is_finite()) {
        return Err(Error::config(&format!("nodes[{name}].config.eps"), format!("must be > 0, got {}", c.eps)));
    }
    if !(0.0..=1.0).contains(&c.momentum) {
        return Err(Error::config(
            &format!("nodes[{name}].config.momentum"),
            format!("must be in [0, 1], got {}", c.momentum),
        ));
    }
    let shape = inputs[0].clone();
    let (channels, outer, inner) = match (kind, shape.as_slice()) {
        ("BatchNorm1d", &[f]) => (f, 1, 1),
        ("BatchNorm1d", &[c, l]) => (c, 1, l),
        ("BatchNorm2d", &[c, h, w]) => (c, h * w, 1),
        _ => {
            let want = if kind == "BatchNorm1d" { "[features] or [channels, length]" } else { "[channels, height, width]" };
            return Err(Error::graph(
                name,
                format!("{name} ({kind}) takes {want} per sample, got input shape {shape:?}"),
            ));
        }
    };
    Ok(Box::new(BatchNorm {
        kind,
        shape,
        channels,
        outer,
        inner,
        eps: c.eps,
        momentum: c.momentum,
        affine: c.affine,
        mean: vec![0.0; channels],
        rstd: vec![1.0; channels],
        batch_stats: false,
        acc: vec![0.0; channels],
        acc2: vec![0.0; channels],
    }))
}

/// The eval-mode affine map of a batch norm, per channel: y = x·scale + shift with
/// scale = weight/√(running_var + eps), shift = bias − running_mean·scale
/// (weight = 1, bias = 0 without affine). For folding into a preceding conv.
pub fn eval_scale_shift(
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let c = running_mean.len();
    let mut scale = vec![0.0; c];
    let mut shift = vec![0.0; c];
    for k in 0..c {
        let w = weight.map_or(1.0, |w| w[k] as f64);
        let b = bias.map_or(0.0, |b| b[k] as f64);
        let s = w / (running_var[k] as f64 + eps).sqrt();
        scale[k] = s as f32;
        shift[k] = (b - running_mean[k] as f64 * s) as f32;
    }
    (scale, shift)
}

impl BatchNorm {
    pub fn eps(&self) -> f64 {
        self.eps
    }
    pub fn affine(&self) -> bool {
        self.affine
    }
    /// Index of running_mean among the op's tensors (running_var follows).
    fn buffers(&self) -> usize {
        if self.affine {
            2
        } else {
            0
        }
    }
    /// This op's eval-mode scale and shift from its tensors (in `params` order).
    pub fn eval_scale_shift(&self, params: &[&[f32]]) -> (Vec<f32>, Vec<f32>) {
        let b = self.buffers();
        let (w, bias) = if self.affine { (Some(params[0]), Some(params[1])) } else { (None, None) };
        eval_scale_shift(w, bias, params[b], params[b + 1], self.eps)
    }

    /// Offsets of the `rows·outer` blocks of the batch, each `C·inner` values laid out [C, inner].
    fn blocks(&self, rows: usize) -> impl Iterator<Item = usize> {
        let block = self.channels * self.inner;
        (0..rows * self.outer).map(move |o| o * block)
    }
}

impl Op for BatchNorm {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn params(&self) -> Vec<ParamDecl> {
        let c = self.channels;
        let mut p = Vec::new();
        if self.affine {
            p.push(ParamDecl::trainable("weight", vec![c], Init::Constant(1.0)));
            p.push(ParamDecl::trainable("bias", vec![c], Init::Constant(0.0)));
        }
        p.push(ParamDecl::buffer("running_mean", vec![c], Init::Constant(0.0)));
        p.push(ParamDecl::buffer("running_var", vec![c], Init::Constant(1.0)));
        p.push(ParamDecl::counter("num_batches_tracked"));
        p
    }

    fn eval_affine(&self, cx: &Forward, scale: &mut [f32], shift: &mut [f32]) -> bool {
        // Only where the channel is the last stored axis (BatchNorm2d, BatchNorm1d on [F]).
        if self.inner != 1 || scale.len() < self.channels || shift.len() < self.channels {
            return false;
        }
        let b = self.buffers();
        let (w, bias) = if self.affine { (Some(cx.param(0)), Some(cx.param(1))) } else { (None, None) };
        let (mean, var) = (cx.param(b), cx.param(b + 1));
        for k in 0..self.channels {
            let s = w.map_or(1.0, |w| w[k] as f64) / (var[k] as f64 + self.eps).sqrt();
            scale[k] = s as f32;
            shift[k] = (bias.map_or(0.0, |b| b[k] as f64) - mean[k] as f64 * s) as f32;
        }
        true
    }

    fn forward(&mut self, cx: &Forward) {
        let (c, inner) = (self.channels, self.inner);
        let x = cx.input(0);
        let y = cx.output();
        let b = self.buffers();
        let train = cx.mode == Mode::Train;
        self.batch_stats = train;
        if train {
            // n values per channel: mean, then mean squared deviation, in f64.
            let n = (cx.rows * self.outer * inner) as f64;
            self.acc.fill(0.0);
            for o in self.blocks(cx.rows) {
                let blk = &x[o..o + c * inner];
                if inner == 1 {
                    for (a, &v) in self.acc.iter_mut().zip(blk) {
                        *a += v as f64;
                    }
                } else {
                    for (a, run) in self.acc.iter_mut().zip(blk.chunks_exact(inner)) {
                        *a += run.iter().map(|&v| v as f64).sum::<f64>();
                    }
                }
            }
            for a in self.acc.iter_mut() {
                *a /= n;
            }
            self.acc2.fill(0.0);
            for o in self.blocks(cx.rows) {
                let blk = &x[o..o + c * inner];
                if inner == 1 {
                    for ((s, &m), &v) in self.acc2.iter_mut().zip(&self.acc).zip(blk) {
                        let d = v as f64 - m;
                        *s += d * d;
                    }
                } else {
                    for ((s, &m), run) in self.acc2.iter_mut().zip(&self.acc).zip(blk.chunks_exact(inner)) {
                        *s += run.iter().map(|&v| (v as f64 - m) * (v as f64 - m)).sum::<f64>();
                    }
                }
            }
            cx.param_mut(b + 2)[0] += 1.0;
            let running_mean = cx.param_mut(b);
            let running_var = cx.param_mut(b + 1);
            let m = self.momentum;
            // PyTorch refuses n = 1 in training (the unbiased variance is undefined);
            // here the running variance then takes the biased one (0).
            let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
            for k in 0..c {
                let mean = self.acc[k];
                let var = self.acc2[k] / n;
                self.mean[k] = mean as f32;
                self.rstd[k] = (1.0 / (var + self.eps).sqrt()) as f32;
                running_mean[k] = ((1.0 - m) * running_mean[k] as f64 + m * mean) as f32;
                running_var[k] = ((1.0 - m) * running_var[k] as f64 + m * var * unbias) as f32;
            }
        } else {
            let (rm, rv) = (cx.param(b), cx.param(b + 1));
            for k in 0..c {
                self.mean[k] = rm[k];
                self.rstd[k] = (1.0 / (rv[k] as f64 + self.eps).sqrt()) as f32;
            }
        }
        // y = (x − mean)·(rstd·weight) + bias; acc holds rstd·weight, acc2 the bias (f64 scratch reused).
        for k in 0..c {
            let w = if self.affine { cx.param(0)[k] } else { 1.0 };
            let bias = if self.affine { cx.param(1)[k] } else { 0.0 };
            self.acc[k] = (self.rstd[k] * w) as f64;
            self.acc2[k] = bias as f64;
        }
        for o in self.blocks(cx.rows) {
            let (xb, yb) = (&x[o..o + c * inner], &mut y[o..o + c * inner]);
            if inner == 1 {
                for k in 0..c {
                    yb[k] = (xb[k] - self.mean[k]) * self.acc[k] as f32 + self.acc2[k] as f32;
                }
            } else {
                for k in 0..c {
                    let (s, m, sh) = (self.acc[k] as f32, self.mean[k], self.acc2[k] as f32);
                    for (yv, &xv) in yb[k * inner..(k + 1) * inner].iter_mut().zip(&xb[k * inner..(k + 1) * inner]) {
                        *yv = (xv - m) * s + sh;
                    }
                }
            }
        }
    }

    fn backward(&mut self, cx: &Backward) {
        let (c, inner) = (self.channels, self.inner);
        let x = cx.input(0);
        let dy = &*cx.dout();
        // Per channel: acc = Σ dy, acc2 = Σ dy·x̂ (over the n values of the channel).
        self.acc.fill(0.0);
        self.acc2.fill(0.0);
        for o in self.blocks(cx.rows) {
            let (xb, gb) = (&x[o..o + c * inner], &dy[o..o + c * inner]);
            if inner == 1 {
                for k in 0..c {
                    let xhat = (xb[k] - self.mean[k]) * self.rstd[k];
                    self.acc[k] += gb[k] as f64;
                    self.acc2[k] += (gb[k] * xhat) as f64;
                }
            } else {
                for k in 0..c {
                    let (m, r) = (self.mean[k], self.rstd[k]);
                    for i in k * inner..(k + 1) * inner {
                        self.acc[k] += gb[i] as f64;
                        self.acc2[k] += (gb[i] * ((xb[i] - m) * r)) as f64;
                    }
                }
            }
        }
        if self.affine {
            // dweight[C] = Σ dy·x̂, dbias[C] = Σ dy
            for (g, &s) in cx.grad(0).iter_mut().zip(&self.acc2) {
                *g = s as f32;
            }
            for (g, &s) in cx.grad(1).iter_mut().zip(&self.acc) {
                *g = s as f32;
            }
        }
        let Some(dx) = cx.dinput(0) else { return };
        let acc = cx.accumulate(0);
        let n = (cx.rows * self.outer * inner) as f64;
        // Train: dx = w·rstd·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = w·rstd·dy.
        // Per channel, a = w·rstd, and dx = a·(dy − mdy − x̂·mdx); mdy = mdx = 0 in eval.
        let batch = self.batch_stats;
        let coef = |k: usize| -> (f32, f32, f32) {
            let w = if self.affine { cx.param(0)[k] } else { 1.0 };
            let a = w * self.rstd[k];
            if batch {
                (a, (self.acc[k] / n) as f32, (self.acc2[k] / n) as f32)
            } else {
                (a, 0.0, 0.0)
            }
        };
        for o in self.blocks(cx.rows) {
            let (xb, gb) = (&x[o..o + c * inner], &dy[o..o + c * inner]);
            let db = &mut dx[o..o + c * inner];
            for k in 0..c {
                let (a, mdy, mdx) = coef(k);
                let (m, r) = (self.mean[k], self.rstd[k]);
                for i in k * inner..(k + 1) * inner {
                    let xhat = (xb[i] - m) * r;
                    let v = a * (gb[i] - mdy - xhat * mdx);
                    if acc {
                        db[i] += v;
                    } else {
                        db[i] = v;
                    }
                }
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::spec::GraphSpec;
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use crate::ops::Mode;
    use serde_json::json;

    fn spec(shape: &[usize], op: &str, config: serde_json::Value) -> String {
        GraphSpec::sequential(shape, &[(op, config)]).to_json()
    }

    #[test]
    fn gradients_for_every_shape_config_and_mode() {
        let cases: &[(&[usize], &str)] = &[
            (&[5], "BatchNorm1d"),
            (&[3, 4], "BatchNorm1d"),
            (&[3, 2, 3], "BatchNorm2d"),
            (&[1, 3, 2], "BatchNorm2d"),
        ];
        for &(shape, op) in cases {
            for config in [json!({}), json!({ "affine": false }), json!({ "eps": 1e-3, "momentum": 0.3 })] {
                for mode in [Mode::Train, Mode::Eval] {
                    let s = spec(shape, op, config.clone());
                    let o = GradCheck { batch: 4, mode, h: 1e-2, ..Default::default() };
                    let n = check_gradients(&s, &o).unwrap_or_else(|e| panic!("{op} {shape:?} {config} {mode:?}: {e}"));
                    assert!(n > 0);
                }
            }
        }
    }

    #[test]
    fn gradients_after_a_linear_in_train_mode() {
        // Correlated features reach BN through a Linear, and BN's weight/bias gradients meet
        // a following Linear's. (No bias before BN: its gradient is exactly 0, all noise.)
        let s = GraphSpec::sequential(
            &[4],
            &[("Linear", json!({ "outFeatures": 3, "bias": false })), ("BatchNorm1d", json!({})), ("Linear", json!({ "outFeatures": 2 }))],
        )
        .to_json();
        check_gradients(&s, &GradCheck { batch: 5, ..Default::default() }).unwrap();
    }

    /// BN2d on a [2, 1, 2] input, batch 2: channel 0 sees {1, 3, 5, 7}, channel 1 {2, 2, 4, 8}.
    #[test]
    fn exact_forward_running_stats_and_eval() {
        let s = spec(&[2, 1, 2], "BatchNorm2d", json!({}));
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_param_by_name("0.weight", &[2.0, 1.0]).unwrap();
        m.set_param_by_name("0.bias", &[0.5, -1.0]).unwrap();
        // PyTorch order [N, C, H, W]: sample 0 = ch0 [1, 3], ch1 [2, 2]; sample 1 = ch0 [5, 7], ch1 [4, 8].
        let x = [1.0, 3.0, 2.0, 2.0, 5.0, 7.0, 4.0, 8.0];
        m.set_input(2, &x);
        m.forward(2);
        let y = m.output_logical(2);
        // ch0: mean 4, biased var 5; ch1: mean 4, var 6.
        let want = |v: f64, mean: f64, var: f64, w: f64, b: f64| ((v - mean) / (var + 1e-5).sqrt() * w + b) as f32;
        let expect: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = (i / 2) % 2;
                if ch == 0 { want(v as f64, 4.0, 5.0, 2.0, 0.5) } else { want(v as f64, 4.0, 6.0, 1.0, -1.0) }
            })
            .collect();
        for (a, b) in y.iter().zip(&expect) {
            assert!((a - b).abs() < 1e-6, "{y:?} vs {expect:?}");
        }
        let p = m.params();
        let get = |n: &str| p.iter().find(|t| t.name == n).unwrap().data.clone();
        // running_mean = 0.9·0 + 0.1·4; running_var = 0.9·1 + 0.1·(unbiased: 5·4/3, 6·4/3).
        assert_eq!(get("0.running_mean"), vec![0.4, 0.4]);
        let rv = get("0.running_var");
        assert!((rv[0] - (0.9 + 0.1 * 20.0 / 3.0) as f32).abs() < 1e-6, "{rv:?}");
        assert!((rv[1] - (0.9 + 0.1 * 8.0) as f32).abs() < 1e-6, "{rv:?}");
        // Eval uses the running statistics, and leaves them alone.
        m.set_mode(Mode::Eval);
        m.set_input(2, &x);
        m.forward(2);
        let y = m.output_logical(2);
        assert!((y[0] - want(1.0, 0.4, rv[0] as f64, 2.0, 0.5)).abs() < 1e-6);
        assert!((y[7] - want(8.0, 0.4, rv[1] as f64, 1.0, -1.0)).abs() < 1e-6);
        assert_eq!(m.params().iter().find(|t| t.name == "0.running_mean").unwrap().data, vec![0.4, 0.4]);
    }

    #[test]
    fn eval_scale_shift_matches_eval_forward() {
        let (scale, shift) = super::eval_scale_shift(Some(&[2.0]), Some(&[1.0]), &[3.0], &[4.0 - 1e-5], 1e-5);
        assert!((scale[0] - 1.0).abs() < 1e-6 && (shift[0] - (1.0 - 3.0)).abs() < 1e-6);
    }

    #[test]
    fn statistics_are_accurate_with_a_large_mean() {
        // Values 1e4 + {-1, 1}: a one-pass f32 variance would lose them entirely.
        let s = spec(&[1], "BatchNorm1d", json!({ "affine": false }));
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_input(4, &[9999.0, 10001.0, 9999.0, 10001.0]);
        let y = m.forward(4).to_vec();
        for (v, s) in y.iter().zip([-1.0f32, 1.0, -1.0, 1.0]) {
            assert!((v - s).abs() < 1e-4, "{y:?}");
        }
    }

    #[test]
    fn bad_shapes_and_configs_are_named() {
        let e = Model::from_json(&spec(&[2, 3, 4], "BatchNorm1d", json!({})), 0).unwrap_err().to_string();
        assert!(e.contains("0 (BatchNorm1d)") && e.contains("[2, 3, 4]"), "{e}");
        let e = Model::from_json(&spec(&[2], "BatchNorm2d", json!({})), 0).unwrap_err().to_string();
        assert!(e.contains("BatchNorm2d") && e.contains("[2]"), "{e}");
        let e = Model::from_json(&spec(&[2], "BatchNorm1d", json!({ "momentum": 2 })), 0).unwrap_err().to_string();
        assert!(e.contains("momentum"), "{e}");
        let e = Model::from_json(&spec(&[2], "BatchNorm1d", json!({ "eps": 0 })), 0).unwrap_err().to_string();
        assert!(e.contains("eps"), "{e}");
        let e = Model::from_json(&spec(&[2], "BatchNorm1d", json!({ "epsilon": 1 })), 0).unwrap_err().to_string();
        assert!(e.contains("epsilon"), "{e}");
    }
}
