//! Losses: each reads the model's output [rows, dim] and the batch's targets, returns
//! the batch's statistics and, when training, writes the gradient of the batch-mean
//! loss with respect to the output (PyTorch's default `reduction="mean"`).

pub mod bce;
pub mod cross_entropy;
pub mod regression;
pub mod terms;

use crate::error::{Error, Result};
pub use terms::{LossTerm, Reduction, TermLoss};
pub use cross_entropy::{softmax_cross_entropy_backward, softmax_cross_entropy_forward};

/// The targets of one batch: class ids (classification) or float values
/// (regression, multi-label), rows × dim.
#[derive(Debug, Clone, Copy)]
pub enum BatchTargets<'a> {
    Classes(&'a [u32]),
    Values(&'a [f32]),
}

/// What kind of targets a loss takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Classes,
    Values,
}

/// Which metrics a loss reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Argmax equals the label.
    Accuracy,
    /// Multi-label: the fraction of labels predicted right (logit > 0 ⇔ target 1).
    LabelAccuracy,
    /// Mean squared and absolute error.
    Regression,
    /// None beyond the loss (a loss of terms reports each term).
    None,
}

/// A batch's loss and metrics, summed so batches add up to an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossSum {
    /// The batch's mean loss × its rows: Σ over batches / samples = the epoch's mean.
    pub loss_sum: f64,
    /// Rows whose argmax is the label (classification); for multi-label targets,
    /// elements whose sign of the logit matches the 0/1 target.
    pub correct: usize,
    /// Σ (pred − target)² and Σ |pred − target| (regression), over `elements`.
    pub sq_err: f64,
    pub abs_err: f64,
    pub elements: usize,
}

impl LossSum {
    pub fn add(&mut self, o: &LossSum) {
        self.loss_sum += o.loss_sum;
        self.correct += o.correct;
        self.sq_err += o.sq_err;
        self.abs_err += o.abs_err;
        self.elements += o.elements;
    }
}

/// Which loss, with its options (PyTorch's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub enum LossConfig {
    /// `nn.CrossEntropyLoss` on logits with integer labels.
    CrossEntropy {
        class_weights: Option<Vec<f32>>,
        label_smoothing: f32,
    },
    /// `nn.MSELoss`.
    Mse,
    /// `nn.L1Loss`.
    L1,
    /// `nn.SmoothL1Loss(beta)` (PyTorch's default beta 1.0; beta 0 is L1).
    SmoothL1 { beta: f32 },
    /// `nn.HuberLoss(delta)` (PyTorch's default delta 1.0).
    Huber { delta: f32 },
    /// `nn.BCEWithLogitsLoss(pos_weight)` on logits with 0/1 (or soft) float targets.
    BceWithLogits { pos_weight: Option<Vec<f32>> },
    /// `nn.BCELoss` on probabilities (a Sigmoid's output) with targets in [0, 1].
    Bce,
    /// Weighted terms on the graph's outputs, each reported (`loss::terms`): the
    /// trainer computes them, never `compute`; a term's own loss is never `Terms`.
    Terms(Vec<LossTerm>),
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig::CrossEntropy {
            class_weights: None,
            label_smoothing: 0.0,
        }
    }
}

