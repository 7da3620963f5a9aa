//! The qfl API in five steps: build a circuit, run it on both backends, read it out,
//! rebind its parameters, and control truncation.
//!
//! Run: `cargo run --release --example basics`.

use qfl::{
    Circuit, DenseState, MpsConfig, MpsState, Observable, Param, PauliString, StateBackend,
    Truncation,
};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

fn main() -> qfl::Result<()> {
    // 1. A circuit is pure data. Angles may be fixed, trainable (theta) or inputs (x).
    let n = 4;
    let mut circuit = Circuit::new(n)?.with_params(2).with_inputs(1);
    circuit
        .h(0)?
        .cx(0, 1)?
        .ry(Param::input(0), 2)? // RY(x[0])
        .crz(Param::theta(0).scaled(2.0), 2, 3)? // CRZ(2 theta[0])
        .rzz(Param::theta(1), 0, 3)?; // a long-range gate: the MPS routes it with swaps
    // Mistakes are errors, not panics:
    let err = circuit.cx(1, 1).unwrap_err();
    println!("refused: {err}");

    // 2. The same circuit runs on the exact dense state and on an MPS.
    let (theta, x) = ([0.4, -0.9], [1.2]);
    let mut dense = DenseState::new(n)?;
    dense.run(&circuit, &theta, &x)?;
    let mut mps = MpsState::new(n, MpsConfig::default().with_truncation(Truncation::exact()))?;
    mps.run(&circuit, &theta, &x)?;

    // 3. Read-outs: <Z_i> for every qubit, Pauli strings, weighted sums, marginals, shots.
    println!("<Z_i> dense: {:?}", rounded(&dense.z_expectations()?));
    println!("<Z_i> MPS:   {:?}", rounded(&mps.z_expectations()?));
    let zz: PauliString = "Z0 Z1".parse()?;
    println!(
        "<Z0 Z1> = {:.6} (a Bell pair: 1)",
        mps.expectation_pauli(&zz)?
    );
    let h = Observable::new()
        .with_term(0.5, "X0 X1".parse()?)
        .with_term(-1.0, PauliString::z(2));
    println!("<0.5 X0 X1 - Z2> = {:.6}", mps.expectation(&h)?);
    println!(
        "P(q0, q1) = {:?}",
        rounded(&mps.marginal_probabilities(&[0, 1])?)
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7); // randomness is always injected and seeded
    let shots = mps.sample(8, &mut rng)?;
    println!(
        "shots (qubit 3 first): {}",
        shots
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );

    // 4. Rebinding: one circuit, many inputs, no rebuild.
    for xi in [0.0, 1.0, 2.0] {
        let mut psi = MpsState::new(n, MpsConfig::default())?;
        psi.run(&circuit, &theta, &[xi])?;
        println!(
            "x = {xi}: <Z_2> = {:+.6} (= cos x)",
            psi.z_expectations()?[2]
        );
    }

    // 5. Truncation is a per-state setting; what it discards is recorded.
    let wide = 12;
    let mut deep = Circuit::new(wide)?;
    for layer in 0..6 {
        for q in 0..wide {
            deep.ry(0.3 + 0.1 * (q + layer) as f64, q)?;
        }
        for q in (layer % 2..wide - 1).step_by(2) {
            deep.cx(q, q + 1)?;
        }
    }
    for chi in [2, 4, 8, 64] {
        let mut psi = MpsState::new(
            wide,
            MpsConfig::default().with_truncation(Truncation::default().with_max_bond(chi)),
        )?;
        psi.run(&deep, &[], &[])?;
        let r = psi.truncation_report();
        println!(
            "max bond {chi:>2}: bonds {:?}, fidelity estimate {:.6} (proven >= {:.6})",
            psi.bond_dimensions(),
            r.fidelity_estimate,
            r.fidelity_lower_bound
        );
    }
    Ok(())
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 1e6).round() / 1e6 + 0.0).collect()
}
