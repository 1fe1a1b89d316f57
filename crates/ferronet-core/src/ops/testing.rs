//! Test support shared by every op's tests and the integration tests: a gradient
//! check of any graph against central finite differences, and a runner for the
//! PyTorch parity cases in test/fixtures/parity/layers.json.

use crate::graph::Model;
use crate::ops::Mode;
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Options of [`check_gradients`].
#[derive(Debug, Clone)]
pub struct GradCheck {
    pub batch: usize,
    pub seed: u64,
    pub mode: Mode,
    /// Finite-difference step.
    pub h: f32,
    /// Largest relative error allowed (relative to max(|analytic|, |numeric|, floor)).
    pub tol: f64,
    /// Floor of the relative error's scale, as a fraction of the tensor's largest gradient.
    pub floor: f64,
    /// Elements checked per tensor at most (spread evenly over it).
    pub samples: usize,
    /// Inputs drawn uniformly from ±input_scale.
    pub input_scale: f32,
    /// Some(n): input 0 holds integer ids drawn from 0..n (an Embedding's), whose gradient
    /// is not checked (ids are not differentiable; a finite step would change the id).
    pub integer_inputs: Option<usize>,
    /// The graph is smooth (no ReLU or max-pool): no element is skipped as a kink. For
    /// recurrent ops, whose curvature makes the one-sided slopes differ by more than
    /// `tol` while the central difference stays exact to O(h²).
    pub smooth: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            batch: 3,
            seed: 1,
            mode: Mode::Train,
            h: 5e-3,
            tol: 2e-2,
            floor: 1e-2,
            samples: 40,
            input_scale: 1.0,
            integer_inputs: None,
            smooth: false,
        }
    }
}

/// Checks d(Σ out·g)/d(input) and d/d(every trainable tensor) of the model built from
/// `spec` against central differences, with random input and g. Returns the number of
/// elements checked, or a description of the first mismatch.
pub fn check_gradients(spec: &str, o: &GradCheck) -> Result<usize, String> {
    let mut model = Model::from_json(spec, o.seed).map_err(|e| e.to_string())?;
    model.set_input_grad(true);
    model.set_mode(o.mode);
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x5eed);
    let rows = o.batch;
    // Inputs kept 0.05 away from 0, where ReLUs and max-pools have their kinks.
    let mut x: Vec<f32> = (0..rows * model.input_dim())
        .map(|_| {
            if let Some(n) = o.integer_inputs {
                return rng.random_range(0..n) as f32;
            }
            let u: f32 = rng.random_range(-1.0..1.0);
            o.input_scale * u.signum() * (0.05 + 0.95 * u.abs())
        })
        .collect();
    let g: Vec<f32> = (0..rows * model.output_dim()).map(|_| rng.random_range(-1.0..1.0)).collect();
    // Graph inputs after the first (an RNN's initial state): drawn the same way, and
    // their gradients checked too.
    let mut extra: Vec<Vec<f32>> = (1..model.num_inputs())
        .map(|k| (0..rows * model.input_dim_at(k)).map(|_| o.input_scale * rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    // The objective at the current parameters for input `x`, always with step 1's randomness.
    let objective = |model: &mut Model, x: &[f32], extra: &[Vec<f32>]| -> f64 {
        model.set_train_step(0);
        model.input_buffer(rows).copy_from_slice(x);
        for (k, e) in extra.iter().enumerate() {
            model.input_buffer_at(k + 1, rows).copy_from_slice(e);
        }
        let out = model.forward(rows);
        out.iter().zip(&g).map(|(&a, &b)| a as f64 * b as f64).sum()
    };
    objective(&mut model, &x, &extra);
    model.output_grad_buffer(rows).copy_from_slice(&g);
    model.backward(rows);
    let dx = model.input_grad(rows).expect("input grad on").to_vec();
    let dextra: Vec<Vec<f32>> = (1..model.num_inputs()).map(|k| model.input_grad_at(k, rows).expect("input grad on").to_vec()).collect();
    let grads: Vec<(String, Vec<f32>)> = model
        .store()
        .tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| t.trainable())
        .map(|(i, t)| (t.name.clone(), model.store().grad(i).to_vec()))
        .collect();
    let mut checked = 0;
    // `probe(i)` gives the objective at x[i] + h, x[i] − h and x[i]. Where the two
    // one-sided slopes disagree, a kink (a ReLU or max-pool switching) lies within h:
    // no finite difference is meaningful there, and the element is skipped (at most a
    // quarter of them may be).
    let compare = |what: &str, analytic: &[f32], probe: &mut dyn FnMut(usize) -> (f64, f64, f64)| -> Result<usize, String> {
        let max = analytic.iter().fold(0f64, |m, &a| m.max(a.abs() as f64));
        let step = (analytic.len() / o.samples).max(1);
        let (mut n, mut kinks) = (0, 0);
        let h = o.h as f64;
        for i in (0..analytic.len()).step_by(step) {
            let (plus, minus, at) = probe(i);
            let num = (plus - minus) / (2.0 * h);
            let a = analytic[i] as f64;
            let scale = a.abs().max(num.abs()).max(o.floor * max).max(1e-6);
            let (forward, backward) = ((plus - at) / h, (at - minus) / h);
            if !o.smooth && (forward - backward).abs() / scale > o.tol {
                kinks += 1;
                continue;
            }
            if (a - num).abs() / scale > o.tol {
                return Err(format!(
                    "{what}[{i}]: analytic {a:.6e} vs finite difference {num:.6e} (relative error {:.3e}, largest |grad| {max:.3e})",
                    (a - num).abs() / scale
                ));
            }
            n += 1;
        }
        if kinks > 2 && kinks * 3 > n {
            return Err(format!("{what}: {kinks} of {} elements sit at a kink; choose other inputs", n + kinks));
        }
        Ok(n)
    };
    let h = o.h;
    let x_at_start = x.clone();
    let input_probe = if o.integer_inputs.is_some() { &dx[..0] } else { &dx[..] };
    checked += compare("input", input_probe, &mut |i| {
        let orig = x[i];
        x[i] = orig + h;
        let plus = objective(&mut model, &x, &extra);
        x[i] = orig - h;
        let minus = objective(&mut model, &x, &extra);
        x[i] = orig;
        (plus, minus, objective(&mut model, &x, &extra))
    })
    .map_err(|e| format!("{e}; the input values around it: {:?}", &x_at_start[..x_at_start.len().min(40)]))?;
    for (k, analytic) in dextra.iter().enumerate() {
        checked += compare(&format!("input {}", k + 1), analytic, &mut |i| {
            let orig = extra[k][i];
            extra[k][i] = orig + h;
            let plus = objective(&mut model, &x, &extra);
            extra[k][i] = orig - h;
            let minus = objective(&mut model, &x, &extra);
            extra[k][i] = orig;
            (plus, minus, objective(&mut model, &x, &extra))
        })?;
    }
    let ids: Vec<usize> = model
        .store()
        .tensors()
        .iter()
        .enumerate()
        .filter(|(_, t)| t.trainable())
        .map(|(i, _)| i)
        .collect();
    for (&t, (name, analytic)) in ids.iter().zip(&grads) {
        checked += compare(name, analytic, &mut |i| {
            let orig = model.tensor_value_mut(t)[i];
            model.tensor_value_mut(t)[i] = orig + h;
            let plus = objective(&mut model, &x, &extra);
            model.tensor_value_mut(t)[i] = orig - h;
            let minus = objective(&mut model, &x, &extra);
            model.tensor_value_mut(t)[i] = orig;
            (plus, minus, objective(&mut model, &x, &extra))
        })?;
    }
    Ok(checked)
}

