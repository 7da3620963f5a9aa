//! The product prefix of a run: the gates at its start that keep a product state a product
//! state, applied to the sites directly.
//!
//! On a chain whose bonds are all 1 (every run from `|0...0>` starts so) each site is a
//! two-component vector, and many gates keep it that way:
//!
//! - a one-qubit gate multiplies one site;
//! - a SWAP exchanges two sites;
//! - a controlled gate whose control is in a computational basis state (one of its two
//!   amplitudes exactly zero) applies its block to the target or nothing; a controlled
//!   diagonal block on a target in a basis state is a phase on the control;
//! - a two-qubit diagonal gate with either qubit in a basis state is a one-qubit diagonal
//!   on the other;
//! - a doubly controlled gate (Toffoli) whose controls are in basis states applies its
//!   block to the target or nothing;
//! - any gate whose qubits are all in basis states and whose matrix maps that basis state
//!   to a multiple of one basis state (permutations, with phases: CSWAP, iSWAP) sets them.
//!
//! Each costs a few multiplications: no factorization, no routing, and nothing truncated,
//! so the result is exact. Classical reversible circuits on basis states (adders, oracles)
//! run entirely this way, and so do the preparation of registers and ancillas at the start
//! of many others. The run goes on through its usual path from the first gate that could
//! entangle its qubits (tests for exact zeros only: a gate that leaves a product state
//! only up to round-off also takes the usual path).

use num_complex::Complex64 as C64;

use super::{MpsState, UpdateScheme, amplitudes::doubly_controlled};
use crate::circuit::Action;
use crate::error::Result;

const ZERO: C64 = C64::new(0.0, 0.0);

/// The basis state (0 or 1) a site's two amplitudes are in, if one of them is exactly zero.
fn basis(v: &[C64]) -> Option<usize> {
    if v[1] == ZERO {
        Some(0)
    } else if v[0] == ZERO {
        Some(1)
    } else {
        None
    }
}

/// `u v` for a row-major `2 x 2` matrix.
fn times(u: &[C64; 4], v: &mut [C64]) {
    let (a, b) = (v[0], v[1]);
    v[0] = u[0] * a + u[1] * b;
    v[1] = u[2] * a + u[3] * b;
}

