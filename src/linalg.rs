//! The linear algebra qfl needs, on top of faer: a checked thin SVD with a fallback ladder,
//! a thin QR, and matrix products. Together with `backend::mps`, this is the only module
//! that imports faer, and the only one that imports ndarray-linalg (feature `lapack`).
//!
//! Every factorization is checked, because faer's divide-and-conquer SVD has been seen to
//! return `Ok` with NaN or inaccurate singular vectors on rank-deficient inputs, and its QR
//! iteration to give up (`NoConvergence`) on ordinary matrices. An SVD is accepted only if
//! its factors are finite and a probe residual `|A x - U S V^H x| / (|A|_F |x|)` is at most
//! [`SVD_RESIDUAL_TOLERANCE`]; otherwise the next algorithm is tried, and if every one fails
//! the caller gets [`Error::SvdFailed`].
//!
//! Which library runs the SVD is a value, [`SvdBackend`], chosen per state: faer's ladder
//! (divide-and-conquer, then QR iteration) or, with the `lapack` feature, the system LAPACK's
//! (`zgesdd`, then `zgesvd`). Both give the same [`Svd`] and pass the same checks, so the
//! callers do not care which one ran.

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::householder::{
    apply_block_householder_sequence_on_the_left_in_place_scratch,
    apply_block_householder_sequence_on_the_left_in_place_with_conj,
};
use faer::linalg::matmul::matmul;
use faer::linalg::qr::no_pivoting::factor::{
    qr_in_place, qr_in_place_scratch, recommended_block_size,
};
use faer::linalg::svd::{ComputeSvdVectors, SvdParams, svd, svd_scratch};
use faer::traits::Conjugate;
use faer::{Accum, Conj, Mat, MatMut, MatRef, Par};
use num_complex::Complex64 as C64;

mod householder;
mod jacobi;

pub(crate) use householder::{SMALL_QR_MAX_DIM, qr_in_place as small_qr_in_place};
pub(crate) use jacobi::{CAP as SMALL_SPLIT_CAP, SmallSplit, takes as small_split_takes};

use crate::backend::Parallelism;
use crate::error::{Error, Result};

/// Largest accepted relative probe residual of an SVD.
pub const SVD_RESIDUAL_TOLERANCE: f64 = 1e-12;

/// Which library computes the singular value decompositions of a state's cuts.
///
/// Chosen per state with [`MpsConfig::with_svd`](crate::MpsConfig::with_svd). Every variant
/// exists in every build; [`SvdBackend::Lapack`] needs the cargo feature `lapack`, and
/// choosing it in a build without the feature is an [`Error::FeatureNotEnabled`] when the
/// state is created (see [`SvdBackend::check_available`]). Whichever runs, a result is
/// accepted only if it is finite and passes the probe residual check
/// ([`SVD_RESIDUAL_TOLERANCE`]), and each backend falls back to a slower, more robust
/// algorithm before giving up with [`Error::SvdFailed`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SvdBackend {
    /// faer, pure Rust (the default): divide-and-conquer, then QR iteration. Runs on the
    /// threads the state's [`Parallelism`] allows.
    #[default]
    Faer,
    /// The system LAPACK through ndarray-linalg (OpenBLAS on Debian, installed by
    /// `scripts/install-lapack.sh`): `zgesdd` (divide-and-conquer), then `zgesvd`. Needs the
    /// cargo feature `lapack`. It runs on OpenBLAS's own threads, which [`Parallelism`] does
    /// not control: set `OPENBLAS_NUM_THREADS` (to 1 when states already run in parallel).
    Lapack,
}

impl SvdBackend {
    /// Every backend, in a fixed order (available in this build or not).
    pub const ALL: [SvdBackend; 2] = [SvdBackend::Faer, SvdBackend::Lapack];

    /// The lower-case name used on the command line and in reports: `faer` or `lapack`.
    pub fn name(self) -> &'static str {
        match self {
            SvdBackend::Faer => "faer",
            SvdBackend::Lapack => "lapack",
        }
    }

    /// Whether this build of qfl can run this backend (`Lapack` needs the feature `lapack`).
    pub fn is_available(self) -> bool {
        match self {
            SvdBackend::Faer => true,
            SvdBackend::Lapack => cfg!(feature = "lapack"),
        }
    }

    /// `Ok` if this build can run this backend.
    ///
    /// # Errors
    /// [`Error::FeatureNotEnabled`] for [`SvdBackend::Lapack`] in a build without the cargo
    /// feature `lapack`.
    pub fn check_available(self) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(Error::FeatureNotEnabled {
                what: "the LAPACK SVD backend (SvdBackend::Lapack)",
                feature: "lapack",
            })
        }
    }
}

impl std::fmt::Display for SvdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SvdBackend {
    type Err = Error;

    /// Parses `faer` or `lapack` (any case). A name that parses may still be unavailable in
    /// this build: see [`SvdBackend::check_available`].
    fn from_str(text: &str) -> Result<Self> {
        SvdBackend::ALL
            .into_iter()
            .find(|b| b.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| Error::Parse {
                what: "SVD backend",
                text: text.to_string(),
                reason: "expected faer or lapack".to_string(),
            })
    }
}

/// Converts our parallelism value to faer's.
pub(crate) fn par(p: Parallelism) -> Par {
    match p {
        Parallelism::Sequential => Par::Seq,
        Parallelism::Rayon(n) => Par::rayon(n),
    }
}

/// Below this largest dimension a factorization or product runs on one thread whatever the
/// state's [`Parallelism`]: at the `128 x 128` cuts of max bond 64 two threads made a
/// two-site update 25% slower (1.89 ms -> 2.36 ms, `cargo bench --bench update`), at the
/// `512 x 512` cuts of max bond 256 they make it 1.4x faster.
pub(crate) const PAR_MIN_DIM: usize = 256;

/// [`par`] for an operation whose largest matrix dimension is `dim`: sequential when small.
pub(crate) fn par_for(p: Parallelism, dim: usize) -> Par {
    if dim < PAR_MIN_DIM { Par::Seq } else { par(p) }
}

