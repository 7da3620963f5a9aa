//! OpenQASM import on QASMBench: every reference circuit against Qiskit's exact values on
//! both backends, the invalid files rejected at the right line, and mutated files never
//! panicking the parser.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use qfl::qasm::{parse_bytes, parse_file};
use qfl::{DenseState, Error, MpsConfig, MpsState, QasmErrorKind, StateBackend, Truncation};

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qasmbench-small")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(data_dir().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// An MPS that is exact at these sizes (bond dimension up to 2^(n/2) = 32 for n = 10).
fn exact_mps(n: usize) -> MpsState {
    MpsState::new(
        n,
        MpsConfig::default()
            .with_update(qfl::UpdateScheme::Centre)
            .with_truncation(Truncation::exact().with_max_bond(1024)),
    )
    .unwrap()
}

#[test]
fn reference_circuits_match_qiskit_on_both_backends() {
    let reference = reference();
    let circuits = reference["circuits"].as_object().unwrap();
    assert_eq!(circuits.len(), 34);
    for (name, entry) in circuits {
        let program = parse_file(data_dir().join(name)).unwrap_or_else(|e| panic!("{e}"));
        let n = entry["n_qubits"].as_u64().unwrap() as usize;
        assert_eq!(program.n_qubits(), n, "{name}");
        let split = program
            .to_circuit()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let z_ref = floats(&entry["z"]);

        let mut dense = DenseState::new(n).unwrap();
        dense.run(&split.circuit, &[], &[]).unwrap();
        let mut mps = exact_mps(n);
        mps.run(&split.circuit, &[], &[]).unwrap();
        for (label, z) in [
            ("dense", dense.z_expectations().unwrap()),
            ("mps", mps.z_expectations().unwrap()),
        ] {
            for q in 0..n {
                let d = (z[q] - z_ref[q]).abs();
                assert!(
                    d < 1e-8,
                    "{name} {label}: <Z_{q}> = {} but Qiskit gives {} (diff {d:e})",
                    z[q],
                    z_ref[q]
                );
            }
        }
        if n <= 10 {
            let p_ref = floats(&entry["probabilities"]);
            assert_eq!(p_ref.len(), 1 << n, "{name}");
            let all: Vec<usize> = (0..n).collect();
            let p_dense: Vec<f64> = dense.amplitudes().iter().map(|a| a.norm_sqr()).collect();
            let p_mps = mps.marginal_probabilities(&all).unwrap();
            let f = super::common::fidelity(dense.amplitudes(), &mps.to_dense().unwrap());
            assert!((f - 1.0).abs() < 1e-10, "{name}: MPS-dense fidelity {f}");
            for (label, p) in [("dense", p_dense), ("mps", p_mps)] {
                let worst = p
                    .iter()
                    .zip(&p_ref)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(
                    worst < 1e-10,
                    "{name} {label}: probabilities differ by {worst:e}"
                );
            }
        }
    }
}

/// `vqe_uccsd_n4/6/8` and `hhl_n10` measure a register `q` they never declare: the error
/// names the first such line (found here by reading the file) and the register.
#[test]
fn undeclared_register_files_are_rejected_at_the_right_line() {
    for name in [
        "vqe_uccsd_n4.qasm",
        "vqe_uccsd_n6.qasm",
        "vqe_uccsd_n8.qasm",
        "hhl_n10.qasm",
    ] {
        let path = data_dir().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let expected_line = text
            .lines()
            .position(|l| l.trim_start().starts_with("measure q["))
            .unwrap()
            + 1;
        match parse_file(&path) {
            Err(Error::Qasm {
                file,
                line,
                column,
                kind,
                message,
            }) => {
                assert_eq!(kind, QasmErrorKind::UndeclaredRegister, "{name}");
                assert_eq!(line, expected_line, "{name}");
                assert_eq!(column, 9, "{name}");
                assert_eq!(message, "register 'q' is not declared", "{name}");
                assert!(file.ends_with(name));
            }
            other => panic!("{name}: expected an undeclared-register error, got {other:?}"),
        }
    }
}

