//! Strided matrix handles: a pointer, a shape and row/column strides in elements.
//! They let one product serve X·W, Xᵀ·dY and dY·Wᵀ without copying a transpose.

use ndarray::{ArrayView2, ArrayViewMut2};
use std::marker::PhantomData;

#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    ptr: *const f32,
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
    _data: PhantomData<&'a [f32]>,
}

// Read-only view of f32s; sharing it across threads is as safe as sharing &[f32].
unsafe impl Send for MatRef<'_> {}
unsafe impl Sync for MatRef<'_> {}

impl<'a> MatRef<'a> {
    /// Row-major `rows × cols` matrix with row stride `rs` (≥ cols) over `data`.
    pub fn from_slice(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * rs + cols <= data.len(),
            "matrix exceeds its slice"
        );
        MatRef {
            ptr: data.as_ptr(),
            rows,
            cols,
            rs: rs as isize,
            cs: 1,
            _data: PhantomData,
        }
    }

    /// Any ndarray view, transposed or strided.
    pub fn from_view(v: ArrayView2<'a, f32>) -> Self {
        let (rows, cols) = v.dim();
        let s = v.strides();
        MatRef {
            ptr: v.as_ptr(),
            rows,
            cols,
            rs: s[0],
            cs: s[1],
            _data: PhantomData,
        }
    }

    /// Rows `r0..r1` and columns `c0..c1`, sharing the data.
    pub fn block(self, r0: usize, r1: usize, c0: usize, c1: usize) -> Self {
        assert!(
            r0 <= r1 && r1 <= self.rows && c0 <= c1 && c1 <= self.cols,
            "block out of range"
        );
        let ptr = if r0 < r1 && c0 < c1 {
            unsafe { self.ptr_at(r0, c0) }
        } else {
            self.ptr
        };
        MatRef {
            ptr,
            rows: r1 - r0,
            cols: c1 - c0,
            ..self
        }
    }

    /// The transpose, by swapping strides.
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    /// # Safety
    /// `i < rows`, `j < cols`.
    #[inline(always)]
    pub unsafe fn at(&self, i: usize, j: usize) -> f32 {
        *self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }

    /// # Safety
    /// `i < rows`, `j < cols`.
    #[inline(always)]
    pub unsafe fn ptr_at(&self, i: usize, j: usize) -> *const f32 {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}

#[derive(Debug)]
pub struct MatMut<'a> {
    ptr: *mut f32,
    pub rows: usize,
    pub cols: usize,
    pub rs: isize,
    pub cs: isize,
    _data: PhantomData<&'a mut [f32]>,
}

// Threads write disjoint tiles of C; the driver guarantees it.
unsafe impl Send for MatMut<'_> {}
unsafe impl Sync for MatMut<'_> {}

impl<'a> MatMut<'a> {
    pub fn from_slice(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(
            rows == 0 || cols == 0 || (rows - 1) * rs + cols <= data.len(),
            "matrix exceeds its slice"
        );
        MatMut {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            rs: rs as isize,
            cs: 1,
            _data: PhantomData,
        }
    }

    pub fn from_view(mut v: ArrayViewMut2<'a, f32>) -> Self {
        let (rows, cols) = v.dim();
        // Copied out (not `to_vec`): building a handle must not allocate, it runs per product.
        let (rs, cs) = (v.strides()[0], v.strides()[1]);
        MatMut {
            ptr: v.as_mut_ptr(),
            rows,
            cols,
            rs,
            cs,
            _data: PhantomData,
        }
    }

    /// Rows `r0..r1` and columns `c0..c1`. Blocks of one matrix that do not overlap
    /// may be written from different threads.
    pub fn block(&self, r0: usize, r1: usize, c0: usize, c1: usize) -> MatMut<'a> {
        assert!(
            r0 <= r1 && r1 <= self.rows && c0 <= c1 && c1 <= self.cols,
            "block out of range"
        );
        let ptr = if r0 < r1 && c0 < c1 {
            unsafe { self.ptr_at(r0, c0) }
        } else {
            self.ptr
        };
        MatMut {
            ptr,
            rows: r1 - r0,
            cols: c1 - c0,
            rs: self.rs,
            cs: self.cs,
            _data: PhantomData,
        }
    }

    /// # Safety
    /// `i < rows`, `j < cols`.
    #[inline(always)]
    pub unsafe fn ptr_at(&self, i: usize, j: usize) -> *mut f32 {
        self.ptr.offset(i as isize * self.rs + j as isize * self.cs)
    }
}