/// A thin SVD `A = U diag(s) V^H` with non-increasing `s`.
#[derive(Clone, Debug)]
pub(crate) struct Svd {
    pub u: Mat<C64>,
    pub s: Vec<f64>,
    pub v: Mat<C64>,
}

/// Which rung of faer's ladder produced an SVD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SvdAlgorithm {
    DivideAndConquer,
    QrIteration,
}

fn svd_with(a: MatRef<'_, C64>, algo: SvdAlgorithm, p: Par) -> std::result::Result<Svd, String> {
    let (m, n) = a.shape();
    let k = m.min(n);
    let mut params = <SvdParams as faer::Auto<C64>>::auto();
    if algo == SvdAlgorithm::QrIteration {
        params.recursion_threshold = usize::MAX;
    }
    let mut buf = MemBuffer::new(svd_scratch::<C64>(
        m,
        n,
        ComputeSvdVectors::Thin,
        ComputeSvdVectors::Thin,
        p,
        params.into(),
    ));
    let mut u = Mat::<C64>::zeros(m, k);
    let mut v = Mat::<C64>::zeros(n, k);
    let mut s = faer::diag::Diag::<C64>::zeros(k);
    svd(
        a,
        s.as_mut(),
        Some(u.as_mut()),
        Some(v.as_mut()),
        p,
        MemStack::new(&mut buf),
        params.into(),
    )
    .map_err(|e| format!("{algo:?}: {e:?}"))?;
    let s: Vec<f64> = (0..k).map(|i| s[i].re).collect();
    let out = Svd { u, s, v };
    check_svd(a, &out).map_err(|r| format!("{algo:?}: {r}"))?;
    Ok(out)
}

fn all_finite(m: MatRef<'_, C64>) -> bool {
    (0..m.ncols())
        .all(|j| (0..m.nrows()).all(|i| m[(i, j)].re.is_finite() && m[(i, j)].im.is_finite()))
}

/// Finite factors and a small probe residual.
fn check_svd(a: MatRef<'_, C64>, f: &Svd) -> std::result::Result<(), String> {
    if f.s.iter().any(|x| !x.is_finite()) || !all_finite(f.u.as_ref()) || !all_finite(f.v.as_ref())
    {
        return Err("non-finite singular values or vectors".into());
    }
    let (m, n) = a.shape();
    let norm_a = a.norm_l2();
    if !norm_a.is_finite() {
        return Err("input is not finite".into());
    }
    if norm_a == 0.0 {
        return Ok(());
    }
    // Deterministic probe with all entries of modulus 1 and spread phases.
    let x: Vec<C64> = (0..n)
        .map(|j| C64::from_polar(1.0, 0.7 * j as f64 + 0.3))
        .collect();
    let mut ax = vec![C64::new(0.0, 0.0); m];
    for j in 0..n {
        for i in 0..m {
            ax[i] += a[(i, j)] * x[j];
        }
    }
    // U S V^H x
    let k = f.s.len();
    let mut vhx = vec![C64::new(0.0, 0.0); k];
    for (t, out) in vhx.iter_mut().enumerate() {
        let mut acc = C64::new(0.0, 0.0);
        for j in 0..n {
            acc += f.v[(j, t)].conj() * x[j];
        }
        *out = acc * f.s[t];
    }
    let mut resid = 0.0;
    for i in 0..m {
        let mut acc = ax[i];
        for t in 0..k {
            acc -= f.u[(i, t)] * vhx[t];
        }
        resid += acc.norm_sqr();
    }
    let rel = resid.sqrt() / (norm_a * (n as f64).sqrt());
    if rel > SVD_RESIDUAL_TOLERANCE {
        return Err(format!(
            "probe residual {rel:.2e} above {SVD_RESIDUAL_TOLERANCE:.0e}"
        ));
    }
    Ok(())
}

/// Checked thin SVD by `backend`, with its fallback ladder: divide-and-conquer -> QR
/// iteration (faer), or `zgesdd` -> `zgesvd` (LAPACK). `parallelism` applies to faer only.
///
/// # Errors
/// [`Error::SvdFailed`] when every rung fails or is rejected by the checks;
/// [`Error::FeatureNotEnabled`] for [`SvdBackend::Lapack`] without the `lapack` feature
/// (states reject that choice when they are created, so the MPS never sees it).
pub(crate) fn checked_svd(
    a: MatRef<'_, C64>,
    parallelism: Parallelism,
    backend: SvdBackend,
) -> Result<Svd> {
    let (m, n) = a.shape();
    if m == 0 || n == 0 {
        return Ok(Svd {
            u: Mat::zeros(m, 0),
            s: Vec::new(),
            v: Mat::zeros(n, 0),
        });
    }
    // NaN or infinite entries can never give an accepted SVD; LAPACK is not even asked
    // (some of its iterations are not guaranteed to stop on NaN).
    if !all_finite(a) {
        return Err(Error::SvdFailed {
            rows: m,
            cols: n,
            reason: "input is not finite".into(),
        });
    }
    let mut reasons = Vec::new();
    match backend {
        SvdBackend::Faer => {
            let p = par_for(parallelism, m.max(n));
            for algo in [SvdAlgorithm::DivideAndConquer, SvdAlgorithm::QrIteration] {
                match svd_with(a, algo, p) {
                    Ok(f) => return Ok(f),
                    Err(r) => reasons.push(r),
                }
            }
        }
        SvdBackend::Lapack => {
            #[cfg(feature = "lapack")]
            for algo in [lapack::Driver::Gesdd, lapack::Driver::Gesvd] {
                match lapack::svd_with(a, algo) {
                    Ok(f) => return Ok(f),
                    Err(r) => reasons.push(r),
                }
            }
            #[cfg(not(feature = "lapack"))]
            backend.check_available()?;
        }
    }
    Err(Error::SvdFailed {
        rows: m,
        cols: n,
        reason: reasons.join("; "),
    })
}