/// The non-unitary files parse, and are recognised as needing shot-by-shot simulation.
#[test]
fn non_unitary_files_parse_and_refuse_a_unitary_circuit() {
    for name in [
        "bb84_n8.qasm",
        "inverseqft_n4.qasm",
        "ipea_n2.qasm",
        "qec_sm_n5.qasm",
        "shor_n5.qasm",
    ] {
        let program = parse_file(data_dir().join(name)).unwrap();
        assert!(
            matches!(program.to_circuit(), Err(Error::NotUnitaryProgram { .. })),
            "{name}"
        );
    }
}

/// Every .qasm file of the set is either in the reference, non-unitary, or invalid.
#[test]
fn every_file_parses_or_is_a_known_invalid_one() {
    let mut n = 0;
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "qasm") {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let result = parse_file(&path);
            let invalid = name.starts_with("vqe_uccsd") || name == "hhl_n10.qasm";
            assert_eq!(result.is_err(), invalid, "{name}: {result:?}");
            n += 1;
        }
    }
    assert_eq!(n, 43);
}

/// Small real files used as seeds for mutation.
fn seed_files() -> Vec<Vec<u8>> {
    [
        "adder_n4.qasm",
        "ipea_n2.qasm",
        "qec_sm_n5.qasm",
        "wstate_n3.qasm",
        "inverseqft_n4.qasm",
        "qaoa_n3.qasm",
        "pea_n5.qasm",
        "shor_n5.qasm",
        "dnn_n2.qasm",
        "teleportation_n3.qasm",
    ]
    .iter()
    .map(|f| std::fs::read(data_dir().join(f)).unwrap())
    .collect()
}

/// Fragments that steer mutations towards interesting parser states.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ";",
    ",",
    "->",
    "==",
    "-",
    "^",
    "/",
    "*",
    "+",
    "pi",
    "U",
    "CX",
    "if",
    "gate",
    "opaque",
    "measure",
    "reset",
    "barrier",
    "qreg",
    "creg",
    "include",
    "OPENQASM",
    "\"",
    "/*",
    "//",
    "\n",
    "99999999999999999999999",
    "1e999",
    "0",
    ".",
    "sqrt(",
    "ln(0)",
    "q[",
    "c",
    "\u{e9}",
    "\u{0}",
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    InsertByte(usize, u8),
    InsertFragment(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), 1usize..24).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::InsertByte(p, b)),
        (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(p, f)| Mutation::InsertFragment(p, f)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
    match *m {
        Mutation::Flip(p, b) => {
            if !bytes.is_empty() {
                let i = p % bytes.len();
                bytes[i] ^= b;
            }
        }
        Mutation::Delete(p, n) => {
            let i = at(p, bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::InsertByte(p, b) => {
            let i = at(p, bytes.len());
            bytes.insert(i, b);
        }
        Mutation::InsertFragment(p, f) => {
            let i = at(p, bytes.len());
            bytes.splice(i..i, FRAGMENTS[f].bytes());
        }
        Mutation::Truncate(p) => {
            let i = at(p, bytes.len());
            bytes.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Mutated real files give a program or an error, never a panic; errors carry a
    /// position inside the input.
    #[test]
    fn mutated_files_never_panic(file in 0usize..10, mutations in proptest::collection::vec(mutation(), 1..8)) {
        let seeds = seed_files();
        let mut bytes = seeds[file].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        match parse_bytes(&bytes, "mutant.qasm") {
            Ok(p) => prop_assert!(p.operations().iter().all(|op| op.qubits().iter().all(|&q| q < p.n_qubits()))),
            Err(Error::Qasm { line, column, .. }) => {
                let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
                prop_assert!(line >= 1 && line <= lines, "line {line} of {lines}");
                prop_assert!(column >= 1);
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
        }
    }
}

/// Every prefix and every single-byte deletion of two real files parses without panic.
#[test]
fn every_truncation_and_deletion_is_handled() {
    for name in ["ipea_n2.qasm", "qec_sm_n5.qasm"] {
        let bytes = std::fs::read(data_dir().join(name)).unwrap();
        for end in 0..=bytes.len() {
            let _ = parse_bytes(&bytes[..end], name);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b.remove(i);
            let _ = parse_bytes(&b, name);
        }
    }
}
