//! Randomized measurements (classical shadows with random Pauli bases).
//!
//! Each shot measures every qubit in a uniformly random Pauli basis. For a Pauli string `P`
//! on support `S`, the single-shot estimate is `prod_{q in S} 3 (-1)^{b_q}` when every qubit
//! of `S` was measured in `P`'s basis, and 0 otherwise; its mean over shots is an unbiased
//! estimate of `<P>` with variance at most `3^|S|` per shot (Huang, Kueng, Preskill 2020).
//! One set of shots estimates every observable at once.
//!
//! ```
//! use qfl::{Circuit, MpsConfig, MpsState, PauliString, StateBackend, shadows};
//! use rand::{SeedableRng, rngs::ChaCha8Rng};
//! # fn main() -> qfl::Result<()> {
//! let mut c = Circuit::new(2)?;
//! c.h(0)?.cx(0, 1)?;
//! let mut psi = MpsState::new(2, MpsConfig::default())?;
//! psi.run(&c, &[], &[])?;
//! let obs = ["Z0 Z1".parse::<PauliString>()?, "X0 X1".parse()?, PauliString::z(0)];
//! let est = shadows::estimate_expectations(&psi, &obs, 20_000, &mut ChaCha8Rng::seed_from_u64(1))?;
//! // Exact: 1, 1, 0; the standard error of a weight-2 term here is about sqrt(9/20000) = 0.02.
//! assert!((est[0] - 1.0).abs() < 0.1 && (est[1] - 1.0).abs() < 0.1 && est[2].abs() < 0.1);
//! # Ok(()) }
//! ```

use rand::{Rng, RngExt};

use crate::backend::StateBackend;
use crate::bits::BitString;
use crate::error::{Error, Result};
use crate::observable::{Pauli, PauliString};

/// `shots` lists of uniformly random bases, one per qubit.
pub fn random_bases(n_qubits: usize, shots: usize, rng: &mut dyn Rng) -> Vec<Vec<Pauli>> {
    (0..shots)
        .map(|_| {
            (0..n_qubits)
                .map(|_| [Pauli::X, Pauli::Y, Pauli::Z][rng.random_range(0..3usize)])
                .collect()
        })
        .collect()
}

/// The shadow estimates (means over shots) of each observable from measured `outcomes` in
/// `bases`.
///
/// # Errors
/// [`Error::InvalidSetting`] if the lengths differ or there are no shots;
/// [`Error::QubitOutOfRange`] if an observable acts beyond the measured qubits.
pub fn estimate(
    observables: &[PauliString],
    bases: &[Vec<Pauli>],
    outcomes: &[BitString],
) -> Result<Vec<f64>> {
    if bases.len() != outcomes.len() || bases.is_empty() {
        return Err(Error::InvalidSetting {
            name: "shots",
            value: format!("{} bases, {} outcomes", bases.len(), outcomes.len()),
            reason: "needs the same positive number of bases and outcomes",
        });
    }
    let n = bases[0].len();
    for p in observables {
        p.check(n)?;
    }
    let shots = bases.len() as f64;
    Ok(observables
        .iter()
        .map(|p| {
            let total: f64 = bases
                .iter()
                .zip(outcomes)
                .map(|(basis, bits)| {
                    p.terms().iter().fold(1.0, |acc, &(q, pauli)| {
                        if basis[q] != pauli {
                            0.0
                        } else if bits.get(q) {
                            -3.0 * acc
                        } else {
                            3.0 * acc
                        }
                    })
                })
                .sum();
            total / shots
        })
        .collect())
}

/// Measures `state` in `shots` random Pauli bases and returns the shadow estimate of each
/// observable.
///
/// # Errors
/// As [`StateBackend::sample_in_bases`] and [`estimate`].
pub fn estimate_expectations<B: StateBackend + ?Sized>(
    state: &B,
    observables: &[PauliString],
    shots: usize,
    rng: &mut dyn Rng,
) -> Result<Vec<f64>> {
    let bases = random_bases(state.n_qubits(), shots, rng);
    let outcomes = state.sample_in_bases(&bases, rng)?;
    estimate(observables, &bases, &outcomes)
}
