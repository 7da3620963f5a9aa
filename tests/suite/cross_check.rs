//! MPS without truncation equals the dense oracle on random circuits of every gate kind.

use num_complex::Complex64 as C64;
use proptest::prelude::*;
use qfl::{
    BitString, DenseState, MpsConfig, MpsState, Parallelism, Pauli, PauliString, SplitMethod,
    StateBackend, Truncation, UpdateScheme,
};

use super::common::{RandomCircuit, max_dist, random_circuit, tolerance};

/// Tolerance scaled by the size of the computation: round-off grows with the number of
/// two-site updates (each a few eps) and with sqrt(2^n) in the dense entries.
fn run_both(rc: &RandomCircuit) -> (DenseState, MpsState) {
    run_both_with(rc, SplitMethod::default())
}

fn run_both_with(rc: &RandomCircuit, split: SplitMethod) -> (DenseState, MpsState) {
    let n = rc.circuit.n_qubits();
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    let config = MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::exact())
        .with_split(split);
    let mut mps = MpsState::new(n, config).unwrap();
    mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    (dense, mps)
}

proptest! {
    #![proptest_config(super::common::proptest_config(32))]

    /// Chains of 13 to 16 qubits may finish a run on their amplitudes (the rule of
    /// `qfl::backend::mps::AMPLITUDE_TAIL_MAX_QUBITS`), on two threads: centred or `Auto`,
    /// the state is the dense oracle's.
    #[test]
    fn long_chains_equal_dense(rc in random_circuit(13, 16, 160), auto in any::<bool>()) {
        let n = rc.circuit.n_qubits();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let update = if auto { UpdateScheme::Auto } else { UpdateScheme::Centre };
        let config = MpsConfig::default()
            .with_truncation(Truncation::exact())
            .with_update(update)
            .with_parallelism(Parallelism::Rayon(2));
        let mut mps = MpsState::new(n, config).unwrap();
        mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let tol = tolerance(&rc);
        let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
        let (zm, zd) = (mps.z_expectations().unwrap(), dense.z_expectations().unwrap());
        for q in 0..n {
            prop_assert!((zm[q] - zd[q]).abs() < tol, "<Z_{q}>: {} vs {}", zm[q], zd[q]);
        }
        prop_assert!(mps.canonical_deviation() < 1e-10);
    }
}

fn pauli_strategy() -> impl Strategy<Value = Vec<(usize, u8)>> {
    proptest::collection::vec((0usize..10, 0u8..3), 1..6)
}

