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
    let mut w = vec![ZERO; m * n];
    for j in 0..n {
        for i in 0..m {
            w[j * m + i] = a[(i, j)];
        }
    }
    let mut q = Mat::<C64>::zeros(m, k);
    let mut qv = vec![ZERO; m * k];
    qr_in_place(&mut w, m, n, &mut qv);
    for t in 0..k {
        for i in 0..m {
            q[(i, t)] = qv[t * m + i];
        }
    }
    let r = Mat::<C64>::from_fn(k, n, |i, j| if i <= j { w[j * m + i] } else { ZERO });
    (q, r)
}

/// `col <- (I - beta v v^H) col` for the reflector `v = (v0, v_tail)`.
fn reflect(col: &mut [C64], v0: C64, v_tail: &[C64], beta: f64) {
    let d: C64 = v0.conj() * col[0]
        + v_tail
            .iter()
            .zip(&col[1..])
            .map(|(p, q)| p.conj() * q)
            .sum::<C64>();
    let f = d * beta;
    col[0] -= f * v0;
    for (q, p) in col[1..].iter_mut().zip(v_tail) {
        *q -= f * p;
    }
}

/// Thin QR in place of the column-major `m x n` matrix `w` (both dimensions at most
/// [`SMALL_QR_MAX_DIM`]): on return the upper triangle of the first `k = min(m, n)` rows of
/// `w` holds `R` (entries below the diagonal hold reflector data, not zeros), and `q`
/// (column-major `m x k`, at least `m k` long) holds `Q`. No allocation: callers at small
/// bonds keep both on the stack.
pub(crate) fn qr_in_place(w: &mut [C64], m: usize, n: usize, q: &mut [C64]) {
    debug_assert!(m <= SMALL_QR_MAX_DIM && n <= SMALL_QR_MAX_DIM);
    debug_assert!(w.len() >= m * n && q.len() >= m * m.min(n));
    let k = m.min(n);
    // Reflector j is v_j = (v0[j], w[j+1.., j]) on rows j.., with beta[j] = 2 / |v_j|^2
    // (0 for the identity): LAPACK's storage, with the leading entry kept aside.
    let mut v0 = [ZERO; SMALL_QR_MAX_DIM];
    let mut beta = [0.0f64; SMALL_QR_MAX_DIM];
    for j in 0..k {
        let x = &w[j * m + j..(j + 1) * m];
        let x0 = x[0];
        let tail: f64 = x[1..].iter().map(|z| z.norm_sqr()).sum();
        if tail == 0.0 {
            // Already zero below the diagonal: no reflection.
            continue;
        }
        let norm = (x0.norm_sqr() + tail).sqrt();
        // The phase of x0 from x0 scaled to its largest component first: `norm_sqr()`
        // underflows to 0 for |x0| below about 1e-154 (dividing by its square root gave a
        // NaN phase for a tiny leading entry), and even `norm()` loses the digits of a
        // subnormal, so its quotient was not of modulus 1.
        let big = x0.re.abs().max(x0.im.abs());
        let phase = if big == 0.0 {
            C64::new(1.0, 0.0)
        } else {
            let y = x0 / big;
            y / y.norm()
        };
        let alpha = -phase * norm;
        v0[j] = x0 - alpha;
        beta[j] = 2.0 / (v0[j].norm_sqr() + tail);
        // Column j becomes alpha e_1 (its tail keeps v_j); later columns get
        // H = I - beta v v^H.
        w[j * m + j] = alpha;
        for c in j + 1..n {
            let (head, rest) = w.split_at_mut(c * m);
            let v_tail = &head[j * m + j + 1..(j + 1) * m];
            let col = &mut rest[j..m];
            reflect(col, v0[j], v_tail, beta[j]);
        }
    }
    // Q = H_0 H_1 ... H_{k-1} I[:, :k], the last reflector applied first.
    let q = &mut q[..m * k];
    q.fill(ZERO);
    for t in 0..k {
        q[t * m + t] = C64::new(1.0, 0.0);
    }
    for j in (0..k).rev() {
        if beta[j] == 0.0 {
            continue;
        }
        let v_tail = &w[j * m + j + 1..(j + 1) * m];
        for c in j..k {
            let col = &mut q[c * m + j..(c + 1) * m];
            reflect(col, v0[j], v_tail, beta[j]);
        }
    }
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
                    "{m}x{n} at ({i},{j}): {z} vs {}",
                    a[(i, j)]
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

    #[test]
    fn a_tiny_leading_entry_gives_a_finite_reflector() {
        // |x0|^2 underflows to 0 below about 1e-154: the phase x0 / |x0| was computed from
        // it and came out NaN, and a centre move over such a site filled the state with NaN
        // (found when larger window blocks left a residue of that size at a column's top).
        for tiny in [1e-160, 1e-200, 5e-324] {
            let mut a = random(6, 3, 3, 11);
            a[(0, 0)] = C64::new(tiny, -tiny);
            let (q, r) = thin_qr(a.as_ref());
            assert!(
                q.as_ref().is_all_finite() && r.as_ref().is_all_finite(),
                "{tiny}: non-finite factors"
            );
            check(&a);
            // The same in a later column, after the first reflection.
            let mut b = random(6, 3, 3, 12);
            for i in 0..6 {
                b[(i, 1)] = if i == 1 {
                    C64::new(0.0, tiny)
                } else {
                    b[(i, 1)] * 1e-3
                };
            }
            check(&b);
        }
    }
}