/// The system LAPACK's SVD through ndarray-linalg (feature `lapack`).
#[cfg(feature = "lapack")]
mod lapack {
    use faer::{Mat, MatRef};
    use ndarray::{Array2, ShapeBuilder};
    use ndarray_linalg::{JobSvd, SVDDCInto, SVDInto};
    use num_complex::Complex64 as C64;

    use super::{Svd, check_svd};

    /// Which LAPACK driver computes the SVD.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Driver {
        /// `zgesdd`, divide-and-conquer, thin factors.
        Gesdd,
        /// `zgesvd`, QR iteration; ndarray-linalg only offers full factors here, the thin
        /// ones are their leading columns (it is the fallback, so the extra work is rare).
        Gesvd,
    }

    /// One LAPACK SVD, converted to our [`Svd`] and checked like faer's.
    pub(super) fn svd_with(a: MatRef<'_, C64>, driver: Driver) -> Result<Svd, String> {
        let (m, n) = a.shape();
        let k = m.min(n);
        // Column-major, as LAPACK stores matrices, so ndarray-linalg passes it without a
        // transpose. (One copy: LAPACK overwrites its input.)
        let owned = Array2::from_shape_fn((m, n).f(), |(i, j)| a[(i, j)]);
        let result = match driver {
            Driver::Gesdd => owned.svddc_into(JobSvd::Some),
            Driver::Gesvd => owned.svd_into(true, true),
        };
        let (u, s, vt) = result.map_err(|e| format!("{driver:?}: {e}"))?;
        let (Some(u), Some(vt)) = (u, vt) else {
            return Err(format!("{driver:?}: LAPACK returned no singular vectors"));
        };
        if s.len() < k || u.dim().0 != m || u.dim().1 < k || vt.dim().0 < k || vt.dim().1 != n {
            return Err(format!(
                "{driver:?}: unexpected shapes U {:?}, s {}, V^H {:?} for a {m}x{n} input",
                u.dim(),
                s.len(),
                vt.dim()
            ));
        }
        let out = Svd {
            u: Mat::from_fn(m, k, |i, t| u[(i, t)]),
            s: s.iter().take(k).copied().collect(),
            v: Mat::from_fn(n, k, |j, t| vt[(t, j)].conj()),
        };
        check_svd(a, &out).map_err(|r| format!("{driver:?}: {r}"))?;
        Ok(out)
    }
}

/// A checked thin SVD `A = U diag(s) V^H` (`k = min(rows, cols)` columns in `U` and `V`,
/// `s` non-increasing), as [`thin_svd`] returns it.
///
/// It wraps the factors the MPS uses, so [`thin_svd`] costs what a cut's SVD costs inside
/// a state, and reads entries by index instead of exposing a matrix type.
#[derive(Clone, Debug)]
pub struct ThinSvd(Svd);

impl ThinSvd {
    /// The singular values, non-increasing, `min(rows, cols)` of them.
    pub fn singular_values(&self) -> &[f64] {
        &self.0.s
    }

    /// Entry `(i, t)` of `U` (`rows x k`).
    ///
    /// # Panics
    /// If `i >= rows` or `t >= k`.
    pub fn u(&self, i: usize, t: usize) -> C64 {
        self.0.u[(i, t)]
    }

    /// Entry `(j, t)` of `V` (`cols x k`; the factorization uses `V^H`).
    ///
    /// # Panics
    /// If `j >= cols` or `t >= k`.
    pub fn v(&self, j: usize, t: usize) -> C64 {
        self.0.v[(j, t)]
    }
}

/// The checked thin SVD of a `rows x cols` matrix stored column-major in `a`, by `backend`:
/// the same routine, fallback ladder and checks that an [`MpsState`](crate::MpsState) uses
/// on its cuts. `parallelism` applies to [`SvdBackend::Faer`] only.
///
/// ```
/// use num_complex::Complex64 as C64;
/// use qfl::{Parallelism, SvdBackend};
/// # fn main() -> qfl::Result<()> {
/// // [[3, 0], [0, 4]] column-major.
/// let a = [C64::new(3.0, 0.0), C64::new(0.0, 0.0), C64::new(0.0, 0.0), C64::new(4.0, 0.0)];
/// let f = qfl::thin_svd(&a, 2, 2, SvdBackend::Faer, Parallelism::Sequential)?;
/// assert!((f.singular_values()[0] - 4.0).abs() < 1e-12);
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] if `a.len() != rows * cols`; [`Error::FeatureNotEnabled`] for
/// [`SvdBackend::Lapack`] without the `lapack` feature; [`Error::SvdFailed`] if every
/// algorithm fails (a non-finite input, for one).
pub fn thin_svd(
    a: &[C64],
    rows: usize,
    cols: usize,
    backend: SvdBackend,
    parallelism: Parallelism,
) -> Result<ThinSvd> {
    backend.check_available()?;
    if rows.checked_mul(cols) != Some(a.len()) {
        return Err(Error::LengthMismatch {
            what: "thin_svd: matrix entries (rows * cols)",
            expected: rows.saturating_mul(cols),
            got: a.len(),
        });
    }
    let view = MatRef::from_column_major_slice(a, rows, cols);
    checked_svd(view, parallelism, backend).map(ThinSvd)
}

