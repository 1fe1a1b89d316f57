//! The pointwise activations (`Sigmoid`, `Tanh`, `LeakyReLU`, `GELU`, `SiLU`) and
//! `Softmax` / `LogSoftmax` over one dimension, with PyTorch's semantics.
//!
//! What each backward reads:
//! - Sigmoid: the output, dx = dy·y(1 − y); Tanh: the output, dx = dy·(1 − y²)
//! - LeakyReLU: the input, dx = dy for x > 0, else slope·dy (PyTorch's x > 0)
//! - GELU, SiLU: the input (their derivatives are not functions of the output)
//! - Softmax: the output, dx = y ⊙ (dy − Σ dy·y); LogSoftmax: the output,
//!   dx = dy − exp(y)·Σ dy (sums over the softmax dimension)
//!
//! Softmax's `dim` is counted as in PyTorch (batch = 0, negative from the end) and
//! mapped to the stored layout: for a [C, H, W] value stored [H, W, C], dim 1
//! (channels) is the last, contiguous stored axis.

use super::config::{parse, resolve_dim};
use super::relu::NoConfig;
use super::{expect_inputs, Backward, Forward, Op, SharedMut};
use crate::fastmath::exp_f64 as exp_fast;
use crate::team::run_parts;

/// Values per part of a pointwise op's parallel loop.
const PART: usize = 16 * 1024;
use crate::error::{Error, Result};
use crate::graph::layout::stored_split;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Sigmoid,
    Tanh,
    LeakyRelu(f32),
    /// GELU, exact (erf) or with the tanh approximation.
    Gelu { tanh: bool },
    Silu,
}

