//! Analytic gradients of every layer and the loss against central finite differences.
//! The layers compute in f32; the scalar objective is summed in f64 and the step h is
//! chosen so f32 rounding stays far below the tolerance.

use ferronet_core::ops::linear::{linear_backward, linear_forward};
use ferronet_core::ops::relu::{relu_backward, relu_forward};
use ferronet_core::loss::{softmax_cross_entropy_backward, softmax_cross_entropy_forward};
use ferronet_core::model::{LayerSpec, Model};
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random2(rng: &mut ChaCha8Rng, r: usize, c: usize, scale: f32) -> Array2<f32> {
    Array2::from_shape_simple_fn((r, c), || rng.random_range(-scale..scale))
}

/// <g, y> in f64: the objective whose gradient w.r.t. y is g.
fn dot(g: &Array2<f32>, y: &Array2<f32>) -> f64 {
    g.iter()
        .zip(y.iter())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

fn assert_close(what: &str, analytic: f32, numeric: f64, tol: f64) {
    let err = (analytic as f64 - numeric).abs();
    let scale = numeric.abs().max(analytic.abs() as f64).max(1e-2);
    assert!(
        err / scale < tol,
        "{what}: analytic {analytic} vs finite difference {numeric} (rel err {})",
        err / scale
    );
}

/// Central difference of `f` w.r.t. element `i` of `x` (restored afterwards).
fn central(x: &mut [f32], i: usize, h: f32, f: &mut dyn FnMut(&[f32]) -> f64) -> f64 {
    let orig = x[i];
    x[i] = orig + h;
    let plus = f(x);
    x[i] = orig - h;
    let minus = f(x);
    x[i] = orig;
    (plus - minus) / (2.0 * h as f64)
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (b, i, o) = (5, 9, 6);
    let mut inp = random2(&mut rng, b, i, 1.0);
    let mut w = random2(&mut rng, o, i, 0.5);
    let mut bias = Array1::from_shape_simple_fn(o, || rng.random_range(-0.5..0.5));
    let g = random2(&mut rng, b, o, 1.0);

    let mut dinp = Array2::zeros((b, i));
    let mut dw = Array2::zeros((o, i));
    let mut db = Array1::zeros(o);
    linear_backward(
        Some(dinp.view_mut()),
        None,
        dw.view_mut().reversed_axes(),
        db.view_mut(),
        g.view(),
        inp.view(),
        w.t(),
    );

    let objective = |inp: &Array2<f32>, w: &Array2<f32>, bias: &Array1<f32>| {
        let mut out = Array2::zeros((b, o));
        linear_forward(out.view_mut(), inp.view(), w.t(), bias.view(), false);
        dot(&g, &out)
    };
    let h = 1e-2;
    for k in 0..w.len() {
        let (inp_c, bias_c) = (inp.clone(), bias.clone());
        let num = central(w.as_slice_mut().unwrap(), k, h, &mut |x| {
            objective(
                &inp_c,
                &Array2::from_shape_vec((o, i), x.to_vec()).unwrap(),
                &bias_c,
            )
        });
        assert_close(
            &format!("dweight[{k}]"),
            dw.as_slice().unwrap()[k],
            num,
            1e-3,
        );
    }
    for k in 0..bias.len() {
        let (inp_c, w_c) = (inp.clone(), w.clone());
        let num = central(bias.as_slice_mut().unwrap(), k, h, &mut |x| {
            objective(&inp_c, &w_c, &Array1::from_vec(x.to_vec()))
        });
        assert_close(&format!("dbias[{k}]"), db[k], num, 1e-3);
    }
    for k in 0..inp.len() {
        let (w_c, bias_c) = (w.clone(), bias.clone());
        let num = central(inp.as_slice_mut().unwrap(), k, h, &mut |x| {
            objective(
                &Array2::from_shape_vec((b, i), x.to_vec()).unwrap(),
                &w_c,
                &bias_c,
            )
        });
        assert_close(
            &format!("dinp[{k}]"),
            dinp.as_slice().unwrap()[k],
            num,
            1e-3,
        );
    }
}

/// Fused forms: relu(x·Wᵀ + b) forward, and a ReLU's mask applied inside the
/// dinp product, against finite differences of the composed functions.
#[test]
fn fused_linear_relu_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (b, i, o) = (4, 7, 5);
    // z away from 0 so the inner ReLU has no kink within h.
    let z = Array2::from_shape_simple_fn((b, i), || {
        let v: f32 = rng.random_range(0.1..1.0);
        if rng.random_bool(0.5) {
            v
        } else {
            -v
        }
    });
    let w = random2(&mut rng, o, i, 0.5);
    let bias = Array1::from_shape_simple_fn(o, || rng.random_range(-0.5..0.5));
    let g = random2(&mut rng, b, o, 1.0);
    let relu = |z: &Array2<f32>| z.mapv(|v| v.max(0.0));

    // L(z) = <g, relu(relu(z)·Wᵀ + b)>: fused forward, then backward through both ReLUs.
    let objective = |z: &Array2<f32>| {
        let mut out = Array2::zeros((b, o));
        linear_forward(out.view_mut(), relu(z).view(), w.t(), bias.view(), true);
        dot(&g, &out)
    };
    let mut out = Array2::zeros((b, o));
    let x = relu(&z);
    linear_forward(out.view_mut(), x.view(), w.t(), bias.view(), true);
    let mut dout = g.clone();
    ferronet_core::ops::relu::mask_inplace(dout.as_slice_mut().unwrap(), out.as_slice().unwrap());
    let mut dz = Array2::zeros((b, i));
    let (mut dw, mut db) = (Array2::zeros((o, i)), Array1::zeros(o));
    linear_backward(
        Some(dz.view_mut()),
        Some(x.view()),
        dw.view_mut().reversed_axes(),
        db.view_mut(),
        dout.view(),
        x.view(),
        w.t(),
    );
    let mut checked = 0;
    for k in 0..z.len() {
        let at = |delta: f32| {
            let mut zz = z.clone();
            zz.as_slice_mut().unwrap()[k] += delta;
            objective(&zz)
        };
        let h = 1e-2;
        let (plus, mid, minus) = (at(h), at(0.0), at(-h));
        // The outer ReLU may have a kink within h of this point: one-sided slopes then disagree.
        if ((plus - mid) - (mid - minus)).abs() / h as f64 > 1e-2 {
            continue;
        }
        let num = (plus - minus) / (2.0 * h as f64);
        assert_close(
            &format!("fused dz[{k}]"),
            dz.as_slice().unwrap()[k],
            num,
            2e-3,
        );
        checked += 1;
    }
    assert!(
        checked + 3 >= b * i,
        "only {checked} of {} points away from kinks",
        b * i
    );
    assert!(
        dz.iter()
            .zip(z.iter())
            .all(|(d, zv)| *zv > 0.0 || *d == 0.0),
        "mask must zero the gradient where z <= 0"
    );
}

