//! Direct kernels for a convolution over a single input channel (a network's first
//! layer on grey images: LeNet-5's 1→6 5×5, the CNN's 1→32 3×3), stride 1, dilation 1,
//! one group. im2col + GEMM ran these at 11 GFLOP/s: the column matrix has K = 25 (or 9)
//! columns and the product N = 6 (or 32), so copying short runs and a GEMM with one
//! narrow tile dominated a LeNet-5 epoch (52% in the first convolution, perf, 1 thread).
//! Here output rows are computed in place, one vector of output pixels at a time,
//! straight from a zero-padded copy of the image:
//!
//!   out[oy, ox, c] = bias[c] + Σ_{ki,kj} xpad[oy + ki, ox + kj] · w[ki, kj, c]
//!   dw[ki, kj, c]  = Σ_{oy,ox} xpad[oy + ki, ox + kj] · dout[oy, ox, c]
//!
//! Written once over the GEMM's small `Simd` trait (AVX-512, AVX2, NEON, scalar) and
//! chosen with the GEMM kernel (so `FERRONET_GEMM_KERNEL=scalar` forces these too).
//! The weight gradient is summed per fixed chunk of samples and the chunks are added
//! in order, so the bits do not depend on the thread count.

use crate::gemm::simd::{Scalar, Simd};

/// Widest vector of any ISA: the slack after each padded row and transposed row.
pub const SLACK: usize = 16;
/// Output channels per register block of the forward pass.
pub const CBLOCK: usize = 8;
/// Samples per chunk of the weight gradient (fixed: it sets the summation order).
pub const CHUNK: usize = 8;
/// Channels × kernel columns per register block of the weight gradient.
const GC: usize = 3;
const GJ: usize = 5;

/// The geometry these kernels need.
#[derive(Debug, Clone, Copy)]
pub struct Single {
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
    pub cout: usize,
}

impl Single {
    pub fn hp(&self) -> usize {
        self.h + 2 * self.ph
    }
    /// Row stride of the padded image: the padded width plus slack, so that a vector
    /// load at the last output pixel of a row stays inside the row.
    pub fn wp(&self) -> usize {
        self.w + 2 * self.pw + SLACK
    }
    pub fn padded_len(&self) -> usize {
        self.hp() * self.wp()
    }
    /// Output channels rounded up to a register block (the padded weight's width).
    pub fn coutp(&self) -> usize {
        self.cout.div_ceil(CBLOCK) * CBLOCK
    }
    pub fn wpad_len(&self) -> usize {
        self.kh * self.kw * self.coutp()
    }
    /// The transposed output gradient of one sample, [Cout, Ho, Wo + SLACK].
    pub fn dout_t_len(&self) -> usize {
        self.cout * self.ho * (self.wo + SLACK)
    }

    /// x [H, W] (one channel) → xpad [Hp, Wp], zeros around and in the slack.
    pub fn pad(&self, x: &[f32], xpad: &mut [f32]) {
        let wp = self.wp();
        xpad.fill(0.0);
        for y in 0..self.h {
            let at = (y + self.ph) * wp + self.pw;
            xpad[at..at + self.w].copy_from_slice(&x[y * self.w..(y + 1) * self.w]);
        }
    }

    /// weight_t [kh·kw, Cout] → wpad [kh·kw, coutp], zero columns past Cout.
    pub fn pad_weight(&self, weight_t: &[f32], wpad: &mut [f32]) {
        let cp = self.coutp();
        wpad.fill(0.0);
        for (k, row) in weight_t.chunks_exact(self.cout).enumerate() {
            wpad[k * cp..k * cp + self.cout].copy_from_slice(row);
        }
    }

    /// dout [Ho·Wo, Cout] of one sample → dout_t [Cout, Ho, Wo + SLACK], zero slack
    /// (lanes past Wo must add nothing to the weight gradient).
    pub fn transpose_dout(&self, dout: &[f32], dout_t: &mut [f32]) {
        let (wt, cout) = (self.wo + SLACK, self.cout);
        for oy in 0..self.ho {
            // Read each pixel's channels once, in order; write Cout row streams.
            for ox in 0..self.wo {
                let src = &dout[(oy * self.wo + ox) * cout..][..cout];
                for (c, &g) in src.iter().enumerate() {
                    dout_t[(c * self.ho + oy) * wt + ox] = g;
                }
            }
            for c in 0..cout {
                dout_t[(c * self.ho + oy) * wt + self.wo..][..SLACK].fill(0.0);
            }
        }
    }

