//! Held amplitudes (`MpsState::holds_amplitudes`): a short chain that a run left as its
//! amplitudes reads, changes and samples exactly as the same state on sites, and is held
//! only where the split could not truncate.

use proptest::prelude::*;
use qfl::backend::mps::{HOLD_FROM_START_MAX_QUBITS, HOLD_MAX_CUTOFF, HOLD_MAX_QUBITS};
use qfl::{
    BitString, Circuit, GateMatrix, MpsConfig, MpsState, Param, PauliString, StateBackend,
    Truncation, UpdateScheme,
};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

use super::common::{RandomCircuit, max_dist, random_circuit, tolerance, unitary_from};

/// Settings under which nothing is held: every update factored on its own.
fn on_sites() -> MpsConfig {
    MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_window_blocks(false)
}

fn run(rc: &RandomCircuit, config: MpsConfig) -> MpsState {
    let mut psi = MpsState::new(rc.circuit.n_qubits(), config).unwrap();
    psi.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
    psi
}

/// A brick of RY layers and CX on even then odd pairs.
fn brick(n: usize, layers: usize) -> Circuit {
    let mut c = Circuit::new(n).unwrap();
    for layer in 0..layers {
        for q in 0..n {
            c.ry(Param::Fixed(0.3 + 0.17 * (q + 3 * layer) as f64), q)
                .unwrap();
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                c.cx(q, q + 1).unwrap();
            }
        }
    }
    c
}

fn ghz(n: usize) -> Circuit {
    let mut c = Circuit::new(n).unwrap();
    c.h(0).unwrap();
    for q in 0..n - 1 {
        c.cx(q, q + 1).unwrap();
    }
    c
}

fn holds(n: usize, circuit: &Circuit, config: MpsConfig) -> bool {
    let mut psi = MpsState::new(n, config).unwrap();
    psi.run(circuit, &[], &[]).unwrap();
    psi.holds_amplitudes()
}

fn assert_close(what: &str, a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b}");
}

/// The readers of `held` against those of `sites` (the same state).
fn assert_reads_alike(held: &MpsState, sites: &MpsState, tol: f64, pauli: &PauliString) {
    let n = held.n_qubits();
    assert!(max_dist(&held.to_dense().unwrap(), &sites.to_dense().unwrap()) <= tol);
    for (a, b) in held
        .z_expectations()
        .unwrap()
        .iter()
        .zip(sites.z_expectations().unwrap())
    {
        assert_close("<Z_i>", *a, b, tol);
    }
    for (x, y) in held
        .single_qubit_rdms()
        .unwrap()
        .iter()
        .zip(sites.single_qubit_rdms().unwrap())
    {
        for (a, b) in x.iter().zip(y) {
            assert!((a - b).norm() <= tol, "rdm entry {a} vs {b}");
        }
    }
    assert_close(
        "Pauli expectation",
        held.expectation_pauli(pauli).unwrap(),
        sites.expectation_pauli(pauli).unwrap(),
        tol,
    );
    let bits = BitString::from_index(n, 0b1011 % (1 << n));
    assert!((held.amplitude(&bits).unwrap() - sites.amplitude(&bits).unwrap()).norm() <= tol);
    let qubits: Vec<usize> = (0..n).rev().step_by(2).collect();
    for (a, b) in held
        .marginal_probabilities(&qubits)
        .unwrap()
        .iter()
        .zip(sites.marginal_probabilities(&qubits).unwrap())
    {
        assert_close("marginal", *a, b, tol);
    }
    assert_close("norm", held.norm(), sites.norm(), tol);
    // The bonds of the split (the Schmidt ranks): at most those a run on sites left,
    // which keeps a rank a later gate lowered until an update cuts that bond again.
    let mut split = held.clone();
    split.move_centre(n - 1).unwrap();
    assert_eq!(held.bond_dimensions(), split.bond_dimensions());
    assert!(held.max_bond_dimension() <= sites.max_bond_dimension().max(1));
    assert!(held.canonical_deviation() < 1e-10);
}