#[test]
fn relu_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (b, n) = (4, 11);
    // Keep every input away from the kink at 0, where the derivative is undefined.
    let mut inp = Array2::from_shape_simple_fn((b, n), || {
        let v: f32 = rng.random_range(0.1..1.0);
        if rng.random_bool(0.5) {
            v
        } else {
            -v
        }
    });
    let g = random2(&mut rng, b, n, 1.0);
    let mut out = Array2::zeros((b, n));
    relu_forward(out.view_mut(), inp.view());
    let mut dinp = Array2::zeros((b, n));
    relu_backward(dinp.view_mut(), g.view(), out.view());
    for k in 0..inp.len() {
        let num = central(inp.as_slice_mut().unwrap(), k, 1e-2, &mut |x| {
            let x = Array2::from_shape_vec((b, n), x.to_vec()).unwrap();
            let mut y = Array2::zeros((b, n));
            relu_forward(y.view_mut(), x.view());
            dot(&g, &y)
        });
        assert_close(
            &format!("relu dinp[{k}]"),
            dinp.as_slice().unwrap()[k],
            num,
            1e-3,
        );
    }
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (b, c) = (6, 7);
    // Large logits too, so the max-subtraction path is exercised.
    let mut logits = random2(&mut rng, b, c, 4.0);
    logits[[2, 3]] = 60.0;
    let labels: Vec<u32> = (0..b).map(|r| (r * 3 % c) as u32).collect();
    let mut dlogits = Array2::zeros((b, c));
    let loss = softmax_cross_entropy_backward(dlogits.view_mut(), logits.view(), &labels);
    let fwd = softmax_cross_entropy_forward(logits.view(), &labels);
    assert!(
        (loss.loss_sum - fwd.loss_sum).abs() < 1e-4,
        "fused and forward-only losses differ"
    );
    assert!(fwd.loss_sum.is_finite());
    for k in 0..logits.len() {
        let num = central(logits.as_slice_mut().unwrap(), k, 1e-2, &mut |x| {
            let x = Array2::from_shape_vec((b, c), x.to_vec()).unwrap();
            softmax_cross_entropy_forward(x.view(), &labels).loss_sum / b as f64
        });
        assert_close(
            &format!("dlogits[{k}]"),
            dlogits.as_slice().unwrap()[k],
            num,
            2e-3,
        );
    }
}

