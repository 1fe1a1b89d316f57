//! What `LSTM` and `GRU` share: the config (`hiddenSize`, `numLayers`, `bias`,
//! `returns`), the input checks, PyTorch's parameters per layer (names, shapes, init,
//! order), their stored layouts, the scratch kept from forward for backward, and the
//! gate nonlinearities (sigmoid and tanh over a slice, AVX2 when the CPU has it).
//!
//! Layouts (B samples, T steps, G gates of H each: G = 4 for LSTM, 3 for GRU):
//! - weight_ih_l{k} [G·H, in] and weight_hh_l{k} [G·H, H] are stored transposed,
//!   [in, G·H] and [H, G·H], so the forward products read a row-major right-hand
//!   side; backward reads a copy of weight_hh in PyTorch's layout (refreshed by each
//!   forward) for its per-step product dh_{t-1} = dgates_t · W_hh.
//! - Sequences are batch-first: row b·T + t of a [B·T, ·] matrix is sample b, step t,
//!   so step t of all samples is a strided view (row stride T·width) of the same buffer.

use super::config::default_true;
use super::{Backward, Forward, Init, ParamDecl, SharedMut};
use crate::error::{Error, Result};
use crate::gemm::{gemm, Epilogue, MatMut, MatRef};

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Lstm,
    Gru,
}

impl Cell {
    pub fn kind(self) -> &'static str {
        match self {
            Cell::Lstm => "LSTM",
            Cell::Gru => "GRU",
        }
    }
    /// Gates per hidden unit: LSTM i, f, g, o; GRU r, z, n.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// State tensors: LSTM (h, c), GRU h.
    pub fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            Cell::Gru => 1,
        }
    }
}

/// What the op outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// [T, H]: the top layer's h at every step.
    Sequence,
    /// [H]: the top layer's h at the last step.
    Last,
    /// LSTM [2, L, H] (h_n then c_n), GRU [L, H]: every layer's final state.
    State,
}

/// The parsed config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RnnConfig {
    pub hidden: usize,
    pub layers: usize,
    pub bias: bool,
    pub returns: Returns,
}

/// Reads the config field by field, so that every error names its field.
pub fn parse_config(name: &str, kind: &str, config: &serde_json::Value) -> Result<RnnConfig> {
    let empty = serde_json::Map::new();
    let map = match config {
        serde_json::Value::Null => &empty,
        serde_json::Value::Object(m) => m,
        other => return Err(Error::config(&format!("nodes[{name}].config"), format!("{name} ({kind}): must be an object, got {other}"))),
    };
    let field = |f: &str| format!("nodes[{name}].config.{f}");
    let size = |f: &str, v: &serde_json::Value| -> Result<usize> {
        match v.as_u64() {
            Some(n) if n >= 1 && n <= u32::MAX as u64 => Ok(n as usize),
            _ => Err(Error::config(&field(f), format!("{name} ({kind}): {f} must be an integer >= 1, got {v}"))),
        }
    };
    let mut c = RnnConfig { hidden: 0, layers: 1, bias: default_true(), returns: Returns::Sequence };
    for (key, v) in map {
        match key.as_str() {
            "hiddenSize" => c.hidden = size(key, v)?,
            "numLayers" => c.layers = size(key, v)?,
            "bias" => {
                c.bias = v
                    .as_bool()
                    .ok_or_else(|| Error::config(&field(key), format!("{name} ({kind}): bias must be true or false, got {v}")))?
            }
            "returns" => {
                c.returns = match v.as_str() {
                    Some("sequence") => Returns::Sequence,
                    Some("last") => Returns::Last,
                    Some("state") => Returns::State,
                    _ => {
                        return Err(Error::config(
                            &field(key),
                            format!("{name} ({kind}): returns must be \"sequence\", \"last\" or \"state\", got {v}"),
                        ))
                    }
                }
            }
            other => {
                return Err(Error::config(
                    &field(other),
                    format!("{name} ({kind}): unknown field `{other}`; it takes hiddenSize, numLayers, bias, returns"),
                ))
            }
        }
    }
    if c.hidden == 0 {
        return Err(Error::config(&field("hiddenSize"), format!("{name} ({kind}): missing field `hiddenSize`")));
    }
    Ok(c)
}

