//! `Conv2d`: PyTorch's `nn.Conv2d` on [C, H, W] samples, which the graph stores
//! channels-last, [H, W, C]. The whole batch is one product per group:
//!
//!   col[rows·Ho·Wo, g·K]   im2col of the batch, K = kh·kw·Cin/g, columns group-major
//!                           (group, kernel row, kernel column, channel); zero padding
//!   out[rows·Ho·Wo, Cout]  = col_g · weight_t_g + bias, group g writing columns
//!                           g·Cout/g.. (the output is [Ho, Wo, Cout] per sample as stored)
//!
//! Weight [Cout, Cin/g, kh, kw] and bias [Cout] at the API; the weight is stored as
//! weight_t [g][K][Cout/g] (row (ki·kw + kj)·Cin/g + c), so both large products read a
//! row-major right-hand side. A 1×1, stride-1, unpadded convolution skips im2col: the
//! input already is the column matrix.

use super::config::{default_true, parse, Pair};
use super::{expect_inputs, mask_by_input, write_grad, Backward, Forward, Init, Op, ParamDecl, SharedMut};
use crate::error::{Error, Result};
use crate::gemm::{gemm, Epilogue, MatMut, MatRef};
use crate::team::run_parts;
use super::conv2d_single::{self as single, Single};
use serde::Deserialize;

pub(crate) fn pair_one() -> Pair {
    Pair(1, 1)
}
pub(crate) fn pair_zero() -> Pair {
    Pair(0, 0)
}
fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Conv2dConfig {
    pub out_channels: usize,
    /// Required (see `config::required`).
    #[serde(default)]
    pub kernel_size: Option<Pair>,
    #[serde(default = "pair_one")]
    pub stride: Pair,
    #[serde(default = "pair_zero")]
    pub padding: Pair,
    #[serde(default = "pair_one")]
    pub dilation: Pair,
    #[serde(default = "one")]
    pub groups: usize,
    #[serde(default = "default_true")]
    pub bias: bool,
}

/// "5" for a square size, "[3, 2]" otherwise.
pub(crate) fn show(p: Pair) -> String {
    if p.0 == p.1 {
        p.0.to_string()
    } else {
        format!("[{}, {}]", p.0, p.1)
    }
}

/// Everything im2col and col2im need (Copy, so the parallel parts can share it).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    cin: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
    groups: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// Input channels per group.
    fn cg(&self) -> usize {
        self.cin / self.groups
    }
    /// Columns of col per group: K = kh·kw·Cin/g.
    fn kg(&self) -> usize {
        self.kh * self.kw * self.cg()
    }
    /// Columns of col: g·K.
    fn ktot(&self) -> usize {
        self.groups * self.kg()
    }
    fn direct(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }
    /// For output column ox: the first input column of the window (may be negative)
    /// and the valid kernel columns kj0..kj1 (dilation 1 only).
    #[inline]
    fn valid_kj(&self, ox: usize) -> (isize, usize, usize) {
        let ix0 = (ox * self.sw) as isize - self.pw as isize;
        let kj0 = (-ix0).clamp(0, self.kw as isize) as usize;
        let kj1 = (self.w as isize - ix0).clamp(kj0 as isize, self.kw as isize) as usize;
        (ix0, kj0, kj1)
    }

    /// One sample: x [H, W, Cin] → col [Ho·Wo, g·K] (overwritten, zero where padded).
    /// Runs are short for a first layer (kw·Cin = 5 floats for LeNet's 5×5 on one
    /// channel): `copy_run` copies them inline instead of calling memmove, which took
    /// 13% of a LeNet epoch (perf, 1 thread) when every run went through copy_from_slice.
    fn im2col(&self, x: &[f32], col: &mut [f32]) {
        let (cin, cg, kg, ktot) = (self.cin, self.cg(), self.kg(), self.ktot());
        let row_len = self.w * cin;
        let whole_rows = self.groups == 1 && self.dw == 1;
        for p in 0..self.ho * self.wo {
            let (oy, ox) = (p / self.wo, p % self.wo);
            let iy0 = (oy * self.sh) as isize - self.ph as isize;
            let (ix0, kj0, kj1) = self.valid_kj(ox);
            for ki in 0..self.kh {
                let iy = iy0 + (ki * self.dh) as isize;
                if iy < 0 || iy >= self.h as isize {
                    for g in 0..self.groups {
                        col[p * ktot + g * kg + ki * self.kw * cg..][..self.kw * cg].fill(0.0);
                    }
                    continue;
                }
                if whole_rows {
                    // A kernel row's kw·Cin inputs are contiguous in the input and in col.
                    let at = p * ktot + ki * self.kw * cin;
                    let start = (ix0 + kj0 as isize) as usize * cin;
                    let n = (kj1 - kj0) * cin;
                    col[at..at + kj0 * cin].fill(0.0);
                    // The copy may run past n into what is written next (zeros or the next
                    // run): the right padding is filled after it.
                    copy_run(col, at + kj0 * cin, &x[iy as usize * row_len..], start, n);
                    col[at + kj1 * cin..at + self.kw * cin].fill(0.0);
                } else {
                    let xrow = &x[iy as usize * row_len..][..row_len];
                    let crow = &mut col[p * ktot..(p + 1) * ktot];
                    for kj in 0..self.kw {
                        let ix = ix0 + (kj * self.dw) as isize;
                        let inside = ix >= 0 && ix < self.w as isize;
                        for g in 0..self.groups {
                            let dst = &mut crow[g * kg + (ki * self.kw + kj) * cg..][..cg];
                            if inside {
                                dst.copy_from_slice(&xrow[ix as usize * cin + g * cg..][..cg]);
                            } else {
                                dst.fill(0.0);
                            }
                        }
                    }
                }
            }
        }
    }

    /// One sample, the adjoint of `im2col`: dx [H, W, Cin] += scatter of dcol [Ho·Wo, g·K].
    /// Serial within the sample: every element's sum has one order whatever the threads.
    fn col2im(&self, dcol: &[f32], dx: &mut [f32]) {
        let (cin, cg, kg, ktot) = (self.cin, self.cg(), self.kg(), self.ktot());
        let row_len = self.w * cin;
        let whole_rows = self.groups == 1 && self.dw == 1;
        let add = |dst: &mut [f32], src: &[f32]| dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
        for (p, crow) in dcol.chunks_exact(ktot).enumerate() {
            let (oy, ox) = (p / self.wo, p % self.wo);
            let iy0 = (oy * self.sh) as isize - self.ph as isize;
            let (ix0, kj0, kj1) = self.valid_kj(ox);
            for ki in 0..self.kh {
                let iy = iy0 + (ki * self.dh) as isize;
                if iy < 0 || iy >= self.h as isize {
                    continue;
                }
                let xrow = &mut dx[iy as usize * row_len..][..row_len];
                if whole_rows {
                    let src = &crow[ki * self.kw * cin..][..self.kw * cin];
                    let start = (ix0 + kj0 as isize) as usize * cin;
                    let n = (kj1 - kj0) * cin;
                    add(&mut xrow[start..start + n], &src[kj0 * cin..kj1 * cin]);
                } else {
                    for kj in 0..self.kw {
                        let ix = ix0 + (kj * self.dw) as isize;
                        if ix < 0 || ix >= self.w as isize {
                            continue;
                        }
                        for g in 0..self.groups {
                            let src = &crow[g * kg + (ki * self.kw + kj) * cg..][..cg];
                            add(&mut xrow[ix as usize * cin + g * cg..][..cg], src);
                        }
                    }
                }
            }
        }
    }
}