/// Thin QR `A = Q R`, `Q` of shape `m x k` with orthonormal columns, `R` of shape `k x n`
/// upper triangular, `k = min(m, n)`.
pub(crate) fn thin_qr(a: MatRef<'_, C64>, parallelism: Parallelism) -> (Mat<C64>, Mat<C64>) {
    let (m, n) = a.shape();
    if m.max(n) <= householder::SMALL_QR_MAX_DIM {
        return householder::thin_qr(a);
    }
    let p = par_for(parallelism, m.max(n));
    let k = m.min(n);
    let mut qr = a.to_owned();
    let bs = recommended_block_size::<C64>(m, n).max(1);
    let mut coeff = Mat::<C64>::zeros(bs, k);
    let mut buf = MemBuffer::new(StackReq::any_of(&[
        qr_in_place_scratch::<C64>(m, n, bs, p, Default::default()),
        apply_block_householder_sequence_on_the_left_in_place_scratch::<C64>(m, bs, k),
    ]));
    qr_in_place(
        qr.as_mut(),
        coeff.as_mut(),
        p,
        MemStack::new(&mut buf),
        Default::default(),
    );
    let r = Mat::<C64>::from_fn(k, n, |i, j| {
        if i <= j {
            qr[(i, j)]
        } else {
            C64::new(0.0, 0.0)
        }
    });
    let mut q = Mat::<C64>::identity(m, k);
    apply_block_householder_sequence_on_the_left_in_place_with_conj(
        qr.as_ref().get(.., ..k),
        coeff.as_ref(),
        Conj::No,
        q.as_mut(),
        p,
        MemStack::new(&mut buf),
    );
    (q, r)
}

/// `c = a * b` (overwriting `c`).
pub(crate) fn mul<A, B>(
    c: MatMut<'_, C64>,
    a: MatRef<'_, A>,
    b: MatRef<'_, B>,
    parallelism: Parallelism,
) where
    A: Conjugate<Canonical = C64>,
    B: Conjugate<Canonical = C64>,
{
    let dim = c.nrows().max(c.ncols()).max(a.ncols());
    matmul(
        c,
        Accum::Replace,
        a,
        b,
        C64::new(1.0, 0.0),
        par_for(parallelism, dim),
    );
}

/// How a matrix is split into an isometry and a remainder at a two-site update.
///
/// Both give the best rank-`k` approximation of the matrix for every `k` (up to rounding);
/// they differ in cost and in how precisely the *smallest* singular values come out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SplitMethod {
    /// The self-adjoint eigendecomposition of the Gram matrix `A A^H`: the eigenvectors are
    /// the left singular vectors, the eigenvalues the squared singular values, and the
    /// remainder is the exact product `U^H A`. Measured 1.2x faster than faer's SVD at the
    /// `128 x 128` cuts of max bond 64 and 1.2-1.4x at the `512 x 512` cuts of max bond 256
    /// (`cargo bench --bench update`, see `docs/performance.md`). The singular values are
    /// the norms of the rows of `U^H A`, so the weight truncation discards is exact; the
    /// singular *directions* of values below about `1e-8 |A|` are resolved only to a weight
    /// of about `1e-16 |A|^2` each, so at cutoffs near `1e-16` a cut may keep a few more
    /// tiny directions than the SVD would. The factors are orthonormal to machine precision.
    /// A matrix with more rows than columns is first reduced to its square triangular
    /// factor by a thin QR (the Gram matrix is then `n x n`, not `m x m`). If the
    /// eigensolver fails its checks, the SVD is used.
    #[default]
    Gram,
    /// The checked SVD with its fallback ladder: every singular value to relative precision.
    Svd,
}

/// `A = U R` with `U` (`m x k`) having orthonormal columns, `R = diag(s) V^H` (`k x n`) and
/// `s` the non-increasing singular values, `k = min(m, n)`.
pub(crate) struct LeftSplit {
    pub u: Mat<C64>,
    pub s: Vec<f64>,
    pub rest: Mat<C64>,
    /// The weight (squared norm) of `A` outside the directions returned: 0 but for
    /// [`split_left_keeping`]'s splits that computed only the directions a truncation keeps.
    pub tail: f64,
}

/// Splits `a` into a left isometry and a remainder by `method`; see [`SplitMethod`].
pub(crate) fn split_left(
    a: MatRef<'_, C64>,
    method: SplitMethod,
    parallelism: Parallelism,
    svd: SvdBackend,
) -> Result<LeftSplit> {
    split_left_keeping(a, method, parallelism, svd, |_| None)
}

/// [`split_left`], where `certain` may say from the Gram eigenvalues (non-decreasing) that a
/// truncation will keep exactly the directions of the `k` largest (see
/// `Truncation::certain_keep`): a wide `a` split by the Gram matrix then has only those `k`
/// rows of `U^H A` computed, and the weight of the rest returned as
/// [`tail`](LeftSplit::tail). When the target bond is well below the cut's rank this saves
/// most of the split's largest product.
pub(crate) fn split_left_keeping(
    a: MatRef<'_, C64>,
    method: SplitMethod,
    parallelism: Parallelism,
    svd: SvdBackend,
    certain: impl Fn(&[f64]) -> Option<usize>,
) -> Result<LeftSplit> {
    let (m, n) = a.shape();
    if svd == SvdBackend::Faer
        && jacobi::takes(m, n)
        && let Some(f) = jacobi::split_left(a)
    {
        return Ok(f);
    }
    if method == SplitMethod::Gram
        && let Some(f) = gram_split(a, parallelism, certain)
    {
        return Ok(f);
    }
    let f = checked_svd(a, parallelism, svd)?;
    let k = f.s.len();
    let rest = Mat::<C64>::from_fn(k, a.ncols(), |t, j| f.v[(j, t)].conj() * f.s[t]);
    Ok(LeftSplit {
        u: f.u,
        s: f.s,
        rest,
        tail: 0.0,
    })
}

