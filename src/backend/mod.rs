//! The one backend trait every simulator implements, and what backends share.
//!
//! A backend holds a quantum state and nothing of a circuit; a [`Circuit`] runs on any
//! backend through [`StateBackend::run`]. [`DenseState`] is the exact reference oracle,
//! [`MpsState`] the scalable matrix product state.

pub mod dense;
pub mod mps;

pub use dense::DenseState;
pub use mps::{
    CutoffRule, MpsConfig, MpsState, Routing, SplitMethod, Truncation, TruncationEvent,
    TruncationReport, UpdateScheme, ZReadOut,
};

use num_complex::Complex64 as C64;
use rand::Rng;

use crate::bits::BitString;
use crate::circuit::{Circuit, GateMatrix, Instruction};
use crate::error::{Error, Result};
use crate::observable::{Observable, PauliString};

/// Largest number of qubits for which [`StateBackend::marginal_probabilities`] builds a
/// distribution (`2^20` entries).
pub const MAX_MARGINAL_QUBITS: usize = 20;

/// Largest number of qubits [`StateBackend::to_dense`] converts (`2^30` amplitudes, 16 GiB).
pub const MAX_DENSE_EXPORT_QUBITS: usize = 30;

/// Outcome probability below which [`StateBackend::project`] refuses to renormalize.
pub const MIN_OUTCOME_PROBABILITY: f64 = 1e-14;

/// How many threads a kernel may use. Passed as a value, never set globally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// One thread.
    #[default]
    Sequential,
    /// Up to this many threads of the current rayon pool (0 means all of them).
    Rayon(usize),
}

impl Parallelism {
    /// Whether kernels may use more than one thread: `Rayon(n)` other than `Rayon(1)`.
    pub fn is_parallel(self) -> bool {
        !matches!(self, Parallelism::Sequential | Parallelism::Rayon(1))
    }
}

/// A quantum state that gates act on and read-outs are taken from.
///
/// Qubit `q` is bit `q` of a basis-state index (qubit 0 least significant, as in Qiskit);
/// gate matrices follow `docs/conventions.md`.
pub trait StateBackend {
    /// Number of qubits.
    fn n_qubits(&self) -> usize;

    /// Applies a unitary matrix to `qubits` (first qubit the most significant matrix bit).
    ///
    /// # Errors
    /// [`Error::WrongArity`], [`Error::QubitOutOfRange`], [`Error::RepeatedQubit`], and the
    /// numerical errors of the backend ([`Error::SvdFailed`], [`Error::NonFinite`], ...).
    fn apply_matrix(&mut self, matrix: &GateMatrix, qubits: &[usize]) -> Result<()>;

    /// Applies one instruction with angles bound from `theta` and `x`.
    ///
    /// # Errors
    /// As [`StateBackend::apply_matrix`], and [`Error::NonFiniteAngle`] for an unbound angle.
    fn apply_instruction(&mut self, inst: &Instruction, theta: &[f64], x: &[f64]) -> Result<()> {
        let m = inst.gate().matrix(theta, x)?;
        self.apply_matrix(&m, inst.qubits())
    }

    /// Runs a whole circuit with parameters `theta` and inputs `x`, then checks the norm.
    ///
    /// # Errors
    /// [`Error::QubitCountMismatch`], [`Error::BindingLength`], [`Error::NonFiniteBinding`]
    /// before anything is applied; then any error of [`StateBackend::apply_instruction`] and
    /// [`Error::NormDrift`] if the final norm is off by more than the backend's tolerance.
    fn run(&mut self, circuit: &Circuit, theta: &[f64], x: &[f64]) -> Result<()> {
        if circuit.n_qubits() != self.n_qubits() {
            return Err(Error::QubitCountMismatch {
                circuit: circuit.n_qubits(),
                state: self.n_qubits(),
            });
        }
        circuit.check_binding(theta, x)?;
        for inst in circuit {
            self.apply_instruction(inst, theta, x)?;
        }
        self.check_norm("after running the circuit")
    }

