//! Read-outs of an MPS, all without moving the centre (`&self`) and without building the
//! dense vector: amplitudes, Pauli expectations, single-qubit reduced density matrices in one
//! sweep, marginals, sampling and the dense export for small states.
//!
//! Environments: a left environment `E` on a bond is the `chi x chi` matrix
//! `E[a, b] = sum conj(bra[a]) ket[b]` of everything left of it; a right environment `F`
//! likewise of everything right of it. By the canonical form, `E = I` on every bond left of
//! the centre and `F = I` on every bond right of it, so only sites between the operator and
//! the centre are ever contracted.

use faer::{Mat, MatRef};
use num_complex::Complex64 as C64;
use rand::{Rng, RngExt};

use super::{MpsState, Site, ZERO};
use crate::backend::{MAX_DENSE_EXPORT_QUBITS, check_marginal};
use crate::bits::BitString;
use crate::error::{Error, Result};
use crate::linalg;
use crate::observable::{Pauli, PauliString};

/// The rotation taking the eigenbasis of `p` to the computational basis (eigenvalue +1 to
/// `|0>`): `H` for X, `H S^dagger` for Y, none for Z.
pub(crate) fn basis_rotation(p: Pauli) -> Option<Op> {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    match p {
        Pauli::Z => None,
        Pauli::X => Some([
            C64::new(h, 0.0),
            C64::new(h, 0.0),
            C64::new(h, 0.0),
            C64::new(-h, 0.0),
        ]),
        Pauli::Y => Some([
            C64::new(h, 0.0),
            C64::new(0.0, -h),
            C64::new(h, 0.0),
            C64::new(0.0, h),
        ]),
    }
}

/// Largest bond [`MpsState::single_qubit_rdms`] contracts on the stack.
const SMALL_ENV: usize = 8;

/// A one-qubit operator as row-major `[o00, o01, o10, o11]`.
type Op = [C64; 4];

const ONE: C64 = C64::new(1.0, 0.0);
const I: C64 = C64::new(0.0, 1.0);
const PROJ: [Op; 2] = [[ONE, ZERO, ZERO, ZERO], [ZERO, ZERO, ZERO, ONE]];

fn pauli_op(p: Pauli) -> Op {
    match p {
        Pauli::X => [ZERO, ONE, ONE, ZERO],
        Pauli::Y => [ZERO, -I, I, ZERO],
        Pauli::Z => [ONE, ZERO, ZERO, -ONE],
    }
}

/// Applies `op` to the physical index of a buffer laid out like a site (`l + chi_l (s + 2 r)`).
fn apply_op(buf: &mut [C64], chi_l: usize, chi_r: usize, op: &Op) {
    for r in 0..chi_r {
        let base = 2 * chi_l * r;
        let (lo, hi) = buf[base..base + 2 * chi_l].split_at_mut(chi_l);
        for (a0, a1) in lo.iter_mut().zip(hi.iter_mut()) {
            let (x0, x1) = (*a0, *a1);
            *a0 = op[0] * x0 + op[1] * x1;
            *a1 = op[2] * x0 + op[3] * x1;
        }
    }
}

impl MpsState {
    fn par(&self) -> crate::backend::Parallelism {
        self.config.parallelism
    }

    /// Left environment through `site` with `op` on it; `env = None` is the identity.
    fn transfer_left(&self, env: Option<&Mat<C64>>, site: &Site, op: Option<&Op>) -> Mat<C64> {
        let p = self.par();
        let (chi_l, chi_r) = (site.chi_l, site.chi_r);
        // X = E * A (chi_l x 2chi_r), then op on s.
        let mut x: Vec<C64> = match env {
            None => site.data.clone(),
            Some(e) => {
                let mut x = Mat::<C64>::zeros(chi_l, 2 * chi_r);
                linalg::mul(x.as_mut(), e.as_ref(), site.as_l_sr(), p);
                super::col_major(x)
            }
        };
        if let Some(op) = op {
            apply_op(&mut x, chi_l, chi_r, op);
        }
        let y = MatRef::from_column_major_slice(&x, 2 * chi_l, chi_r);
        let mut out = Mat::<C64>::zeros(chi_r, chi_r);
        linalg::mul(out.as_mut(), site.as_ls_r().adjoint(), y, p);
        out
    }

