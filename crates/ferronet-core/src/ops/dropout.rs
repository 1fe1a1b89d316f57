//! `Dropout`: PyTorch's `nn.Dropout` (inverted: kept values are scaled by 1/(1 − p)
//! in training, so eval mode is the identity).
//!
//! The mask is counter-based: element i of the batch is kept when
//! hash(cx.seed, i) (a SplitMix64 finaliser, top 32 bits) < (1 − p)·2³². It depends
//! only on the node's per-step seed and the element's index, never on the thread
//! count: the batch is filled in fixed chunks of `CHUNK` elements, in parallel with
//! `team::run_parts`. Forward keeps the per-element factor (0 or 1/(1 − p)) for the
//! backward: dinp = dout · factor.

use super::config::parse;
use super::{expect_inputs, Backward, Forward, Mode, Op};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    #[serde(default = "default_p")]
    pub p: f64,
}

fn default_p() -> f64 {
    0.5
}

/// Elements per parallel part: fixed, so the split never depends on the thread count
/// (and the mask would not either, even if it did).
pub const CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Dropout {
    shape: Vec<usize>,
    size: usize,
    p: f64,
    /// Keep when the 32-bit draw is below this; (1 − p)·2³².
    threshold: u64,
    scale: f32,
    /// Per element of the last training forward: 0 or `scale`.
    factor: Vec<f32>,
    /// Whether the last forward dropped anything (train mode with p > 0).
    masked: bool,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    expect_inputs(name, "Dropout", inputs, 1)?;
    let c: DropoutConfig = parse(name, "Dropout", config)?;
    if !(0.0..1.0).contains(&c.p) {
        return Err(Error::config(
            &format!("nodes[{name}].config.p"),
            format!("{name} (Dropout): p must be in [0, 1), got {}", c.p),
        ));
    }
    Ok(Box::new(Dropout {
        shape: inputs[0].clone(),
        size: super::numel(&inputs[0]),
        p: c.p,
        threshold: ((1.0 - c.p) * 4294967296.0) as u64,
        scale: (1.0 / (1.0 - c.p)) as f32,
        factor: Vec::new(),
        masked: false,
    }))
}

/// A uniform u32 for element `index` of the stream `seed`: MurmurHash3's 32-bit
/// finaliser over (index + 1)·γ xor the seed's mix. 32-bit multiplies vectorise on
/// AVX2 and AVX-512 (SplitMix64's 64-bit ones did not: dropout's mask cost 1.6 ns per
/// element, 4% of an epoch of the CNN).
#[inline(always)]
pub fn draw(seed: u32, index: u32) -> u32 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9E37_79B9) ^ seed;
    z ^= z >> 16;
    z = z.wrapping_mul(0x85EB_CA6B);
    z ^= z >> 13;
    z = z.wrapping_mul(0xC2B2_AE35);
    z ^ (z >> 16)
}