    /// As [`run`](Self::run), in [`Circuit::sweep_order`] (the same unitary), telling
    /// `progress` how many instructions each step completed (for progress bars).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    fn run_with_progress(
        &mut self,
        circuit: &Circuit,
        theta: &[f64],
        x: &[f64],
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        if circuit.n_qubits() != self.n_qubits() {
            return Err(Error::QubitCountMismatch {
                circuit: circuit.n_qubits(),
                state: self.n_qubits(),
            });
        }
        circuit.check_binding(theta, x)?;
        let instructions = circuit.instructions();
        for i in circuit.sweep_order() {
            self.apply_instruction(&instructions[i], theta, x)?;
            progress(1);
        }
        self.check_norm("after running the circuit")
    }

    /// Returns [`Error::NormDrift`] (or [`Error::NonFinite`]) if the norm is off by more
    /// than the backend's tolerance.
    ///
    /// # Errors
    /// As described.
    fn check_norm(&self, context: &str) -> Result<()>;

    /// Amplitude `<bits|psi>`.
    ///
    /// # Errors
    /// [`Error::BitStringLength`].
    fn amplitude(&self, bits: &BitString) -> Result<C64>;

    /// Projects `qubit` onto `outcome` and renormalizes; returns the probability the outcome
    /// had before the projection.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`]; [`Error::ImpossibleOutcome`] if the probability is below
    /// [`MIN_OUTCOME_PROBABILITY`] (the state is then unchanged).
    fn project(&mut self, qubit: usize, outcome: bool) -> Result<f64>;

    /// Measures `qubit` in the computational basis with a draw from `rng`, collapsing the
    /// state; returns the outcome.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`], [`Error::NonFinite`].
    fn measure(&mut self, qubit: usize, rng: &mut dyn Rng) -> Result<bool> {
        use rand::RngExt;
        let p = self.marginal_probabilities(&[qubit])?;
        let total = p[0] + p[1];
        if !total.is_finite() || total <= 0.0 {
            return Err(Error::NonFinite {
                context: format!("measuring qubit {qubit}: probabilities {p:?}"),
            });
        }
        let outcome = rng.random::<f64>() * total >= p[0];
        self.project(qubit, outcome)?;
        Ok(outcome)
    }

    /// Resets `qubit` to `|0>`: measures it and flips it if it read 1 (the trajectory
    /// semantics of OpenQASM `reset`).
    ///
    /// # Errors
    /// As [`StateBackend::measure`].
    fn reset(&mut self, qubit: usize, rng: &mut dyn Rng) -> Result<()> {
        if self.measure(qubit, rng)? {
            let x = crate::Gate::X.matrix(&[], &[])?;
            self.apply_matrix(&x, &[qubit])?;
        }
        Ok(())
    }

    /// `<psi|P|psi>` for a Pauli string.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`].
    fn expectation_pauli(&self, pauli: &PauliString) -> Result<f64>;

    /// `<psi|O|psi>` for a weighted sum of Pauli strings.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`], [`Error::NonFinite`] for a non-finite weight.
    fn expectation(&self, observable: &Observable) -> Result<f64> {
        observable.check(self.n_qubits())?;
        let mut total = 0.0;
        for (w, p) in observable.terms() {
            total += w * self.expectation_pauli(p)?;
        }
        Ok(total)
    }

    /// `<Z_q>` for every qubit `q`, in one pass over the state.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if the state holds NaN.
    fn z_expectations(&self) -> Result<Vec<f64>>;

    /// The distribution of the measurement outcomes of `qubits`: entry `k` is the probability
    /// that qubit `qubits[j]` reads bit `j` of `k`, for all `j`.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`], [`Error::RepeatedQubit`], [`Error::TooLarge`] beyond
    /// [`MAX_MARGINAL_QUBITS`].
    fn marginal_probabilities(&self, qubits: &[usize]) -> Result<Vec<f64>>;

    /// Draws `shots` measurements of every qubit in the computational basis.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if probabilities are not finite.
    fn sample(&self, shots: usize, rng: &mut dyn Rng) -> Result<Vec<BitString>>;

    /// Randomized measurements: shot `k` measures qubit `q` in the eigenbasis of
    /// `bases[k][q]` (X, Y or Z); bit 0 means eigenvalue +1. The state is not changed.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] if a basis list does not have one entry per qubit;
    /// [`Error::NonFinite`].
    fn sample_in_bases(
        &self,
        bases: &[Vec<crate::Pauli>],
        rng: &mut dyn Rng,
    ) -> Result<Vec<BitString>>;

    /// The norm `sqrt(<psi|psi>)`.
    fn norm(&self) -> f64;

    /// The full state vector (qubit 0 least significant).
    ///
    /// # Errors
    /// [`Error::TooLarge`] beyond [`MAX_DENSE_EXPORT_QUBITS`].
    fn to_dense(&self) -> Result<Vec<C64>>;

    /// Bond dimension of each of the `n - 1` cuts between qubits `i` and `i + 1`. For a dense
    /// state this is the largest Schmidt rank the cut can have, `min(2^(i+1), 2^(n-i-1))`.
    fn bond_dimensions(&self) -> Vec<usize>;

    /// Estimated fidelity `|<psi_exact|psi>|^2` with the untruncated state (1 when exact).
    fn fidelity_estimate(&self) -> f64;

    /// `log10` of [`fidelity_estimate`](Self::fidelity_estimate), finite where a deep
    /// truncated run's estimate is below the `f64` range (and reads 0). The default takes
    /// the logarithm of the estimate; [`MpsState`] sums it from its cuts.
    fn log10_fidelity_estimate(&self) -> f64 {
        self.fidelity_estimate().log10()
    }
}