    /// Right environment through `site` with `op` on it; `env = None` is the identity.
    fn transfer_right(&self, env: Option<&Mat<C64>>, site: &Site, op: Option<&Op>) -> Mat<C64> {
        let p = self.par();
        let (chi_l, chi_r) = (site.chi_l, site.chi_r);
        let mut x: Vec<C64> = match env {
            None => site.data.clone(),
            Some(f) => {
                let mut x = Mat::<C64>::zeros(2 * chi_l, chi_r);
                linalg::mul(x.as_mut(), site.as_ls_r(), f.transpose(), p);
                super::col_major(x)
            }
        };
        if let Some(op) = op {
            apply_op(&mut x, chi_l, chi_r, op);
        }
        let y = MatRef::from_column_major_slice(&x, chi_l, 2 * chi_r);
        let mut out = Mat::<C64>::zeros(chi_l, chi_l);
        linalg::mul(out.as_mut(), site.as_l_sr().conjugate(), y.transpose(), p);
        out
    }

    /// Right environments `F[i]` of the bond left of site `i`, for `i` in `1..=centre`
    /// (index 0 unused); right of the centre they are the identity (`None`).
    fn right_environments(&self) -> Vec<Option<Mat<C64>>> {
        let n = self.n_qubits;
        let mut envs: Vec<Option<Mat<C64>>> = vec![None; n + 1];
        let mut i = self.centre;
        while i >= 1 {
            envs[i] = Some(self.transfer_right(envs[i + 1].as_ref(), &self.sites[i], None));
            i -= 1;
        }
        envs
    }

    pub(super) fn amplitude_impl(&self, bits: &BitString) -> Result<C64> {
        if bits.len() != self.n_qubits {
            return Err(Error::BitStringLength {
                expected: self.n_qubits,
                got: bits.len(),
            });
        }
        let mut v = vec![ONE];
        for (q, site) in self.sites.iter().enumerate() {
            let s = bits.get(q) as usize;
            let chi_l = site.chi_l;
            let next: Vec<C64> = (0..site.chi_r)
                .map(|r| {
                    let col = &site.data[chi_l * (s + 2 * r)..chi_l * (s + 2 * r + 1)];
                    v.iter().zip(col).map(|(a, b)| a * b).sum()
                })
                .collect();
            v = next;
        }
        Ok(v[0])
    }