#[derive(Debug, Clone)]
pub struct Pointwise {
    act: Act,
    shape: Vec<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LeakyConfig {
    #[serde(default = "default_slope")]
    negative_slope: f64,
}
fn default_slope() -> f64 {
    0.01
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeluConfig {
    #[serde(default = "default_approximate")]
    approximate: String,
}
fn default_approximate() -> String {
    "none".into()
}

fn pointwise(name: &str, kind: &str, inputs: &[Vec<usize>], act: Act) -> Result<Box<dyn Op>> {
    expect_inputs(name, kind, inputs, 1)?;
    Ok(Box::new(Pointwise { act, shape: inputs[0].clone() }))
}

pub fn build_sigmoid(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    parse::<NoConfig>(name, "Sigmoid", config)?;
    pointwise(name, "Sigmoid", inputs, Act::Sigmoid)
}
pub fn build_tanh(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    parse::<NoConfig>(name, "Tanh", config)?;
    pointwise(name, "Tanh", inputs, Act::Tanh)
}
pub fn build_silu(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    parse::<NoConfig>(name, "SiLU", config)?;
    pointwise(name, "SiLU", inputs, Act::Silu)
}
pub fn build_leaky_relu(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    let c: LeakyConfig = parse(name, "LeakyReLU", config)?;
    if !c.negative_slope.is_finite() {
        return Err(Error::config(&format!("nodes[{name}].config.negativeSlope"), "must be finite"));
    }
    pointwise(name, "LeakyReLU", inputs, Act::LeakyRelu(c.negative_slope as f32))
}
pub fn build_gelu(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    let c: GeluConfig = parse(name, "GELU", config)?;
    let tanh = match c.approximate.as_str() {
        "none" => false,
        "tanh" => true,
        other => {
            return Err(Error::config(
                &format!("nodes[{name}].config.approximate"),
                format!("{name} (GELU): must be \"none\" or \"tanh\", got {other:?}"),
            ))
        }
    };
    pointwise(name, "GELU", inputs, Act::Gelu { tanh })
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
const GELU_C: f64 = 0.044715;

/// The error function to f64 accuracy (≲1e-14 relative): the Maclaurin series below
/// |x| = 2.5, erfc's continued fraction (Laplace's, evaluated bottom-up) above.
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 2.5 {
        // erf x = 2/√π Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
        let x2 = x * x;
        let (mut term, mut sum) = (x, x);
        for n in 1..100 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        let e = erfc_large(ax);
        if x > 0.0 {
            1.0 - e
        } else {
            e - 1.0
        }
    }
}

/// erfc(x) for x ≥ 2.5: e^(−x²)/√π · 1/(x + (1/2)/(x + (2/2)/(x + (3/2)/(x + ...)))).
fn erfc_large(x: f64) -> f64 {
    if x > 27.0 {
        return 0.0;
    }
    let mut t = x;
    for k in (1..=60).rev() {
        t = x + (k as f64 * 0.5) / t;
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * t)
}

/// Φ(x), the standard normal CDF, for the exact GELU's hot loop, from erfc(|z|),
/// z = x/√2, by the Chebyshev fit of Numerical Recipes (erfcc: relative error < 1.2e-7
/// for every z ≥ 0), so that the left tail, where Φ is small, keeps its relative
/// accuracy: Φ = erfc(|z|)/2 for x < 0, 1 − erfc(z)/2 otherwise. Evaluated in f64
/// (parity with PyTorch at 1e-5 through a GPT block needs it) with plain multiply-adds
/// and `exp_fast`: no libm call, no `mul_add` or `round` (software fallbacks on the
/// x86-64 baseline the crate is compiled for), so it vectorises.
/// The f64 Maclaurin series `erf` per element took 51 ns: 85% of a GPT step (each of
/// 4 GELUs of 393 k elements took 20 ms of forward, against 1 ms for an attention layer).
#[inline(always)]
fn normal_cdf_fast(x: f32) -> f64 {
    let z = (x as f64 * std::f64::consts::FRAC_1_SQRT_2).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77;
    for c in [-0.822_152_23, 1.488_515_87, -1.135_203_98, 0.278_868_07, -0.186_288_06, 0.096_784_18, 0.374_091_96, 1.000_023_68, -1.265_512_23] {
        p = p * t + c;
    }
    let half_erfc = 0.5 * t * exp_fast(p - z * z);
    if x < 0.0 {
        half_erfc
    } else {
        1.0 - half_erfc
    }
}

/// y = act(x) over a slice: every activation as one branch-free loop of plain
/// arithmetic (`exp_fast`, `normal_cdf_fast`; no libm call), compiled twice — for the
/// x86-64 baseline and for AVX2 + FMA, picked at run time — so LLVM vectorises it.
pub fn forward_slice(act: Act, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // Safety: the CPU has the features the function is compiled for.
        return unsafe { forward_slice_avx2(act, x, y) };
    }
    forward_loop(act, x, y)
}

/// dx = dy · act'(x) (or dx += with `accumulate`) over a slice, y = act(x) given.
pub fn backward_slice(act: Act, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // Safety: as in forward_slice.
        return unsafe { backward_slice_avx2(act, x, y, dy, dx, accumulate) };
    }
    backward_loop(act, x, y, dy, dx, accumulate)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_slice_avx2(act: Act, x: &[f32], y: &mut [f32]) {
    forward_loop(act, x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_slice_avx2(act: Act, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool) {
    backward_loop(act, x, y, dy, dx, accumulate)
}

/// σ(x) = 1/(1 + e^−x) in f64 through `exp_fast`.
#[inline(always)]
fn sigmoid_fast(x: f32) -> f64 {
    1.0 / (1.0 + exp_fast(-(x as f64)))
}

#[inline(always)]
fn gelu_forward_loop(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x as f64 * normal_cdf_fast(x)) as f32;
    }
}

#[inline(always)]
fn gelu_backward_loop(x: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool) {
    let d = |x: f32| {
        let v = x as f64;
        (normal_cdf_fast(x) + v * FRAC_1_SQRT_2PI * exp_fast(-0.5 * v * v)) as f32
    };
    if accumulate {
        for ((dx, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
            *dx += g * d(x);
        }
    } else {
        for ((dx, &g), &x) in dx.iter_mut().zip(dy).zip(x) {
            *dx = g * d(x);
        }
    }
}

#[inline(always)]
fn forward_loop(act: Act, x: &[f32], y: &mut [f32]) {
    let it = y.iter_mut().zip(x);
    match act {
        Act::Gelu { tanh: false } => gelu_forward_loop(x, y),
        Act::Gelu { tanh: true } => it.for_each(|(y, &x)| {
            // 0.5·x·(1 + tanh u) = x·σ(2u)
            let v = x as f64;
            *y = (v / (1.0 + exp_fast(-2.0 * SQRT_2_OVER_PI * (v + GELU_C * v * v * v)))) as f32
        }),
        Act::Sigmoid => it.for_each(|(y, &x)| *y = sigmoid_fast(x) as f32),
        // tanh x = 2σ(2x) − 1, in f64 (no cancellation that matters at f32 precision)
        Act::Tanh => it.for_each(|(y, &x)| *y = (2.0 * sigmoid_fast(2.0 * x) - 1.0) as f32),
        Act::Silu => it.for_each(|(y, &x)| *y = (x as f64 * sigmoid_fast(x)) as f32),
        Act::LeakyRelu(s) => it.for_each(|(y, &x)| *y = if x > 0.0 { x } else { x * s }),
    }
}

#[inline(always)]
fn backward_loop(act: Act, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32], accumulate: bool) {
    #[inline(always)]
    fn apply(dx: &mut [f32], dy: &[f32], x: &[f32], y: &[f32], accumulate: bool, d: impl Fn(f32, f32) -> f32) {
        let it = dx.iter_mut().zip(dy).zip(x.iter().zip(y));
        if accumulate {
            it.for_each(|((dx, &g), (&x, &y))| *dx += g * d(x, y));
        } else {
            it.for_each(|((dx, &g), (&x, &y))| *dx = g * d(x, y));
        }
    }
    match act {
        Act::Gelu { tanh: false } => gelu_backward_loop(x, dy, dx, accumulate),
        Act::Gelu { tanh: true } => apply(dx, dy, x, y, accumulate, |x, _| {
            let v = x as f64;
            let t = 2.0 / (1.0 + exp_fast(-2.0 * SQRT_2_OVER_PI * (v + GELU_C * v * v * v))) - 1.0;
            (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * v * v)) as f32
        }),
        Act::Sigmoid => apply(dx, dy, x, y, accumulate, |_, y| y * (1.0 - y)),
        Act::Tanh => apply(dx, dy, x, y, accumulate, |_, y| 1.0 - y * y),
        Act::Silu => apply(dx, dy, x, y, accumulate, |x, _| {
            let s = sigmoid_fast(x);
            (s * (1.0 + x as f64 * (1.0 - s))) as f32
        }),
        Act::LeakyRelu(sl) => apply(dx, dy, x, y, accumulate, |x, _| if x > 0.0 { 1.0 } else { sl }),
    }
}

