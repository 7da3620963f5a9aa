//! 1000-qubit circuits on MPS at max bond <= 64, against values known analytically.

use qfl::{
    BitString, Circuit, MpsConfig, MpsState, Param, Pauli, PauliString, StateBackend, Truncation,
};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

const N: usize = 1000;

fn config(chi: usize) -> MpsConfig {
    MpsConfig::default()
        .with_update(qfl::UpdateScheme::Centre)
        .with_truncation(Truncation::default().with_max_bond(chi))
}

#[test]
fn ghz_1000_qubits() {
    let mut c = Circuit::new(N).unwrap();
    c.h(0).unwrap();
    for q in 0..N - 1 {
        c.cx(q, q + 1).unwrap();
    }
    let mut psi = MpsState::new(N, config(64)).unwrap();
    psi.run(&c, &[], &[]).unwrap();
    assert!(psi.bond_dimensions().iter().all(|&b| b == 2));
    assert_eq!(psi.fidelity_estimate(), 1.0);
    for &(i, j) in &[(0, 1), (0, 999), (17, 523), (998, 999)] {
        let zz = psi
            .expectation_pauli(&PauliString::new(&[(i, Pauli::Z), (j, Pauli::Z)]).unwrap())
            .unwrap();
        assert!((zz - 1.0).abs() < 1e-10, "<Z{i} Z{j}> = {zz}");
    }
    assert!(
        psi.z_expectations()
            .unwrap()
            .iter()
            .all(|z| z.abs() < 1e-10)
    );
    // <X^{⊗1000}> = 1 and a single X is 0.
    let all_x = PauliString::new(&(0..N).map(|q| (q, Pauli::X)).collect::<Vec<_>>()).unwrap();
    assert!((psi.expectation_pauli(&all_x).unwrap() - 1.0).abs() < 1e-10);
    assert!(
        psi.expectation_pauli(&PauliString::single(500, Pauli::X))
            .unwrap()
            .abs()
            < 1e-10
    );
    let amp0 = psi.amplitude(&BitString::zeros(N)).unwrap();
    let ones = BitString::from_bools(&[true; N]);
    let amp1 = psi.amplitude(&ones).unwrap();
    assert!((amp0.re - 0.5f64.sqrt()).abs() < 1e-10 && (amp1.re - 0.5f64.sqrt()).abs() < 1e-10);
    // Every shot is all zeros or all ones, about half each.
    let shots = psi.sample(400, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let n_ones = shots.iter().filter(|s| s.count_ones() == N).count();
    assert!(
        shots
            .iter()
            .all(|s| s.count_ones() == 0 || s.count_ones() == N)
    );
    assert!(
        (140..=260).contains(&n_ones),
        "{n_ones} of 400 shots were all ones"
    );
    // Marginal of two far qubits: only 00 and 11.
    let p = psi.marginal_probabilities(&[3, 900]).unwrap();
    assert!(
        (p[0] - 0.5).abs() < 1e-10 && (p[3] - 0.5).abs() < 1e-10 && p[1] < 1e-12 && p[2] < 1e-12
    );
}

/// Product state `prod_i RY(a_i)|0>`, then a brick circuit `U` and its inverse: the result is
/// the product state again, so `<Z_i> = cos a_i` and `<X_i> = sin a_i` exactly.
#[test]
fn brick_and_inverse_1000_qubits() {
    let layers = 4;
    let angles: Vec<f64> = (0..N)
        .map(|q| -3.0 + 6.0 * ((q * 7919) % N) as f64 / N as f64)
        .collect();
    let mut prep = Circuit::new(N).unwrap().with_params(2 * N);
    for (q, &a) in angles.iter().enumerate() {
        prep.ry(a, q).unwrap();
    }
    let mut brick = Circuit::new(N).unwrap().with_params(2 * N);
    for layer in 0..layers {
        for q in 0..N {
            brick
                .ry(Param::theta(q), q)
                .unwrap()
                .rz(Param::theta(N + q), q)
                .unwrap();
        }
        for q in (layer % 2..N - 1).step_by(2) {
            brick.cx(q, q + 1).unwrap();
        }
    }
    let theta: Vec<f64> = (0..2 * N).map(|i| 0.1 + 0.37 * (i % 17) as f64).collect();
    let mut full = prep.clone();
    full.append(&brick).unwrap();
    let mut psi = MpsState::new(N, config(64)).unwrap();
    psi.run(&full, &theta, &[]).unwrap();
    let peak = psi.truncation_report().peak_bond;
    assert!(
        peak > 2 && peak <= 64,
        "the brick must entangle within the bond limit (peak {peak})"
    );
    assert!(
        (psi.fidelity_estimate() - 1.0).abs() < 1e-12,
        "no truncation at this depth"
    );
    psi.run(&brick.inverse(), &theta, &[]).unwrap();
    let z = psi.z_expectations().unwrap();
    for (q, &a) in angles.iter().enumerate() {
        assert!(
            (z[q] - a.cos()).abs() < 1e-9,
            "<Z_{q}> = {} vs cos = {}",
            z[q],
            a.cos()
        );
    }
    for q in [0, 1, 499, 998, 999] {
        let xq = psi
            .expectation_pauli(&PauliString::single(q, Pauli::X))
            .unwrap();
        assert!((xq - angles[q].sin()).abs() < 1e-9);
    }
    assert!(
        psi.bond_dimensions().iter().all(|&b| b == 1),
        "back to a product state"
    );
}