proptest! {
    #![proptest_config(super::common::proptest_config(192))]

    #[test]
    fn mps_equals_dense(rc in random_circuit(1, 10, 60), paulis in proptest::collection::vec(pauli_strategy(), 4)) {
        let (dense, mps) = run_both(&rc);
        let tol = tolerance(&rc);
        let n = rc.circuit.n_qubits();
        // Every amplitude, through the dense export and through amplitude().
        let psi = mps.to_dense().unwrap();
        let d = max_dist(&psi, dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
        for i in [0u64, (1u64 << n) - 1, 0x2a5 & ((1u64 << n) - 1)] {
            let b = BitString::from_index(n, i);
            let (a, e) = (mps.amplitude(&b).unwrap(), dense.amplitude(&b).unwrap());
            prop_assert!((a - e).norm() < tol);
        }
        // Every <Z_i>.
        let (zm, zd) = (mps.z_expectations().unwrap(), dense.z_expectations().unwrap());
        for q in 0..n {
            prop_assert!((zm[q] - zd[q]).abs() < tol, "<Z_{q}>: {} vs {}", zm[q], zd[q]);
        }
        // Random Pauli strings.
        for raw in &paulis {
            let mut seen = std::collections::BTreeMap::new();
            for &(q, p) in raw {
                seen.insert(q % n, [Pauli::X, Pauli::Y, Pauli::Z][p as usize]);
            }
            let terms: Vec<(usize, Pauli)> = seen.into_iter().collect();
            let ps = PauliString::new(&terms).unwrap();
            let (a, b) = (mps.expectation_pauli(&ps).unwrap(), dense.expectation_pauli(&ps).unwrap());
            prop_assert!((a - b).abs() < tol, "<{ps}>: {a} vs {b}");
        }
        // Marginals of a few qubits (in a scrambled order) and norms.
        let qs: Vec<usize> = (0..n).rev().step_by(2).collect();
        let (pm, pd) = (mps.marginal_probabilities(&qs).unwrap(), dense.marginal_probabilities(&qs).unwrap());
        for (a, b) in pm.iter().zip(&pd) {
            prop_assert!((a - b).abs() < tol);
        }
        prop_assert!((mps.norm() - 1.0).abs() < tol);
        prop_assert!(mps.canonical_deviation() < 1e-10);
        prop_assert_eq!(mps.fidelity_estimate(), 1.0);
    }

    /// The SVD split (not the default) is as exact as the Gram split.
    #[test]
    fn svd_split_equals_dense(rc in random_circuit(1, 10, 60)) {
        let (dense, mps) = run_both_with(&rc, SplitMethod::Svd);
        let tol = tolerance(&rc);
        let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
        prop_assert!(d < tol, "amplitudes differ by {d:e} (tol {tol:e})");
        prop_assert!(mps.canonical_deviation() < 1e-10);
    }

    #[test]
    fn circuit_then_inverse_is_identity(rc in random_circuit(1, 8, 30)) {
        let n = rc.circuit.n_qubits();
        let mut full = rc.circuit.clone();
        full.append(&rc.circuit.inverse()).unwrap();
        let mut mps = MpsState::new(n, MpsConfig::default().with_update(qfl::UpdateScheme::Centre).with_truncation(Truncation::exact())).unwrap();
        mps.run(&full, &rc.theta, &rc.x).unwrap();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&full, &rc.theta, &rc.x).unwrap();
        let mut zero = vec![C64::new(0.0, 0.0); 1 << n];
        zero[0] = C64::new(1.0, 0.0);
        let tol = 2.0 * tolerance(&rc);
        prop_assert!(max_dist(dense.amplitudes(), &zero) < tol);
        prop_assert!(max_dist(&mps.to_dense().unwrap(), &zero) < tol);
    }
}

/// A fixed circuit with parametrized, controlled, long-range and three-qubit gates, compared
/// amplitude by amplitude at a tight tolerance (the quimb-style deterministic cross-check).
#[test]
fn deterministic_mixed_circuit() {
    use qfl::{Circuit, Param};
    let n = 7;
    let mut c = Circuit::new(n).unwrap().with_params(2).with_inputs(1);
    c.h(0)
        .unwrap()
        .cx(0, 6)
        .unwrap()
        .ry(Param::theta(0), 3)
        .unwrap();
    c.ccx(6, 1, 4)
        .unwrap()
        .cswap(2, 5, 0)
        .unwrap()
        .crx(Param::input(0).scaled(2.0), 5, 1)
        .unwrap();
    c.rzz(Param::theta(1), 0, 5)
        .unwrap()
        .iswap(6, 2)
        .unwrap()
        .cu3_helper();
    let (theta, x) = ([0.3, -1.1], [0.7]);
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &theta, &x).unwrap();
    let mut mps = MpsState::new(
        n,
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact()),
    )
    .unwrap();
    mps.run(&c, &theta, &x).unwrap();
    assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < 1e-13);
}

trait Cu3Helper {
    fn cu3_helper(&mut self);
}
impl Cu3Helper for qfl::Circuit {
    fn cu3_helper(&mut self) {
        self.push(
            qfl::Gate::Cu3 {
                theta: 0.4.into(),
                phi: (-0.2).into(),
                lambda: 1.3.into(),
            },
            &[3, 0],
        )
        .unwrap();
    }
}