/// A tensor of a fixture: {"shape": [...], "data": [...]}.
pub fn tensor(v: &serde_json::Value) -> (Vec<usize>, Vec<f32>) {
    let shape = v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().expect("data").iter().map(|d| d.as_f64().unwrap() as f32).collect();
    (shape, data)
}

/// Largest |a − b| / max(|b|, floor·max|b|) over two tensors.
pub fn rel_err(a: &[f32], b: &[f32], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "tensor sizes differ");
    let max = b.iter().fold(0f64, |m, &x| m.max(x.abs() as f64));
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a as f64 - b as f64).abs() / (b.abs() as f64).max(floor * max).max(1e-30))
        .fold(0.0, f64::max)
}

/// Runs one case of layers.json: sets the parameters, runs forward in the case's
/// mode and backward from its gradOutput, and compares output, input gradient,
/// parameter gradients and buffers after. Returns the largest relative error seen.
pub fn run_parity_case(case: &serde_json::Value, tol: f64) -> Result<f64, String> {
    let name = case["name"].as_str().unwrap_or("?");
    let spec = case["spec"].to_string();
    let mut model = Model::from_json(&spec, 0).map_err(|e| format!("{name}: {e}"))?;
    model.set_input_grad(true);
    for (pname, t) in case["params"].as_object().into_iter().flatten() {
        let (_, data) = tensor(t);
        model.set_param_by_name(pname, &data).map_err(|e| format!("{name}: {e}"))?;
    }
    model.set_mode(if case["mode"] == "eval" { Mode::Eval } else { Mode::Train });
    let steps: Vec<&serde_json::Value> = match case.get("inputs") {
        Some(list) => list.as_array().unwrap().iter().collect(),
        None => vec![&case["input"]],
    };
    let mut worst = 0f64;
    // A gradient that is zero by the math (a conv bias feeding a BatchNorm: the mean is
    // subtracted) comes out as f32 rounding, ~1e-9, against PyTorch's f64 ~1e-17: such
    // tensors are measured against the case's largest parameter gradient instead.
    let grad_scale = case["paramGrads"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, t)| tensor(t).1)
        .fold(0f64, |m, v| m.max(v.abs() as f64));
    let mut check = |what: &str, got: &[f32], want: &serde_json::Value| -> Result<(), String> {
        let (_, want) = tensor(want);
        let max = want.iter().fold(0f64, |m, &v| m.max(v.abs() as f64));
        let e = if what.starts_with("gradient of") && max < 1e-6 * grad_scale {
            got.iter().fold(0f64, |m, &v| m.max(v.abs() as f64)) / grad_scale
        } else {
            rel_err(got, &want, 1e-2)
        };
        worst = worst.max(e);
        if e > tol {
            return Err(format!("{name}: {what} differs from PyTorch by {e:.3e} (relative)"));
        }
        Ok(())
    };
    let mut rows = 0;
    for (k, input) in steps.iter().enumerate() {
        let (shape, x) = tensor(input);
        rows = shape[0];
        model.set_input(rows, &x);
        // Graph inputs after the first, by name (an RNN's h0 and c0).
        for (iname, t) in case["extraInputs"].as_object().into_iter().flatten() {
            let at = model.input_index(iname).ok_or(format!("{name}: no graph input {iname}"))?;
            model.set_input_at(at, rows, &tensor(t).1);
        }
        model.forward(rows);
        let out = model.output_logical(rows);
        match case.get("outputs") {
            Some(outs) => check(&format!("output of step {}", k + 1), &out, &outs[k])?,
            None => check("output", &out, &case["output"])?,
        }
    }
    if let Some(g) = case.get("gradOutput") {
        let (_, g) = tensor(g);
        model.set_output_grad(rows, &g);
        model.backward(rows);
        if let Some(want) = case.get("inputGrad") {
            let got = model.input_grad_logical(rows).unwrap();
            check("input gradient", &got, want)?;
        }
        for (iname, want) in case["extraInputGrads"].as_object().into_iter().flatten() {
            let at = model.input_index(iname).ok_or(format!("{name}: no graph input {iname}"))?;
            let got = model.input_grad_logical_at(at, rows).unwrap();
            check(&format!("gradient of input {iname}"), &got, want)?;
        }
        let grads = model.grads();
        for (pname, want) in case["paramGrads"].as_object().into_iter().flatten() {
            let got = grads.iter().find(|p| &p.name == pname).ok_or(format!("{name}: no gradient {pname}"))?;
            check(&format!("gradient of {pname}"), &got.data, want)?;
        }
    }
    let params = model.params();
    for (pname, want) in case["buffersAfter"].as_object().into_iter().flatten() {
        let got = params.iter().find(|p| &p.name == pname).ok_or(format!("{name}: no buffer {pname}"))?;
        check(&format!("{pname} after"), &got.data, want)?;
    }
    Ok(worst)
}