/// The pair of states the adjoint method sweeps backwards through a circuit: the state
/// `psi` and the co-state `lambda = O psi` (see `docs/theory.md`).
pub trait AdjointPair {
    /// Applies `u_dagger` to both states on `qubits`, then returns `<lambda| m |psi>` for each
    /// `m` in `local` (each acting on the same `qubits`), including `lambda`'s scale.
    ///
    /// # Errors
    /// As [`StateBackend::apply_matrix`].
    fn step(
        &mut self,
        u_dagger: &GateMatrix,
        local: &[GateMatrix],
        qubits: &[usize],
    ) -> Result<Vec<C64>>;
}

/// A backend that supports adjoint differentiation.
pub trait AdjointBackend: StateBackend + Sized {
    /// The backend's adjoint pair.
    type Pair: AdjointPair;

    /// From the final state `psi` of a circuit: `<psi|O|psi>` and the pair `(psi, O psi)`.
    ///
    /// # Errors
    /// [`Error::QubitOutOfRange`] or [`Error::NonFinite`] for a bad observable.
    fn into_adjoint_pair(self, observable: &Observable) -> Result<(f64, Self::Pair)>;
}

/// Validates the qubits of a gate against a register of `n_qubits` and the matrix arity.
pub(crate) fn check_gate_qubits(
    n_qubits: usize,
    matrix: &GateMatrix,
    qubits: &[usize],
) -> Result<()> {
    if qubits.len() != matrix.n_qubits() {
        return Err(Error::WrongArity {
            gate: "matrix",
            expected: matrix.n_qubits(),
            got: qubits.len(),
        });
    }
    check_distinct_qubits(n_qubits, qubits, "gate matrix")
}

/// Validates a list of distinct qubits.
pub(crate) fn check_distinct_qubits(
    n_qubits: usize,
    qubits: &[usize],
    context: &str,
) -> Result<()> {
    for (k, &q) in qubits.iter().enumerate() {
        if q >= n_qubits {
            return Err(Error::QubitOutOfRange { qubit: q, n_qubits });
        }
        if qubits[..k].contains(&q) {
            return Err(Error::RepeatedQubit {
                qubit: q,
                context: context.to_string(),
            });
        }
    }
    Ok(())
}

/// Validates per-shot measurement bases.
pub(crate) fn check_bases(n_qubits: usize, bases: &[Vec<crate::Pauli>]) -> Result<()> {
    match bases.iter().position(|b| b.len() != n_qubits) {
        Some(k) => Err(Error::InvalidSetting {
            name: "bases[k].len()",
            value: format!("{} at shot {k}", bases[k].len()),
            reason: "needs one basis per qubit",
        }),
        None => Ok(()),
    }
}

/// Validates a marginal request.
pub(crate) fn check_marginal(n_qubits: usize, qubits: &[usize]) -> Result<()> {
    check_distinct_qubits(n_qubits, qubits, "marginal")?;
    if qubits.len() > MAX_MARGINAL_QUBITS {
        return Err(Error::TooLarge {
            what: "marginal distribution",
            n_qubits: qubits.len(),
            max: MAX_MARGINAL_QUBITS,
        });
    }
    Ok(())
}

/// Draws an index from unnormalized non-negative weights given as a cumulative table.
pub(crate) fn draw_from_cumulative(cumulative: &[f64], rng: &mut dyn Rng) -> usize {
    use rand::RngExt;
    let total = cumulative.last().copied().unwrap_or(0.0);
    let u: f64 = rng.random::<f64>() * total;
    cumulative
        .partition_point(|&c| c <= u)
        .min(cumulative.len().saturating_sub(1))
}

/// Bond dimensions a full state vector of `n` qubits can carry.
pub(crate) fn full_bond_dimensions(n: usize) -> Vec<usize> {
    (0..n.saturating_sub(1))
        .map(|i| {
            let left = (i + 1).min(63);
            let right = (n - i - 1).min(63);
            1usize << left.min(right)
        })
        .collect()
}
