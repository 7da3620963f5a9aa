//! The qfl API in six steps: build a circuit, run it on both backends, read it out,
//! rebind its parameters, control truncation, and choose how a run applies its gates.
//!
//! Run: `cargo run --release --example basics`.

use qfl::{
    Circuit, DenseState, MpsConfig, MpsState, Observable, Param, PauliString, StateBackend,
    Truncation, UpdateScheme,
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

    // 6. How a run applies its gates. The default (`UpdateScheme::Auto`, as `qfl run`)
    //    starts centred and, on a chain of more than 12 qubits whose bonds have grown, runs
    //    the rest as TEBD: gates on disjoint pairs in parallel, truncations that are not the
    //    optimal ones for the whole state, and Qiskit Aer's local read-out of <Z_i>.
    //    `UpdateScheme::Centre` moves the orthogonality centre next to every gate, so every
    //    truncation is optimal, at a few times the cost on long entangled chains.
    let long = 16;
    let mut brick = Circuit::new(long)?;
    for layer in 0..10 {
        for q in 0..long {
            brick.ry(0.2 + 0.13 * (q + 3 * layer) as f64, q)?;
            brick.rz(0.5 - 0.07 * (q * layer) as f64, q)?;
        }
        for q in (layer % 2..long - 1).step_by(2) {
            brick.cx(q, q + 1)?;
        }
    }
    let mut exact = DenseState::new(long)?;
    exact.run(&brick, &[], &[])?;
    let z_exact = exact.z_expectations()?;
    let max_err = |z: &[f64]| {
        z.iter()
            .zip(&z_exact)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let truncation = Truncation::default().with_max_bond(16);
    for update in [UpdateScheme::Auto, UpdateScheme::Centre] {
        let config = MpsConfig::default()
            .with_truncation(truncation)
            .with_update(update);
        let mut psi = MpsState::new(long, config)?;
        psi.run(&brick, &[], &[])?;
        // The local read-out exists exactly when the run ended in TEBD.
        let local = match psi.local_z_expectations() {
            Ok(z) => format!("{:.1e}", max_err(&z)),
            Err(_) => "none (the run stayed centred)".into(),
        };
        println!(
            "{update:?}: fidelity estimate {:.4}, max |<Z_i> - exact|: held state {:.1e}, local read-out {local}",
            psi.fidelity_estimate(),
            max_err(&psi.z_expectations()?),
        );
    }
    Ok(())
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 1e6).round() / 1e6 + 0.0).collect()
}
