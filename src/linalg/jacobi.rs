//! One-sided (Hestenes) Jacobi SVD for the small cuts of low-bond chains.
//!
//! At the cuts of a chain of a few qubits (short side at most 8, long side at most 16) a
//! general SVD or eigensolver spends more time setting up (workspace sizing, allocation,
//! blocking decisions) than computing. Plane rotations on the rows of the short side of the
//! matrix need no workspace beyond the matrix and the accumulated rotation, converge in a few
//! sweeps, and leave the rows pairwise orthogonal to a tolerance relative to their own norms
//! (down to round-off of the whole matrix, `eps^2 |A|^2` in the inner products), so the
//! singular values are the rows' norms and the accumulated rotation is unitary by
//! construction.
//!
//! The rotation that orthogonalises rows `b_i`, `b_j` diagonalises their 2 x 2 Gram matrix
//! `[[a, g], [conj g, b]]` with `a = |b_i|^2`, `b = |b_j|^2`, `g = <b_i, b_j> = |g| e^{i phi}`:
//! `D = diag(1, e^{-i phi})` makes it real, then the real rotation `[[c, s], [-s, c]]` with
//! `t = s / c = sign(z) / (|z| + sqrt(1 + z^2))`, `z = (b - a) / (2 |g|)` diagonalises that
//! (Golub and Van Loan, Algorithm 8.5.1 `sym.schur2`).

use faer::{Mat, MatRef};
use num_complex::Complex64 as C64;

use super::LeftSplit;

/// Largest short side of a cut the Jacobi split takes: a sweep costs about `rows^2 len`
/// complex multiply-adds, and beyond `8 x 8` faer's eigensolver is faster (measured with
/// `cargo bench --bench small`: at 16 x 16 the Jacobi split made `ising_n10` 2x slower).
pub(crate) const JACOBI_MAX_ROWS: usize = 8;

/// Largest long side of a cut of [`JACOBI_MAX_ROWS`] rows the Jacobi split takes: at
/// `8 x 64` faer was faster (the rows are long enough for its vectorised kernels to pay
/// off). Cuts with fewer rows may be longer, up to [`CAP`] entries (see [`takes`]).
pub(crate) const JACOBI_MAX_LEN: usize = 16;

/// Sweeps before the Jacobi split gives up (and the caller falls back to the general SVD).
/// Cyclic Jacobi converges quadratically; a few sweeps are the rule at these sizes.
const MAX_SWEEPS: usize = 30;

