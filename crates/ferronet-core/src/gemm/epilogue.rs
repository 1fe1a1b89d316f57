//! Work fused into the product's final write of each tile, while it is still in
//! L1: bias add and ReLU in the forward pass, the ReLU mask in the backward pass.

use super::matrix::{MatMut, MatRef};

#[derive(Clone, Copy, Debug, Default)]
pub enum Epilogue<'a> {
    #[default]
    None,
    /// C[i, j] += bias[j]
    Bias(&'a [f32]),
    /// C[i, j] = max(C[i, j] + bias[j], 0)
    BiasRelu(&'a [f32]),
    /// C[i, j] = 0 where mask[i, j] <= 0 (mask = a ReLU's output: the gradient passes where it was positive)
    ReluMask(MatRef<'a>),
}

impl Epilogue<'_> {
    /// Checks the epilogue's operand against C's shape.
    pub fn check(&self, rows: usize, cols: usize) {
        match self {
            Epilogue::None => {}
            Epilogue::Bias(b) | Epilogue::BiasRelu(b) => {
                assert_eq!(b.len(), cols, "gemm epilogue: bias length")
            }
            Epilogue::ReluMask(m) => {
                assert_eq!((m.rows, m.cols), (rows, cols), "gemm epilogue: mask shape")
            }
        }
    }

    /// The epilogue of the block C[r0..r1, c0..c1], for a product computed block by block.
    pub fn block(&self, r0: usize, r1: usize, c0: usize, c1: usize) -> Self {
        match *self {
            Epilogue::None => Epilogue::None,
            Epilogue::Bias(b) => Epilogue::Bias(&b[c0..c1]),
            Epilogue::BiasRelu(b) => Epilogue::BiasRelu(&b[c0..c1]),
            Epilogue::ReluMask(m) => Epilogue::ReluMask(m.block(r0, r1, c0, c1)),
        }
    }

    /// Applies to the tile C[i0..i0+rows, j0..j0+cols].
    ///
    /// # Safety
    /// The tile lies inside C (and inside the mask).
    #[inline]
    pub unsafe fn apply(&self, c: &MatMut, i0: usize, j0: usize, rows: usize, cols: usize) {
        if matches!(self, Epilogue::None) {
            return;
        }
        if c.cs != 1 {
            return self.apply_strided(c, i0, j0, rows, cols);
        }
        // Unit column stride: whole row slices, which the compiler vectorises.
        for i in i0..i0 + rows {
            let row = std::slice::from_raw_parts_mut(c.ptr_at(i, j0), cols);
            match *self {
                Epilogue::None => {}
                Epilogue::Bias(bias) => row
                    .iter_mut()
                    .zip(&bias[j0..j0 + cols])
                    .for_each(|(x, b)| *x += b),
                Epilogue::BiasRelu(bias) => {
                    row.iter_mut().zip(&bias[j0..j0 + cols]).for_each(|(x, b)| {
                        let v = *x + b;
                        *x = if v > 0.0 { v } else { 0.0 };
                    })
                }
                Epilogue::ReluMask(mask) if mask.cs == 1 => {
                    let m = std::slice::from_raw_parts(mask.ptr_at(i, j0), cols);
                    row.iter_mut()
                        .zip(m)
                        .for_each(|(x, &m)| *x = if m > 0.0 { *x } else { 0.0 });
                }
                Epilogue::ReluMask(mask) => {
                    for (j, x) in row.iter_mut().enumerate() {
                        if mask.at(i, j0 + j) <= 0.0 {
                            *x = 0.0;
                        }
                    }
                }
            }
        }
    }

    /// The general case: any strides.
    unsafe fn apply_strided(&self, c: &MatMut, i0: usize, j0: usize, rows: usize, cols: usize) {
        for i in i0..i0 + rows {
            for j in j0..j0 + cols {
                let x = c.ptr_at(i, j);
                match *self {
                    Epilogue::None => {}
                    Epilogue::Bias(bias) => *x += bias[j],
                    Epilogue::BiasRelu(bias) => {
                        let v = *x + bias[j];
                        *x = if v > 0.0 { v } else { 0.0 };
                    }
                    Epilogue::ReluMask(mask) => {
                        if mask.at(i, j) <= 0.0 {
                            *x = 0.0;
                        }
                    }
                }
            }
        }
    }
}
