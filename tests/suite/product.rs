//! The product prefix of a run: gates that keep a product state one (one-qubit gates,
//! SWAP, gates controlled by qubits in basis states, permutations of basis states) act on
//! the sites directly, and the run goes on from the first gate that could entangle.

use proptest::prelude::*;
use qfl::backend::mps::HOLD_MAX_CUTOFF;
use qfl::{Circuit, DenseState, MpsConfig, MpsState, StateBackend, Truncation};

use super::common::{build_circuit, max_dist, tolerance};

/// Gate codes of `common::gate_from_code` that often keep a product state one: Paulis,
/// phases, controlled and diagonal gates, SWAP, iSWAP, Toffoli, Fredkin; and a few that
/// entangle or leave the basis (H, RY, CU3, a general two-qubit unitary) so the prefix
/// ends and the rest takes the usual path.
const CODES: [u8; 20] = [
    1, 2, 3, 5, 7, 17, 17, 18, 19, 23, 24, 26, 27, 30, 31, 31, 32, 4, 12, 25,
];

/// Settings that never hold amplitudes (a cutoff just above `HOLD_MAX_CUTOFF`, far below
/// anything these circuits discard), so short chains run on sites too.
fn on_sites_exact() -> MpsConfig {
    MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::exact().with_cutoff(10.0 * HOLD_MAX_CUTOFF))
}

fn dense_of(circuit: &Circuit, theta: &[f64], x: &[f64]) -> DenseState {
    let mut dense = DenseState::new(circuit.n_qubits()).unwrap();
    dense.run(circuit, theta, x).unwrap();
    dense
}

/// A 12-qubit ripple-carry adder on basis states (CX and Toffoli, as QASMBench's
/// `adder_n10`), with a SWAP, a Fredkin and phases: it never leaves a product state.
fn adder() -> (Circuit, usize) {
    let n = 12;
    let mut c = Circuit::new(n).unwrap();
    // a = 0b0111 on qubits 1, 3, 5, 7 (low first), b = 0b1011 on 2, 4, 6, 8.
    for q in [1, 3, 5, 2, 4, 8] {
        c.x(q).unwrap();
    }
    let maj = |c: &mut Circuit, a: usize, b: usize, x: usize| {
        c.cx(x, b).unwrap();
        c.cx(x, a).unwrap();
        c.ccx(a, b, x).unwrap();
    };
    let unmaj = |c: &mut Circuit, a: usize, b: usize, x: usize| {
        c.ccx(a, b, x).unwrap();
        c.cx(x, a).unwrap();
        c.cx(a, b).unwrap();
    };
    maj(&mut c, 0, 2, 1);
    maj(&mut c, 1, 4, 3);
    maj(&mut c, 3, 6, 5);
    maj(&mut c, 5, 8, 7);
    c.cx(7, 9).unwrap();
    unmaj(&mut c, 5, 8, 7);
    unmaj(&mut c, 3, 6, 5);
    unmaj(&mut c, 1, 4, 3);
    unmaj(&mut c, 0, 2, 1);
    c.swap(10, 0).unwrap();
    c.cswap(9, 11, 10).unwrap();
    c.t(9).unwrap();
    c.cz(9, 2).unwrap();
    (c, n)
}

/// A classical reversible circuit runs without a single two-site update, bond 1
/// throughout, and ends in the basis state the dense simulator finds (with its phase).
#[test]
fn classical_circuits_run_without_a_factorization() {
    let (c, n) = adder();
    let dense = dense_of(&c, &[], &[]);
    for config in [
        MpsConfig::default().with_update(qfl::UpdateScheme::Centre),
        on_sites_exact(),
    ] {
        let mut mps = MpsState::new(n, config).unwrap();
        mps.run(&c, &[], &[]).unwrap();
        assert_eq!(mps.two_site_updates(), 0);
        assert_eq!(mps.max_bond_dimension(), 1);
        assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < 1e-14);
    }
    // The sum 7 + 11 = 18 = 0b10010: b = 0b0010 on qubits 2, 4, 6, 8, the carry on 9.
    let z = dense.z_expectations().unwrap();
    let ones: Vec<usize> = (0..n).filter(|&q| z[q] < 0.0).collect();
    assert!(ones.contains(&9) && ones.contains(&4) && !ones.contains(&2));
}

/// The prefix ends at the first gate that could entangle; what follows runs as before
/// (here on sites, factoring its updates) and the result is the dense one.
#[test]
fn the_prefix_ends_where_a_gate_could_entangle() {
    let n = 12;
    let mut c = Circuit::new(n).unwrap();
    c.x(0).unwrap();
    c.cx(0, 11).unwrap();
    c.h(3).unwrap();
    c.ccx(0, 11, 5).unwrap();
    // Control 3 in superposition: the prefix stops here.
    c.cx(3, 4).unwrap();
    c.ccx(3, 4, 6).unwrap();
    c.cx(0, 7).unwrap();
    let dense = dense_of(&c, &[], &[]);
    let mut mps = MpsState::new(n, on_sites_exact()).unwrap();
    mps.run(&c, &[], &[]).unwrap();
    assert!(mps.two_site_updates() > 0);
    assert_eq!(mps.max_bond_dimension(), 2);
    assert!(max_dist(&mps.to_dense().unwrap(), dense.amplitudes()) < 1e-13);
    // Without window blocks there is no prefix: the same state by gate-by-gate updates.
    let mut steps = MpsState::new(n, on_sites_exact().with_window_blocks(false)).unwrap();
    steps.run(&c, &[], &[]).unwrap();
    assert!(steps.two_site_updates() > mps.two_site_updates());
    assert!(max_dist(&steps.to_dense().unwrap(), dense.amplitudes()) < 1e-13);
}

proptest! {
    #![proptest_config(super::common::proptest_config(128))]

    /// Random circuits of mostly basis-preserving gates on 2 to 14 qubits (any qubits, far
    /// apart too), with a few that entangle: the state equals the dense simulator's, with
    /// the default settings and with settings that keep short chains on sites.
    #[test]
    fn product_prefix_matches_the_dense_state(
        n in 2usize..=14,
        raws in proptest::collection::vec(
            (
                proptest::sample::select(CODES.to_vec()),
                [0usize..1000, 0usize..1000, 0usize..1000],
                [-3.1f64..3.1, -3.1f64..3.1, -3.1f64..3.1],
                [any::<u8>(), any::<u8>(), any::<u8>()],
            ),
            0..=40,
        ),
        theta in proptest::collection::vec(-3.1f64..3.1, 3),
        x in proptest::collection::vec(-3.1f64..3.1, 2),
    ) {
        let rc = build_circuit(n, &raws, theta, x);
        let dense = dense_of(&rc.circuit, &rc.theta, &rc.x);
        let tol = tolerance(&rc);
        for config in [MpsConfig::default().with_update(qfl::UpdateScheme::Centre), on_sites_exact()] {
            let mut mps = MpsState::new(n, config).unwrap();
            mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
            let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
            prop_assert!(d <= tol, "{d:e} > {tol:e}");
            // A second run starts from whatever the first left (product or not).
            mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
            let mut twice = dense.clone();
            twice.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
            let d = max_dist(&mps.to_dense().unwrap(), twice.amplitudes());
            prop_assert!(d <= 2.0 * tol, "second run: {d:e}");
        }
    }
}
