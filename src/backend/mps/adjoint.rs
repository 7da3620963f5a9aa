//! Adjoint differentiation on MPS.
//!
//! The co-state `lambda = O psi` is built by applying the observable as a matrix product
//! operator (bond `2 + #terms crossing a cut`, so 2 for `sum_i g_i Z_i`), compressed with the
//! state's truncation, and kept normalized with its scale on the side. Sweeping the circuit
//! backwards, each gate's inverse is applied to both states (routed the same way), and the
//! gate's derivative terms `<lambda| U^dagger dU |psi>` are contracted on the gate's window
//! with cached mixed environments `L[j] = <lambda|psi>` left of site `j` and `R[j]` right of
//! it. A cache entry stays valid until one of the two states changes a site it covers, so
//! the environments are extended by the same sites the centres sweep over: the backward pass
//! costs a small constant times the forward pass (see docs/theory.md).

use faer::{Mat, MatRef};
use num_complex::Complex64 as C64;

use super::{MpsState, Route, Site, ZERO, col_major, window_matrix};
use crate::backend::{AdjointBackend, AdjointPair, StateBackend, check_gate_qubits};
use crate::circuit::GateMatrix;
use crate::error::{Error, Result};
use crate::linalg;
use crate::observable::{Observable, Pauli};

const ONE: C64 = C64::new(1.0, 0.0);
const I: C64 = C64::new(0.0, 1.0);

type Op = [C64; 4];
const IDENTITY: Op = [ONE, ZERO, ZERO, ONE];

fn pauli_op(p: Pauli) -> Op {
    match p {
        Pauli::X => [ZERO, ONE, ONE, ZERO],
        Pauli::Y => [ZERO, -I, I, ZERO],
        Pauli::Z => [ONE, ZERO, ZERO, -ONE],
    }
}

/// One MPO site: `entries[(alpha, beta)] = 2x2 operator`, `alpha` on the left bond.
struct MpoSite {
    dim_l: usize,
    dim_r: usize,
    entries: Vec<(usize, usize, Op)>,
}

/// The MPO of `sum_k w_k P_k` by the finite-automaton construction: on each internal bond the
/// channels are "nothing applied yet" (0), "a term is complete" (1), and one per term whose
/// support crosses the bond.
fn observable_mpo(observable: &Observable, n: usize) -> Vec<MpoSite> {
    // Channel of term k on bond j (between sites j-1 and j), for terms spanning it.
    let mut spanning: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    let supports: Vec<(usize, usize)> = observable
        .terms()
        .iter()
        .map(|(_, p)| match (p.terms().first(), p.terms().last()) {
            (Some(a), Some(b)) => (a.0, b.0),
            _ => (0, 0),
        })
        .collect();
    for (k, &(a, b)) in supports.iter().enumerate() {
        for bond in spanning.iter_mut().take(b + 1).skip(a + 1) {
            bond.push(k);
        }
    }
    let dim = |j: usize| {
        if j == 0 || j == n {
            1
        } else {
            2 + spanning[j].len()
        }
    };
    // Index of channels on bond j: start = 0 (only j < n), done = 1 (or 0 on bond n).
    let start = |j: usize| if j < n { Some(0) } else { None };
    let done = |j: usize| {
        if j == 0 {
            None
        } else if j == n {
            Some(0)
        } else {
            Some(1)
        }
    };
    let chan = |j: usize, k: usize| {
        2 + spanning[j]
            .iter()
            .position(|&t| t == k)
            .expect("term spans bond")
    };
    let op_at = |k: usize, site: usize| -> Op {
        observable.terms()[k]
            .1
            .terms()
            .iter()
            .find(|t| t.0 == site)
            .map_or(IDENTITY, |t| pauli_op(t.1))
    };
    let scaled = |op: Op, w: f64| op.map(|z| z * w);
    (0..n)
        .map(|site| {
            let (jl, jr) = (site, site + 1);
            let mut entries = Vec::new();
            if let (Some(a), Some(b)) = (start(jl), start(jr)) {
                entries.push((a, b, IDENTITY));
            }
            if let (Some(a), Some(b)) = (done(jl), done(jr)) {
                entries.push((a, b, IDENTITY));
            }
            for (k, &(a, b)) in supports.iter().enumerate() {
                let w = observable.terms()[k].0;
                if site < a || site > b {
                    continue;
                }
                let from = if site == a {
                    start(jl)
                } else {
                    Some(chan(jl, k))
                };
                let to = if site == b {
                    done(jr)
                } else {
                    Some(chan(jr, k))
                };
                let op = if site == a {
                    scaled(op_at(k, site), w)
                } else {
                    op_at(k, site)
                };
                if let (Some(f), Some(t)) = (from, to) {
                    entries.push((f, t, op));
                }
            }
            MpoSite {
                dim_l: dim(jl),
                dim_r: dim(jr),
                entries,
            }
        })
        .collect()
}

