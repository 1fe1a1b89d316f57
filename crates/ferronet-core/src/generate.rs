//! Autoregressive generation for language models: a net whose input is [T] (or
//! [T, 1]) token ids as f32 and whose output 0 is [T, V] logits.
//!
//! Each new token: the context is the last T ids; a context shorter than T is
//! right-padded with id 0, and the logits of position n − 1 (the context's last
//! token) are read. That is exact only for a CAUSAL model, whose position n − 1
//! never sees positions ≥ n (the padding); a bidirectional model would let the
//! padding change them. Then softmax(logits / temperature) over the top-k logits,
//! sampled from a seeded stream: the same seed gives the same ids, for any thread count.

use crate::error::{Error, Result};
use crate::graph::Model;
use crate::train::TrainControl;
use crate::ops::Mode;
use crate::rng;
use rand::Rng as _;

pub const STREAM_SAMPLE: u64 = 3;

/// The id drawn from softmax(`logits` / `temperature`) restricted to the `top_k`
/// largest logits (0 = all), with `u` uniform in [0, 1). `temperature` 0 is the
/// argmax (the first on ties). `scratch` holds (logit, id) pairs between calls.
pub fn sample(logits: &[f32], temperature: f32, top_k: usize, u: f64, scratch: &mut Vec<(f32, usize)>) -> usize {
    if temperature == 0.0 {
        return argmax(logits);
    }
    scratch.clear();
    scratch.extend(logits.iter().copied().zip(0..));
    let k = if top_k == 0 { logits.len() } else { top_k.min(logits.len()) };
    if k < scratch.len() {
        // The k largest first (NaN-free logits: total_cmp orders them like <).
        scratch.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        scratch.truncate(k);
    }
    let max = scratch.iter().fold(f32::NEG_INFINITY, |m, p| m.max(p.0)) as f64;
    let t = temperature as f64;
    let total: f64 = scratch.iter().map(|p| ((p.0 as f64 - max) / t).exp()).sum();
    let mut target = u * total;
    for p in scratch.iter() {
        target -= ((p.0 as f64 - max) / t).exp();
        if target < 0.0 {
            return p.1;
        }
    }
    // Rounding left a sliver past the last: the largest logit's id.
    scratch.iter().max_by(|a, b| a.0.total_cmp(&b.0)).map_or(0, |p| p.1)
}

fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateConfig {
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub seed: u64,
}

/// (T, V) of a language model: input [T] or [T, 1], output 0 [T, V].
pub fn lm_shape(model: &Model) -> Result<(usize, usize)> {
    let t = match *model.input_shape() {
        [t] | [t, 1] => t,
        ref s => return Err(Error::config("generate", format!("needs a net whose input is [T] token ids (or [T, 1]), this one's is {s:?}"))),
    };
    match *model.output_shape() {
        [ot, v] if ot == t => Ok((t, v)),
        ref s => Err(Error::config("generate", format!("needs a net whose output is [T, V] logits with T = {t} (its input length), this one's is {s:?}"))),
    }
}

/// `prompt` followed by `max_new_tokens` sampled ids (see the module's comment).
/// Runs in eval mode (dropout off), leaving the model's mode as it was.
pub fn generate(model: &mut Model, prompt: &[u32], config: &GenerateConfig) -> Result<Vec<u32>> {
    generate_until(model, prompt, config, &TrainControl::new())
}