/// The scalar references the slice kernels are tested against (libm's tanh and exp,
/// the f64 series erf).
#[cfg(test)]
impl Act {
    #[inline]
    fn forward(self, x: f32) -> f32 {
        match self {
            Act::Sigmoid => sigmoid(x),
            Act::Tanh => x.tanh(),
            Act::LeakyRelu(s) => {
                if x > 0.0 {
                    x
                } else {
                    x * s
                }
            }
            Act::Gelu { tanh: false } => {
                let x = x as f64;
                (0.5 * x * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2))) as f32
            }
            Act::Gelu { tanh: true } => {
                let x = x as f64;
                (0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + GELU_C * x * x * x)).tanh())) as f32
            }
            Act::Silu => x * sigmoid(x),
        }
    }

    /// dy/dx from the input x and the output y.
    #[inline]
    fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Act::Sigmoid => y * (1.0 - y),
            Act::Tanh => 1.0 - y * y,
            Act::LeakyRelu(s) => {
                if x > 0.0 {
                    1.0
                } else {
                    s
                }
            }
            Act::Gelu { tanh: false } => {
                // Φ(x) + x·φ(x)
                let x = x as f64;
                let cdf = 0.5 * (1.0 + erf(x * std::f64::consts::FRAC_1_SQRT_2));
                (cdf + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()) as f32
            }
            Act::Gelu { tanh: true } => {
                let x = x as f64;
                let t = (SQRT_2_OVER_PI * (x + GELU_C * x * x * x)).tanh();
                (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x)) as f32
            }
            Act::Silu => {
                // σ(x)·(1 + x·(1 − σ(x)))
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
        }
    }
}

