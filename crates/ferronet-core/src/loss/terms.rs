//! A loss made of weighted terms, each on one graph output: a VAE's reconstruction
//! (BCE on the decoder's output against the input) plus its KL term (a KLDivergence
//! node whose output is itself the per-sample loss, `TermLoss::Value`).
//!
//! Every term is reported per sample: its batch's loss summed over the rows, divided
//! by the rows. `Reduction::Mean` is PyTorch's default: the term is the mean over a
//! sample's elements (the existing losses), and its gradient is that of the batch
//! mean. `Reduction::Sum` sums over a sample's elements, and its gradient is that of
//! the sum over the whole batch, as PyTorch's `reduction="sum"` optimises (examples/vae:
//! `BCE(reduction="sum") + KLD`, both summed over the batch). The objective is
//! Σ_k weight_k·term_k; its gradient is written into every output's gradient buffer
//! (zero for outputs without a term), then the graph backpropagates them all at once.

use super::{BatchTargets, LossConfig, LossSum, TargetKind};
use crate::data::TargetBuffer;
use crate::error::{Error, Result};
use crate::graph::Model;

/// Terms a loss may have (reports carry them in a fixed array).
pub const MAX_TERMS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    Mean,
    Sum,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TermLoss {
    /// One of the losses against the dataset's targets.
    Loss(LossConfig),
    /// The output is the per-sample loss itself (summed over its elements).
    Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LossTerm {
    /// The name the term is reported under.
    pub name: String,
    /// The graph output it reads.
    pub output: String,
    pub loss: TermLoss,
    pub weight: f32,
    pub reduction: Reduction,
}

impl LossTerm {
    /// The targets the term compares with, if any.
    pub fn target_kind(&self) -> Option<TargetKind> {
        match &self.loss {
            TermLoss::Loss(l) => Some(l.target_kind()),
            TermLoss::Value => None,
        }
    }

    /// Elements a sample's loss sums over with `Reduction::Sum` (cross-entropy's
    /// per-sample loss is already one number).
    fn elements(&self, dim: usize) -> usize {
        match &self.loss {
            TermLoss::Loss(LossConfig::CrossEntropy { .. }) => 1,
            _ => dim,
        }
    }

    /// Checks the term's options against its output of `dim` values per sample.
    pub fn validate(&self, k: usize, dim: usize) -> Result<()> {
        if !self.weight.is_finite() {
            return Err(Error::config(&format!("loss[{k}].weight"), format!("must be a finite number, got {}", self.weight)));
        }
        match &self.loss {
            TermLoss::Loss(LossConfig::CrossEntropy { class_weights: Some(_), .. }) if self.reduction == Reduction::Sum => Err(
                Error::config(&format!("loss[{k}].reduction"), "'sum' with classWeights is not supported (the weighted mean is not a sum)"),
            ),
            TermLoss::Loss(l) => l.validate(dim).map_err(|e| match e {
                Error::InvalidConfig { field, reason } => Error::InvalidConfig { field: field.replacen("loss", &format!("loss[{k}]"), 1), reason },
                e => e,
            }),
            TermLoss::Value => Ok(()),
        }
    }
}

/// Each term's output as an index into the model's outputs.
pub fn resolve_outputs(terms: &[LossTerm], model: &Model, out: &mut Vec<usize>) -> Result<()> {
    out.clear();
    if terms.is_empty() || terms.len() > MAX_TERMS {
        return Err(Error::config("loss", format!("a list of 1 to {MAX_TERMS} terms, got {}", terms.len())));
    }
    for (k, t) in terms.iter().enumerate() {
        match model.output_names().iter().position(|o| *o == t.output) {
            Some(i) => out.push(i),
            None => {
                return Err(Error::config(
                    &format!("loss[{k}].output"),
                    format!("{:?} is not an output of the network (outputs: {})", t.output, model.output_names().join(", ")),
                ))
            }
        }
    }
    Ok(())
}

/// The terms over the last forward pass of `rows` samples: adds each term's loss
/// summed over the rows to `sums[k]` and returns the weighted total (its `loss_sum`).
/// With `grad` (scratch for one term's gradient), writes d objective / d output into
/// every output's gradient buffer, for `Model::backward_outputs`.
#[allow(clippy::too_many_arguments)]
pub fn compute_terms(
    model: &mut Model,
    terms: &[LossTerm],
    outputs: &[usize],
    rows: usize,
    targets: &TargetBuffer,
    sums: &mut [f64],
    mut grad: Option<&mut Vec<f32>>,
) -> LossSum {
    if grad.is_some() {
        for k in 0..model.output_names().len() {
            model.output_and_grad_at(k, rows).1.fill(0.0);
        }
    }
    let mut total = 0.0f64;
    for (k, (t, &o)) in terms.iter().zip(outputs).enumerate() {
        let dim = model.output_shape_at(o).iter().product::<usize>();
        let batch = match (grad.as_deref_mut(), &t.loss) {
            (None, TermLoss::Value) => model.output_at(o, rows).iter().map(|&v| v as f64).sum::<f64>(),
            (None, TermLoss::Loss(l)) => {
                let b = batch_targets(targets, l.target_kind());
                l.compute(model.output_at(o, rows), rows, dim, b, None).loss_sum * scale_loss(t, dim)
            }
            (Some(_), TermLoss::Value) => {
                // d(w·Σ_rows v)/dv = w (sum); of the batch mean, w / rows.
                let g = t.weight * if t.reduction == Reduction::Sum { 1.0 } else { 1.0 / rows.max(1) as f32 };
                let (out, dout) = model.output_and_grad_at(o, rows);
                dout.iter_mut().for_each(|d| *d += g);
                out.iter().map(|&v| v as f64).sum::<f64>()
            }
            (Some(scratch), TermLoss::Loss(l)) => {
                scratch.resize(rows * dim, 0.0);
                let b = batch_targets(targets, l.target_kind());
                let (out, dout) = model.output_and_grad_at(o, rows);
                let s = l.compute(out, rows, dim, b, Some(&mut scratch[..rows * dim]));
                // The loss wrote d(mean)/d out; a batch sum is rows·elements times that.
                let g = t.weight * if t.reduction == Reduction::Sum { (rows * t.elements(dim)) as f32 } else { 1.0 };
                dout.iter_mut().zip(scratch.iter()).for_each(|(d, &x)| *d += g * x);
                s.loss_sum * scale_loss(t, dim)
            }
        };
        sums[k] += batch;
        total += t.weight as f64 * batch;
    }
    LossSum { loss_sum: total, ..Default::default() }
}

/// A loss's `loss_sum` (the rows' mean over elements) as the term reports it.
fn scale_loss(t: &LossTerm, dim: usize) -> f64 {
    match t.reduction {
        Reduction::Mean => 1.0,
        Reduction::Sum => t.elements(dim) as f64,
    }
}

pub(crate) fn batch_targets(t: &TargetBuffer, kind: TargetKind) -> BatchTargets<'_> {
    match kind {
        TargetKind::Classes => BatchTargets::Classes(&t.classes),
        TargetKind::Values => BatchTargets::Values(&t.values),
    }
}
