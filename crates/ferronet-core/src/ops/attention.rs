//! `MultiHeadAttention`: PyTorch's `nn.MultiheadAttention(C, numHeads, dropout, bias,
//! batch_first=True)` used as self-attention, `mha(x, x, x, need_weights=False,
//! attn_mask=causal)`, on per-sample sequences x [T, C]. The model is llm.c's
//! attention_forward / attention_backward, with our GEMM for every product:
//!
//!   qkv[B·T, 3C] = x · W_inᵀ + b_in                      one product for the batch
//!   per (sample, head), with d = C / H and q, k, v [T, d] column blocks of qkv:
//!     s[T, T] = q · kᵀ / √d                              (causal: only j ≤ i)
//!     p = softmax(s) along j                             (max subtracted)
//!     pd = p ⊙ dropout mask / (1 − dropout)              (training only)
//!     y_h[T, d] = pd · v                                 written into y[B·T, C]
//!   out[B·T, C] = y · W_outᵀ + b_out                     one product for the batch
//!
//! Weights are stored transposed (w_in_t [C, 3C], w_out_t [C, C]) so both batch
//! products read a row-major right-hand side, as Linear does. Forward keeps qkv, p, pd
//! and y for the backward; the dropout mask is recomputed from the step's seed (the
//! counter-based hash of ops/dropout.rs over the element's index in [B, H, T, T]), so
//! it is the same for any thread count. The per-(sample, head) work runs as parts of
//! `team::run_parts`, each part's small products serial on its own thread, writing
//! disjoint blocks of the shared buffers; nothing is allocated per batch.
//!
//! Causal: row block [r0, r1) of s only needs columns 0..r1, so the products run per
//! block of `BLOCK` rows and skip every block above the diagonal (for T = 64, 62% of
//! the T² products are computed); within the diagonal blocks the few entries j > i that
//! the product computes are never exponentiated and are set to probability 0.

use super::config::{default_true, parse};
use super::dropout::{draw, seed32};
use super::linear::{column_sums, transpose};
use super::{expect_inputs, Backward, Forward, Init, Mode, Op, ParamDecl, SharedMut};
use crate::error::{Error, Result};
use crate::gemm::{gemm, gemm_with, Epilogue, Kernel, MatMut, MatRef};
use crate::team::run_parts;
use ndarray::{ArrayView2, ArrayViewMut1};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AttentionConfig {
    pub num_heads: usize,
    #[serde(default)]
    pub causal: bool,
    #[serde(default)]
    pub dropout: f64,
    #[serde(default = "default_true")]
    pub bias: bool,
}

/// Rows of s per product in causal mode: smaller skips more of the upper triangle,
/// larger makes fewer, fuller products.
const BLOCK: usize = 16;

#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    t: usize,
    c: usize,
    heads: usize,
    causal: bool,
    dropout: f64,
    bias: bool,
    /// Keep a probability when its 32-bit draw is below this; (1 − dropout)·2³².
    threshold: u32,
    /// 1 / (1 − dropout).
    keep_scale: f32,
    /// Samples the scratch is sized for.
    capacity: usize,
    /// Forward, kept for backward: qkv [cap·T, 3C], p [cap·H, T, T], pd [cap·H, T, T]
    /// (dropout > 0 only), y [cap·T, C].
    qkv: Vec<f32>,
    p: Vec<f32>,
    pd: Vec<f32>,
    y: Vec<f32>,
    /// The dropout stream of the last forward (None: no dropout applied).
    drop_seed: Option<u32>,
    /// Backward, sized on the first backward: dy [cap·T, C], dqkv [cap·T, 3C], dp [cap·H, T, T].
    dy: Vec<f32>,
    dqkv: Vec<f32>,
    dp: Vec<f32>,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    const KIND: &str = "MultiHeadAttention";
    expect_inputs(name, KIND, inputs, 1)?;
    let cfg: AttentionConfig = parse(name, KIND, config)?;
    let shape = &inputs[0];
    if shape.len() != 2 || shape[0] == 0 || shape[1] == 0 {
        return Err(Error::graph(
            name,
            format!("{name} ({KIND}) takes [steps, embedding] per sample, got input shape {shape:?}"),
        ));
    }
    let (t, c) = (shape[0], shape[1]);
    if cfg.num_heads == 0 {
        return Err(Error::config(&format!("nodes[{name}].config.numHeads"), format!("{name} ({KIND}): numHeads must be > 0")));
    }
    if c % cfg.num_heads != 0 {
        return Err(Error::config(
            &format!("nodes[{name}].config.numHeads"),
            format!("{name} ({KIND}): the embedding size {c} (input shape {shape:?}) must be divisible by numHeads {}", cfg.num_heads),
        ));
    }
    if !(0.0..1.0).contains(&cfg.dropout) {
        return Err(Error::config(
            &format!("nodes[{name}].config.dropout"),
            format!("{name} ({KIND}): dropout must be in [0, 1), got {}", cfg.dropout),
        ));
    }
    Ok(Box::new(MultiHeadAttention {
        t,
        c,
        heads: cfg.num_heads,
        causal: cfg.causal,
        dropout: cfg.dropout,
        bias: cfg.bias,
        threshold: ((1.0 - cfg.dropout) * 4294967296.0).min(u32::MAX as f64) as u32,
        keep_scale: (1.0 / (1.0 - cfg.dropout)) as f32,
        capacity: 0,
        qkv: Vec::new(),
        p: Vec::new(),
        pd: Vec::new(),
        y: Vec::new(),
        drop_seed: None,
        dy: Vec::new(),
        dqkv: Vec::new(),
        dp: Vec::new(),
    }))
}