    /// One sample: out [Ho, Wo, Cout] = conv(xpad) + bias, then max(·, 0) when `relu`.
    pub fn forward(&self, xpad: &[f32], wpad: &[f32], bias: Option<&[f32]>, relu: bool, out: &mut [f32]) {
        assert!(xpad.len() >= self.padded_len() && wpad.len() >= self.wpad_len());
        assert!(out.len() >= self.ho * self.wo * self.cout);
        assert!(bias.is_none_or(|b| b.len() >= self.cout));
        unsafe { (isa().forward)(self, xpad.as_ptr(), wpad.as_ptr(), bias, relu, out.as_mut_ptr()) }
    }

    /// One sample: dw [kh·kw, Cout] += its weight gradient, from its padded image and
    /// transposed output gradient.
    pub fn weight_grad(&self, xpad: &[f32], dout_t: &[f32], dw: &mut [f32]) {
        assert!(xpad.len() >= self.padded_len() && dout_t.len() >= self.dout_t_len());
        assert!(dw.len() >= self.kh * self.kw * self.cout);
        unsafe { (isa().weight_grad)(self, xpad.as_ptr(), dout_t.as_ptr(), dw.as_mut_ptr()) }
    }
}

/// # Safety
/// Buffers as `Single::forward` checks them.
#[inline(always)]
unsafe fn forward_body<S: Simd>(g: &Single, xpad: *const f32, wpad: *const f32, bias: Option<&[f32]>, relu: bool, out: *mut f32) {
    let (wp, cout, cp, l) = (g.wp(), g.cout, g.coutp(), S::LANES);
    let mut tmp = [0f32; CBLOCK * SLACK];
    for oy in 0..g.ho {
        for ox0 in (0..g.wo).step_by(l) {
            let nx = l.min(g.wo - ox0);
            for c0 in (0..cout).step_by(CBLOCK) {
                let mut acc = [S::zero(); CBLOCK];
                for ki in 0..g.kh {
                    let row = xpad.add((oy + ki) * wp + ox0);
                    for kj in 0..g.kw {
                        let v = S::load(row.add(kj));
                        let w = wpad.add((ki * g.kw + kj) * cp + c0);
                        for (c, a) in acc.iter_mut().enumerate() {
                            *a = S::fma(v, S::splat(*w.add(c)), *a);
                        }
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    S::store(tmp.as_mut_ptr().add(c * SLACK), *a);
                }
                let nc = CBLOCK.min(cout - c0);
                for x in 0..nx {
                    let o = out.add((oy * g.wo + ox0 + x) * cout + c0);
                    for c in 0..nc {
                        let mut y = tmp[c * SLACK + x] + bias.map_or(0.0, |b| b[c0 + c]);
                        if relu && y < 0.0 {
                            y = 0.0;
                        }
                        *o.add(c) = y;
                    }
                }
            }
        }
    }
}

/// # Safety
/// Buffers as `Single::weight_grad` checks them.
#[inline(always)]
unsafe fn weight_grad_body<S: Simd>(g: &Single, xpad: *const f32, dout_t: *const f32, dw: *mut f32) {
    let (wp, cout, wt, l) = (g.wp(), g.cout, g.wo + SLACK, S::LANES);
    for ki in 0..g.kh {
        for c0 in (0..cout).step_by(GC) {
            let nc = GC.min(cout - c0);
            for kj0 in (0..g.kw).step_by(GJ) {
                let nj = GJ.min(g.kw - kj0);
                let mut acc = [[S::zero(); GJ]; GC];
                for oy in 0..g.ho {
                    let xrow = xpad.add((oy + ki) * wp + kj0);
                    for ox0 in (0..g.wo).step_by(l) {
                        let mut d = [S::zero(); GC];
                        for (c, d) in d.iter_mut().enumerate().take(nc) {
                            *d = S::load(dout_t.add(((c0 + c) * g.ho + oy) * wt + ox0));
                        }
                        for j in 0..GJ {
                            // Columns past the kernel's read the padded row harmlessly
                            // (inside its slack) and are never summed.
                            let v = S::load(xrow.add(ox0 + j.min(nj - 1)));
                            for c in 0..GC {
                                acc[c][j] = S::fma(v, d[c], acc[c][j]);
                            }
                        }
                    }
                }
                for (c, acc) in acc.iter().enumerate().take(nc) {
                    for (j, a) in acc.iter().enumerate().take(nj) {
                        *dw.add((ki * g.kw + kj0 + j) * cout + c0 + c) += S::sum(*a);
                    }
                }
            }
        }
    }
}

type ForwardFn = unsafe fn(&Single, *const f32, *const f32, Option<&[f32]>, bool, *mut f32);
type WeightGradFn = unsafe fn(&Single, *const f32, *const f32, *mut f32);

struct Isa {
    forward: ForwardFn,
    weight_grad: WeightGradFn,
}

macro_rules! entry_points {
    ($name:ident, $simd:ty, $($feature:literal)?) => {
        mod $name {
            use super::*;
            $(#[target_feature(enable = $feature)])?
            pub unsafe fn forward(g: &Single, x: *const f32, w: *const f32, b: Option<&[f32]>, relu: bool, o: *mut f32) {
                forward_body::<$simd>(g, x, w, b, relu, o)
            }
            $(#[target_feature(enable = $feature)])?
            pub unsafe fn weight_grad(g: &Single, x: *const f32, d: *const f32, dw: *mut f32) {
                weight_grad_body::<$simd>(g, x, d, dw)
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
entry_points!(avx512, crate::gemm::simd::Avx512, "avx512f");
#[cfg(target_arch = "x86_64")]
entry_points!(avx2, crate::gemm::simd::Avx2, "avx2,fma");
#[cfg(target_arch = "aarch64")]
entry_points!(neon, crate::gemm::simd::Neon, "neon");
entry_points!(scalar, Scalar,);

/// The kernels of the ISA the GEMM runs on (FERRONET_GEMM_KERNEL forces both).
fn isa() -> &'static Isa {
    static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    ISA.get_or_init(|| {
        let name = crate::gemm::selected().name;
        #[cfg(target_arch = "x86_64")]
        {
            if name == "avx512" {
                return Isa { forward: avx512::forward, weight_grad: avx512::weight_grad };
            }
            if name == "avx2" {
                return Isa { forward: avx2::forward, weight_grad: avx2::weight_grad };
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            if name == "neon" {
                return Isa { forward: neon::forward, weight_grad: neon::weight_grad };
            }
        }
        let _ = name;
        Isa { forward: scalar::forward, weight_grad: scalar::weight_grad }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{check_gradients, GradCheck};

    fn geometry(h: usize, w: usize, k: usize, p: usize, cout: usize) -> Single {
        Single { h, w, kh: k, kw: k, ph: p, pw: p, ho: h + 2 * p - k + 1, wo: w + 2 * p - k + 1, cout }
    }

    fn value(i: usize, salt: usize) -> f32 {
        (((i * 2654435761 + salt * 97) >> 7) % 1000) as f32 / 500.0 - 1.0
    }

    type Kernels = (&'static str, ForwardFn, WeightGradFn);

    fn kernels() -> Vec<Kernels> {
        let mut k: Vec<Kernels> = vec![("scalar", scalar::forward, scalar::weight_grad)];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                k.push(("avx2", avx2::forward, avx2::weight_grad));
            }
            if is_x86_feature_detected!("avx512f") {
                k.push(("avx512", avx512::forward, avx512::weight_grad));
            }
        }
        #[cfg(target_arch = "aarch64")]
        k.push(("neon", neon::forward, neon::weight_grad));
        k
    }

    /// Every kernel of this CPU against plain loops in f64, for output widths below,
    /// at and above a vector, channel counts that fill no, one and several blocks.
    #[test]
    fn every_kernel_matches_plain_loops() {
        for (h, w, k, p, cout) in [(28, 28, 5, 2, 6), (28, 28, 3, 0, 32), (7, 9, 3, 1, 3), (5, 20, 5, 0, 8), (6, 6, 1, 0, 9)] {
            let g = geometry(h, w, k, p, cout);
            let x: Vec<f32> = (0..h * w).map(|i| value(i, 1)).collect();
            let weight_t: Vec<f32> = (0..k * k * cout).map(|i| value(i, 2)).collect();
            let bias: Vec<f32> = (0..cout).map(|i| value(i, 3)).collect();
            let dout: Vec<f32> = (0..g.ho * g.wo * cout).map(|i| value(i, 4)).collect();
            let mut xpad = vec![0.0; g.padded_len()];
            g.pad(&x, &mut xpad);
            let mut wpad = vec![0.0; g.wpad_len()];
            g.pad_weight(&weight_t, &mut wpad);
            let mut dout_t = vec![0.0; g.dout_t_len()];
            g.transpose_dout(&dout, &mut dout_t);
            let at = |y: isize, xx: isize| -> f64 {
                if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize { 0.0 } else { x[y as usize * w + xx as usize] as f64 }
            };
            let (mut want_out, mut want_dw) = (vec![0f64; dout.len()], vec![0f64; weight_t.len()]);
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    for c in 0..cout {
                        let mut s = bias[c] as f64;
                        for ki in 0..k {
                            for kj in 0..k {
                                let v = at((oy + ki) as isize - p as isize, (ox + kj) as isize - p as isize);
                                s += v * weight_t[(ki * k + kj) * cout + c] as f64;
                                want_dw[(ki * k + kj) * cout + c] += v * dout[(oy * g.wo + ox) * cout + c] as f64;
                            }
                        }
                        want_out[(oy * g.wo + ox) * cout + c] = s.max(0.0);
                    }
                }
            }
            for (name, forward, weight_grad) in kernels() {
                let mut out = vec![f32::NAN; dout.len()];
                let mut dw = vec![0.0; weight_t.len()];
                unsafe {
                    forward(&g, xpad.as_ptr(), wpad.as_ptr(), Some(&bias), true, out.as_mut_ptr());
                    weight_grad(&g, xpad.as_ptr(), dout_t.as_ptr(), dw.as_mut_ptr());
                }
                for (what, got, want) in [("forward", &out, &want_out), ("weight gradient", &dw, &want_dw)] {
                    for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
                        assert!((a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()), "{name} {what} [{h}×{w}, k{k} p{p}, {cout} out] [{i}]: {a} vs {b}");
                    }
                }
            }
        }
    }

    /// Through the graph: its gradients match finite differences (the weight's and the
    /// bias's through the chunked sums), also past one chunk of samples.
    #[test]
    fn single_channel_convolutions_train_through_the_graph() {
        for (k, p, cout, batch) in [(5, 2, 6, 3), (3, 0, 11, 10), (3, 1, 2, 17)] {
            let spec = serde_json::json!({
                "format": "ferronet-graph", "version": 1,
                "inputs": [{ "name": "input", "shape": [1, 9, 8] }],
                "nodes": [
                    { "name": "0", "op": "Conv2d", "inputs": ["input"], "config": { "outChannels": cout, "kernelSize": k, "padding": p } },
                    { "name": "1", "op": "Tanh", "inputs": ["0"] },
                    { "name": "2", "op": "Flatten", "inputs": ["1"] },
                    { "name": "3", "op": "Linear", "inputs": ["2"], "config": { "outFeatures": 3 } }
                ],
                "outputs": ["3"]
            })
            .to_string();
            // Tanh, not ReLU: a bias moves every pixel of its channel at once, and with
            // hundreds of ReLU inputs some always sit within h of the kink. The fused
            // ReLU of this route is checked against plain loops above.
            let o = GradCheck { batch, ..GradCheck::default() };
            check_gradients(&spec, &o).unwrap_or_else(|e| panic!("k{k} p{p} {cout} out, batch {batch}: {e}"));
        }
    }
}
