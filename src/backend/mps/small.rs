//! Two-site updates and centre moves at small bonds, without allocation.
//!
//! At the bonds of a chain of a few qubits (a cut of at most 8 x 16, a site of at most
//! 256 entries) the arithmetic of an update is a few hundred multiply-adds, and the general
//! path's heap matrices (the contracted pair, the factors, copies into new sites) cost more
//! than the arithmetic. Here the pair is contracted, the gate applied and the cut split on
//! the stack (`linalg::split_small`, one-sided Jacobi), and the result is written into the
//! two sites' existing buffers. Same operations and same checks as the general path
//! (`MpsState::split`): the same truncation rule, norm check and log entries, and a failing
//! factorization leaves the state as it was (the caller then takes the general path).

use num_complex::Complex64 as C64;

use super::{CentreEnd, MpsState};
use crate::error::Result;
use crate::linalg::{self, SMALL_SPLIT_CAP, SvdBackend};
use faer::MatRef;

const ZERO: C64 = C64::new(0.0, 0.0);

/// Largest site (entries, `2 chi_l chi_r`) the stack centre move takes.
const SMALL_SITE: usize = 256;

impl MpsState {
    /// The two-site update of sites `start, start + 1` (the centre already in the window) by
    /// the 4 x 4 window matrix `gm`, on the stack. Returns `Ok(false)` without touching the
    /// state when the cut is too large for the small path, the state's SVD backend is not
    /// faer, or the Jacobi split does not converge; errors (norm drift, a non-finite
    /// spectrum) also leave the state as it was.
    pub(super) fn apply_two_small(
        &mut self,
        gm: &[C64],
        start: usize,
        centre_end: CentreEnd,
    ) -> Result<bool> {
        let (a, b) = (&self.sites[start], &self.sites[start + 1]);
        let (chi_l, chi_m, chi_r) = (a.chi_l, a.chi_r, b.chi_r);
        let (m, n) = (2 * chi_l, 2 * chi_r);
        if self.config.svd != SvdBackend::Faer || !linalg::small_split_takes(m, n) {
            return Ok(false);
        }
        // theta = A (m x chi_m, the (l, s0) x k view) times B (chi_m x n, the k x (s1, r)
        // view): column-major m x n, entry (l + chi_l s0, s1 + 2 r).
        let mut theta = [ZERO; SMALL_SPLIT_CAP];
        let theta = &mut theta[..m * n];
        for c in 0..n {
            let out = &mut theta[c * m..(c + 1) * m];
            for t in 0..chi_m {
                let bv = b.data[c * chi_m + t];
                if bv == ZERO {
                    continue;
                }
                for (o, x) in out.iter_mut().zip(&a.data[t * m..(t + 1) * m]) {
                    *o += x * bv;
                }
            }
        }
        // The gate mixes the four entries l + chi_l p + 4 chi_l r, p = s0 + 2 s1.
        for r in 0..chi_r {
            for l in 0..chi_l {
                let base = l + 4 * chi_l * r;
                let v = [
                    theta[base],
                    theta[base + chi_l],
                    theta[base + 2 * chi_l],
                    theta[base + 3 * chi_l],
                ];
                for (pp, row) in gm.chunks_exact(4).enumerate() {
                    theta[base + pp * chi_l] =
                        row[0] * v[0] + row[1] * v[1] + row[2] * v[2] + row[3] * v[3];
                }
            }
        }
        let bond = start;
        match centre_end {
            CentreEnd::Right => {
                // theta = U (rest): site start = U[:, ..kept], site start + 1 = rest[..kept, :].
                let Some(f) = linalg::split_small(MatRef::from_column_major_slice(theta, m, n))
                else {
                    return Ok(false);
                };
                let (kept, eps, scale) = self.truncate(f.s(), self.config.truncation, bond)?;
                let left = &mut self.sites[start];
                left.chi_r = kept;
                left.data.clear();
                left.data.extend_from_slice(&f.u[..m * kept]);
                let right = &mut self.sites[start + 1];
                right.chi_l = kept;
                right.data.clear();
                right.data.extend(
                    (0..n)
                        .flat_map(|c| (0..kept).map(move |t| (c, t)))
                        .map(|(c, t)| f.rest(t, c) * scale),
                );
                self.log.next_update();
                self.log.record(bond, eps, kept);
            }
            CentreEnd::Left => {
                // theta^H = U (rest): site start + 1 = U^H[..kept, :], site start =
                // (rest[..kept, :])^H.
                let mut ah = [ZERO; SMALL_SPLIT_CAP];
                let ah = &mut ah[..m * n];
                for i in 0..m {
                    for c in 0..n {
                        ah[i * n + c] = theta[c * m + i].conj();
                    }
                }
                let Some(f) = linalg::split_small(MatRef::from_column_major_slice(ah, n, m)) else {
                    return Ok(false);
                };
                let (kept, eps, scale) = self.truncate(f.s(), self.config.truncation, bond)?;
                let right = &mut self.sites[start + 1];
                right.chi_l = kept;
                right.data.clear();
                right.data.extend(
                    (0..n)
                        .flat_map(|c| (0..kept).map(move |t| (c, t)))
                        .map(|(c, t)| f.u(c, t).conj()),
                );
                let left = &mut self.sites[start];
                left.chi_r = kept;
                left.data.clear();
                left.data.extend(
                    (0..kept)
                        .flat_map(|t| (0..m).map(move |i| (i, t)))
                        .map(|(i, t)| f.rest(t, i).conj() * scale),
                );
                self.log.next_update();
                self.log.record(bond, eps, kept);
            }
        }
        Ok(true)
    }