/// dst[at..at + n] = src[from..from + n] for a short run (LeNet's first layer: 5
/// floats). Runs of up to 16 are copied as one or two blocks of 8, which may write past
/// `n` (never past `dst`'s end): the caller writes what follows afterwards. Each
/// copy_from_slice of a short run was a memmove call: 13% of a LeNet epoch (perf, 1 thread).
#[inline(always)]
fn copy_run(dst: &mut [f32], at: usize, src: &[f32], from: usize, n: usize) {
    let blocks = n.div_ceil(8);
    if blocks <= 2 && at + blocks * 8 <= dst.len() && from + blocks * 8 <= src.len() {
        let block = |k: usize| -> [f32; 8] { src[from + 8 * k..from + 8 * k + 8].try_into().unwrap() };
        let b0 = block(0);
        dst[at..at + 8].copy_from_slice(&b0);
        if blocks == 2 {
            let b1 = block(1);
            dst[at + 8..at + 16].copy_from_slice(&b1);
        }
    } else {
        dst[at..at + n].copy_from_slice(&src[from..from + n]);
    }
}

/// dst = Σ over the chunks' partial sums, in chunk order (fixed: the same bits for any
/// thread count); chunk k's `dst.len()` values start at k·stride.
fn sum_parts(dst: &mut [f32], parts: &[f32], stride: usize) {
    let n = dst.len();
    dst.copy_from_slice(&parts[..n]);
    for part in parts[stride..].chunks(stride) {
        dst.iter_mut().zip(&part[..n]).for_each(|(d, &p)| *d += p);
    }
}

/// `n` rounded up to whole cache lines of floats: per-chunk partial sums written by
/// different threads never share a line.
fn padded(n: usize) -> usize {
    n.div_ceil(16) * 16
}

#[derive(Debug)]
pub struct Conv2d {
    geo: Geometry,
    cout: usize,
    bias: bool,
    relu: bool,
    /// im2col of the last forward batch (what backward reads): capacity·Ho·Wo × g·K.
    col: Vec<f32>,
    /// The column gradient, sized on the first backward that needs an input gradient.
    dcol: Vec<f32>,
    capacity: usize,
    /// One input channel, stride 1, dilation 1, one group: the direct kernels of
    /// `conv2d_single` instead of im2col + GEMM; then `col` stays empty and these hold
    /// the zero-padded images of the batch (what backward reads), the transposed output
    /// gradient and the weight-gradient partial sums, per chunk of samples.
    single: Option<Single>,
    xpad: Vec<f32>,
    dout_t: Vec<f32>,
    dw_parts: Vec<f32>,
    /// The weight padded to whole register blocks of output channels, per forward.
    wpad: Vec<f32>,
    /// The bias gradient's partial sums, per chunk of samples.
    db_parts: Vec<f32>,
    /// Weight and bias with a following BatchNorm folded in (evaluation only).
    folded: Vec<f32>,
    /// Stride 1, dilation 1, one group and a large enough product: the convolution as
    /// kh GEMMs per sample straight from the (padded) image, no column matrix. Then
    /// `xin` holds each sample's padded image (what backward reads) and `wide` the
    /// output rows at the padded width.
    implicit: Option<Implicit>,
    xin: Vec<f32>,
    wide: Vec<f32>,
    /// Its input gradient's per-sample scratch (padded dout, wide dx) and flipped kernel.
    dxin: Vec<f32>,
    wflip: Vec<f32>,
}

/// Tests build the same convolution both ways and compare, and check small ones on the
/// implicit route against finite differences.
static FORCE_IM2COL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static FORCE_IMPLICIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The implicit GEMM's view of a convolution. Output pixel i = oy·Wp + ox of a
/// sample computed at the padded width Wp (the last kw − 1 columns of each row are
/// computed and dropped) makes kernel row ki's inputs a matrix with a uniform row
/// stride: A_ki(i, q) = xin[(i + ki·Wp)·C + q], q < kw·C, rows overlapping. So
///   out_wide[Ho·Wp, Cout] = Σ_ki A_ki[Ho·Wp, kw·C] · W_ki[kw·C, Cout]
///   dW_ki[kw·C, Cout]      = Σ_samples A_kiᵀ · dout_wide (zero in the dropped columns)
/// For the CNN's 32→64 3×3 layer this replaces writing and reading a 42 MB column
/// matrix per batch (im2col was ~40% of that layer's forward time).
#[derive(Debug, Clone, Copy)]
struct Implicit {
    hp: usize,
    wp: usize,
}

impl Implicit {
    /// Floats of one sample's padded image, with kw·C of slack for the last rows' reads.
    fn in_len(&self, g: &Geometry) -> usize {
        (self.hp * self.wp + g.kw) * g.cin
    }
    fn wide_len(&self, g: &Geometry, cout: usize) -> usize {
        g.ho * self.wp * cout
    }
    /// x [H, W, C] → xin [Hp, Wp, C] (zero padding and slack).
    fn pad(&self, g: &Geometry, x: &[f32], xin: &mut [f32]) {
        let c = g.cin;
        xin.fill(0.0);
        for y in 0..g.h {
            let at = ((y + g.ph) * self.wp + g.pw) * c;
            xin[at..at + g.w * c].copy_from_slice(&x[y * g.w * c..(y + 1) * g.w * c]);
        }
    }
    /// Kernel row ki's input matrix [Ho·Wp, kw·C] over one sample's padded image.
    fn a<'a>(&self, g: &Geometry, xin: &'a [f32], ki: usize) -> MatRef<'a> {
        MatRef::from_slice(&xin[ki * self.wp * g.cin..], g.ho * self.wp, g.kw * g.cin, g.cin)
    }
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "Conv2d", inputs, 1)?;
    let c: Conv2dConfig = parse(name, "Conv2d", config)?;
    let field = |f: &str| format!("nodes[{name}].config.{f}");
    let kernel_size = super::config::required(name, "Conv2d", "kernelSize", c.kernel_size)?;
    if c.out_channels == 0 {
        return Err(Error::config(&field("outChannels"), "must be > 0"));
    }
    for (f, p) in [("kernelSize", kernel_size), ("stride", c.stride), ("dilation", c.dilation)] {
        if p.0 == 0 || p.1 == 0 {
            return Err(Error::config(&field(f), format!("must be > 0, got {}", show(p))));
        }
    }
    if c.groups == 0 {
        return Err(Error::config(&field("groups"), "must be > 0"));
    }
    let shape = &inputs[0];
    let [cin, h, w] = shape[..] else {
        return Err(Error::graph(
            name,
            format!("{name} (Conv2d) takes [channels, height, width] per sample, got input shape {shape:?}"),
        ));
    };
    if !cin.is_multiple_of(c.groups) {
        return Err(Error::graph(
            name,
            format!(
                "{name} (Conv2d) has groups {}, which does not divide its {cin} input channels (input shape {shape:?})",
                c.groups
            ),
        ));
    }
    if !c.out_channels.is_multiple_of(c.groups) {
        return Err(Error::graph(
            name,
            format!(
                "{name} (Conv2d) has groups {}, which does not divide its {} output channels",
                c.groups, c.out_channels
            ),
        ));
    }
    let Pair(kh, kw) = kernel_size;
    let Pair(dh, dw) = c.dilation;
    let (eh, ew) = (dh * (kh - 1) + 1, dw * (kw - 1) + 1);
    let Pair(ph, pw) = c.padding;
    if h + 2 * ph < eh || w + 2 * pw < ew {
        let dil = if c.dilation == Pair(1, 1) {
            String::new()
        } else {
            format!(" (dilation {}: spans {eh}×{ew})", show(c.dilation))
        };
        return Err(Error::graph(
            name,
            format!(
                "{name} (Conv2d): kernel {}{dil} with padding {} does not fit input {h}×{w} (input shape {shape:?})",
                show(kernel_size),
                show(c.padding)
            ),
        ));
    }
    let Pair(sh, sw) = c.stride;
    let geo = Geometry {
        cin,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        ph,
        pw,
        dh,
        dw,
        groups: c.groups,
        ho: (h + 2 * ph - eh) / sh + 1,
        wo: (w + 2 * pw - ew) / sw + 1,
    };
    // Below ~1 M multiply-adds per kernel row and sample (LeNet-5's 6→16 layer: 67 k)
    // the per-sample products are too small and im2col + one batch GEMM is faster.
    let wp = w + 2 * pw;
    let implicit = (cin > 1
        && !FORCE_IM2COL.load(std::sync::atomic::Ordering::Relaxed)
        && c.groups == 1
        && (sh, sw) == (1, 1)
        && (dh, dw) == (1, 1)
        && !geo.direct()
        && (geo.ho * wp * kw * cin * c.out_channels >= 1 << 20 || FORCE_IMPLICIT.load(std::sync::atomic::Ordering::Relaxed)))
        .then_some(Implicit { hp: h + 2 * ph, wp });
    let single = (cin == 1 && c.groups == 1 && (sh, sw) == (1, 1) && (dh, dw) == (1, 1)).then_some(Single {
        h,
        w,
        kh,
        kw,
        ph,
        pw,
        ho: geo.ho,
        wo: geo.wo,
        cout: c.out_channels,
    });
    Ok(Box::new(Conv2d {
        geo,
        cout: c.out_channels,
        bias: c.bias,
        relu: false,
        col: Vec::new(),
        dcol: Vec::new(),
        capacity: 0,
        single,
        xpad: Vec::new(),
        dout_t: Vec::new(),
        dw_parts: Vec::new(),
        // Sized at the first forward (it is as large as the weight): a spec read from a
        // file is checked against the file's tensors only after the op is built.
        wpad: Vec::new(),
        db_parts: Vec::new(),
        folded: Vec::new(),
        implicit,
        xin: Vec::new(),
        wide: Vec::new(),
        dxin: Vec::new(),
        wflip: Vec::new(),
    }))
}