#[cfg(test)]
#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Op for Pointwise {
    fn kind(&self) -> &'static str {
        match self.act {
            Act::Sigmoid => "Sigmoid",
            Act::Tanh => "Tanh",
            Act::LeakyRelu(_) => "LeakyReLU",
            Act::Gelu { .. } => "GELU",
            Act::Silu => "SiLU",
        }
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward(&mut self, cx: &Forward) {
        let (act, x) = (self.act, cx.input(0));
        let y = SharedMut::new(cx.output());
        // Parts of 16 Ki values on the team: a GPT's GELU (393 k values) took 1.3 ms on
        // one thread, the whole step 41 ms; a part's loop is vectorised (forward_slice).
        let parts = x.len().div_ceil(PART);
        run_parts(parts, &|p| {
            let (start, end) = (p * PART, ((p + 1) * PART).min(x.len()));
            // Safety: parts write disjoint ranges of the output.
            forward_slice(act, &x[start..end], unsafe { y.slice(start, end - start) });
        });
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let (act, x, y, dy, acc) = (self.act, cx.input(0), cx.output(), &*cx.dout(), cx.accumulate(0));
        let dx = SharedMut::new(dx);
        run_parts(x.len().div_ceil(PART), &|p| {
            let (start, end) = (p * PART, ((p + 1) * PART).min(x.len()));
            // Safety: as in forward.
            backward_slice(act, &x[start..end], &y[start..end], &dy[start..end], unsafe { dx.slice(start, end - start) }, acc);
        });
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftmaxConfig {
    #[serde(default = "default_dim")]
    dim: i64,
}
fn default_dim() -> i64 {
    -1
}

/// `Softmax` / `LogSoftmax` over one dimension. A sample is [outer, n, inner] in its
/// stored layout; the softmax runs over n at stride `inner`.
#[derive(Debug, Clone)]
pub struct Softmax {
    log: bool,
    shape: Vec<usize>,
    outer: usize,
    n: usize,
    inner: usize,
}

pub fn build_softmax(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    softmax(name, "Softmax", false, config, inputs)
}
pub fn build_log_softmax(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    softmax(name, "LogSoftmax", true, config, inputs)
}

fn softmax(name: &str, kind: &str, log: bool, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, kind, inputs, 1)?;
    let c: SoftmaxConfig = parse(name, kind, config)?;
    let shape = inputs[0].clone();
    let axis = resolve_dim(name, kind, c.dim, shape.len())?;
    let (outer, n, inner) = stored_split(&shape, axis);
    Ok(Box::new(Softmax { log, shape, outer, n, inner }))
}

impl Softmax {
    /// Calls f(start, stride) for every softmax line of `rows` samples: elements
    /// start + k·stride for k in 0..n.
    fn lines(&self, rows: usize, mut f: impl FnMut(usize)) {
        let block = self.n * self.inner;
        for o in 0..rows * self.outer {
            for i in 0..self.inner {
                f(o * block + i);
            }
        }
    }
}

impl Op for Softmax {
    fn kind(&self) -> &'static str {
        if self.log {
            "LogSoftmax"
        } else {
            "Softmax"
        }
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn forward(&mut self, cx: &Forward) {
        let (x, y) = (cx.input(0), cx.output());
        let (n, s, log) = (self.n, self.inner, self.log);
        self.lines(cx.rows, |start| {
            let idx = (0..n).map(|k| start + k * s);
            // y = exp(x − max) / Σ exp(x − max), or x − max − ln Σ exp(x − max)
            let max = idx.clone().fold(f32::NEG_INFINITY, |m, i| m.max(x[i]));
            let mut sum = 0f64;
            for i in idx.clone() {
                let e = (x[i] - max).exp();
                sum += e as f64;
                y[i] = e;
            }
            if log {
                let lse = sum.ln() as f32;
                idx.for_each(|i| y[i] = x[i] - max - lse);
            } else {
                let inv = (1.0 / sum) as f32;
                idx.for_each(|i| y[i] *= inv);
            }
        });
    }
    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let (y, dy) = (cx.output(), &*cx.dout());
        let (n, s, log, acc) = (self.n, self.inner, self.log, cx.accumulate(0));
        self.lines(cx.rows, |start| {
            let idx = (0..n).map(|k| start + k * s);
            // softmax: dx = y(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy
            let dot: f64 = if log {
                idx.clone().map(|i| dy[i] as f64).sum()
            } else {
                idx.clone().map(|i| dy[i] as f64 * y[i] as f64).sum()
            };
            let dot = dot as f32;
            for i in idx {
                let v = if log { dy[i] - y[i].exp() * dot } else { y[i] * (dy[i] - dot) };
                if acc {
                    dx[i] += v;
                } else {
                    dx[i] = v;
                }
            }
        });
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::erf;
    use crate::graph::spec::GraphSpec;
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use crate::ops::Mode;
    use serde_json::{json, Value};