/// The row blocks (r0, r1, columns) of one [T, T] score matrix: one block of all T
/// columns, or causal blocks of `BLOCK` rows that need columns 0..r1 only.
fn row_blocks(t: usize, causal: bool) -> impl DoubleEndedIterator<Item = (usize, usize, usize)> {
    let step = if causal { BLOCK } else { t.max(1) };
    (0..t.div_ceil(step)).map(move |b| {
        let (r0, r1) = (b * step, ((b + 1) * step).min(t));
        (r0, r1, if causal { r1 } else { t })
    })
}

/// One head's strided views: q, k, v [T, d] inside a sample's qkv rows [T, 3C].
struct Head<'a> {
    q: MatRef<'a>,
    k: MatRef<'a>,
    v: MatRef<'a>,
}

impl MultiHeadAttention {
    fn d(&self) -> usize {
        self.c / self.heads
    }
    /// Parameter indices: in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias.
    fn w_out(&self) -> usize {
        if self.bias {
            2
        } else {
            1
        }
    }
}

impl<'a> Head<'a> {
    /// Head h of sample b in qkv [B·T, 3C].
    fn of(qkv: &'a [f32], (t, c, d): (usize, usize, usize), b: usize, h: usize) -> Head<'a> {
        let rows = &qkv[b * t * 3 * c..(b + 1) * t * 3 * c];
        let at = |off: usize| MatRef::from_slice(&rows[off + h * d..], t, d, 3 * c);
        Head { q: at(0), k: at(c), v: at(2 * c) }
    }
}

/// The dropout factor of element `index` of [B, H, T, T]: 0 or 1/(1 − dropout).
#[inline(always)]
fn keep_factor(seed: u32, index: usize, threshold: u32, scale: f32) -> f32 {
    if draw(seed, index as u32) < threshold {
        scale
    } else {
        0.0
    }
}

impl Op for MultiHeadAttention {
    fn kind(&self) -> &'static str {
        "MultiHeadAttention"
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![self.t, self.c]
    }
    fn params(&self) -> Vec<ParamDecl> {
        // nn.MultiheadAttention._reset_parameters: xavier_uniform_ on in_proj_weight
        // [3C, C] (fan_in C, fan_out 3C), zero biases; out_proj.weight keeps
        // NonDynamicallyQuantizableLinear's default init, U(±1/√C).
        let c = self.c;
        let xavier = (6.0 / (c + 3 * c) as f32).sqrt();
        let linear = 1.0 / (c as f32).sqrt();
        let mut p = vec![ParamDecl::trainable("in_proj_weight", vec![3 * c, c], Init::Uniform { bound: xavier })];
        if self.bias {
            p.push(ParamDecl::trainable("in_proj_bias", vec![3 * c], Init::Constant(0.0)));
        }
        p.push(ParamDecl::trainable("out_proj.weight", vec![c, c], Init::Uniform { bound: linear }));
        if self.bias {
            p.push(ParamDecl::trainable("out_proj.bias", vec![c], Init::Constant(0.0)));
        }
        p
    }
    fn param_from_torch(&self, index: usize, torch: &[f32], internal: &mut [f32]) {
        match index {
            0 => transpose(torch, 3 * self.c, self.c, internal),
            i if i == self.w_out() => transpose(torch, self.c, self.c, internal),
            _ => internal.copy_from_slice(torch),
        }
    }
    fn param_to_torch(&self, index: usize, internal: &[f32], torch: &mut [f32]) {
        match index {
            0 => transpose(internal, self.c, 3 * self.c, torch),
            i if i == self.w_out() => transpose(internal, self.c, self.c, torch),
            _ => torch.copy_from_slice(internal),
        }
    }
    fn prepare(&mut self, capacity: usize) {
        let (t, c, h) = (self.t, self.c, self.heads);
        self.capacity = capacity;
        self.qkv = vec![0.0; capacity * t * 3 * c];
        self.p = vec![0.0; capacity * h * t * t];
        self.pd = if self.dropout > 0.0 { vec![0.0; capacity * h * t * t] } else { Vec::new() };
        self.y = vec![0.0; capacity * t * c];
        // The backward's scratch is sized by the first backward (a model that only
        // predicts never needs it).
        self.dy = Vec::new();
        self.dqkv = Vec::new();
        self.dp = Vec::new();
    }