impl Conv2d {
    fn cog(&self) -> usize {
        self.cout / self.geo.groups
    }
    fn col_len(&self, rows: usize) -> usize {
        rows * self.geo.ho * self.geo.wo * self.geo.ktot()
    }
}

impl Op for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![self.cout, self.geo.ho, self.geo.wo]
    }
    fn params(&self) -> Vec<ParamDecl> {
        let g = &self.geo;
        let bound = 1.0 / (g.kg() as f32).sqrt();
        let mut p = vec![ParamDecl::trainable(
            "weight",
            vec![self.cout, g.cg(), g.kh, g.kw],
            Init::Uniform { bound },
        )];
        if self.bias {
            p.push(ParamDecl::trainable("bias", vec![self.cout], Init::Uniform { bound }));
        }
        p
    }
    fn param_from_torch(&self, index: usize, torch: &[f32], internal: &mut [f32]) {
        if index == 0 {
            self.for_each_weight(|t, i| internal[i] = torch[t])
        } else {
            internal.copy_from_slice(torch)
        }
    }
    fn param_to_torch(&self, index: usize, internal: &[f32], torch: &mut [f32]) {
        if index == 0 {
            self.for_each_weight(|t, i| torch[t] = internal[i])
        } else {
            torch.copy_from_slice(internal)
        }
    }
    fn prepare(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.db_parts.resize(capacity.div_ceil(single::CHUNK) * padded(self.cout), 0.0);
        if let Some(g) = self.single {
            let chunks = capacity.div_ceil(single::CHUNK);
            self.xpad.resize(capacity * g.padded_len(), 0.0);
            self.dout_t.resize(chunks * g.dout_t_len(), 0.0);
            self.dw_parts.resize(chunks * padded(g.kh * g.kw * g.cout), 0.0);
        } else if let Some(im) = self.implicit {
            self.xin.resize(capacity * im.in_len(&self.geo), 0.0);
            self.wide.resize(capacity * im.wide_len(&self.geo, self.cout), 0.0);
            if !self.dxin.is_empty() {
                let g = &self.geo;
                let (hd, wd) = (g.ho + 2 * (g.kh - 1), g.wo + 2 * (g.kw - 1));
                self.dxin.resize(capacity * ((hd * wd + g.kw) * self.cout + im.hp * wd * g.cin), 0.0);
            }
        } else if !self.geo.direct() {
            self.col.resize(self.col_len(capacity), 0.0);
            if !self.dcol.is_empty() {
                self.dcol.resize(self.col_len(capacity), 0.0);
            }
        }
    }
    fn fuse_relu(&mut self) -> bool {
        // The epilogue adds a bias as it applies the ReLU; without one, stay unfused.
        self.relu = self.bias;
        self.relu
    }
    fn takes_input_relu_mask(&self) -> bool {
        true
    }

    fn forward(&mut self, cx: &Forward) {
        let bias = self.bias.then(|| cx.param(1));
        self.run_forward(cx, cx.param(0), bias);
    }

    fn forward_macs(&self) -> usize {
        self.geo.ho * self.geo.wo * self.cout * self.geo.kg()
    }

    fn forward_affine(&mut self, cx: &Forward, scale: &[f32], shift: &[f32]) -> bool {
        // weight'[.., c] = weight[.., c]·scale[c];  bias'[c] = bias[c]·scale[c] + shift[c]
        let (cout, cog) = (self.cout, self.cog());
        let mut folded = std::mem::take(&mut self.folded);
        let weight_t = cx.param(0);
        folded.resize(weight_t.len() + cout, 0.0);
        let (w, b) = folded.split_at_mut(weight_t.len());
        for (k, (dst, src)) in w.chunks_exact_mut(cog).zip(weight_t.chunks_exact(cog)).enumerate() {
            // Rows of group g are [g][K][Cout/g]: row k belongs to group k / K.
            let g = k / self.geo.kg();
            for (j, (d, &v)) in dst.iter_mut().zip(src).enumerate() {
                *d = v * scale[g * cog + j];
            }
        }
        for c in 0..cout {
            let bias = if self.bias { cx.param(1)[c] } else { 0.0 };
            b[c] = bias * scale[c] + shift[c];
        }
        let (relu, had_bias) = (self.relu, self.bias);
        self.relu = false;
        self.bias = true;
        self.run_forward(cx, w, Some(b));
        (self.relu, self.bias) = (relu, had_bias);
        self.folded = folded;
        true
    }

    fn backward(&mut self, cx: &Backward) {
        if self.relu {
            cx.apply_fused_relu_mask();
        }
        let geo = self.geo;
        let (rows, cout, cog) = (cx.rows, self.cout, self.cog());
        let (cin, cg, kg, ktot) = (geo.cin, geo.cg(), geo.kg(), geo.ktot());
        let m = rows * geo.ho * geo.wo;
        let x = cx.input(0);
        let dout: &[f32] = cx.dout();
        let dout_g = |g: usize| MatRef::from_slice(&dout[g * cog..], m, cog, cout);
        let dweight_t = cx.grad(0);
        if let Some(g) = self.single {
            // Per fixed chunk of samples a partial sum, then the chunks in order.
            let (per_pad, per_out, per_dt, per_dw) = (g.padded_len(), g.ho * g.wo * cout, g.dout_t_len(), g.kh * g.kw * cout);
            let dw_stride = padded(per_dw);
            let chunks = rows.div_ceil(single::CHUNK);
            let (xpad, dout_t) = (&self.xpad, SharedMut::new(&mut self.dout_t[..chunks * per_dt]));
            let parts = SharedMut::new(&mut self.dw_parts[..chunks * dw_stride]);
            run_parts(chunks, &|k| {
                let (dt, dw) = unsafe { (dout_t.slice(k * per_dt, per_dt), parts.slice(k * dw_stride, per_dw)) };
                dw.fill(0.0);
                for s in k * single::CHUNK..((k + 1) * single::CHUNK).min(rows) {
                    g.transpose_dout(&dout[s * per_out..][..per_out], dt);
                    g.weight_grad(&xpad[s * per_pad..][..per_pad], dt, dw);
                }
            });
            sum_parts(dweight_t, &self.dw_parts[..chunks * dw_stride], dw_stride);
        } else if let Some(im) = self.implicit {
            // dW_ki[kw·C, Cout] = Σ over samples, in order, of A_kiᵀ · dout_wide; each
            // product split by the GEMM over dW's rows (never over the sum).
            let (per_xin, per_wide, per_out) = (im.in_len(&geo), im.wide_len(&geo, cout), geo.ho * geo.wo * cout);
            let kc = geo.kw * geo.cin;
            let wide = &mut self.wide[..per_wide];
            wide.fill(0.0);
            for s in 0..rows {
                for oy in 0..geo.ho {
                    wide[oy * im.wp * cout..][..geo.wo * cout].copy_from_slice(&dout[s * per_out + oy * geo.wo * cout..][..geo.wo * cout]);
                }
                let xs = &self.xin[s * per_xin..(s + 1) * per_xin];
                for ki in 0..geo.kh {
                    let c = MatMut::from_slice(&mut dweight_t[ki * kc * cout..], kc, cout, cout);
                    let b = MatRef::from_slice(wide, geo.ho * im.wp, cout, cout);
                    gemm(1.0, im.a(&geo, xs, ki).t(), b, if s == 0 { 0.0 } else { 1.0 }, c, Epilogue::None);
                }
            }
        } else {
            // dweight_t_g[K, Cout/g] = col_gᵀ[K, m] · dout_g[m, Cout/g]
            let col: &[f32] = if geo.direct() { x } else { &self.col[..m * ktot] };
            for g in 0..geo.groups {
                let a = MatRef::from_slice(&col[g * kg..], m, kg, ktot).t();
                let c = MatMut::from_slice(&mut dweight_t[g * kg * cog..], kg, cog, cog);
                gemm(1.0, a, dout_g(g), 0.0, c, Epilogue::None);
            }
        }
        if self.bias {
            // dbias[Cout] = Σ over the rows·Ho·Wo rows of dout: a partial sum per fixed
            // chunk of samples in parallel, then the chunks in order (same bits for any
            // thread count). Serial, it was ~1 ms per batch for the CNN's second layer.
            let per_out = geo.ho * geo.wo * cout;
            let chunks = rows.div_ceil(single::CHUNK);
            let stride = padded(cout);
            let parts = SharedMut::new(&mut self.db_parts[..chunks * stride]);
            run_parts(chunks, &|k| {
                let db = unsafe { parts.slice(k * stride, cout) };
                let (s0, s1) = (k * single::CHUNK, ((k + 1) * single::CHUNK).min(rows));
                // Summed in registers and written once: the chunks' sums share cache
                // lines, and adding into them row by row from two cores made this loop
                // slower on 2 threads than on 1 (false sharing).
                for c0 in (0..cout).step_by(64) {
                    let n = 64.min(cout - c0);
                    let mut acc = [0f32; 64];
                    for row in dout[s0 * per_out..s1 * per_out].chunks_exact(cout) {
                        acc[..n].iter_mut().zip(&row[c0..c0 + n]).for_each(|(b, &g)| *b += g);
                    }
                    db[c0..c0 + n].copy_from_slice(&acc[..n]);
                }
            });
            let dbias = cx.grad(1);
            sum_parts(dbias, &self.db_parts[..chunks * stride], stride);
        }
        let Some(dx) = cx.dinput(0) else { return };
        let weight_t = cx.param(0);
        if let Some(im) = self.implicit {
            return self.implicit_input_grad(im, cx, dx);
        }
        let w_g_t = |g: usize| MatRef::from_slice(&weight_t[g * kg * cog..], kg, cog, cog).t();
        if geo.direct() {
            // dx_g[m, Cin/g] (+)= dout_g[m, Cout/g] · weight_t_gᵀ[Cout/g, Cin/g], masked if asked.
            let beta = if cx.accumulate(0) { 1.0 } else { 0.0 };
            for g in 0..geo.groups {
                let c = MatMut::from_slice(&mut dx[g * cg..], m, cg, cin);
                let epilogue = if cx.mask_dinput(0) {
                    Epilogue::ReluMask(MatRef::from_slice(&x[g * cg..], m, cg, cin))
                } else {
                    Epilogue::None
                };
                gemm(1.0, dout_g(g), w_g_t(g), beta, c, epilogue);
            }
            return;
        }
        if self.dcol.len() < m * ktot {
            // Once per capacity (the first backward that needs an input gradient).
            self.dcol.resize(self.col_len(self.capacity.max(rows)), 0.0);
        }
        let dcol = &mut self.dcol[..m * ktot];
        for g in 0..geo.groups {
            // dcol_g[m, K] = dout_g[m, Cout/g] · weight_t_gᵀ[Cout/g, K]
            let c = MatMut::from_slice(&mut dcol[g * kg..], m, kg, ktot);
            gemm(1.0, dout_g(g), w_g_t(g), 0.0, c, Epilogue::None);
        }
        let dcol = &*dcol;
        let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
        let (per_in, per_col) = (geo.h * geo.w * cin, geo.ho * geo.wo * ktot);
        let shared = SharedMut::new(dx);
        run_parts(rows, &|s| {
            let dxs = unsafe { shared.slice(s * per_in, per_in) };
            if !accumulate {
                dxs.fill(0.0);
            }
            geo.col2im(&dcol[s * per_col..][..per_col], dxs);
            if mask {
                mask_by_input(dxs, &x[s * per_in..][..per_in]);
            }
        });
    }

    fn clone_box(&self) -> Box<dyn Op> {
        // Scratch is not copied: the clone's model sizes it again in `prepare`.
        Box::new(Conv2d {
            geo: self.geo,
            cout: self.cout,
            bias: self.bias,
            relu: self.relu,
            col: Vec::new(),
            dcol: Vec::new(),
            capacity: 0,
            single: self.single,
            xpad: Vec::new(),
            dout_t: Vec::new(),
            dw_parts: Vec::new(),
            wpad: self.wpad.clone(),
            db_parts: Vec::new(),
            folded: Vec::new(),
            implicit: self.implicit,
            xin: Vec::new(),
            wide: Vec::new(),
            dxin: Vec::new(),
            wflip: Vec::new(),
        })
    }
}

