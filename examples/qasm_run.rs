//! Import OpenQASM 2.0 files from QASMBench and run them on the MPS backend.
//!
//! 1. A unitary circuit with final measurements: split it into a `Circuit` and its
//!    measurements, run it once on an MPS, read `<Z_i>` and sample counts.
//! 2. A circuit with mid-circuit measurements and classical `if`: run it shot by shot
//!    (trajectories), and compare with the exact distribution of outcomes.
//! 3. An invalid file: the error names the file, line and column.
//!
//! Run: `cargo run --release --example qasm_run`.

use std::path::{Path, PathBuf};

use qfl::run::{exact_distribution, run_shots, sample_counts};
use qfl::{DenseState, MpsConfig, MpsState, StateBackend, Truncation};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/qasmbench-small")
        .join(name)
}

fn mps(n: usize) -> qfl::Result<MpsState> {
    let truncation = Truncation::default().with_max_bond(64).with_cutoff(1e-16);
    MpsState::new(n, MpsConfig::default().with_truncation(truncation))
}

fn main() -> qfl::Result<()> {
    // 1. Quantum phase estimation on 9 qubits: gates, then measurements of the counting
    //    register.
    let program = qfl::qasm::parse_file(data("qpe_n9.qasm"))?;
    println!(
        "qpe_n9: {} qubits in {} register(s), {} classical bits, {} operations",
        program.n_qubits(),
        program.qregs().len(),
        program.n_clbits(),
        program.len()
    );
    let split = program.to_circuit()?; // unitary part + (qubit, clbit) of final measurements
    let mut psi = mps(program.n_qubits())?;
    psi.run(&split.circuit, &[], &[])?;
    for (q, z) in psi.z_expectations()?.iter().enumerate() {
        println!("  <Z> of {:<7} = {z:+.6}", program.qubit_name(q));
    }
    // Counts keys follow Qiskit: last classical register first, bit 0 rightmost.
    let counts = sample_counts(&program, &split.measurements, &psi, 1000, 7)?;
    let mut top: Vec<_> = counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1));
    println!(
        "  most frequent of 1000 shots: {:?}",
        &top[..top.len().min(3)]
    );
    println!(
        "  peak bond {}, fidelity estimate {:.12}",
        psi.max_bond_dimension(),
        psi.fidelity_estimate()
    );

    // 2. Shor's algorithm for 15 with one recycled qubit: measure, reset and classical if.
    let program = qfl::qasm::parse_file(data("shor_n5.qasm"))?;
    if let Err(e) = program.to_circuit() {
        println!("\nshor_n5 is not a unitary circuit: {e}");
    }
    let n = program.n_qubits();
    let exact = exact_distribution(&program, DenseState::new(n)?)?;
    let counts = run_shots(&program, mps(n)?, 2000, 11)?;
    println!("  outcome   exact p   trajectories (2000 shots on MPS)");
    for (key, p) in &exact {
        let seen = counts.get(key).copied().unwrap_or(0);
        println!("  {key}     {p:.4}    {:.4}", seen as f64 / 2000.0);
    }

    // 3. hhl_n10 measures a register it never declares: a located error, not a panic.
    match qfl::qasm::parse_file(data("hhl_n10.qasm")) {
        Ok(_) => println!("\nhhl_n10 parsed (unexpected)"),
        Err(e) => println!("\nhhl_n10 is rejected: {e}"),
    }
    Ok(())
}