/// Checks the inputs: x [T, F], then optionally the initial state(s), each [L, H].
/// Returns (T, F, whether initial states are given).
pub fn check_inputs(name: &str, cell: Cell, c: &RnnConfig, inputs: &[Vec<usize>]) -> Result<(usize, usize, bool)> {
    let kind = cell.kind();
    let states = cell.states();
    let with_state = match inputs.len() {
        1 => false,
        n if n == 1 + states => true,
        n => {
            let names = if cell == Cell::Lstm { "[x] or [x, h0, c0]" } else { "[x] or [x, h0]" };
            return Err(Error::graph(name, format!("{name} ({kind}) takes inputs {names}, got {n} inputs")));
        }
    };
    let x = &inputs[0];
    if x.len() != 2 {
        return Err(Error::graph(
            name,
            format!("{name} ({kind}) takes a sequence [steps, features] per sample (batch-first), got input shape {x:?}"),
        ));
    }
    for (k, s) in inputs.iter().enumerate().skip(1) {
        if s[..] != [c.layers, c.hidden] {
            let what = if k == 1 { "h0" } else { "c0" };
            return Err(Error::graph(
                name,
                format!(
                    "{name} ({kind}) takes its initial state {what} (input {k}) as [numLayers, hiddenSize] = {:?} per sample, got {s:?}",
                    [c.layers, c.hidden]
                ),
            ));
        }
    }
    Ok((x[0], x[1], with_state))
}

/// A parameter name with a static lifetime, leaked once per distinct name.
fn intern(s: String) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = names.iter().find(|&&n| n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.push(n);
    n
}

/// The shape of one RNN: what both cells' forward and backward loops read.
#[derive(Debug, Clone)]
pub struct Dims {
    pub cell: Cell,
    pub steps: usize,
    pub features: usize,
    pub hidden: usize,
    pub layers: usize,
    pub bias: bool,
    pub returns: Returns,
    pub with_state: bool,
}

