//! `LSTM`: PyTorch's `nn.LSTM(batch_first=True)` on [T, F] per sample, `numLayers`
//! stacked, gates i, f, g, o:
//!
//!   a_t = x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh        [4H]
//!   i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
//!   c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
//!
//! Per layer, forward is one product for the input projection of every step
//! ([B·T, in]·[in, 4H] with both biases), then per step one product
//! [B, H]·[H, 4H] added onto step t's rows and one pass of the gate nonlinearities
//! (per sample, on the team). Backward (full BPTT) is per step one pass and one
//! product [B, 4H]·[4H, H] for dh_{t-1}, then dW_ih, dW_hh and dx as one product each
//! over all steps, from what forward kept (layer scratch, see `rnn.rs`): the gate
//! activations (overwritten in place by their pre-activation gradients), h_{t-1},
//! c_t and tanh(c_t) of every step.

use super::linear::transpose;
use super::rnn::{self, at, par_rows, product, shared, Cell, Dims, Returns, Scratch};
use super::{Backward, Forward, Op, ParamDecl};
use crate::error::Result;
use crate::gemm::{Epilogue, MatMut, MatRef};

#[derive(Debug, Clone)]
pub struct Lstm {
    d: Dims,
    s: Scratch,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    Ok(Box::new(Lstm { d: Dims::build(Cell::Lstm, name, config, inputs)?, s: Scratch::default() }))
}

/// One sample's step: `g` [4H] pre-activations → activations (i, f, g, o); then
/// c = f ⊙ c_prev + i ⊙ g, tc = tanh(c), h = o ⊙ tc.
fn cell_forward(g: &mut [f32], c_prev: &[f32], c: &mut [f32], tc: &mut [f32], h_out: &mut [f32]) {
    let h = c.len();
    rnn::sigmoid(&mut g[..2 * h]);
    rnn::tanh(&mut g[2 * h..3 * h]);
    rnn::sigmoid(&mut g[3 * h..]);
    let (i, rest) = g.split_at(h);
    let (f, rest) = rest.split_at(h);
    let (gg, o) = rest.split_at(h);
    let (c_prev, tc, h_out) = (&c_prev[..h], &mut tc[..h], &mut h_out[..h]);
    for j in 0..h {
        c[j] = f[j] * c_prev[j] + i[j] * gg[j];
    }
    tc.copy_from_slice(c);
    rnn::tanh(tc);
    for j in 0..h {
        h_out[j] = o[j] * tc[j];
    }
}

/// One sample's step backward. dh = dh_seq + dh_carry (the gradient of h_t); `dc`
/// holds the gradient of c_t from step t+1 and leaves with that of c_{t-1}; `g`'s
/// activations are replaced by the gradients of the pre-activations a_t.
fn cell_backward(g: &mut [f32], tc: &[f32], c_prev: &[f32], dh_seq: Option<&[f32]>, dh_carry: &[f32], dc: &mut [f32]) {
    let h = tc.len();
    let (i, rest) = g.split_at_mut(h);
    let (f, rest) = rest.split_at_mut(h);
    let (gg, o) = rest.split_at_mut(h);
    let (c_prev, dh_carry, dc) = (&c_prev[..h], &dh_carry[..h], &mut dc[..h]);
    for j in 0..h {
        let dh = dh_carry[j] + dh_seq.map_or(0.0, |d| d[j]);
        let (iv, fv, gv, ov, t) = (i[j], f[j], gg[j], o[j], tc[j]);
        let dcj = dc[j] + dh * ov * (1.0 - t * t);
        i[j] = dcj * gv * iv * (1.0 - iv);
        f[j] = dcj * c_prev[j] * fv * (1.0 - fv);
        gg[j] = dcj * iv * (1.0 - gv * gv);
        o[j] = dh * t * ov * (1.0 - ov);
        dc[j] = dcj * fv;
    }
}