/// The 64-bit per-node, per-step seed folded to the 32 bits `draw` takes.
pub fn seed32(seed: u64) -> u32 {
    let z = (seed ^ (seed >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    (z ^ (z >> 33)) as u32
}

crate::optim::tensors::multiversion! {
    fn mask_chunk(y: &mut [f32], f: &mut [f32], x: &[f32], seed: u32, start: u32, threshold: u32, scale: f32) {
        for (k, ((y, f), &x)) in y.iter_mut().zip(f.iter_mut()).zip(x).enumerate() {
            let keep = draw(seed, start.wrapping_add(k as u32)) < threshold;
            *f = if keep { scale } else { 0.0 };
            *y = x * *f;
        }
    }
}

/// Raw pointers handed to the parallel parts (each writes its own chunk).
#[derive(Clone, Copy)]
struct Ptr(*mut f32);
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}
impl Ptr {
    /// # Safety
    /// `start + len` is within the buffer and no other part touches the range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

impl Op for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn prepare(&mut self, capacity: usize) {
        if self.p > 0.0 {
            self.factor = vec![0.0; capacity * self.size];
        }
    }

    fn forward(&mut self, cx: &Forward) {
        let (x, y) = (cx.input(0), cx.output());
        self.masked = cx.mode == Mode::Train && self.p > 0.0;
        if !self.masked {
            y.copy_from_slice(x);
            return;
        }
        // factor[i] = draw(seed, i) < threshold ? scale : 0;  y[i] = x[i]·factor[i]
        let n = x.len();
        // (1 − p)·2³² rounds to 2³² only for p < 2⁻³³: then keep all but 1 in 2³².
        let (seed, threshold, scale) = (seed32(cx.seed), self.threshold.min(u32::MAX as u64) as u32, self.scale);
        let (yp, fp) = (Ptr(y.as_mut_ptr()), Ptr(self.factor.as_mut_ptr()));
        crate::team::run_parts(n.div_ceil(CHUNK), &|part| {
            let start = part * CHUNK;
            let len = CHUNK.min(n - start);
            // Safety: parts cover disjoint ranges of y and factor, both at least n long.
            let (y, f) = unsafe { (yp.slice(start, len), fp.slice(start, len)) };
            mask_chunk(y, f, &x[start..start + len], seed, start as u32, threshold, scale);
        });
    }

    fn backward(&mut self, cx: &Backward) {
        let Some(dx) = cx.dinput(0) else { return };
        let dy = &*cx.dout();
        match (self.masked, cx.accumulate(0)) {
            (false, false) => dx.copy_from_slice(dy),
            (false, true) => dx.iter_mut().zip(dy).for_each(|(d, &g)| *d += g),
            (true, false) => dx.iter_mut().zip(dy).zip(&self.factor).for_each(|((d, &g), &f)| *d = g * f),
            (true, true) => dx.iter_mut().zip(dy).zip(&self.factor).for_each(|((d, &g), &f)| *d += g * f),
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

    fn model(shape: &[usize], p: f64) -> Model {
        Model::from_json(&GraphSpec::sequential(shape, &[("Dropout", json!({ "p": p }))]).to_json(), 3).unwrap()
    }

    fn run(m: &mut Model, x: &[f32], rows: usize) -> Vec<f32> {
        m.input_buffer(rows).copy_from_slice(x);
        m.forward(rows).to_vec()
    }

    #[test]
    fn kept_fraction_and_exact_scaling() {
        let (rows, f) = (100, 1000); // 10⁵ elements, several chunks
        let x: Vec<f32> = (0..rows * f).map(|i| 0.5 + (i % 97) as f32 * 0.01).collect();
        for p in [0.1, 0.5, 0.8] {
            let mut m = model(&[f], p);
            let y = run(&mut m, &x, rows);
            let scale = (1.0 / (1.0 - p)) as f32;
            let mut kept = 0usize;
            for (&a, &b) in y.iter().zip(&x) {
                if a != 0.0 {
                    assert_eq!(a, b * scale, "kept values are scaled exactly");
                    kept += 1;
                }
            }
            let n = x.len() as f64;
            let sd = (n * p * (1.0 - p)).sqrt();
            let dev = (kept as f64 - n * (1.0 - p)).abs();
            assert!(dev < 5.0 * sd, "p = {p}: kept {kept} of {n}, expected {} ± {sd}", n * (1.0 - p));
        }
    }

    #[test]
    fn eval_and_p_zero_are_the_identity() {
        let x: Vec<f32> = (0..60).map(|i| i as f32 - 30.5).collect();
        let mut m = model(&[3, 4, 5], 0.5);
        m.set_mode(Mode::Eval);
        assert_eq!(run(&mut m, &x, 1), x);
        let mut m = model(&[6], 0.0);
        assert_eq!(run(&mut m, &x, 10), x);
    }

    #[test]
    fn masks_repeat_for_any_thread_count_and_change_per_step() {
        let (rows, f) = (8, 5000); // 40 000 elements: 3 chunks
        let x = vec![1.0f32; rows * f];
        let base = model(&[f], 0.5);
        let with = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut m = base.clone();
            let x = &x;
            pool.install(move || {
                (run(&mut m, x, rows), run(&mut m, x, rows))
            })
        };
        let (one_a, one_b) = with(1);
        let (two_a, two_b) = with(2);
        assert_eq!(one_a, two_a);
        assert_eq!(one_b, two_b);
        assert_ne!(one_a, one_b, "step 2 draws another mask");
        // Inside a spinning team as well.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let mut m = base.clone();
        let team_a = pool.install(|| crate::team::with_team(|| run(&mut m, &x, rows)));
        assert_eq!(one_a, team_a);
    }

    #[test]
    fn gradients_in_train_and_eval_mode() {
        let s = GraphSpec::sequential(&[4], &[("Linear", json!({ "outFeatures": 6 })), ("Dropout", json!({ "p": 0.4 })), ("Linear", json!({ "outFeatures": 3 }))]).to_json();
        for mode in [Mode::Train, Mode::Eval] {
            check_gradients(&s, &GradCheck { batch: 4, mode, ..Default::default() }).unwrap();
        }
        let s = GraphSpec::sequential(&[2, 3, 3], &[("Dropout", json!({}))]).to_json();
        check_gradients(&s, &GradCheck { mode: Mode::Train, ..Default::default() }).unwrap();
    }

    #[test]
    fn p_out_of_range_is_named() {
        for p in [1.0, -0.1, 1.5] {
            let e = Model::from_json(&GraphSpec::sequential(&[3], &[("Dropout", json!({ "p": p }))]).to_json(), 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("config.p") && e.contains("[0, 1)"), "{e}");
        }
    }
}