    /// Per sample: in_proj T·C·3C + scores T·T·C (H heads of T·T·d) + p·v T·T·C +
    /// out_proj T·C·C = 4·T·C² + 2·T²·C multiply-adds (dense count; causal computes
    /// about 5/8 of the T² part for T = 64). For the GPT target (T 64, C 128) that is
    /// 4.2 M + 1.0 M = 5.2 M per sample and block: the projections dominate. A training
    /// step of its 4 blocks at batch 12 does 3× that (forward, two backward products),
    /// ≈ 0.75 G multiply-adds = 1.5 GFLOP.
    fn forward_macs(&self) -> usize {
        4 * self.t * self.c * self.c + 2 * self.t * self.t * self.c
    }

    fn forward(&mut self, cx: &Forward) {
        let (rows, t, c, nh, d) = (cx.rows, self.t, self.c, self.heads, self.d());
        let m = rows * t;
        let x = cx.input(0);
        let w_in_t = cx.param(0);
        // qkv[m, 3C] = x[m, C] · w_in_t[C, 3C] + b_in
        let epilogue = if self.bias { Epilogue::Bias(cx.param(1)) } else { Epilogue::None };
        gemm(
            1.0,
            MatRef::from_slice(x, m, c, c),
            MatRef::from_slice(w_in_t, c, 3 * c, 3 * c),
            0.0,
            MatMut::from_slice(&mut self.qkv[..m * 3 * c], m, 3 * c, 3 * c),
            epilogue,
        );
        let dropping = cx.mode == Mode::Train && self.dropout > 0.0;
        self.drop_seed = dropping.then(|| seed32(cx.seed));
        let (seed, threshold, keep_scale) = (self.drop_seed.unwrap_or(0), self.threshold, self.keep_scale);
        let scale = 1.0 / (d as f32).sqrt();
        let (causal, tt) = (self.causal, t * t);
        let qkv = &self.qkv[..m * 3 * c];
        let p_all = SharedMut::new(&mut self.p[..rows * nh * tt]);
        let pd_all = if dropping { Some(SharedMut::new(&mut self.pd[..rows * nh * tt])) } else { None };
        let y_all = MatMut::from_slice(&mut self.y[..m * c], m, c, c);
        let kernel = crate::gemm::selected();
        run_parts(rows * nh, &|part| {
            let (b, h) = (part / nh, part % nh);
            let hd = Head::of(qkv, (t, c, d), b, h);
            // Safety: part `part` alone touches its [T, T] slices and its y block.
            let p = unsafe { p_all.slice(part * tt, tt) };
            for (r0, r1, cols) in row_blocks(t, causal) {
                // s[r0..r1, 0..cols] = q[r0..r1] · k[0..cols]ᵀ / √d
                let s = MatMut::from_slice(&mut p[r0 * t..], r1 - r0, cols, t);
                gemm_with(kernel, false, scale, hd.q.block(r0, r1, 0, d), hd.k.block(0, cols, 0, d).t(), 0.0, s, Epilogue::None);
                for i in r0..r1 {
                    let n = if causal { i + 1 } else { t };
                    softmax_row(&mut p[i * t..(i + 1) * t], n);
                }
            }
            let pv: &[f32] = match pd_all {
                Some(pd_all) => {
                    let pd = unsafe { pd_all.slice(part * tt, tt) };
                    for i in 0..t {
                        let n = if causal { i + 1 } else { t };
                        let base = part * tt + i * t;
                        for j in 0..n {
                            pd[i * t + j] = p[i * t + j] * keep_factor(seed, base + j, threshold, keep_scale);
                        }
                        pd[i * t + n..(i + 1) * t].fill(0.0);
                    }
                    pd
                }
                None => p,
            };
            for (r0, r1, cols) in row_blocks(t, causal) {
                // y_h[r0..r1] = pd[r0..r1, 0..cols] · v[0..cols]
                let a = MatRef::from_slice(&pv[r0 * t..], r1 - r0, cols, t);
                let yb = y_all.block(b * t + r0, b * t + r1, h * d, (h + 1) * d);
                gemm_with(kernel, false, 1.0, a, hd.v.block(0, cols, 0, d), 0.0, yb, Epilogue::None);
            }
        });
        // out[m, C] = y[m, C] · w_out_t[C, C] + b_out
        let wo = self.w_out();
        let epilogue = if self.bias { Epilogue::Bias(cx.param(wo + 1)) } else { Epilogue::None };
        gemm(
            1.0,
            MatRef::from_slice(&self.y[..m * c], m, c, c),
            MatRef::from_slice(cx.param(wo), c, c, c),
            0.0,
            MatMut::from_slice(cx.output(), m, c, c),
            epilogue,
        );
    }