impl Dims {
    pub fn gh(&self) -> usize {
        self.cell.gates() * self.hidden
    }
    /// Input width of layer k.
    pub fn input_of(&self, k: usize) -> usize {
        if k == 0 {
            self.features
        } else {
            self.hidden
        }
    }
    /// Index of layer k's weight_ih among the op's parameters (weight_hh, bias_ih,
    /// bias_hh follow).
    pub fn base(&self, k: usize) -> usize {
        k * if self.bias { 4 } else { 2 }
    }
    pub fn output_shape(&self) -> Vec<usize> {
        match self.returns {
            Returns::Sequence => vec![self.steps, self.hidden],
            Returns::Last => vec![self.hidden],
            Returns::State if self.cell == Cell::Lstm => vec![2, self.layers, self.hidden],
            Returns::State => vec![self.layers, self.hidden],
        }
    }
    /// PyTorch's parameters in `state_dict` order, all U(±1/√H).
    pub fn params(&self) -> Vec<ParamDecl> {
        let bound = 1.0 / (self.hidden as f32).sqrt();
        let init = Init::Uniform { bound };
        let gh = self.gh();
        let mut p = Vec::new();
        for k in 0..self.layers {
            p.push(ParamDecl::trainable(intern(format!("weight_ih_l{k}")), vec![gh, self.input_of(k)], init));
            p.push(ParamDecl::trainable(intern(format!("weight_hh_l{k}")), vec![gh, self.hidden], init));
            if self.bias {
                p.push(ParamDecl::trainable(intern(format!("bias_ih_l{k}")), vec![gh], init));
                p.push(ParamDecl::trainable(intern(format!("bias_hh_l{k}")), vec![gh], init));
            }
        }
        p
    }
    /// (rows, cols) of parameter `index` in PyTorch's layout, and whether it is a weight.
    fn param_dims(&self, index: usize) -> (usize, usize, bool) {
        let per = if self.bias { 4 } else { 2 };
        let (k, j) = (index / per, index % per);
        match j {
            0 => (self.gh(), self.input_of(k), true),
            1 => (self.gh(), self.hidden, true),
            _ => (1, self.gh(), false),
        }
    }
    pub fn param_from_torch(&self, index: usize, torch: &[f32], internal: &mut [f32]) {
        match self.param_dims(index) {
            (r, c, true) => super::linear::transpose(torch, r, c, internal),
            _ => internal.copy_from_slice(torch),
        }
    }
    pub fn param_to_torch(&self, index: usize, internal: &[f32], torch: &mut [f32]) {
        match self.param_dims(index) {
            (r, c, true) => super::linear::transpose(internal, c, r, torch),
            _ => torch.copy_from_slice(internal),
        }
    }
    /// Multiply-adds per sample of a forward pass.
    pub fn forward_macs(&self) -> usize {
        (0..self.layers).map(|k| self.steps * (self.input_of(k) + self.hidden) * self.gh()).sum()
    }
    pub fn build(cell: Cell, name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Dims> {
        let c = parse_config(name, cell.kind(), config)?;
        let (steps, features, with_state) = check_inputs(name, cell, &c, inputs)?;
        Ok(Dims { cell, steps, features, hidden: c.hidden, layers: c.layers, bias: c.bias, returns: c.returns, with_state })
    }
}

/// What forward keeps for backward, per layer, sized once per batch capacity.
#[derive(Debug, Clone, Default)]
pub struct LayerScratch {
    /// [B·T, G·H]: pre-activations, then (forward) the gate activations, then
    /// (backward) the gradients of the pre-activations of the input projection.
    pub gates: Vec<f32>,
    /// [B·T, H]: h_t (the next layer's input).
    pub hseq: Vec<f32>,
    /// [B·T, H]: h_{t-1} (h0 or zeros at t = 0), the left side of dW_hh.
    pub hprev: Vec<f32>,
    /// LSTM [B·T, H]: c_t; GRU [B·T, H]: W_hn·h_{t-1} + b_hn.
    pub aux: Vec<f32>,
    /// LSTM [B·T, H]: tanh(c_t); GRU [B·T, G·H]: the gradient of the recurrent product's output.
    pub aux2: Vec<f32>,
    /// weight_hh in PyTorch's layout [G·H, H], for backward's per-step product.
    pub w_hh: Vec<f32>,
}

/// Scratch shared by the layers.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    pub layers: Vec<LayerScratch>,
    /// [B·T, H]: the gradient flowing into a layer's h sequence from the layer above
    /// (written by that layer's dx product).
    pub dseq: Vec<f32>,
    /// [B, H]: dh carried to the previous step; LSTM: [B, H] dc likewise.
    pub dh: Vec<f32>,
    pub dc: Vec<f32>,
    /// [B, G·H]: GRU's recurrent product of one step; LSTM: unused.
    pub step: Vec<f32>,
    /// [G·H]: b_ih + b_hh (LSTM adds both to the input projection).
    pub bias: Vec<f32>,
    /// [B, H]: c0 of one layer (LSTM; zeros without initial state).
    pub c0: Vec<f32>,
}

impl Scratch {
    pub fn prepare(&mut self, d: &Dims, capacity: usize) {
        let (t, h, gh) = (d.steps, d.hidden, d.gh());
        let bt = capacity * t;
        self.layers.resize_with(d.layers, Default::default);
        for l in self.layers.iter_mut() {
            l.gates.resize(bt * gh, 0.0);
            l.hseq.resize(bt * h, 0.0);
            l.hprev.resize(bt * h, 0.0);
            l.aux.resize(bt * h, 0.0);
            l.aux2.resize(bt * if d.cell == Cell::Lstm { h } else { gh }, 0.0);
            l.w_hh.resize(gh * h, 0.0);
        }
        self.dseq.resize(bt * h, 0.0);
        self.dh.resize(capacity * h, 0.0);
        self.dc.resize(capacity * h, 0.0);
        self.step.resize(if d.cell == Cell::Gru { capacity * gh } else { 0 }, 0.0);
        self.bias.resize(gh, 0.0);
        self.c0.resize(capacity * h, 0.0);
    }
}

/// C (+)= A·B (beta 0 or 1) with an epilogue, on the team.
pub fn product(a: MatRef, b: MatRef, beta: f32, c: MatMut, epilogue: Epilogue) {
    gemm(1.0, a, b, beta, c, epilogue)
}

/// Runs `f(rows range)` over `rows` rows of `width` floats of work each, split over the
/// threads when there is enough work. Each row is one sample: parts write disjoint rows.
pub fn par_rows(rows: usize, width: usize, f: &(dyn Fn(std::ops::Range<usize>) + Sync)) {
    let threads = crate::team::threads();
    let parts = if rows * width >= 8192 { threads.min(rows) } else { 1 };
    if parts <= 1 {
        return f(0..rows);
    }
    let step = rows.div_ceil(parts);
    crate::team::run_parts(parts, &|p| {
        let (r0, r1) = (p * step, ((p + 1) * step).min(rows));
        if r0 < r1 {
            f(r0..r1)
        }
    });
}

