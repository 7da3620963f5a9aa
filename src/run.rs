//! Running [`Program`]s: shot sampling, seeded trajectories, and exact outcome
//! distributions.
//!
//! - A program whose only non-unitary operations are final measurements runs **once** and
//!   is sampled with [`StateBackend::sample`].
//! - Any other program (mid-circuit `measure`, `reset`, `if`) runs **shot by shot**: each
//!   shot is a trajectory that draws its measurement outcomes from its own random stream,
//!   seeded by [`shot_seed`]`(seed, shot)`, so results do not depend on how shots are
//!   scheduled. The unitary prefix before the first non-unitary operation runs once and is
//!   cloned for every shot.
//! - [`exact_distribution`] follows every measurement branch with its probability (by
//!   [`StateBackend::project`] on clones) and gives the exact distribution of outcomes.
//!
//! Counts and distributions are keyed by [`Program::format_clbits`]: Qiskit's order, one
//! group per classical register with the last declared register first and bit 0 last.
//!
//! ```
//! use qfl::{DenseState, run::{exact_distribution, run_shots}};
//! # fn main() -> qfl::Result<()> {
//! let p = qfl::qasm::parse_str(
//!     "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[1];\ncreg c[2];\n\
//!      h q[0];\nmeasure q[0] -> c[0];\nif (c == 1) x q[0];\nmeasure q[0] -> c[1];\n",
//!     "reset_by_if.qasm",
//! )?;
//! let exact = exact_distribution(&p, DenseState::new(1)?)?;
//! assert_eq!(exact.len(), 2);
//! assert!((exact["00"] - 0.5).abs() < 1e-12 && (exact["01"] - 0.5).abs() < 1e-12);
//! let counts = run_shots(&p, DenseState::new(1)?, 1000, 7)?;
//! assert_eq!(counts.values().sum::<usize>(), 1000);
//! assert!(counts.keys().all(|k| k == "00" || k == "01"));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use crate::backend::{MIN_OUTCOME_PROBABILITY, StateBackend};
use crate::bits::BitString;
use crate::circuit::{Gate, Operation, Program};
use crate::error::{Error, Result};

/// Counts of classical outcomes, keyed as [`Program::format_clbits`] writes them.
pub type Counts = BTreeMap<String, usize>;

/// Probabilities of classical outcomes, keyed as [`Program::format_clbits`] writes them.
pub type Distribution = BTreeMap<String, f64>;

/// Most branches [`exact_distribution`] follows.
pub const MAX_BRANCHES: usize = 1 << 16;

/// The seed of shot `shot` of a run seeded with `seed`: SplitMix64 of the pair, so that
/// neighbouring shots get unrelated streams.
pub fn shot_seed(seed: u64, shot: u64) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    mix(mix(seed.wrapping_add(GOLDEN)) ^ shot.wrapping_add(1).wrapping_mul(GOLDEN))
}

fn check_width<B: StateBackend>(program: &Program, state: &B) -> Result<()> {
    if program.n_qubits() != state.n_qubits() {
        return Err(Error::QubitCountMismatch {
            circuit: program.n_qubits(),
            state: state.n_qubits(),
        });
    }
    Ok(())
}

/// Index of the first operation that is neither a gate nor a barrier.
fn unitary_prefix(program: &Program) -> usize {
    program
        .operations()
        .iter()
        .position(|op| !matches!(op, Operation::Gate(_) | Operation::Barrier { .. }))
        .unwrap_or(program.len())
}

fn apply_prefix<B: StateBackend>(program: &Program, state: &mut B, end: usize) -> Result<()> {
    for op in &program.operations()[..end] {
        if let Operation::Gate(inst) = op {
            state.apply_instruction(inst, &[], &[])?;
        }
    }
    Ok(())
}

/// Applies one operation of a trajectory.
fn apply_op<B: StateBackend>(
    program: &Program,
    op: &Operation,
    state: &mut B,
    clbits: &mut BitString,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    match op {
        Operation::Gate(inst) => state.apply_instruction(inst, &[], &[]),
        Operation::Measure { qubit, clbit } => {
            let outcome = state.measure(*qubit, rng)?;
            clbits.set(*clbit, outcome);
            Ok(())
        }
        Operation::Reset { qubit } => state.reset(*qubit, rng),
        Operation::Barrier { .. } => Ok(()),
        Operation::If { creg, value, op } => {
            if program.creg_value(*creg, clbits) == Some(*value) {
                apply_op(program, op, state, clbits, rng)
            } else {
                Ok(())
            }
        }
    }
}

