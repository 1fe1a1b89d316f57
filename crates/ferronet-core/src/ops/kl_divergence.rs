//! `KLDivergence`: a VAE's prior term, KL(N(mean, exp(logvar)) ‖ N(0, 1)) per sample:
//!   kl = −0.5·Σ_j (1 + logvar_j − mean_j² − exp(logvar_j))
//! Inputs [mean, logvar], both [Z]; output [1] per sample, meant as a loss term
//! (`{ loss: 'value' }` on this output). Backward, from the formula:
//!   dmean_j   = dkl·mean_j
//!   dlogvar_j = dkl·0.5·(exp(logvar_j) − 1)

use super::relu::NoConfig;
use super::{Backward, Forward, Op};
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct KlDivergence {
    /// Latent size Z.
    z: usize,
}

pub fn build(name: &str, config: &serde_json::Value, inputs: &[Vec<usize>]) -> Result<Box<dyn Op>> {
    super::config::parse::<NoConfig>(name, "KLDivergence", config)?;
    if inputs.len() != 2 {
        return Err(Error::graph(name, format!("{name} (KLDivergence) takes 2 inputs [mean, logvar], got {}", inputs.len())));
    }
    if inputs[0] != inputs[1] {
        return Err(Error::graph(
            name,
            format!("{name} (KLDivergence): mean and logvar need one shape, got {:?} and {:?}", inputs[0], inputs[1]),
        ));
    }
    Ok(Box::new(KlDivergence { z: super::numel(&inputs[0]) }))
}

/// kl[r] = −0.5·Σ_j (1 + logvar[r, j] − mean[r, j]² − exp(logvar[r, j])), summed in f64.
pub fn kl_forward(kl: &mut [f32], mean: &[f32], logvar: &[f32], z: usize) {
    for (r, k) in kl.iter_mut().enumerate() {
        let (m, lv) = (&mean[r * z..(r + 1) * z], &logvar[r * z..(r + 1) * z]);
        let s: f64 = m.iter().zip(lv).map(|(&m, &lv)| 1.0 + lv as f64 - (m as f64).powi(2) - (lv as f64).exp()).sum();
        *k = (-0.5 * s) as f32;
    }
}

/// dmean[r, j] (+)= dkl[r]·mean[r, j].
pub fn kl_backward_mean(dmean: &mut [f32], dkl: &[f32], mean: &[f32], z: usize, accumulate: bool) {
    for (r, &g) in dkl.iter().enumerate() {
        for (d, &m) in dmean[r * z..(r + 1) * z].iter_mut().zip(&mean[r * z..(r + 1) * z]) {
            *d = if accumulate { *d + g * m } else { g * m };
        }
    }
}

/// dlogvar[r, j] (+)= dkl[r]·0.5·(exp(logvar[r, j]) − 1).
pub fn kl_backward_logvar(dlogvar: &mut [f32], dkl: &[f32], logvar: &[f32], z: usize, accumulate: bool) {
    for (r, &g) in dkl.iter().enumerate() {
        for (d, &lv) in dlogvar[r * z..(r + 1) * z].iter_mut().zip(&logvar[r * z..(r + 1) * z]) {
            let v = g * 0.5 * (lv.exp() - 1.0);
            *d = if accumulate { *d + v } else { v };
        }
    }
}

impl Op for KlDivergence {
    fn kind(&self) -> &'static str {
        "KLDivergence"
    }
    fn output_shape(&self) -> Vec<usize> {
        vec![1]
    }
    fn forward(&mut self, cx: &Forward) {
        kl_forward(cx.output(), cx.input(0), cx.input(1), self.z);
    }
    fn backward(&mut self, cx: &Backward) {
        let dkl = &*cx.dout();
        if let Some(dmean) = cx.dinput(0) {
            kl_backward_mean(dmean, dkl, cx.input(0), self.z, cx.accumulate(0));
        }
        if let Some(dlogvar) = cx.dinput(1) {
            kl_backward_logvar(dlogvar, dkl, cx.input(1), self.z, cx.accumulate(1));
        }
    }
    fn clone_box(&self) -> Box<dyn Op> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::Model;
    use crate::ops::testing::{check_gradients, GradCheck};
    use serde_json::json;

    fn head(latent: usize) -> String {
        json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [4] }],
            "nodes": [
                { "name": "mu", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": latent } },
                { "name": "logvar", "op": "Linear", "inputs": ["input"], "config": { "outFeatures": latent } },
                { "name": "kl", "op": "KLDivergence", "inputs": ["mu", "logvar"] },
            ],
            "outputs": ["kl"],
        })
        .to_string()
    }

    #[test]
    fn gradients() {
        // A smaller step than the default: the objective is curved (mean²) where its
        // slope is small, and the check would take that for a kink.
        let o = GradCheck { batch: 4, h: 1e-3, ..Default::default() };
        check_gradients(&head(3), &o).unwrap();
        let s = json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [2, 3] }],
            "nodes": [{ "name": "kl", "op": "KLDivergence", "inputs": ["input", "input"] }],
            "outputs": ["kl"],
        })
        .to_string();
        check_gradients(&s, &o).unwrap();
    }

    #[test]
    fn zero_at_the_prior() {
        let s = json!({
            "format": "ferronet-graph", "version": 1,
            "inputs": [{ "name": "input", "shape": [3] }],
            "nodes": [
                { "name": "kl", "op": "KLDivergence", "inputs": ["input", "input"] },
            ],
            "outputs": ["kl"],
        })
        .to_string();
        let mut m = Model::from_json(&s, 0).unwrap();
        m.set_input(2, &[0.0, 0.0, 0.0, 1.0, -1.0, 0.5]);
        let kl = m.forward(2).to_vec();
        assert_eq!(kl[0], 0.0, "mean 0, logvar 0 is the prior");
        let want: f64 = [1.0f64, -1.0, 0.5].iter().map(|&x| -0.5 * (1.0 + x - x * x - x.exp())).sum();
        assert!((kl[1] as f64 - want).abs() < 1e-6, "{} vs {want}", kl[1]);
        assert_eq!(Model::from_json(&head(2), 0).unwrap().output_shape(), &[1]);
    }
}