impl Conv2d {
    /// The forward pass with the given weight (internal layout) and bias: the op's own,
    /// or folded with a following BatchNorm (`forward_affine`).
    fn run_forward(&mut self, cx: &Forward, weight_t: &[f32], bias: Option<&[f32]>) {
        let geo = self.geo;
        let (rows, cout, cog) = (cx.rows, self.cout, self.cog());
        let (kg, ktot) = (geo.kg(), geo.ktot());
        let m = rows * geo.ho * geo.wo;
        let x = cx.input(0);
        if let Some(g) = self.single {
            // One sample per part: pad it (kept for backward), then the direct kernel.
            let (per_in, per_pad, per_out) = (g.h * g.w, g.padded_len(), g.ho * g.wo * cout);
            let (xpad, out) = (SharedMut::new(&mut self.xpad[..rows * per_pad]), SharedMut::new(cx.output()));
            if self.wpad.len() != g.wpad_len() {
                self.wpad = vec![0.0; g.wpad_len()];
            }
            g.pad_weight(weight_t, &mut self.wpad);
            let wpad = &self.wpad;
            let relu = self.relu;
            run_parts(rows, &|s| {
                let (xp, o) = unsafe { (xpad.slice(s * per_pad, per_pad), out.slice(s * per_out, per_out)) };
                g.pad(&x[s * per_in..][..per_in], xp);
                g.forward(xp, wpad, bias, relu, o);
            });
            return;
        }
        if let Some(im) = self.implicit {
            // One sample per part, each part's products on its own thread (no nested
            // fork-join; each output element is computed by one thread, in one order).
            let (per_in, per_xin, per_wide, per_out) = (geo.h * geo.w * geo.cin, im.in_len(&geo), im.wide_len(&geo, cout), geo.ho * geo.wo * cout);
            let (xin, wide, out) = (SharedMut::new(&mut self.xin[..rows * per_xin]), SharedMut::new(&mut self.wide[..rows * per_wide]), SharedMut::new(cx.output()));
            let relu = self.relu;
            let kernel = crate::gemm::selected();
            run_parts(rows, &|s| {
                let (xs, ws, os) = unsafe { (xin.slice(s * per_xin, per_xin), wide.slice(s * per_wide, per_wide), out.slice(s * per_out, per_out)) };
                im.pad(&geo, &x[s * per_in..][..per_in], xs);
                let kc = geo.kw * geo.cin;
                for ki in 0..geo.kh {
                    // out_wide (+)= A_ki · W_ki, with the bias (and ReLU) on the last.
                    let last = ki + 1 == geo.kh;
                    let epilogue = match (bias, relu, last) {
                        (Some(b), false, true) => Epilogue::Bias(b),
                        (Some(b), true, true) => Epilogue::BiasRelu(b),
                        _ => Epilogue::None,
                    };
                    let b = MatRef::from_slice(&weight_t[ki * kc * cout..], kc, cout, cout);
                    let c = MatMut::from_slice(ws, geo.ho * im.wp, cout, cout);
                    crate::gemm::gemm_with(kernel, false, 1.0, im.a(&geo, xs, ki), b, if ki == 0 { 0.0 } else { 1.0 }, c, epilogue);
                }
                for oy in 0..geo.ho {
                    os[oy * geo.wo * cout..(oy + 1) * geo.wo * cout].copy_from_slice(&ws[oy * im.wp * cout..][..geo.wo * cout]);
                }
            });
            return;
        }
        let col: &[f32] = if geo.direct() {
            x
        } else {
            // col[rows·Ho·Wo, g·K], one sample per part.
            let (per_in, per_col) = (geo.h * geo.w * geo.cin, geo.ho * geo.wo * ktot);
            let shared = SharedMut::new(&mut self.col[..m * ktot]);
            run_parts(rows, &|s| {
                let dst = unsafe { shared.slice(s * per_col, per_col) };
                geo.im2col(&x[s * per_in..][..per_in], dst);
            });
            &self.col[..m * ktot]
        };
        let out = cx.output();
        for g in 0..geo.groups {
            // out_g[m, Cout/g] = col_g[m, K] · weight_t_g[K, Cout/g] (+ bias_g, ReLU)
            let a = MatRef::from_slice(&col[g * kg..], m, kg, ktot);
            let b = MatRef::from_slice(&weight_t[g * kg * cog..], kg, cog, cog);
            let c = MatMut::from_slice(&mut out[g * cog..], m, cog, cout);
            let epilogue = match (bias, self.relu) {
                (Some(b), false) => Epilogue::Bias(&b[g * cog..(g + 1) * cog]),
                (Some(b), true) => Epilogue::BiasRelu(&b[g * cog..(g + 1) * cog]),
                (None, _) => Epilogue::None,
            };
            gemm(1.0, a, b, 0.0, c, epilogue);
        }
    }