/// Runs `shots` trajectories of `program` from `initial` and calls `visit(shot, &state,
/// &clbits)` with the final state and classical bits of each.
///
/// Works for any program (a unitary one gives identical trajectories up to its final
/// measurements). Shot `k` draws from `ChaCha8Rng::seed_from_u64(shot_seed(seed, k))`.
///
/// # Errors
/// [`Error::QubitCountMismatch`] if `initial` has another width; any backend error; the
/// first error `visit` returns.
pub fn for_each_trajectory<B, F>(
    program: &Program,
    initial: B,
    shots: usize,
    seed: u64,
    mut visit: F,
) -> Result<()>
where
    B: StateBackend + Clone,
    F: FnMut(usize, &B, &BitString) -> Result<()>,
{
    check_width(program, &initial)?;
    let prefix = unitary_prefix(program);
    let mut base = initial;
    apply_prefix(program, &mut base, prefix)?;
    let rest = &program.operations()[prefix..];
    for shot in 0..shots {
        let mut rng = ChaCha8Rng::seed_from_u64(shot_seed(seed, shot as u64));
        let mut state = base.clone();
        let mut clbits = BitString::zeros(program.n_clbits());
        for op in rest {
            apply_op(program, op, &mut state, &mut clbits, &mut rng)?;
        }
        state.check_norm("after a trajectory")?;
        visit(shot, &state, &clbits)?;
    }
    Ok(())
}

/// Counts of `shots` runs of `program` from `initial`, seeded with `seed`.
///
/// A program that [`Program::to_circuit`] accepts runs once and is sampled; any other runs
/// one trajectory per shot ([`for_each_trajectory`]). Classical bits that no measurement
/// writes read 0.
///
/// # Errors
/// [`Error::QubitCountMismatch`] if `initial` has another width; any backend error.
pub fn run_shots<B>(program: &Program, initial: B, shots: usize, seed: u64) -> Result<Counts>
where
    B: StateBackend + Clone,
{
    check_width(program, &initial)?;
    if let Ok(split) = program.to_circuit() {
        let mut state = initial;
        state.run(&split.circuit, &[], &[])?;
        return sample_counts(program, &split.measurements, &state, shots, seed);
    }
    let mut counts = Counts::new();
    for_each_trajectory(program, initial, shots, seed, |_, _, clbits| {
        *counts.entry(program.format_clbits(clbits)).or_insert(0) += 1;
        Ok(())
    })?;
    Ok(counts)
}

/// Counts of `shots` samples of `state` read through final `measurements` (`(qubit,
/// clbit)` pairs, as in [`crate::MeasuredCircuit`]), drawn from
/// `ChaCha8Rng::seed_from_u64(seed)`. Classical bits no measurement writes read 0.
///
/// # Errors
/// Any error of [`StateBackend::sample`].
pub fn sample_counts<B: StateBackend>(
    program: &Program,
    measurements: &[(usize, usize)],
    state: &B,
    shots: usize,
    seed: u64,
) -> Result<Counts> {
    let mut counts = Counts::new();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clbits = BitString::zeros(program.n_clbits());
    for sample in state.sample(shots, &mut rng)? {
        for &(qubit, clbit) in measurements {
            clbits.set(clbit, sample.get(qubit));
        }
        *counts.entry(program.format_clbits(&clbits)).or_insert(0) += 1;
    }
    Ok(counts)
}

/// One branch of the exact computation.
struct Branch<B> {
    state: B,
    clbits: BitString,
    probability: f64,
    next: usize,
}