proptest! {
    #![proptest_config(super::common::proptest_config(64))]

    /// Mid-circuit projection and measurement agree between the backends: same outcome
    /// probability, same post-measurement state, and the circuit continues correctly.
    #[test]
    fn projection_matches_dense(rc in random_circuit(2, 8, 30), which in 0usize..8, seed in any::<u64>()) {
        use rand::SeedableRng;
        let (mut dense, mut mps) = run_both(&rc);
        let n = rc.circuit.n_qubits();
        let q = which % n;
        let p = dense.marginal_probabilities(&[q]).unwrap();
        let outcome = p[1] > p[0];
        let (pd, pm) = (dense.project(q, outcome).unwrap(), mps.project(q, outcome).unwrap());
        let tol = tolerance(&rc);
        prop_assert!((pd - pm).abs() < tol);
        prop_assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < tol / pd.sqrt());
        prop_assert!(mps.canonical_deviation() < 1e-10);
        // Same seeded draw gives the same outcome on both, then the circuit runs on.
        let mut r1 = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let mut r2 = rand::rngs::ChaCha8Rng::seed_from_u64(seed);
        let q2 = (q + 1) % n;
        let (md, mm) = (dense.measure(q2, &mut r1).unwrap(), mps.measure(q2, &mut r2).unwrap());
        prop_assert_eq!(md, mm);
        dense.reset(q, &mut r1).unwrap();
        mps.reset(q, &mut r2).unwrap();
        prop_assert!(dense.marginal_probabilities(&[q]).unwrap()[1] < 1e-20);
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        prop_assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < 4.0 * tol / pd.sqrt());
    }
}

#[test]
fn impossible_outcome_is_an_error_and_leaves_state() {
    let mut mps = MpsState::new(
        3,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    let err = mps.project(1, true).unwrap_err();
    assert!(matches!(
        err,
        qfl::Error::ImpossibleOutcome {
            qubit: 1,
            outcome: true,
            ..
        }
    ));
    assert!((mps.norm() - 1.0).abs() < 1e-15);
    let mut dense = DenseState::new(3).unwrap();
    assert!(dense.project(1, true).is_err());
    assert!((dense.norm() - 1.0).abs() < 1e-15);
}

proptest! {
    #![proptest_config(super::common::proptest_config(128))]

    /// `sweep_order` is a permutation that gives the same state (it only reorders commuting
    /// gates), and MPS `run` (which uses it) still equals the dense oracle.
    #[test]
    fn sweep_order_keeps_the_unitary(rc in random_circuit(1, 9, 60)) {
        let n = rc.circuit.n_qubits();
        let order = rc.circuit.sweep_order();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (0..rc.circuit.len()).collect::<Vec<_>>());
        let mut reference = DenseState::new(n).unwrap();
        reference.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let mut reordered = DenseState::new(n).unwrap();
        let inst = rc.circuit.instructions();
        for &i in &order {
            reordered.apply_instruction(&inst[i], &rc.theta, &rc.x).unwrap();
        }
        let d = max_dist(reordered.amplitudes(), reference.amplitudes());
        prop_assert!(d < 1e-12, "reordered state differs by {d:e}");
    }
}

/// On a brick circuit the moments alternate direction along the chain.
#[test]
fn sweep_order_snakes_through_a_brick() {
    let n = 6;
    let mut c = qfl::Circuit::new(n).unwrap();
    for _ in 0..2 {
        for q in 0..n {
            c.h(q).unwrap();
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                c.cx(q, q + 1).unwrap();
            }
        }
    }
    let pairs: Vec<usize> = c
        .sweep_order()
        .into_iter()
        .map(|i| &c.instructions()[i])
        .filter(|inst| inst.qubits().len() == 2)
        .map(|inst| inst.qubits()[0])
        .collect();
    assert_eq!(pairs, vec![0, 2, 4, 3, 1, 0, 2, 4, 3, 1]);
}
