//! Products with few output columns (a 10-class layer: H·W2 and Hᵀ·dY), vectorised
//! along the dimension A is contiguous in, so every vector lane does useful work.
//!
//! The register-blocked micro-kernels vectorise along the columns of C: with 10
//! columns, 10 of 16 lanes compute and every tile is an edge tile. Here instead:
//!
//!   `Columns` (A contiguous down its columns, e.g. Hᵀ for dW2 = Hᵀ·dY):
//!       C[i..i+L, j] += A[i..i+L, p] · B[p, j]          one vector per column of C
//!   `Dot` (A contiguous along its rows, e.g. H for logits = H·W2):
//!       C[i, j] = Σ_p A[i, p..p+L] · Bᵀ[j, p..p+L]      L partial sums, then one reduction
//!
//! Each element of C is computed by the same operations whatever rows a call is
//! given, so splitting rows across threads keeps results bit-identical. Neither
//! splits K: B (k × n floats) is small enough to stay in cache for the whole product.

use super::epilogue::Epilogue;
use super::matrix::{MatMut, MatRef};
use super::pack;

pub mod isa;
mod kernels;
pub(crate) mod simd;

/// `Dot`: C[rows, n] = alpha · A · Btᵀ + beta · C, with A(i, p) at `a + i·rsa + p` and
/// Bᵀ(j, p) at `bt + j·rsbt + p`; C(i, j) at `c + i·rsc + j·csc`.
pub type DotKernel = unsafe fn(
    k: usize,
    n: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    bt: *const f32,
    rsbt: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
);

/// `Columns`: C[rows, n] = alpha · A · B + beta · C, with A(i, p) at `a + i + p·csa`,
/// B(p, j) at `b + p·rsb + j·csb`; C(i, j) at `c + i·rsc + j·csc`.
pub type ColumnsKernel = unsafe fn(
    k: usize,
    n: usize,
    rows: usize,
    alpha: f32,
    a: *const f32,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
);

/// One instruction set's skinny-product kernels.
#[derive(Clone, Copy)]
pub struct Skinny {
    /// Floats per vector.
    pub lanes: usize,
    /// Most columns of C `Dot` takes: its accumulators fill the register file, and
    /// beyond it the register-blocked kernels win (measured: `examples/profile`).
    pub max_n: usize,
    /// Most columns for `Columns`, at most `max_n`: with few registers one vector per
    /// column leaves a broadcast per FMA, and the blocked kernels win sooner.
    pub columns_max_n: usize,
    pub dot: DotKernel,
    pub columns: ColumnsKernel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Dot,
    Columns,
}

/// B (k × n) is re-read for every few rows of A: keep it within L2.
const MAX_B_FLOATS: usize = 1 << 16;

impl Skinny {
    /// The skinny route for C[m, n] = A[m, k]·B[k, n], if one suits it. Chosen from the
    /// whole product (before it is split across threads).
    pub fn route(&self, a: MatRef, b: MatRef) -> Option<Route> {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        if n > self.max_n || k * n > MAX_B_FLOATS {
            return None;
        }
        if a.rs == 1 && m >= self.lanes && n <= self.columns_max_n {
            Some(Route::Columns)
        } else if a.cs == 1 && k >= 2 * self.lanes {
            Some(Route::Dot)
        } else {
            None
        }
    }

    /// C = alpha·A·B + beta·C, then the epilogue, on the calling thread. `bt_buf`
    /// holds Bᵀ when `Dot` needs it packed (B not already contiguous along k).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        route: Route,
        alpha: f32,
        a: MatRef,
        b: MatRef,
        beta: f32,
        c: &MatMut,
        epilogue: &Epilogue,
        bt_buf: &mut Vec<f32>,
    ) {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        if m == 0 {
            return;
        }
        unsafe {
            match route {
                Route::Columns => (self.columns)(
                    k,
                    n,
                    m,
                    alpha,
                    a.ptr_at(0, 0),
                    a.cs,
                    b.ptr_at(0, 0),
                    b.rs,
                    b.cs,
                    beta,
                    c.ptr_at(0, 0),
                    c.rs,
                    c.cs,
                ),
                Route::Dot => {
                    // Read in place only when every row of Bᵀ starts on a vector boundary.
                    let (bt, rsbt) = if b.rs == 1
                        && (b.cs as usize).is_multiple_of(self.lanes)
                        && (b.ptr_at(0, 0) as usize).is_multiple_of(4 * self.lanes)
                    {
                        (b.ptr_at(0, 0), b.cs)
                    } else {
                        let (bt, rsbt) = pack_transposed(b, self.lanes, bt_buf);
                        (bt.as_ptr(), rsbt as isize)
                    };
                    (self.dot)(
                        k,
                        n,
                        m,
                        alpha,
                        a.ptr_at(0, 0),
                        a.rs,
                        bt,
                        rsbt,
                        beta,
                        c.ptr_at(0, 0),
                        c.rs,
                        c.cs,
                    )
                }
            }
            epilogue.apply(c, 0, 0, m, n);
        }
    }
}

/// Bᵀ with contiguous rows: returns the packed matrix and its row stride, a multiple
/// of `lanes` from a cache-line-aligned start so that vector loads never split a line.
/// `buf` is grown once and reused.
fn pack_transposed<'a>(b: MatRef, lanes: usize, buf: &'a mut Vec<f32>) -> (&'a [f32], usize) {
    let (k, n) = (b.rows, b.cols);
    let rs = k.next_multiple_of(lanes);
    let dst = pack::aligned(buf, rs * n);
    // Safety: p < k = b.rows, j < n = b.cols. Loops in the order B is contiguous in.
    if b.rs == 1 {
        for (j, row) in dst.chunks_exact_mut(rs).enumerate() {
            for (p, x) in row[..k].iter_mut().enumerate() {
                *x = unsafe { b.at(p, j) };
            }
        }
    } else {
        for p in 0..k {
            for j in 0..n {
                dst[j * rs + p] = unsafe { b.at(p, j) };
            }
        }
    }
    (dst, rs)
}