#[test]
fn holds_only_where_the_split_cannot_truncate() {
    let default = MpsConfig::default().with_update(qfl::UpdateScheme::Centre);
    let with = |t: Truncation| {
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(t)
    };
    // Up to HOLD_FROM_START_MAX_QUBITS every run holds; a 4-qubit chain's bonds are at
    // most 4.
    assert!(holds(4, &ghz(4), default));
    assert!(holds(
        4,
        &ghz(4),
        with(Truncation::default().with_max_bond(4))
    ));
    assert!(!holds(
        4,
        &ghz(4),
        with(Truncation::default().with_max_bond(3))
    ));
    assert!(!holds(
        4,
        &ghz(4),
        with(Truncation::default().with_cutoff(HOLD_MAX_CUTOFF * 10.0))
    ));
    assert!(!holds(4, &ghz(4), default.with_window_blocks(false)));
    assert!(!holds(4, &ghz(4), default.with_update(UpdateScheme::Tebd)));
    assert!(holds(4, &ghz(4), default.with_update(UpdateScheme::Auto)));
    let n = HOLD_FROM_START_MAX_QUBITS;
    assert!(holds(n, &ghz(n), default));
    // Longer chains up to HOLD_MAX_QUBITS: once the chain is entangled enough to run on
    // its amplitudes.
    let n = HOLD_FROM_START_MAX_QUBITS + 1;
    assert!(holds(n, &brick(n, 6), default));
    assert!(!holds(n, &ghz(n), default), "bonds of 2 stay on sites");
    assert!(holds(HOLD_MAX_QUBITS, &brick(HOLD_MAX_QUBITS, 8), default));
    let n = HOLD_MAX_QUBITS + 1;
    assert!(!holds(n, &brick(n, 8), default));
}

/// What needs sites splits the amplitudes with the state's settings: the centre moves, a
/// TEBD-only reader says it has nothing, and the state is the same.
#[test]
fn splitting_keeps_the_state() {
    let mut psi = MpsState::new(
        8,
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
    )
    .unwrap();
    psi.run(&brick(8, 6), &[], &[]).unwrap();
    assert!(psi.holds_amplitudes());
    assert_eq!(psi.centre(), 7);
    let before = psi.to_dense().unwrap();
    psi.move_centre(2).unwrap();
    assert!(!psi.holds_amplitudes());
    assert_eq!(psi.centre(), 2);
    assert!(max_dist(&before, &psi.to_dense().unwrap()) < 1e-12);
    assert!(psi.canonical_deviation() < 1e-12);
    // A further run continues on the amplitudes once the chain is entangled again.
    psi.run(&brick(8, 6), &[], &[]).unwrap();
    assert!(psi.holds_amplitudes());
    assert!(psi.local_z_expectations().is_err());
}

proptest! {
    #![proptest_config(super::common::proptest_config(96))]

    /// On random circuits of 2 to 9 qubits: the state a run holds reads as the same
    /// circuit run gate by gate on sites, samples as its own split does (same seed, same
    /// bit strings), and stays equal to it through a lone gate, a projection and a second
    /// run.
    #[test]
    fn held_amplitudes_act_as_their_sites(
        rc in random_circuit(2, 9, 40),
        more in random_circuit(2, 9, 12),
        gate in proptest::collection::vec(-1.0f64..1.0, 32),
        pauli_code in any::<u64>(),
        seed in any::<u64>(),
    ) {
        let n = rc.circuit.n_qubits();
        let tol = 10.0 * tolerance(&rc);
        let mut held = run(&rc, MpsConfig::default().with_update(qfl::UpdateScheme::Centre));
        let mut sites = run(&rc, on_sites());
        prop_assert!(!sites.holds_amplitudes());
        let letters = ['I', 'X', 'Y', 'Z'];
        let text: Vec<String> = (0..n)
            .filter_map(|q| {
                let l = letters[((pauli_code >> (2 * q)) & 3) as usize];
                (l != 'I').then(|| format!("{l}{q}"))
            })
            .collect();
        let pauli: PauliString = if text.is_empty() {
            PauliString::identity()
        } else {
            text.join(" ").parse().unwrap()
        };
        assert_reads_alike(&held, &sites, tol, &pauli);

        // Sampling: the held state draws what its split draws.
        let mut split = held.clone();
        split.move_centre(n - 1).unwrap();
        prop_assert!(!split.holds_amplitudes());
        let draw = |s: &MpsState| s.sample(16, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        prop_assert_eq!(draw(&held), draw(&split));

        // A lone two-qubit gate on qubits far apart, then a projection.
        let u = GateMatrix::from_row_major(2, &unitary_from(&gate, 4)).unwrap();
        let (a, b) = (0, n - 1);
        held.apply_matrix(&u, &[b, a]).unwrap();
        sites.apply_matrix(&u, &[b, a]).unwrap();
        prop_assert!(max_dist(&held.to_dense().unwrap(), &sites.to_dense().unwrap()) <= tol);
        let z = sites.z_expectations().unwrap()[a];
        let outcome = z < 0.0;
        let p_held = held.project(a, outcome).unwrap();
        let p_sites = sites.project(a, outcome).unwrap();
        prop_assert!((p_held - p_sites).abs() <= tol);

        // A second run on both.
        if more.circuit.n_qubits() == n {
            held.run(&more.circuit, &more.theta, &more.x).unwrap();
            sites.run(&more.circuit, &more.theta, &more.x).unwrap();
            assert_reads_alike(&held, &sites, 2.0 * tol, &pauli);
        }
    }
}