    /// QR step `c -> c + 1` on the stack when site `c` and the product `R A[c + 1]` fit
    /// [`SMALL_SITE`]; returns `false` (nothing done) otherwise.
    pub(super) fn shift_centre_right_small(&mut self) -> bool {
        let c = self.centre;
        let (site, next) = (&self.sites[c], &self.sites[c + 1]);
        let (m, n) = (2 * site.chi_l, site.chi_r);
        let k = m.min(n);
        let cols = 2 * next.chi_r;
        if m * n > SMALL_SITE || k * cols > SMALL_SITE || m.max(n) > linalg::SMALL_QR_MAX_DIM {
            return false;
        }
        let mut w = [ZERO; SMALL_SITE];
        w[..m * n].copy_from_slice(&site.data);
        let mut q = [ZERO; SMALL_SITE];
        linalg::small_qr_in_place(&mut w[..m * n], m, n, &mut q[..m * k]);
        // next' = R next: (k x n) (n x cols), R upper triangular in w.
        let mut out = [ZERO; SMALL_SITE];
        for col in 0..cols {
            let x = &next.data[col * n..(col + 1) * n];
            for i in 0..k {
                out[col * k + i] = (i..n).map(|j| w[j * m + i] * x[j]).sum();
            }
        }
        self.touch(c, c + 1);
        let site = &mut self.sites[c];
        site.chi_r = k;
        site.data.clear();
        site.data.extend_from_slice(&q[..m * k]);
        let next = &mut self.sites[c + 1];
        next.chi_l = k;
        next.data.clear();
        next.data.extend_from_slice(&out[..k * cols]);
        self.centre = c + 1;
        true
    }