impl LossConfig {
    /// The loss's name as the API spells it.
    pub fn name(&self) -> &'static str {
        match self {
            LossConfig::CrossEntropy { .. } => "cross_entropy",
            LossConfig::Mse => "mse",
            LossConfig::L1 => "l1",
            LossConfig::SmoothL1 { .. } => "smooth_l1",
            LossConfig::Huber { .. } => "huber",
            LossConfig::BceWithLogits { .. } => "bce_with_logits",
            LossConfig::Bce => "bce",
            LossConfig::Terms(_) => "terms",
        }
    }

    /// The metrics that fit this loss.
    pub fn metric_kind(&self) -> MetricKind {
        match self {
            LossConfig::Terms(_) => MetricKind::None,
            LossConfig::CrossEntropy { .. } => MetricKind::Accuracy,
            LossConfig::BceWithLogits { .. } | LossConfig::Bce => MetricKind::LabelAccuracy,
            LossConfig::Mse | LossConfig::L1 | LossConfig::SmoothL1 { .. } | LossConfig::Huber { .. } => {
                MetricKind::Regression
            }
        }
    }

    pub fn target_kind(&self) -> TargetKind {
        match self {
            LossConfig::CrossEntropy { .. } => TargetKind::Classes,
            _ => TargetKind::Values,
        }
    }

    /// Checks the options against a model output of `dim` values per sample.
    pub fn validate(&self, dim: usize) -> Result<()> {
        match self {
            LossConfig::CrossEntropy {
                class_weights,
                label_smoothing,
            } => {
                if !(0.0..=1.0).contains(label_smoothing) {
                    return Err(Error::config(
                        "loss.labelSmoothing",
                        format!("must be in [0, 1], got {label_smoothing}"),
                    ));
                }
                if let Some(w) = class_weights {
                    if w.len() != dim {
                        return Err(Error::config(
                            "loss.classWeights",
                            format!("needs one weight per class ({dim}), got {}", w.len()),
                        ));
                    }
                    if let Some(i) = w.iter().position(|x| !x.is_finite() || *x < 0.0) {
                        return Err(Error::config(
                            &format!("loss.classWeights[{i}]"),
                            format!("must be a finite number >= 0, got {}", w[i]),
                        ));
                    }
                }
                Ok(())
            }
            LossConfig::Mse | LossConfig::L1 | LossConfig::Bce => Ok(()),
            LossConfig::Terms(_) => Err(Error::config("loss", "a term's loss cannot itself be a list of terms")),
            LossConfig::SmoothL1 { beta } => {
                if !beta.is_finite() || *beta < 0.0 {
                    return Err(Error::config("loss.beta", format!("must be a finite number >= 0, got {beta}")));
                }
                Ok(())
            }
            LossConfig::Huber { delta } => {
                if !delta.is_finite() || *delta <= 0.0 {
                    return Err(Error::config("loss.delta", format!("must be a finite number > 0, got {delta}")));
                }
                Ok(())
            }
            LossConfig::BceWithLogits { pos_weight } => {
                if let Some(w) = pos_weight {
                    if w.len() != dim {
                        return Err(Error::config(
                            "loss.posWeight",
                            format!("needs one weight per output ({dim}), got {}", w.len()),
                        ));
                    }
                    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
                        return Err(Error::config(
                            &format!("loss.posWeight[{i}]"),
                            format!("must be a finite number, got {}", w[i]),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// The loss of `pred` [rows, dim] against `targets`; with `grad`, also
    /// d(mean loss)/d pred into it (overwritten).
    pub fn compute(
        &self,
        pred: &[f32],
        rows: usize,
        dim: usize,
        targets: BatchTargets,
        grad: Option<&mut [f32]>,
    ) -> LossSum {
        match (self, targets) {
            (
                LossConfig::CrossEntropy {
                    class_weights,
                    label_smoothing,
                },
                BatchTargets::Classes(labels),
            ) => cross_entropy::cross_entropy(pred, rows, dim, labels, class_weights.as_deref(), *label_smoothing, grad),
            (LossConfig::Mse, BatchTargets::Values(t)) => regression::mse(pred, t, rows, grad),
            (LossConfig::L1, BatchTargets::Values(t)) => regression::l1(pred, t, rows, grad),
            (LossConfig::SmoothL1 { beta }, BatchTargets::Values(t)) => regression::smooth_l1(pred, t, rows, *beta, grad),
            (LossConfig::Huber { delta }, BatchTargets::Values(t)) => regression::huber(pred, t, rows, *delta, grad),
            (LossConfig::BceWithLogits { pos_weight }, BatchTargets::Values(t)) => {
                bce::bce_with_logits(pred, t, rows, dim, pos_weight.as_deref(), grad)
            }
            (LossConfig::Bce, BatchTargets::Values(t)) => bce::bce(pred, t, rows, grad),
            (loss, t) => panic!("loss {loss:?} got targets of the wrong kind {t:?} (checked before training)"),
        }
    }
}

#[cfg(test)]
mod tests;
