//! Routing of far gates in a run (`Routing`): leaving gathered qubits where they are
//! (`Lookahead`) gives the same state as swapping them back (`SwapBack`) and as the dense
//! oracle, for both update schemes, with fewer two-site updates on random far-apart pairs.

use proptest::prelude::*;
use qfl::backend::mps::HOLD_MAX_CUTOFF;
use qfl::{
    Circuit, DenseState, MpsConfig, MpsState, Parallelism, Routing, StateBackend, Truncation,
    UpdateScheme,
};

use super::common::{fidelity, max_dist, random_circuit, tolerance};

/// The routing and scheme under test, without window blocks: a chain of 12 qubits would
/// otherwise finish on its amplitudes once entangled, where routing swaps are relabellings
/// and no routing costs anything.
fn config(routing: Routing, update: UpdateScheme, truncation: Truncation) -> MpsConfig {
    MpsConfig::default()
        .with_window_blocks(false)
        .with_truncation(truncation)
        .with_routing(routing)
        .with_update(update)
}

const SCHEMES: [UpdateScheme; 2] = [UpdateScheme::Centre, UpdateScheme::Tebd];

proptest! {
    #![proptest_config(super::common::proptest_config(96))]

    /// Without truncation every routing and scheme, with and without window blocks (and so
    /// with and without a short chain finishing on its amplitudes), gives the dense state,
    /// with qubit i back on site i (amplitudes and <Z_i> in the usual order) and exact
    /// canonical form.
    #[test]
    fn every_routing_equals_dense(rc in random_circuit(2, 10, 60)) {
        let n = rc.circuit.n_qubits();
        let mut dense = DenseState::new(n).unwrap();
        dense.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
        let zd = dense.z_expectations().unwrap();
        let tol = tolerance(&rc);
        for routing in [Routing::Lookahead, Routing::SwapBack] {
            for (update, blocks) in [
                (UpdateScheme::Centre, false),
                (UpdateScheme::Centre, true),
                (UpdateScheme::Tebd, false),
            ] {
                let cfg = config(routing, update, Truncation::exact()).with_window_blocks(blocks);
                let mut mps = MpsState::new(n, cfg).unwrap();
                mps.run(&rc.circuit, &rc.theta, &rc.x).unwrap();
                let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
                prop_assert!(d < tol, "{routing:?} {update:?} blocks {blocks}: amplitudes differ by {d:e}");
                let zm = mps.z_expectations().unwrap();
                for q in 0..n {
                    prop_assert!((zm[q] - zd[q]).abs() < tol, "{routing:?} {update:?} <Z_{q}>");
                }
                prop_assert!(mps.canonical_deviation() < 1e-10);
            }
        }
    }
}

/// `pairs` CX on qubit pairs at distance >= n / 4 with an RY between, from a seed.
fn far_pairs(n: usize, pairs: usize, seed: u64) -> (Circuit, Vec<f64>) {
    let mut state = seed;
    let mut next = |m: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % m as u64) as usize
    };
    let mut c = Circuit::new(n).unwrap().with_params(pairs);
    for k in 0..pairs {
        let a = next(n);
        let b = loop {
            let b = next(n);
            if b.abs_diff(a) >= n / 4 {
                break b;
            }
        };
        c.ry(qfl::Param::theta(k), a).unwrap();
        c.cx(a, b).unwrap();
    }
    let theta = (0..pairs).map(|k| 0.1 + 0.37 * k as f64).collect();
    (c, theta)
}

/// On random far-apart pairs the look-ahead needs well under half the two-site updates of
/// swapping back, on both schemes, and still gives the exact state.
#[test]
fn lookahead_halves_the_updates_of_random_far_pairs() {
    let (c, theta) = far_pairs(12, 150, 3);
    let mut dense = DenseState::new(12).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    for update in SCHEMES {
        let mut updates = Vec::new();
        for routing in [Routing::Lookahead, Routing::SwapBack] {
            let cfg = config(routing, update, Truncation::exact())
                .with_parallelism(Parallelism::Rayon(2));
            let mut mps = MpsState::new(12, cfg).unwrap();
            mps.run(&c, &theta, &[]).unwrap();
            let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
            assert!(d < 1e-9, "{routing:?} {update:?}: {d:e}");
            updates.push(mps.two_site_updates());
        }
        assert!(
            2 * updates[0] < updates[1],
            "{update:?}: look-ahead {} updates, swap-back {}",
            updates[0],
            updates[1]
        );
    }
}

