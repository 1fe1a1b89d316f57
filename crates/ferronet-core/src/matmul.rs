//! The one matrix product every layer calls: C = alpha·A·B + beta·C, then an
//! optional fused epilogue. ndarray views carry transposes and strides, so no layer
//! copies; the work is done by our own SIMD GEMM (`gemm`) on the current rayon pool.

use crate::gemm::{gemm, Epilogue, MatMut, MatRef};
use ndarray::{ArrayView2, ArrayViewMut2};

/// C[m,n] = alpha · A[m,k] · B[k,n] + beta · C[m,n], then `epilogue`. With beta == 0, C is not read.
pub fn matmul(
    alpha: f32,
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    c: ArrayViewMut2<f32>,
    epilogue: Epilogue,
) {
    gemm(
        alpha,
        MatRef::from_view(a),
        MatRef::from_view(b),
        beta,
        MatMut::from_view(c),
        epilogue,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn transposed_views_and_beta() {
        let a = Array2::from_shape_fn((13, 9), |(i, j)| (i * 9 + j) as f32 / 50.0 - 1.0);
        let b = Array2::from_shape_fn((13, 11), |(i, j)| ((i * 5 + j * 3) % 7) as f32 / 3.0 - 1.0);
        // Aᵀ·B through a transposed view; compare with explicit loops.
        let mut c = Array2::from_elem((9, 11), 1.0f32);
        matmul(2.0, a.t(), b.view(), 0.5, c.view_mut(), Epilogue::None);
        for i in 0..9 {
            for j in 0..11 {
                let s: f32 = (0..13).map(|p| a[[p, i]] * b[[p, j]]).sum();
                assert!((c[[i, j]] - (2.0 * s + 0.5)).abs() < 1e-4);
            }
        }
    }
}
