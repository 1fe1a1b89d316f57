//! `Reparameterize`: a VAE's sampling step, z = mean + exp(0.5·logvar)·ε with
//! ε ~ N(0, 1), differentiable in mean and logvar (Kingma & Welling's trick).
//!
//! Inputs [mean, logvar], both [Z]; output z [Z]. ε is counter-based like Dropout's
//! mask: element i of the batch takes two uniforms draw(seed, 2i), draw(seed, 2i + 1)
//! from the node's per-step seed (`cx.seed`) and turns them into one normal by
//! Box–Muller, so ε depends only on (seed, node, step, i), never on the thread count.
//! Forward keeps ε for the backward:
//!   dmean   = dz
//!   dlogvar = dz·ε·0.5·exp(0.5·logvar)
//! In eval mode the output is the mean (the most likely code), unless `sampleInEval`
//! (as PyTorch's examples/vae, which samples in test too). Evaluation does not advance
//! the step counter, so every eval batch at one training step draws the same ε per row.

use super::config::parse;
use super::dropout::{draw, seed32};
use super::{Backward, Forward, Mode, Op};
use crate::error::{Error, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReparameterizeConfig {
    /// Draw z in eval mode too (default false: eval outputs the mean).
    #[serde(default)]
    pub sample_in_eval: bool,
}

#[derive(Debug, Clone)]
pub struct Reparameterize {
    shape: Vec<usize>,
    sample_in_eval: bool,
    /// ε of the last sampling forward, rows × Z.
    eps: Vec<f32>,
    /// Whether the last forward sampled (else z = mean and dlogvar = 0).
    sampled: bool,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    let c: ReparameterizeConfig = parse(name, "Reparameterize", config)?;
    if inputs.len() != 2 {
        return Err(Error::graph(name, format!("{name} (Reparameterize) takes 2 inputs [mean, logvar], got {}", inputs.len())));
    }
    if inputs[0] != inputs[1] {
        return Err(Error::graph(
            name,
            format!("{name} (Reparameterize): mean and logvar need one shape, got {:?} and {:?}", inputs[0], inputs[1]),
        ));
    }
    Ok(Box::new(Reparameterize { shape: inputs[0].clone(), sample_in_eval: c.sample_in_eval, eps: Vec::new(), sampled: false }))
}

/// Standard normal number `index` of the stream `seed` (Box–Muller on two 32-bit draws).
#[inline]
pub fn normal(seed: u32, index: u32) -> f32 {
    const TO_UNIT: f64 = 1.0 / 4294967296.0;
    let u1 = (draw(seed, index.wrapping_mul(2)) as f64 + 0.5) * TO_UNIT; // (0, 1): log is finite
    let u2 = draw(seed, index.wrapping_mul(2).wrapping_add(1)) as f64 * TO_UNIT;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// eps[i] = normal(seed, i), for the n elements of a batch.
pub fn fill_normal(eps: &mut [f32], seed: u32) {
    for (i, e) in eps.iter_mut().enumerate() {
        *e = normal(seed, i as u32);
    }
}

/// z = mean + exp(0.5·logvar)·eps, elementwise over [rows, Z].
pub fn reparameterize_forward(z: &mut [f32], mean: &[f32], logvar: &[f32], eps: &[f32]) {
    for (((z, &m), &lv), &e) in z.iter_mut().zip(mean).zip(logvar).zip(eps) {
        *z = m + (0.5 * lv).exp() * e;
    }
}

/// dlogvar (+)= dz·eps·0.5·exp(0.5·logvar); dmean is dz itself.
pub fn reparameterize_backward_logvar(dlogvar: &mut [f32], dz: &[f32], logvar: &[f32], eps: &[f32], accumulate: bool) {
    for (((d, &g), &lv), &e) in dlogvar.iter_mut().zip(dz).zip(logvar).zip(eps) {
        let v = g * e * 0.5 * (0.5 * lv).exp();
        *d = if accumulate { *d + v } else { v };
    }
}

impl Op for Reparameterize {
    fn kind(&self) -> &'static str {
        "Reparameterize"
    }
    fn output_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }
    fn prepare(&mut self, capacity: usize) {
        self.eps = vec![0.0; capacity * super::numel(&self.shape)];
    }

    fn forward(&mut self, cx: &Forward) {
        let (mean, logvar, z) = (cx.input(0), cx.input(1), cx.output());
        self.sampled = cx.mode == Mode::Train || self.sample_in_eval;
        if !self.sampled {
            z.copy_from_slice(mean);
            return;
        }
        let eps = &mut self.eps[..z.len()];
        fill_normal(eps, seed32(cx.seed));
        reparameterize_forward(z, mean, logvar, eps);
    }

    fn backward(&mut self, cx: &Backward) {
        let dz = &*cx.dout();
        if let Some(dmean) = cx.dinput(0) {
            super::write_grad(dmean, dz, cx.accumulate(0));
        }
        if let Some(dlogvar) = cx.dinput(1) {
            if self.sampled {
                reparameterize_backward_logvar(dlogvar, dz, cx.input(1), &self.eps[..dz.len()], cx.accumulate(1));
            } else if !cx.accumulate(1) {
                dlogvar.fill(0.0);
            }
        }
    }

    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::normal;
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use crate::ops::Mode;
    use serde_json::json;

    /// input [4] → (mean, logvar) Linear heads [3] → Reparameterize.
    pub(crate) fn vae_head(config: serde_json::Value) -> String {
        json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [4] }],
            "nodes": [
                { "name": "mu", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } },
                { "name": "logvar", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } },
                { "name": "z", "op": "Reparameterize", "inputs": ["mu", "logvar"], "config": config },
            ],
            "outputs": ["z"],
        })
        .to_string()
    }

    #[test]
    fn gradients_with_the_step_fixed_epsilon() {
        check_gradients(&vae_head(json!(null)), &GradCheck { batch: 4, ..Default::default() }).unwrap();
        check_gradients(&vae_head(json!({ "sampleInEval": true })), &GradCheck { batch: 4, mode: Mode::Eval, ..Default::default() }).unwrap();
        check_gradients(&vae_head(json!(null)), &GradCheck { batch: 2, mode: Mode::Eval, ..Default::default() }).unwrap();
        // The same value as mean and logvar: both gradients add up in one buffer.
        let s = json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [5] }],
            "nodes": [{ "name": "z", "op": "Reparameterize", "inputs": ["input", "input"] }],
            "outputs": ["z"],
        })
        .to_string();
        check_gradients(&s, &GradCheck::default()).unwrap();
    }

    #[test]
    fn epsilon_is_standard_normal() {
        let n = 200_000u32;
        let (mut s1, mut s2, mut s4) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let e = normal(12345, i) as f64;
            s1 += e;
            s2 += e * e;
            s4 += e * e * e * e;
        }
        let (m, v, k) = (s1 / n as f64, s2 / n as f64, s4 / n as f64);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.02 && (k - 3.0).abs() < 0.1, "mean {m} var {v} fourth moment {k}");
    }

    #[test]
    fn eval_outputs_the_mean_unless_sampling_and_steps_draw_anew() {
        let run = |config: serde_json::Value, mode: Mode, threads: usize| {
            let mut m = Model::from_json(&vae_head(config), 7).unwrap();
            m.set_mode(mode);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let x: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
                m.set_input(10, &x);
                let a = m.forward(10).to_vec();
                m.set_input(10, &x);
                (a, m.forward(10).to_vec())
            })
        };
        let (a, b) = run(json!(null), Mode::Eval, 1);
        assert_eq!(a, b, "eval without sampling is deterministic");
        let (t1, t2) = run(json!(null), Mode::Train, 1);
        assert_ne!(t1, t2, "each training step draws another ε");
        assert_ne!(t1, a);
        assert_eq!(run(json!(null), Mode::Train, 2), (t1.clone(), t2), "the same ε for any thread count");
        let (s, _) = run(json!({ "sampleInEval": true }), Mode::Eval, 1);
        assert_ne!(s, a, "sampleInEval samples in eval mode");
    }

    #[test]
    fn mismatched_inputs_are_named() {
        let s = json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [4] }],
            "nodes": [
                { "name": "mu", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": 3 } },
                { "name": "z", "op": "Reparameterize", "inputs": ["mu", "input"] },
            ],
            "outputs": ["z"],
        })
        .to_string();
        let e = Model::from_json(&s, 0).unwrap_err().to_string();
        assert!(e.contains("z (Reparameterize)") && e.contains("[3]") && e.contains("[4]"), "{e}");
        let e = Model::from_json(&vae_head(json!({ "sample": true })), 0).unwrap_err().to_string();
        assert!(e.contains("z (Reparameterize)") && e.contains("sample"), "{e}");
    }
}
