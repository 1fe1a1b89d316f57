//! The per-batch step API of custom training loops (a GAN's): forward a batch in
//! either mode, backward from a loss or from a given output gradient, the inputs'
//! gradients, an optimizer step over one parameter group, and `zero_grad`.
//!
//! Parameter gradients ACCUMULATE across backward calls until `zero_grad`, as
//! PyTorch's `.grad` does. The ops overwrite the gradients they write (what `fit`
//! wants), so a backward on top of pending gradients first copies them into one side
//! buffer, lets the ops overwrite, then adds the copy back: two passes over the
//! parameters and no allocation after the first time.
//!
//! Inputs, outputs and gradients cross this API in PyTorch's order; nothing here
//! allocates once the arena fits the batch.

use super::{layout, Model};
use crate::error::{Error, Result};
use crate::loss::{BatchTargets, LossConfig, LossSum};
use crate::ops::Mode;
use crate::optim::Optimizer;

impl Model {
    /// Forward of a batch in `mode`: `inputs[k]` holds rows × (input k's size)
    /// values in PyTorch's order, one array per graph input; output 0 (PyTorch's
    /// order) is written into `out`. Returns the rows. The arena is sized for
    /// gradients too, so a backward after it allocates nothing. BatchNorm folding is
    /// off in an eval-mode step forward (a backward may follow it). The model's mode
    /// is left as it was.
    pub fn step_forward(&mut self, mode: Mode, inputs: &[&[f32]], out: &mut [f32]) -> Result<usize> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::shape(
                "forward inputs",
                format!("{} array(s), one per graph input", self.inputs.len()),
                format!("{} array(s)", inputs.len()),
            ));
        }
        let first = &self.values[self.inputs[0]];
        let x0 = inputs[0];
        if x0.is_empty() || x0.len() % first.size != 0 {
            return Err(Error::shape(
                "forward input",
                format!("a positive multiple of {} values (input shape {:?})", first.size, first.shape),
                format!("{} values", x0.len()),
            ));
        }
        let rows = x0.len() / first.size;
        for (k, x) in inputs.iter().enumerate().skip(1) {
            let v = &self.values[self.inputs[k]];
            if x.len() != rows * v.size {
                return Err(Error::shape(
                    &format!("forward input {k}"),
                    format!("{rows} rows × {} values (input shape {:?}) = {}", v.size, v.shape, rows * v.size),
                    format!("{} values", x.len()),
                ));
            }
        }
        let dout = self.output_dim();
        if out.len() != rows * dout {
            return Err(Error::shape(
                "forward output buffer",
                format!("{rows} rows × {dout} values (output shape {:?}) = {}", self.output_shape(), rows * dout),
                format!("{} values", out.len()),
            ));
        }
        self.reserve(rows, true)?;
        self.ensure_capacity(rows, true);
        for (k, x) in inputs.iter().enumerate() {
            let v = &self.values[self.inputs[k]];
            let start = self.capacity * v.offset;
            layout::to_stored(&v.shape, x, &mut self.acts[start..start + rows * v.size]);
        }
        let (mode_before, folding) = (self.mode, self.eval_folding);
        self.mode = mode;
        self.eval_folding = false;
        self.forward(rows);
        self.last_rows = rows;
        self.mode = mode_before;
        self.eval_folding = folding;
        layout::to_logical(self.output_shape(), self.output(rows), out);
        Ok(rows)
    }

    /// Rows of the last forward, or an error naming `what` when there was none.
    fn step_rows(&self, what: &str) -> Result<usize> {
        if self.last_rows == 0 {
            return Err(Error::config(what, "needs a step forward first (net.forward); a predict, fit, evaluate or generate since then overwrote its activations"));
        }
        Ok(self.last_rows)
    }

    /// Backward of `loss` on the last forward's output 0 against `targets` (class ids,
    /// or rows × output values in PyTorch's order), adding to pending gradients;
    /// returns the batch's loss statistics (mean loss = `loss_sum / rows`). With
    /// `input_grad`, the inputs' gradients are computed too (and from then on: the
    /// plan keeps them, so alternating calls never re-plan).
    pub fn step_backward_loss(&mut self, loss: &LossConfig, targets: BatchTargets, input_grad: bool) -> Result<LossSum> {
        let rows = self.step_rows("backward")?;
        let dim = self.output_dim();
        if layout::is_channels_last(self.output_shape()) {
            return Err(Error::config(
                "backward.loss",
                format!("a loss on an output of shape {:?} ([C, H, W]) is not supported by the step API; pass outputGrad", self.output_shape()),
            ));
        }
        match (loss.target_kind(), targets) {
            (crate::loss::TargetKind::Classes, BatchTargets::Classes(labels)) => {
                // One id per row, or one per position of a [positions, classes] output.
                let classes = *self.output_shape().last().unwrap_or(&dim);
                let per_position = self.output_shape().len() >= 2 && labels.len() == rows * (dim / classes);
                if labels.len() != rows && !per_position {
                    return Err(Error::shape(
                        "backward targets",
                        format!("{rows} class ids (one per row of the last forward){}", if self.output_shape().len() >= 2 { format!(" or {} (one per position of the output {:?})", rows * (dim / classes), self.output_shape()) } else { String::new() }),
                        format!("{} values", labels.len()),
                    ));
                }
                let classes = if labels.len() == rows { dim } else { classes };
                if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
                    return Err(Error::LabelOutOfRange { index: i, label: labels[i], classes });
                }
            }
            (crate::loss::TargetKind::Values, BatchTargets::Values(t)) => {
                if t.len() != rows * dim {
                    return Err(Error::shape(
                        "backward targets",
                        format!("{rows} rows × {dim} values (output shape {:?}) = {}", self.output_shape(), rows * dim),
                        format!("{} values", t.len()),
                    ));
                }
            }
            (crate::loss::TargetKind::Classes, _) => {
                return Err(Error::config("backward.targets", format!("{} needs integer class ids, got float targets", loss.name())))
            }
            (crate::loss::TargetKind::Values, _) => {
                return Err(Error::config("backward.targets", format!("{} needs float targets, got class ids", loss.name())))
            }
        }
        // Per-position labels: each position is a row of the loss (PyTorch's
        // `logits.view(-1, V)`, the mean over every position), scaled back to samples
        // as in training (`train::positions_loss`).
        let k = match targets {
            BatchTargets::Classes(l) if l.len() != rows => l.len() / rows,
            _ => 1,
        };
        loss.validate(dim / k)?;
        let sums = {
            let (out, grad) = self.output_and_grad(rows);
            crate::train::positions_loss(loss, out, rows, dim, targets, k, Some(grad))
        };
        self.backward_accumulate(rows, input_grad)?;
        Ok(sums)
    }

    /// Backward of a given ∂L/∂(output 0) (rows × output values, PyTorch's order) of
    /// the last forward, adding to pending gradients.
    pub fn step_backward_grad(&mut self, output_grad: &[f32], input_grad: bool) -> Result<()> {
        let rows = self.step_rows("backward")?;
        let dim = self.output_dim();
        if output_grad.len() != rows * dim {
            return Err(Error::shape(
                "backward outputGrad",
                format!("{rows} rows × {dim} values (output shape {:?}) = {}", self.output_shape(), rows * dim),
                format!("{} values", output_grad.len()),
            ));
        }
        self.ensure_capacity(rows, true);
        let v = &self.values[self.outputs[0]];
        let start = self.capacity * v.offset;
        // (Not `set_output_grad`: it copies the shape, an allocation per call.)
        layout::to_stored(&v.shape, output_grad, &mut self.grads[start..start + rows * v.size]);
        self.backward_accumulate(rows, input_grad)
    }

    /// `backward` that adds to the parameter gradients pending since the last
    /// `zero_grad` (see the module's comment).
    pub fn backward_accumulate(&mut self, rows: usize, input_grad: bool) -> Result<()> {
        if input_grad && !self.input_grad {
            self.set_input_grad(true);
        }
        if !self.grads_pending {
            self.backward(rows);
            return Ok(());
        }
        if self.grad_acc.len() != self.store.grads.len() {
            self.grad_acc = Error::try_zeros(self.store.grads.len(), "the gradient accumulation buffer")?;
        }
        self.grad_acc.copy_from_slice(&self.store.grads);
        self.backward(rows);
        for (g, a) in self.store.grads.iter_mut().zip(&self.grad_acc) {
            *g += *a;
        }
        Ok(())
    }

    /// Zeroes every parameter gradient: the next backward starts from zero.
    pub fn zero_grad(&mut self) {
        self.store.grads.fill(0.0);
        self.grads_pending = false;
    }

    /// Rows of the last step-API forward (0 when the last forward was another kind).
    pub fn step_rows_count(&self) -> usize {
        self.last_rows
    }

    /// Whether gradients of a backward are pending (not zeroed since).
    pub fn grads_pending(&self) -> bool {
        self.grads_pending
    }

    /// ∂L/∂(input `k`) of the last backward (which must have asked for it), PyTorch's
    /// order, into `out` (rows × input k's size).
    pub fn step_input_grad(&self, k: usize, out: &mut [f32]) -> Result<()> {
        let Some(&v) = self.inputs.get(k) else {
            return Err(Error::config("inputGrad.input", format!("{k} is past the last of the net's {} input(s)", self.inputs.len())));
        };
        if !self.input_grad_fresh {
            return Err(Error::config("inputGrad", "the last backward did not compute the input's gradient: call backward({ ..., inputGrad: true }) first"));
        }
        let rows = self.last_rows;
        let v = &self.values[v];
        if out.len() != rows * v.size {
            return Err(Error::shape(
                "inputGrad output buffer",
                format!("{rows} rows × {} values (input shape {:?}) = {}", v.size, v.shape, rows * v.size),
                format!("{} values", out.len()),
            ));
        }
        let start = self.capacity * v.offset;
        layout::to_logical(&v.shape, &self.grads[start..start + rows * v.size], out);
        Ok(())
    }

    /// The name of the first tensor of `group` (None = all) whose pending gradient is
    /// NaN or infinite, if any: one read of the gradients (see `clip::all_finite`).
    pub fn non_finite_gradient(&mut self, group: Option<&str>) -> Option<String> {
        let mut refs = std::mem::take(&mut self.refs);
        self.tensor_refs(group, &mut refs);
        // Safety: the refs point at this model's own distinct buffers, borrowed for the call.
        let bad = unsafe { (!crate::optim::clip::all_finite(&refs)).then(|| crate::optim::clip::first_non_finite(&refs)) };
        let name = bad.map(|i| self.name_of_ref(&refs, i));
        self.refs = refs;
        name
    }

    /// The parameter name of `refs[i]` ("?" when there is none).
    pub fn name_of_ref(&self, refs: &[crate::optim::TensorRef], i: Option<usize>) -> String {
        i.and_then(|i| refs.get(i)).and_then(|r| self.store.tensors.get(r.id)).map_or_else(|| "?".to_string(), |t| t.name.clone())
    }

    /// One step of `optimizer` over the trainable, unfrozen tensors of `group`
    /// (None = all), from the pending gradients.
    pub fn apply_optimizer_group(&mut self, optimizer: &mut Optimizer, group: Option<&str>) {
        let mut refs = std::mem::take(&mut self.refs);
        self.tensor_refs(group, &mut refs);
        // Safety: the refs point at this model's own distinct buffers, borrowed for the call.
        unsafe { optimizer.step(&refs) };
        self.refs = refs;
    }

    /// Parameter groups that own at least one trainable tensor ("" = no group).
    pub fn groups(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.store.tensors.iter().filter(|t| t.trainable()) {
            if !out.contains(&t.group) {
                out.push(t.group.clone());
            }
        }
        out
    }
}