    fn spec(shape: &[usize], op: &str, config: Value) -> String {
        GraphSpec::sequential(shape, &[(op, config)]).to_json()
    }

    fn forward_logical(shape: &[usize], op: &str, config: Value, rows: usize, x: &[f32]) -> Vec<f32> {
        let mut m = Model::from_json(&spec(shape, op, config), 0).unwrap();
        m.set_input(rows, x);
        m.forward(rows);
        m.output_logical(rows)
    }

    #[test]
    fn every_slice_kernel_matches_its_scalar_reference() {
        use super::{backward_slice, forward_slice, Act};
        let x: Vec<f32> = (-60_000..=60_000).map(|i| i as f32 * 2e-4).collect();
        for act in [Act::Sigmoid, Act::Tanh, Act::Silu, Act::Gelu { tanh: true }, Act::Gelu { tanh: false }, Act::LeakyRelu(0.1)] {
            let mut y = vec![0.0; x.len()];
            forward_slice(act, &x, &mut y);
            let dy = vec![1.0f32; x.len()];
            let mut dx = vec![0.0; x.len()];
            backward_slice(act, &x, &y, &dy, &mut dx, false);
            for i in 0..x.len() {
                let (want_y, want_d) = (act.forward(x[i]), act.derivative(x[i], act.forward(x[i])));
                let ey = (y[i] - want_y).abs() / want_y.abs().max(1e-3);
                let ed = (dx[i] - want_d).abs() / want_d.abs().max(1e-2);
                // Derivatives from y (σ's y·(1 − y), tanh's 1 − y²) inherit y's f32 rounding.
                assert!(ey < 2e-6 && ed < 2e-5, "{act:?} at {}: {} vs {want_y}, derivative {} vs {want_d}", x[i], y[i], dx[i]);
            }
        }
    }