impl MpsState {
    /// Applies the longest prefix of `instructions` that keeps the state a product state
    /// (see the module docs), when the state is one (every bond 1, not held) and runs with
    /// window blocks and without TEBD; returns how many instructions it applied (0 when it
    /// does not apply). The parameters were checked by the caller.
    pub(super) fn run_product_prefix(
        &mut self,
        instructions: &[crate::Instruction],
        theta: &[f64],
        x: &[f64],
    ) -> Result<usize> {
        if !self.config.window_blocks
            || self.config.update == UpdateScheme::Tebd
            || self.held.is_some()
            || self.unswept
            || self.sites.iter().any(|s| s.chi_l != 1 || s.chi_r != 1)
        {
            return Ok(0);
        }
        let mut done = 0;
        let (mut lo, mut hi) = (usize::MAX, 0);
        let mut outcome = Ok(());
        for inst in instructions {
            let qubits = inst.qubits();
            match inst.gate().action(theta, x) {
                Ok(action) if self.apply_on_product(&action, qubits) => {}
                Ok(_) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
            for &q in qubits {
                lo = lo.min(q);
                hi = hi.max(q);
            }
            done += 1;
        }
        // Marked even when a gate fails to bind: the sites before it have changed.
        if done > 0 {
            self.touch(lo, hi);
        }
        outcome.map(|()| done)
    }

    /// Applies `action` on `qubits` to the product state's sites if the result is a
    /// product state by the rules of the module docs; `false`, touching nothing, if not.
    fn apply_on_product(&mut self, action: &Action, qubits: &[usize]) -> bool {
        let site = |s: &Self, q: usize| basis(&s.sites[q].data);
        match (action, qubits) {
            (Action::One(u), &[q]) => times(u, &mut self.sites[q].data),
            (Action::Swap, &[a, b]) => self.sites.swap(a, b),
            (Action::Controlled(u), &[c, t]) => match (site(self, c), site(self, t)) {
                (Some(0), _) => {}
                (Some(_), _) => times(u, &mut self.sites[t].data),
                // A diagonal block on a basis state: a phase when the control is 1.
                (None, Some(k)) if u[1] == ZERO && u[2] == ZERO => {
                    self.sites[c].data[1] *= u[3 * k];
                }
                _ => return false,
            },
            (Action::Diagonal(d), &[a, b]) => match (site(self, a), site(self, b)) {
                (Some(k), _) => {
                    let v = &mut self.sites[b].data;
                    v[0] *= d[2 * k];
                    v[1] *= d[2 * k + 1];
                }
                (None, Some(k)) => {
                    let v = &mut self.sites[a].data;
                    v[0] *= d[k];
                    v[1] *= d[2 + k];
                }
                (None, None) => return false,
            },
            (Action::General(m), _) => {
                let m = m.as_slice();
                let mut bits = [None; 3];
                for (b, &q) in bits.iter_mut().zip(qubits) {
                    *b = site(self, q);
                }
                let bits = &bits[..qubits.len()];
                return match (doubly_controlled(m), qubits, bits) {
                    (Some(u), &[_, _, t], &[Some(1), Some(1), _]) => {
                        times(&u, &mut self.sites[t].data);
                        true
                    }
                    (Some(_), _, &[Some(0), _, _] | &[_, Some(0), _]) => true,
                    _ => self.permute_basis(m, qubits, bits),
                };
            }
            _ => return false,
        }
        true
    }

    /// A gate of matrix `m` (row-major, first qubit most significant) on qubits all in
    /// basis states (`bits`) whose column for that basis state has exactly one nonzero
    /// entry: the qubits move to that entry's basis state, its factor (and the sites'
    /// phases) on the first qubit. `false`, touching nothing, otherwise.
    fn permute_basis(&mut self, m: &[C64], qubits: &[usize], bits: &[Option<usize>]) -> bool {
        let k = qubits.len();
        let mut column = 0;
        for b in bits {
            match b {
                Some(b) => column = 2 * column + b,
                None => return false,
            }
        }
        let dim = 1 << k;
        let mut nonzero = (0..dim).filter(|&r| m[r * dim + column] != ZERO);
        let (Some(row), None) = (nonzero.next(), nonzero.next()) else {
            return false;
        };
        // The product of the sites' nonzero amplitudes times the entry, on the first qubit.
        let mut factor = m[row * dim + column];
        for (&q, b) in qubits.iter().zip(bits) {
            factor *= self.sites[q].data[b.unwrap_or(0)];
        }
        for (j, &q) in qubits.iter().enumerate() {
            let bit = (row >> (k - 1 - j)) & 1;
            let value = if j == 0 { factor } else { C64::new(1.0, 0.0) };
            let v = &mut self.sites[q].data;
            v[bit] = value;
            v[1 - bit] = ZERO;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::StateBackend;
    use crate::{DenseState, MpsConfig};

    fn phase(t: f64) -> C64 {
        C64::from_polar(1.0, t)
    }

    /// Every form of action on every mix of basis and superposed qubits (the gates in
    /// `Gate` only give symmetric diagonals; these are not): where the product rule
    /// applies, the sites become the dense result; where it does not, nothing changes.
    #[test]
    fn each_rule_matches_the_dense_gate() {
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let superposed = [C64::new(h, 0.0), C64::new(0.0, h)];
        let diag = [phase(0.3), phase(-1.1), phase(0.7), phase(2.0)];
        let mut perm = vec![ZERO; 16];
        for (r, c, t) in [(0, 2, 0.4), (1, 0, -0.2), (2, 3, 1.0), (3, 1, 0.0)] {
            perm[r * 4 + c] = phase(t);
        }
        let actions = [
            Action::Diagonal(diag),
            Action::Controlled([phase(0.5), ZERO, ZERO, phase(-0.9)]),
            Action::Controlled([ZERO, phase(0.2), phase(0.1), ZERO]),
            Action::Swap,
            Action::General(Box::new(
                crate::GateMatrix::from_row_major(2, &perm).unwrap(),
            )),
        ];
        let n = 3;
        for action in &actions {
            for (a, b) in [(0, 2), (2, 0), (1, 2)] {
                // Each of the two qubits |0>, |1> or superposed; qubit `other` superposed.
                for ka in 0..3 {
                    for kb in 0..3 {
                        let mut mps = MpsState::new(
                            n,
                            MpsConfig::default().with_update(crate::UpdateScheme::Centre),
                        )
                        .unwrap();
                        let set = |mps: &mut MpsState, q: usize, k: usize| {
                            mps.sites[q].data.copy_from_slice(&match k {
                                0 => [C64::new(1.0, 0.0), ZERO],
                                1 => [ZERO, C64::new(1.0, 0.0)],
                                _ => superposed,
                            });
                        };
                        let other = 3 - a - b;
                        set(&mut mps, a, ka);
                        set(&mut mps, b, kb);
                        set(&mut mps, other, 2);
                        let before = mps.to_dense().unwrap();
                        let mut dense = DenseState::from_amplitudes(before.clone()).unwrap();
                        dense
                            .apply_matrix(&action.clone().into_matrix(), &[a, b])
                            .unwrap();
                        let applied = mps.apply_on_product(action, &[a, b]);
                        let after = mps.to_dense().unwrap();
                        let want = if applied { dense.amplitudes() } else { &before };
                        let d = after
                            .iter()
                            .zip(want)
                            .map(|(x, y)| (x - y).norm())
                            .fold(0.0, f64::max);
                        assert!(
                            d < 1e-15,
                            "{action:?} on ({a}, {b}) from ({ka}, {kb}): {d:e}"
                        );
                        let basis_pair = ka < 2 && kb < 2;
                        if basis_pair || matches!(action, Action::Swap) {
                            assert!(applied, "{action:?} from ({ka}, {kb})");
                        }
                    }
                }
            }
        }
    }
}
