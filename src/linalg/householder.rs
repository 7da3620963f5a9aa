//! Unblocked Householder QR for the small site tensors of low-bond chains.
//!
//! Moving the orthogonality centre one site factors a `2chi x chi` site. At `chi <= 16` the
//! blocked QR spends more on workspace sizing and allocation than on arithmetic; plain
//! reflections on a stack copy do the same arithmetic without either. Reflector `j` maps
//! column `j` below the diagonal to `alpha e_1` with `alpha = -e^{i arg x_0} |x|` (the sign that
//! avoids cancellation), as in LAPACK's `zgeqr2`.

use faer::{Mat, MatRef};
use num_complex::Complex64 as C64;

/// Largest dimension (rows and columns) [`thin_qr`] takes.
pub(crate) const SMALL_QR_MAX_DIM: usize = 32;

const ZERO: C64 = C64::new(0.0, 0.0);

/// Thin QR `A = Q R` of a small `a` (both dimensions at most [`SMALL_QR_MAX_DIM`]): `Q` is
/// `m x k` with orthonormal columns, `R` is `k x n` upper triangular, `k = min(m, n)`.
pub(crate) fn thin_qr(a: MatRef<'_, C64>) -> (Mat<C64>, Mat<C64>) {
    let (m, n) = a.shape();
    debug_assert!(m <= SMALL_QR_MAX_DIM && n <= SMALL_QR_MAX_DIM);
    let k = m.min(n);
    // Column-major working copy; reflector j is stored in `v` (rows j.., column j) with
    // `beta[j] = 2 / |v_j|^2` (0 for the identity).
    let mut w = [ZERO; SMALL_QR_MAX_DIM * SMALL_QR_MAX_DIM];
    for j in 0..n {
        for i in 0..m {
            w[j * m + i] = a[(i, j)];
        }
    }
    let mut v = [ZERO; SMALL_QR_MAX_DIM * SMALL_QR_MAX_DIM];
    let mut beta = [0.0f64; SMALL_QR_MAX_DIM];
    for j in 0..k {
        let x = &w[j * m + j..(j + 1) * m];
        let norm = x.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        let x0 = x[0];
        if x[1..].iter().all(|z| *z == ZERO) {
            // Already zero below the diagonal: no reflection.
            continue;
        }
        let phase = if x0 == ZERO {
            C64::new(1.0, 0.0)
        } else {
            x0 / x0.norm_sqr().sqrt()
        };
        let alpha = -phase * norm;
        let vj = &mut v[j * m + j..(j + 1) * m];
        vj.copy_from_slice(x);
        vj[0] -= alpha;
        let vnorm2: f64 = vj.iter().map(|z| z.norm_sqr()).sum();
        beta[j] = 2.0 / vnorm2;
        // Column j becomes alpha e_1; later columns get H = I - beta v v^H.
        w[j * m + j] = alpha;
        w[j * m + j + 1..(j + 1) * m].fill(ZERO);
        for c in j + 1..n {
            let col = &mut w[c * m + j..(c + 1) * m];
            let d: C64 = vj.iter().zip(col.iter()).map(|(p, q)| p.conj() * q).sum();
            let f = d * beta[j];
            for (q, p) in col.iter_mut().zip(vj.iter()) {
                *q -= f * p;
            }
        }
    }
    let r = Mat::<C64>::from_fn(k, n, |i, j| if i <= j { w[j * m + i] } else { ZERO });
    // Q = H_0 H_1 ... H_{k-1} I[:, :k], the last reflector applied first.
    let mut q = Mat::<C64>::identity(m, k);
    for j in (0..k).rev() {
        if beta[j] == 0.0 {
            continue;
        }
        let vj = &v[j * m + j..(j + 1) * m];
        for c in j..k {
            let d: C64 = (j..m).map(|i| vj[i - j].conj() * q[(i, c)]).sum();
            let f = d * beta[j];
            for i in j..m {
                q[(i, c)] -= f * vj[i - j];
            }
        }
    }
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(m: usize, n: usize, rank: usize, seed: u64) -> Mat<C64> {
        super::super::test_support::random_matrix(m, n, rank, 0.0, seed)
    }

    fn check(a: &Mat<C64>) {
        let (m, n) = a.shape();
        let k = m.min(n);
        let (q, r) = thin_qr(a.as_ref());
        assert_eq!((q.nrows(), q.ncols(), r.nrows(), r.ncols()), (m, k, k, n));
        let scale = a.norm_l2().max(1e-300);
        for i in 0..m {
            for j in 0..n {
                let z: C64 = (0..k).map(|t| q[(i, t)] * r[(t, j)]).sum();
                assert!(
                    (z - a[(i, j)]).norm() < 1e-14 * scale,
                    "{m}x{n} at ({i},{j})"
                );
            }
        }
        for s in 0..k {
            for t in 0..k {
                let z: C64 = (0..m).map(|i| q[(i, s)].conj() * q[(i, t)]).sum();
                let want = if s == t { 1.0 } else { 0.0 };
                assert!(
                    (z - want).norm() < 1e-14,
                    "{m}x{n} Q^H Q at ({s},{t}) = {z}"
                );
            }
            for j in 0..s.min(n) {
                assert_eq!(r[(s, j)], ZERO, "R below the diagonal");
            }
        }
    }

    #[test]
    fn every_shape_and_rank() {
        let mut seed = 0;
        for m in 1..=SMALL_QR_MAX_DIM {
            for n in 1..=SMALL_QR_MAX_DIM {
                if m > 8 && n > 8 && (m + n) % 5 != 0 {
                    continue;
                }
                for rank in [1, m.min(n).div_ceil(2), m.min(n)] {
                    seed += 1;
                    check(&random(m, n, rank, seed));
                }
            }
        }
    }

    #[test]
    fn zero_identity_and_negative_diagonal_inputs() {
        check(&Mat::<C64>::zeros(6, 3));
        check(&Mat::<C64>::identity(4, 4));
        check(&Mat::<C64>::from_fn(4, 2, |i, j| {
            if i == j { C64::new(-2.0, 0.0) } else { ZERO }
        }));
        // A zero column between non-zero ones.
        let mut a = random(6, 4, 4, 9);
        for i in 0..6 {
            a[(i, 1)] = ZERO;
        }
        check(&a);
    }
}