    pub(super) fn expectation_pauli_impl(&self, pauli: &PauliString) -> Result<f64> {
        pauli.check(self.n_qubits)?;
        let (Some(&(first, _)), Some(&(last, _))) = (pauli.terms().first(), pauli.terms().last())
        else {
            let n = crate::StateBackend::norm(self);
            return Ok(n * n);
        };
        let lo = first.min(self.centre);
        let hi = last.max(self.centre);
        let mut ops = pauli.terms().iter().peekable();
        let mut env: Option<Mat<C64>> = None;
        for i in lo..=hi {
            let op = match ops.peek() {
                Some(&&(q, p)) if q == i => {
                    ops.next();
                    Some(pauli_op(p))
                }
                _ => None,
            };
            env = Some(self.transfer_left(env.as_ref(), &self.sites[i], op.as_ref()));
        }
        let env = env.expect("the range lo..=hi is not empty");
        let value = (0..env.nrows()).map(|i| env[(i, i)]).sum::<C64>().re;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                context: format!("expectation of {pauli}"),
            });
        }
        Ok(value)
    }

    /// The two-site tensor `theta` of sites `site` and `site + 1` as the column-major
    /// `(2 chi_l) x (2 chi_r)` matrix a two-qubit gate there is split by: row `l + chi_l s_i`,
    /// column `s_{i+1} + 2 r`. Returns `(entries, rows, cols)`.
    ///
    /// With the centre at `site` or `site + 1` ([`MpsState::move_centre`]), its singular
    /// values are the Schmidt coefficients of that bond, and a gate applied to its physical
    /// indices gives exactly the matrix the state would factor: this is how `benches/svd.rs`
    /// takes real cuts to time the SVD backends on. Elsewhere it is the same tensor in
    /// another gauge.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`] if `site + 1 >= n_qubits`.
    pub fn two_site_theta(&self, site: usize) -> Result<(Vec<C64>, usize, usize)> {
        if site + 1 >= self.n_qubits {
            return Err(Error::QubitOutOfRange {
                qubit: site + 1,
                n_qubits: self.n_qubits,
            });
        }
        let (theta, chi_l, chi_r) = self.with_sites()?.window_theta(site, 2);
        Ok((theta, 2 * chi_l, 2 * chi_r))
    }

    /// The reduced density matrix of every qubit, row-major `[r00, r01, r10, r11]` with
    /// `r[s, t] = <psi| (|s><t| on qubit i) |psi>`, so `<O_i> = sum_{s,t} O[s,t] r[s,t]`.
    /// Costs one sweep over the chain (about `n chi^3`), not `n` contractions.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the state holds NaN.
    pub fn single_qubit_rdms(&self) -> Result<Vec<[C64; 4]>> {
        if self.unswept {
            return self.swept_copy()?.single_qubit_rdms();
        }
        let out = if let Some(dense) = self.held() {
            super::held::rdms_of_amplitudes(
                dense.amplitudes(),
                self.config.parallelism.is_parallel(),
            )
        } else if let Some(out) = self.small_rdms() {
            out
        } else {
            self.rdms_general()
        };
        if let Some(i) = out
            .iter()
            .position(|rho| rho.iter().any(|z| !z.re.is_finite() || !z.im.is_finite()))
        {
            return Err(Error::NonFinite {
                context: format!("reduced density matrix of qubit {i}"),
            });
        }
        Ok(out)
    }

    /// [`single_qubit_rdms`](Self::single_qubit_rdms) when every bond is at most
    /// [`SMALL_ENV`]: environments on the stack and plain loops (faer's matrices and
    /// products cost more than the arithmetic at these sizes, a tenth of a 4-qubit circuit's
    /// run). `None` for larger bonds.
    fn small_rdms(&self) -> Option<Vec<[C64; 4]>> {
        const CAP: usize = SMALL_ENV * SMALL_ENV;
        if self
            .sites
            .iter()
            .any(|s| s.chi_l > SMALL_ENV || s.chi_r > SMALL_ENV)
        {
            return None;
        }
        let n = self.n_qubits;
        let c = self.centre;
        // A[l, s, r] of a site.
        let at =
            |site: &Site, l: usize, s: usize, r: usize| site.data[l + site.chi_l * (s + 2 * r)];
        let mut out = vec![[ZERO; 4]; n];
        // Sites c, c - 1, ..., 0, with f the right environment of the bond right of site i
        // (column-major chi_r(i) x chi_r(i); the identity for i = c): for i < c, F[i][a, b] =
        // sum conj(A[a, s, r]) A[b, s, r'] F[i + 1][r, r'].
        let mut f = [ZERO; CAP];
        for i in (0..=c).rev() {
            let site = &self.sites[i];
            let (chi_l, chi_r) = (site.chi_l, site.chi_r);
            // x[b, s, r] = sum_r' A[b, s, r'] F[r, r'] (A itself at the centre).
            let mut x = [ZERO; 2 * CAP];
            for r in 0..chi_r {
                for s in 0..2 {
                    for b in 0..chi_l {
                        x[b + chi_l * (s + 2 * r)] = if i == c {
                            at(site, b, s, r)
                        } else {
                            (0..chi_r)
                                .map(|rr| at(site, b, s, rr) * f[r + chi_r * rr])
                                .sum()
                        };
                    }
                }
            }
            // rho[s, t] = sum conj(A[a, s, r]) x[a, t, r].
            let rho = &mut out[i];
            for r in 0..chi_r {
                for t in 0..2 {
                    for a in 0..chi_l {
                        let k = x[a + chi_l * (t + 2 * r)];
                        for (s, pair) in rho.chunks_exact_mut(2).enumerate() {
                            pair[t] += at(site, a, s, r).conj() * k;
                        }
                    }
                }
            }
            if i > 0 {
                let mut next = [ZERO; CAP];
                for b in 0..chi_l {
                    for a in 0..chi_l {
                        next[a + chi_l * b] = (0..2 * chi_r)
                            .map(|j| site.data[a + chi_l * j].conj() * x[b + chi_l * j])
                            .sum();
                    }
                }
                f = next;
            }
        }
        // Sites c + 1, ..., n - 1, with `left` the left environment of the bond left of site i.
        let mut left = [ZERO; CAP];
        for i in c + 1..n {
            let site = &self.sites[i];
            let (chi_l, chi_r) = (site.chi_l, site.chi_r);
            // E'[p, q] = sum conj(A[a, s, p]) E[a, l] A[l, s, q] over the previous site.
            let prev = &self.sites[i - 1];
            let (pl, pr) = (prev.chi_l, prev.chi_r);
            let mut next = [ZERO; CAP];
            for q in 0..pr {
                for s in 0..2 {
                    for a in 0..pl {
                        let ea = if i - 1 == c {
                            at(prev, a, s, q)
                        } else {
                            (0..pl).map(|l| left[a + pl * l] * at(prev, l, s, q)).sum()
                        };
                        for p in 0..pr {
                            next[p + pr * q] += at(prev, a, s, p).conj() * ea;
                        }
                    }
                }
            }
            left = next;
            // rho[s, t] = sum conj(A[a, s, r]) K[a, t, r], K = E A.
            let rho = &mut out[i];
            for r in 0..chi_r {
                for t in 0..2 {
                    for a in 0..chi_l {
                        let k: C64 = (0..chi_l)
                            .map(|l| left[a + chi_l * l] * at(site, l, t, r))
                            .sum();
                        for (s, pair) in rho.chunks_exact_mut(2).enumerate() {
                            pair[t] += at(site, a, s, r).conj() * k;
                        }
                    }
                }
            }
        }
        Some(out)
    }

    /// [`single_qubit_rdms`](Self::single_qubit_rdms) with faer matrices, any bond.
    fn rdms_general(&self) -> Vec<[C64; 4]> {
        let n = self.n_qubits;
        let p = self.par();
        let right = self.right_environments();
        let mut left: Option<Mat<C64>> = None;
        let mut out = Vec::with_capacity(n);
        for (i, site) in self.sites.iter().enumerate() {
            if i > self.centre {
                left = Some(self.transfer_left(left.as_ref(), &self.sites[i - 1], None));
            }
            let (chi_l, chi_r) = (site.chi_l, site.chi_r);
            // K = L * A, then K * R^T; rho[s,t] = sum conj(A[a,s,c]) K[a,t,c].
            let mut k: Vec<C64> = match left.as_ref() {
                None => site.data.clone(),
                Some(l) => {
                    let mut m = Mat::<C64>::zeros(chi_l, 2 * chi_r);
                    linalg::mul(m.as_mut(), l.as_ref(), site.as_l_sr(), p);
                    super::col_major(m)
                }
            };
            if let Some(r) = right[i + 1].as_ref().filter(|_| i < self.centre) {
                let km = MatRef::from_column_major_slice(&k, 2 * chi_l, chi_r);
                let mut m = Mat::<C64>::zeros(2 * chi_l, chi_r);
                linalg::mul(m.as_mut(), km, r.transpose(), p);
                k = super::col_major(m);
            }
            let mut rho = [ZERO; 4];
            for c in 0..chi_r {
                for s in 0..2 {
                    let a = &site.data[chi_l * (s + 2 * c)..chi_l * (s + 2 * c + 1)];
                    for t in 0..2 {
                        let b = &k[chi_l * (t + 2 * c)..chi_l * (t + 2 * c + 1)];
                        rho[2 * s + t] += a.iter().zip(b).map(|(x, y)| x.conj() * y).sum::<C64>();
                    }
                }
            }
            out.push(rho);
        }
        out
    }

    pub(super) fn marginal_impl(&self, qubits: &[usize]) -> Result<Vec<f64>> {
        check_marginal(self.n_qubits, qubits)?;
        let Some(&min_q) = qubits.iter().min() else {
            let n = crate::StateBackend::norm(self);
            return Ok(vec![n * n]);
        };
        let max_q = *qubits.iter().max().expect("non-empty");
        let lo = min_q.min(self.centre);
        let hi = max_q.max(self.centre);
        // (outcome index so far, left environment); bit j of the index is qubits[j].
        let mut envs: Vec<(usize, Option<Mat<C64>>)> = vec![(0, None)];
        for i in lo..=hi {
            let site = &self.sites[i];
            envs = match qubits.iter().position(|&q| q == i) {
                None => envs
                    .iter()
                    .map(|(k, e)| (*k, Some(self.transfer_left(e.as_ref(), site, None))))
                    .collect(),
                Some(j) => envs
                    .iter()
                    .flat_map(|(k, e)| {
                        PROJ.iter().enumerate().map(move |(b, proj)| {
                            (
                                k | (b << j),
                                Some(self.transfer_left(e.as_ref(), site, Some(proj))),
                            )
                        })
                    })
                    .collect(),
            };
        }
        let mut out = vec![0.0; 1 << qubits.len()];
        for (k, e) in &envs {
            let e = e.as_ref().expect("every site in lo..=hi was contracted");
            let v = (0..e.nrows()).map(|d| e[(d, d)]).sum::<C64>().re;
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    context: "marginal probabilities".into(),
                });
            }
            out[*k] = v.max(0.0);
        }
        Ok(out)
    }

    /// Draws `shots` bit strings; with `bases`, shot `k` measures qubit `q` in the eigenbasis
    /// of `bases[k][q]`. A one-qubit unitary on a site leaves every right environment
    /// unchanged (it cancels against its conjugate in the trace over the physical index), so
    /// the rotated amplitudes are formed on the fly and the environments computed once.
    pub(super) fn sample_impl(
        &self,
        shots: usize,
        bases: Option<&[Vec<Pauli>]>,
        rng: &mut dyn Rng,
    ) -> Result<Vec<BitString>> {
        let right = self.right_environments();
        let n = self.n_qubits;
        let mut out = Vec::with_capacity(shots);
        let mut w = [Vec::new(), Vec::new()];
        for shot in 0..shots {
            let mut bits = BitString::zeros(n);
            let mut v = vec![ONE];
            for (i, site) in self.sites.iter().enumerate() {
                let chi_l = site.chi_l;
                let mut prob = [0.0f64; 2];
                for s in 0..2 {
                    w[s] = (0..site.chi_r)
                        .map(|r| {
                            let col = &site.data[chi_l * (s + 2 * r)..chi_l * (s + 2 * r + 1)];
                            v.iter().zip(col).map(|(a, b)| a * b).sum::<C64>()
                        })
                        .collect::<Vec<C64>>();
                }
                if let Some(rot) = bases.and_then(|b| basis_rotation(b[shot][i])) {
                    let (u0, u1) = (std::mem::take(&mut w[0]), std::mem::take(&mut w[1]));
                    w[0] = u0
                        .iter()
                        .zip(&u1)
                        .map(|(a, b)| rot[0] * a + rot[1] * b)
                        .collect();
                    w[1] = u0
                        .iter()
                        .zip(&u1)
                        .map(|(a, b)| rot[2] * a + rot[3] * b)
                        .collect();
                }
                for s in 0..2 {
                    prob[s] = match right[i + 1].as_ref().filter(|_| i < self.centre) {
                        None => w[s].iter().map(|z| z.norm_sqr()).sum(),
                        Some(f) => {
                            let mut acc = ZERO;
                            for d in 0..f.ncols() {
                                for c in 0..f.nrows() {
                                    acc += w[s][c].conj() * f[(c, d)] * w[s][d];
                                }
                            }
                            acc.re.max(0.0)
                        }
                    };
                }
                let total = prob[0] + prob[1];
                if !total.is_finite() || total <= 0.0 {
                    return Err(Error::NonFinite {
                        context: format!("sampling qubit {i}: branch probabilities {prob:?}"),
                    });
                }
                let b = usize::from(rng.random::<f64>() * total >= prob[0]);
                bits.set(i, b == 1);
                let scale = 1.0 / prob[b].sqrt();
                v = w[b].iter().map(|z| z * scale).collect();
            }
            out.push(bits);
        }
        Ok(out)
    }

    pub(super) fn to_dense_impl(&self) -> Result<Vec<C64>> {
        if self.n_qubits > MAX_DENSE_EXPORT_QUBITS {
            return Err(Error::TooLarge {
                what: "to_dense",
                n_qubits: self.n_qubits,
                max: MAX_DENSE_EXPORT_QUBITS,
            });
        }
        let p = self.par();
        let mut m = Mat::<C64>::from_fn(1, 1, |_, _| ONE);
        for site in &self.sites {
            let rows = m.nrows();
            let mut next = Mat::<C64>::zeros(rows, 2 * site.chi_r);
            linalg::mul(next.as_mut(), m.as_ref(), site.as_l_sr(), p);
            let data = super::col_major(next);
            m = MatRef::from_column_major_slice(&data, 2 * rows, site.chi_r).to_owned();
        }
        Ok((0..m.nrows()).map(|i| m[(i, 0)]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MpsConfig;
    use crate::backend::StateBackend;
    use crate::circuit::{Circuit, Gate};

    /// A brick of `layers` layers of rotations and CX on `n` qubits.
    fn brick(n: usize, layers: usize) -> MpsState {
        let mut c = Circuit::new(n).unwrap();
        for layer in 0..layers {
            for q in 0..n {
                c.push(Gate::Ry((0.4 + 0.3 * (q + layer) as f64).into()), &[q])
                    .unwrap();
                c.push(Gate::Rz((0.2 * q as f64 - 0.5).into()), &[q])
                    .unwrap();
            }
            for q in (layer % 2..n - 1).step_by(2) {
                c.push(Gate::Cx, &[q, q + 1]).unwrap();
            }
        }
        let mut psi = MpsState::new(
            n,
            MpsConfig::default().with_update(crate::UpdateScheme::Centre),
        )
        .unwrap();
        psi.run(&c, &[], &[]).unwrap();
        psi
    }

    /// The stack read-out equals the general one with the centre anywhere, on bonds up to
    /// `SMALL_ENV`, and declines past it.
    #[test]
    fn small_rdms_match_the_general_read_out() {
        let n = 7;
        let mut psi = brick(n, 3);
        assert!(psi.bond_dimensions().iter().any(|&b| b > 2));
        for centre in 0..n {
            psi.move_centre(centre).unwrap();
            let small = psi.small_rdms().expect("bonds <= 8");
            let general = psi.rdms_general();
            for (i, (x, y)) in small.iter().zip(&general).enumerate() {
                for (a, b) in x.iter().zip(y) {
                    assert!(
                        (a - b).norm() < 1e-13,
                        "centre {centre}, qubit {i}: {a} vs {b}"
                    );
                }
            }
        }
        let mut wide = brick(12, 10);
        // Split the amplitudes a 12-qubit chain holds after its run into sites.
        wide.move_centre(11).unwrap();
        assert!(wide.bond_dimensions().iter().any(|&b| b > SMALL_ENV));
        assert!(wide.small_rdms().is_none());
    }
}