/// Orthogonalises the `rows` rows of `b` (row-major, each `len` long) by plane rotations:
/// on return `b` holds `W^H b_in` with rows pairwise orthogonal to `len * eps` relative to
/// their norms, and `w` (`rows x rows`, column-major) holds the unitary `W`, so
/// `b_in = W b`. Returns `false` if the sweeps did not converge or a value is not finite.
fn orthogonalise_rows(b: &mut [C64], rows: usize, len: usize, w: &mut [C64]) -> bool {
    debug_assert_eq!(b.len(), rows * len);
    debug_assert_eq!(w.len(), rows * rows);
    // Rows sorted by decreasing norm first (de Rijk's pivoting: fewer sweeps), so W starts
    // as the permutation: b_in row pi(j) is b row j.
    w.fill(C64::new(0.0, 0.0));
    {
        let mut norms = [0.0f64; JACOBI_MAX_ROWS];
        for (i, n) in norms.iter_mut().enumerate().take(rows) {
            *n = b[i * len..(i + 1) * len].iter().map(|z| z.norm_sqr()).sum();
        }
        let mut pi = [0usize; JACOBI_MAX_ROWS];
        for (j, p) in pi.iter_mut().enumerate() {
            *p = j;
        }
        let pi = &mut pi[..rows];
        pi.sort_by(|&x, &y| norms[y].total_cmp(&norms[x]));
        let mut sorted = [C64::new(0.0, 0.0); JACOBI_MAX_ROWS * JACOBI_MAX_LEN];
        for (j, &p) in pi.iter().enumerate() {
            sorted[j * len..(j + 1) * len].copy_from_slice(&b[p * len..(p + 1) * len]);
            w[j * rows + p] = C64::new(1.0, 0.0);
        }
        b.copy_from_slice(&sorted[..rows * len]);
    }
    let tol = f64::EPSILON * len.max(2) as f64;
    // Inner products below this are round-off of the whole matrix: rotating them away would
    // change entries by less than eps |b|, and rows that small may never converge in the
    // relative test (their squared norms underflow).
    let total: f64 = b.iter().map(|z| z.norm_sqr()).sum();
    let floor = f64::EPSILON * f64::EPSILON * total;
    let row_norm = |r: &[C64]| -> f64 { r.iter().map(|z| z.norm_sqr()).sum() };
    // Squared row norms: exact at the start of each sweep, then updated by the rotations'
    // exact effect on them (a' = a - t|g|, b' = b + t|g|), recomputed when that cancels.
    let mut norms = [0.0f64; JACOBI_MAX_ROWS];
    for _ in 0..MAX_SWEEPS {
        let mut rotated = false;
        for (i, n) in norms.iter_mut().enumerate().take(rows) {
            *n = row_norm(&b[i * len..(i + 1) * len]);
        }
        for i in 0..rows.saturating_sub(1) {
            for j in i + 1..rows {
                let (head, tail) = b.split_at_mut(j * len);
                let bi = &mut head[i * len..(i + 1) * len];
                let bj = &mut tail[..len];
                let (a, bb) = (norms[i], norms[j]);
                let g = dot_conj(bi, bj);
                let sq = g.norm_sqr();
                // The convergence test squared (no square roots, which with the divisions
                // below bound a pair by latency), where `a b` cannot underflow.
                let ab = a * bb;
                if ab > 1e-250 && sq <= tol * tol * ab {
                    continue;
                }
                // `norm()` (an overflow-safe `hypot`) cost 14% of a small circuit; the plain
                // square root is exact unless the square underflows, and the phase below
                // must have modulus 1 to round-off or the rotation is not unitary.
                let abs_g = if sq > 1e-280 { sq.sqrt() } else { g.norm() };
                if !abs_g.is_finite() || !a.is_finite() || !bb.is_finite() {
                    return false;
                }
                if abs_g <= tol * a.sqrt() * bb.sqrt() || abs_g <= floor {
                    continue;
                }
                rotated = true;
                let inv = 1.0 / abs_g;
                let phase = g * inv;
                let z = (bb - a) * (0.5 * inv);
                // sqrt(1 + z^2) without overflow (|z| can reach ~1/tol^2 * a/b); |t| <= 1.
                let root = if z.abs() < 1e150 {
                    (1.0 + z * z).sqrt()
                } else {
                    z.abs()
                };
                let t = z.signum() / (z.abs() + root);
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                let shift = t * abs_g;
                norms[i] = a - shift;
                norms[j] = bb + shift;
                for (x, y) in bi.iter_mut().zip(bj.iter_mut()) {
                    let (p, q) = (*x, phase * *y);
                    *x = p * c - q * s;
                    *y = p * s + q * c;
                }
                let (head, tail) = w.split_at_mut(j * rows);
                let wi = &mut head[i * rows..(i + 1) * rows];
                let wj = &mut tail[..rows];
                let back = phase.conj();
                for (x, y) in wi.iter_mut().zip(wj.iter_mut()) {
                    let (p, q) = (*x, back * *y);
                    *x = p * c - q * s;
                    *y = p * s + q * c;
                }
                if norms[i] < 1e-2 * a {
                    norms[i] = row_norm(&b[i * len..(i + 1) * len]);
                }
                if norms[j] < 1e-2 * bb {
                    norms[j] = row_norm(&b[j * len..(j + 1) * len]);
                }
            }
        }
        if !rotated {
            return true;
        }
    }
    false
}