    #[test]
    fn gelu_fast_matches_the_f64_reference() {
        // Every 1e-4 over ±10: the slices' GELU and its derivative against the f64 formulas.
        let x: Vec<f32> = (-100_000..=100_000).map(|i| i as f32 * 1e-4).collect();
        let mut y = vec![0.0; x.len()];
        let gelu = super::Act::Gelu { tanh: false };
        super::forward_slice(gelu, &x, &mut y);
        let dy = vec![1.0f32; x.len()];
        let mut dx = vec![0.0; x.len()];
        super::backward_slice(gelu, &x, &y, &dy, &mut dx, false);
        let (mut worst_y, mut worst_d) = (0f64, 0f64);
        let (mut at_y, mut at_d) = (0f32, 0f32);
        for i in 0..x.len() {
            let v = x[i] as f64;
            let cdf = 0.5 * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2));
            let want_y = v * cdf;
            let want_d = cdf + v * super::FRAC_1_SQRT_2PI * (-0.5 * v * v).exp();
            // Relative, with a floor of 1e-3 (GELU's values near 0 are x/2 ≈ 0); the
            // derivative Φ + xφ crosses 0 near x = −0.75: relative to its larger term there.
            let (ey, ed) = ((y[i] as f64 - want_y).abs() / want_y.abs().max(1e-3), (dx[i] as f64 - want_d).abs() / want_d.abs().max(cdf).max(1e-3));
            if ey > worst_y { worst_y = ey; at_y = x[i]; }
            if ed > worst_d { worst_d = ed; at_d = x[i]; }
        }
        assert!(worst_y < 2e-6 && worst_d < 2e-6, "GELU relative error {worst_y:.2e} at {at_y}, derivative {worst_d:.2e} at {at_d}");
        let mut acc = vec![1.0f32; x.len()];
        super::backward_slice(gelu, &x, &y, &dy, &mut acc, true);
        assert!(acc.iter().zip(&dx).all(|(a, d)| (a - 1.0 - d).abs() < 1e-6));
    }

    #[test]
    fn erf_matches_reference_values() {
        // References: C libm's erf/erfc (Python's math.erf, math.erfc).
        let cases = [
            (0.0, 0.0),
            (1e-3, 1.1283787909692365e-3),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (-2.4, -0.9993114861033550),
            (2.6, 0.9997639655834707),
            (3.5, 0.9999992569016276),
        ];
        for (x, want) in cases {
            let got = erf(x);
            assert!((got - want).abs() <= 1e-14_f64.max(1e-13 * want.abs()), "erf({x}) = {got}, want {want}");
        }
        // The tail: 1 − erf(x) = erfc(x) to ~1e-12 relative.
        for (x, erfc) in [(2.5, 4.069520174449590e-4), (3.0, 2.209049699858544e-5), (4.0, 1.541725790028002e-8), (6.0, 2.151973671249892e-17)] {
            let got = super::erfc_large(x);
            assert!((got - erfc).abs() < 1e-11 * erfc, "erfc({x}) = {got:e}, want {erfc:e}");
        }
    }

    #[test]
    fn exact_pointwise_values() {
        let x = [-2.0f32, -0.5, 0.0, 0.5, 3.0];
        let f = |op: &str, c: Value| forward_logical(&[5], op, c, 1, &x);
        let close = |got: Vec<f32>, want: [f64; 5]| {
            for (g, w) in got.iter().zip(want) {
                assert!((*g as f64 - w).abs() < 1e-6 * w.abs().max(1.0), "{got:?} vs {want:?}");
            }
        };
        close(f("Sigmoid", Value::Null), [0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.9525741268224334]);
        close(f("Tanh", Value::Null), [-0.9640275800758169, -0.46211715726000974, 0.0, 0.46211715726000974, 0.9950547536867305]);
        close(f("LeakyReLU", Value::Null), [-0.02, -0.005, 0.0, 0.5, 3.0]);
        close(f("LeakyReLU", json!({ "negativeSlope": 0.2 })), [-0.4, -0.1, 0.0, 0.5, 3.0]);
        close(f("SiLU", Value::Null), [-0.23840584404423515, -0.18877033439907268, 0.0, 0.3112296656009273, 2.8577223804673]);
        // The formulas of torch.nn.functional.gelu (exact and approximate="tanh") in float64 with libm's erf.
        close(f("GELU", Value::Null), [-0.04550026389635842, -0.15426876936299347, 0.0, 0.34573123063700656, 2.99595030590511]);
        close(f("GELU", json!({ "approximate": "tanh" })), [-0.04540230591222, -0.15428599017, 0.0, 0.34571400982, 2.99636261]);
    }

    #[test]
    fn pointwise_gradients() {
        let configs: &[(&str, Value)] = &[
            ("Sigmoid", Value::Null),
            ("Tanh", Value::Null),
            ("LeakyReLU", Value::Null),
            ("LeakyReLU", json!({ "negativeSlope": 0.3 })),
            ("GELU", Value::Null),
            ("GELU", json!({ "approximate": "tanh" })),
            ("SiLU", Value::Null),
        ];
        for (op, c) in configs {
            for shape in [&[7][..], &[2, 3, 2]] {
                for mode in [Mode::Train, Mode::Eval] {
                    // LeakyReLU has a kink at 0: a smaller step, and a seed whose inputs are
                    // not within it of 0 (seed 1 draws a -0.0002).
                    let (h, seed) = if *op == "LeakyReLU" { (1e-3, 2) } else { (1e-2, 1) };
                    let o = GradCheck { mode, input_scale: 3.0, h, seed, ..Default::default() };
                    check_gradients(&spec(shape, op, c.clone()), &o).unwrap_or_else(|e| panic!("{op} {c}: {e}"));
                }
            }
        }
    }

    #[test]
    fn softmax_over_channels_and_over_width_of_a_chw_input() {
        // One [2, 1, 3] sample in PyTorch order: ch0 = [1, 2, 3], ch1 = [0, 0, 5].
        let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, 5.0];
        let sm = |v: &[f64]| -> Vec<f64> {
            let m = v.iter().cloned().fold(f64::MIN, f64::max);
            let s: f64 = v.iter().map(|a| (a - m).exp()).sum();
            v.iter().map(|a| (a - m).exp() / s).collect()
        };
        let check = |got: Vec<f32>, want: Vec<f64>| {
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
            }
        };
        // dim 1 = channels: per spatial position over (ch0, ch1).
        let got = forward_logical(&[2, 1, 3], "Softmax", json!({ "dim": 1 }), 1, &x);
        let mut want = vec![0.0; 6];
        for p in 0..3 {
            let s = sm(&[x[p] as f64, x[3 + p] as f64]);
            want[p] = s[0];
            want[3 + p] = s[1];
        }
        check(got, want);
        // dim -1 = width: per channel over its three values.
        let got = forward_logical(&[2, 1, 3], "Softmax", json!({}), 1, &x);
        let mut want = sm(&[1.0, 2.0, 3.0]);
        want.extend(sm(&[0.0, 0.0, 5.0]));
        check(got.clone(), want.clone());
        // LogSoftmax is its log; dim -3 = dim 1.
        let got = forward_logical(&[2, 1, 3], "LogSoftmax", json!({ "dim": -1 }), 1, &x);
        check(got.iter().map(|v| v.exp()).collect(), want);
        assert_eq!(
            forward_logical(&[2, 1, 3], "Softmax", json!({ "dim": -3 }), 1, &x),
            forward_logical(&[2, 1, 3], "Softmax", json!({ "dim": 1 }), 1, &x)
        );
    }

    #[test]
    fn softmax_is_stable_for_large_inputs() {
        let got = forward_logical(&[3], "Softmax", Value::Null, 1, &[1000.0, 1000.0, -1000.0]);
        assert_eq!(got, vec![0.5, 0.5, 0.0]);
        let got = forward_logical(&[2], "LogSoftmax", Value::Null, 1, &[1000.0, 0.0]);
        assert_eq!(got, vec![0.0, -1000.0]);
    }

    #[test]
    fn softmax_gradients_for_every_dim() {
        let cases: &[(&[usize], &[i64])] = &[(&[5], &[1, -1]), (&[3, 4], &[1, 2, -1, -2]), (&[3, 2, 4], &[1, 2, 3, -1, -2, -3]), (&[1, 2, 3], &[1, 3])];
        for &(shape, dims) in cases {
            for &dim in dims {
                for op in ["Softmax", "LogSoftmax"] {
                    check_gradients(&spec(shape, op, json!({ "dim": dim })), &GradCheck { input_scale: 2.0, ..Default::default() })
                        .unwrap_or_else(|e| panic!("{op} {shape:?} dim {dim}: {e}"));
                }
            }
        }
    }

    #[test]
    fn bad_configs_are_named() {
        let err = |s: String| Model::from_json(&s, 0).unwrap_err().to_string();
        let e = err(spec(&[3], "Softmax", json!({ "dim": 0 })));
        assert!(e.contains("config.dim") && e.contains("batch"), "{e}");
        let e = err(spec(&[3, 4], "LogSoftmax", json!({ "dim": 3 })));
        assert!(e.contains("config.dim") && e.contains("out of range"), "{e}");
        let e = err(spec(&[3], "GELU", json!({ "approximate": "fast" })));
        assert!(e.contains("config.approximate"), "{e}");
        let e = err(spec(&[3], "Sigmoid", json!({ "inplace": true })));
        assert!(e.contains("inplace"), "{e}");
    }
}
