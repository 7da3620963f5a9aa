//! Simulates a 1000-qubit circuit on the MPS backend and prints what a user reads out.
//!
//! The circuit is a GHZ preparation followed by a data-re-uploading brick (RY by input
//! features, then trainable RZ/RY, then a CZ brick), the shape of a quantum fusion layer.
//! Run: `cargo run --release --example thousand_qubits`.

use std::time::Instant;

use qfl::{Circuit, MpsConfig, MpsState, Param, Pauli, PauliString, StateBackend, Truncation};
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;

fn main() -> qfl::Result<()> {
    let n = 1000;
    let max_bond = 64;
    let config = MpsConfig::default().with_truncation(
        Truncation::default()
            .with_max_bond(max_bond)
            .with_cutoff(1e-12),
    );

    // 1. GHZ: known answers, exact at bond dimension 2.
    let mut ghz = Circuit::new(n)?;
    ghz.h(0)?;
    for q in 0..n - 1 {
        ghz.cx(q, q + 1)?;
    }
    let t = Instant::now();
    let mut psi = MpsState::new(n, config)?;
    psi.run(&ghz, &[], &[])?;
    let zz = psi.expectation_pauli(&PauliString::new(&[(0, Pauli::Z), (n - 1, Pauli::Z)])?)?;
    println!("GHZ on {n} qubits ({:.2?}):", t.elapsed());
    println!("  <Z_0 Z_999> = {zz:.12}   (exact: 1)");
    println!(
        "  <Z_500>     = {:.12}   (exact: 0)",
        psi.z_expectations()?[500]
    );
    println!("  peak bond dimension {}", psi.max_bond_dimension());

    // 2. A re-uploading brick: inputs x (one per qubit) and trainable angles theta.
    let layers = 8;
    let mut circuit = Circuit::new(n)?.with_inputs(n).with_params(2 * n * layers);
    for layer in 0..layers {
        for q in 0..n {
            circuit.ry(Param::input(q), q)?;
            circuit.rz(Param::theta(2 * (layer * n + q)), q)?;
            circuit.ry(Param::theta(2 * (layer * n + q) + 1), q)?;
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                circuit.cz(q, q + 1)?;
            }
        }
    }
    let x: Vec<f64> = (0..n).map(|q| (q as f64 * 0.37).sin()).collect();
    let theta: Vec<f64> = (0..circuit.n_params())
        .map(|k| 0.5 + (k as f64 * 0.11).cos())
        .collect();
    let t = Instant::now();
    let mut psi = MpsState::new(n, config)?;
    psi.run(&circuit, &theta, &x)?;
    let elapsed = t.elapsed();
    let z = psi.z_expectations()?;
    let report = psi.truncation_report();
    println!(
        "\nRe-uploading brick, {n} qubits, {layers} layers, {} gates ({elapsed:.2?}):",
        circuit.len()
    );
    println!(
        "  <Z_i> for i = 0..8: {:?}",
        z[..8]
            .iter()
            .map(|v| format!("{v:+.5}"))
            .collect::<Vec<_>>()
    );
    println!("  mean <Z_i> = {:+.6}", z.iter().sum::<f64>() / n as f64);
    println!(
        "  peak bond {} (limit {max_bond}), truncating cuts {}",
        report.peak_bond, report.truncating_cuts
    );
    println!(
        "  fidelity estimate {:.6}, proven lower bound {:.6}",
        report.fidelity_estimate, report.fidelity_lower_bound
    );

    // A convergence check a careful user runs: the same circuit at half the bond limit.
    let mut coarse = MpsState::new(
        n,
        MpsConfig::default().with_truncation(
            Truncation::default()
                .with_max_bond(max_bond / 2)
                .with_cutoff(1e-12),
        ),
    )?;
    coarse.run(&circuit, &theta, &x)?;
    let dz = coarse
        .z_expectations()?
        .iter()
        .zip(&z)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "  at max bond {}: fidelity estimate {:.3e}, max |delta <Z_i>| against max bond {max_bond}: {dz:.2e}",
        max_bond / 2,
        coarse.fidelity_estimate()
    );

    // 3. Seeded shots, without building the 2^1000 vector.
    let shots = psi.sample(5, &mut ChaCha8Rng::seed_from_u64(2026))?;
    for s in &shots {
        let text = s.to_string();
        println!(
            "  shot: ...{} ({} ones)",
            &text[text.len() - 40..],
            s.count_ones()
        );
    }
    Ok(())
}