/// Where step t of sample b lives in a [B·T, width] buffer.
#[inline]
pub fn at(b: usize, t: usize, steps: usize, width: usize) -> usize {
    (b * steps + t) * width
}

/// The gradient of the op's output for layer l's final state: h part (and LSTM c part)
/// of sample b, from dout in its stored layout. LSTM [2, L, H] is stored
/// channels-last, [L, H, 2]; GRU [L, H] as given.
pub fn state_grad(d: &Dims, dout: &[f32], b: usize, l: usize, j: usize, which: usize) -> f32 {
    let (lh, h) = (d.layers * d.hidden, d.hidden);
    match d.cell {
        Cell::Lstm => dout[b * 2 * lh + (l * h + j) * 2 + which],
        Cell::Gru => dout[b * lh + l * h + j],
    }
}

/// Writes the op's output from the top layer's sequence (and every layer's final state).
pub fn write_output(d: &Dims, s: &Scratch, rows: usize, out: &mut [f32]) {
    let (t, h) = (d.steps, d.hidden);
    let top = &s.layers[d.layers - 1];
    match d.returns {
        Returns::Sequence => out.copy_from_slice(&top.hseq[..rows * t * h]),
        Returns::Last => {
            for b in 0..rows {
                out[b * h..(b + 1) * h].copy_from_slice(&top.hseq[at(b, t - 1, t, h)..][..h]);
            }
        }
        Returns::State => {
            let lh = d.layers * h;
            for (l, ls) in s.layers.iter().enumerate() {
                for b in 0..rows {
                    let hn = &ls.hseq[at(b, t - 1, t, h)..][..h];
                    match d.cell {
                        Cell::Lstm => {
                            let cn = &ls.aux[at(b, t - 1, t, h)..][..h];
                            let o = &mut out[b * 2 * lh + l * h * 2..][..2 * h];
                            for j in 0..h {
                                o[2 * j] = hn[j];
                                o[2 * j + 1] = cn[j];
                            }
                        }
                        Cell::Gru => out[b * lh + l * h..][..h].copy_from_slice(hn),
                    }
                }
            }
        }
    }
}

/// The initial state `which` (1 = h0, 2 = c0), all samples [B, L, H], when given.
pub fn initial<'a>(d: &Dims, cx: &Forward<'a>, which: usize) -> Option<&'a [f32]> {
    d.with_state.then(|| cx.input(which))
}

/// Layer l's row of sample b in a [B, L, H] state.
pub fn state_row<'a>(d: &Dims, state: &'a [f32], b: usize, l: usize) -> &'a [f32] {
    &state[(b * d.layers + l) * d.hidden..][..d.hidden]
}

/// dst[b] = layer l's row of sample b of `state`, or zeros, for b in 0..rows; dst rows
/// of `h` at stride `stride`.
pub fn fill_initial(d: &Dims, state: Option<&[f32]>, l: usize, rows: usize, dst: &mut [f32], stride: usize) {
    for b in 0..rows {
        let row = &mut dst[b * stride..][..d.hidden];
        match state {
            Some(s) => row.copy_from_slice(state_row(d, s, b, l)),
            None => row.fill(0.0),
        }
    }
}

/// Writes layer l's part of an initial state's gradient (`which` = 1: dh0, 2: dc0) from
/// `g` [B, H], if that input needs one.
pub fn write_initial_grad(d: &Dims, cx: &Backward, which: usize, l: usize, g: &[f32]) {
    let Some(dst) = cx.dinput(which) else { return };
    let (h, lh) = (d.hidden, d.layers * d.hidden);
    for b in 0..cx.rows {
        super::write_grad(&mut dst[b * lh + l * h..][..h], &g[b * h..][..h], cx.accumulate(which));
    }
}

/// Whether an initial-state input needs its gradient (then dh0 is computed at t = 0).
pub fn needs_initial_grad(d: &Dims, cx: &Backward) -> bool {
    d.with_state && (1..cx.num_inputs()).any(|i| cx.dinput(i).is_some())
}