/// The JSON of a chain on input `shape` (nodes "0", "1", ...).
pub fn sequential_spec(shape: &[usize], layers: &[(&str, serde_json::Value)]) -> String {
    crate::graph::spec::GraphSpec::sequential(shape, layers).to_json()
}

/// A fan-out on input `shape`: node "a" (`first`) feeds two nodes of `op`, "c" (output 1,
/// listed first, so its backward runs last and adds to a's gradient) and "b" (output 0,
/// whose backward overwrites it). Checks that `op` honours `accumulate`.
pub fn fanout_spec(shape: &[usize], first: (&str, serde_json::Value), op: (&str, serde_json::Value)) -> String {
    serde_json::json!({
        "format": "ferronet-graph",
        "version": 1,
        "inputs": [{ "name": "input", "shape": shape }],
        "nodes": [
            { "name": "a", "op": first.0, "inputs": ["input"], "config": first.1 },
            { "name": "c", "op": op.0, "inputs": ["a"], "config": op.1 },
            { "name": "b", "op": op.0, "inputs": ["a"], "config": op.1 },
        ],
        "outputs": ["b", "c"],
    })
    .to_string()
}

/// Panics with the spec and the mismatch unless `check_gradients` passes.
pub fn assert_gradients(spec: &str, o: &GradCheck) {
    match check_gradients(spec, o) {
        Ok(n) => assert!(n > 0, "nothing checked in {spec}"),
        Err(e) => panic!("{e}\n  in {spec}"),
    }
}

/// Output 0 in PyTorch's order of the model `spec` with the given parameters (PyTorch
/// layout) on `rows` samples of `input` (PyTorch's order), in eval mode.
pub fn forward_logical(spec: &str, params: &[(&str, &[f32])], rows: usize, input: &[f32]) -> Vec<f32> {
    let mut model = Model::from_json(spec, 0).expect("spec compiles");
    for (name, data) in params {
        model.set_param_by_name(name, data).expect("parameter");
    }
    model.set_mode(Mode::Eval);
    model.set_input(rows, input);
    model.forward(rows);
    model.output_logical(rows)
}