/// The exact distribution of the classical outcomes of `program` run from `initial`.
///
/// Every measurement (and reset) splits the computation into its outcomes, each followed
/// on a clone of the state projected with [`StateBackend::project`] and weighted by its
/// probability; outcomes below [`MIN_OUTCOME_PROBABILITY`] are dropped. The trailing block
/// of final measurements is read from one marginal distribution instead of branching. With
/// [`crate::DenseState`] this is exact to rounding; with an MPS it is exact up to its
/// truncation.
///
/// # Errors
/// [`Error::QubitCountMismatch`]; [`Error::TooManyBranches`] beyond [`MAX_BRANCHES`]; and
/// [`Error::TooLarge`] if the final measurements read more than
/// [`crate::backend::MAX_MARGINAL_QUBITS`] qubits; any backend error.
pub fn exact_distribution<B>(program: &Program, initial: B) -> Result<Distribution>
where
    B: StateBackend + Clone,
{
    check_width(program, &initial)?;
    let ops = program.operations();
    // ops[tail..] are only measurements and barriers.
    let tail = ops
        .iter()
        .rposition(|op| !matches!(op, Operation::Measure { .. } | Operation::Barrier { .. }))
        .map_or(0, |i| i + 1);
    let prefix = unitary_prefix(program).min(tail);
    let mut state = initial;
    apply_prefix(program, &mut state, prefix)?;

    let mut final_pairs = Vec::new();
    let mut final_qubits = Vec::new();
    for op in &ops[tail..] {
        if let Operation::Measure { qubit, clbit } = *op {
            final_pairs.push((qubit, clbit));
            if !final_qubits.contains(&qubit) {
                final_qubits.push(qubit);
            }
        }
    }

    let mut out = Distribution::new();
    let mut branches = 1usize;
    let mut stack = vec![Branch {
        state,
        clbits: BitString::zeros(program.n_clbits()),
        probability: 1.0,
        next: prefix,
    }];
    while let Some(mut branch) = stack.pop() {
        if branch.next >= tail {
            let marginal = branch.state.marginal_probabilities(&final_qubits)?;
            for (k, &p) in marginal.iter().enumerate() {
                if p < MIN_OUTCOME_PROBABILITY {
                    continue;
                }
                let mut clbits = branch.clbits.clone();
                for &(qubit, clbit) in &final_pairs {
                    let j = final_qubits.iter().position(|&q| q == qubit).unwrap_or(0);
                    clbits.set(clbit, (k >> j) & 1 == 1);
                }
                *out.entry(program.format_clbits(&clbits)).or_insert(0.0) += branch.probability * p;
            }
            continue;
        }
        let op = &ops[branch.next];
        branch.next += 1;
        let op = match op {
            Operation::If { creg, value, op } => {
                if program.creg_value(*creg, &branch.clbits) != Some(*value) {
                    stack.push(branch);
                    continue;
                }
                op.as_ref()
            }
            other => other,
        };
        match *op {
            Operation::Gate(ref inst) => {
                branch.state.apply_instruction(inst, &[], &[])?;
                stack.push(branch);
            }
            Operation::Barrier { .. } | Operation::If { .. } => stack.push(branch),
            Operation::Measure { qubit, .. } | Operation::Reset { qubit } => {
                let p = branch.state.marginal_probabilities(&[qubit])?;
                let possible: Vec<bool> = [false, true]
                    .into_iter()
                    .filter(|&o| p[usize::from(o)] >= MIN_OUTCOME_PROBABILITY)
                    .collect();
                branches += possible.len().saturating_sub(1);
                if branches > MAX_BRANCHES {
                    return Err(Error::TooManyBranches { max: MAX_BRANCHES });
                }
                let mut children = Vec::with_capacity(2);
                if let [first, second] = possible[..] {
                    let twin = Branch {
                        state: branch.state.clone(),
                        clbits: branch.clbits.clone(),
                        probability: branch.probability,
                        next: branch.next,
                    };
                    children.push((twin, first));
                    children.push((branch, second));
                } else if let Some(&only) = possible.first() {
                    children.push((branch, only));
                }
                for (mut child, outcome) in children {
                    child.probability *= child.state.project(qubit, outcome)?;
                    match *op {
                        Operation::Measure { clbit, .. } => child.clbits.set(clbit, outcome),
                        _ if outcome => {
                            let x = Gate::X.matrix(&[], &[])?;
                            child.state.apply_matrix(&x, &[qubit])?;
                        }
                        _ => {}
                    }
                    stack.push(child);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DenseState, MpsConfig, MpsState};

    fn program(body: &str) -> Program {
        crate::qasm::parse_str(
            &format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\n{body}"),
            "t.qasm",
        )
        .unwrap()
    }

    #[test]
    fn shot_seeds_are_distinct_and_stable() {
        let seeds: std::collections::HashSet<u64> = (0..1000).map(|k| shot_seed(42, k)).collect();
        assert_eq!(seeds.len(), 1000);
        assert_ne!(shot_seed(1, 0), shot_seed(2, 0));
        assert_eq!(shot_seed(7, 3), shot_seed(7, 3));
    }

    #[test]
    fn bell_pair_samples_and_exact_distribution() {
        let p = program("qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n");
        let exact = exact_distribution(&p, DenseState::new(2).unwrap()).unwrap();
        assert_eq!(exact.len(), 2);
        assert!((exact["00"] - 0.5).abs() < 1e-12);
        assert!((exact["11"] - 0.5).abs() < 1e-12);
        let counts = run_shots(&p, DenseState::new(2).unwrap(), 2000, 1).unwrap();
        assert_eq!(counts.keys().collect::<Vec<_>>(), ["00", "11"]);
        let again = run_shots(&p, DenseState::new(2).unwrap(), 2000, 1).unwrap();
        assert_eq!(counts, again, "seeded runs repeat");
    }

    #[test]
    fn teleportation_with_feed_forward_is_exact_on_both_backends() {
        // Teleports ry(0.8)|0> from q[0] to q[2] with classically controlled corrections.
        let p = program(
            "qreg q[3];\ncreg a[1];\ncreg b[1];\ncreg out[1];\nry(0.8) q[0];\nh q[1];\ncx q[1], q[2];\n\
             cx q[0], q[1];\nh q[0];\nmeasure q[0] -> a[0];\nmeasure q[1] -> b[0];\n\
             if (b == 1) x q[2];\nif (a == 1) z q[2];\nmeasure q[2] -> out[0];\n",
        );
        let p1 = (0.4f64).sin().powi(2);
        for exact in [
            exact_distribution(&p, DenseState::new(3).unwrap()).unwrap(),
            exact_distribution(
                &p,
                MpsState::new(
                    3,
                    MpsConfig::default().with_update(crate::UpdateScheme::Centre),
                )
                .unwrap(),
            )
            .unwrap(),
        ] {
            assert_eq!(exact.len(), 8);
            let ones: f64 = exact
                .iter()
                .filter(|(k, _)| k.starts_with('1'))
                .map(|(_, v)| v)
                .sum();
            assert!((ones - p1).abs() < 1e-12, "{ones} vs {p1}");
            for (k, v) in &exact {
                let expected = 0.25 * if k.starts_with('1') { p1 } else { 1.0 - p1 };
                assert!((v - expected).abs() < 1e-12, "{k}: {v}");
            }
        }
    }

    #[test]
    fn reset_and_mid_circuit_measurement() {
        let p = program(
            "qreg q[1];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\nreset q[0];\nh q[0];\nmeasure q[0] -> c[1];\n",
        );
        let exact = exact_distribution(&p, DenseState::new(1).unwrap()).unwrap();
        assert_eq!(exact.len(), 2);
        assert!((exact["01"] - 0.5).abs() < 1e-12 && (exact["11"] - 0.5).abs() < 1e-12);
        let counts = run_shots(&p, DenseState::new(1).unwrap(), 400, 3).unwrap();
        assert!(counts.keys().all(|k| k == "01" || k == "11"));
        let visited = std::cell::Cell::new(0);
        for_each_trajectory(&p, DenseState::new(1).unwrap(), 5, 3, |_, s, bits| {
            visited.set(visited.get() + 1);
            assert!(bits.get(0));
            assert!((s.norm() - 1.0).abs() < 1e-12);
            Ok(())
        })
        .unwrap();
        assert_eq!(visited.get(), 5);
        assert!(matches!(
            run_shots(&p, DenseState::new(2).unwrap(), 1, 0),
            Err(Error::QubitCountMismatch { .. })
        ));
    }
}