/// out[j] = Σ rows of m [rows, cols].
pub fn column_sums(m: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(cols) {
        out.iter_mut().zip(row).for_each(|(o, &v)| *o += v);
    }
}

/// A shared buffer for `par_rows` parts writing disjoint rows.
pub(crate) fn shared(v: &mut [f32]) -> SharedMut<f32> {
    SharedMut::new(v)
}

// ---- The gate nonlinearities -------------------------------------------------------

/// x ← 1 / (1 + e^−x), in place.
pub fn sigmoid(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        return unsafe { x86::sigmoid(x) };
    }
    x.iter_mut().for_each(|v| *v = sigmoid1(*v));
}

/// x ← tanh x, in place.
pub fn tanh(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2() {
        return unsafe { x86::tanh(x) };
    }
    x.iter_mut().for_each(|v| *v = v.tanh());
}

#[inline]
pub fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// Eight lanes at a time: e^x as Cephes' expf (range reduction by ln 2 in two parts, a
/// degree-5 polynomial; ~1 ulp); tanh as x + x³·P(x²) below |x| = 0.625 (a weighted
/// least-squares fit, ≤ 1.2e-7 relative) and 1 − 2/(e^{2|x|} + 1) above (no
/// cancellation there: tanh ≥ 0.55). Both within ~2e-7 relative of the exact values;
/// the division is exact (no reciprocal estimate). The tail runs through the same lanes.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn exp(x: __m256) -> __m256 {
        let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3)), _mm256_set1_ps(88.3));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
        let mut p = _mm256_set1_ps(1.987_569_1e-4);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_5e-1));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
        let y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127))));
        _mm256_mul_ps(y, pow)
    }

    #[inline(always)]
    unsafe fn sigmoid8(x: __m256) -> __m256 {
        let one = _mm256_set1_ps(1.0);
        _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), x))))
    }

    #[inline(always)]
    unsafe fn tanh8(x: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let ax = _mm256_andnot_ps(sign, x);
        // Large: 1 − 2/(e^{2|x|} + 1), |x| capped at 9 (tanh 9 is 1 in f32).
        let e = exp(_mm256_mul_ps(_mm256_min_ps(ax, _mm256_set1_ps(9.0)), _mm256_set1_ps(2.0)));
        let one = _mm256_set1_ps(1.0);
        let large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0), _mm256_add_ps(e, one)));
        let large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
        // Small: x + x³·P(x²).
        let u = _mm256_mul_ps(x, x);
        let mut p = _mm256_set1_ps(0.002_148_957_5);
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-0.008_184_633));
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(0.021_703_99));
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-0.053_947_453));
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(0.133_332_12));
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-0.333_333_3));
        let small = _mm256_fmadd_ps(_mm256_mul_ps(x, u), p, x);
        _mm256_blendv_ps(large, small, _mm256_cmp_ps::<_CMP_LT_OQ>(ax, _mm256_set1_ps(0.625)))
    }

    #[inline(always)]
    unsafe fn map(x: &mut [f32], f: impl Fn(__m256) -> __m256) {
        let n = x.len();
        let p = x.as_mut_ptr();
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(p.add(i), f(_mm256_loadu_ps(p.add(i))));
            i += 8;
        }
        if i < n {
            let mut buf = [0f32; 8];
            buf[..n - i].copy_from_slice(&x[i..]);
            let v = f(_mm256_loadu_ps(buf.as_ptr()));
            _mm256_storeu_ps(buf.as_mut_ptr(), v);
            x[i..].copy_from_slice(&buf[..n - i]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sigmoid(x: &mut [f32]) {
        map(x, |v| sigmoid8(v))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tanh(x: &mut [f32]) {
        map(x, |v| tanh8(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_shape_errors_name_the_node_and_field() {
        let err = |kind: &str, config: serde_json::Value, inputs: &[Vec<usize>]| crate::ops::build("enc", kind, &config, inputs).unwrap_err().to_string();
        let x = vec![vec![5, 3]];
        for kind in ["LSTM", "GRU"] {
            assert!(err(kind, serde_json::json!({}), &x).contains("nodes[enc].config.hiddenSize"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 0 }), &x).contains("nodes[enc].config.hiddenSize"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 4, "numLayers": 1.5 }), &x).contains("nodes[enc].config.numLayers"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 4, "bias": 1 }), &x).contains("nodes[enc].config.bias"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 4, "returns": "all" }), &x).contains("nodes[enc].config.returns"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 4, "dropout": 0.1 }), &x).contains("nodes[enc].config.dropout"));
            assert!(err(kind, serde_json::json!({ "hiddenSize": 4 }), &[vec![15]]).contains("[steps, features]"));
            let e = err(kind, serde_json::json!({ "hiddenSize": 4, "numLayers": 2 }), &[vec![5, 3], vec![1, 4], vec![1, 4]][..if kind == "LSTM" { 3 } else { 2 }]);
            assert!(e.contains("[numLayers, hiddenSize] = [2, 4]") && e.contains("[1, 4]"), "{e}");
        }
        assert!(err("GRU", serde_json::json!({ "hiddenSize": 4 }), &[vec![5, 3], vec![1, 4], vec![1, 4]]).contains("[x] or [x, h0]"));
    }

    #[test]
    fn fast_gates_are_exact_to_a_few_ulp() {
        let xs: Vec<f32> = (-40000..=40000).map(|i| i as f32 * 5e-4).chain([1e-6, -3e-5, 50.0, -90.0, 100.0, -100.0]).collect();
        let mut s = xs.clone();
        sigmoid(&mut s);
        let mut t = xs.clone();
        tanh(&mut t);
        let (mut es, mut et) = (0f64, 0f64);
        for ((&x, &s), &t) in xs.iter().zip(&s).zip(&t) {
            let x = x as f64;
            let want_s = 1.0 / (1.0 + (-x).exp());
            let want_t = x.tanh();
            es = es.max((s as f64 - want_s).abs() / want_s.abs().max(1e-30));
            et = et.max((t as f64 - want_t).abs() / want_t.abs().max(1e-30));
        }
        println!("largest relative error: sigmoid {es:e}, tanh {et:e}");
        assert!(es < 1e-6 && et < 1e-6, "sigmoid {es:e}, tanh {et:e}");
    }
}