/// `<bra|ket>` by one left-to-right sweep of mixed environments, `O(n chi_bra chi_ket^2)`.
fn overlap(bra: &[Site], ket: &[Site], p: crate::backend::Parallelism) -> C64 {
    let mut env = Mat::<C64>::from_fn(1, 1, |_, _| ONE);
    for (a, b) in bra.iter().zip(ket) {
        env = extend_left(&env, a, b, p);
    }
    env[(0, 0)]
}

/// `L' = sum_s a[s]^H L b[s]` for bra site `a` and ket site `b`.
fn extend_left(env: &Mat<C64>, a: &Site, b: &Site, p: crate::backend::Parallelism) -> Mat<C64> {
    let mut x = Mat::<C64>::zeros(a.chi_l, 2 * b.chi_r);
    linalg::mul(x.as_mut(), env.as_ref(), b.as_l_sr(), p);
    let x = col_major(x);
    let xm = MatRef::from_column_major_slice(&x, 2 * a.chi_l, b.chi_r);
    let mut out = Mat::<C64>::zeros(a.chi_r, b.chi_r);
    linalg::mul(out.as_mut(), a.as_ls_r().adjoint(), xm, p);
    out
}

impl MpsState {
    /// `O |psi>` as raw (not canonical, not normalized) site tensors.
    fn mpo_sites(&self, observable: &Observable) -> Result<Vec<Site>> {
        observable.check(self.n_qubits)?;
        let mpo = observable_mpo(observable, self.n_qubits);
        let mut sites = Vec::with_capacity(self.n_qubits);
        for (a, w) in self.sites.iter().zip(&mpo) {
            let (chi_l, chi_r) = (a.chi_l * w.dim_l, a.chi_r * w.dim_r);
            let mut data = vec![ZERO; 2 * chi_l * chi_r];
            for &(alpha, beta, op) in &w.entries {
                for r in 0..a.chi_r {
                    for s in 0..2 {
                        for t in 0..2 {
                            let o = op[2 * s + t];
                            if o == ZERO {
                                continue;
                            }
                            let src = &a.data[a.chi_l * (t + 2 * r)..a.chi_l * (t + 2 * r + 1)];
                            let (nl, nr) = (a.chi_l * alpha, r + a.chi_r * beta);
                            let dst = &mut data
                                [nl + chi_l * (s + 2 * nr)..nl + chi_l * (s + 2 * nr) + a.chi_l];
                            for (d, x) in dst.iter_mut().zip(src) {
                                *d += o * x;
                            }
                        }
                    }
                }
            }
            sites.push(Site { chi_l, chi_r, data });
        }
        Ok(sites)
    }

    /// `<psi|O|psi>` in one sweep through the MPO of `O` (bond `2 + #terms crossing a cut`),
    /// instead of one contraction per term.
    pub(crate) fn mpo_expectation(&self, observable: &Observable) -> Result<f64> {
        let sites = self.mpo_sites(observable)?;
        let value = overlap(&self.sites, &sites, self.config.parallelism).re;
        if !value.is_finite() {
            return Err(Error::NonFinite {
                context: "expectation of an observable".into(),
            });
        }
        Ok(value)
    }

    /// `O |psi>` as a new MPS, normalized and compressed with this state's truncation, and
    /// its norm `||O psi||`.
    fn apply_observable(&self, observable: &Observable) -> Result<(MpsState, f64)> {
        let sites = self.mpo_sites(observable)?;
        let mut lambda = MpsState {
            sites,
            centre: 0,
            touched: None,
            log: super::TruncationLog::new(self.n_qubits),
            ..self.clone()
        };
        // Left-orthonormalize everything (centre at 0 is not yet true: sweep QR from site 0).
        for _ in 0..self.n_qubits - 1 {
            lambda.shift_centre_right();
        }
        let norm = lambda.norm();
        if !norm.is_finite() {
            return Err(Error::NonFinite {
                context: "applying the observable to the MPS".into(),
            });
        }
        if norm == 0.0 {
            return Ok((self.clone(), 0.0));
        }
        let last = lambda.centre;
        lambda.sites[last].data.iter_mut().for_each(|z| *z /= norm);
        lambda.compress()?;
        lambda.touched = None;
        Ok((lambda, norm))
    }

