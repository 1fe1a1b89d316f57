//! The one matrix product every layer calls: C = alpha·A·B + beta·C.
//!
//! Transposes and strides come in as ndarray views (`w.t()`), so no layer copies.
//! Today it rides on ndarray's `general_mat_mul` (the `matrixmultiply` crate) and
//! splits the output across the current rayon pool; our own SIMD GEMM replaces
//! the body of this function without touching any caller.
//!
//! Determinism: threads split C's rows or columns, never the K reduction, so
//! every element is computed by the same sequence of operations whatever the
//! thread count.

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Products smaller than this many multiply-adds stay on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;
/// Split granularity, so each thread's tile keeps whole register blocks.
const SPLIT_ALIGN: usize = 16;

/// C[m,n] = alpha · A[m,k] · B[k,n] + beta · C[m,n]. With beta == 0, C is not read.
pub fn matmul(alpha: f32, a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: ArrayViewMut2<f32>) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert_eq!(k, k2, "matmul: inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "matmul: output shape");
    let threads = rayon::current_num_threads();
    if threads <= 1 || m * n * k < PARALLEL_MIN_MACS {
        product(alpha, a, b, beta, c);
        return;
    }
    // Split the longer output side into one chunk per thread.
    let (axis, len) = if m >= n { (Axis(0), m) } else { (Axis(1), n) };
    let chunk = len.div_ceil(threads).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
    let chunk = chunk.max(1);
    rayon::scope(|s| {
        let mut c_rest = c;
        let mut start = 0;
        while start < len {
            let size = chunk.min(len - start);
            let (c_part, rest) = c_rest.split_at(axis, size);
            c_rest = rest;
            let (a_part, b_part) = if axis == Axis(0) {
                (a.slice_axis(Axis(0), (start..start + size).into()), b)
            } else {
                (a, b.slice_axis(Axis(1), (start..start + size).into()))
            };
            s.spawn(move |_| product(alpha, a_part, b_part, beta, c_part));
            start += size;
        }
    });
}

fn product(alpha: f32, a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, mut c: ArrayViewMut2<f32>) {
    if beta == 0.0 {
        // BLAS rule: C may hold garbage (NaN) when beta is zero; never let it leak in.
        c.fill(0.0);
    }
    general_mat_mul(alpha, &a, &b, beta, &mut c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        let (m, k) = a.dim();
        let n = b.dim().1;
        Array2::from_shape_fn((m, n), |(i, j)| (0..k).map(|p| a[[i, p]] as f64 * b[[p, j]] as f64).sum::<f64>() as f32)
    }

    #[test]
    fn matches_naive_and_is_thread_count_independent() {
        let a = Array2::from_shape_fn((130, 97), |(i, j)| ((i * 7 + j * 3) % 11) as f32 / 7.0 - 0.6);
        let b = Array2::from_shape_fn((97, 70), |(i, j)| ((i * 5 + j) % 13) as f32 / 9.0 - 0.5);
        let expect = naive(&a, &b);
        let mut outs = vec![];
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = Array2::from_elem((130, 70), f32::NAN);
            pool.install(|| matmul(1.0, a.view(), b.view(), 0.0, c.view_mut()));
            for (x, y) in c.iter().zip(expect.iter()) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
            outs.push(c);
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        // Transposed operands go through views, with beta accumulation.
        let at = a.t().to_owned();
        let mut c = expect.clone();
        matmul(2.0, at.t(), b.view(), -1.0, c.view_mut());
        for (x, y) in c.iter().zip(expect.iter()) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