/// Truncated (max bond 40 where the exact state needs 64): both routings leave a normalized,
/// canonical state whose overlap with the exact state (qubits home: a layout left permuted
/// would overlap by chance only, about 2^-12) is within a factor 2 of its fidelity estimate;
/// the look-ahead's, with a third of the truncating updates, is over twice as large; one and
/// two threads give the same bits.
#[test]
fn truncated_lookahead_run_is_consistent() {
    let n = 12;
    let (c, theta) = far_pairs(n, 150, 11);
    let mut dense = DenseState::new(n).unwrap();
    dense.run(&c, &theta, &[]).unwrap();
    let truncation = Truncation::default().with_max_bond(40);
    let run = |routing, par| {
        let cfg = config(routing, UpdateScheme::Centre, truncation).with_parallelism(par);
        let mut mps = MpsState::new(n, cfg).unwrap();
        mps.run(&c, &theta, &[]).unwrap();
        mps
    };
    let mut overlaps = Vec::new();
    for routing in [Routing::Lookahead, Routing::SwapBack] {
        let mps = run(routing, Parallelism::Sequential);
        assert!((mps.norm() - 1.0).abs() < 1e-10);
        assert!(mps.canonical_deviation() < 1e-10);
        assert!(mps.max_bond_dimension() <= 40);
        let estimate = mps.fidelity_estimate();
        let overlap = fidelity(&mps.to_dense().unwrap(), dense.amplitudes());
        assert!(
            estimate < 1.0 && overlap > 0.5 * estimate && overlap < 2.0 * estimate,
            "{routing:?}: overlap {overlap}, estimate {estimate}"
        );
        overlaps.push(overlap);
    }
    assert!(overlaps[0] > 2.0 * overlaps[1], "overlaps {overlaps:?}");
    let one = run(Routing::Lookahead, Parallelism::Sequential);
    let two = run(Routing::Lookahead, Parallelism::Rayon(2));
    assert_eq!(one.to_dense().unwrap(), two.to_dense().unwrap());
}

/// A run of gates on one pair (one-qubit gates between) is one two-site update, in both
/// schemes, and gives the dense state; a gate on a neighbour pair in between splits the run
/// (into three updates, or one three-site window block when blocks are on).
#[test]
fn runs_of_gates_on_a_pair_fuse_into_one_update() {
    let mut c = Circuit::new(3).unwrap().with_params(20);
    // Qubit 0 superposed first, so that the CX entangles (on a basis state it would
    // leave a product state, which runs without any update).
    c.h(0).unwrap();
    for k in 0..10 {
        c.rz(qfl::Param::theta(2 * k), 0).unwrap();
        c.cx(0, 1).unwrap();
        c.ry(qfl::Param::theta(2 * k + 1), 1).unwrap();
        c.cz(1, 0).unwrap();
    }
    let theta: Vec<f64> = (0..20).map(|k| 0.2 + 0.31 * k as f64).collect();
    let mut split = c.clone();
    split.cx(1, 2).unwrap();
    split.cx(0, 1).unwrap();
    for (circuit, updates, blocked) in [(&c, 1, 1), (&split, 3, 1)] {
        let mut dense = DenseState::new(3).unwrap();
        dense.run(circuit, &theta, &[]).unwrap();
        for update in SCHEMES {
            for blocks in [false, true] {
                // A cutoff just above `HOLD_MAX_CUTOFF` (nothing here is near it), so the
                // run factors its updates instead of holding the chain's amplitudes.
                let t = Truncation::exact().with_cutoff(10.0 * HOLD_MAX_CUTOFF);
                let cfg = config(Routing::Lookahead, update, t).with_window_blocks(blocks);
                let mut mps = MpsState::new(3, cfg).unwrap();
                mps.run(circuit, &theta, &[]).unwrap();
                // Blocks are a centred-update feature; TEBD runs ignore the setting.
                let want = if blocks && update == UpdateScheme::Centre {
                    blocked
                } else {
                    updates
                };
                assert_eq!(mps.two_site_updates(), want, "{update:?}, blocks {blocks}");
                let d = max_dist(&mps.to_dense().unwrap(), dense.amplitudes());
                assert!(d < 1e-12, "{update:?}, blocks {blocks}: {d:e}");
            }
        }
    }
}