    fn backward(&mut self, cx: &Backward) {
        let (rows, t, c, nh, d) = (cx.rows, self.t, self.c, self.heads, self.d());
        let (m, tt) = (rows * t, t * t);
        if self.dqkv.len() < m * 3 * c {
            // Once per capacity: the first backward.
            let cap = self.capacity.max(rows);
            self.dy = vec![0.0; cap * t * c];
            self.dqkv = vec![0.0; cap * t * 3 * c];
            self.dp = vec![0.0; cap * nh * tt];
        }
        let dout = &*cx.dout();
        let wo = self.w_out();
        let y = &self.y[..m * c];
        // Through out_proj: dw_out_t[C, C] = yᵀ · dout, db_out = Σ_rows dout,
        // dy[m, C] = dout · w_out_tᵀ.
        gemm(1.0, MatRef::from_slice(y, m, c, c).t(), MatRef::from_slice(dout, m, c, c), 0.0, MatMut::from_slice(cx.grad(wo), c, c, c), Epilogue::None);
        if self.bias {
            column_sums(ArrayView2::from_shape((m, c), dout).unwrap(), ArrayViewMut1::from(cx.grad(wo + 1)));
        }
        gemm(
            1.0,
            MatRef::from_slice(dout, m, c, c),
            MatRef::from_slice(cx.param(wo), c, c, c).t(),
            0.0,
            MatMut::from_slice(&mut self.dy[..m * c], m, c, c),
            Epilogue::None,
        );
        // Per (sample, head), into the q, k, v column blocks of dqkv.
        let (causal, seed, threshold, keep_scale) = (self.causal, self.drop_seed, self.threshold, self.keep_scale);
        let scale = 1.0 / (d as f32).sqrt();
        let qkv = &self.qkv[..m * 3 * c];
        let p_all = &self.p[..rows * nh * tt];
        let pd_all: &[f32] = if seed.is_some() { &self.pd[..rows * nh * tt] } else { p_all };
        let dy = MatRef::from_slice(&self.dy[..m * c], m, c, c);
        let dp_all = SharedMut::new(&mut self.dp[..rows * nh * tt]);
        let dqkv = MatMut::from_slice(&mut self.dqkv[..m * 3 * c], m, 3 * c, 3 * c);
        let kernel: Kernel = crate::gemm::selected();
        run_parts(rows * nh, &|part| {
            let (b, h) = (part / nh, part % nh);
            let hd = Head::of(qkv, (t, c, d), b, h);
            let p = &p_all[part * tt..(part + 1) * tt];
            let pd = &pd_all[part * tt..(part + 1) * tt];
            // Safety: part `part` alone touches its [T, T] slice and its dqkv blocks.
            let dp = unsafe { dp_all.slice(part * tt, tt) };
            let dy_h = dy.block(b * t, (b + 1) * t, h * d, (h + 1) * d);
            let dq = dqkv.block(b * t, (b + 1) * t, h * d, (h + 1) * d);
            let dk = dqkv.block(b * t, (b + 1) * t, c + h * d, c + (h + 1) * d);
            let dv = dqkv.block(b * t, (b + 1) * t, 2 * c + h * d, 2 * c + (h + 1) * d);
            // The last block spans every column, so dv and dk are overwritten by it
            // (beta 0) and added to by the others.
            for (k, (r0, r1, cols)) in row_blocks(t, causal).rev().enumerate() {
                let beta = if k == 0 { 0.0 } else { 1.0 };
                // dv[0..cols] (+)= pd[r0..r1, 0..cols]ᵀ · dy_h[r0..r1]
                let a = MatRef::from_slice(&pd[r0 * t..], r1 - r0, cols, t).t();
                gemm_with(kernel, false, 1.0, a, dy_h.block(r0, r1, 0, d), beta, dv.block(0, cols, 0, d), Epilogue::None);
                // dpd[r0..r1, 0..cols] = dy_h[r0..r1] · v[0..cols]ᵀ
                let dpb = MatMut::from_slice(&mut dp[r0 * t..], r1 - r0, cols, t);
                gemm_with(kernel, false, 1.0, dy_h.block(r0, r1, 0, d), hd.v.block(0, cols, 0, d).t(), 0.0, dpb, Epilogue::None);
                // Through dropout and softmax, in place: ds = p ⊙ (dp − Σ_j dp·p), dp = dpd ⊙ mask.
                for i in r0..r1 {
                    let n = if causal { i + 1 } else { t };
                    let row = &mut dp[i * t..i * t + cols];
                    if let Some(seed) = seed {
                        let base = part * tt + i * t;
                        for (j, g) in row[..n].iter_mut().enumerate() {
                            *g *= keep_factor(seed, base + j, threshold, keep_scale);
                        }
                    }
                    softmax_row_backward(row, &p[i * t..i * t + n], n);
                }
                let ds = MatRef::from_slice(&dp[r0 * t..], r1 - r0, cols, t);
                // dq[r0..r1] = ds[r0..r1, 0..cols] · k[0..cols] / √d
                gemm_with(kernel, false, scale, ds, hd.k.block(0, cols, 0, d), 0.0, dq.block(r0, r1, 0, d), Epilogue::None);
                // dk[0..cols] (+)= ds[r0..r1, 0..cols]ᵀ · q[r0..r1] / √d
                gemm_with(kernel, false, scale, ds.t(), hd.q.block(r0, r1, 0, d), beta, dk.block(0, cols, 0, d), Epilogue::None);
            }
        });
        // Through in_proj: dw_in_t[C, 3C] = xᵀ · dqkv, db_in = Σ_rows dqkv,
        // dx[m, C] (+)= dqkv · w_in_tᵀ.
        let x = cx.input(0);
        let dqkv = &self.dqkv[..m * 3 * c];
        gemm(1.0, MatRef::from_slice(x, m, c, c).t(), MatRef::from_slice(dqkv, m, 3 * c, 3 * c), 0.0, MatMut::from_slice(cx.grad(0), c, 3 * c, 3 * c), Epilogue::None);
        if self.bias {
            column_sums(ArrayView2::from_shape((m, 3 * c), dqkv).unwrap(), ArrayViewMut1::from(cx.grad(1)));
        }
        if let Some(dx) = cx.dinput(0) {
            let beta = if cx.accumulate(0) { 1.0 } else { 0.0 };
            gemm(
                1.0,
                MatRef::from_slice(dqkv, m, 3 * c, 3 * c),
                MatRef::from_slice(cx.param(0), c, 3 * c, 3 * c).t(),
                beta,
                MatMut::from_slice(dx, m, c, c),
                Epilogue::None,
            );
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        // Scratch is not copied: the clone's model sizes it again in `prepare`.
        Box::new(self.without_scratch())
    }
}

impl MultiHeadAttention {
    fn without_scratch(&self) -> MultiHeadAttention {
        MultiHeadAttention {
            t: self.t,
            c: self.c,
            heads: self.heads,
            causal: self.causal,
            dropout: self.dropout,
            bias: self.bias,
            threshold: self.threshold,
            keep_scale: self.keep_scale,
            capacity: 0,
            qkv: Vec::new(),
            p: Vec::new(),
            pd: Vec::new(),
            y: Vec::new(),
            drop_seed: self.drop_seed,
            dy: Vec::new(),
            dqkv: Vec::new(),
            dp: Vec::new(),
        }
    }
}

/// row[..n] = softmax(row[..n]) (max subtracted), row[n..] = 0: the masked entries
/// (causal, j > i) get probability 0 without being exponentiated.
fn softmax_row(row: &mut [f32], n: usize) {
    let max = row[..n].iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let mut sum = 0f64;
    for v in &mut row[..n] {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    row[..n].iter_mut().for_each(|v| *v *= inv);
    row[n..].fill(0.0);
}

/// In place: g[..n] = p ⊙ (g − Σ_j g·p), g[n..] = 0 (the masked entries get no gradient).
fn softmax_row_backward(g: &mut [f32], p: &[f32], n: usize) {
    let dot = g[..n].iter().zip(p).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32;
    for (v, &pj) in g[..n].iter_mut().zip(p) {
        *v = pj * (*v - dot);
    }
    g[n..].fill(0.0);
}

#[cfg(test)]
mod tests {
    use crate::graph::spec::GraphSpec;
    use crate::graph::Model;
    use crate::ops::testing::{assert_gradients, fanout_spec, GradCheck};
    use crate::ops::Mode;
    use serde_json::{json, Value};

    fn spec(shape: &[usize], config: Value) -> String {
        GraphSpec::sequential(shape, &[("MultiHeadAttention", config)]).to_json()
    }

    fn check(o: &GradCheck, config: Value) {
        // A Linear after it so the output gradient is mixed across positions and features.
        let s = GraphSpec::sequential(&[6, 8], &[("MultiHeadAttention", config), ("Linear", json!({ "outFeatures": 3 }))]).to_json();
        assert_gradients(&s, o);
    }

    #[test]
    fn gradients_full_and_causal_with_and_without_bias() {
        let o = GradCheck { batch: 2, tol: 1e-2, ..Default::default() };
        for causal in [false, true] {
            for bias in [true, false] {
                check(&o, json!({ "numHeads": 2, "causal": causal, "bias": bias }));
            }
        }
        // More steps than a causal block (T 37 > 2 blocks of 16), 4 heads.
        let s = spec(&[37, 8], json!({ "numHeads": 4, "causal": true }));
        assert_gradients(&s, &GradCheck { batch: 2, tol: 1e-2, samples: 60, ..Default::default() });
    }

    #[test]
    fn gradients_with_dropout_in_train_mode() {
        for causal in [false, true] {
            check(&GradCheck { batch: 3, tol: 1e-2, mode: Mode::Train, ..Default::default() }, json!({ "numHeads": 2, "causal": causal, "dropout": 0.3 }));
        }
        check(&GradCheck { batch: 2, tol: 1e-2, mode: Mode::Eval, ..Default::default() }, json!({ "numHeads": 2, "dropout": 0.3 }));
    }

    #[test]
    fn input_gradient_accumulates_with_another_consumer() {
        let s = fanout_spec(&[5, 4], ("Linear", json!({ "outFeatures": 4 })), ("MultiHeadAttention", json!({ "numHeads": 2, "causal": true })));
        assert_gradients(&s, &GradCheck { batch: 2, tol: 1e-2, ..Default::default() });
    }

    fn run(m: &mut Model, x: &[f32], rows: usize) -> Vec<f32> {
        m.input_buffer(rows).copy_from_slice(x);
        m.forward(rows).to_vec()
    }

    #[test]
    fn causal_output_at_t_ignores_later_inputs() {
        let (t, c) = (40, 8);
        let mut m = Model::from_json(&spec(&[t, c], json!({ "numHeads": 2, "causal": true })), 5).unwrap();
        m.set_mode(Mode::Eval);
        let x: Vec<f32> = (0..2 * t * c).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let base = run(&mut m, &x, 2);
        for changed in [3, 17, 39] {
            let mut x2 = x.clone();
            for s in 0..2 {
                for v in &mut x2[s * t * c + changed * c..s * t * c + t * c] {
                    *v += 3.0;
                }
            }
            let out = run(&mut m, &x2, 2);
            for s in 0..2 {
                let (a, b) = (&base[s * t * c..][..changed * c], &out[s * t * c..][..changed * c]);
                assert_eq!(a, b, "positions before {changed} changed");
                assert_ne!(&base[s * t * c + changed * c..][..c], &out[s * t * c + changed * c..][..c], "position {changed} itself depends on its input");
            }
        }
        // Without the mask the first position sees the last input.
        let mut m = Model::from_json(&spec(&[t, c], json!({ "numHeads": 2 })), 5).unwrap();
        let x = &x[..t * c];
        let base = run(&mut m, x, 1);
        let mut x2 = x.to_vec();
        x2[(t - 1) * c] += 1.0;
        assert_ne!(&base[..c], &run(&mut m, &x2, 1)[..c]);
    }

    /// Two training steps (forward, backward): outputs and every gradient.
    fn two_steps(m: &mut Model, x: &[f32], rows: usize) -> Vec<Vec<f32>> {
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(run(m, x, rows));
            let g: Vec<f32> = (0..seen[0].len()).map(|i| ((i * 29 % 17) as f32 - 8.0) / 8.0).collect();
            m.output_grad_buffer(rows).copy_from_slice(&g);
            m.backward(rows);
            seen.extend((0..m.store().tensors().len()).map(|t| m.store().grad(t).to_vec()));
            seen.push(m.input_grad(rows).unwrap().to_vec());
        }
        seen
    }

    #[test]
    fn results_and_dropout_masks_repeat_for_any_thread_count() {
        let (rows, t, c) = (6, 20, 8);
        let x: Vec<f32> = (0..rows * t * c).map(|i| (i % 13) as f32 / 7.0 - 0.9).collect();
        for config in [json!({ "numHeads": 2, "dropout": 0.5 }), json!({ "numHeads": 4, "causal": true, "dropout": 0.2 })] {
            let mut base = Model::from_json(&spec(&[t, c], config), 1).unwrap();
            base.set_input_grad(true);
            let with = |threads: usize, team: bool| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut m = base.clone();
                let x = &x;
                pool.install(move || if team { crate::team::with_team(|| two_steps(&mut m, x, rows)) } else { two_steps(&mut m, x, rows) })
            };
            let one = with(1, false);
            assert_eq!(one, with(2, false));
            assert_eq!(one, with(2, true), "inside a spinning team as well");
            let outputs = 1 + base.store().tensors().len() + 1;
            assert_ne!(one[0], one[outputs], "step 2 draws another mask");
        }
    }