/// The gradient checks both cells run (through time: several steps, 1 and 2 layers,
/// every `returns`, with and without bias).
#[cfg(test)]
pub mod tests_support {
    use crate::ops::testing::{assert_gradients, fanout_spec, sequential_spec, GradCheck};
    use serde_json::json;

    /// `op` on x [4, 3] with its initial state(s) [2, 4] as further graph inputs.
    fn initial_state_spec(op: &str, config: serde_json::Value) -> String {
        let states: &[&str] = if op == "LSTM" { &["h0", "c0"] } else { &["h0"] };
        let mut inputs = vec![json!({ "name": "x", "shape": [4, 3] })];
        inputs.extend(states.iter().map(|s| json!({ "name": s, "shape": [2, 4] })));
        let mut names = vec!["x"];
        names.extend(states);
        json!({
            "format": "ferronet-graph", "version": 1, "inputs": inputs,
            "nodes": [{ "name": "rnn", "op": op, "inputs": names, "config": config }],
            "outputs": ["rnn"],
        })
        .to_string()
    }

    pub fn check_all(op: &str) {
        // Elements whose gradient is below 5 % of the tensor's largest are compared
        // against that floor, with a step of 1e-2: the f32 objective's noise (~1e-7
        // relative) over the step is ~1e-3 of the largest gradient of a lower layer's
        // weights, while the central difference's own error (h²·f''') stays ~1e-4.
        let o = GradCheck { batch: 3, samples: 30, smooth: true, floor: 5e-2, h: 1e-2, ..Default::default() };
        for (layers, returns, bias) in [
            (1, "sequence", true),
            (2, "sequence", true),
            (2, "last", true),
            (2, "state", true),
            (1, "last", false),
        ] {
            let config = json!({ "hiddenSize": 5, "numLayers": layers, "returns": returns, "bias": bias });
            assert_gradients(&sequential_spec(&[4, 3], &[(op, config)]), &o);
        }
        // With initial states as graph inputs: dh0 (and dc0) checked too.
        for returns in ["sequence", "last", "state"] {
            let config = json!({ "hiddenSize": 4, "numLayers": 2, "returns": returns });
            assert_gradients(&initial_state_spec(op, config), &o);
        }
        // A Linear before it (so dx is needed and checked through the op's weights),
        // and two consumers of one value (the second adds to the first's dx).
        let spec = fanout_spec(&[4, 3], ("Linear", json!({ "outFeatures": 3 })), (op, json!({ "hiddenSize": 4, "returns": "last" })));
        assert_gradients(&spec, &o);
    }
}