/// `sum_k x_k conj(y_k)` with four independent accumulators: a single running sum is bound
/// by the latency of one multiply-add per element, which made it most of a small split.
fn dot_conj(x: &[C64], y: &[C64]) -> C64 {
    let mut acc = [C64::new(0.0, 0.0); 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (p, q) in xc.zip(yc) {
        for k in 0..4 {
            acc[k] += p[k] * q[k].conj();
        }
    }
    for (p, q) in xr.iter().zip(yr) {
        acc[0] += p * q.conj();
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Whether [`split_left`] takes an `m x n` matrix: short side at most
/// [`JACOBI_MAX_ROWS`], at most [`CAP`] entries (so `8 x 16`, `4 x 32`, `2 x 64`, `1 x 128`:
/// a sweep costs about `rows^2 len = rows CAP`, no more than at `8 x 16`), and a tall one
/// (reduced by a QR first) at most [`SMALL_QR_MAX_DIM`](super::householder::SMALL_QR_MAX_DIM)
/// rows.
pub(crate) fn takes(m: usize, n: usize) -> bool {
    m.min(n) <= JACOBI_MAX_ROWS
        && m * n <= CAP
        && (m <= n || m <= super::householder::SMALL_QR_MAX_DIM)
}

/// Room for one factor of a small split: `m x k` for `u`, `k x n` for `rest`.
pub(crate) const CAP: usize = JACOBI_MAX_ROWS * JACOBI_MAX_LEN;

/// A left split `A = U (rest)` of a small cut (see [`SmallSplit::split`]), with the
/// workspace it is computed in: `u` is `m x k` column-major, `rest` is `k x n`
/// column-major, `s` the `k` non-increasing row norms of `rest`, `k = min(m, n)`. One value
/// is reused for many cuts (the small path keeps two per thread), so a split neither
/// allocates nor clears its arrays: it writes every entry it later reads.
pub(crate) struct SmallSplit {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub u: [C64; CAP],
    pub s: [f64; JACOBI_MAX_ROWS],
    pub rest: [C64; CAP],
    /// The rows being orthogonalised; the reflectors of a tall cut's QR; `Q W`.
    work: [C64; CAP],
    /// A tall cut's `Q`.
    q: [C64; CAP],
    /// A tall cut's triangular factor `R` (`n x n`).
    r: [C64; JACOBI_MAX_ROWS * JACOBI_MAX_ROWS],
    /// The accumulated rotation `W` (`rows x rows`).
    w: [C64; JACOBI_MAX_ROWS * JACOBI_MAX_ROWS],
}

impl SmallSplit {
    /// An empty split on the heap (about 9 KiB), to be filled by [`split`](Self::split).
    pub fn boxed() -> Box<Self> {
        const Z: C64 = C64::new(0.0, 0.0);
        Box::new(SmallSplit {
            m: 0,
            n: 0,
            k: 0,
            u: [Z; CAP],
            s: [0.0; JACOBI_MAX_ROWS],
            rest: [Z; CAP],
            work: [Z; CAP],
            q: [Z; CAP],
            r: [Z; JACOBI_MAX_ROWS * JACOBI_MAX_ROWS],
            w: [Z; JACOBI_MAX_ROWS * JACOBI_MAX_ROWS],
        })
    }

    /// Fills every array with NaN, so a test can show a split reads nothing it did not
    /// write.
    #[cfg(test)]
    pub fn poison(&mut self) {
        let nan = C64::new(f64::NAN, f64::NAN);
        for a in [&mut self.u, &mut self.rest, &mut self.work, &mut self.q] {
            a.fill(nan);
        }
        self.r.fill(nan);
        self.w.fill(nan);
        self.s.fill(f64::NAN);
    }

    /// `u[(i, t)]`.
    pub fn u(&self, i: usize, t: usize) -> C64 {
        self.u[t * self.m + i]
    }

    /// `rest[(t, j)]`.
    pub fn rest(&self, t: usize, j: usize) -> C64 {
        self.rest[j * self.k + t]
    }

    /// The singular values, non-increasing.
    pub fn s(&self) -> &[f64] {
        &self.s[..self.k]
    }

    /// The left split `A = U (rest)` of a small `a` (see [`takes`]) by one-sided Jacobi on
    /// its rows, into `self`; `false` if that does not converge or a value is not finite
    /// (the caller falls back to the general path; `self` then holds nothing of use).
    ///
    /// As [`super::split_left`]: `u` has orthonormal columns, `s` is non-increasing and
    /// holds the norms of the rows of `rest`, `u * rest = a`. With `m <= n`, `u` is the
    /// accumulated `m x m` rotation; with `m > n` the matrix is first reduced to its `n x n`
    /// triangular factor `A = Q R` and `u = Q W`, so `u` is a product of orthonormal factors
    /// either way (never a normalised vector, which would lose orthogonality for tiny
    /// singular values).
    pub fn split(&mut self, a: MatRef<'_, C64>) -> bool {
        let (m, n) = a.shape();
        debug_assert!(takes(m, n));
        self.m = m;
        self.n = n;
        self.k = m.min(n);
        if m <= n {
            return split_wide(
                a,
                &mut self.work,
                &mut self.w,
                &mut self.u,
                &mut self.s,
                &mut self.rest,
            );
        }
        // A = Q R, R = W rest: u = Q W (m x n).
        for j in 0..n {
            for i in 0..m {
                self.work[j * m + i] = a[(i, j)];
            }
        }
        super::householder::qr_in_place(&mut self.work[..m * n], m, n, &mut self.q[..m * n]);
        for j in 0..n {
            for i in 0..n {
                self.r[j * n + i] = if i <= j {
                    self.work[j * m + i]
                } else {
                    C64::new(0.0, 0.0)
                };
            }
        }
        let r = MatRef::from_column_major_slice(&self.r[..n * n], n, n);
        if !split_wide(
            r,
            &mut self.work,
            &mut self.w,
            &mut self.u,
            &mut self.s,
            &mut self.rest,
        ) {
            return false;
        }
        // u (n x n, in `u`) -> Q u (m x n), through `work`.
        for t in 0..n {
            let wt = &self.u[t * n..(t + 1) * n];
            for i in 0..m {
                self.work[t * m + i] = (0..n).map(|j| self.q[j * m + i] * wt[j]).sum();
            }
        }
        self.u[..m * n].copy_from_slice(&self.work[..m * n]);
        true
    }
}

/// The left split of a wide `a` (`rows <= len`): rows orthogonalised in `b`, rotation in
/// `w`, results (sorted by row norm) in `u` (`rows x rows`), `s`, `rest` (`rows x len`).
fn split_wide(
    a: MatRef<'_, C64>,
    b: &mut [C64],
    w: &mut [C64],
    u: &mut [C64],
    s: &mut [f64],
    rest: &mut [C64],
) -> bool {
    let (rows, len) = a.shape();
    let b = &mut b[..rows * len];
    for i in 0..rows {
        for k in 0..len {
            b[i * len + k] = a[(i, k)];
        }
    }
    let w = &mut w[..rows * rows];
    if !orthogonalise_rows(b, rows, len, w) {
        return false;
    }
    let mut norms = [0.0f64; JACOBI_MAX_ROWS];
    for (i, norm) in norms.iter_mut().enumerate().take(rows) {
        *norm = b[i * len..(i + 1) * len]
            .iter()
            .map(|z| z.norm_sqr())
            .sum::<f64>()
            .sqrt();
    }
    let mut order = [0usize; JACOBI_MAX_ROWS];
    for (t, o) in order.iter_mut().enumerate() {
        *o = t;
    }
    let order = &mut order[..rows];
    order.sort_by(|&x, &y| norms[y].total_cmp(&norms[x]));
    // A = W b: u[:, t] = W[:, o_t], rest[t, :] = b[o_t, :].
    for (t, &o) in order.iter().enumerate() {
        s[t] = norms[o];
        if !s[t].is_finite() {
            return false;
        }
        u[t * rows..(t + 1) * rows].copy_from_slice(&w[o * rows..(o + 1) * rows]);
        for j in 0..len {
            rest[j * rows + t] = b[o * len + j];
        }
    }
    true
}

/// The left split `A = U (rest)` of a small `a` (see [`takes`]) as heap matrices (see
/// [`SmallSplit::split`]), or `None` if the Jacobi sweeps do not converge or a value is not
/// finite (the caller falls back to the general SVD).
pub(crate) fn split_left(a: MatRef<'_, C64>) -> Option<LeftSplit> {
    thread_local! {
        /// One split's workspace per thread (a split writes every entry it reads, so the
        /// workspace is neither allocated nor cleared per call).
        static WORK: std::cell::RefCell<Option<Box<SmallSplit>>> =
            const { std::cell::RefCell::new(None) };
    }
    let take = |f: &mut SmallSplit| {
        if !f.split(a) {
            return None;
        }
        let (m, n, k) = (f.m, f.n, f.k);
        Some(LeftSplit {
            u: Mat::<C64>::from_fn(m, k, |i, t| f.u(i, t)),
            s: f.s().to_vec(),
            rest: Mat::<C64>::from_fn(k, n, |t, j| f.rest(t, j)),
            tail: 0.0,
        })
    };
    WORK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => take(slot.get_or_insert_with(SmallSplit::boxed)),
        // Not expected (a split does not start another); a fresh workspace then.
        Err(_) => take(&mut SmallSplit::boxed()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_support::random_matrix as random;

    fn check(a: &Mat<C64>) -> LeftSplit {
        let (m, n) = a.shape();
        let f = split_left(a.as_ref()).expect("converges");
        // The same from a split whose arrays hold NaN (left from nothing): every entry read
        // is written first.
        let mut g = SmallSplit::boxed();
        g.poison();
        assert!(
            g.split(a.as_ref()),
            "{m}x{n} converges from poisoned buffers"
        );
        for (t, s) in f.s.iter().enumerate() {
            assert_eq!(g.s()[t], *s, "{m}x{n}: s[{t}]");
        }
        for t in 0..f.s.len() {
            for i in 0..m {
                assert_eq!(g.u(i, t), f.u[(i, t)], "{m}x{n}: u");
            }
            for j in 0..n {
                assert_eq!(g.rest(t, j), f.rest[(t, j)], "{m}x{n}: rest");
            }
        }
        let k = f.s.len();
        assert_eq!(k, m.min(n));
        assert!(f.s.windows(2).all(|w| w[0] >= w[1]), "{:?}", f.s);
        let scale = f.s[0].max(1e-300);
        // u * rest = a.
        for i in 0..m {
            for j in 0..n {
                let z: C64 = (0..k).map(|t| f.u[(i, t)] * f.rest[(t, j)]).sum();
                assert!(
                    (z - a[(i, j)]).norm() < 1e-13 * scale,
                    "{m}x{n} at ({i},{j})"
                );
            }
        }
        // Columns of u are orthonormal; rows of rest have norms s and are orthogonal.
        for t in 0..k {
            for r in 0..k {
                let uu: C64 = (0..m).map(|i| f.u[(i, t)].conj() * f.u[(i, r)]).sum();
                let want = if t == r { 1.0 } else { 0.0 };
                assert!((uu - want).norm() < 1e-13, "{m}x{n} u cols {t},{r}: {uu}");
                let rr: C64 = (0..n).map(|j| f.rest[(t, j)] * f.rest[(r, j)].conj()).sum();
                let want = if t == r { f.s[t] * f.s[t] } else { 0.0 };
                assert!(
                    (rr - want).norm() <= 1e-13 * scale * scale,
                    "{m}x{n} rest {t},{r}"
                );
            }
        }
        f
    }

    #[test]
    fn every_shape_and_rank() {
        let mut seed = 0;
        let some = |m: usize| m <= 12 || m.is_multiple_of(13) || m.is_power_of_two();
        for m in (1..=CAP).filter(|&m| some(m)) {
            for n in (1..=CAP).filter(|&n| takes(m, n) && some(n)) {
                for rank in [1, m.min(n).div_ceil(2), m.min(n)] {
                    seed += 1;
                    check(&random(m, n, rank, 0.0, seed));
                }
            }
        }
    }

    /// Short sides up to 8, at most 128 entries; tall cuts only as far as the small QR
    /// goes (32 rows).
    #[test]
    fn takes_cuts_of_up_to_cap_entries() {
        for (m, n) in [
            (8, 16),
            (16, 8),
            (4, 32),
            (32, 4),
            (2, 64),
            (1, 128),
            (1, 1),
        ] {
            assert!(takes(m, n), "{m}x{n}");
        }
        for (m, n) in [(8, 32), (16, 16), (9, 9), (64, 2), (2, 65), (128, 1)] {
            assert!(!takes(m, n), "{m}x{n}");
        }
    }

    #[test]
    fn singular_values_match_faer() {
        // Twelve orders of magnitude between the largest and smallest singular value; both
        // are backward stable, so they agree to round-off of the largest.
        for (m, n) in [
            (8, 8),
            (4, 16),
            (16, 4),
            (8, 16),
            (16, 2),
            (2, 8),
            (2, 64),
            (4, 32),
            (32, 4),
        ] {
            let a = random(m, n, m.min(n), 12.0, (m * 100 + n) as u64);
            let f = check(&a);
            let reference = super::super::checked_svd(
                a.as_ref(),
                crate::Parallelism::Sequential,
                crate::SvdBackend::Faer,
            )
            .expect("faer converges");
            for (x, y) in f.s.iter().zip(&reference.s) {
                assert!((x - y).abs() <= 1e-14 * reference.s[0], "{x} vs {y}");
            }
        }
    }

    #[test]
    fn zero_and_product_inputs() {
        // A zero matrix: all singular values zero, u * rest = 0.
        let f = check(&Mat::<C64>::zeros(4, 2));
        assert!(f.s.iter().all(|&x| x == 0.0));
        // A product state's cut: rank one, exactly.
        let a = Mat::<C64>::from_fn(4, 4, |i, j| {
            C64::new((i + 1) as f64, 0.0) * (j as f64 - 1.5)
        });
        let f = check(&a);
        assert!(f.s[1..].iter().all(|&x| x < 1e-14 * f.s[0]), "{:?}", f.s);
    }

    #[test]
    fn a_cut_from_a_mixed_circuit() {
        // Two non-zero columns with entries down to 1e-21: a cut that once lost 4% of its
        // weight to a precedence slip in the rotation.
        let e = [
            (1.7327624223427386e-17, 2.1281956158297456e-17),
            (-0.6929609079057988, -0.09294784771995866),
            (0.0, 0.0),
            (0.0, 0.0),
            (0.008254936296711023, -0.019302012092862034),
            (-0.05882838983367408, 0.08523137112636418),
            (0.0, 0.0),
            (0.0, 0.0),
            (0.09294784771995855, 0.692960907905799),
            (6.841867490905785e-21, -1.115936929358709e-20),
            (0.0, 0.0),
            (0.0, 0.0),
            (0.013767674633630921, 0.1026431547142099),
            (-0.0013984578365646596, 0.02094650232795681),
            (0.0, 0.0),
            (0.0, 0.0),
        ];
        let a = Mat::<C64>::from_fn(4, 4, |i, j| C64::new(e[i * 4 + j].0, e[i * 4 + j].1));
        let f = check(&a);
        let total: f64 = f.s.iter().map(|x| x * x).sum();
        assert!((total - a.squared_norm_l2()).abs() < 1e-14);
    }

    #[test]
    fn non_finite_input_is_refused() {
        let mut a = random(4, 4, 4, 0.0, 7);
        a[(1, 2)] = C64::new(f64::NAN, 0.0);
        assert!(split_left(a.as_ref()).is_none());
        a[(1, 2)] = C64::new(f64::INFINITY, 0.0);
        assert!(split_left(a.as_ref()).is_none());
    }
}