/// The Gram-matrix split, or `None` when its checks fail (non-finite output, or eigenvalues
/// that do not add up to `|A|_F^2`). A tall `a` is first reduced to its triangular factor
/// ([`tall_gram_split`]).
///
/// The singular values are taken as the norms of the rows of `U^H A`, not as square roots of
/// the eigenvalues: eigenvalues carry an absolute error of about `m eps |A|^2`, so a square
/// root would turn a zero singular value into `~1e-7 |A|` and no cut would ever shrink. The
/// row norms are exact weights of the (orthonormal) directions `u_t`, so what truncation
/// discards and the discarded weight it records are exact; directions the eigensolver could
/// not resolve (a cluster of tiny eigenvalues) carry at most about `eps |A|^2` of weight each.
///
/// With `certain` (see [`split_left_keeping`]) saying `k`, only the eigenvectors of the `k`
/// largest eigenvalues are applied, and the weight they leave out is `|A|_F^2` less theirs.
fn gram_split(
    a: MatRef<'_, C64>,
    parallelism: Parallelism,
    certain: impl Fn(&[f64]) -> Option<usize>,
) -> Option<LeftSplit> {
    let (m, n) = a.shape();
    if m > n {
        return tall_gram_split(a, parallelism);
    }
    let p = par_for(parallelism, n);
    let (vals, vecs) = gram_eigen(a, p)?;
    // Eigenvalues are non-decreasing: the k largest are the last k columns, taken in
    // reverse so that the rows of `U^H A` come out in the order of their norms but where
    // round-off swaps near-equal ones (then they are sorted, a pass over `U^H A`).
    let (k, tail) = match certain(&vals) {
        Some(k) if k < m => (k, true),
        _ => (m, false),
    };
    let vecs = Mat::<C64>::from_fn(m, k, |i, t| vecs[(i, m - 1 - t)]);
    let m = k;
    let mut full = Mat::<C64>::zeros(m, n);
    matmul(
        full.as_mut(),
        Accum::Replace,
        vecs.adjoint(),
        a,
        C64::new(1.0, 0.0),
        p,
    );
    // Row norms by a column-major sweep: entries are bounded by |A|, so the plain sum of
    // squares cannot overflow, and faer's robust strided `row.norm_l2()` cost 10% of a gate.
    let mut sq = vec![0.0f64; m];
    for j in 0..n {
        for (acc, z) in sq.iter_mut().zip(full.col(j).iter()) {
            *acc += z.norm_sqr();
        }
    }
    let norms: Vec<f64> = sq.into_iter().map(f64::sqrt).collect();
    let (u, rest, s) = by_weight(vecs, full, norms);
    let tail = if tail {
        (a.squared_norm_l2() - s.iter().map(|x| x * x).sum::<f64>()).max(0.0)
    } else {
        0.0
    };
    Some(LeftSplit { u, s, rest, tail })
}

/// The directions `u` (columns), their rows `rest` of `U^H A` and those rows' norms `s`,
/// reordered by non-increasing norm (stably) if they are not already in that order.
fn by_weight(u: Mat<C64>, rest: Mat<C64>, s: Vec<f64>) -> (Mat<C64>, Mat<C64>, Vec<f64>) {
    if s.is_sorted_by(|x, y| x >= y) {
        return (u, rest, s);
    }
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&x, &y| s[y].total_cmp(&s[x]));
    let u = Mat::<C64>::from_fn(u.nrows(), s.len(), |i, t| u[(i, order[t])]);
    let rest = Mat::<C64>::from_fn(s.len(), rest.ncols(), |t, j| rest[(order[t], j)]);
    let s = order.iter().map(|&t| s[t]).collect();
    (u, rest, s)
}

/// [`gram_split`] of a tall `a` (`m > n`, the cuts near the right end of a chain, or a
/// window's left end after the adjoint): `A = Q R` by a thin QR, `R = U_R (rest)` by the Gram
/// split of the `n x n` factor, so `A = (Q U_R) rest`. `U_R^H R = U_R^H Q^H A`, so the
/// remainder, its row norms (the singular values) and what truncation discards are those of
/// `A`, and `Q U_R` is orthonormal to the precision of the two factors. The Gram matrix of
/// `A` itself would be `m x m` of rank `n`; before this reduction such cuts took the SVD.
/// `Q U_R` needs no finiteness check of its own: both factors are orthonormal, and
/// [`gram_split`] has checked `U_R` (a non-finite `A` makes `R`, so that split, decline).
fn tall_gram_split(a: MatRef<'_, C64>, parallelism: Parallelism) -> Option<LeftSplit> {
    let (q, r) = thin_qr(a, parallelism);
    let f = gram_split(r.as_ref(), parallelism, |_| None)?;
    let mut u = Mat::<C64>::zeros(a.nrows(), f.u.ncols());
    matmul(
        u.as_mut(),
        Accum::Replace,
        q.as_ref(),
        f.u.as_ref(),
        C64::new(1.0, 0.0),
        par_for(parallelism, a.nrows()),
    );
    Some(LeftSplit {
        u,
        s: f.s,
        rest: f.rest,
        tail: 0.0,
    })
}

/// The eigenvalues (non-decreasing) and eigenvectors of `A A^H` (of which only the lower
/// triangle is formed: the eigensolver reads only that half), with the checks of
/// [`self_adjoint_eigen`] (the trace `|A|_F^2`); `None` when they fail or `A` is zero
/// or not finite.
pub(crate) fn gram_eigen(a: MatRef<'_, C64>, p: Par) -> Option<(Vec<f64>, Mat<C64>)> {
    let m = a.nrows();
    let norm2 = a.squared_norm_l2();
    if !norm2.is_finite() || norm2 == 0.0 {
        return None;
    }
    let mut g = Mat::<C64>::zeros(m, m);
    faer::linalg::matmul::triangular::matmul(
        g.as_mut(),
        faer::linalg::matmul::triangular::BlockStructure::TriangularLower,
        Accum::Replace,
        a,
        faer::linalg::matmul::triangular::BlockStructure::Rectangular,
        a.adjoint(),
        faer::linalg::matmul::triangular::BlockStructure::Rectangular,
        C64::new(1.0, 0.0),
        p,
    );
    self_adjoint_eigen(g.as_ref(), norm2, p)
}