impl Op for Lstm {
    fn kind(&self) -> &'static str {
        "LSTM"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.d.output_shape()
    }
    fn params(&self) -> Vec<ParamDecl> {
        self.d.params()
    }
    fn param_from_torch(&self, index: usize, torch: &[f32], internal: &mut [f32]) {
        self.d.param_from_torch(index, torch, internal)
    }
    fn param_to_torch(&self, index: usize, internal: &[f32], torch: &mut [f32]) {
        self.d.param_to_torch(index, internal, torch)
    }
    fn prepare(&mut self, capacity: usize) {
        self.s.prepare(&self.d, capacity)
    }
    fn forward_macs(&self) -> usize {
        self.d.forward_macs()
    }

    fn forward(&mut self, cx: &Forward) {
        let d = &self.d;
        let rows = cx.rows;
        let (t_n, h, gh) = (d.steps, d.hidden, d.gh());
        let bt = rows * t_n;
        let Scratch { layers, bias, c0, .. } = &mut self.s;
        for l in 0..d.layers {
            let (lower, rest) = layers.split_at_mut(l);
            let ls = &mut rest[0];
            let inw = d.input_of(l);
            let x: &[f32] = if l == 0 { cx.input(0) } else { &lower[l - 1].hseq[..bt * h] };
            let base = d.base(l);
            let (w_ih_t, w_hh_t) = (cx.param(base), cx.param(base + 1));
            transpose(w_hh_t, h, gh, &mut ls.w_hh);
            // gates[B·T, 4H] = x[B·T, in]·W_ihᵀ + (b_ih + b_hh)
            let epilogue = if d.bias {
                bias.iter_mut().zip(cx.param(base + 2).iter().zip(cx.param(base + 3))).for_each(|(s, (a, b))| *s = a + b);
                Epilogue::Bias(&bias[..])
            } else {
                Epilogue::None
            };
            product(
                MatRef::from_slice(x, bt, inw, inw),
                MatRef::from_slice(w_ih_t, inw, gh, gh),
                0.0,
                MatMut::from_slice(&mut ls.gates[..bt * gh], bt, gh, gh),
                epilogue,
            );
            // h_{-1}, c_{-1}: the initial state or zeros.
            rnn::fill_initial(d, rnn::initial(d, cx, 1), l, rows, &mut ls.hprev, t_n * h);
            rnn::fill_initial(d, rnn::initial(d, cx, 2), l, rows, c0, h);
            for t in 0..t_n {
                if t > 0 || d.with_state {
                    // gates_t[B, 4H] += h_{t-1}[B, H]·W_hhᵀ (rows b·T + t: row stride T·4H)
                    product(
                        MatRef::from_slice(&ls.hprev[at(0, t, t_n, h)..], rows, h, t_n * h),
                        MatRef::from_slice(w_hh_t, h, gh, gh),
                        1.0,
                        MatMut::from_slice(&mut ls.gates[at(0, t, t_n, gh)..], rows, gh, t_n * gh),
                        Epilogue::None,
                    );
                }
                let (g_s, c_s, tc_s, h_s, hp_s) =
                    (shared(&mut ls.gates), shared(&mut ls.aux), shared(&mut ls.aux2), shared(&mut ls.hseq), shared(&mut ls.hprev));
                let c0r: &[f32] = c0;
                par_rows(rows, gh, &|r| {
                    for b in r {
                        // Each sample's rows are its own: the parts write disjoint slices.
                        unsafe {
                            let c_prev: &[f32] = if t == 0 { &c0r[b * h..][..h] } else { c_s.slice(at(b, t - 1, t_n, h), h) };
                            let h_out = h_s.slice(at(b, t, t_n, h), h);
                            cell_forward(
                                g_s.slice(at(b, t, t_n, gh), gh),
                                c_prev,
                                c_s.slice(at(b, t, t_n, h), h),
                                tc_s.slice(at(b, t, t_n, h), h),
                                h_out,
                            );
                            if t + 1 < t_n {
                                hp_s.slice(at(b, t + 1, t_n, h), h).copy_from_slice(h_out);
                            }
                        }
                    }
                });
            }
        }
        rnn::write_output(d, &self.s, rows, cx.output());
    }

    fn backward(&mut self, cx: &Backward) {
        let d = &self.d;
        let rows = cx.rows;
        let (t_n, h, gh) = (d.steps, d.hidden, d.gh());
        let bt = rows * t_n;
        let dout: &[f32] = cx.dout();
        let need_h0 = rnn::needs_initial_grad(d, cx);
        let Scratch { layers, dseq, dh, dc, c0, .. } = &mut self.s;
        for l in (0..d.layers).rev() {
            let (lower, rest) = layers.split_at_mut(l);
            let ls = &mut rest[0];
            let top = l + 1 == d.layers;
            // The gradient of the carried state after the last step.
            dh[..rows * h].fill(0.0);
            dc[..rows * h].fill(0.0);
            match d.returns {
                Returns::Last if top => dh[..rows * h].copy_from_slice(&dout[..rows * h]),
                Returns::State => {
                    for b in 0..rows {
                        for j in 0..h {
                            dh[b * h + j] = rnn::state_grad(d, dout, b, l, j, 0);
                            dc[b * h + j] = rnn::state_grad(d, dout, b, l, j, 1);
                        }
                    }
                }
                _ => {}
            }
            // c_{-1} of this layer.
            let c_init = d.with_state.then(|| cx.input(2));
            rnn::fill_initial(d, c_init, l, rows, c0, h);
            // The gradient of the h sequence from above: dout (the top layer's
            // sequence) or the layer above's dx.
            let dseq_in: Option<&[f32]> = if !top {
                Some(&dseq[..bt * h])
            } else if d.returns == Returns::Sequence {
                Some(dout)
            } else {
                None
            };
            for t in (0..t_n).rev() {
                {
                    let (g_s, dc_s) = (shared(&mut ls.gates), shared(&mut dc[..]));
                    let (tc, c, c0, dh): (&[f32], &[f32], &[f32], &[f32]) = (&ls.aux2, &ls.aux, c0, dh);
                    par_rows(rows, gh, &|r| {
                        for b in r {
                            let c_prev = if t == 0 { &c0[b * h..][..h] } else { &c[at(b, t - 1, t_n, h)..][..h] };
                            // Each sample's rows are its own: the parts write disjoint slices.
                            unsafe {
                                cell_backward(
                                    g_s.slice(at(b, t, t_n, gh), gh),
                                    &tc[at(b, t, t_n, h)..][..h],
                                    c_prev,
                                    dseq_in.map(|s| &s[at(b, t, t_n, h)..][..h]),
                                    &dh[b * h..][..h],
                                    dc_s.slice(b * h, h),
                                )
                            }
                        }
                    });
                }
                if t > 0 || need_h0 {
                    // dh_{t-1}[B, H] = da_t[B, 4H]·W_hh[4H, H]
                    product(
                        MatRef::from_slice(&ls.gates[at(0, t, t_n, gh)..], rows, gh, t_n * gh),
                        MatRef::from_slice(&ls.w_hh, gh, h, h),
                        0.0,
                        MatMut::from_slice(&mut dh[..rows * h], rows, h, h),
                        Epilogue::None,
                    );
                }
            }
            if need_h0 {
                rnn::write_initial_grad(d, cx, 1, l, dh);
                rnn::write_initial_grad(d, cx, 2, l, dc);
            }
            let inw = d.input_of(l);
            let base = d.base(l);
            let x: &[f32] = if l == 0 { cx.input(0) } else { &lower[l - 1].hseq[..bt * h] };
            let da = MatRef::from_slice(&ls.gates[..bt * gh], bt, gh, gh);
            // dW_ihᵀ[in, 4H] = xᵀ·da;  dW_hhᵀ[H, 4H] = h_prevᵀ·da;  db_ih = db_hh = Σ da
            product(MatRef::from_slice(x, bt, inw, inw).t(), da, 0.0, MatMut::from_slice(cx.grad(base), inw, gh, gh), Epilogue::None);
            product(MatRef::from_slice(&ls.hprev[..bt * h], bt, h, h).t(), da, 0.0, MatMut::from_slice(cx.grad(base + 1), h, gh, gh), Epilogue::None);
            if d.bias {
                rnn::column_sums(&ls.gates[..bt * gh], gh, cx.grad(base + 2));
                cx.grad(base + 3).copy_from_slice(cx.grad(base + 2));
            }
            // dx[B·T, in] = da·W_ih
            let w_ih = MatRef::from_slice(cx.param(base), inw, gh, gh).t();
            if l > 0 {
                product(da, w_ih, 0.0, MatMut::from_slice(&mut dseq[..bt * h], bt, h, h), Epilogue::None);
            } else if let Some(dx) = cx.dinput(0) {
                let beta = if cx.accumulate(0) { 1.0 } else { 0.0 };
                product(da, w_ih, beta, MatMut::from_slice(dx, bt, inw, inw), Epilogue::None);
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::super::rnn::tests_support::*;

    #[test]
    fn gradients_through_time() {
        check_all("LSTM");
    }
}