    #[test]
    fn params_follow_pytorch_names_shapes_and_init() {
        let m = Model::from_json(&spec(&[3, 12], json!({ "numHeads": 3 })), 0).unwrap();
        let names: Vec<(String, Vec<usize>)> = m.store().tensors().iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
        assert_eq!(
            names,
            vec![
                ("0.in_proj_weight".into(), vec![36, 12]),
                ("0.in_proj_bias".into(), vec![36]),
                ("0.out_proj.weight".into(), vec![12, 12]),
                ("0.out_proj.bias".into(), vec![12]),
            ]
        );
        let xavier = (6.0f32 / 48.0).sqrt();
        let w = m.store().value(0);
        assert!(w.iter().all(|v| v.abs() <= xavier) && w.iter().any(|v| v.abs() > 0.8 * xavier));
        assert!(m.store().value(1).iter().all(|&v| v == 0.0) && m.store().value(3).iter().all(|&v| v == 0.0));
        let m = Model::from_json(&spec(&[3, 12], json!({ "numHeads": 3, "bias": false })), 0).unwrap();
        let names: Vec<&str> = m.store().tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["0.in_proj_weight", "0.out_proj.weight"]);
    }

    #[test]
    fn bad_configs_are_named() {
        let e = Model::from_json(&spec(&[4, 10], json!({ "numHeads": 3 })), 0).unwrap_err().to_string();
        assert!(e.contains("numHeads") && e.contains("10") && e.contains('3') && e.contains("nodes[0]"), "{e}");
        let e = Model::from_json(&spec(&[10], json!({ "numHeads": 2 })), 0).unwrap_err().to_string();
        assert!(e.contains("[steps, embedding]"), "{e}");
        let e = Model::from_json(&spec(&[4, 10], json!({ "numHeads": 2, "dropout": 1.0 })), 0).unwrap_err().to_string();
        assert!(e.contains("config.dropout"), "{e}");
        let e = Model::from_json(&spec(&[4, 10], json!({})), 0).unwrap_err().to_string();
        assert!(e.contains("numHeads"), "{e}");
    }
}