/// Eigenvalues (non-decreasing) and eigenvectors (columns) of the self-adjoint `g` of which only
/// the lower triangle is read, or `None` if the eigensolver fails, its output is not finite,
/// or its eigenvalues do not add up to `trace` (`|A|_F^2` for a Gram matrix `g = A A^H`).
pub(crate) fn self_adjoint_eigen(
    g: MatRef<'_, C64>,
    trace: f64,
    p: Par,
) -> Option<(Vec<f64>, Mat<C64>)> {
    let m = g.nrows();
    let params = <faer::linalg::evd::SelfAdjointEvdParams as faer::Auto<C64>>::auto();
    let mut buf = MemBuffer::new(faer::linalg::evd::self_adjoint_evd_scratch::<C64>(
        m,
        faer::linalg::evd::ComputeEigenvectors::Yes,
        p,
        params.into(),
    ));
    let mut vecs = Mat::<C64>::zeros(m, m);
    let mut vals = faer::diag::Diag::<C64>::zeros(m);
    faer::linalg::evd::self_adjoint_evd(
        g,
        vals.as_mut(),
        Some(vecs.as_mut()),
        p,
        MemStack::new(&mut buf),
        params.into(),
    )
    .ok()?;
    let vals: Vec<f64> = (0..m).map(|i| vals[i].re).collect();
    let total: f64 = vals.iter().sum();
    if !total.is_finite() || (total - trace).abs() > 1e-10 * trace || !all_finite(vecs.as_ref()) {
        return None;
    }
    Some((vals, vecs))
}

/// Test matrices shared by the linear-algebra tests.
#[cfg(test)]
pub(crate) mod test_support {
    use faer::Mat;
    use num_complex::Complex64 as C64;
    use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