    /// The input gradient of the implicit route, itself an implicit GEMM: the stride-1
    /// input gradient is a "valid" correlation of dout, zero-padded by kernel − 1 on each
    /// side, with the kernel flipped and its channels swapped:
    ///   dx_p[yp, xp, ci] = Σ_{a,b,co} dpad[yp + a, xp + b, co] · w[kh−1−a, kw−1−b, ci, co]
    /// over the padded input grid, computed at dpad's width (the last kw − 1 columns of
    /// each row dropped), one sample per part. It replaces a column gradient as large as
    /// the column matrix and its scatter (col2im).
    fn implicit_input_grad(&mut self, im: Implicit, cx: &Backward, dx: &mut [f32]) {
        let (g, cout, rows) = (self.geo, self.cout, cx.rows);
        let (cin, kh, kw) = (g.cin, g.kh, g.kw);
        let (hd, wd) = (g.ho + 2 * (kh - 1), g.wo + 2 * (kw - 1));
        let (per_dpad, per_dxw) = ((hd * wd + kw) * cout, im.hp * wd * cin);
        if self.dxin.len() < rows * (per_dpad + per_dxw) {
            // Once per capacity: the first backward that needs this input gradient.
            self.dxin.resize(self.capacity.max(rows) * (per_dpad + per_dxw), 0.0);
        }
        // wflip[a][b·Cout + co][ci] = weight_t[((kh−1−a)·kw + (kw−1−b))·Cin + ci][co]
        let weight_t = cx.param(0);
        let kq = kw * cout;
        self.wflip.resize(kh * kq * cin, 0.0);
        for a in 0..kh {
            for b in 0..kw {
                for co in 0..cout {
                    for ci in 0..cin {
                        self.wflip[(a * kq + b * cout + co) * cin + ci] = weight_t[(((kh - 1 - a) * kw + (kw - 1 - b)) * cin + ci) * cout + co];
                    }
                }
            }
        }
        let (dout, x) = (&*cx.dout(), cx.input(0));
        let (accumulate, mask) = (cx.accumulate(0), cx.mask_dinput(0));
        let (per_out, per_in) = (g.ho * g.wo * cout, g.h * g.w * cin);
        let wflip = &self.wflip;
        let (scratch, dxs) = (SharedMut::new(&mut self.dxin[..rows * (per_dpad + per_dxw)]), SharedMut::new(dx));
        let kernel = crate::gemm::selected();
        run_parts(rows, &|s| {
            let buf = unsafe { scratch.slice(s * (per_dpad + per_dxw), per_dpad + per_dxw) };
            let (dpad, dxw) = buf.split_at_mut(per_dpad);
            dpad.fill(0.0);
            for oy in 0..g.ho {
                let at = ((oy + kh - 1) * wd + kw - 1) * cout;
                dpad[at..at + g.wo * cout].copy_from_slice(&dout[s * per_out + oy * g.wo * cout..][..g.wo * cout]);
            }
            for a in 0..kh {
                let am = MatRef::from_slice(&dpad[a * wd * cout..], im.hp * wd, kq, cout);
                let bm = MatRef::from_slice(&wflip[a * kq * cin..], kq, cin, cin);
                let cm = MatMut::from_slice(dxw, im.hp * wd, cin, cin);
                crate::gemm::gemm_with(kernel, false, 1.0, am, bm, if a == 0 { 0.0 } else { 1.0 }, cm, Epilogue::None);
            }
            let d = unsafe { dxs.slice(s * per_in, per_in) };
            let xs = &x[s * per_in..][..per_in];
            for y in 0..g.h {
                let src = &dxw[((y + g.ph) * wd + g.pw) * cin..][..g.w * cin];
                let dst = &mut d[y * g.w * cin..(y + 1) * g.w * cin];
                write_grad(dst, src, accumulate);
                if mask {
                    mask_by_input(dst, &xs[y * g.w * cin..(y + 1) * g.w * cin]);
                }
            }
        });
    }

