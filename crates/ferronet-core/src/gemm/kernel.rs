//! Micro-kernels and their run-time selection.
//!
//! A micro-kernel computes one MR×NR tile of C (the BLIS contract):
//!   C[MR,NR] = alpha · A[MR,k] · B[k,NR] + beta · C[MR,NR]
//! where A(i, p) is at `a + i·rsa + p·csa` (a packed micro-panel: rsa = 1, csa = MR),
//! B is k rows of NR floats with row stride `rsb` (packed: `rsb = NR`), and C has row
//! stride `rsc` and unit column stride. Only the first `nc` ≤ NR columns of C are
//! read or written (a ragged right edge needs no buffer). With beta == 0, C is never
//! read (it may hold NaN garbage). Each ISA has a wide tile for general products and a narrow one for
//! products with few columns, each in a packed-A and a strided-A version.

use super::skinny::Skinny;
use std::sync::OnceLock;

/// `unsafe`: pointers must cover the tile; the kernel's ISA must be available.
pub type MicroKernel = unsafe fn(
    k: usize,
    alpha: f32,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    beta: f32,
    c: *mut f32,
    rsc: usize,
    nc: usize,
);

/// Declares a tile shape as the constant `$tile`, with its two entry points over the
/// calling module's generic `body::<MR, X>` (X vectors of the module's `LANES` floats
/// per row): `$packed` with A's strides fixed at compile time (1, MR), `$strided` with
/// A's strides passed in. MR and NR are stated once, so the tile the driver iterates
/// is always the tile the kernel computes. Attributes given first (the ISA's
/// `target_feature`) go on both entry points: only then can `body` inline into them and
/// the packed entry's strides become constants (else the row addresses of A form a
/// serial chain of adds, measured at 10% of a 2048² product).
macro_rules! micro_kernel_tile {
    ($(#[$attr:meta])* $tile:ident, $packed:ident, $strided:ident, $mr:literal, $x:literal) => {
        const $tile: Tile = Tile {
            mr: $mr,
            nr: LANES * $x,
            packed: $packed,
            strided: $strided,
        };
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $packed(
            k: usize,
            alpha: f32,
            a: *const f32,
            _rsa: usize,
            _csa: usize,
            b: *const f32,
            rsb: usize,
            beta: f32,
            c: *mut f32,
            rsc: usize,
            nc: usize,
        ) {
            body::<$mr, $x>(k, alpha, a, 1, $mr, b, rsb, beta, c, rsc, nc)
        }
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $strided(
            k: usize,
            alpha: f32,
            a: *const f32,
            rsa: usize,
            csa: usize,
            b: *const f32,
            rsb: usize,
            beta: f32,
            c: *mut f32,
            rsc: usize,
            nc: usize,
        ) {
            body::<$mr, $x>(k, alpha, a, rsa, csa, b, rsb, beta, c, rsc, nc)
        }
    };
}
pub(crate) use micro_kernel_tile;

/// One register-block shape and its micro-kernels.
#[derive(Clone, Copy)]
pub struct Tile {
    pub mr: usize,
    pub nr: usize,
    /// A from a packed panel: strides are compile-time constants.
    pub packed: MicroKernel,
    /// A read in place with the given strides.
    pub strided: MicroKernel,
}

/// One instruction set's micro-kernels with the cache-block depth.
#[derive(Clone, Copy)]
pub struct Kernel {
    pub name: &'static str,
    /// Depth of one packed block (A panel MC×KC lives in L2, B panel KC×NR in L1).
    pub kc: usize,
    pub wide: Tile,
    /// Used when C has at most `narrow.nr` columns, where the wide tile would mostly compute padding.
    pub narrow: Tile,
    /// Kernels for products with few columns, vectorised along A's contiguous side.
    pub skinny: Option<Skinny>,
}

impl Kernel {
    /// The KC depth for a product with `n` columns: a narrow B panel is small, so a
    /// deeper slice still fits L1 and saves a pass over C.
    pub fn kc_for(&self, n: usize) -> usize {
        if n <= self.narrow.nr {
            2 * self.kc
        } else {
            self.kc
        }
    }

    /// The tile for a product with `n` columns.
    pub fn tile_for(&self, n: usize) -> Tile {
        if n <= self.narrow.nr {
            self.narrow
        } else {
            self.wide
        }
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Kernel({} {}x{}, narrow {}x{})",
            self.name, self.wide.mr, self.wide.nr, self.narrow.mr, self.narrow.nr
        )
    }
}

/// Every kernel compiled for this architecture, best first, whether or not the CPU runs it.
fn compiled() -> Vec<(Kernel, fn() -> bool)> {
    let mut v: Vec<(Kernel, fn() -> bool)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        v.push((super::avx512::KERNEL, || {
            is_x86_feature_detected!("avx512f")
        }));
        v.push((super::avx2::KERNEL, || {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        }));
    }
    #[cfg(target_arch = "aarch64")]
    {
        v.push((super::neon::KERNEL, || {
            std::arch::is_aarch64_feature_detected!("neon")
        }));
    }
    v.push((super::scalar::KERNEL, || true));
    v
}

/// Kernels this CPU can run, best first.
pub fn available() -> Vec<Kernel> {
    compiled()
        .into_iter()
        .filter(|(_, ok)| ok())
        .map(|(k, _)| k)
        .collect()
}

/// A runnable kernel by name (`avx512`, `avx2`, `neon`, `scalar`).
pub fn by_name(name: &str) -> Option<Kernel> {
    available().into_iter().find(|k| k.name == name)
}

/// Environment variable that forces a kernel for the whole process, e.g. `FERRONET_GEMM_KERNEL=avx2`.
pub const KERNEL_ENV: &str = "FERRONET_GEMM_KERNEL";

/// The kernel used by default: the best one this CPU runs, unless `FERRONET_GEMM_KERNEL`
/// names another runnable one. Detected once.
pub fn selected() -> Kernel {
    static SELECTED: OnceLock<Kernel> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        let forced = std::env::var(KERNEL_ENV).ok().filter(|s| !s.is_empty());
        match forced {
            Some(name) => by_name(&name).unwrap_or_else(|| {
                let names: Vec<_> = available().iter().map(|k| k.name).collect();
                eprintln!("ferronet: {KERNEL_ENV}={name} is not available on this CPU (available: {}); using {}", names.join(", "), names[0]);
                available()[0]
            }),
            None => available()[0],
        }
    })
}
