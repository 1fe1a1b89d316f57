//! `GRU`: PyTorch's `nn.GRU(batch_first=True)` on [T, F] per sample, `numLayers`
//! stacked, gates r, z, n:
//!
//!   u_t = x_t·W_ihᵀ + b_ih,   w_t = h_{t-1}·W_hhᵀ + b_hh          [3H] each
//!   r = σ(u_r + w_r),  z = σ(u_z + w_z),  n = tanh(u_n + r ⊙ w_n)
//!   h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
//!
//! Per layer, forward is one product for the input projection of every step, then
//! per step one product [B, H]·[H, 3H] (with b_hh) and one pass of the gates. W_hn's
//! part stays separate from u_n (r multiplies it), so the two products are not summed
//! as in the LSTM. Backward (full BPTT) is per step one pass and one product
//! [B, 3H]·[3H, H] for dh_{t-1}, then dW_ih, dW_hh and dx as one product each over
//! all steps. Kept from forward (layer scratch, see `rnn.rs`): r, z, n (overwritten
//! in place by du), h_{t-1} and w_n of every step; backward writes dw into `aux2`.

use super::linear::transpose;
use super::rnn::{self, at, par_rows, product, shared, Cell, Dims, Returns, Scratch};
use super::{Backward, Forward, Op, ParamDecl};
use crate::error::Result;
use crate::gemm::{Epilogue, MatMut, MatRef};

#[derive(Debug, Clone)]
pub struct Gru {
    d: Dims,
    s: Scratch,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    Ok(Box::new(Gru { d: Dims::build(Cell::Gru, name, config, inputs)?, s: Scratch::default() }))
}

/// One sample's step: `g` [3H] = u (input projection) → (r, z, n); `w` [3H] the
/// recurrent product; keeps w_n in `wn`; h = (1 − z) ⊙ n + z ⊙ h_prev.
fn cell_forward(g: &mut [f32], w: &[f32], wn: &mut [f32], h_prev: &[f32], h_out: &mut [f32]) {
    let h = h_out.len();
    for (u, &w) in g[..2 * h].iter_mut().zip(&w[..2 * h]) {
        *u += w;
    }
    rnn::sigmoid(&mut g[..2 * h]);
    let (rz, n) = g.split_at_mut(2 * h);
    let (r, z) = rz.split_at(h);
    let (w_n, wn, h_prev) = (&w[2 * h..3 * h], &mut wn[..h], &h_prev[..h]);
    for j in 0..h {
        n[j] += r[j] * w_n[j];
    }
    wn.copy_from_slice(w_n);
    rnn::tanh(n);
    for j in 0..h {
        h_out[j] = (1.0 - z[j]) * n[j] + z[j] * h_prev[j];
    }
}

/// One sample's step backward. dh = dh_seq + dh_carry; `g`'s (r, z, n) become
/// du = (dr̂, dẑ, dn̂) (the gradients of the pre-activations), `dw` gets the gradient
/// of w_t = (dr̂, dẑ, dn̂ ⊙ r), and `dh_carry` leaves with dh ⊙ z (the direct path to
/// h_{t-1}; the product with W_hh is added after).
fn cell_backward(g: &mut [f32], dw: &mut [f32], wn: &[f32], h_prev: &[f32], dh_seq: Option<&[f32]>, dh_carry: &mut [f32]) {
    let h = wn.len();
    let (r, rest) = g.split_at_mut(h);
    let (z, n) = rest.split_at_mut(h);
    let (dwr, rest) = dw.split_at_mut(h);
    let (dwz, dwn) = rest.split_at_mut(h);
    let (h_prev, dh_carry, dwn) = (&h_prev[..h], &mut dh_carry[..h], &mut dwn[..h]);
    for j in 0..h {
        let dh = dh_carry[j] + dh_seq.map_or(0.0, |d| d[j]);
        let (rv, zv, nv) = (r[j], z[j], n[j]);
        let dn = dh * (1.0 - zv) * (1.0 - nv * nv);
        let dz = dh * (h_prev[j] - nv) * zv * (1.0 - zv);
        let dr = dn * wn[j] * rv * (1.0 - rv);
        r[j] = dr;
        z[j] = dz;
        n[j] = dn;
        dwr[j] = dr;
        dwz[j] = dz;
        dwn[j] = dn * rv;
        dh_carry[j] = dh * zv;
    }
}

