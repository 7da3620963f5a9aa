//! Shared helpers: random circuits for property tests, and comparisons.

use num_complex::Complex64 as C64;
use proptest::prelude::*;
use qfl::{Circuit, Gate, Param};

/// Number of gate kinds `gate_from_code` knows.
pub const N_KINDS: u8 = 35;

/// A random unitary of side `dim` by Gram-Schmidt on complex entries from `seed_vals`.
pub fn unitary_from(vals: &[f64], dim: usize) -> Vec<C64> {
    // Columns from pairs of values, with the identity added so it is never singular.
    let mut cols: Vec<Vec<C64>> = (0..dim)
        .map(|c| {
            (0..dim)
                .map(|r| {
                    let k = 2 * (c * dim + r);
                    let base = if r == c { 1.5 } else { 0.0 };
                    C64::new(base + vals[k % vals.len()], vals[(k + 1) % vals.len()])
                })
                .collect()
        })
        .collect();
    for c in 0..dim {
        for p in 0..c {
            let dot: C64 = (0..dim).map(|r| cols[p][r].conj() * cols[c][r]).sum();
            for r in 0..dim {
                let v = cols[p][r];
                cols[c][r] -= dot * v;
            }
        }
        let norm = cols[c].iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        cols[c].iter_mut().for_each(|z| *z /= norm);
    }
    // Row-major.
    let mut out = vec![C64::new(0.0, 0.0); dim * dim];
    for r in 0..dim {
        for c in 0..dim {
            out[r * dim + c] = cols[c][r];
        }
    }
    out
}

/// The angle for slot `k`: fixed, trainable or input, chosen by `sel`.
fn param(angle: f64, sel: u8, k: usize, n_params: usize, n_inputs: usize) -> Param {
    match sel % 3 {
        0 => Param::Fixed(angle),
        1 => Param::theta((k + sel as usize) % n_params)
            .scaled(1.0 + 0.25 * (sel % 4) as f64)
            .shifted(angle),
        _ => Param::input((k + sel as usize) % n_inputs)
            .scaled(-0.5)
            .shifted(angle),
    }
}

/// Builds gate number `code` with the given angles and selectors.
pub fn gate_from_code(
    code: u8,
    angles: [f64; 3],
    sel: [u8; 3],
    n_params: usize,
    n_inputs: usize,
) -> Gate {
    let p = |i: usize| param(angles[i], sel[i], i, n_params, n_inputs);
    match code % N_KINDS {
        0 => Gate::I,
        1 => Gate::X,
        2 => Gate::Y,
        3 => Gate::Z,
        4 => Gate::H,
        5 => Gate::S,
        6 => Gate::Sdg,
        7 => Gate::T,
        8 => Gate::Tdg,
        9 => Gate::Sx,
        10 => Gate::Sxdg,
        11 => Gate::Rx(p(0)),
        12 => Gate::Ry(p(0)),
        13 => Gate::Rz(p(0)),
        14 => Gate::P(p(0)),
        15 => Gate::U2 {
            phi: p(0),
            lambda: p(1),
        },
        16 => Gate::U3 {
            theta: p(0),
            phi: p(1),
            lambda: p(2),
        },
        17 => Gate::Cx,
        18 => Gate::Cy,
        19 => Gate::Cz,
        20 => Gate::Ch,
        21 => Gate::Crx(p(0)),
        22 => Gate::Cry(p(0)),
        23 => Gate::Crz(p(0)),
        24 => Gate::Cp(p(0)),
        25 => Gate::Cu3 {
            theta: p(0),
            phi: p(1),
            lambda: p(2),
        },
        26 => Gate::Swap,
        27 => Gate::ISwap,
        28 => Gate::Rxx(p(0)),
        29 => Gate::Ryy(p(0)),
        30 => Gate::Rzz(p(0)),
        31 => Gate::Ccx,
        32 => Gate::Cswap,
        33 => Gate::unitary1(&unitary_from(&angles, 2)).expect("Gram-Schmidt gives a unitary"),
        _ => Gate::unitary2(&unitary_from(&angles, 4)).expect("Gram-Schmidt gives a unitary"),
    }
}

/// A random circuit: its width, the circuit, and bound theta and x.
#[derive(Clone, Debug)]
pub struct RandomCircuit {
    pub circuit: Circuit,
    pub theta: Vec<f64>,
    pub x: Vec<f64>,
}

/// One raw gate: kind, qubit choice, angles, parameter selectors.
type RawGate = (u8, [usize; 3], [f64; 3], [u8; 3]);

fn raw_gate() -> impl Strategy<Value = RawGate> {
    let angle = -std::f64::consts::PI..std::f64::consts::PI;
    (
        0..N_KINDS,
        [0usize..1000, 0usize..1000, 0usize..1000],
        [angle.clone(), angle.clone(), angle],
        [any::<u8>(), any::<u8>(), any::<u8>()],
    )
}

/// Distinct qubits from raw draws: the first from `raw[0]`, the others from the remaining ones.
pub fn distinct_qubits(n: usize, k: usize, raw: [usize; 3]) -> Vec<usize> {
    let mut free: Vec<usize> = (0..n).collect();
    (0..k).map(|j| free.remove(raw[j] % free.len())).collect()
}

/// Random circuits on `min_q..=max_q` qubits with up to `max_gates` gates of every kind.
pub fn random_circuit(
    min_q: usize,
    max_q: usize,
    max_gates: usize,
) -> impl Strategy<Value = RandomCircuit> {
    let angle = -std::f64::consts::PI..std::f64::consts::PI;
    (
        min_q..=max_q,
        proptest::collection::vec(raw_gate(), 0..=max_gates),
        proptest::collection::vec(angle.clone(), 3),
        proptest::collection::vec(angle, 2),
    )
        .prop_map(|(n, raws, theta, x)| build_circuit(n, &raws, theta, x))
}

pub fn build_circuit(n: usize, raws: &[RawGate], theta: Vec<f64>, x: Vec<f64>) -> RandomCircuit {
    let mut circuit = Circuit::new(n)
        .unwrap()
        .with_params(theta.len())
        .with_inputs(x.len());
    for &(code, q, angles, sel) in raws {
        let mut gate = gate_from_code(code, angles, sel, theta.len(), x.len());
        if gate.n_qubits() > n {
            gate = if n >= 2 { Gate::Cz } else { Gate::H };
        }
        let qubits = distinct_qubits(n, gate.n_qubits(), q);
        circuit.push(gate, &qubits).unwrap();
    }
    RandomCircuit { circuit, theta, x }
}

/// Tolerance of an exact MPS run against the dense state: round-off grows with the gate
/// count and the width.
pub fn tolerance(rc: &RandomCircuit) -> f64 {
    let n = rc.circuit.n_qubits() as f64;
    1e-12 * (1.0 + rc.circuit.len() as f64) * n.max(1.0)
}

/// Largest entry-wise distance.
pub fn max_dist(a: &[C64], b: &[C64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).norm())
        .fold(0.0, f64::max)
}

/// |<a|b>|^2 for normalized vectors.
pub fn fidelity(a: &[C64], b: &[C64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.conj() * y)
        .sum::<C64>()
        .norm_sqr()
}

/// Property-test settings: `cases` cases from a fixed seed, so CI runs the same cases every
/// time (committed regressions replay first). Set `QFL_PROPTEST_SEED=<u64>` to explore others.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("QFL_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}