#[test]
fn softmax_cross_entropy_is_stable_for_huge_logits() {
    let logits = Array2::from_shape_vec((1, 3), vec![1000.0f32, -1000.0, 999.0]).unwrap();
    let mut d = Array2::zeros((1, 3));
    let l = softmax_cross_entropy_backward(d.view_mut(), logits.view(), &[2]);
    // -log softmax[2] = log(1 + e^-1 + e^-2000) + 1 ≈ 1.3133
    assert!((l.loss_sum - 1.313_261_7).abs() < 1e-4, "{}", l.loss_sum);
    assert!(d.iter().all(|v| v.is_finite()));
}

#[test]
fn whole_model_gradients_match_finite_differences() {
    let specs = [
        LayerSpec::Dense { units: 8 },
        LayerSpec::Relu,
        LayerSpec::Dense { units: 6 },
        LayerSpec::Relu,
        LayerSpec::Dense { units: 4 },
    ];
    let mut model = Model::sequential(5, &specs, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let rows = 7;
    let x: Vec<f32> = (0..rows * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
    let labels: Vec<u32> = (0..rows).map(|r| (r % 4) as u32).collect();

    let fill = |m: &mut Model| {
        let buf = m.input_buffer(rows);
        buf.copy_from_slice(&x);
    };
    fill(&mut model);
    model.forward_backward(rows, &labels);
    let grads: Vec<Vec<f32>> = model.grads().into_iter().map(|g| g.data).collect();
    let params: Vec<Vec<f32>> = model.params().into_iter().map(|p| p.data).collect();
    let mut checked = 0;
    let mut skipped = 0;
    for (t, p) in params.iter().enumerate() {
        for k in 0..p.len() {
            let mut loss_at = |delta: f32| {
                let mut q = p.clone();
                q[k] += delta;
                model.set_param(t, &q).unwrap();
                fill(&mut model);
                let l = model.loss_batch(rows, &labels).loss_sum / rows as f64;
                model.set_param(t, p).unwrap();
                l
            };
            // f32 forward: h = 1e-3 keeps rounding (~1e-4 absolute) below the tolerance.
            let h = 1e-3;
            let (lp, l0, lm) = (loss_at(h), loss_at(0.0), loss_at(-h));
            let num = (lp - lm) / (2.0 * h as f64);
            // A ReLU kink inside [-h, h] shows as one-sided slopes that disagree; skip those points.
            let (right, left) = ((lp - l0) / h as f64, (l0 - lm) / h as f64);
            if (right - left).abs() > 2e-3 {
                skipped += 1;
                continue;
            }
            let err = (grads[t][k] as f64 - num).abs();
            assert!(
                err < 5e-4 + 1e-2 * num.abs(),
                "param {t}[{k}]: analytic {} vs finite difference {num}",
                grads[t][k]
            );
            checked += 1;
        }
    }
    assert!(
        checked == model.param_count() - skipped && skipped < 10,
        "{checked} points checked, {skipped} skipped at ReLU kinks"
    );
}