impl Op for Gru {
    fn kind(&self) -> &'static str {
        "GRU"
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
        let Scratch { layers, step, .. } = &mut self.s;
        for l in 0..d.layers {
            let (lower, rest) = layers.split_at_mut(l);
            let ls = &mut rest[0];
            let inw = d.input_of(l);
            let x: &[f32] = if l == 0 { cx.input(0) } else { &lower[l - 1].hseq[..bt * h] };
            let base = d.base(l);
            let (w_ih_t, w_hh_t) = (cx.param(base), cx.param(base + 1));
            let (b_ih, b_hh) = if d.bias { (Some(cx.param(base + 2)), Some(cx.param(base + 3))) } else { (None, None) };
            transpose(w_hh_t, h, gh, &mut ls.w_hh);
            // u[B·T, 3H] = x[B·T, in]·W_ihᵀ + b_ih
            product(
                MatRef::from_slice(x, bt, inw, inw),
                MatRef::from_slice(w_ih_t, inw, gh, gh),
                0.0,
                MatMut::from_slice(&mut ls.gates[..bt * gh], bt, gh, gh),
                b_ih.map_or(Epilogue::None, Epilogue::Bias),
            );
            rnn::fill_initial(d, rnn::initial(d, cx, 1), l, rows, &mut ls.hprev, t_n * h);
            for t in 0..t_n {
                let w = &mut step[..rows * gh];
                if t > 0 || d.with_state {
                    // w[B, 3H] = h_{t-1}[B, H]·W_hhᵀ + b_hh
                    product(
                        MatRef::from_slice(&ls.hprev[at(0, t, t_n, h)..], rows, h, t_n * h),
                        MatRef::from_slice(w_hh_t, h, gh, gh),
                        0.0,
                        MatMut::from_slice(w, rows, gh, gh),
                        b_hh.map_or(Epilogue::None, Epilogue::Bias),
                    );
                } else {
                    // h_{-1} = 0: w = b_hh.
                    for row in w.chunks_exact_mut(gh) {
                        match b_hh {
                            Some(b) => row.copy_from_slice(b),
                            None => row.fill(0.0),
                        }
                    }
                }
                let w: &[f32] = w;
                let (g_s, wn_s, h_s, hp_s) = (shared(&mut ls.gates), shared(&mut ls.aux), shared(&mut ls.hseq), shared(&mut ls.hprev));
                par_rows(rows, gh, &|r| {
                    for b in r {
                        // Each sample's rows are its own: the parts write disjoint slices.
                        unsafe {
                            let h_out = h_s.slice(at(b, t, t_n, h), h);
                            cell_forward(
                                g_s.slice(at(b, t, t_n, gh), gh),
                                &w[b * gh..][..gh],
                                wn_s.slice(at(b, t, t_n, h), h),
                                hp_s.slice(at(b, t, t_n, h), h),
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
        let Scratch { layers, dseq, dh, .. } = &mut self.s;
        for l in (0..d.layers).rev() {
            let (lower, rest) = layers.split_at_mut(l);
            let ls = &mut rest[0];
            let top = l + 1 == d.layers;
            dh[..rows * h].fill(0.0);
            match d.returns {
                Returns::Last if top => dh[..rows * h].copy_from_slice(&dout[..rows * h]),
                Returns::State => {
                    for b in 0..rows {
                        for j in 0..h {
                            dh[b * h + j] = rnn::state_grad(d, dout, b, l, j, 0);
                        }
                    }
                }
                _ => {}
            }
            let dseq_in: Option<&[f32]> = if !top {
                Some(&dseq[..bt * h])
            } else if d.returns == Returns::Sequence {
                Some(dout)
            } else {
                None
            };
            for t in (0..t_n).rev() {
                {
                    let (g_s, dw_s, dh_s) = (shared(&mut ls.gates), shared(&mut ls.aux2), shared(&mut dh[..]));
                    let (wn, hp): (&[f32], &[f32]) = (&ls.aux, &ls.hprev);
                    par_rows(rows, gh, &|r| {
                        for b in r {
                            // Each sample's rows are its own: the parts write disjoint slices.
                            unsafe {
                                cell_backward(
                                    g_s.slice(at(b, t, t_n, gh), gh),
                                    dw_s.slice(at(b, t, t_n, gh), gh),
                                    &wn[at(b, t, t_n, h)..][..h],
                                    &hp[at(b, t, t_n, h)..][..h],
                                    dseq_in.map(|s| &s[at(b, t, t_n, h)..][..h]),
                                    dh_s.slice(b * h, h),
                                )
                            }
                        }
                    });
                }
                if t > 0 || need_h0 {
                    // dh_{t-1}[B, H] += dw_t[B, 3H]·W_hh[3H, H]
                    product(
                        MatRef::from_slice(&ls.aux2[at(0, t, t_n, gh)..], rows, gh, t_n * gh),
                        MatRef::from_slice(&ls.w_hh, gh, h, h),
                        1.0,
                        MatMut::from_slice(&mut dh[..rows * h], rows, h, h),
                        Epilogue::None,
                    );
                }
            }
            if need_h0 {
                rnn::write_initial_grad(d, cx, 1, l, dh);
            }
            let inw = d.input_of(l);
            let base = d.base(l);
            let x: &[f32] = if l == 0 { cx.input(0) } else { &lower[l - 1].hseq[..bt * h] };
            let du = MatRef::from_slice(&ls.gates[..bt * gh], bt, gh, gh);
            let dw = MatRef::from_slice(&ls.aux2[..bt * gh], bt, gh, gh);
            // dW_ihᵀ[in, 3H] = xᵀ·du;  dW_hhᵀ[H, 3H] = h_prevᵀ·dw;  db_ih = Σ du, db_hh = Σ dw
            product(MatRef::from_slice(x, bt, inw, inw).t(), du, 0.0, MatMut::from_slice(cx.grad(base), inw, gh, gh), Epilogue::None);
            product(MatRef::from_slice(&ls.hprev[..bt * h], bt, h, h).t(), dw, 0.0, MatMut::from_slice(cx.grad(base + 1), h, gh, gh), Epilogue::None);
            if d.bias {
                rnn::column_sums(&ls.gates[..bt * gh], gh, cx.grad(base + 2));
                rnn::column_sums(&ls.aux2[..bt * gh], gh, cx.grad(base + 3));
            }
            // dx[B·T, in] = du·W_ih
            let w_ih = MatRef::from_slice(cx.param(base), inw, gh, gh).t();
            if l > 0 {
                product(du, w_ih, 0.0, MatMut::from_slice(&mut dseq[..bt * h], bt, h, h), Epilogue::None);
            } else if let Some(dx) = cx.dinput(0) {
                let beta = if cx.accumulate(0) { 1.0 } else { 0.0 };
                product(du, w_ih, beta, MatMut::from_slice(dx, bt, inw, inw), Epilogue::None);
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
        check_all("GRU");
    }
}