    /// LQ step `c -> c - 1` on the stack (`A = L Q` from the QR of `A^H`) when site `c` and
    /// the product `A[c - 1] L` fit [`SMALL_SITE`]; returns `false` (nothing done) otherwise.
    pub(super) fn shift_centre_left_small(&mut self) -> bool {
        let c = self.centre;
        let (site, prev) = (&self.sites[c], &self.sites[c - 1]);
        // A is chi_l x (2 chi_r); A^H is m x n with m = 2 chi_r, n = chi_l.
        let (m, n) = (2 * site.chi_r, site.chi_l);
        let k = m.min(n);
        let rows = 2 * prev.chi_l;
        if m * n > SMALL_SITE || rows * k > SMALL_SITE || m.max(n) > linalg::SMALL_QR_MAX_DIM {
            return false;
        }
        let mut w = [ZERO; SMALL_SITE];
        for j in 0..n {
            for i in 0..m {
                w[j * m + i] = site.data[i * n + j].conj();
            }
        }
        let mut q = [ZERO; SMALL_SITE];
        linalg::small_qr_in_place(&mut w[..m * n], m, n, &mut q[..m * k]);
        // A = R^H Q^H: site c = Q^H (k x m), prev' = prev R^H ((rows x n) (n x k)).
        let mut out = [ZERO; SMALL_SITE];
        for t in 0..k {
            for i in 0..rows {
                out[t * rows + i] = (t..n)
                    .map(|j| prev.data[j * rows + i] * w[j * m + t].conj())
                    .sum();
            }
        }
        self.touch(c - 1, c);
        let site = &mut self.sites[c];
        site.chi_l = k;
        site.data.clear();
        site.data.extend(
            (0..m)
                .flat_map(|i| (0..k).map(move |t| (i, t)))
                .map(|(i, t)| q[t * m + i].conj()),
        );
        let prev = &mut self.sites[c - 1];
        prev.chi_r = k;
        prev.data.clear();
        prev.data.extend_from_slice(&out[..rows * k]);
        self.centre = c - 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StateBackend;
    use crate::circuit::{Circuit, Gate};
    use crate::{BitString, MpsConfig, Truncation};
    use rand::{RngExt, SeedableRng, rngs::ChaCha8Rng};

    /// A state of `n` qubits with bonds up to `2^(n/2)`, from a seeded random circuit.
    fn random_state(n: usize, config: MpsConfig, seed: u64) -> MpsState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = Circuit::new(n).unwrap();
        for _ in 0..4 {
            for q in 0..n {
                let (t, p, l) = (
                    rng.random::<f64>() * 3.0,
                    rng.random::<f64>(),
                    rng.random::<f64>(),
                );
                c.push(
                    Gate::U3 {
                        theta: t.into(),
                        phi: p.into(),
                        lambda: l.into(),
                    },
                    &[q],
                )
                .unwrap();
            }
            for q in 0..n - 1 {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let mut psi = MpsState::new(n, config).unwrap();
        psi.run(&c, &[], &[]).unwrap();
        psi
    }

    /// A random 4 x 4 unitary (row-major), the Q of a random matrix.
    fn random_unitary(seed: u64) -> Vec<C64> {
        let a = crate::linalg::test_support::random_matrix(4, 4, 4, 0.0, seed);
        let (q, _) = crate::linalg::thin_qr(a.as_ref(), crate::Parallelism::Sequential);
        (0..16).map(|i| q[(i / 4, i % 4)]).collect()
    }

    fn amplitudes(psi: &MpsState) -> Vec<C64> {
        let n = psi.n_qubits;
        (0..1usize << n)
            .map(|x| {
                let bits =
                    BitString::from_bools(&(0..n).map(|q| (x >> q) & 1 == 1).collect::<Vec<_>>());
                psi.amplitude(&bits).unwrap()
            })
            .collect()
    }

    fn assert_same(a: &MpsState, b: &MpsState, what: &str) {
        assert_eq!(a.centre, b.centre, "{what}: centre");
        assert_eq!(a.bond_dimensions(), b.bond_dimensions(), "{what}: bonds");
        for (x, y) in amplitudes(a).iter().zip(amplitudes(b)) {
            assert!((x - y).norm() < 1e-13, "{what}: amplitude {x} != {y}");
        }
        assert!(a.canonical_deviation() < 1e-13, "{what}: canonical form");
        let (ra, rb) = (a.truncation_report(), b.truncation_report());
        assert_eq!(
            ra.truncating_cuts, rb.truncating_cuts,
            "{what}: truncating cuts"
        );
        assert_eq!(
            a.two_site_updates(),
            b.two_site_updates(),
            "{what}: updates"
        );
        for (x, y) in ra.discarded_per_bond.iter().zip(&rb.discarded_per_bond) {
            assert!((x - y).abs() < 1e-13, "{what}: discarded {x} != {y}");
        }
    }

    /// Both centre ends, every bond of a 6-qubit chain, exact and truncated: the stack update
    /// gives the state, bonds, canonical form and truncation log of the general path.
    #[test]
    fn two_site_updates_match_the_general_path() {
        let exact = MpsConfig::default();
        let truncated = MpsConfig::default()
            .with_truncation(Truncation::default().with_max_bond(3).with_cutoff(1e-3));
        let mut seed = 0;
        let mut truncating = 0;
        for config in [exact, truncated] {
            let psi = random_state(6, MpsConfig::default(), 7);
            for start in 0..5 {
                for end in [CentreEnd::Left, CentreEnd::Right] {
                    seed += 1;
                    let gm = random_unitary(seed);
                    let mut a = psi.clone();
                    a.config = config;
                    a.move_centre(if end == CentreEnd::Left {
                        start + 1
                    } else {
                        start
                    })
                    .unwrap();
                    let mut b = a.clone();
                    assert!(
                        a.apply_two_small(&gm, start, end).unwrap(),
                        "small path taken"
                    );
                    b.apply_window_general(&gm, start, 2, end).unwrap();
                    for s in [&mut a, &mut b] {
                        s.centre = if end == CentreEnd::Left {
                            start
                        } else {
                            start + 1
                        };
                    }
                    assert_same(&a, &b, &format!("bond {start}, {end:?}, {config:?}"));
                    truncating += a.truncation_report().truncating_cuts;
                }
            }
        }
        assert!(truncating >= 4, "the truncated settings cut: {truncating}");
    }

    /// Sweeping the centre across the chain and back by stack QR/LQ steps gives the state and
    /// canonical form of the general steps.
    #[test]
    fn centre_moves_match_the_general_path() {
        let psi = random_state(7, MpsConfig::default(), 11);
        let (mut a, mut b) = (psi.clone(), psi);
        a.move_centre(0).unwrap();
        b.move_centre(0).unwrap();
        for _ in 0..6 {
            assert!(a.shift_centre_right_small());
            b.shift_centre_right_general();
            assert_same(&a, &b, "right");
        }
        for _ in 0..6 {
            assert!(a.shift_centre_left_small());
            b.shift_centre_left_general();
            assert_same(&a, &b, "left");
        }
    }

    /// Cuts past the small bounds are left to the general path (nothing touched).
    #[test]
    fn large_cuts_are_declined() {
        let mut psi = random_state(12, MpsConfig::default(), 3);
        psi.move_centre(5).unwrap();
        let before = amplitudes(&psi);
        let gm = random_unitary(1);
        assert!(!psi.apply_two_small(&gm, 5, CentreEnd::Right).unwrap());
        assert_eq!(amplitudes(&psi), before);
    }
}