    /// torch [Cout, Cin/g, kh, kw] ⇄ internal [g][(ki·kw + kj)·Cin/g + c][Cout/g].
    /// Calls f(torch index, internal index) for every weight element.
    fn for_each_weight(&self, mut f: impl FnMut(usize, usize)) {
        let g = &self.geo;
        let (cg, cog, kg, kh, kw) = (g.cg(), self.cog(), g.kg(), g.kh, g.kw);
        for o in 0..self.cout {
            let (grp, oo) = (o / cog, o % cog);
            for c in 0..cg {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let t = ((o * cg + c) * kh + ki) * kw + kj;
                        let i = grp * kg * cog + ((ki * kw + kj) * cg + c) * cog + oo;
                        f(t, i);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{assert_gradients, fanout_spec, forward_logical, sequential_spec, GradCheck};
    use serde_json::json;

    fn conv(config: serde_json::Value) -> (&'static str, serde_json::Value) {
        ("Conv2d", config)
    }

    #[test]
    fn forward_by_hand_two_channels() {
        // x0 = 1..9 (3×3), x1 = 10·x0; weight ch0 [[1,0],[0,-1]], ch1 [[0,2],[0,0]], bias 0.5:
        // out[i,j] = x0[i,j] − x0[i+1,j+1] + 2·x1[i,j+1] + 0.5 = −4 + 20·x0[i,j+1] + 0.5.
        let spec = sequential_spec(&[2, 3, 3], &[conv(json!({ "outChannels": 1, "kernelSize": 2 }))]);
        let x0: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let x: Vec<f32> = x0.iter().copied().chain(x0.iter().map(|v| 10.0 * v)).collect();
        let weight = [1.0, 0.0, 0.0, -1.0, 0.0, 2.0, 0.0, 0.0];
        let out = forward_logical(&spec, &[("0.weight", &weight), ("0.bias", &[0.5])], 1, &x);
        assert_eq!(out, vec![36.5, 56.5, 96.5, 116.5]);
    }

    #[test]
    fn forward_by_hand_dilation_padding_and_channels_last_output() {
        // x = [[1,2],[3,4]], kernel 2 dilated 2, padding 1: each output sees one input pixel.
        let spec = sequential_spec(
            &[1, 2, 2],
            &[conv(json!({ "outChannels": 2, "kernelSize": 2, "dilation": 2, "padding": 1, "bias": false }))],
        );
        let weight = [1.0, 2.0, 3.0, 4.0, -1.0, -1.0, -1.0, -1.0];
        let out = forward_logical(&spec, &[("0.weight", &weight)], 1, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(out, vec![16.0, 9.0, 4.0, 1.0, -4.0, -3.0, -2.0, -1.0]);
        // Stride 2, padding 1, kernel 3 of ones on 1..16 (4×4): windows at -1 and 1.
        let spec = sequential_spec(
            &[1, 4, 4],
            &[conv(json!({ "outChannels": 1, "kernelSize": 3, "stride": 2, "padding": 1, "bias": false }))],
        );
        let x: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let out = forward_logical(&spec, &[("0.weight", &[1.0; 9])], 1, &x);
        // (0,0): rows 0..2 cols 0..2 = 1+2+5+6; (0,1): rows 0..2 cols 1..4 = 2+3+4+6+7+8; ...
        assert_eq!(out, vec![14.0, 30.0, 57.0, 99.0]);
    }

    #[test]
    fn grouped_weights_round_trip_through_the_internal_layout() {
        let spec = sequential_spec(&[4, 5, 5], &[conv(json!({ "outChannels": 6, "kernelSize": [3, 2], "groups": 2 }))]);
        let mut model = Model::from_json(&spec, 0).unwrap();
        let w: Vec<f32> = (0..6 * 2 * 3 * 2).map(|v| v as f32).collect();
        model.set_param_by_name("0.weight", &w).unwrap();
        assert_eq!(model.params()[0].data, w);
        assert_eq!(model.params()[0].shape, vec![6, 2, 3, 2]);
        assert_eq!(model.output_shape(), &[6, 3, 4]);
    }

    #[test]
    fn gradients_over_configs() {
        let configs = [
            (vec![2, 5, 5], json!({ "outChannels": 3, "kernelSize": 3 })),
            (vec![2, 6, 5], json!({ "outChannels": 3, "kernelSize": 3, "stride": 2, "padding": 1 })),
            (vec![3, 7, 7], json!({ "outChannels": 2, "kernelSize": 3, "dilation": 2 })),
            (vec![2, 6, 6], json!({ "outChannels": 2, "kernelSize": 2, "dilation": [2, 1], "padding": [1, 0] })),
            (vec![4, 5, 5], json!({ "outChannels": 6, "kernelSize": 3, "groups": 2, "padding": 1 })),
            (vec![2, 5, 5], json!({ "outChannels": 3, "kernelSize": 3, "bias": false })),
            (vec![2, 6, 5], json!({ "outChannels": 3, "kernelSize": [3, 2], "stride": [2, 1] })),
            (vec![3, 4, 4], json!({ "outChannels": 5, "kernelSize": 1 })),
            (vec![4, 4, 4], json!({ "outChannels": 6, "kernelSize": 1, "groups": 2 })),
            (vec![3, 5, 5], json!({ "outChannels": 2, "kernelSize": 1, "stride": 2 })),
            (vec![1, 6, 6], json!({ "outChannels": 2, "kernelSize": 5, "padding": 2 })),
        ];
        for (shape, config) in configs {
            assert_gradients(&sequential_spec(&shape, &[conv(config)]), &GradCheck::default());
        }
    }

    #[test]
    fn gradients_accumulate_over_fan_out() {
        for config in [
            json!({ "outChannels": 2, "kernelSize": 3, "padding": 1 }),
            json!({ "outChannels": 2, "kernelSize": 1 }),
        ] {
            let spec = fanout_spec(&[2, 4, 4], conv(json!({ "outChannels": 3, "kernelSize": 1 })), conv(config));
            assert_gradients(&spec, &GradCheck::default());
        }
    }

    #[test]
    fn relu_fuses_and_its_mask_rides_on_the_next_op() {
        let h = GradCheck { h: 1e-3, ..GradCheck::default() };
        let relu = ("ReLU", serde_json::Value::Null);
        type Chain<'a> = (Vec<usize>, Vec<(&'a str, serde_json::Value)>, Vec<&'a str>);
        let chains: Vec<Chain> = vec![
            (
                vec![2, 6, 6],
                vec![
                    conv(json!({ "outChannels": 3, "kernelSize": 3, "padding": 1 })),
                    relu.clone(),
                    ("MaxPool2d", json!({ "kernelSize": 2 })),
                    ("Flatten", serde_json::Value::Null),
                    ("Linear", json!({ "outFeatures": 4 })),
                ],
                vec!["0:Conv2d+ReLU", "2:MaxPool2d", "3:Flatten", "4:Linear"],
            ),
            (
                vec![2, 5, 5],
                vec![
                    conv(json!({ "outChannels": 4, "kernelSize": 3, "padding": 1 })),
                    relu.clone(),
                    conv(json!({ "outChannels": 3, "kernelSize": 3, "stride": 2 })),
                    relu.clone(),
                    conv(json!({ "outChannels": 2, "kernelSize": 1 })),
                    relu.clone(),
                ],
                vec!["0:Conv2d+ReLU", "2:Conv2d+ReLU", "4:Conv2d+ReLU"],
            ),
            (
                vec![3, 4, 4],
                vec![
                    conv(json!({ "outChannels": 4, "kernelSize": 3, "padding": 1 })),
                    relu.clone(),
                    ("AvgPool2d", json!({ "kernelSize": 3, "stride": 1, "padding": 1 })),
                    ("AdaptiveAvgPool2d", json!({ "outputSize": 3 })),
                    ("Flatten", serde_json::Value::Null),
                ],
                vec!["0:Conv2d+ReLU", "2:AvgPool2d", "3:AdaptiveAvgPool2d", "4:Flatten"],
            ),
            (
                vec![3, 4, 4],
                vec![
                    conv(json!({ "outChannels": 4, "kernelSize": 2 })),
                    relu.clone(),
                    ("Flatten", serde_json::Value::Null),
                    ("Linear", json!({ "outFeatures": 3 })),
                ],
                vec!["0:Conv2d+ReLU", "2:Flatten", "3:Linear"],
            ),
        ];
        for (shape, layers, summary) in chains {
            let spec = sequential_spec(&shape, &layers);
            assert_eq!(Model::from_json(&spec, 1).unwrap().plan_summary(), summary);
            assert_gradients(&spec, &h);
        }
        // Without a bias the ReLU stays a node of its own.
        let spec = sequential_spec(&[2, 4, 4], &[conv(json!({ "outChannels": 2, "kernelSize": 3, "bias": false })), relu]);
        assert_eq!(Model::from_json(&spec, 1).unwrap().plan_summary(), vec!["0:Conv2d", "1:ReLU"]);
        assert_gradients(&spec, &h);
    }

    #[test]
    fn errors_name_the_node_and_shapes() {
        let err = |shape: &[usize], config: serde_json::Value| {
            let spec = sequential_spec(shape, &[conv(config)]);
            Model::from_json(&spec, 0).unwrap_err().to_string()
        };
        let e = err(&[1, 4, 4], json!({ "outChannels": 2, "kernelSize": 5 }));
        assert!(e.contains("0 (Conv2d): kernel 5 with padding 0 does not fit input 4×4"), "{e}");
        let e = err(&[6, 8, 8], json!({ "outChannels": 4, "kernelSize": 3, "groups": 4 }));
        assert!(e.contains("groups 4, which does not divide its 6 input channels"), "{e}");
        let e = err(&[4, 8, 8], json!({ "outChannels": 6, "kernelSize": 3, "groups": 4 }));
        assert!(e.contains("does not divide its 6 output channels"), "{e}");
        let spec = sequential_spec(&[16], &[conv(json!({ "outChannels": 2, "kernelSize": 3 }))]);
        let e = Model::from_json(&spec, 0).unwrap_err().to_string();
        assert!(e.contains("takes [channels, height, width] per sample, got input shape [16]"), "{e}");
        let e = err(&[1, 8, 8], json!({ "outChannels": 2, "kernelSize": 3, "strides": 2 }));
        assert!(e.contains("unknown field `strides`"), "{e}");
        let e = err(&[1, 8, 8], json!({ "outChannels": 2 }));
        assert!(e.contains("0 (Conv2d): missing field `kernelSize`"), "{e}");
    }

    /// Forward output, every gradient and the input gradient, as bits.
    fn run_bits(spec: &str, threads: usize, in_team: bool) -> Vec<Vec<u32>> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let body = || {
                let mut model = Model::from_json(spec, 3).unwrap();
                model.set_input_grad(true);
                let rows = 9;
                let x: Vec<f32> = (0..rows * model.input_dim()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
                model.input_buffer(rows).copy_from_slice(&x);
                let mut bits = vec![model.forward(rows).iter().map(|v| v.to_bits()).collect::<Vec<_>>()];
                let g: Vec<f32> = (0..rows * model.output_dim()).map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0).collect();
                model.output_grad_buffer(rows).copy_from_slice(&g);
                model.backward(rows);
                bits.push(model.input_grad(rows).unwrap().iter().map(|v| v.to_bits()).collect());
                for p in model.grads() {
                    bits.push(p.data.iter().map(|v| v.to_bits()).collect());
                }
                bits
            };
            if in_team {
                crate::team::with_team(body)
            } else {
                body()
            }
        })
    }