    /// Right-to-left SVD sweep truncating every bond with the state's settings; the centre
    /// must be at the last site and ends at site 0.
    fn compress(&mut self) -> Result<()> {
        debug_assert_eq!(self.centre, self.n_qubits - 1);
        let p = self.config.parallelism;
        let truncation = self.config.truncation;
        for c in (1..self.n_qubits).rev() {
            let a = self.sites[c].as_l_sr();
            let f = linalg::checked_svd(a, p, self.config.svd)?;
            let (kept, eps, scale) = self.truncate(&f.s, truncation, c - 1)?;
            let chi_r = self.sites[c].chi_r;
            let mut vh = Vec::with_capacity(kept * 2 * chi_r);
            for col in 0..2 * chi_r {
                for t in 0..kept {
                    vh.push(f.v[(col, t)].conj());
                }
            }
            let us = Mat::<C64>::from_fn(f.u.nrows(), kept, |i, t| f.u[(i, t)] * (f.s[t] * scale));
            let prev = &self.sites[c - 1];
            let mut m = Mat::<C64>::zeros(2 * prev.chi_l, kept);
            linalg::mul(m.as_mut(), prev.as_ls_r(), us.as_ref(), p);
            let chi_l = prev.chi_l;
            self.sites[c - 1] = Site::from_mat(m.as_ref(), chi_l, kept);
            self.sites[c] = Site {
                chi_l: kept,
                chi_r,
                data: vh,
            };
            self.log.next_update();
            self.log.record(c - 1, eps, kept);
            self.centre = c - 1;
        }
        Ok(())
    }
}

/// The adjoint pair of the MPS backend.
#[derive(Debug)]
pub struct MpsAdjointPair {
    psi: MpsState,
    lambda: MpsState,
    scale: f64,
    left: Vec<Option<Mat<C64>>>,
    right: Vec<Option<Mat<C64>>>,
    /// `left[j]` is valid for `j <= left_valid`.
    left_valid: usize,
    /// `right[j]` is valid for `j >= right_valid`.
    right_valid: usize,
}

impl MpsAdjointPair {
    /// Fidelity estimate of the co-state (truncation of `O psi` and of its backward sweep).
    pub fn lambda_fidelity_estimate(&self) -> f64 {
        self.lambda.fidelity_estimate()
    }

    fn invalidate(&mut self) {
        for (lo, hi) in [self.psi.take_touched(), self.lambda.take_touched()]
            .into_iter()
            .flatten()
        {
            self.left_valid = self.left_valid.min(lo);
            self.right_valid = self.right_valid.max(hi + 1);
        }
    }

    /// Makes `left[j]` valid by extending from the last valid entry.
    fn ensure_left(&mut self, j: usize) {
        let p = self.psi.config.parallelism;
        while self.left_valid < j {
            let i = self.left_valid;
            let env = self.left[i].as_ref().expect("valid left environment");
            self.left[i + 1] = Some(extend_left(
                env,
                &self.lambda.sites[i],
                &self.psi.sites[i],
                p,
            ));
            self.left_valid = i + 1;
        }
    }

    /// Makes `right[j]` valid by extending from the last valid entry.
    fn ensure_right(&mut self, j: usize) {
        let p = self.psi.config.parallelism;
        while self.right_valid > j {
            let i = self.right_valid - 1;
            let (a, b) = (&self.lambda.sites[i], &self.psi.sites[i]);
            let env = self.right[i + 1].as_ref().expect("valid right environment");
            // X = psi_ls * R^T ((2 chi_psi_l) x chi_lam_r), read as chi_psi_l x (2 chi_lam_r).
            let mut x = Mat::<C64>::zeros(2 * b.chi_l, a.chi_r);
            linalg::mul(x.as_mut(), b.as_ls_r(), env.transpose(), p);
            let x = col_major(x);
            let xm = MatRef::from_column_major_slice(&x, b.chi_l, 2 * a.chi_r);
            let mut out = Mat::<C64>::zeros(a.chi_l, b.chi_l);
            linalg::mul(out.as_mut(), a.as_l_sr().conjugate(), xm.transpose(), p);
            self.right[i] = Some(out);
            self.right_valid = i;
        }
    }