/// `generate`, stopping before the next token when `control` is asked to stop
/// (`Error::Aborted` with the tokens made so far as its steps).
pub fn generate_until(model: &mut Model, prompt: &[u32], config: &GenerateConfig, control: &TrainControl) -> Result<Vec<u32>> {
    let (t, v) = lm_shape(model)?;
    if prompt.is_empty() {
        return Err(Error::config("promptIds", "must hold at least one token id"));
    }
    if let Some(i) = prompt.iter().position(|&id| id as usize >= v) {
        return Err(Error::config(&format!("promptIds[{i}]"), format!("is {}, past the vocabulary of {v} (the output's last axis)", prompt[i])));
    }
    if !config.temperature.is_finite() || config.temperature < 0.0 {
        return Err(Error::config("temperature", format!("must be a finite number >= 0, got {}", config.temperature)));
    }
    let mut ids = Vec::with_capacity(prompt.len() + config.max_new_tokens);
    ids.extend_from_slice(prompt);
    let mut rng = rng::stream(config.seed, STREAM_SAMPLE);
    let mut scratch = Vec::with_capacity(v);
    model.reserve(1, false)?;
    let mode = model.mode();
    model.set_mode(Mode::Eval);
    for made in 0..config.max_new_tokens {
        if control.stop_requested() {
            model.set_mode(mode);
            return Err(Error::Aborted { steps: made });
        }
        let ctx = &ids[ids.len().saturating_sub(t)..];
        let n = ctx.len();
        let buf = model.input_buffer(1);
        for (d, &id) in buf.iter_mut().zip(ctx) {
            *d = id as f32;
        }
        buf[n..].fill(0.0);
        let logits = &model.forward(1)[(n - 1) * v..n * v];
        let u = rng.random::<f64>();
        let next = sample(logits, config.temperature, config.top_k, u, &mut scratch);
        ids.push(next as u32);
    }
    model.set_mode(mode);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(l: &[f32], t: f64) -> Vec<f64> {
        let m = l.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let e: Vec<f64> = l.iter().map(|&x| ((x as f64 - m) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect()
    }

    #[test]
    fn temperature_to_zero_is_argmax() {
        let l = [0.3f32, 2.0, -1.0, 1.99, 0.0];
        let mut s = Vec::new();
        let mut r = rng::stream(1, STREAM_SAMPLE);
        for _ in 0..2000 {
            assert_eq!(sample(&l, 1e-4, 0, r.random(), &mut s), 1);
            assert_eq!(sample(&l, 0.0, 0, r.random(), &mut s), 1);
        }
        // u just below 1 at a tiny temperature: still the argmax.
        assert_eq!(sample(&l, 1e-4, 0, 0.999_999_9, &mut s), 1);
    }

    #[test]
    fn top_k_never_samples_outside_the_k_largest() {
        let l: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32 * 0.1).collect();
        let mut sorted: Vec<usize> = (0..50).collect();
        sorted.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
        let allowed: Vec<usize> = sorted[..5].to_vec();
        let mut s = Vec::new();
        let mut r = rng::stream(2, STREAM_SAMPLE);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20000 {
            // A high temperature makes every id likely: only top-k keeps them out.
            let id = sample(&l, 50.0, 5, r.random(), &mut s);
            assert!(allowed.contains(&id), "sampled {id}, outside the top 5 {allowed:?}");
            seen.insert(id);
        }
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn frequencies_match_the_softmax() {
        let l = [1.0f32, 0.0, -0.5, 2.0, 0.5, -2.0];
        for (t, k) in [(1.0, 0usize), (0.7, 0), (1.5, 3)] {
            let mut s = Vec::new();
            let mut r = rng::stream(3, STREAM_SAMPLE);
            let draws = 200_000;
            let mut counts = [0usize; 6];
            for _ in 0..draws {
                counts[sample(&l, t as f32, k, r.random(), &mut s)] += 1;
            }
            // Expected: the softmax over the top k (others 0).
            let mut keep = [true; 6];
            if k > 0 {
                let mut order: Vec<usize> = (0..6).collect();
                order.sort_by(|&a, &b| l[b].total_cmp(&l[a]));
                for &i in &order[k..] {
                    keep[i] = false;
                }
            }
            let masked: Vec<f32> = l.iter().zip(keep).map(|(&x, k)| if k { x } else { f32::NEG_INFINITY }).collect();
            let p = softmax(&masked, t);
            for i in 0..6 {
                let f = counts[i] as f64 / draws as f64;
                // 5 standard deviations of a binomial frequency, at least 1e-3.
                let tol = (5.0 * (p[i] * (1.0 - p[i]) / draws as f64).sqrt()).max(1e-3);
                assert!((f - p[i]).abs() < tol, "t {t} k {k} id {i}: frequency {f} vs softmax {}", p[i]);
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_draws() {
        let l: Vec<f32> = (0..30).map(|i| (i as f32 * 0.7).sin()).collect();
        let draw = |seed| {
            let mut s = Vec::new();
            let mut r = rng::stream(seed, STREAM_SAMPLE);
            (0..100).map(|_| sample(&l, 1.0, 10, r.random(), &mut s)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