    /// A random complex `m x n` matrix of rank at most `rank`, its singular values spread
    /// over about `spread` orders of magnitude (0: no grading), from `seed`.
    pub(crate) fn random_matrix(
        m: usize,
        n: usize,
        rank: usize,
        spread: f64,
        seed: u64,
    ) -> Mat<C64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut g = |r: usize, c: usize| {
            Mat::<C64>::from_fn(r, c, |_, _| {
                C64::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5)
            })
        };
        let (x, y) = (g(m, rank), g(rank, n));
        Mat::<C64>::from_fn(m, n, |i, j| {
            (0..rank)
                .map(|t| x[(i, t)] * y[(t, j)] * 10f64.powf(-spread * t as f64 / rank as f64))
                .sum()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(m: usize, n: usize, rank: usize, seed: u64) -> Mat<C64> {
        test_support::random_matrix(m, n, rank, 0.0, seed)
    }

    fn tol(m: usize, n: usize) -> f64 {
        f64::EPSILON * (8.0 * m.max(n) as f64).sqrt() * 100.0
    }

    #[test]
    fn svd_reconstructs_every_shape() {
        for &(m, n, r) in &[
            (1, 1, 1),
            (2, 8, 2),
            (8, 2, 2),
            (16, 16, 16),
            (64, 32, 5),
            (32, 64, 32),
            (128, 128, 3),
        ] {
            let a = random(m, n, r, (m * 1000 + n) as u64);
            let f = checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Faer).unwrap();
            assert!(
                f.s.windows(2).all(|w| w[0] >= w[1]),
                "singular values sorted"
            );
            let k = f.s.len();
            let rec = Mat::<C64>::from_fn(m, n, |i, j| {
                (0..k)
                    .map(|t| f.u[(i, t)] * f.s[t] * f.v[(j, t)].conj())
                    .sum()
            });
            let err = (&rec - &a).norm_l2() / a.norm_l2();
            assert!(err < tol(m, n), "{m}x{n}: {err}");
            // Orthonormal columns of U.
            let mut g = Mat::<C64>::zeros(k, k);
            mul(
                g.as_mut(),
                f.u.adjoint(),
                f.u.as_ref(),
                Parallelism::Sequential,
            );
            let dev = (&g - Mat::<C64>::identity(k, k)).norm_max();
            assert!(dev < tol(m, n) * 10.0, "{m}x{n}: U^H U deviates by {dev}");
        }
    }

    #[test]
    fn svd_rejects_non_finite_input() {
        let mut a = random(4, 4, 4, 1);
        a[(1, 2)] = C64::new(f64::NAN, 0.0);
        assert!(matches!(
            checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Faer),
            Err(Error::SvdFailed {
                rows: 4,
                cols: 4,
                ..
            })
        ));
    }

    /// LAPACK (`zgesdd`, then `zgesvd`) against faer on random full-rank and rank-deficient
    /// complex matrices of every shape: the same singular values, and both reconstruct.
    #[cfg(feature = "lapack")]
    #[test]
    fn lapack_agrees_with_faer() {
        let reconstruction = |f: &Svd, m: usize, n: usize| {
            let k = f.s.len();
            Mat::<C64>::from_fn(m, n, |i, j| {
                (0..k)
                    .map(|t| f.u[(i, t)] * f.s[t] * f.v[(j, t)].conj())
                    .sum()
            })
        };
        let shapes = [
            (1, 1, 1),
            (1, 7, 1),
            (7, 1, 1),
            (2, 8, 2),
            (8, 2, 1),
            (16, 16, 16),
            (16, 16, 3),
            (32, 32, 1),
            (64, 32, 5),
            (32, 64, 32),
            (64, 64, 64),
            (128, 128, 3),
            (128, 128, 64),
            (96, 160, 40),
        ];
        for &(m, n, r) in &shapes {
            let a = random(m, n, r, (m * 7919 + n * 31 + r) as u64);
            let faer = checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Faer).unwrap();
            for driver in [lapack::Driver::Gesdd, lapack::Driver::Gesvd] {
                let lap = lapack::svd_with(a.as_ref(), driver)
                    .unwrap_or_else(|e| panic!("{m}x{n} rank {r}: {e}"));
                let k = m.min(n);
                assert_eq!(
                    (lap.u.shape(), lap.v.shape(), lap.s.len()),
                    ((m, k), (n, k), k)
                );
                assert!(lap.s.windows(2).all(|w| w[0] >= w[1]), "sorted");
                let scale = faer.s[0];
                let worst = faer
                    .s
                    .iter()
                    .zip(&lap.s)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst <= tol(m, n) * scale,
                    "{m}x{n} rank {r} {driver:?}: singular values differ by {worst:e}"
                );
                // The rank shows the same in both: values past it are round-off.
                assert!(lap.s[r.min(k) - 1] > 1e-8 * scale);
                assert!(lap.s.iter().skip(r).all(|&x| x <= 1e-12 * scale));
                let err = (&reconstruction(&lap, m, n) - &a).norm_l2() / a.norm_l2();
                assert!(
                    err < tol(m, n),
                    "{m}x{n} {driver:?}: reconstruction {err:e}"
                );
                let mut g = Mat::<C64>::zeros(k, k);
                mul(
                    g.as_mut(),
                    lap.u.adjoint(),
                    lap.u.as_ref(),
                    Parallelism::Sequential,
                );
                let dev = (&g - Mat::<C64>::identity(k, k)).norm_max();
                assert!(
                    dev < tol(m, n) * 10.0,
                    "{m}x{n} {driver:?}: U^H U off by {dev:e}"
                );
            }
            // And through the dispatcher, as the MPS calls it.
            let lap = checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Lapack).unwrap();
            let err = (&reconstruction(&lap, m, n) - &a).norm_l2() / a.norm_l2();
            assert!(err < tol(m, n));
        }
    }

    #[cfg(feature = "lapack")]
    #[test]
    fn lapack_rejects_non_finite_input() {
        let mut a = random(5, 3, 3, 2);
        a[(4, 0)] = C64::new(0.0, f64::INFINITY);
        assert!(matches!(
            checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Lapack),
            Err(Error::SvdFailed {
                rows: 5,
                cols: 3,
                ..
            })
        ));
    }

    #[test]
    fn empty_matrix_has_an_empty_svd() {
        for backend in SvdBackend::ALL.into_iter().filter(|b| b.is_available()) {
            let a = Mat::<C64>::zeros(0, 3);
            let f = checked_svd(a.as_ref(), Parallelism::Sequential, backend).unwrap();
            assert_eq!((f.u.shape(), f.s.len(), f.v.shape()), ((0, 0), 0, (3, 0)));
        }
    }

    #[test]
    fn qr_reconstructs_every_shape() {
        for &(m, n) in &[(1, 1), (2, 6), (6, 2), (16, 16), (128, 64), (64, 128)] {
            let a = random(m, n, m.min(n), 7 + m as u64);
            let (q, r) = thin_qr(a.as_ref(), Parallelism::Sequential);
            let k = m.min(n);
            assert_eq!((q.nrows(), q.ncols(), r.nrows(), r.ncols()), (m, k, k, n));
            let mut rec = Mat::<C64>::zeros(m, n);
            mul(
                rec.as_mut(),
                q.as_ref(),
                r.as_ref(),
                Parallelism::Sequential,
            );
            assert!((&rec - &a).norm_l2() / a.norm_l2() < tol(m, n));
            let mut g = Mat::<C64>::zeros(k, k);
            mul(g.as_mut(), q.adjoint(), q.as_ref(), Parallelism::Sequential);
            assert!((&g - Mat::<C64>::identity(k, k)).norm_max() < tol(m, n) * 10.0);
        }
    }

    fn check_split(a: &Mat<C64>, f: &LeftSplit, what: &str) {
        let (m, n) = a.shape();
        let k = m.min(n);
        assert_eq!(
            (f.u.nrows(), f.u.ncols(), f.rest.nrows(), f.rest.ncols()),
            (m, k, k, n)
        );
        assert!(f.s.windows(2).all(|w| w[0] >= w[1]), "{what}: s sorted");
        let mut rec = Mat::<C64>::zeros(m, n);
        mul(
            rec.as_mut(),
            f.u.as_ref(),
            f.rest.as_ref(),
            Parallelism::Sequential,
        );
        let err = (&rec - a).norm_l2() / a.norm_l2();
        assert!(
            err < tol(m, n) * 10.0,
            "{what} {m}x{n}: reconstruction {err}"
        );
        let mut g = Mat::<C64>::zeros(k, k);
        mul(
            g.as_mut(),
            f.u.adjoint(),
            f.u.as_ref(),
            Parallelism::Sequential,
        );
        let dev = (&g - Mat::<C64>::identity(k, k)).norm_max();
        assert!(
            dev < tol(m, n) * 10.0,
            "{what} {m}x{n}: U^H U deviates by {dev}"
        );
        // Row t of the remainder has norm s[t] (to the precision of the method).
        for t in 0..k {
            let row = f.rest.row(t).norm_l2();
            assert!(
                (row - f.s[t]).abs() < 1e-7 * f.s[0],
                "{what}: row {t} {row} vs {}",
                f.s[t]
            );
        }
    }

    #[test]
    fn gram_and_svd_splits_agree_on_every_shape() {
        for &(m, n, r) in &[
            (1, 1, 1),
            (2, 8, 2),
            (8, 2, 2),
            (16, 16, 16),
            (64, 32, 5),
            (32, 64, 32),
            (128, 128, 3),
            (128, 128, 128),
        ] {
            let a = random(m, n, r, (m * 31 + n) as u64);
            let g = split_left(
                a.as_ref(),
                SplitMethod::Gram,
                Parallelism::Sequential,
                SvdBackend::Faer,
            )
            .unwrap();
            let s = split_left(
                a.as_ref(),
                SplitMethod::Svd,
                Parallelism::Sequential,
                SvdBackend::Faer,
            )
            .unwrap();
            check_split(&a, &g, "gram");
            check_split(&a, &s, "svd");
            // Squared singular values agree to rounding of the largest.
            for (x, y) in g.s.iter().zip(&s.s) {
                assert!(
                    (x * x - y * y).abs() < 1e-12 * s.s[0] * s.s[0],
                    "{m}x{n}: {x} vs {y}"
                );
            }
            // The leading singular subspaces agree: |U_g^H U_s| = 1 on well-separated values.
            let k = r.min(m).min(n);
            if k <= 5 {
                for t in 0..k {
                    let overlap: C64 = (0..m).map(|i| g.u[(i, t)].conj() * s.u[(i, t)]).sum();
                    assert!((overlap.norm() - 1.0).abs() < 1e-8, "{m}x{n}: vector {t}");
                }
            }
        }
    }

    #[test]
    fn tall_cuts_take_the_reduced_gram_split() {
        // Tall cuts were sent to the SVD; they now go through QR then the Gram split of the
        // triangular factor. Checked on the function itself (a `None` here would fall back
        // to the SVD and hide a failure), against the SVD's singular values, on shapes from
        // the small Householder QR (both sides <= 32) to faer's blocked one, full and low rank.
        for &(m, n, r, spread) in &[
            (2, 1, 1, 0.0),
            (12, 5, 5, 0.0),
            (32, 16, 16, 8.0),
            (40, 8, 3, 0.0),
            (128, 64, 64, 12.0),
            (200, 37, 20, 4.0),
        ] {
            let a = test_support::random_matrix(m, n, r, spread, (m * 7 + n) as u64);
            let f = gram_split(a.as_ref(), Parallelism::Sequential, |_| None)
                .unwrap_or_else(|| panic!("{m}x{n}: the reduced Gram split declined"));
            check_split(&a, &f, "tall gram");
            let svd = checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Faer).unwrap();
            for (x, y) in f.s.iter().zip(&svd.s) {
                assert!(
                    (x * x - y * y).abs() < 1e-12 * svd.s[0] * svd.s[0],
                    "{m}x{n}: {x} vs {y}"
                );
            }
        }
        // Non-finite and zero input decline (the caller's SVD then reports or handles it).
        let mut bad = test_support::random_matrix(20, 4, 4, 0.0, 3);
        bad[(7, 1)] = C64::new(f64::NAN, 0.0);
        assert!(gram_split(bad.as_ref(), Parallelism::Sequential, |_| None).is_none());
        let zero = Mat::<C64>::zeros(20, 4);
        assert!(gram_split(zero.as_ref(), Parallelism::Sequential, |_| None).is_none());
    }

    /// A wide Gram split told that a truncation keeps the `k` largest directions returns
    /// those: orthonormal, with the SVD's `k` largest singular values, `rest = U^H A`, and
    /// the weight of the others as its tail; without `certain`, every direction and no tail.
    #[test]
    fn a_split_keeping_k_returns_the_k_largest_and_the_tail() {
        for &(m, n, k, spread, par) in &[
            (8, 40, 3, 2.0, Parallelism::Sequential),
            (64, 256, 16, 6.0, Parallelism::Sequential),
            (160, 300, 100, 3.0, Parallelism::Rayon(2)),
        ] {
            let a = test_support::random_matrix(m, n, m, spread, (m + k) as u64);
            let svd = checked_svd(a.as_ref(), Parallelism::Sequential, SvdBackend::Faer).unwrap();
            let f = split_left_keeping(a.as_ref(), SplitMethod::Gram, par, SvdBackend::Faer, |w| {
                assert_eq!(w.len(), m);
                Some(k)
            })
            .unwrap();
            assert_eq!(
                (f.u.ncols(), f.s.len(), f.rest.nrows()),
                (k, k, k),
                "{m}x{n}"
            );
            let scale = svd.s[0] * svd.s[0];
            for (x, y) in f.s.iter().zip(&svd.s) {
                assert!((x * x - y * y).abs() < 1e-12 * scale, "{m}x{n}: {x} vs {y}");
            }
            let tail: f64 = svd.s[k..].iter().map(|x| x * x).sum();
            assert!(
                (f.tail - tail).abs() < 1e-12 * scale,
                "{m}x{n}: tail {}",
                f.tail
            );
            let gram = f.u.adjoint() * &f.u;
            let projected = f.u.adjoint() * &a;
            for i in 0..k {
                for j in 0..k {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((gram[(i, j)] - C64::new(want, 0.0)).norm() < 1e-12);
                }
                for j in 0..n {
                    assert!((projected[(i, j)] - f.rest[(i, j)]).norm() < 1e-12);
                }
            }
            let all = split_left(a.as_ref(), SplitMethod::Gram, par, SvdBackend::Faer).unwrap();
            assert_eq!((all.s.len(), all.tail), (m, 0.0));
        }
    }

    /// The Gram split takes its directions in the eigensolver's order, largest first, and
    /// reorders them only where the exact row norms disagree: then by non-increasing norm,
    /// stably, the directions and rows moved together.
    #[test]
    fn directions_are_reordered_by_weight_only_when_out_of_order() {
        let u = Mat::<C64>::from_fn(3, 3, |i, t| C64::new((10 * i + t) as f64, 0.0));
        let rest = Mat::<C64>::from_fn(3, 2, |t, j| C64::new(t as f64, j as f64));
        let (u1, r1, s1) = by_weight(u.clone(), rest.clone(), vec![3.0, 2.0, 2.0]);
        assert_eq!((u1, r1, s1), (u.clone(), rest.clone(), vec![3.0, 2.0, 2.0]));
        let (u2, r2, s2) = by_weight(u.clone(), rest.clone(), vec![1.0, 3.0, 1.0]);
        assert_eq!(s2, vec![3.0, 1.0, 1.0]);
        for (t, from) in [1, 0, 2].into_iter().enumerate() {
            assert_eq!(u2.col(t), u.col(from), "direction {t}");
            assert_eq!(r2.row(t), rest.row(from), "row {t}");
        }
    }

    #[test]
    fn gram_split_falls_back_on_bad_input() {
        let zero = Mat::<C64>::zeros(4, 6);
        let f = split_left(
            zero.as_ref(),
            SplitMethod::Gram,
            Parallelism::Sequential,
            SvdBackend::Faer,
        )
        .unwrap();
        assert!(f.s.iter().all(|&x| x == 0.0));
        let mut a = random(4, 4, 4, 1);
        a[(1, 2)] = C64::new(f64::NAN, 0.0);
        assert!(matches!(
            split_left(
                a.as_ref(),
                SplitMethod::Gram,
                Parallelism::Sequential,
                SvdBackend::Faer
            ),
            Err(Error::SvdFailed { .. })
        ));
    }
}