    /// `<lambda| m |psi>` for each window-order matrix `m` on sites `start .. start + k`.
    fn window_overlaps(&mut self, start: usize, k: usize, local: &[Vec<C64>]) -> Vec<C64> {
        self.invalidate();
        self.ensure_left(start);
        self.ensure_right(start + k);
        let p = self.psi.config.parallelism;
        let (tp, pl, pr) = self.psi.window_theta(start, k);
        let (tl, ll, lr) = self.lambda.window_theta(start, k);
        let dim = 1usize << k;
        let env_l = self.left[start].as_ref().expect("ensured");
        let env_r = self.right[start + k].as_ref().expect("ensured");
        // X = L * theta_psi: (ll) x (dim * pr).
        let mut x = Mat::<C64>::zeros(ll, dim * pr);
        linalg::mul(
            x.as_mut(),
            env_l.as_ref(),
            MatRef::from_column_major_slice(&tp, pl, dim * pr),
            p,
        );
        // Z = X (read (ll dim) x pr) * R^T: (ll dim) x lr.
        let x = col_major(x);
        let mut z = Mat::<C64>::zeros(ll * dim, lr);
        linalg::mul(
            z.as_mut(),
            MatRef::from_column_major_slice(&x, ll * dim, pr),
            env_r.transpose(),
            p,
        );
        let z = col_major(z);
        local
            .iter()
            .map(|m| {
                // sum over l, r, p', p of conj(tl[l, p', r]) m[p', p] z[l, p, r].
                let mut acc = ZERO;
                for r in 0..lr {
                    for pp in 0..dim {
                        let bra = &tl[ll * (pp + dim * r)..ll * (pp + dim * r + 1)];
                        for pq in 0..dim {
                            let g = m[pp * dim + pq];
                            if g == ZERO {
                                continue;
                            }
                            let ket = &z[ll * (pq + dim * r)..ll * (pq + dim * r + 1)];
                            acc += g * bra.iter().zip(ket).map(|(a, b)| a.conj() * b).sum::<C64>();
                        }
                    }
                }
                acc * self.scale
            })
            .collect()
    }
}

impl AdjointBackend for MpsState {
    type Pair = MpsAdjointPair;

    fn into_adjoint_pair(mut self, observable: &Observable) -> Result<(f64, MpsAdjointPair)> {
        // The backward sweep runs on sites.
        self.release()?;
        let value = self.mpo_expectation(observable)?;
        let (lambda, scale) = self.apply_observable(observable)?;
        let n = self.n_qubits;
        let mut left = vec![None; n + 1];
        let mut right = vec![None; n + 1];
        left[0] = Some(Mat::<C64>::from_fn(1, 1, |_, _| ONE));
        right[n] = Some(Mat::<C64>::from_fn(1, 1, |_, _| ONE));
        self.touched = None;
        Ok((
            value,
            MpsAdjointPair {
                psi: self,
                lambda,
                scale,
                left,
                right,
                left_valid: 0,
                right_valid: n,
            },
        ))
    }
}

impl AdjointPair for MpsAdjointPair {
    fn step(
        &mut self,
        u_dagger: &GateMatrix,
        local: &[GateMatrix],
        qubits: &[usize],
    ) -> Result<Vec<C64>> {
        check_gate_qubits(self.psi.n_qubits, u_dagger, qubits)?;
        if let (1, Some(u)) = (qubits.len(), u_dagger.as_2x2()) {
            self.psi.apply_one(&u, qubits[0]);
            self.lambda.apply_one(&u, qubits[0]);
            let ms: Vec<Vec<C64>> = local.iter().map(|m| m.as_slice().to_vec()).collect();
            return Ok(self.window_overlaps(qubits[0], 1, &ms));
        }
        let Route {
            swaps,
            start,
            arg_at,
        } = self.psi.plan_route(qubits)?;
        let k = qubits.len();
        for &b in &swaps {
            self.psi.swap_sites(b)?;
            self.lambda.swap_sites(b)?;
        }
        let gm = window_matrix(u_dagger, &arg_at);
        self.psi.apply_window(&gm, start, k)?;
        self.lambda.apply_window(&gm, start, k)?;
        let ms: Vec<Vec<C64>> = local.iter().map(|m| window_matrix(m, &arg_at)).collect();
        let out = self.window_overlaps(start, k, &ms);
        for &b in swaps.iter().rev() {
            self.psi.swap_sites(b)?;
            self.lambda.swap_sites(b)?;
        }
        Ok(out)
    }
}