    /// Not a benchmark: a rough per-step time of LeNet-5's and a 32/64-channel CNN's
    /// convolution stacks, for looking at (cargo test ... timing -- --ignored --nocapture).
    #[test]
    #[ignore]
    fn timing() {
        let relu = ("ReLU", serde_json::Value::Null);
        let lenet = sequential_spec(
            &[1, 28, 28],
            &[
                conv(json!({ "outChannels": 6, "kernelSize": 5, "padding": 2 })),
                relu.clone(),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                conv(json!({ "outChannels": 16, "kernelSize": 5 })),
                relu.clone(),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                ("Flatten", serde_json::Value::Null),
                ("Linear", json!({ "outFeatures": 120 })),
                relu.clone(),
                ("Linear", json!({ "outFeatures": 84 })),
                relu.clone(),
                ("Linear", json!({ "outFeatures": 10 })),
            ],
        );
        let cnn = sequential_spec(
            &[1, 28, 28],
            &[
                conv(json!({ "outChannels": 32, "kernelSize": 3, "padding": 1 })),
                relu.clone(),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                conv(json!({ "outChannels": 64, "kernelSize": 3, "padding": 1 })),
                relu.clone(),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                ("Flatten", serde_json::Value::Null),
                ("Linear", json!({ "outFeatures": 128 })),
                relu.clone(),
                ("Linear", json!({ "outFeatures": 10 })),
            ],
        );
        for (what, spec) in [("lenet", lenet), ("cnn", cnn)] {
            let mut model = Model::from_json(&spec, 1).unwrap();
            let rows = 64;
            let x: Vec<f32> = (0..rows * 784).map(|i| (i % 255) as f32 / 255.0).collect();
            model.input_buffer(rows).copy_from_slice(&x);
            let g = vec![0.01; rows * 10];
            let steps = 20;
            let mut t = [std::time::Duration::ZERO; 2];
            for step in 0..steps + 2 {
                let t0 = std::time::Instant::now();
                model.forward(rows);
                let t1 = std::time::Instant::now();
                model.output_grad_buffer(rows).copy_from_slice(&g);
                model.backward(rows);
                if step >= 2 {
                    t[0] += t1 - t0;
                    t[1] += t1.elapsed();
                }
            }
            println!("{what}: forward {:?}, backward {:?} per batch of {rows}", t[0] / steps, t[1] / steps);
        }
    }