/// Initial states at the op level: the op run directly on its inputs [x, h0(, c0)]
/// (graphs with several inputs are the model's business), against the PyTorch fixture
/// cases with initial states and against central differences for dh0 / dc0.
#[cfg(test)]
mod initial_state_tests {
    use crate::graph::layout;
    use crate::ops::testing::{rel_err, tensor};
    use crate::ops::{self, numel, Backward, Buf, Forward, Mode, Port};

    struct Run {
        out: Vec<f32>,
        dinputs: Vec<Vec<f32>>,
        grads: Vec<Vec<f32>>,
    }

    fn buf(v: &mut [f32]) -> Buf {
        Buf { ptr: v.as_mut_ptr(), len: v.len() }
    }

    /// Builds `kind` on `inputs` (per-sample shape, `rows` samples in the stored layout),
    /// sets the parameters (PyTorch's layout, declaration order), runs forward and, with
    /// `dout` (stored layout), backward with every input gradient asked for.
    fn run(kind: &str, config: &serde_json::Value, rows: usize, inputs: &[(Vec<usize>, Vec<f32>)], torch_params: &[Vec<f32>], dout: Option<&[f32]>) -> Run {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|(s, _)| s.clone()).collect();
        let mut op = ops::build("rnn", kind, config, &shapes).unwrap();
        let decls = op.params();
        let mut params: Vec<Vec<f32>> = decls
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut v = vec![0.0; d.len()];
                op.param_from_torch(i, &torch_params[i], &mut v);
                v
            })
            .collect();
        let mut grads: Vec<Vec<f32>> = decls.iter().map(|d| vec![0.0; d.len()]).collect();
        op.prepare(rows);
        let mut data: Vec<Vec<f32>> = inputs.iter().map(|(_, d)| d.clone()).collect();
        let ports: Vec<Port> = data.iter_mut().zip(&shapes).map(|(d, s)| Port { shape: s.clone(), size: numel(s), buf: buf(d) }).collect();
        let oshape = op.output_shape();
        let osize = numel(&oshape);
        let mut out = vec![0.0; rows * osize];
        let oport = Port { shape: oshape, size: osize, buf: buf(&mut out) };
        let pbufs: Vec<Buf> = params.iter_mut().map(|p| buf(p)).collect();
        op.forward(&Forward { rows, mode: Mode::Train, seed: 0, inputs: &ports, output: &oport, params: &pbufs });
        let mut dinputs: Vec<Vec<f32>> = data.iter().map(|d| vec![0.0; d.len()]).collect();
        if let Some(dout) = dout {
            let mut dout = dout.to_vec();
            let dbufs: Vec<Buf> = dinputs.iter_mut().map(|d| buf(d)).collect();
            let gbufs: Vec<Buf> = grads.iter_mut().map(|g| buf(g)).collect();
            let n = inputs.len();
            op.backward(&Backward {
                rows,
                mode: Mode::Train,
                seed: 0,
                inputs: &ports,
                output: &oport,
                dout: buf(&mut dout),
                dinputs: &dbufs,
                needs_dinput: &vec![true; n],
                accumulate: &vec![false; n],
                mask_dinput: &vec![false; n],
                dout_unmasked: false,
                params: &pbufs,
                grads: &gbufs,
            });
        }
        Run { out, dinputs, grads }
    }

    fn fixture_cases() -> Vec<serde_json::Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test/fixtures/parity/rnn.json");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["cases"].as_array().unwrap().clone()
    }

    #[test]
    fn initial_states_match_pytorch() {
        let mut ran = 0;
        for case in fixture_cases().iter().filter(|c| c.get("extraInputs").is_some()) {
            let name = case["name"].as_str().unwrap();
            let node = &case["spec"]["nodes"][0];
            let kind = node["op"].as_str().unwrap();
            let (xs, x) = tensor(&case["input"]);
            let rows = xs[0];
            let mut inputs = vec![(xs[1..].to_vec(), x)];
            for s in node["inputs"].as_array().unwrap().iter().skip(1) {
                let (shape, data) = tensor(&case["extraInputs"][s.as_str().unwrap()]);
                inputs.push((shape[1..].to_vec(), data));
            }
            let shapes: Vec<Vec<usize>> = inputs.iter().map(|(s, _)| s.clone()).collect();
            let op = ops::build("0", kind, &node["config"], &shapes).unwrap();
            let params: Vec<Vec<f32>> = op.params().iter().map(|d| tensor(&case["params"][format!("0.{}", d.name)]).1).collect();
            let oshape = op.output_shape();
            let (_, g) = tensor(&case["gradOutput"]);
            let mut g_stored = vec![0.0; g.len()];
            layout::to_stored(&oshape, &g, &mut g_stored);
            let r = run(kind, &node["config"], rows, &inputs, &params, Some(&g_stored));
            let mut out = vec![0.0; r.out.len()];
            layout::to_logical(&oshape, &r.out, &mut out);
            let tol = 1e-5f64.max(3.0 * case["float32Error"].as_f64().unwrap());
            let check = |what: &str, got: &[f32], want: &serde_json::Value| {
                let e = rel_err(got, &tensor(want).1, 1e-2);
                assert!(e <= tol, "{name}: {what} differs from PyTorch by {e:.3e} (allowed {tol:.1e})");
            };
            check("output", &out, &case["output"]);
            check("input gradient", &r.dinputs[0], &case["inputGrad"]);
            for (k, s) in node["inputs"].as_array().unwrap().iter().enumerate().skip(1) {
                let s = s.as_str().unwrap();
                check(&format!("gradient of {s}"), &r.dinputs[k], &case["extraInputGrads"][s]);
            }
            for (d, got) in op.params().iter().zip(&r.grads) {
                let mut torch = vec![0.0; got.len()];
                op.param_to_torch(op.params().iter().position(|p| p.name == d.name).unwrap(), got, &mut torch);
                check(&format!("gradient of {}", d.name), &torch, &case["paramGrads"][format!("0.{}", d.name)]);
            }
            ran += 1;
        }
        assert!(ran >= 8, "only {ran} cases with initial states");
    }

    /// d(Σ out·g)/d h0 (and c0) against central differences, for every `returns`.
    #[test]
    fn initial_state_gradients_match_finite_differences() {
        use rand::{Rng as _, SeedableRng};
        let (rows, t, f, h, l) = (2, 4, 3, 4, 2);
        for kind in ["LSTM", "GRU"] {
            for returns in ["sequence", "last", "state"] {
                let config = serde_json::json!({ "hiddenSize": h, "numLayers": l, "returns": returns });
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
                let mut u = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
                let states = if kind == "LSTM" { 2 } else { 1 };
                let mut inputs = vec![(vec![t, f], u(rows * t * f))];
                for _ in 0..states {
                    inputs.push((vec![l, h], u(rows * l * h)));
                }
                let shapes: Vec<Vec<usize>> = inputs.iter().map(|(s, _)| s.clone()).collect();
                let op = ops::build("rnn", kind, &config, &shapes).unwrap();
                let params: Vec<Vec<f32>> = op.params().iter().map(|d| u(d.len())).collect();
                let g = u(rows * numel(&op.output_shape()));
                let r = run(kind, &config, rows, &inputs, &params, Some(&g));
                let objective = |inputs: &[(Vec<usize>, Vec<f32>)]| -> f64 {
                    run(kind, &config, rows, inputs, &params, None).out.iter().zip(&g).map(|(&a, &b)| a as f64 * b as f64).sum()
                };
                let step = 5e-3f32;
                for k in 0..inputs.len() {
                    let max = r.dinputs[k].iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
                    assert!(max > 0.0, "{kind} {returns}: input {k} gets no gradient");
                    for i in 0..inputs[k].1.len() {
                        let orig = inputs[k].1[i];
                        inputs[k].1[i] = orig + step;
                        let plus = objective(&inputs);
                        inputs[k].1[i] = orig - step;
                        let minus = objective(&inputs);
                        inputs[k].1[i] = orig;
                        let num = (plus - minus) / (2.0 * step as f64);
                        let a = r.dinputs[k][i] as f64;
                        let scale = a.abs().max(num.abs()).max(5e-2 * max);
                        assert!((a - num).abs() / scale < 2e-2, "{kind} {returns}: input {k}[{i}]: analytic {a:e} vs finite difference {num:e}");
                    }
                }
            }
        }
    }
}