    /// FORCE_IM2COL is global: the tests that build implicit-route models take turns.
    static ROUTE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn bit_identical_for_one_and_two_threads() {
        let _route = ROUTE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // Large enough that the GEMMs split (≥ 2^20 multiply-adds outside a team).
        let spec = sequential_spec(
            &[8, 18, 18],
            &[
                conv(json!({ "outChannels": 16, "kernelSize": 3, "padding": 1 })),
                ("ReLU", serde_json::Value::Null),
                conv(json!({ "outChannels": 12, "kernelSize": 3, "stride": 2, "groups": 2 })),
                ("ReLU", serde_json::Value::Null),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                conv(json!({ "outChannels": 8, "kernelSize": 1 })),
                ("Flatten", serde_json::Value::Null),
                ("Linear", json!({ "outFeatures": 5 })),
            ],
        );
        let one = run_bits(&spec, 1, false);
        assert_eq!(one, run_bits(&spec, 2, false));
        assert_eq!(one, run_bits(&spec, 2, true));
        // The single-channel route (direct kernels, chunked weight and bias sums) and
        // a max-pool whose backward finds its sources again, as LeNet-5 starts.
        let lenet_like = sequential_spec(
            &[1, 28, 28],
            &[
                conv(json!({ "outChannels": 6, "kernelSize": 5, "padding": 2 })),
                ("ReLU", serde_json::Value::Null),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                conv(json!({ "outChannels": 16, "kernelSize": 5 })),
                ("ReLU", serde_json::Value::Null),
                ("MaxPool2d", json!({ "kernelSize": 2 })),
                ("Flatten", serde_json::Value::Null),
                ("Linear", json!({ "outFeatures": 10 })),
            ],
        );
        let one = run_bits(&lenet_like, 1, false);
        assert_eq!(one, run_bits(&lenet_like, 2, false));
        assert_eq!(one, run_bits(&lenet_like, 2, true));
        let one = run_bits(&implicit_spec(1), 1, false);
        assert_eq!(one, run_bits(&implicit_spec(1), 2, false));
        assert_eq!(one, run_bits(&implicit_spec(1), 2, true));
    }

    /// A convolution large enough for the implicit route (and one with padding 0),
    /// with its fused ReLU.
    fn implicit_spec(padding: usize) -> String {
        implicit_spec_with(padding, "ReLU")
    }

    fn implicit_spec_with(padding: usize, activation: &str) -> String {
        // Two convolutions on the implicit route, the second reading the first's
        // (fused) activation: its input gradient carries the ReLU mask.
        sequential_spec(
            &[48, 12, 20],
            &[
                conv(json!({ "outChannels": 48, "kernelSize": 3, "padding": padding })),
                (activation, serde_json::Value::Null),
                conv(json!({ "outChannels": 64, "kernelSize": 3, "padding": padding })),
                (activation, serde_json::Value::Null),
                conv(json!({ "outChannels": 4, "kernelSize": 3 })),
                ("Flatten", serde_json::Value::Null),
                ("Linear", json!({ "outFeatures": 3 })),
            ],
        )
    }

    /// The implicit route gives what im2col + GEMM gives (output, input gradient, every
    /// parameter gradient: same math, other summation order), and its gradients match
    /// finite differences.
    #[test]
    fn implicit_route_matches_im2col_and_finite_differences() {
        use std::sync::atomic::Ordering;
        let _route = ROUTE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        super::FORCE_IMPLICIT.store(false, Ordering::Relaxed);
        for padding in [1, 0] {
            let spec = implicit_spec(padding);
            let m = Model::from_json(&spec, 3).unwrap();
            assert!(m.input_dim() > 0);
            let implicit = run_bits(&spec, 1, false);
            super::FORCE_IM2COL.store(true, Ordering::Relaxed);
            let im2col = run_bits(&spec, 1, false);
            super::FORCE_IM2COL.store(false, Ordering::Relaxed);
            for (k, (a, b)) in implicit.iter().zip(&im2col).enumerate() {
                let (a, b): (Vec<f32>, Vec<f32>) = (a.iter().map(|&v| f32::from_bits(v)).collect(), b.iter().map(|&v| f32::from_bits(v)).collect());
                let max = b.iter().fold(0f32, |m, &v| m.max(v.abs()));
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() <= 2e-5 * max.max(1e-3), "padding {padding}, tensor {k}: implicit {x} vs im2col {y}");
                }
            }
            // Different summation orders: the two routes really are different code.
            assert_ne!(implicit, im2col, "padding {padding}: the implicit route did not run");
        }
        // Small convolutions forced onto the implicit route: against im2col again (the
        // second one reads the first's fused ReLU: its input gradient carries the mask),
        // and against finite differences (at the sizes that take the route naturally,
        // f32 rounding of the objective swamps them).
        super::FORCE_IMPLICIT.store(true, Ordering::Relaxed);
        for (padding, k) in [(1, 3), (0, 3), (2, 5)] {
            let spec = sequential_spec(
                &[3, 7, 9],
                &[
                    conv(json!({ "outChannels": 4, "kernelSize": k, "padding": padding })),
                    ("ReLU", serde_json::Value::Null),
                    conv(json!({ "outChannels": 5, "kernelSize": 3, "padding": 1 })),
                    ("Flatten", serde_json::Value::Null),
                    ("Linear", json!({ "outFeatures": 3 })),
                ],
            );
            let implicit = run_bits(&spec, 1, false);
            super::FORCE_IMPLICIT.store(false, Ordering::Relaxed);
            super::FORCE_IM2COL.store(true, Ordering::Relaxed);
            let im2col = run_bits(&spec, 1, false);
            super::FORCE_IM2COL.store(false, Ordering::Relaxed);
            for (t, (a, b)) in implicit.iter().zip(&im2col).enumerate() {
                let (a, b): (Vec<f32>, Vec<f32>) = (a.iter().map(|&v| f32::from_bits(v)).collect(), b.iter().map(|&v| f32::from_bits(v)).collect());
                let max = b.iter().fold(0f32, |m, &v| m.max(v.abs()));
                for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                    assert!((x - y).abs() <= 2e-5 * max.max(1e-3), "small k{k} p{padding}, tensor {t}[{i}]: implicit {x} vs im2col {y}");
                }
            }
            // Finite differences through Tanh (a bias or weight of the first layer moves
            // every pixel of its channel across the ReLU's kink at once).
            super::FORCE_IMPLICIT.store(true, Ordering::Relaxed);
            assert_gradients(&spec.replace("\"ReLU\"", "\"Tanh\""), &GradCheck::default());
        }
        super::FORCE_IMPLICIT.store(false, Ordering::Relaxed);
    }
}
